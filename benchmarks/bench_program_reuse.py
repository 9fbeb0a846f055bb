#!/usr/bin/env python3
"""A `Program` reused across evaluations: cold compile vs. a new `--var` on the same sources.

    python -m compileall -q cfglang     # this machine sets PYTHONDONTWRITEBYTECODE
    python benchmarks/bench_program_reuse.py [--sizes 10,100,1000] [--runs 5]

For each size S the fleet workload of `benchmarks/peers/gen.py` is generated with the
region as an input (`input region: string = ...` in base.cfl, new defaults in the env
layers), and `prod.cfl` is compiled in this process:

* cold: the in-process program cache emptied (and no parse or build cache), so the
  build parses, resolves, plans and evaluates;
* first reuse: the same sources with a different ``--var region=...``: the program is
  taken from the cache (checked against the texts), only the evaluation runs, and it
  records the data of the fields no input can change (`cfglang.semantic.dependence`);
* reuse: another value again: the evaluation takes that data instead of evaluating
  those fields (what a server or a watch loop evaluating one program many times does).

Each timed build starts after a full collection (the previous build's garbage would
otherwise be collected inside the next one's timing); collections the build itself
triggers (the worker pool's raised threshold, `cfglang.worker`) are inside it. Every
result is checked: the reused builds' output is byte-identical to a cold build with the
same value. Prints the medians of wall and CPU time (CPU time of this process
is less disturbed by other work on a shared machine) and the ratios (goal: under 30%
at S = 1,000).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def generate(size: int, out: Path) -> Path:
    sys.path.insert(0, str(HERE / "peers"))
    import gen  # type: ignore[import-not-found]

    gen.CFL_REGION_AS_INPUT = True
    target = out / f"s{size}"
    target.mkdir(parents=True, exist_ok=True)
    for rel, text in gen.gen_cfl(gen.base_services(size), None).items():
        (target / rel).write_text(text)
    return target / "prod.cfl"


def build(path: Path, region: str) -> tuple[float, float, str]:
    """Wall and CPU seconds of one `api.compile`, and its data as JSON."""
    from cfglang import api

    gc.collect()  # the garbage of the previous build is not this one's to collect
    start, cpu = time.perf_counter(), time.process_time()
    res = api.compile(str(path), cli_vars=[("region", region)], env={})
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    if not res.ok or res.data is None:
        raise SystemExit("".join(d.message + "\n" for d in res.diagnostics))
    return took, cpu, json.dumps(res.data, sort_keys=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10,100,1000")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    os.environ["CFLC_NO_CACHE"] = "1"
    from cfglang import driver

    print(
        f"{'S':>6} {'cold (s)':>10} {'1st reuse':>10} {'reuse (s)':>10} {'reuse/cold':>11}"
        f" {'cold cpu':>10} {'reuse cpu':>10} {'cpu ratio':>10}"
    )
    with tempfile.TemporaryDirectory(prefix="cfl-reuse-") as tmp:
        for size in (int(s) for s in a.sizes.split(",")):
            path = generate(size, Path(tmp))
            build(path, "warm-up")  # imports, grammar tables
            cold, first, reuse, cold_cpu, reuse_cpu = [], [], [], [], []
            for i in range(a.runs):
                driver.PROGRAMS.clear()
                took, cpu, cold_text = build(path, f"r-{i}")
                cold.append(took)
                cold_cpu.append(cpu)
                driver.PROGRAMS.clear()
                build(path, "fill")  # the program is now cached
                took, _, first_text = build(path, f"r-{i}")  # records kept data
                first.append(took)
                build(path, "other")
                took, cpu, warm_text = build(path, f"r-{i}")  # uses it
                reuse.append(took)
                reuse_cpu.append(cpu)
                if not (warm_text == first_text == cold_text):
                    raise SystemExit(f"S={size}: reused program gave different output")
                if f"r-{i}" not in warm_text:
                    raise SystemExit(f"S={size}: the input did not reach the output")
            c, f, r = statistics.median(cold), statistics.median(first), statistics.median(reuse)
            cc, rc = statistics.median(cold_cpu), statistics.median(reuse_cpu)
            print(
                f"{size:>6} {c:>10.4f} {f:>10.4f} {r:>10.4f} {r / c:>11.1%}"
                f" {cc:>10.4f} {rc:>10.4f} {rc / cc:>10.1%}"
            )


if __name__ == "__main__":
    main()
