"""`cfglang.connect` against a real `cflc serve` (uvicorn on 127.0.0.1): the snapshot,
subscriptions in revision order, resuming with Last-Event-ID across a server restart, the
last good configuration while the server is down, the on-disk cache, key-level usage."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import cfglang
from cfglang.live import Update
from cfglang.server import tokens
from cfglang.server.app import token_auth
from cfglang.server.core import bucket
from cfglang.server.tokens import Tokens
from cfglang.tools.connect import ConnectError, RemoteConfig
from tests.server_util import REPO, ServerThread, stop_process, write_project

PROJECT = {
    "cfl.toml": '[project]\ntargets = ["env/*.cfl"]\n',
    "base.cfl": 'db { host = "db.local"; port = 5432 }\nname = "svc"\ntags = ["a", "b"]\n',
    "env/prod.cfl": 'extends "../base.cfl"\nreplicas = 3\n',
}


def prod(replicas: int, port: int = 5432) -> str:
    return f'extends "../base.cfl"\nreplicas = {replicas}\ndb.port = {port}\n'


def put(url: str, path: str, text: str, base: int) -> int:
    r = httpx.put(
        f"{url}/v1/sources/{path}", content=text.encode(), headers={"If-Match": str(base)}
    )
    assert r.status_code == 200, r.text
    return int(r.json()["revision"])


def wait_for(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    project = write_project(tmp_path / "project", PROJECT)
    srv = ServerThread(project, tmp_path / "state", ping=1)
    yield srv
    srv.stop()


def connect(url: str, **kw: Any) -> RemoteConfig:
    kw.setdefault("backoff", (0.05, 0.3))
    kw.setdefault("usage_interval", None)
    return cfglang.connect(url, "env/prod", **kw)  # type: ignore[no-any-return]


def test_the_snapshot_reads_like_config_and_says_who_it_is(server: ServerThread) -> None:
    with connect(server.url, client_id="svc-1", labels={"zone": "a"}) as cfg:
        snap = cfg.current
        assert isinstance(snap, cfglang.live.Snapshot)
        assert snap.revision == 1 and cfg.revision == 1
        assert snap.config.db.port == 5432
        assert snap.config["replicas"] == 3
        assert snap.get("db.host") == "db.local"
        assert snap.get("tags") == ("a", "b")
        assert snap.get("nope", 7) == 7
        assert "db.port" in snap and "db.nope" not in snap
        with server.client() as c:
            rows = [r for r in c.get("/v1/clients").json() if r["client_id"] == "svc-1"]
        assert [(r["target"], r["revision"], r["labels"]) for r in rows] == [
            ("env/prod", 1, {"zone": "a"})
        ]


def test_subscribers_get_each_revision_in_order_old_and_new(server: ServerThread) -> None:
    got: list[Update] = []
    spread: list[tuple[Any, ...]] = []
    with connect(server.url) as cfg:
        cfg.subscribe("db", got.append)
        cfg.subscribe("replicas", lambda path, old, new, rev: spread.append((path, old, new, rev)))
        wait_for(lambda: cfg.connected)
        rev = 1
        for i in range(2, 6):
            rev = put(server.url, "env/prod.cfl", prod(i, 6000 + i), rev)
        wait_for(lambda: cfg.revision == rev)
        assert spread == [("replicas", i - 1 if i > 2 else 3, i, i) for i in range(2, 6)]
        assert [(u.revision, u.old.port, u.new.port) for u in got] == [
            (2, 5432, 6002),
            (3, 6002, 6003),
            (4, 6003, 6004),
            (5, 6004, 6005),
        ]
        assert cfg.current.config.db.port == 6005


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(project: Path, state: Path, port: int) -> subprocess.Popen[str]:
    """`cflc serve` on a fixed port (a restart comes back at the same address)."""
    cli = [sys.executable, "-c", "from cfglang.cli import run; run()"]
    proc = subprocess.Popen(
        [*cli, "serve", str(project), "--port", str(port), "--state", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("serving "), line
    return proc


@pytest.fixture
def process(tmp_path: Path) -> Iterator[dict[str, Any]]:
    project = write_project(tmp_path / "project", PROJECT)
    box: dict[str, Any] = {"project": project, "state": tmp_path / "state", "port": free_port()}
    box["url"] = f"http://127.0.0.1:{box['port']}"

    def start() -> None:
        box["proc"] = serve(project, box["state"], box["port"])

    box["start"] = start
    start()
    yield box
    stop_process(box["proc"])


def test_after_a_restart_the_client_resumes_and_sees_every_revision_in_order(
    process: dict[str, Any],
) -> None:
    url = process["url"]
    seen: list[int] = []
    errors: list[cfglang.ConfigError] = []
    with connect(url) as cfg:
        cfg.subscribe("", lambda u: seen.append(u.revision))
        cfg.on_error(errors.append)
        wait_for(lambda: cfg.connected)
        rev = put(url, "env/prod.cfl", prod(4), 1)
        wait_for(lambda: cfg.revision == rev)
        stop_process(process["proc"], signal.SIGKILL)
        wait_for(lambda: not cfg.connected)
        # While it is down: the last good configuration, and one error for the outage.
        assert cfg.current.revision == 2 and cfg.current.config.replicas == 4
        wait_for(lambda: len(errors) == 1)
        assert isinstance(errors[0], ConnectError)
        process["start"]()
        # Revisions made before the client is back are announced on resume, in order.
        for i in (5, 6, 7):
            rev = put(url, "env/prod.cfl", prod(i), rev)
        wait_for(lambda: cfg.revision == rev)
        assert seen == [2, 3, 4, 5]
        assert cfg.current.config.replicas == 7
        assert len(errors) == 1


def test_a_service_restarting_while_the_server_is_down_starts_from_its_cache(
    process: dict[str, Any], tmp_path: Path
) -> None:
    url, cache = process["url"], tmp_path / "cache"
    with connect(url, cache_dir=cache) as cfg:
        wait_for(lambda: cfg.connected)
        rev = put(url, "env/prod.cfl", prod(9), 1)
        wait_for(lambda: cfg.revision == rev)
    files = list(cache.iterdir())
    assert len(files) == 1 and not files[0].name.startswith(".")
    stop_process(process["proc"], signal.SIGKILL)
    # No server, no cache: an error, not an empty configuration.
    with pytest.raises(ConnectError):
        connect(url, cache_dir=tmp_path / "empty")
    with connect(url, cache_dir=cache) as cfg:
        assert cfg.revision == 2 and cfg.current.config.replicas == 9
        assert not cfg.connected
        process["start"]()
        wait_for(lambda: cfg.connected)
        rev = put(url, "env/prod.cfl", prod(10), rev)
        wait_for(lambda: cfg.revision == rev)
        assert cfg.current.config.replicas == 10


def test_refusals_are_raised_not_hidden_by_the_cache(server: ServerThread) -> None:
    with pytest.raises(ConnectError) as info:
        cfglang.connect(server.url, "env/none", usage_interval=None)
    assert info.value.status == 404 and info.value.code == "not_found"
    assert isinstance(info.value, cfglang.ConfigError)


def test_reads_are_reported_and_the_keys_nobody_read_are_listed(server: ServerThread) -> None:
    def unread(**params: Any) -> list[str]:
        with server.client() as c:
            body = c.get("/v1/configs/env/prod/usage", params=params).json()
        return list(body["unread"])

    everything = unread(since=0)
    assert {"db.host", "db.port", "name", "replicas"} <= set(everything)
    with connect(server.url, client_id="svc-1", usage_interval=0.2) as cfg:
        assert cfg.current.config.db.port == 5432
        assert cfg.current.get("tags")[0] == "a"
        assert "name" in cfg.current.config  # asking is not reading
        # Reported at the interval, while the client runs.
        wait_for(lambda: "db.port" not in unread(since=0))
    with connect(server.url, client_id="svc-2", usage_interval=60) as cfg:
        cfg.current.config.db.to_dict()  # every key under db; reported on close
    left = unread(since=0)
    assert "db.port" not in left and "db.host" not in left
    assert not any(k.startswith("tags") for k in left)
    assert "name" in left and "replicas" in left
    # A window after the reads: nothing was read in it.
    assert unread(since=time.time() + 120) == everything


def test_the_client_sends_its_token(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", PROJECT)
    state = tmp_path / "state"
    key = tokens.add(str(state), "svc", "reader")
    srv = ServerThread(project, state, auth=token_auth(Tokens(str(state))))
    try:
        with pytest.raises(ConnectError) as info:
            connect(srv.url)
        assert info.value.status == 401
        with connect(srv.url, token=key, client_id="svc-1", usage_interval=60) as cfg:
            assert cfg.current.config.replicas == 3
            wait_for(lambda: cfg.connected)
            put_with = {"Authorization": f"Bearer {tokens.add(str(state), 'ed', 'editor')}"}
            r = httpx.put(
                f"{srv.url}/v1/sources/env/prod.cfl",
                content=prod(8).encode(),
                headers={"If-Match": "1", **put_with},
            )
            assert r.status_code == 200, r.text
            wait_for(lambda: cfg.revision == 2)
        admin = tokens.add(str(state), "root", "admin")
        with srv.client(headers={"Authorization": f"Bearer {admin}"}) as c:
            body = c.get("/v1/configs/env/prod/usage", params={"since": 0}).json()
            assert [r["token"] for r in c.get("/v1/clients").json()] == ["svc"]
        assert "replicas" not in body["unread"] and "db.port" in body["unread"]
    finally:
        srv.stop()


def test_close_from_inside_a_callback_and_no_callback_after_close(server: ServerThread) -> None:
    calls: list[int] = []
    done = threading.Event()
    cfg = connect(server.url)

    def cb(u: Update) -> None:
        calls.append(u.revision)
        cfg.close()
        done.set()

    cfg.subscribe("replicas", cb)
    wait_for(lambda: cfg.connected)
    rev = put(server.url, "env/prod.cfl", prod(4), 1)
    assert done.wait(20)
    put(server.url, "env/prod.cfl", prod(5), rev)
    time.sleep(0.5)
    assert calls == [2]


def test_a_rollout_reaches_only_the_clients_its_labels_and_percentage_select(
    server: ServerThread,
) -> None:
    """Two connected services in zones a and b: a write that starts a rollout to zone a
    reaches only the first; the promote brings the second to it, each update once."""
    seen_a: list[int] = []
    seen_b: list[int] = []
    with (
        connect(server.url, client_id="svc-a", labels={"zone": "a"}) as a,
        connect(server.url, client_id="svc-b", labels={"zone": "b"}) as b,
    ):
        a.subscribe("replicas", lambda path, old, new, rev: seen_a.append(new))
        b.subscribe("replicas", lambda path, old, new, rev: seen_b.append(new))
        wait_for(lambda: a.connected and b.connected)
        r = httpx.put(
            f"{server.url}/v1/sources/env/prod.cfl",
            params={"rollout_selector": "zone=a"},
            content=prod(7).encode(),
            headers={"If-Match": "1"},
        )
        assert r.status_code == 200, r.text
        wait_for(lambda: a.revision == 2)
        time.sleep(0.3)  # b would have had time to hear of revision 2
        assert b.revision == 1 and b.current.config.replicas == 3
        assert a.current.config.replicas == 7
        promoted = httpx.post(f"{server.url}/v1/configs/env/prod/rollouts/current/promote")
        assert promoted.status_code == 200, promoted.text
        wait_for(lambda: b.revision == 2)
        assert seen_a == [7] and seen_b == [7]
    # A percentage: the stable hash of the id decides, as on the server.
    ins = next(f"p-{i}" for i in range(100) if bucket(f"p-{i}") < 50)
    outs = next(f"p-{i}" for i in range(100) if bucket(f"p-{i}") >= 50)
    r = httpx.put(
        f"{server.url}/v1/sources/env/prod.cfl",
        params={"rollout_percent": "50"},
        content=prod(8).encode(),
        headers={"If-Match": "2"},
    )
    assert r.status_code == 200, r.text
    with connect(server.url, client_id=ins) as inside, connect(server.url, client_id=outs) as out:
        assert inside.current.config.replicas == 8 and inside.revision == 3
        assert out.current.config.replicas == 7 and out.revision == 2
