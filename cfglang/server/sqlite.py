"""The embedded store: one SQLite database in WAL mode (`<state>/server.db`).

Durability. The database runs with ``journal_mode=WAL`` and ``synchronous=FULL``: every
commit appends the revision to the write-ahead log and fsyncs it before `commit`
returns, so an acknowledged revision survives not only ``kill -9`` of the server (WAL
with ``synchronous=NORMAL`` would already survive that: the log is in the OS's page
cache) but also a crash of the machine or a power loss, as far as the disk honours
fsync. The cost is one fsync per revision, which is what a write to a configuration
server should cost. Readers never block the writer and never see part of a revision.

One revision is one transaction (``BEGIN IMMEDIATE``, which takes the write lock at once):
its sources, its outputs, its row in ``revisions`` and its audit entries. The head is
checked inside that transaction, so two processes sharing the file cannot both store
revision N.

Rows are never updated in place: a source or output row is (path or target, revision,
content), content NULL for a deletion; the state at revision N is, per name, the last
row at or below N. History is therefore complete and any revision can be read back.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from cfglang.server.store import (
    AuditEntry,
    ClientRecord,
    Commit,
    Revision,
    StaleHead,
    StoreUnavailable,
    TargetOutput,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS revisions (
  rev INTEGER PRIMARY KEY, at REAL NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL,
  paths TEXT NOT NULL, targets TEXT NOT NULL, merged INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
  path TEXT NOT NULL, rev INTEGER NOT NULL, text TEXT, PRIMARY KEY (path, rev));
CREATE TABLE IF NOT EXISTS outputs (
  target TEXT NOT NULL, rev INTEGER NOT NULL, data TEXT, PRIMARY KEY (target, rev));
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, who TEXT NOT NULL,
  action TEXT NOT NULL, rev INTEGER, target TEXT, path TEXT, detail TEXT);
CREATE TABLE IF NOT EXISTS rollouts (target TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clients (
  client_id TEXT NOT NULL, target TEXT NOT NULL, token TEXT, labels TEXT NOT NULL,
  rev INTEGER NOT NULL, last_seen REAL NOT NULL, PRIMARY KEY (client_id, target));
CREATE TABLE IF NOT EXISTS usage (
  target TEXT NOT NULL, key TEXT NOT NULL, client_id TEXT NOT NULL, at REAL NOT NULL,
  PRIMARY KEY (target, key, client_id));
"""

DB_NAME = "server.db"


def _output_json(out: TargetOutput) -> str:
    return json.dumps(
        {"formats": dict(out.formats), "diffable": out.diffable, "files": list(out.files)},
        ensure_ascii=False,
    )


def _output(text: str) -> TargetOutput:
    obj = json.loads(text)
    return TargetOutput(obj["formats"], obj["diffable"], tuple(obj.get("files", ())))


class SQLiteStore:
    """`cfglang.server.store.Store` on one SQLite file. Thread-safe: one connection,
    used under a lock (SQLite serialises writers anyway; reads are short)."""

    def __init__(self, state_dir: str) -> None:
        os.makedirs(state_dir, exist_ok=True)
        self.path = os.path.join(state_dir, DB_NAME)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as e:
            raise StoreUnavailable(f"cannot open {self.path}: {e}") from e

    def _q(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        try:
            with self._lock:
                return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise StoreUnavailable(str(e)) from e

    def _at(self, revision: int | None) -> int:
        return self.head() if revision is None else revision

    # ---- revisions ---------------------------------------------------------------------

    def head(self) -> int:
        row = self._q("SELECT COALESCE(MAX(rev), 0) FROM revisions")
        return int(row[0][0])

    def commit(self, change: Commit) -> int:
        try:
            with self._lock:
                db = self._db
                db.execute("BEGIN IMMEDIATE")
                try:
                    head = int(
                        db.execute("SELECT COALESCE(MAX(rev), 0) FROM revisions").fetchone()[0]
                    )
                    if head != change.base:
                        raise StaleHead(head)
                    rev = head + 1
                    db.execute(
                        "INSERT INTO revisions VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            rev,
                            change.at,
                            change.who,
                            change.action,
                            json.dumps(sorted(change.sources)),
                            json.dumps(sorted(change.outputs)),
                            int(change.merged),
                        ),
                    )
                    db.executemany(
                        "INSERT INTO sources VALUES (?, ?, ?)",
                        [(p, rev, t) for p, t in change.sources.items()],
                    )
                    db.executemany(
                        "INSERT INTO outputs VALUES (?, ?, ?)",
                        [
                            (t, rev, None if o is None else _output_json(o))
                            for t, o in change.outputs.items()
                        ],
                    )
                    for entry in change.audit:
                        self._insert_audit(db, {**entry, "revision": rev})
                    db.executemany(
                        "INSERT OR REPLACE INTO rollouts VALUES (?, ?)",
                        [(t, json.dumps(st)) for t, st in change.rollouts.items()],
                    )
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                return rev
        except sqlite3.Error as e:
            raise StoreUnavailable(str(e)) from e

    def revision(self, number: int) -> Revision | None:
        rows = self._q("SELECT * FROM revisions WHERE rev = ?", (number,))
        return _revision(rows[0]) if rows else None

    # ---- sources and outputs -----------------------------------------------------------

    def sources(self, revision: int | None = None) -> dict[str, str]:
        rows = self._q(
            "SELECT s.path, s.text FROM sources s WHERE s.rev = (SELECT MAX(rev) FROM "
            "sources WHERE path = s.path AND rev <= ?) AND s.text IS NOT NULL ORDER BY s.path",
            (self._at(revision),),
        )
        return {p: t for p, t in rows}

    def source(self, path: str, revision: int | None = None) -> tuple[str, int] | None:
        rows = self._q(
            "SELECT text, rev FROM sources WHERE path = ? AND rev <= ? ORDER BY rev DESC LIMIT 1",
            (path, self._at(revision)),
        )
        if not rows or rows[0][0] is None:
            return None
        return rows[0][0], int(rows[0][1])

    def targets(self, revision: int | None = None) -> dict[str, int]:
        rows = self._q(
            "SELECT o.target, o.rev FROM outputs o WHERE o.rev = (SELECT MAX(rev) FROM "
            "outputs WHERE target = o.target AND rev <= ?) AND o.data IS NOT NULL "
            "ORDER BY o.target",
            (self._at(revision),),
        )
        return {t: int(r) for t, r in rows}

    def output(self, target: str, revision: int | None = None) -> tuple[int, TargetOutput] | None:
        rows = self._q(
            "SELECT rev, data FROM outputs WHERE target = ? AND rev <= ? ORDER BY rev DESC LIMIT 1",
            (target, self._at(revision)),
        )
        if not rows or rows[0][1] is None:
            return None
        return int(rows[0][0]), _output(rows[0][1])

    def target_history(self, target: str) -> list[Revision]:
        rows = self._q(
            "SELECT r.* FROM revisions r JOIN outputs o ON o.rev = r.rev "
            "WHERE o.target = ? AND o.data IS NOT NULL ORDER BY r.rev",
            (target,),
        )
        return [_revision(r) for r in rows]

    # ---- audit, rollouts, clients, usage -------------------------------------------------

    def _insert_audit(self, db: sqlite3.Connection, entry: Mapping[str, Any]) -> None:
        db.execute(
            "INSERT INTO audit (at, who, action, rev, target, path, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                entry["at"],
                entry["who"],
                entry["action"],
                entry.get("revision"),
                entry.get("target"),
                entry.get("path"),
                json.dumps(entry.get("detail"), ensure_ascii=False),
            ),
        )

    def add_audit(self, entry: Mapping[str, Any]) -> None:
        try:
            with self._lock:
                self._insert_audit(self._db, entry)
        except sqlite3.Error as e:
            raise StoreUnavailable(str(e)) from e

    def audit(
        self,
        *,
        target: str | None = None,
        path: str | None = None,
        who: str | None = None,
        since: float | None = None,
    ) -> list[AuditEntry]:
        sql, args = "SELECT * FROM audit WHERE 1 = 1", list[Any]()
        for col, val in (("target", target), ("path", path), ("who", who)):
            if val is not None:
                sql += f" AND {col} = ?"
                args.append(val)
        if since is not None:
            sql += " AND at >= ?"
            args.append(since)
        rows = self._q(sql + " ORDER BY id", args)
        return [
            AuditEntry(int(i), at, w, a, r, t, p, json.loads(d) if d else None)
            for i, at, w, a, r, t, p, d in rows
        ]

    def put_rollout(self, target: str, state: Mapping[str, Any]) -> None:
        self._q("INSERT OR REPLACE INTO rollouts VALUES (?, ?)", (target, json.dumps(state)))

    def replace_rollout(
        self, target: str, expect: Mapping[str, Any] | None, state: Mapping[str, Any]
    ) -> bool:
        try:
            with self._lock:
                db = self._db
                db.execute("BEGIN IMMEDIATE")
                try:
                    row = db.execute(
                        "SELECT state FROM rollouts WHERE target = ?", (target,)
                    ).fetchone()
                    now = None if row is None else dict(json.loads(row[0]))
                    if now != (None if expect is None else dict(expect)):
                        db.execute("ROLLBACK")
                        return False
                    db.execute(
                        "INSERT OR REPLACE INTO rollouts VALUES (?, ?)",
                        (target, json.dumps(dict(state))),
                    )
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
                return True
        except sqlite3.Error as e:
            raise StoreUnavailable(str(e)) from e

    def rollout(self, target: str) -> dict[str, Any] | None:
        rows = self._q("SELECT state FROM rollouts WHERE target = ?", (target,))
        return dict(json.loads(rows[0][0])) if rows else None

    def seen(self, record: ClientRecord) -> None:
        self.seen_all([record])

    def seen_all(self, records: Sequence[ClientRecord]) -> None:
        rows = [
            (r.client_id, r.target, r.token, json.dumps(dict(r.labels)), r.revision, r.last_seen)
            for r in records
        ]
        try:
            with self._lock:
                self._db.execute("BEGIN")
                try:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO clients VALUES (?, ?, ?, ?, ?, ?)", rows
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
        except sqlite3.Error as e:
            raise StoreUnavailable(str(e)) from e

    def clients(self) -> list[ClientRecord]:
        rows = self._q("SELECT * FROM clients ORDER BY client_id, target")
        return [
            ClientRecord(c, tok, json.loads(lab), t, int(r), seen)
            for c, t, tok, lab, r, seen in rows
        ]

    def add_usage(self, target: str, client_id: str, keys: Sequence[str], at: float) -> None:
        try:
            with self._lock:
                self._db.executemany(
                    "INSERT OR REPLACE INTO usage VALUES (?, ?, ?, ?)",
                    [(target, k, client_id, at) for k in keys],
                )
        except sqlite3.Error as e:
            raise StoreUnavailable(str(e)) from e

    def used_keys(self, target: str, since: float) -> set[str]:
        rows = self._q("SELECT key FROM usage WHERE target = ? AND at >= ?", (target, since))
        return {k for (k,) in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _revision(row: Sequence[Any]) -> Revision:
    rev, at, who, action, paths, targets, merged = row
    return Revision(
        int(rev),
        at,
        who,
        action,
        tuple(json.loads(paths)),
        tuple(json.loads(targets)),
        bool(merged),
    )
