#!/usr/bin/env python3
"""Benchmark `cflc serve --store etcd://…`: two servers on a 3-member etcd cluster.

The cluster is tests/etcd_cluster.py's (3 members on 127.0.0.1, temporary data dirs,
etcd's default settings: heartbeat 100 ms, fsync on every commit), the servers real
`cflc serve` subprocesses on it. The project is `bench_build.py`'s (S services, three
environments) plus W small files `lib/w<i>.cfl` that no target reads. Three measurements:

  (a) Write throughput: W writers (one file each, so no write is stale), alternating
      between the two servers, PUT their file again and again for `--seconds`. No target
      reads these files, so nothing compiles: this is the server's write path (lock,
      one guarded etcd txn, the other server catching up) and etcd's commit. Also the
      same with one writer (latency of one write, serial).
  (b) Write-to-subscriber latency: one SSE subscriber of env/prod on server A; `-n` times,
      a PUT of env/prod.cfl (one override changed) through server B, waiting for the event
      at A before the next. Reported: the PUT's acknowledgement (compile of env/prod,
      check, commit), the event at A from the PUT's start, and from its acknowledgement
      (A hears the revision through its etcd watch, reads it and wakes its stream).
  (c) With `--big S2`: one target of S2 services stored in process (EtcdStore): output
      sizes, the encoded size, chunks, the time of the commit and of a read back.

Usage: python benchmarks/etcd_bench.py [-s 100] [-w 4] [-n 200] [--seconds 10] [--big 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from bench_build import generate  # noqa: E402

from tests.etcd_cluster import EtcdCluster, serve_etcd  # noqa: E402
from tests.server_util import stop_process  # noqa: E402


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": pct(values, 0.5) * 1000,
        "p99_ms": pct(values, 0.99) * 1000,
        "mean_ms": statistics.fmean(values) * 1000,
    }


def throughput(urls: list[str], writers: int, seconds: float) -> dict[str, Any]:
    """(a): ``writers`` threads, each rewriting its own file through alternating servers."""
    lat: list[float] = []
    status: dict[int, int] = {}
    lock = threading.Lock()
    end = time.perf_counter() + seconds

    def writer(i: int) -> None:
        n = 0
        with httpx.Client(timeout=60) as c:
            base = int(c.get(f"{urls[0]}/healthz").json()["revision"])
            while time.perf_counter() < end:
                url = urls[(i + n) % len(urls)]
                t = time.perf_counter()
                r = c.put(
                    f"{url}/v1/sources/lib/w{i}.cfl",
                    content=f"w = {n}\n".encode(),
                    headers={"If-Match": str(base)},
                )
                took = time.perf_counter() - t
                with lock:
                    status[r.status_code] = status.get(r.status_code, 0) + 1
                    if r.status_code == 200:
                        lat.append(took)
                        base = int(r.json()["revision"])
                n += 1

    t0 = time.perf_counter()
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    rate = len(lat) / elapsed
    return {"writers": writers, "writes_per_s": rate, "status": status, **summary(lat)}


async def delivery(a: str, b: str, project: Path, n: int) -> dict[str, Any]:
    """(b): SSE on A, PUT through B, n times."""
    seen: dict[int, float] = {}
    arrived = asyncio.Condition()
    async with httpx.AsyncClient(timeout=httpx.Timeout(60, read=None)) as c:
        head = int((await c.get(f"{b}/healthz")).json()["revision"])

        async def subscribe() -> None:
            async with c.stream("GET", f"{a}/v1/watch/env/prod") as resp:
                async for line in resp.aiter_lines():
                    if line.startswith("id:"):
                        seen[int(line[3:])] = time.perf_counter()
                        async with arrived:
                            arrived.notify_all()

        task = asyncio.create_task(subscribe())
        await asyncio.sleep(0.5)
        text = (project / "env" / "prod.cfl").read_text()
        sent, acked, event = [], [], []
        for i in range(n):
            body = text + f"services.svc_00001.replicas = {10 + i % 2}\n"
            t0 = time.perf_counter()
            r = await c.put(
                f"{b}/v1/sources/env/prod.cfl",
                content=body.encode(),
                headers={"If-Match": str(head)},
            )
            t1 = time.perf_counter()
            assert r.status_code == 200, r.text
            head = int(r.json()["revision"])
            async with arrived:
                await asyncio.wait_for(arrived.wait_for(lambda h=head: h in seen), 60)
            sent.append(t1 - t0)
            acked.append(seen[head] - t1)
            event.append(seen[head] - t0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return {
        "put_ack": summary(sent),
        "event_after_put_start": summary(event),
        "event_after_ack": summary(acked),
    }


def big(cluster: EtcdCluster, tmp: Path, services: int) -> dict[str, Any]:
    """(c): one target of ``services`` services, committed and read back in process."""
    from cfglang.server.core import Service
    from cfglang.server.etcd import EtcdStore, _output_bytes
    from cfglang.server.store import Commit
    from cfglang.tools.etcd import encode_blob
    from tests.test_etcd import big_project

    project = big_project(tmp / "big", services)
    store = EtcdStore.from_url(cluster.url("bench-big"))
    service = Service(store, str(tmp / "bigstate"), compile_timeout=600)
    t0 = time.perf_counter()
    asyncio.run(service.import_tree(str(project)))
    imported = time.perf_counter() - t0
    out = service.outputs["prod"][1]
    raw = _output_bytes(out)
    encoded = encode_blob(raw)
    change = Commit(1, time.time(), "bench", "put", {"prod.cfl": "replicas = 4\n"}, {"prod": out})
    t0 = time.perf_counter()
    store.commit(change)
    committed = time.perf_counter() - t0
    other = EtcdStore.from_url(cluster.url("bench-big"))
    t0 = time.perf_counter()
    other.output("prod")
    read = time.perf_counter() - t0
    chunks = sum(1 for _ in store.client.scan(f"{store.prefix}chunks/", keys_only=True))
    service.close()
    store.close()
    other.close()
    return {
        "services": services,
        "output_bytes": len(raw),
        "encoded_bytes": len(encoded),
        "chunk_keys": chunks,
        "import_s": imported,
        "commit_s": committed,
        "read_s": read,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("-s", "--services", type=int, default=100)
    ap.add_argument("-w", "--writers", type=int, default=4)
    ap.add_argument("-n", "--events", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--big", type=int, default=0, metavar="S")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results: dict[str, Any] = {"services": args.services}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cluster = EtcdCluster(tmp / "etcd", 3)
        (tmp / "etcd").mkdir()
        procs = []
        try:
            cluster.start_all()
            project = generate(tmp / "project", args.services)
            for i in range(args.writers):
                (project / "lib").mkdir(exist_ok=True)
                (project / "lib" / f"w{i}.cfl").write_text("w = 0\n")
            store = cluster.url("bench")
            for i in range(2):
                proc, url = serve_etcd(project, tmp / f"state{i}", store)
                procs.append((proc, url))
            urls = [u for _, u in procs]
            results["serial"] = throughput(urls, 1, args.seconds)
            results["concurrent"] = throughput(urls, args.writers, args.seconds)
            results["delivery"] = asyncio.run(delivery(urls[0], urls[1], project, args.events))
            if args.big:
                results["big"] = big(cluster, tmp, args.big)
        finally:
            for proc, _ in procs:
                stop_process(proc)
            cluster.stop()
    s, c, d = results["serial"], results["concurrent"], results["delivery"]
    print(f"2 servers on a 3-member etcd cluster, S = {args.services} services")
    for name, r in (("1 writer", s), (f"{c['writers']} writers", c)):
        print(
            f"  writes, {name}: {r['writes_per_s']:.0f}/s, p50 {r['p50_ms']:.1f} ms, "
            f"p99 {r['p99_ms']:.1f} ms (statuses {r['status']})"
        )
    for key, label in (
        ("put_ack", "PUT via B acknowledged (compile, check, commit)"),
        ("event_after_put_start", "event at A's subscriber, from the PUT's start"),
        ("event_after_ack", "event at A's subscriber, from the PUT's acknowledgement"),
    ):
        r = d[key]
        print(f"  {label}: p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms (n = {r['n']})")
    if "big" in results:
        g = results["big"]
        print(
            f"  S = {g['services']} target: output {g['output_bytes'] / 2**20:.1f} MiB, "
            f"compressed {g['encoded_bytes'] / 2**20:.2f} MiB, {g['chunk_keys']} chunk keys; "
            f"commit {g['commit_s'] * 1000:.0f} ms, read back {g['read_s'] * 1000:.0f} ms, "
            f"first import (compile included) {g['import_s']:.1f} s"
        )
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
