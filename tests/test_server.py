"""`cflc serve` against a real uvicorn on 127.0.0.1 (SERVER.md): reads and ETags, SSE and
long poll, validated writes, preconditions, concurrent writers, rollback, bad input."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.server_util import ServerThread, write_project

BASE = 'port = 8080\nname = "svc"\npassword = secret("hunter2")\n'
PROJECT = {
    "cfl.toml": '[project]\ntargets = ["env/*.cfl"]\n',
    "base.cfl": BASE,
    "env/prod.cfl": 'extends "../base.cfl"\nreplicas = 3\n',
    "env/dev.cfl": 'extends "../base.cfl"\nreplicas = 1\n',
    "lib/other.cfl": "unused = true\n",
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    project = write_project(tmp_path / "project", PROJECT)
    srv = ServerThread(project, tmp_path / "state", max_body=64 * 1024, ping=1)
    yield srv
    srv.stop()


@pytest.fixture
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def put(http: httpx.Client, path: str, text: str, base: int | str | None) -> httpx.Response:
    headers = {} if base is None else {"If-Match": str(base)}
    return http.put(f"/v1/sources/{path}", content=text.encode(), headers=headers)


def outcome(r: httpx.Response) -> dict[str, object]:
    """A write's answer without its warnings (the plain-text secret in BASE warns)."""
    assert r.status_code == 200, r.text
    return {k: v for k, v in r.json().items() if k != "warnings"}


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return dict(body["error"])


# ---- reads ----------------------------------------------------------------------------------


def test_first_start_imports_the_working_tree_as_revision_1(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok", "revision": 1}
    targets = http.get("/v1/configs").json()
    assert [(t["target"], t["revision"], t["changed_by"]) for t in targets] == [
        ("env/dev", 1, "import"),
        ("env/prod", 1, "import"),
    ]
    listing = http.get("/v1/sources").json()
    assert listing == {
        "revision": 1,
        "files": ["base.cfl", "cfl.toml", "env/dev.cfl", "env/prod.cfl", "lib/other.cfl"],
    }


@pytest.mark.parametrize("url", ["/v1/configs/env%2Fprod", "/v1/configs/env/prod"])
def test_a_config_by_either_spelling_of_its_name_with_etag_and_304(
    http: httpx.Client, url: str
) -> None:
    r = http.get(url)
    assert r.status_code == 200
    assert r.headers["etag"] == '"1-json"'
    assert r.json() == {"port": 8080, "name": "svc", "password": "hunter2", "replicas": 3}
    again = http.get(url, headers={"If-None-Match": '"1-json"'})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == '"1-json"'
    other = http.get(url, headers={"If-None-Match": '"1-yaml"'})
    assert other.status_code == 200


def test_each_format_has_its_own_etag(http: httpx.Client) -> None:
    r = http.get("/v1/configs/env/prod", params={"format": "yaml"})
    assert r.status_code == 200 and r.headers["etag"] == '"1-yaml"'
    assert "replicas: 3" in r.text
    env = http.get("/v1/configs/env/prod", params={"format": "env"})
    assert "REPLICAS=3" in env.text
    assert_error(http.get("/v1/configs/env/prod", params={"format": "xml"}), 400, "bad_format")


def test_history_a_revision_and_the_semantic_diff_with_secrets_redacted(
    http: httpx.Client,
) -> None:
    text = BASE.replace("8080", "9090").replace("hunter2", "swordfish")
    r = put(http, "base.cfl", text, 1)
    assert r.status_code == 200, r.text
    assert outcome(r) == {"revision": 2, "targets": ["env/dev", "env/prod"], "merged": False}
    hist = http.get("/v1/configs/env/prod/revisions").json()
    assert [h["revision"] for h in hist] == [1, 2]
    assert hist[1]["action"] == "put"
    old = http.get("/v1/configs/env/prod/revisions/1")
    assert old.json()["port"] == 8080 and old.headers["etag"] == '"1-json"'
    assert http.get("/v1/configs/env/prod", params={"revision": 1}).json()["port"] == 8080
    changes = http.get("/v1/configs/env/prod/diff", params={"from": 1, "to": 2}).json()
    assert changes == [
        {"op": "~", "path": "port", "old": 8080, "new": 9090},
        {"op": "~", "path": "password", "old": "<secret>", "new": "<secret>"},
    ]
    assert "swordfish" not in json.dumps(changes) and "hunter2" not in json.dumps(changes)
    assert_error(http.get("/v1/configs/env/prod/revisions/9"), 404, "not_found")


def test_a_target_keeps_its_revision_when_a_write_does_not_change_it(
    http: httpx.Client,
) -> None:
    prod = http.get("/v1/sources/env/prod.cfl").text
    assert put(http, "env/prod.cfl", prod.replace("3", "4"), 1).status_code == 200
    configs = {t["target"]: t["revision"] for t in http.get("/v1/configs").json()}
    assert configs == {"env/dev": 1, "env/prod": 2}
    # An edit that changes no compiled output (a comment) makes a revision of the sources.
    r = put(http, "lib/other.cfl", "# nothing\nunused = true\n", 2)
    assert outcome(r) == {"revision": 3, "targets": [], "merged": False}
    assert http.get("/v1/configs/env/dev").headers["etag"] == '"1-json"'


def test_sources_with_etags_and_at_a_revision(http: httpx.Client) -> None:
    r = http.get("/v1/sources/base.cfl")
    assert r.text == BASE and r.headers["etag"] == '"1"'
    assert http.get("/v1/sources/base.cfl", headers={"If-None-Match": '"1"'}).status_code == 304
    put(http, "base.cfl", BASE + "extra = 1\n", 1)
    assert http.get("/v1/sources/base.cfl").headers["etag"] == '"2"'
    assert http.get("/v1/sources/base.cfl", params={"revision": 1}).text == BASE
    assert_error(http.get("/v1/sources/nope.cfl"), 404, "not_found")


# ---- writes ---------------------------------------------------------------------------------


def test_a_failing_change_is_422_with_json_diagnostics_and_nothing_is_stored(
    http: httpx.Client,
) -> None:
    r = put(http, "base.cfl", "port = \n", 1)
    err = assert_error(r, 422, "invalid")
    diags = err["details"]
    assert isinstance(diags, list) and len(diags) == 1
    d = diags[0]
    assert d["code"] == "E0001" and d["severity"] == "error"
    assert (d["file"], d["line"]) == ("base.cfl", 1)
    assert {"message", "column", "end_line", "end_column", "notes"} <= set(d)
    # A type error in one target refuses the change too.
    bad = put(http, "env/prod.cfl", 'extends "../base.cfl"\nreplicas = 1 + "x"\n', 1)
    assert_error(bad, 422, "invalid")
    assert http.get("/healthz").json()["revision"] == 1
    assert http.get("/v1/sources/base.cfl").text == BASE
    assert [h["revision"] for h in http.get("/v1/configs/env/prod/revisions").json()] == [1]


def test_if_match_missing_is_428_and_a_stale_write_is_merged_or_409(
    http: httpx.Client,
) -> None:
    assert_error(put(http, "base.cfl", BASE, None), 428, "precondition_required")
    assert put(http, "base.cfl", BASE + "a = 1\n", '"1"').status_code == 200
    # Stale (base 1, base.cfl changed in 2), but the two edits touch different keys: the
    # three-way merge is compiled, checked and stored, and the answer says it was merged.
    r = put(http, "base.cfl", BASE.replace("8080", "9090") + "b = 2\n", "1")
    assert r.status_code == 200, r.text
    assert outcome(r) == {"revision": 3, "targets": ["env/dev", "env/prod"], "merged": True}
    text = http.get("/v1/sources/base.cfl").text
    assert "port = 9090\n" in text and "a = 1\n" in text and "b = 2\n" in text
    prod = http.get("/v1/configs/env/prod").json()
    assert (prod["port"], prod["a"], prod["b"]) == (9090, 1, 2)
    # Overlapping edits of one key: 409 with the structured conflict and nothing stored.
    err = assert_error(put(http, "base.cfl", BASE.replace("8080", "7070"), "1"), 409, "conflict")
    assert err["details"] == {
        "current": 3,
        "conflicts": [
            {
                "file": "base.cfl",
                "path": "port",
                "base": "port = 8080",
                "theirs": "port = 9090",
                "yours": "port = 7070",
            }
        ],
    }
    assert http.get("/healthz").json()["revision"] == 3
    assert http.get("/v1/sources/base.cfl").text == text
    # A merge that does not compile is refused like any failing change.
    bad = put(http, "base.cfl", BASE + 'c = 1 + "x"\n', "1")
    assert_error(bad, 422, "invalid")
    assert http.get("/healthz").json()["revision"] == 3
    # A stale base is fine for a file nobody changed since: its ETag is still "1".
    r = put(http, "env/dev.cfl", 'extends "../base.cfl"\nreplicas = 2\n', '"1-json"')
    assert r.status_code == 200 and r.json()["revision"] == 4
    assert_error(put(http, "base.cfl", BASE, 99), 412, "bad_revision")


def test_delete_and_a_multi_file_change_in_one_revision(http: httpx.Client) -> None:
    r = http.post(
        "/v1/changes",
        json={
            "base": 1,
            "files": {
                "env/qa.cfl": 'extends "../base.cfl"\nreplicas = 2\n',
                "env/dev.cfl": None,
            },
        },
    )
    assert r.status_code == 200, r.text
    assert outcome(r) == {"revision": 2, "targets": ["env/dev", "env/qa"], "merged": False}
    assert [t["target"] for t in http.get("/v1/configs").json()] == ["env/prod", "env/qa"]
    assert_error(http.get("/v1/configs/env/dev"), 404, "not_found")
    assert http.get("/v1/configs/env/dev/revisions/1").json()["replicas"] == 1
    gone = http.delete("/v1/sources/env/prod.cfl", headers={"If-Match": "2"})
    assert gone.status_code == 200 and gone.json()["targets"] == ["env/prod"]
    assert_error(
        http.delete("/v1/sources/env/prod.cfl", headers={"If-Match": "3"}), 404, "not_found"
    )
    # Deleting a file others extend is refused like any failing change.
    assert_error(http.delete("/v1/sources/base.cfl", headers={"If-Match": "3"}), 422, "invalid")


def test_n_concurrent_writers_are_all_accounted_for_and_history_is_linear(
    server: ServerThread,
) -> None:
    n = 12
    results: list[tuple[int, httpx.Response]] = []
    lock = threading.Lock()

    def writer(i: int) -> None:
        # Half write files of their own (all succeed), half race on one file (one wins).
        path = f"env/w{i}.cfl" if i % 2 == 0 else "env/prod.cfl"
        text = f'extends "../base.cfl"\nreplicas = {i + 10}\n'
        with server.client() as c:
            r = put(c, path, text, 1)
        with lock:
            results.append((i, r))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [(i, r) for i, r in results if r.status_code == 200]
    refused = [(i, r) for i, r in results if r.status_code == 409]
    assert len(ok) + len(refused) == n
    assert sorted(i for i, _ in ok if i % 2 == 1) != [] and len([i for i, _ in ok if i % 2]) == 1
    assert all(i % 2 == 1 for i, _ in refused) and len(refused) == n // 2 - 1
    revisions = sorted(r.json()["revision"] for _, r in ok)
    assert revisions == list(range(2, 2 + len(ok)))  # one each, no gap, no repeat
    with server.client() as c:
        assert c.get("/healthz").json()["revision"] == 1 + len(ok)
        for i, r in ok:
            target = f"env/w{i}" if i % 2 == 0 else "env/prod"
            assert c.get(f"/v1/configs/{target}").json()["replicas"] == i + 10
            assert r.json()["targets"] == [target]


def test_rollback_makes_a_new_revision_equal_to_an_old_one(http: httpx.Client) -> None:
    put(http, "base.cfl", BASE.replace("8080", "1"), 1)
    put(http, "env/prod.cfl", 'extends "../base.cfl"\nreplicas = 9\n', 2)
    r = http.post("/v1/configs/env/prod/rollback", params={"to": 1})
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == 4 and "env/prod" in r.json()["targets"]
    assert (
        http.get("/v1/configs/env/prod").json()
        == http.get("/v1/configs/env/prod/revisions/1").json()
    )
    assert http.get("/v1/configs/env/prod").headers["etag"] == '"4-json"'
    hist = http.get("/v1/configs/env/prod/revisions").json()
    assert [(h["revision"], h["action"]) for h in hist] == [
        (1, "import"),
        (2, "put"),
        (3, "put"),
        (4, "rollback"),
    ]
    assert_error(http.post("/v1/configs/env/prod/rollback", params={"to": 99}), 404, "not_found")
    assert_error(http.post("/v1/configs/nope/rollback", params={"to": 1}), 404, "not_found")


# ---- bad input ------------------------------------------------------------------------------


BAD = [
    ("GET", "/v1/configs/nope", {}, b"", 404, "not_found"),
    ("GET", "/v1/configs/env/prod?revision=x", {}, b"", 400, "bad_query"),
    ("GET", "/v1/configs/env/prod/diff", {}, b"", 400, "bad_query"),
    ("GET", "/v1/nothing", {}, b"", 404, "not_found"),
    ("DELETE", "/v1/configs", {}, b"", 405, "method_not_allowed"),
    ("PUT", "/v1/sources/..%2F..%2Fetc%2Fpasswd", {"If-Match": "1"}, b"x = 1", 400, "bad_path"),
    ("PUT", "/v1/sources/a/%2E%2E/%2E%2E/x.cfl", {"If-Match": "1"}, b"x = 1", 400, "bad_path"),
    ("PUT", "/v1/sources/.git/config", {"If-Match": "1"}, b"x = 1", 400, "bad_path"),
    ("PUT", "/v1/sources/a%5Cb.cfl", {"If-Match": "1"}, b"x = 1", 400, "bad_path"),
    ("PUT", "/v1/sources/a.cfl", {"If-Match": "one"}, b"x = 1", 400, "bad_header"),
    ("PUT", "/v1/sources/a.cfl", {"If-Match": "1"}, b"\xff\xfe", 400, "bad_body"),
    ("PUT", "/v1/sources/a.cfl", {"If-Match": "1"}, b"x = " + b"1" * 70000, 413, "too_large"),
    ("POST", "/v1/changes", {}, b"{not json", 400, "bad_json"),
    ("POST", "/v1/changes", {}, b'{"files": {}}', 400, "bad_body"),
    ("POST", "/v1/changes", {}, b'{"base": 1, "files": {"a.cfl": 3}}', 400, "bad_body"),
    ("POST", "/v1/changes", {}, b'{"base": 1, "files": {"/etc/x": "a"}}', 400, "bad_path"),
    ("GET", "/v1/watch/env/prod", {"Last-Event-ID": "zz"}, b"", 400, "bad_header"),
    ("GET", "/v1/watch/env/prod?wait=-1", {}, b"", 400, "bad_query"),
    ("GET", "/v1/watch/nope?wait=0", {}, b"", 404, "not_found"),
]


@pytest.mark.parametrize(("method", "url", "headers", "body", "status", "code"), BAD)
def test_bad_input_is_a_4xx_json_error_and_stores_nothing(
    http: httpx.Client,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
    code: str,
) -> None:
    r = http.request(method, url, headers=headers, content=body)
    assert_error(r, status, code)
    assert http.get("/healthz").json() == {"status": "ok", "revision": 1}
    assert http.get("/v1/sources").json()["files"] == sorted(PROJECT)


def test_a_runaway_edit_hits_the_wall_clock_limit_and_the_server_keeps_serving(
    tmp_path: Path,
) -> None:
    project = write_project(tmp_path / "project", PROJECT)
    srv = ServerThread(project, tmp_path / "state", compile_timeout=0.3)
    try:
        with srv.client() as c:
            slow = "n = len([[i * j for j in range(1000)] for i in range(1000)])\n"
            r = put(c, "base.cfl", BASE + slow, 1)
            assert r.status_code == 422, r.text
            assert r.json()["error"]["code"] in ("compile_timeout", "invalid")
            assert c.get("/v1/configs/env/prod").status_code == 200
            assert c.get("/healthz").json()["revision"] == 1
    finally:
        srv.stop()


# ---- push -----------------------------------------------------------------------------------


def read_events(resp: httpx.Response, count: int) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    for line in resp.iter_lines():
        if line == "":
            if "event" in cur:
                events.append(cur)
                if len(events) == count:
                    return events
            cur = {}
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        cur[key] = value.removeprefix(" ")
    return events


def test_sse_delivers_every_revision_and_last_event_id_resumes(server: ServerThread) -> None:
    got: list[dict[str, str]] = []
    ready = threading.Event()

    def listen() -> None:
        with server.client() as c, c.stream("GET", "/v1/watch/env%2Fprod") as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            ready.set()
            got.extend(read_events(resp, 3))

    t = threading.Thread(target=listen)
    t.start()
    assert ready.wait(10)
    with server.client() as c:
        for i, rev in ((5, 1), (6, 2)):
            text = f'extends "../base.cfl"\nreplicas = {i}\n'
            assert put(c, "env/prod.cfl", text, rev).status_code == 200
        t.join(20)
        assert [(e["id"], e["event"]) for e in got] == [
            ("1", "revision"),
            ("2", "revision"),
            ("3", "revision"),
        ]
        assert json.loads(got[2]["data"]) == {
            "target": "env/prod",
            "revision": 3,
            "etag": '"3-json"',
        }
        # A client that saw revision 1 resumes and gets 2 and 3, none missed.
        with c.stream("GET", "/v1/watch/env/prod", headers={"Last-Event-ID": "1"}) as resp:
            assert [e["id"] for e in read_events(resp, 2)] == ["2", "3"]


def test_long_poll_returns_the_next_revision_or_304(server: ServerThread) -> None:
    with server.client() as c:
        r = c.get("/v1/watch/env/prod", params={"wait": 0.2, "after": 1})
        assert r.status_code == 304
        r = c.get("/v1/watch/env/prod", params={"wait": 1, "after": 0})
        assert r.json() == {"target": "env/prod", "revision": 1, "etag": '"1-json"'}
        box: list[httpx.Response] = []

        def poll() -> None:
            with server.client() as c2:
                box.append(c2.get("/v1/watch/env/prod", params={"wait": 10, "after": 1}))

        t = threading.Thread(target=poll)
        t.start()
        assert put(c, "env/prod.cfl", 'extends "../base.cfl"\nreplicas = 7\n', 1).status_code == 200
        t.join(15)
        assert box and box[0].json()["revision"] == 2


# ---- observability --------------------------------------------------------------------------


def test_metrics_parse_as_prometheus_text(http: httpx.Client) -> None:
    http.get("/v1/configs/env/prod")
    http.get("/v1/configs/nope")
    put(http, "env/prod.cfl", 'extends "../base.cfl"\nreplicas = 8\n', 1)
    r = http.get("/metrics")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    requests = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in families["cfl_requests"].samples
        if s.name == "cfl_requests_total"
    }
    assert requests[("/v1/configs/{target}", "200")] == 1
    assert requests[("/v1/configs/{target}", "404")] == 1
    assert requests[("/v1/sources/{path}", "200")] == 1
    assert [s.value for s in families["cfl_revision"].samples] == [2]
    count = [s for s in families["cfl_compile_seconds"].samples if s.name.endswith("_count")]
    assert count[0].value >= 1
    assert "cfl_watchers" in families


def test_openapi_clients_and_audit(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/v1/configs/{target}" in spec["paths"]
    http.get(
        "/v1/configs/env/prod",
        headers={"X-Cfl-Client-Id": "svc-1", "X-Cfl-Client-Labels": "zone=a, tier=web"},
    )
    clients = http.get("/v1/clients").json()
    assert [(c["client_id"], c["labels"], c["target"], c["revision"]) for c in clients] == [
        ("svc-1", {"zone": "a", "tier": "web"}, "env/prod", 1)
    ]
    put(http, "base.cfl", BASE.replace("hunter2", "swordfish"), 1)
    entries = http.get("/v1/audit", params={"target": "env/prod"}).json()
    assert [(e["action"], e["revision"]) for e in entries] == [("import", 1), ("put", 2)]
    assert entries[1]["detail"]["diff"] == [
        {"op": "~", "path": "password", "old": "<secret>", "new": "<secret>"}
    ]
    assert "swordfish" not in json.dumps(entries)
    by_path = http.get("/v1/audit", params={"path": "base.cfl"}).json()
    assert [e["revision"] for e in by_path] == [1, 2]


def test_usage_lists_the_keys_nobody_read(http: httpx.Client) -> None:
    client = {"X-Cfl-Client-Id": "svc-1"}
    r = http.post(
        "/v1/usage", json={"target": "env/prod", "keys": ["port", "name"]}, headers=client
    )
    assert r.status_code == 200, r.text
    report = http.get("/v1/configs/env/prod/usage").json()
    assert report["unread"] == ["password", "replicas"] and report["read"] == 2
    http.post("/v1/usage", json={"target": "env/prod", "keys": ["replicas"]}, headers=client)
    assert http.get("/v1/configs/env/prod/usage", params={"since": "1h"}).json()["unread"] == [
        "password"
    ]
    # Reads older than the window do not count.
    assert len(http.get("/v1/configs/env/prod/usage", params={"since": 4e9}).json()["unread"]) == 4
    assert_error(
        http.post("/v1/usage", json={"target": "env/prod", "keys": ["x"]}), 400, "bad_header"
    )
    assert_error(http.post("/v1/usage", json={"keys": 1}, headers=client), 400, "bad_body")
    assert_error(http.get("/v1/configs/env/prod/usage", params={"since": "soon"}), 400, "bad_query")


def test_a_restart_serves_the_stored_revisions_and_watchers_resume(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", PROJECT)
    srv = ServerThread(project, tmp_path / "state")
    try:
        with srv.client() as c:
            for i in (1, 2):
                text = f'extends "../base.cfl"\nreplicas = {10 + i}\n'
                assert put(c, "env/prod.cfl", text, i).status_code == 200
    finally:
        srv.stop()
    # The working tree changed meanwhile: a restart ignores it and serves the store.
    (project / "env" / "prod.cfl").write_text("broken = \n", encoding="utf-8")
    srv = ServerThread(project, tmp_path / "state")
    try:
        with srv.client() as c:
            assert c.get("/healthz").json()["revision"] == 3
            r = c.get("/v1/configs/env/prod")
            assert r.json()["replicas"] == 12 and r.headers["etag"] == '"3-json"'
            with c.stream("GET", "/v1/watch/env/prod", headers={"Last-Event-ID": "1"}) as resp:
                assert [e["id"] for e in read_events(resp, 2)] == ["2", "3"]
    finally:
        srv.stop()


def test_healthz_is_503_while_the_store_is_unavailable(server: ServerThread) -> None:
    with server.client() as c:
        server.store._db.close()  # the database gone from under the server
        r = c.get("/healthz")
        assert_error(r, 503, "unavailable")
        assert c.get("/v1/configs/env/prod").status_code == 200  # the head is in memory
        assert_error(put(c, "lib/other.cfl", "unused = false\n", 1), 503, "unavailable")
        # (reopened, so the fixture can close it)
        server.store._db = sqlite3.connect(server.store.path, check_same_thread=False)


def test_a_chunked_body_over_the_limit_is_413_and_nothing_is_stored(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"x = 1\n"
        for _ in range(100):
            yield b"# " + b"y" * 1000 + b"\n"

    r = http.put("/v1/sources/big.cfl", content=chunks(), headers={"If-Match": "1"})
    assert_error(r, 413, "too_large")
    assert http.get("/healthz").json()["revision"] == 1
    assert_error(http.get("/v1/sources/big.cfl"), 404, "not_found")
