#!/usr/bin/env python3
"""Benchmark change propagation: a one-line save in the base of an N-service project.

The project is `bench_build.py`'s (N services in `base.cfl`, three environments extending
it, `cfl.toml` with `targets = ["env/*.cfl"]`). Each run changes one line of `base.cfl`
(the port of the first service) and measures, from the moment the save starts:

  (a) `cflc watch`'s engine (`cfglang.tools.watch.Watcher`, in-process, OS file events):
      until the first and until all three targets' outputs are rewritten;
  (b) `cfglang.tools.live` on env/prod.cfl: until a subscriber of `services.svc_00000` is
      called.

It also prints where (a) goes: the file-event latency (save to the watcher's batch) and
each target's compile-and-write time, and for (b) the compile time of one reload.

Usage: python benchmarks/bench_live.py [-n 1000] [--runs 5] [--poll] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_build import generate

_PORT = re.compile(r"^    port = \d+$", re.M)
_next_port = [20000]


def save(path: Path) -> float:
    """Change the first service's port (one line), saving the way editors do (temp file +
    rename); return when the save started."""
    text = path.read_text()
    _next_port[0] += 1
    start = time.perf_counter()
    tmp = path.with_name(".bench.tmp")
    tmp.write_text(_PORT.sub(f"    port = {_next_port[0]}", text, count=1))
    before = path.stat().st_mtime
    stamp = max(time.time(), before + 1.5)  # polling compares whole seconds
    os.utime(tmp, (stamp, stamp))
    os.replace(tmp, path)
    return start


def wait(cond: Any, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise SystemExit("timed out")
        time.sleep(0.001)


def bench_watch(root: Path, runs: int, poll: bool) -> dict[str, list[float]]:
    from cfglang.cli import Ctx
    from cfglang.tools.watch import Report, Watcher

    reports: list[tuple[float, Report]] = []
    batches: list[float] = []
    lines: list[str] = []

    def on_report(r: Report) -> None:
        reports.append((time.perf_counter(), r))

    def echo(line: str) -> None:
        if line.startswith("──"):
            batches.append(time.perf_counter())
        lines.append(line)

    os.chdir(root)
    w = Watcher(".", Ctx("human", "never", True, 0), echo=echo, on_report=on_report)
    stop, ready = threading.Event(), threading.Event()
    t = threading.Thread(target=lambda: w.run(poll=poll, stop=stop, ready=ready.set),
                         daemon=True)
    t.start()
    wait(ready.is_set)
    out: dict[str, list[float]] = {"event": [], "first": [], "all": [], "per_target": []}
    base = root / "base.cfl"
    for _ in range(runs):
        reports.clear()
        batches.clear()
        start = save(base)
        wait(lambda: len(reports) >= 3)
        if any(not r.ok for _, r in reports):
            raise SystemExit("a target failed:\n" + "\n".join(lines[-20:]))
        out["event"].append(batches[0] - start)
        out["first"].append(reports[0][0] - start)
        out["all"].append(reports[-1][0] - start)
        out["per_target"].append(statistics.mean(r.seconds for _, r in reports))
    stop.set()
    t.join(30)
    return out


def bench_live(root: Path, runs: int, poll: bool) -> dict[str, list[float]]:
    import cfglang

    called: list[tuple[float, int]] = []
    out: dict[str, list[float]] = {"subscriber": [], "reload": []}
    lc = cfglang.live(str(root / "env" / "prod.cfl"), poll=poll)
    lc.subscribe("services.svc_00000", lambda u: called.append((time.perf_counter(),
                                                                 u.revision)))
    base = root / "base.cfl"
    try:
        for _ in range(runs):
            called.clear()
            start = save(base)
            wait(lambda: called)
            out["subscriber"].append(called[0][0] - start)
            t0 = time.perf_counter()
            lc.reload()  # nothing changed: the cost of one compile of prod
            out["reload"].append(time.perf_counter() - t0)
    finally:
        lc.close()
    return out


def row(name: str, xs: list[float]) -> str:
    ms = [x * 1000 for x in xs]
    return (f"  {name:<52} {statistics.median(ms):9.1f} {min(ms):9.1f} {max(ms):9.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("-n", type=int, default=1000, help="services (default 1000)")
    ap.add_argument("--runs", type=int, default=5, help="saves measured (default 5)")
    ap.add_argument("--poll", action="store_true", help="stat polling instead of OS events")
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = ap.parse_args()
    os.environ.setdefault("CFLC_CACHE_DIR", tempfile.mkdtemp(prefix="cflc-bench-cache-"))
    with tempfile.TemporaryDirectory(prefix="cflc-bench-live-") as tmp:
        root = generate(Path(tmp) / "fleet", args.n)
        lines = (root / "base.cfl").read_text().count("\n")
        w = bench_watch(root, args.runs, args.poll)
        lv = bench_live(root, args.runs, args.poll)
    print(f"one-line save in base.cfl ({lines} lines) of a {args.n}-service x 3-environment "
          f"project, {args.runs} saves, {'polling' if args.poll else 'OS file events'}")
    print(f"  {'':<52} {'median ms':>9} {'min':>9} {'max':>9}")
    print(row("(a) watch: save -> file event batch", w["event"]))
    print(row("(a) watch: compile + write, per target", w["per_target"]))
    print(row("(a) watch: save -> first target's outputs rewritten", w["first"]))
    print(row("(a) watch: save -> all 3 targets' outputs rewritten", w["all"]))
    print(row("(b) live:  save -> subscriber called (env/prod.cfl)", lv["subscriber"]))
    print(row("(b) live:  one reload of env/prod.cfl, no change", lv["reload"]))
    if args.json:
        print(json.dumps({"n": args.n, "watch": w, "live": lv}))


if __name__ == "__main__":
    main()
