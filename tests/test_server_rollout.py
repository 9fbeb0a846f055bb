"""Gradual rollouts: a revision delivered to the clients a label selector or a percentage
picks, the others kept at the stable one; promote and abort; watchers see what they run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cfglang.server.core import bucket
from tests.server_util import ServerThread, write_project
from tests.test_server import read_events

PROJECT = {
    "cfl.toml": '[project]\ntargets = ["app.cfl"]\n',
    "app.cfl": "version = 1\n",
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    srv = ServerThread(write_project(tmp_path / "p", PROJECT), tmp_path / "state", ping=1)
    yield srv
    srv.stop()


def as_client(cid: str, labels: str = "") -> dict[str, str]:
    return {"X-Cfl-Client-Id": cid, "X-Cfl-Client-Labels": labels}


def version(c: httpx.Client, headers: dict[str, str]) -> int:
    r = c.get("/v1/configs/app", headers=headers)
    assert r.status_code == 200, r.text
    return int(r.json()["version"])


def test_a_rollout_by_label_then_promote(server: ServerThread) -> None:
    a, b = as_client("svc-a", "zone=a"), as_client("svc-b", "zone=b")
    with server.client() as c:
        assert (
            c.put(
                "/v1/sources/app.cfl", content=b"version = 2\n", headers={"If-Match": "1"}
            ).status_code
            == 200
        )
        r = c.post("/v1/configs/app/rollouts", json={"revision": 2, "selector": {"zone": "a"}})
        assert r.status_code == 201, r.text
        assert r.json()["stable"] == 1 and r.json()["state"] == "active"
        assert version(c, a) == 2 and version(c, b) == 1 and version(c, {}) == 1
        rb = c.get("/v1/configs/app", headers=b)
        assert rb.headers["etag"] == '"1-json"' and rb.headers["x-cfl-rollout"] == "stable"
        assert c.get("/v1/configs/app", headers=a).headers["x-cfl-rollout"] == "canary"
        cur = c.get("/v1/configs/app/rollouts/current").json()
        runs = {x["client_id"]: (x["revision"], x["in_rollout"]) for x in cur["clients"]}
        assert runs == {"svc-a": (2, True), "svc-b": (1, False)}
        # A second rollout while one is active is refused; a bad one is 422 and not stored.
        again = c.post("/v1/configs/app/rollouts", json={"revision": 2, "percent": 5})
        assert again.status_code == 409
        assert c.post("/v1/configs/app/rollouts/current/promote").json()["state"] == "promoted"
        assert version(c, b) == 2 and version(c, {}) == 2
        assert "x-cfl-rollout" not in c.get("/v1/configs/app", headers=b).headers
        actions = [e["action"] for e in c.get("/v1/audit", params={"target": "app"}).json()]
        assert actions[-2:] == ["rollout", "promote"]


def test_a_rollout_by_percentage_is_a_stable_hash_of_the_client_id(server: ServerThread) -> None:
    ids = [f"svc-{i}" for i in range(40)]
    inside = {i for i in ids if bucket(i) < 30}
    assert 0 < len(inside) < len(ids)
    with server.client() as c:
        c.put("/v1/sources/app.cfl", content=b"version = 2\n", headers={"If-Match": "1"})
        r = c.post("/v1/configs/app/rollouts", json={"percent": 30})
        assert r.status_code == 201, r.text
        for _ in range(2):  # the same answer every time
            got = {i for i in ids if version(c, as_client(i)) == 2}
            assert got == inside


def test_abort_makes_a_revision_equal_to_the_stable_one(server: ServerThread) -> None:
    a = as_client("svc-a", "zone=a")
    with server.client() as c:
        c.put("/v1/sources/app.cfl", content=b"version = 2\n", headers={"If-Match": "1"})
        c.post("/v1/configs/app/rollouts", json={"selector": {"zone": "a"}})
        r = c.post("/v1/configs/app/rollouts/current/abort")
        assert r.status_code == 200 and r.json()["state"] == "aborted"
        assert r.json()["aborted_by_revision"] == 3
        assert version(c, a) == 1 and version(c, {}) == 1
        assert c.post("/v1/configs/app/rollouts/current/abort").status_code == 404


@pytest.mark.parametrize(
    "spec",
    [
        {"revision": 1, "selector": {"zone": "a"}},  # not the current revision
        {"selector": {}},
        {"selector": {"zone": 1}},
        {"percent": 101},
        {"percent": 5, "selector": {"zone": "a"}},
        {},
        {"percent": 5, "stable": 7},
    ],
)
def test_a_bad_rollout_is_422(server: ServerThread, spec: dict[str, object]) -> None:
    with server.client() as c:
        c.put("/v1/sources/app.cfl", content=b"version = 2\n", headers={"If-Match": "1"})
        r = c.post("/v1/configs/app/rollouts", json=spec)
        assert r.status_code == 422, r.text
        assert c.get("/v1/configs/app/rollouts/current").status_code == 404


def test_a_held_watcher_sees_the_new_revision_only_on_promote(server: ServerThread) -> None:
    b = as_client("svc-b", "zone=b")
    got: list[dict[str, str]] = []
    with server.client() as c:
        c.put("/v1/sources/app.cfl", content=b"version = 2\n", headers={"If-Match": "1"})
        c.post("/v1/configs/app/rollouts", json={"selector": {"zone": "a"}})
        r = c.get("/v1/watch/app", params={"wait": 0.2, "after": 1}, headers=b)
        assert r.status_code == 304  # held at 1: nothing new for it
        ready = threading.Event()

        def listen() -> None:
            with server.client() as c2, c2.stream("GET", "/v1/watch/app", headers=b) as resp:
                ready.set()
                got.extend(read_events(resp, 2))

        t = threading.Thread(target=listen)
        t.start()
        assert ready.wait(10)
        c.post("/v1/configs/app/rollouts/current/promote")
        t.join(15)
    assert [e["id"] for e in got] == ["1", "2"]


# ---- a write that starts its own rollout ---------------------------------------------


def test_a_write_with_a_rollout_never_reaches_the_others(server: ServerThread) -> None:
    a, b = as_client("svc-a", "zone=a"), as_client("svc-b", "zone=b")
    with server.client() as c:
        r = c.post(
            "/v1/changes",
            json={
                "base": 1,
                "files": {"app.cfl": "version = 2\n"},
                "rollout": {"selector": {"zone": "a"}},
            },
        )
        assert r.status_code == 200, r.text
        (started,) = r.json()["rollouts"]
        assert (started["target"], started["revision"], started["stable"]) == ("app", 2, 1)
        # No client outside the selection was ever offered revision 2: a held watcher
        # that asks for anything after 1 is told there is nothing.
        held = c.get("/v1/watch/app", params={"wait": 0.2, "after": 1}, headers=b)
        assert held.status_code == 304
        assert version(c, a) == 2 and version(c, b) == 1
        cur = c.get("/v1/configs/app/rollouts/current").json()
        assert cur["state"] == "active" and cur["revision"] == 2
        audit = c.get("/v1/audit", params={"target": "app"}).json()
        assert [(e["action"], e["revision"]) for e in audit][-1] == ("rollout", 2)
        assert c.post("/v1/configs/app/rollouts/current/promote").status_code == 200
        assert version(c, b) == 2


def test_a_put_with_a_percentage_rollout(server: ServerThread) -> None:
    ids = [f"svc-{i}" for i in range(40)]
    inside = {i for i in ids if bucket(i) < 25}
    with server.client() as c:
        r = c.put(
            "/v1/sources/app.cfl",
            params={"rollout_percent": "25"},
            content=b"version = 2\n",
            headers={"If-Match": "1"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["rollouts"][0]["percent"] == 25
        assert {i for i in ids if version(c, as_client(i)) == 2} == inside


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"rollout_percent": "lots"}, 400),
        ({"rollout_selector": "zone"}, 400),
        ({"rollout_percent": "250"}, 422),
        ({"rollout_percent": "5", "rollout_selector": "zone=a"}, 422),
    ],
)
def test_a_write_with_a_bad_rollout_stores_nothing(
    server: ServerThread, query: dict[str, str], status: int
) -> None:
    with server.client() as c:
        r = c.put(
            "/v1/sources/app.cfl", params=query, content=b"version = 2\n", headers={"If-Match": "1"}
        )
        assert r.status_code == status, r.text
        assert r.json()["error"]["code"] in ("bad_query", "invalid")
        assert c.get("/healthz").json()["revision"] == 1
        assert c.get("/v1/configs/app/rollouts/current").status_code == 404


def test_a_rollout_of_a_change_that_alters_no_document_is_refused(server: ServerThread) -> None:
    with server.client() as c:
        r = c.post(
            "/v1/changes",
            json={
                "base": 1,
                "files": {"app.cfl": "# same\nversion = 1\n"},
                "rollout": {"percent": 5},
            },
        )
        assert r.status_code == 422 and "nothing to roll out" in r.json()["error"]["message"]
        assert c.get("/healthz").json()["revision"] == 1


def test_a_write_with_a_rollout_while_one_is_active_is_409(server: ServerThread) -> None:
    with server.client() as c:
        first = c.put(
            "/v1/sources/app.cfl",
            params={"rollout_selector": "zone=a"},
            content=b"version = 2\n",
            headers={"If-Match": "1"},
        )
        assert first.status_code == 200, first.text
        r = c.put(
            "/v1/sources/app.cfl",
            params={"rollout_percent": "5"},
            content=b"version = 3\n",
            headers={"If-Match": "2"},
        )
        assert r.status_code == 409 and r.json()["error"]["code"] == "rollout_active"
        assert c.get("/healthz").json()["revision"] == 2


def test_the_rollout_a_write_starts_survives_a_restart(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", PROJECT)
    srv = ServerThread(project, tmp_path / "state")
    try:
        with srv.client() as c:
            r = c.put(
                "/v1/sources/app.cfl",
                params={"rollout_selector": "zone=a"},
                content=b"version = 2\n",
                headers={"If-Match": "1"},
            )
            assert r.status_code == 200, r.text
    finally:
        srv.stop()
    again = ServerThread(project, tmp_path / "state")
    try:
        with again.client() as c:
            assert version(c, as_client("svc-b", "zone=b")) == 1
            assert version(c, as_client("svc-a", "zone=a")) == 2
    finally:
        again.stop()
