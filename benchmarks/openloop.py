#!/usr/bin/env python3
"""An open-loop HTTP GET load: C keep-alive connections sending R requests/s in all.

    python benchmarks/openloop.py URL -c 500 -r 1000 --seconds 10 [-H 'If-None-Match: "1-json"']

`hey -q` paces each of its workers with its own ticker, all started together, so 500
workers at 2 requests/s arrive as bursts of 500 twice a second and the latency measured is
the burst's queue. Here each connection sends at exponentially distributed intervals
(mean C / R seconds) from a random phase, as independent clients do, and a request's
latency is counted from the moment it was due (a connection still waiting for its
previous answer sends late, and the delay is counted: no coordinated omission). Prints
one JSON line: requests/s served, p50, p99, max (ms), errors. Written for
`bench_server.py`; it runs in its own process (uvloop) so it does not share an event loop
with what it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from urllib.parse import urlsplit


async def one_connection(
    host: str,
    port: int,
    request: bytes,
    mean_gap: float,
    end: float,
    lat: list[float],
    errors: list[str],
) -> None:
    rng = random.Random()
    due = time.perf_counter() + rng.uniform(0, mean_gap)
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while due < end:
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
        for attempt in (1, 2):
            try:
                if conn is None:
                    conn = await asyncio.open_connection(host, port)
                reader, writer = conn
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError) as e:
                # The server closes a connection idle for its keep-alive timeout (uvicorn:
                # 5 s): a client then opens a new one, and so does this one, once.
                if conn is not None:
                    conn[1].close()
                conn = None
                if attempt == 2:
                    errors.append(repr(e))
                continue
            if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.1 304")):
                errors.append(head.split(b"\r\n", 1)[0].decode())
            lat.append(time.perf_counter() - due)
            break
        due += rng.expovariate(1 / mean_gap)
    if conn is not None:
        conn[1].close()


async def run(url: str, conc: int, rate: float, seconds: float, headers: list[str]) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    extra = "".join(f"{h}\r\n" for h in headers)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode()
    lat: list[float] = []
    errors: list[str] = []
    start = time.perf_counter()
    end = start + seconds
    await asyncio.gather(
        *(one_connection(host, port, request, conc / rate, end, lat, errors) for _ in range(conc))
    )
    took = time.perf_counter() - start
    lat.sort()

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(len(lat) * p))] * 1000 if lat else float("nan")

    return {
        "tool": "openloop",
        "offered": rate,
        "rps": len(lat) / took,
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "max_ms": lat[-1] * 1000 if lat else float("nan"),
        "errors": len(errors),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("-c", "--connections", type=int, default=500)
    ap.add_argument("-r", "--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("-H", "--header", action="append", default=[])
    a = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(run(a.url, a.connections, a.rate, a.seconds, a.header))))


if __name__ == "__main__":
    main()
