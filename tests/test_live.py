"""`cfglang.live`: snapshots, subscriptions, errors and threads, with real file events.

Waits poll a condition with a generous deadline; no sleep is an assertion. "Nothing
else fired" is checked after a later change has been delivered: revisions are delivered
in order, so anything due for an earlier revision would already have been recorded.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from file_events import DEADLINE, wait_until, write

import cfglang
from cfglang.tools.live import LiveConfig, Update, parse_path

BASE = """\
db { host = "db-1"; port = 5432; pool = 10 }
cache { size = 64 }
services {
  a { replicas = 1 }
  b { replicas = 1 }
}
"""


def base(host: str = "db-1", size: int = 64, a: int = 1, b: int = 1) -> str:
    return (
        BASE.replace('"db-1"', f'"{host}"')
        .replace("size = 64", f"size = {size}")
        .replace("a { replicas = 1 }", f"a {{ replicas = {a} }}")
        .replace("b { replicas = 1 }", f"b {{ replicas = {b} }}")
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "base.cfl").write_text(base())
    (tmp_path / "app.cfl").write_text('extends "base.cfl"\nname = "app"\n')
    return tmp_path


def test_snapshot_is_immutable_and_numbered(project: Path) -> None:
    with cfglang.live(str(project / "app.cfl"), watch=False) as lc:
        snap = lc.current
        assert snap.revision == 1 and lc.revision == 1
        assert snap.config.db.port == 5432
        assert snap.get("services.a.replicas") == 1
        assert snap.get("nope.x", "dflt") == "dflt"
        assert "db.host" in snap and "db.nope" not in snap
        with pytest.raises(AttributeError):
            snap.config.db.port = 1  # type: ignore[misc]
        with pytest.raises(AttributeError):
            snap.revision = 2  # type: ignore[misc]


def test_current_reads_like_config(project: Path) -> None:
    (project / "app.cfl").write_text(
        'extends "base.cfl"\nname = "app"\nrevision = "r7"\n"app.json" = 1\n'
    )
    with cfglang.live(str(project / "app.cfl"), watch=False) as lc:
        cur = lc.current
        assert cur["db"]["host"] == "db-1" and cur.db.host == "db-1"
        assert cur.services.a.replicas == 1 and cur["services"]["b"]["replicas"] == 1
        assert isinstance(cur.db, cfglang.Config) and cur.db == cur.config.db
        assert list(cur) == list(cur.config) == list(cur.keys())
        assert len(cur) == len(cur.config) and dict(cur.items()) == dict(cur.config.items())
        assert list(cur.values()) == list(cur.config.values())
        assert cur.to_dict() == cur.config.to_dict()
        assert cur["app.json"] == 1  # a key that is not a path
        # The snapshot's own attributes win; the field is read by item.
        assert cur.revision == 1 and cur["revision"] == "r7"
        with pytest.raises(AttributeError, match="no field `nope`"):
            _ = cur.nope
        with pytest.raises(KeyError):
            _ = cur["nope"]
        with pytest.raises(AttributeError):
            cur.db = 1  # type: ignore[misc]
        assert cur.get("db.port") == 5432  # `get` stays a path lookup


def test_first_compile_error_raises(tmp_path: Path) -> None:
    (tmp_path / "bad.cfl").write_text("x = = 1\n")
    with pytest.raises(cfglang.ConfigError):
        cfglang.live(str(tmp_path / "bad.cfl"))


@pytest.mark.parametrize("poll", [False, True], ids=["os-events", "polling"])
def test_subscribers_fire_exactly_for_changed_prefixes(project: Path, poll: bool) -> None:
    got: list[tuple[str, int]] = []
    lock = threading.Lock()

    def record(u: Update) -> None:
        with lock:
            got.append((u.path, u.revision))

    with cfglang.live(str(project / "app.cfl"), poll=poll) as lc:
        for prefix in (
            "db",
            "db.host",
            "db.port",
            "cache",
            "services",
            "services.a",
            "services.b",
            "",
            "name",
        ):
            lc.subscribe(prefix, record)
        write(project / "base.cfl", base(host="db-2"))
        wait_until(lambda: lc.revision == 2, "revision 2")
        write(project / "base.cfl", base(host="db-2", a=3))
        wait_until(lambda: lc.revision == 3, "revision 3")
        write(project / "base.cfl", base(host="db-2", a=3, size=65))
        wait_until(lambda: lc.revision == 4, "revision 4")
        wait_until(lambda: ("cache", 4) in got, "the cache update")
    assert got == [
        ("db", 2),
        ("db.host", 2),
        ("", 2),
        ("services", 3),
        ("services.a", 3),
        ("", 3),
        ("cache", 4),
        ("", 4),
    ]


def test_update_values_and_four_argument_callbacks(project: Path) -> None:
    seen: list[Any] = []
    with cfglang.live(str(project / "app.cfl")) as lc:
        lc.subscribe(
            "db", lambda path, old, new, revision: seen.append((path, old.host, new.host, revision))
        )
        write(project / "base.cfl", base(host="db-9"))
        wait_until(lambda: seen, "the update")
    assert seen == [("db", "db-1", "db-9", 2)]


def test_failing_callback_does_not_stop_others(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    got: list[int] = []

    def boom(_u: Update) -> None:
        raise RuntimeError("subscriber bug")

    with cfglang.live(str(project / "app.cfl")) as lc:
        lc.subscribe("db", boom)
        lc.subscribe("db", lambda u: got.append(u.revision))
        write(project / "base.cfl", base(host="db-3"))
        wait_until(lambda: got == [2], "the second subscriber")
    assert "subscriber bug" in caplog.text


def test_broken_edit_reports_and_keeps_last_good(project: Path) -> None:
    errors: list[cfglang.ConfigError] = []
    got: list[Update] = []
    with cfglang.live(str(project / "app.cfl")) as lc:
        lc.on_error(errors.append)
        lc.subscribe("db", got.append)
        good = lc.current
        write(project / "base.cfl", "db { host = = }\n")
        wait_until(lambda: errors, "the error report")
        assert errors[0].diagnostics[0].code == "E0001"
        assert lc.current is good
        write(project / "base.cfl", base(host="db-4"))
        wait_until(lambda: got, "the recovery")
    assert [(u.old.host, u.new.host, u.revision) for u in got] == [("db-1", "db-4", 2)]


def test_no_change_no_revision_and_removed_subtrees(project: Path) -> None:
    got: list[Update] = []
    with cfglang.live(str(project / "app.cfl"), watch=False) as lc:
        lc.subscribe("services.b", got.append)
        lc.subscribe("services.b.replicas", got.append)
        lc.subscribe("cache.size", got.append)
        (project / "base.cfl").write_text("# only a comment\n" + base())
        assert not lc.reload()
        assert lc.revision == 1
        (project / "base.cfl").write_text(base().replace("  b { replicas = 1 }\n", ""))
        assert lc.reload()
        # A subtree that disappears is reported with new=None; so is a path below it.
        assert [(u.path, u.new, u.revision) for u in got] == [
            ("services.b", None, 2),
            ("services.b.replicas", None, 2),
        ]
        assert got[0].old.replicas == 1


def test_cancel_and_parse_path(project: Path) -> None:
    got: list[Update] = []
    with cfglang.live(str(project / "app.cfl"), watch=False) as lc:
        sub = lc.subscribe("db", got.append)
        sub.cancel()
        (project / "base.cfl").write_text(base(host="z"))
        assert lc.reload() and got == []
    assert parse_path('services.a["max-conns"][2]') == ("services", "a", "max-conns", 2)
    assert parse_path("") == ()
    with pytest.raises(ValueError):
        parse_path("a..b")


def test_concurrent_readers_and_subscribers(project: Path) -> None:
    """Readers on several threads always see a whole snapshot (host and pool move
    together); subscribers registered from several threads each see every revision once,
    in order, with values that match the revision."""
    (project / "base.cfl").write_text(
        'db { gen = 0; host = "db-$<gen>"; pool = gen * 10 }\nother = 1\n'
    )
    edits = 6
    stop = threading.Event()
    problems: list[str] = []
    per_sub: dict[int, list[int]] = {}
    lock = threading.Lock()
    lc = cfglang.live(str(project / "app.cfl"))
    barrier = threading.Barrier(4)

    def subscriber(i: int) -> None:
        barrier.wait()

        def cb(u: Update) -> None:
            gen = u.new.gen
            if u.new.host != f"db-{gen}" or u.new.pool != gen * 10:
                problems.append(f"half-applied update {u}")
            if lc.current.revision < u.revision:
                problems.append("current is older than the delivered revision")
            with lock:
                per_sub.setdefault(i, []).append(u.revision)
            time.sleep(random.random() / 100)  # slow subscribers must not reorder anything

        lc.subscribe("db", cb)

    def reader() -> None:
        last = 0
        while not stop.is_set():
            snap = lc.current
            gen = snap.config.db.gen
            if snap.config.db.host != f"db-{gen}" or snap.config.db.pool != gen * 10:
                problems.append("torn snapshot")
            if snap.revision < last:
                problems.append("revision went back")
            last = snap.revision

    subs = [threading.Thread(target=subscriber, args=(i,)) for i in range(4)]
    readers = [threading.Thread(target=reader) for _ in range(3)]
    try:
        for t in subs + readers:
            t.start()
        for t in subs:
            t.join(DEADLINE)
        for gen in range(1, edits + 1):
            write(
                project / "base.cfl",
                f'db {{ gen = {gen}; host = "db-$<gen>"; pool = gen * 10 }}\nother = 1\n',
            )
            wait_until(lambda g=gen: lc.revision == g + 1, f"revision {gen + 1}")
        wait_until(
            lambda: all(len(per_sub.get(i, [])) == edits for i in range(4)),
            "every subscriber to see every revision",
        )
    finally:
        stop.set()
        for t in readers:
            t.join(DEADLINE)
        lc.close()
    assert problems == []
    assert per_sub == {i: list(range(2, edits + 2)) for i in range(4)}


def test_close_stops_deliveries(project: Path) -> None:
    got: list[Update] = []
    lc = LiveConfig(str(project / "app.cfl"))
    lc.subscribe("", got.append)
    lc.close()
    write(project / "base.cfl", base(host="after-close"))
    # A reload requested by hand still works after close; the watcher thread is gone.
    assert lc._thread is not None and not lc._thread.is_alive()
    assert got == []


def test_reload_inside_a_callback_is_refused(project: Path) -> None:
    errors: list[BaseException] = []

    def cb(_u: Update) -> None:
        try:
            lc.reload()
        except RuntimeError as e:
            errors.append(e)

    with cfglang.live(str(project / "app.cfl"), watch=False) as lc:
        lc.subscribe("db", cb)
        (project / "base.cfl").write_text(base(host="q"))
        assert lc.reload()
    assert len(errors) == 1
