#!/usr/bin/env python3
"""Benchmark `cflc build` on a generated fleet: N services x 3 environments.

The generated project (in a temporary directory) has:

    cfl.toml                 [project] targets = ["env/*.cfl"]
    schemas/service.cfl      a Service schema with refinements, a union type and a check
    base.cfl                 N services, each with `$<…>` substitutions (host, url)
    env/{dev,staging,prod}.cfl   extend the base, set the `stage` input's default and
                                 override a few fields per environment

Reported:
  1. whole-process cold runs of `cflc build` (median of --runs) on the project and on
     examples/fleet when it exists;
  2. an in-process breakdown by phase (parse, resolve, evaluate, typecheck when present,
     check/materialize, emit) for one target, following cfglang.driver.run;
  3. scaling: in-process compile time of one target at N = 250, 500, 1000, 2000 and the
     ratio per doubling (linear code shows ~2x; quadratic code shows ~4x).

Usage: python benchmarks/bench_build.py [-n 1000] [--runs 5] [--no-scaling] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ENVS = ("dev", "staging", "prod")

SCHEMA = '''\
## A port number.
type Port = int where 1 <= self && self <= 65535
type Stage = "dev" | "staging" | "prod"

## One deployed service.
schema Service {
  name: string where matches(self, "^[a-z][a-z0-9-]*$")
  stage: Stage
  replicas: int = 1 where self >= 1
  port: Port = 8080
  host: string
  url: string
  timeout: duration = 30s
  memory: size = 512MiB
  labels: map[string, string] = {}
  check replicas <= 3 || stage == "prod" : "more than 3 replicas is for prod only"
}
'''


def generate(root: Path, n: int) -> Path:
    """Write the N-service project under ``root`` and return it."""
    if root.exists():
        shutil.rmtree(root)
    (root / "schemas").mkdir(parents=True)
    (root / "env").mkdir()
    (root / "cfl.toml").write_text('[project]\ntargets = ["env/*.cfl"]\noutput_dir = "out"\n')
    (root / "schemas" / "service.cfl").write_text(SCHEMA)
    lines = [
        'import "schemas/service.cfl"',
        "",
        'input deploy_stage: service.Stage = "dev"',
        'let domain = "$<deploy_stage>.example.com"',
        "",
        "services {",
    ]
    for i in range(n):
        lines += [
            f"  svc_{i:05d}: service.Service {{",
            f'    name = "svc-{i:05d}"',
            "    stage = deploy_stage",
            f"    port = {8000 + i % 50000}",
            '    host = "$<name>.$<domain>"',
            '    url = "http://$<host>:$<port>/v1"',
            f'    labels = {{ team = "team-{i % 17}"; tier = "{("web", "api", "db")[i % 3]}" }}',
            "  }",
        ]
    lines.append("}")
    (root / "base.cfl").write_text("\n".join(lines) + "\n")
    for env in ENVS:
        body = ['extends "../base.cfl"', f'input deploy_stage = "{env}"', ""]
        for i in range(0, n, 7):
            if env == "prod":
                body.append(f"services.svc_{i:05d}.replicas = {4 + i % 3}")
            elif env == "staging":
                body.append(f"services.svc_{i:05d}.replicas = 2")
        for i in range(3, n, 11):
            body.append(f"services.svc_{i:05d}.memory = {1 if env == 'prod' else 256}"
                        f"{'GiB' if env == 'prod' else 'MiB'}")
            body.append(f"services.svc_{i:05d}.timeout = {5 if env == 'dev' else 60}s")
        (root / "env" / f"{env}.cfl").write_text("\n".join(body) + "\n")
    return root


# --- whole-process runs ------------------------------------------------------------------------


def cflc_cmd() -> list[str]:
    exe = shutil.which("cflc")
    return [exe] if exe else [sys.executable, "-c", "from cfglang.cli import run; run()"]


def time_process(args: list[str], cwd: Path, runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        out = cwd / "out"
        if out.exists():
            shutil.rmtree(out)
        t0 = time.perf_counter()
        r = subprocess.run([*cflc_cmd(), *args], cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise SystemExit(f"cflc {' '.join(args)} failed in {cwd} "
                             f"(exit {r.returncode}):\n{r.stderr[:4000]}")
    return statistics.median(times), times


# --- in-process phases -------------------------------------------------------------------------


@contextlib.contextmanager
def timed_parse(acc: list[float]) -> Iterator[None]:
    """Wrap cfglang.syntax.parser.parse_module to add the time spent parsing to ``acc``."""
    import cfglang.syntax.parser as parser

    real = parser.parse_module

    def wrapper(source: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return real(source)
        finally:
            acc.append(time.perf_counter() - t0)

    parser.parse_module = wrapper  # type: ignore[assignment]
    try:
        yield
    finally:
        parser.parse_module = real  # type: ignore[assignment]


def phases_once(entry: Path) -> dict[str, float]:
    """One compile of ``entry``, phase by phase, the way cfglang.driver.run chains them."""
    from cfglang import api
    from cfglang.diagnostics import Diagnostics
    from cfglang.emit import emit
    from cfglang.eval.materialise import materialize
    from cfglang.eval.evaluate import Evaluator
    from cfglang.eval.inputs import Given
    from cfglang.semantic.program import build_program
    from cfglang.semantic.resolve import FileLoader

    try:
        from cfglang.semantic.typecheck import typecheck as _typecheck
        typecheck: Callable[..., Any] | None = _typecheck
    except ImportError:
        typecheck = None

    out: dict[str, float] = {}
    diags = Diagnostics()
    root = api.find_root(str(entry))
    parse_times: list[float] = []
    t0 = time.perf_counter()
    with timed_parse(parse_times):
        program = build_program(FileLoader(), str(entry), root=root)
    load = time.perf_counter() - t0
    out["parse"] = sum(parse_times)
    out["resolve"] = load - out["parse"]
    diags.extend(program.diagnostics)
    if program.entry is None or diags.has_errors:
        raise SystemExit(_diag_text(diags, "resolve"))

    t0 = time.perf_counter()
    ev = Evaluator(diags, env={}, program=program, inputs=Given())
    doc = ev.main_doc
    out["evaluate"] = time.perf_counter() - t0
    if typecheck is not None:
        t0 = time.perf_counter()
        typecheck(list(program.modules.values()), ev.types, diags, ev.check_literal)
        out["typecheck"] = time.perf_counter() - t0
    if diags.has_errors:
        raise SystemExit(_diag_text(diags, "evaluate"))

    t0 = time.perf_counter()
    data = materialize(ev, doc)
    # evaluation is lazy: materialize forces every field and runs the checks
    out["check/materialize"] = time.perf_counter() - t0
    if diags.has_errors:
        raise SystemExit(_diag_text(diags, "materialize"))

    t0 = time.perf_counter()
    text = emit(data, "json")
    out["emit (json)"] = time.perf_counter() - t0
    out["total"] = sum(out.values())
    out["_bytes"] = len(text)
    return out


def _diag_text(diags: Any, phase: str) -> str:
    from cfglang.diagnostics import render_human

    return f"errors during {phase}:\n" + "".join(render_human(d) for d in diags.sorted()[:5])


def phases(entry: Path, runs: int) -> dict[str, float]:
    phases_once(entry)  # warm up: grammar load, imports
    samples = [phases_once(entry) for _ in range(runs)]
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]}


def compile_time(entry: Path, runs: int) -> float:
    from cfglang.api import compile

    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        res = compile(str(entry), emit_outputs=True)
        times.append(time.perf_counter() - t0)
        if not res.ok:
            raise SystemExit(f"{entry} did not compile: "
                             f"{[d.message for d in res.diagnostics if d.is_error][:3]}")
    return statistics.median(times)


# --- report ------------------------------------------------------------------------------------


def fmt_s(s: float) -> str:
    return f"{s * 1000:9.1f} ms" if s < 10 else f"{s:9.2f} s "


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "-+-".join("-" * w for w in widths)
    out = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    out += [" | ".join(c.rjust(w) if i else c.ljust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in rows]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Benchmark `cflc build` on a generated N-service x 3-environment project "
                    "(and examples/fleet when present): cold process runs, an in-process "
                    "breakdown by phase, and scaling with N.")
    ap.add_argument("-n", "--services", type=int, default=1000,
                    help="services per environment (default 1000)")
    ap.add_argument("--runs", type=int, default=5, help="cold runs per measurement (median)")
    ap.add_argument("--phase-runs", type=int, default=3, help="in-process runs per phase")
    ap.add_argument("--scaling", default="250,500,1000,2000",
                    help="comma-separated N for the scaling check (default 250,500,1000,2000)")
    ap.add_argument("--no-scaling", action="store_true", help="skip the scaling check")
    ap.add_argument("--keep", metavar="DIR", help="generate the project into DIR and keep it")
    ap.add_argument("--fleet", default=str(REPO / "examples" / "fleet"),
                    help="an existing project to time as well (default examples/fleet)")
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = ap.parse_args(argv)

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 60_000))
    results: dict[str, Any] = {"n": args.services}
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cflc-bench-"))
    try:
        proj = generate(tmp / f"fleet-{args.services}", args.services)
        src_lines = sum(len(p.read_text().splitlines()) for p in proj.rglob("*.cfl"))
        print(f"generated project: {proj} ({args.services} services x {len(ENVS)} envs, "
              f"{src_lines} source lines)\n")

        # 1. whole-process cold runs
        rows = []
        med, all_t = time_process(["build", "-q"], proj, args.runs)
        rows.append((f"cflc build (project, N={args.services}, 3 targets)", fmt_s(med),
                     fmt_s(min(all_t)), fmt_s(max(all_t))))
        results["process_project"] = med
        med, all_t = time_process(["build", "-q", "env/prod.cfl", "-o", "out/prod.json"],
                                  proj, args.runs)
        rows.append((f"cflc build env/prod.cfl (N={args.services})", fmt_s(med),
                     fmt_s(min(all_t)), fmt_s(max(all_t))))
        results["process_prod"] = med
        with tempfile.TemporaryDirectory() as empty:
            small = generate(Path(empty) / "tiny", 1)
            med, all_t = time_process(["build", "-q"], small, args.runs)
            rows.append(("cflc build (N=1: startup floor)", fmt_s(med), fmt_s(min(all_t)),
                         fmt_s(max(all_t))))
            results["process_floor"] = med
        med, all_t = time_process(["--help"], proj, args.runs)
        rows.append(("cflc --help", fmt_s(med), fmt_s(min(all_t)), fmt_s(max(all_t))))
        fleet = Path(args.fleet)
        if (fleet / "cfl.toml").is_file():
            work = tmp / "examples-fleet"
            if work.exists():
                shutil.rmtree(work)
            shutil.copytree(fleet, work, ignore=shutil.ignore_patterns("out"))
            med, all_t = time_process(["build", "-q"], work, args.runs)
            rows.append(("cflc build examples/fleet", fmt_s(med), fmt_s(min(all_t)),
                         fmt_s(max(all_t))))
            results["process_examples_fleet"] = med
        else:
            rows.append((f"examples/fleet (not found: {fleet})", "-", "-", "-"))
        print(f"Whole-process cold runs (median of {args.runs}):")
        print(table(rows, ("command", "median", "min", "max")))
        print()

        # 2. phases
        entry = proj / "env" / "prod.cfl"
        ph = phases(entry, args.phase_runs)
        results["phases"] = ph
        total = ph["total"]
        rows = [(k, fmt_s(v), f"{100 * v / total:5.1f}%") for k, v in ph.items()
                if not k.startswith("_") and k != "total"]
        rows.append(("total", fmt_s(total), "100.0%"))
        print(f"In-process phases, env/prod.cfl, N={args.services} "
              f"(median of {args.phase_runs}, after a warm-up; {ph['_bytes']} bytes of JSON):")
        print(table(rows, ("phase", "time", "share")))
        print()

        # 3. scaling
        if not args.no_scaling:
            sizes = [int(x) for x in args.scaling.split(",") if x.strip()]
            rows = []
            prev: float | None = None
            prev_n: int | None = None
            worst = 0.0
            scale: dict[int, float] = {}
            for n in sizes:
                p = generate(tmp / f"scale-{n}", n)
                t = compile_time(p / "env" / "prod.cfl", max(1, args.phase_runs))
                scale[n] = t
                if prev is not None and prev_n is not None:
                    # normalise to a doubling when sizes are not exact doublings
                    import math

                    per_doubling = (t / prev) ** (1 / math.log2(n / prev_n))
                    worst = max(worst, per_doubling)
                    ratio = f"{t / prev:5.2f}x  ({per_doubling:4.2f}x per doubling)"
                else:
                    ratio = "-"
                rows.append((str(n), fmt_s(t), f"{1e6 * t / n:8.1f} us", ratio))
                prev, prev_n = t, n
            results["scaling"] = scale
            print("Scaling, in-process compile of env/prod.cfl (median):")
            print(table(rows, ("N", "time", "per service", "vs previous")))
            verdict = ("linear (~2x per doubling)" if worst < 2.6 else
                       "SUPERLINEAR (approaching 4x per doubling is quadratic)")
            print(f"worst ratio per doubling: {worst:.2f}x -> {verdict}")
            results["worst_per_doubling"] = worst
        if args.json:
            print(json.dumps(results, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
