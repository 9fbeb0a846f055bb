"""The configuration server on a real 3-member etcd cluster (issue 16): the etcd store
behind the `Store` interface, several `cflc serve --store etcd://…` processes sharing one
linear history, watches across servers, failover (the leader killed, quorum lost and
regained, a server killed), `cfglang.connect("etcd://…")`, `cflc publish --store`, and a
target too large for one etcd request.

The cluster (tests/etcd_cluster.py) is started once for the module and stopped after it;
each test uses a key prefix of its own, so tests share the cluster but not the data. Tests
that kill members restart them and wait for a healthy cluster before they end.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from httpx_sse import connect_sse

from tests.etcd_cluster import EtcdCluster, etcd_missing, serve_etcd, wait_for
from tests.server_util import REPO, stop_process, write_project

BASE = 'port = 8080\nname = "svc"\n'
PROJECT = {
    "cfl.toml": '[project]\ntargets = ["env/*.cfl"]\n',
    "base.cfl": BASE,
    "env/prod.cfl": 'extends "../base.cfl"\nreplicas = 3\n',
    "env/dev.cfl": 'extends "../base.cfl"\nreplicas = 1\n',
    "lib/other.cfl": "unused = true\n",
}

_missing = etcd_missing()
if _missing is not None:
    if os.environ.get("CI"):
        # CI installs etcd (.ci/run): a cluster test that cannot run there is a failure.
        raise RuntimeError(f"CI is set but the etcd cluster tests cannot run: {_missing}")
    pytest.skip(f"etcd cluster tests skipped: {_missing}", allow_module_level=True)

from cfglang.server.core import Service  # noqa: E402 (after the skip: etcd may be absent)
from cfglang.server.etcd import EtcdStore  # noqa: E402
from cfglang.server.store import Commit, StaleHead, StoreUnavailable  # noqa: E402


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    c = EtcdCluster(tmp_path_factory.mktemp("etcd"), 3)
    try:
        c.start_all()
        yield c
    finally:
        c.stop()


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix of the test's own (the cluster is shared by the module)."""
    return f"t-{request.node.name[:40]}-{time.monotonic_ns()}"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project", PROJECT)


class Servers:
    """`cflc serve --store etcd://…` processes on the cluster, killed at the end."""

    def __init__(self, tmp: Path, project: Path, store: str) -> None:
        self.tmp, self.project, self.store = tmp, project, store
        self.procs: list[Any] = []
        self.urls: list[str] = []

    def start(self) -> str:
        n = len(self.procs)
        proc, url = serve_etcd(self.project, self.tmp / f"state{n}", self.store)
        self.procs.append(proc)
        self.urls.append(url)
        return url

    def kill(self, i: int) -> None:
        stop_process(self.procs[i])

    def stop(self) -> None:
        for p in self.procs:
            stop_process(p)


@pytest.fixture
def servers(cluster: EtcdCluster, tmp_path: Path, project: Path, prefix: str) -> Iterator[Servers]:
    s = Servers(tmp_path, project, cluster.url(prefix, timeout=2, deadline=4))
    try:
        s.start()
        s.start()
        yield s
    finally:
        s.stop()


def put(url: str, path: str, text: str, base: int) -> httpx.Response:
    headers = {"If-Match": str(base)}
    return httpx.put(f"{url}/v1/sources/{path}", content=text.encode(), headers=headers, timeout=30)


def head(url: str) -> int:
    """The revision the server at ``url`` has applied (and serves). Not `/healthz`: that
    reads the store's head, which a server sharing the store may not have caught up to."""
    return int(httpx.get(f"{url}/v1/sources", timeout=10).json()["revision"])


class Events:
    """The revision ids of `GET /v1/watch/{target}` on one server, collected by a thread."""

    def __init__(
        self, url: str, target: str, after: int | None = None, client: dict[str, str] | None = None
    ) -> None:
        self.client_headers = dict(client or {})
        self.ids: list[int] = []
        self.error: BaseException | None = None
        self._open = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=60))
        self.thread = threading.Thread(target=self._run, args=(url, target, after), daemon=True)
        self.thread.start()
        assert self._open.wait(20), "the watch stream did not open"

    def _run(self, url: str, target: str, after: int | None) -> None:
        headers = dict(self.client_headers)
        if after is not None:
            headers["Last-Event-ID"] = str(after)
        try:
            with connect_sse(
                self._client, "GET", f"{url}/v1/watch/{target}", headers=headers
            ) as src:
                self._open.set()
                for ev in src.iter_sse():
                    if ev.event == "revision":
                        self.ids.append(int(ev.id))
        except BaseException as e:  # closed, or the server went away: the test decides
            self.error = e
            self._open.set()

    def wait(self, revision: int, timeout: float = 30) -> None:
        wait_for(f"event {revision} (have {self.ids})", lambda: revision in self.ids, timeout)

    def close(self) -> None:
        # A read blocked in the thread is not woken by this; the stream ends (and the
        # thread with it) when the fixture stops the servers, right after the test.
        self._client.close()


# ---- the store ------------------------------------------------------------------------------


def test_a_second_store_on_the_cluster_reads_what_the_first_stored(
    cluster: EtcdCluster, project: Path, prefix: str, tmp_path: Path
) -> None:
    a = EtcdStore.from_url(cluster.url(prefix))
    sa = Service(a, str(tmp_path / "a"))
    assert asyncio.run(sa.import_tree(str(project))) == 1
    b = EtcdStore.from_url(cluster.url(prefix))
    sb = Service(b, str(tmp_path / "b"))
    assert sb.head == 1
    assert sb.sources == PROJECT
    assert sorted(sb.outputs) == ["env/dev", "env/prod"]
    assert sb.outputs["env/prod"][1] == sa.outputs["env/prod"][1]
    assert [r.who for r in b.target_history("env/prod")] == ["import"]
    audit = b.audit()
    assert [(e.action, e.revision) for e in audit][:2] == [("import", 1), ("import", 1)]
    assert b.source("base.cfl") == (BASE, 1)
    assert b.source("nope.cfl") is None
    sa.close()
    sb.close()
    a.close()
    b.close()


def test_two_servers_racing_to_start_a_rollout_cannot_both_win(
    cluster: EtcdCluster, project: Path, prefix: str, tmp_path: Path
) -> None:
    """Two services on one prefix with no watch between them (the worst case of a race):
    the second to start a rollout of a target is refused with the first one's, and ending
    one that another server ended meanwhile is refused too; the store keeps the winner."""
    from cfglang.server.core import Refused

    a = EtcdStore.from_url(cluster.url(prefix))
    sa = Service(a, str(tmp_path / "a"))
    assert asyncio.run(sa.import_tree(str(project))) == 1
    asyncio.run(
        sa.write(
            1, {"env/prod.cfl": 'extends "../base.cfl"\nreplicas = 4\n'}, who="t", action="put"
        )
    )
    b = EtcdStore.from_url(cluster.url(prefix))
    sb = Service(b, str(tmp_path / "b"))  # loaded now: it knows revision 2, no rollout
    first = asyncio.run(sa.start_rollout("env/prod", {"selector": {"zone": "a"}}, who="x"))
    with pytest.raises(Refused) as lost:
        asyncio.run(sb.start_rollout("env/prod", {"percent": 50}, who="y"))
    assert lost.value.status == 409 and lost.value.code == "rollout_active"
    assert b.rollout("env/prod") == first and sb.rollout("env/prod") == first
    # b now knows it; a promotes; b's abort of the rollout a already ended is refused.
    asyncio.run(sa.end_rollout("env/prod", "promote", who="x"))
    with pytest.raises(Refused) as late:
        asyncio.run(sb.end_rollout("env/prod", "promote", who="y"))
    assert late.value.status == 409
    assert a.rollout("env/prod")["state"] == "promoted"
    assert [e.action for e in a.audit(target="env/prod")].count("rollout") == 1
    for x in (sa, sb, a, b):
        x.close()


def test_a_commit_against_an_old_head_is_stale(cluster: EtcdCluster, prefix: str) -> None:
    store = EtcdStore.from_url(cluster.url(prefix))
    first = Commit(0, time.time(), "t", "put", {"a.cfl": "a = 1\n"}, {})
    assert store.commit(first) == 1
    with pytest.raises(StaleHead) as e:
        store.commit(first)  # base 0 again
    assert e.value.current == 1
    assert store.commit(Commit(1, time.time(), "t", "delete", {"a.cfl": None}, {})) == 2
    with pytest.raises(StaleHead) as e:
        store.commit(Commit(1, time.time(), "t", "put", {"a.cfl": "a = 2\n"}, {}))
    assert e.value.current == 2
    assert store.sources(1) == {"a.cfl": "a = 1\n"}
    assert store.sources(2) == {}
    assert store.source("a.cfl", 2) is None
    store.close()


def test_no_member_answering_is_store_unavailable() -> None:
    from tests.etcd_cluster import free_ports

    ports = free_ports(2)
    hosts = ",".join(f"127.0.0.1:{p}" for p in ports)
    store = EtcdStore.from_url(f"etcd://{hosts}?timeout=0.5&deadline=1")
    start = time.monotonic()
    with pytest.raises(StoreUnavailable, match="no etcd member answered"):
        store.head()
    assert time.monotonic() - start < 5
    store.close()


def test_a_watch_from_a_compacted_revision_says_so(cluster: EtcdCluster, prefix: str) -> None:
    from cfglang.tools.etcd import Compacted

    store = EtcdStore.from_url(cluster.url(prefix))
    store.put_rollout("t", {"state": "none"})
    _, etcd_rev = store.head_at()
    store.client.call("/v3/kv/compaction", {"revision": str(etcd_rev)})

    async def first_batch() -> None:
        async for _ in store.client.watch(store.live, 1):
            break

    with pytest.raises(Compacted) as e:
        asyncio.run(first_batch())
    assert e.value.revision == etcd_rev
    store.close()


# ---- two servers ----------------------------------------------------------------------------


def test_concurrent_writers_through_two_servers_make_one_linear_history(
    servers: Servers,
) -> None:
    a, b = servers.urls
    n = 12
    results: list[tuple[int, str, httpx.Response]] = []
    lock = threading.Lock()

    def writer(i: int) -> None:
        # A third write files of their own (all stored), a third add a key of their own
        # to one file (stale ones merged), a third change one key of one file (one wins).
        kind = ("own", "merge", "same")[i % 3]
        if kind == "own":
            path, text = f"env/w{i}.cfl", f'extends "../base.cfl"\nreplicas = {i}\n'
        elif kind == "merge":
            path, text = "lib/other.cfl", f"unused = true\nk{i} = {i}\n"
        else:
            path, text = "env/prod.cfl", f'extends "../base.cfl"\nreplicas = {100 + i}\n'
        r = put((a, b)[i % 2], path, text, 1)
        with lock:
            results.append((i, kind, r))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == n
    ok = [(i, k, r) for i, k, r in results if r.status_code == 200]
    refused = [(i, k, r) for i, k, r in results if r.status_code == 409]
    assert len(ok) + len(refused) == n, [r.text for _, _, r in results]
    assert all(k == "same" for _, k, _ in refused)
    assert len([1 for _, k, _ in ok if k == "same"]) == 1  # one of the racing edits wins
    assert len([1 for _, k, _ in ok if k == "merge"]) == n // 3  # every addition merged
    revisions = sorted(r.json()["revision"] for _, _, r in ok)
    assert revisions == list(range(2, 2 + len(ok)))  # one each, no gap, no repeat
    for _, _, r in refused:
        assert r.json()["error"]["code"] == "conflict"
    # Both servers reach the same head and the same sources: nothing lost.
    last = revisions[-1]
    wait_for("both servers at the last revision", lambda: head(a) == head(b) == last)
    other = httpx.get(f"{b}/v1/sources/lib/other.cfl").text
    for i, k, _ in ok:
        if k == "merge":
            assert f"k{i} = {i}" in other
        if k == "own":
            assert httpx.get(f"{a}/v1/sources/env/w{i}.cfl").status_code == 200
    for url in (a, b):
        hist = httpx.get(f"{url}/v1/configs/env/prod/revisions").json()
        assert [h["revision"] for h in hist] == sorted(h["revision"] for h in hist)


def test_a_subscriber_of_server_a_sees_writes_made_through_server_b_in_order(
    servers: Servers,
) -> None:
    a, b = servers.urls
    events = Events(a, "env/prod")
    events.wait(1)
    revs = []
    for i in range(5):
        r = put(b, "env/prod.cfl", f'extends "../base.cfl"\nreplicas = {10 + i}\n', 1 + i)
        assert r.status_code == 200, r.text
        revs.append(r.json()["revision"])
    assert revs == [2, 3, 4, 5, 6]
    events.wait(6)
    assert events.ids == [1, 2, 3, 4, 5, 6]
    got = httpx.get(f"{a}/v1/configs/env/prod").json()
    assert got["replicas"] == 14
    events.close()


def test_a_rollout_started_through_one_server_holds_clients_of_the_other(
    servers: Servers,
) -> None:
    a, b = servers.urls
    assert put(a, "env/prod.cfl", 'extends "../base.cfl"\nreplicas = 9\n', 1).status_code == 200
    # /healthz reads the store's head; what b serves moves when b has caught up.
    wait_for(
        "b to serve revision 2",
        lambda: httpx.get(f"{b}/v1/configs/env/prod").headers.get("x-cfl-revision") == "2",
    )
    r = httpx.post(f"{a}/v1/configs/env/prod/rollouts", json={"selector": {"zone": "a"}})
    assert r.status_code == 201, r.text

    def replicas(url: str, zone: str) -> int:
        got = httpx.get(
            f"{url}/v1/configs/env/prod",
            headers={"X-Cfl-Client-Id": f"c-{zone}", "X-Cfl-Client-Labels": f"zone={zone}"},
        )
        return int(got.json()["replicas"])

    wait_for("b to hold zone b at the stable revision", lambda: replicas(b, "b") == 3)
    assert replicas(b, "a") == 9
    assert httpx.post(f"{a}/v1/configs/env/prod/rollouts/current/promote").status_code == 200
    wait_for("b to deliver the promoted revision", lambda: replicas(b, "b") == 9)


def test_a_write_that_starts_a_rollout_never_reaches_the_others_on_any_server(
    servers: Servers,
) -> None:
    """The revision and its rollout are one etcd transaction, and every server applies a
    batch's rollouts before its revision: a held client of the other server is never
    offered the new revision, a selected one gets it."""
    a, b = servers.urls
    held = Events(b, "env/prod", client={"X-Cfl-Client-Id": "c-b", "X-Cfl-Client-Labels": "zone=b"})
    chosen = Events(
        b, "env/prod", client={"X-Cfl-Client-Id": "c-a", "X-Cfl-Client-Labels": "zone=a"}
    )
    held.wait(1)
    chosen.wait(1)
    r = httpx.put(
        f"{a}/v1/sources/env/prod.cfl",
        params={"rollout_selector": "zone=a"},
        content=b'extends "../base.cfl"\nreplicas = 9\n',
        headers={"If-Match": "1"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.json()["rollouts"][0]["revision"] == 2
    chosen.wait(2)
    time.sleep(0.5)  # time for a wrong delivery to the held client to show
    assert held.ids == [1]
    assert httpx.post(f"{b}/v1/configs/env/prod/rollouts/current/promote").status_code == 200
    held.wait(2)
    assert held.ids == [1, 2] and chosen.ids == [1, 2]
    held.close()
    chosen.close()


# ---- failover -------------------------------------------------------------------------------


@pytest.fixture
def restore(cluster: EtcdCluster) -> Iterator[EtcdCluster]:
    """The cluster, with every member running again and healthy after the test."""
    yield cluster
    for i in range(cluster.size):
        if i not in cluster.alive():
            cluster.start(i)
    cluster.wait_healthy(60)


def prod(i: int) -> str:
    return f'extends "../base.cfl"\nreplicas = {i}\n'


def test_killing_the_etcd_leader_leaves_writes_and_watches_working(
    servers: Servers, restore: EtcdCluster
) -> None:
    a, b = servers.urls
    events = Events(a, "env/prod")
    assert put(b, "env/prod.cfl", prod(20), 1).status_code == 200
    events.wait(2)
    leader = restore.leader()
    restore.kill(leader)
    start = time.monotonic()
    r = put(b, "env/prod.cfl", prod(21), 2)  # the store retries through the election
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == 3
    took = time.monotonic() - start
    r = put(a, "env/prod.cfl", prod(22), 3)
    assert r.status_code == 200, r.text
    events.wait(4)
    assert events.ids == [1, 2, 3, 4]
    assert took < 15
    events.close()


def test_without_quorum_writes_are_503_reads_serve_the_last_good_and_all_resumes(
    servers: Servers, restore: EtcdCluster, tmp_path: Path
) -> None:
    import cfglang

    a, b = servers.urls
    events = Events(b, "env/prod")
    direct = cfglang.connect(servers.store, "env/prod", backoff=(0.05, 0.5), usage_interval=None)
    seen: list[int] = []
    direct.subscribe("", lambda u: seen.append(u.revision))
    assert direct.revision == 1
    assert put(a, "env/prod.cfl", prod(30), 1).status_code == 200
    wait_for("the etcd client at revision 2", lambda: direct.revision == 2)
    events.wait(2)
    # Two of three members gone: no quorum.
    survivors = restore.alive()
    restore.kill(survivors[1])
    restore.kill(survivors[2])
    r = put(a, "env/prod.cfl", prod(31), 2)
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["error"]["code"] == "unavailable" and "etcd" in body["error"]["message"]
    assert httpx.get(f"{a}/healthz", timeout=30).status_code == 503
    for url in (a, b):  # the last good configuration, from memory
        got = httpx.get(f"{url}/v1/configs/env/prod", timeout=10)
        assert got.status_code == 200 and got.json()["replicas"] == 30
    assert direct.current.config.replicas == 30
    # Quorum back. The refused write may still have been stored: the member left alone
    # may have been the leader, with the txn in its log (committed when the others came
    # back) - the 503 says so. Either way no revision is skipped, and every server and
    # client sees the same history.
    for i in range(restore.size):
        if i not in restore.alive():
            restore.start(i)
    restore.wait_healthy(60)
    wait_for("server a healthy again", lambda: httpx.get(f"{a}/healthz").status_code == 200)
    r = put(b, "lib/other.cfl", "unused = false\n", head(b))  # settles the log
    assert r.status_code == 200, r.text
    settled = r.json()["revision"]
    assert settled in (3, 4)
    late = settled == 4  # revision 3 is the write answered 503
    wait_for("a at the settled head", lambda: head(a) == settled)
    if late:
        assert "may still be applied" in body["error"]["message"]
        assert httpx.get(f"{a}/v1/configs/env/prod").json()["replicas"] == 31
    r = put(a, "env/prod.cfl", prod(32), settled)
    assert r.status_code == 200, r.text
    last = r.json()["revision"]
    assert last == settled + 1
    prod_revisions = [1, 2, *([3] if late else []), last]
    events.wait(last)
    assert events.ids == prod_revisions
    wait_for(f"the etcd client at revision {last}", lambda: direct.revision == last)
    assert seen == prod_revisions[1:]
    assert direct.current.config.replicas == 32
    direct.close()
    events.close()


def test_killing_a_server_moves_its_clients_to_the_other_with_no_revision_missed(
    servers: Servers,
) -> None:
    import cfglang

    a, b = servers.urls
    client = cfglang.connect([a, b], "env/prod", backoff=(0.05, 0.3), usage_interval=None)
    seen: list[int] = []
    client.subscribe("replicas", lambda u: seen.append(u.revision))
    assert client.url == a
    assert put(a, "env/prod.cfl", prod(40), 1).status_code == 200
    wait_for("revision 2", lambda: client.revision == 2)
    servers.kill(0)
    for i in range(3):
        assert put(b, "env/prod.cfl", prod(41 + i), 2 + i).status_code == 200
    wait_for("revision 5 through b", lambda: client.revision == 5)
    assert client.url == b
    assert seen == [2, 3, 4, 5]
    assert client.current.config.replicas == 43
    client.close()


# ---- cfglang.connect("etcd://…") and cflc publish --store ------------------------------------


def test_connect_to_etcd_follows_revisions_and_rollouts_and_reports_usage(
    servers: Servers,
) -> None:
    import cfglang

    a, _ = servers.urls
    zone_b = cfglang.connect(
        servers.store, "env/prod", labels={"zone": "b"}, client_id="direct-b", backoff=(0.05, 0.3)
    )
    updates: list[tuple[int, Any]] = []
    zone_b.subscribe("replicas", lambda u: updates.append((u.revision, u.new)))
    assert zone_b.current.config.replicas == 3
    assert put(a, "env/prod.cfl", prod(50), 1).status_code == 200
    wait_for("revision 2", lambda: zone_b.revision == 2)
    r = httpx.post(f"{a}/v1/configs/env/prod/rollouts", json={"selector": {"zone": "a"}})
    assert r.status_code == 201, r.text
    assert put(a, "env/prod.cfl", prod(51), 2).status_code == 200  # to zone a only
    time.sleep(1.0)  # (a negative: the held client must not move)
    assert zone_b.revision == 2
    assert httpx.post(f"{a}/v1/configs/env/prod/rollouts/current/promote").status_code == 200
    wait_for("revision 3 after the promote", lambda: zone_b.revision == 3)
    assert updates == [(2, 50), (3, 51)]
    assert zone_b.report_usage()
    usage = httpx.get(f"{a}/v1/configs/env/prod/usage").json()
    assert "replicas" not in usage["unread"] and "port" in usage["unread"]
    clients = httpx.get(f"{a}/v1/clients").json()
    assert {"client_id": "direct-b", "revision": 3} in [
        {"client_id": c["client_id"], "revision": c["revision"]} for c in clients
    ]
    zone_b.close()


def test_connect_to_etcd_starts_from_its_cache_while_etcd_is_unreachable(
    servers: Servers, tmp_path: Path
) -> None:
    import cfglang
    from tests.etcd_cluster import free_ports

    with pytest.raises(cfglang.ConfigError):
        cfglang.connect(servers.store, "env/nope", watch=False)
    dead = f"etcd://127.0.0.1:{free_ports(1)[0]}/x?timeout=0.3&deadline=0.5"
    with pytest.raises(cfglang.ConfigError, match="no etcd member answered"):
        cfglang.connect(dead, "env/prod", watch=False)  # no cache: the error
    first = cfglang.connect(servers.store, "env/prod", cache_dir=tmp_path / "c", watch=False)
    assert first.current.config.replicas == 3
    cached = Path(first._cache or "")
    first.close()
    # That cache under the name the unreachable URL's client looks for.
    offline_name = cached.name.replace(
        cached.name.split("--", 1)[0], quote(dead.split("://", 1)[1], safe="")
    )
    (tmp_path / "c" / offline_name).write_bytes(cached.read_bytes())
    offline = cfglang.connect(dead, "env/prod", cache_dir=tmp_path / "c", watch=False)
    assert offline.revision == 1 and offline.current.config.replicas == 3
    assert not offline.connected
    offline.close()


def publish(tree: Path, store: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, "-c", "from cfglang.cli import run; run()", "publish"),
            *("--store", store, "--project", str(tree)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_publish_to_etcd_validates_as_the_server_does(servers: Servers, tmp_path: Path) -> None:
    a, b = servers.urls
    tree = write_project(tmp_path / "tree", {**PROJECT, "env/prod.cfl": prod(60)})
    ok = publish(tree, servers.store)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "update env/prod.cfl" in ok.stdout and "published revision 2" in ok.stdout
    assert "~ replicas: 3 -> 60" in ok.stdout
    wait_for("b at revision 2", lambda: head(b) == 2)
    assert httpx.get(f"{b}/v1/configs/env/prod").json()["replicas"] == 60
    again = publish(tree, servers.store)
    assert again.returncode == 0 and "nothing to publish" in again.stdout
    bad = write_project(tmp_path / "bad", {**PROJECT, "env/prod.cfl": prod(61) + "port = \n"})
    refused = publish(bad, servers.store)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "does not compile" in refused.stderr and "env/prod.cfl:3" in refused.stderr
    assert head(a) == 2  # nothing stored


# ---- size -----------------------------------------------------------------------------------


def big_project(root: Path, n: int) -> Path:
    lines = ["services {"]
    for i in range(n):
        lines += [
            f"  svc_{i:05d} {{",
            f'    name = "svc-{i:05d}"',
            f"    port = {8000 + i}",
            f'    host = "svc-{i:05d}.prod.example.com"',
            f'    labels = {{ team = "team-{i % 17}"; tier = "{("web", "api", "db")[i % 3]}" }}',
            "  }",
        ]
    lines.append("}")
    files = {
        "cfl.toml": '[project]\ntargets = ["prod.cfl"]\n',
        "services.cfl": "\n".join(lines) + "\n",
        "prod.cfl": 'extends "services.cfl"\nreplicas = 3\n',
    }
    return write_project(root, files)


def test_a_target_of_10000_services_is_stored_past_etcds_request_limit(
    cluster: EtcdCluster, prefix: str, tmp_path: Path
) -> None:
    from cfglang.tools.etcd import CHUNK

    project = big_project(tmp_path / "big", 10_000)
    store = EtcdStore.from_url(cluster.url(prefix))
    service = Service(store, str(tmp_path / "s"), compile_timeout=300)
    assert asyncio.run(service.import_tree(str(project))) == 1
    out = service.outputs["prod"][1]
    size = sum(len((t or "").encode()) for t in out.formats.values()) + len(out.diffable)
    assert size > 3 * 1024 * 1024  # well over etcd's 1.5 MiB per request
    chunks = list(store.client.scan(f"{store.prefix}chunks/", keys_only=True))
    assert chunks, "the output was not staged as chunks"
    assert all(len(kv.value) <= CHUNK for kv in store.client.scan(f"{store.prefix}chunks/"))
    # Read back by another store: every format, byte for byte.
    other = EtcdStore.from_url(cluster.url(prefix))
    got = other.output("prod")
    assert got is not None and got[0] == 1 and got[1] == out
    assert other.sources(1) == service.sources
    # A second revision of it is one commit like any other.
    text = service.sources["prod.cfl"].replace("replicas = 3", "replicas = 4")
    result = asyncio.run(service.write(1, {"prod.cfl": text}, who="t", action="put"))
    assert result.revision == 2 and result.targets == ("prod",)
    again = other.output("prod")
    assert again is not None and json.loads(again[1].formats["json"] or "")["replicas"] == 4
    service.close()
    store.close()
    other.close()
