#!/usr/bin/env python3
"""Benchmark `cflc serve`: cached GET throughput, and PUT-to-delivery at many SSE subscribers.

The project is `bench_build.py`'s (S services in `base.cfl`, three environments, `targets =
["env/*.cfl"]`), served by a real `cflc serve` subprocess on 127.0.0.1 (port 0). Two
measurements:

  (a) GET /v1/configs/env/prod with its ETag unchanged (the cached read path): requests/s,
      p50 and p99, at `-c` concurrent connections. With `hey` on PATH (`apt-get install
      hey`) it is the load generator; else `wrk`; else a Python asyncio client (httpx) in
      this process, which measures the client as much as the server: use a real generator
      for figures.
  (b) `-k` subscribers on GET /v1/watch/env/prod (one connection each), then one PUT of
      base.cfl changing one service's port: the time the PUT took to be acknowledged (the
      compile and check of three targets and the fsync'd commit), and from the
      acknowledgement to the event reaching the first, the median and the last subscriber.

Usage: python benchmarks/bench_server.py [-s 1000] [-c 500] [-k 1000] [--seconds 10] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_build import generate

REPO = Path(__file__).resolve().parent.parent


def start(project: Path, state: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-c", "from cfglang.cli import run; run()", "serve", str(project)]
    cmd += ["--port", "0", "--state", str(state)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("serving "):
        raise SystemExit(f"the server did not start: {line}")
    return proc, line.split(" at ", 1)[1].split(" ", 1)[0]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]


def open_loop(
    url: str, conc: int, seconds: float, rate: float, etag: str | None = None
) -> dict[str, Any]:
    """GETs at ``rate`` requests/s offered in all over ``conc`` connections, each sending
    at random independent times (`openloop.py`, its own process): the latency under a
    stated load. (`hey -q` paces every worker with its own ticker, started together, so
    its "rate" arrives as bursts of ``conc`` requests.)"""
    cmd = [sys.executable, str(Path(__file__).with_name("openloop.py")), url]
    cmd += ["-c", str(conc), "-r", str(rate), "--seconds", str(seconds)]
    if etag is not None:  # a client that has the config: 304, no body
        cmd += ["-H", f"If-None-Match: {etag}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def get_with_tool(
    url: str, conc: int, seconds: float, etag: str | None = None
) -> dict[str, Any] | None:
    """(a) with `hey` or `wrk`, when one is installed: as fast as the server answers
    (closed loop: every connection sends its next request on the answer)."""
    if shutil.which("hey"):
        cond = ["-H", f"If-None-Match: {etag}"] if etag is not None else []
        out = subprocess.run(
            ["hey", "-z", f"{seconds}s", "-c", str(conc), *cond, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        p50 = float(re.search(r"50%+ in ([\d.]+) secs", out).group(1))  # type: ignore[union-attr]
        p99 = float(re.search(r"99%+ in ([\d.]+) secs", out).group(1))  # type: ignore[union-attr]
        return {"tool": "hey", "rps": rps, "p50_ms": p50 * 1000, "p99_ms": p99 * 1000}
    if shutil.which("wrk"):
        out = subprocess.run(
            ["wrk", "-d", f"{seconds}s", "-c", str(conc), "-t", "2", "--latency", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

        def ms(label: str) -> float:
            m = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
            assert m is not None
            return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        return {"tool": "wrk", "rps": rps, "p50_ms": ms("50%"), "p99_ms": ms("99%")}
    return None


async def get_with_python(url: str, conc: int, seconds: float) -> dict[str, Any]:
    lat: list[float] = []
    end = time.perf_counter() + seconds
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=conc), timeout=60) as c:

        async def worker() -> None:
            while time.perf_counter() < end:
                t = time.perf_counter()
                r = await c.get(url)
                lat.append(time.perf_counter() - t)
                assert r.status_code == 200

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        elapsed = time.perf_counter() - t0
    return {
        "tool": "python-httpx (measures the client too)",
        "rps": len(lat) / elapsed,
        "p50_ms": pct(lat, 0.5) * 1000,
        "p99_ms": pct(lat, 0.99) * 1000,
    }


async def delivery(base_url: str, project: Path, subscribers: int) -> dict[str, Any]:
    """(b): subscribe, PUT, time the event at every subscriber."""
    got: list[float] = []
    ready = asyncio.Event()
    connected = [0]
    want: list[int] = [0]
    limits = httpx.Limits(max_connections=subscribers + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, timeout=None, limits=limits) as c:
        head = (await c.get("/healthz")).json()["revision"]

        async def subscribe() -> None:
            async with c.stream("GET", "/v1/watch/env/prod", params={"after": head}) as resp:
                connected[0] += 1
                if connected[0] == subscribers:
                    ready.set()
                async for line in resp.aiter_lines():
                    if line.startswith("id:") and want[0] and int(line[3:]) >= want[0]:
                        got.append(time.time())  # wall clock: compared with the server's
                        return

        tasks = [asyncio.create_task(subscribe()) for _ in range(subscribers)]
        await asyncio.wait_for(ready.wait(), 120)
        await asyncio.sleep(0.5)  # every stream is past its headers and waiting
        text = (project / "base.cfl").read_text()
        changed = re.sub(r"^    port = \d+$", "    port = 31999", text, count=1, flags=re.M)
        want[0] = head + 1
        t0 = time.perf_counter()
        r = await c.put(
            "/v1/sources/base.cfl", content=changed.encode(), headers={"If-Match": str(head)}
        )
        acked = time.perf_counter()
        assert r.status_code == 200, r.text
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        # The revision's time is taken when the change has compiled and passed its checks,
        # just before the commit: delivery is measured from there (the compile excluded).
        accepted = next(
            t["changed_at"]
            for t in (await c.get("/v1/configs")).json()
            if t["target"] == "env/prod"
        )
    after = [t - accepted for t in got]
    return {
        "subscribers": subscribers,
        "put_ack_ms": (acked - t0) * 1000,
        "first_ms": min(after) * 1000,
        "median_ms": statistics.median(after) * 1000,
        "last_ms": max(after) * 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-s", "--services", type=int, default=1000)
    ap.add_argument("-c", "--connections", type=int, default=500)
    ap.add_argument("-k", "--subscribers", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument(
        "--rate",
        type=float,
        action="append",
        default=[],
        help="also measure GETs at this many requests/s offered in all, open loop (repeatable)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = generate(Path(tmp) / "project", args.services)
        proc, url = start(project, Path(tmp) / "state")
        try:
            target = f"{url}/v1/configs/env/prod"
            get = get_with_tool(target, args.connections, args.seconds) or asyncio.run(
                get_with_python(target, args.connections, args.seconds)
            )
            first = httpx.get(target, timeout=60)
            size, etag = len(first.content), first.headers["etag"]
            paced = {r: open_loop(target, args.connections, args.seconds, r) for r in args.rate}
            saturated_304 = get_with_tool(target, args.connections, args.seconds, etag)
            not_modified = {
                r: open_loop(target, args.connections, args.seconds, r, etag) for r in args.rate
            }
            push = asyncio.run(delivery(url, project, args.subscribers))
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"S = {args.services} services; cached GET at {args.connections} connections:")
    print(f"  ({get['tool']}; the document is {size:,} bytes of JSON)")
    print(f"  {get['rps']:.0f} requests/s, p50 {get['p50_ms']:.1f} ms, p99 {get['p99_ms']:.1f} ms")
    for r, got in paced.items():
        print(
            f"  offered {r:.0f} requests/s (open loop): served {got['rps']:.0f}, "
            f"p50 {got['p50_ms']:.1f} ms, p99 {got['p99_ms']:.1f} ms"
        )
    print("  with If-None-Match of the current ETag (304):")
    if saturated_304 is not None:
        got = saturated_304
        print(
            f"  as fast as served: {got['rps']:.0f} requests/s, "
            f"p50 {got['p50_ms']:.1f} ms, p99 {got['p99_ms']:.1f} ms"
        )
    for r, got in not_modified.items():
        print(
            f"  offered {r:.0f} requests/s: served {got['rps']:.0f}, "
            f"p50 {got['p50_ms']:.1f} ms, p99 {got['p99_ms']:.1f} ms"
        )
    print(f"PUT of base.cfl, acknowledged in {push['put_ack_ms']:.0f} ms (compile, check, commit);")
    print(
        f"  from acceptance to the event at {push['subscribers']} subscribers: "
        f"first {push['first_ms']:.1f} ms, "
        f"median {push['median_ms']:.1f} ms, last {push['last_ms']:.1f} ms"
    )
    if args.json:
        print(json.dumps({"services": args.services, "get": get, "paced": paced, "push": push}))


if __name__ == "__main__":
    main()
