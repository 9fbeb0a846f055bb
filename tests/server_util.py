"""Starting a real configuration server for tests: uvicorn on 127.0.0.1, a free port.

`ServerThread` runs it in this process (a thread of its own, stopped by `stop`);
`serve_process` runs `cflc serve` as a subprocess and reads its URL from its first line.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from cfglang.server.app import make_app
from cfglang.server.core import Service
from cfglang.server.sqlite import SQLiteStore

REPO = Path(__file__).resolve().parent.parent


def write_project(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


class ServerThread:
    def __init__(self, project: Path, state: Path, **app_options: Any) -> None:
        compile_timeout = app_options.pop("compile_timeout", 30.0)
        self.store = SQLiteStore(str(state))
        self.service = Service(self.store, str(state), compile_timeout=compile_timeout)
        asyncio.run(self.service.import_tree(str(project)))
        self.service._lock = None
        self.service._changed = None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        app = make_app(self.service, **app_options)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]})
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=20, **kw)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.service.close()
        self.store.close()


def serve_process(
    project: Path, state: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """`cflc serve PROJECT --port 0 --state STATE [EXTRA…]` in a subprocess (``env``
    added to the environment), and its URL. Its stderr goes to STATE.err, appended to (a
    restarted server keeps what the first one said), and is read when it does not start."""
    full = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    errors = state.with_suffix(".err")
    with open(errors, "a", encoding="utf-8") as err:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-c", "from cfglang.cli import run; run()", "serve"),
                *(str(project), "--port", "0", "--state", str(state), *extra),
            ],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=full,
        )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("serving "):
        stop_process(proc)
        raise AssertionError(line + errors.read_text(encoding="utf-8"))
    url = line.split(" at ", 1)[1].split(" ", 1)[0]
    return proc, url


def stop_process(proc: subprocess.Popen[str], sig: int = signal.SIGKILL) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
