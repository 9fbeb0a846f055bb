"""`cflc serve` as a command: start-up cost, usage errors, a project that does not compile,
and `kill -9` during a stream of writes losing no acknowledged write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from tests.server_util import REPO, serve_process, stop_process, write_project

WEB = ("starlette", "uvicorn", "sse_starlette", "prometheus_client", "httpx", "cfglang.server")


def cflc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from cfglang.cli import run; run()", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_help_does_not_import_the_web_stack() -> None:
    probe = (
        "import sys\n"
        "from cfglang.cli import main\n"
        "for argv in (['--help'], ['serve', '--help'], ['publish', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"web = [m for m in {WEB!r} if m in sys.modules]\n"
        "sys.stderr.write('WEB=' + ','.join(web) + '\\n')\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "WEB=\n" in r.stderr, r.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    r = cflc("serve", str(tmp_path / "missing"))
    assert r.returncode == 2 and "is not a directory" in r.stderr
    r = cflc("serve", str(tmp_path), "--host", "0.0.0.0")
    assert r.returncode == 2 and "127.0.0.1" in r.stderr
    r = cflc("serve", str(tmp_path), "--port", "70000")
    assert r.returncode == 2


def test_a_project_that_does_not_compile_is_not_served(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", {"main.cfl": "x = \n"})
    r = cflc("serve", str(project), "--port", "0", "--state", str(tmp_path / "s"))
    assert r.returncode == 1, r.stderr
    assert "cannot import" in r.stdout + r.stderr
    assert "main.cfl:1:" in r.stdout + r.stderr


def test_kill_9_during_a_stream_of_writes_loses_no_acknowledged_write(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", {"main.cfl": "n = 0\n", "other.cfl": "m = 0\n"})
    state = tmp_path / "state"
    proc, url = serve_process(project, state)
    acked: dict[int, tuple[str, int]] = {}  # revision -> (file, the value written)
    lock = threading.Lock()
    started = threading.Event()

    def stream(path: str, key: str) -> None:
        # Two writers at once, each of its own file, until the server is gone.
        with httpx.Client(base_url=url, timeout=10) as c:
            base = 1
            for i in range(1, 10_000):
                try:
                    r = c.put(
                        f"/v1/sources/{path}",
                        content=f"{key} = {i}\n",
                        headers={"If-Match": str(base)},
                    )
                except httpx.TransportError:
                    return
                assert r.status_code == 200, r.text
                base = r.json()["revision"]
                with lock:
                    acked[base] = (path, i)
                    if len(acked) >= 30:
                        started.set()

    writers = [
        threading.Thread(target=stream, args=("main.cfl", "n")),
        threading.Thread(target=stream, args=("other.cfl", "m")),
    ]
    try:
        for t in writers:
            t.start()
        assert started.wait(60)
        os.kill(proc.pid, signal.SIGKILL)  # while both are writing
        for t in writers:
            t.join(30)
    finally:
        stop_process(proc)
    assert len(acked) >= 30
    proc, url = serve_process(project, state)
    try:
        with httpx.Client(base_url=url, timeout=10) as c:
            head = c.get("/healthz").json()["revision"]
            assert head >= max(acked)
            for rev, (path, value) in acked.items():
                target = path.removesuffix(".cfl")
                key = "n" if path == "main.cfl" else "m"
                r = c.get(f"/v1/configs/{target}/revisions/{rev}")
                assert r.status_code == 200 and r.json() == {key: value}
                src = c.get(f"/v1/sources/{path}", params={"revision": rev})
                assert src.text == f"{key} = {value}\n"
            a = [h["revision"] for h in c.get("/v1/configs/main/revisions").json()]
            b = [h["revision"] for h in c.get("/v1/configs/other/revisions").json()]
            assert sorted(set(a[1:]) | set(b[1:])) == list(range(2, head + 1))  # no gap
    finally:
        stop_process(proc, signal.SIGTERM)  # a supervisor's stop: graceful, exit 0
        assert proc.returncode == 0


def test_token_add_list_revoke(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    r = cflc(
        "serve",
        "token",
        "add",
        "ci",
        "--role",
        "editor",
        "--scope",
        "target:env/*",
        "--state",
        state,
    )
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token.startswith("cfl_") and len(token) > 40
    text = (tmp_path / "state" / "tokens.toml").read_text(encoding="utf-8")
    assert token not in text and "sha256" in text
    assert (tmp_path / "state" / "tokens.toml").stat().st_mode & 0o077 == 0
    r = cflc("serve", "token", "list", "--state", state)
    assert r.stdout == "ci\teditor\ttarget:env/*\n"
    assert cflc("serve", "token", "add", "ci", "--role", "admin", "--state", state).returncode == 2
    assert cflc("serve", "token", "add", "x", "--role", "root", "--state", state).returncode == 2
    r = cflc(
        "serve", "token", "add", "y", "--role", "reader", "--scope", "zone:a", "--state", state
    )
    assert r.returncode == 2 and "scope" in r.stderr
    assert cflc("serve", "token", "revoke", "ci", "--state", state).returncode == 0
    assert cflc("serve", "token", "list", "--state", state).stdout == ""
    assert cflc("serve", "token", "revoke", "ci", "--state", state).returncode == 2


def test_a_port_in_use_exits_1(tmp_path: Path) -> None:
    import socket

    project = write_project(tmp_path / "p", {"main.cfl": "n = 0\n"})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        r = cflc("serve", str(project), "--port", port, "--state", str(tmp_path / "s"))
    assert r.returncode == 1 and "cannot listen" in r.stderr, r.stderr


def test_keep_alive_reads_do_not_wait_for_delayed_acks(tmp_path: Path) -> None:
    # Without TCP_NODELAY on the accepted connections each keep-alive response waited
    # ~40 ms for the client's delayed ACK (the headers and the body are two writes).
    import time

    project = write_project(tmp_path / "p", {"main.cfl": "n = 0\n"})
    proc, url = serve_process(project, tmp_path / "state")
    try:
        with httpx.Client(base_url=url, timeout=10) as c:
            c.get("/v1/configs/main")
            times = []
            for _ in range(20):
                t = time.perf_counter()
                assert c.get("/v1/configs/main").status_code == 200
                times.append(time.perf_counter() - t)
        # The minimum: a loaded machine delays some reads, the bug delayed every one.
        assert min(times) < 0.03, times
    finally:
        stop_process(proc)
