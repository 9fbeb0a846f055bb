"""A real etcd cluster for tests: N members on 127.0.0.1 (distinct free ports, temporary
data directories), started and stopped by the test session, members killed and restarted
one by one; and `cflc serve --store etcd://…` subprocesses on it.

etcd comes from the Debian `etcd-server` package (`.ci/run` installs it). Without it the
tests skip with that reason, except under CI (``CI`` set), where they fail: a cluster test
must never pass by not running.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.server_util import serve_process


def etcd_missing() -> str | None:
    """Why the cluster cannot run here (None: it can)."""
    if shutil.which("etcd") is None:
        return "etcd is not on PATH (Debian: apt-get install etcd-server)"
    return None


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free right now (held open together, so never the same)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_for(what: str, ok: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``ok`` until it is true; AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ok():
                return
        except (httpx.HTTPError, OSError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


class EtcdCluster:
    """``size`` etcd members on 127.0.0.1 under ``root`` (see the module docstring)."""

    def __init__(self, root: Path, size: int = 3) -> None:
        self.root = root
        self.size = size
        ports = free_ports(2 * size)
        self.client_ports = ports[:size]
        self.peer_ports = ports[size:]
        self.names = [f"m{i}" for i in range(size)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size
        self.initial = ",".join(
            f"{n}=http://127.0.0.1:{p}" for n, p in zip(self.names, self.peer_ports, strict=True)
        )
        self.token = f"cfl-test-{os.getpid()}-{time.monotonic_ns()}"

    @property
    def endpoints(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.client_ports]

    def url(self, prefix: str = "", **options: float) -> str:
        """``etcd://m0,m1,m2/prefix?options``: the store URL of this cluster."""
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"etcd://{','.join(self.endpoints)}/{prefix}" + (f"?{query}" if query else "")

    def start(self, i: int) -> None:
        """Start member ``i`` (again, with its data directory, after `kill`)."""
        assert self.procs[i] is None or self.procs[i].poll() is not None  # type: ignore[union-attr]
        name, cport, pport = self.names[i], self.client_ports[i], self.peer_ports[i]
        log = open(self.root / f"{name}.log", "ab")  # the process owns it
        cmd = [
            "etcd",
            "--name",
            name,
            "--data-dir",
            str(self.root / name),
            "--listen-client-urls",
            f"http://127.0.0.1:{cport}",
            "--advertise-client-urls",
            f"http://127.0.0.1:{cport}",
            "--listen-peer-urls",
            f"http://127.0.0.1:{pport}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{pport}",
            "--initial-cluster",
            self.initial,
            "--initial-cluster-token",
            self.token,
            "--initial-cluster-state",
            "new",
            "--log-level",
            "warn",
            "--logger",
            "zap",
        ]
        self.procs[i] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def start_all(self) -> None:
        for i in range(self.size):
            self.start(i)
        self.wait_healthy()

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    def stop(self) -> None:
        for i in range(self.size):
            self.kill(i)

    def alive(self) -> list[int]:
        return [i for i, p in enumerate(self.procs) if p is not None and p.poll() is None]

    def status(self, i: int) -> dict[str, str]:
        """Member ``i``'s maintenance status: ``member_id`` (in the header) and ``leader``."""
        r = httpx.post(
            f"http://{self.endpoints[i]}/v3/maintenance/status", json={}, timeout=2
        ).json()
        return {"member_id": r["header"]["member_id"], "leader": r.get("leader", "0")}

    def leader(self) -> int:
        """The index of the leader, as the members alive agree on it."""
        found: list[int] = []

        def agreed() -> bool:
            seen = {self.status(i)["leader"] for i in self.alive()}
            if len(seen) != 1 or "0" in seen:
                return False
            (lead,) = seen
            idx = [i for i in self.alive() if self.status(i)["member_id"] == lead]
            found[:] = idx
            return bool(idx)

        wait_for("an etcd leader", agreed)
        return found[0]

    def healthy(self) -> bool:
        """A write through the cluster succeeds (quorum and a leader)."""
        for e in self.endpoints:
            try:
                r = httpx.get(f"http://{e}/health", timeout=2)
                if r.status_code == 200 and r.json().get("health") == "true":
                    return True
            except httpx.HTTPError:
                continue
        return False

    def wait_healthy(self, timeout: float = 30.0) -> None:
        wait_for("a healthy etcd cluster", self.healthy, timeout)
        for i in self.alive():  # and every member up answers
            wait_for(f"etcd member {i}", lambda i=i: bool(self.status(i)["member_id"]), timeout)


def serve_etcd(
    project: Path, state: Path, store: str, *extra: str
) -> tuple[subprocess.Popen[str], str]:
    """`cflc serve PROJECT --port 0 --state STATE --store STORE` in a subprocess, and its
    URL (stderr goes to STATE.err)."""
    return serve_process(project, state, "--store", store, *extra)
