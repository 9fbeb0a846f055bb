"""The storage interface of the configuration server.

Everything the server keeps goes through `Store`: the project's source files per
revision, the compiled output of each target per revision, the audit log, rollouts,
clients and key-level usage. `cfglang.server.sqlite.SQLiteStore` is the embedded
implementation; an etcd store implements the same protocol.

Revisions are one sequence for the whole project. `Store.commit` is the only write of
sources and outputs: it stores one revision (every changed source, every changed target)
atomically, and only if the store's head is still the revision the caller computed the
change against (`StaleHead` otherwise), so two servers sharing a store cannot interleave.
A target's revision is the last project revision that changed its compiled output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs


class StaleHead(Exception):
    """The store's head moved past the revision a commit was computed against."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the current revision is {current}")
        self.current = current


class StoreUnavailable(Exception):
    """The store cannot be read or written (disk full, locked, gone)."""


@attrs.frozen
class TargetOutput:
    """The compiled document of one target at one revision.

    ``formats`` maps each output format to its text, or to None when that format cannot
    hold the document (an INI file of nested lists); ``diffable`` is the document as JSON
    with each secret replaced by ``{"$secret": <sha-256 of its text>}``, so the semantic
    diff can say a secret changed without ever holding its text; ``files`` are the
    project paths the compile read (to know which writes affect the target).
    """

    formats: Mapping[str, str | None]
    diffable: str
    files: tuple[str, ...] = ()


@attrs.frozen
class Revision:
    """One project revision: who made it, when, how (``put``, ``delete``, ``changes``,
    ``rollback``, ``import``), and what it changed."""

    number: int
    at: float
    who: str
    action: str
    paths: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    merged: bool = False


@attrs.frozen
class Commit:
    """What one revision stores: ``sources`` path -> new text (None deletes the file),
    ``outputs`` target -> new output (None: the target no longer exists), the audit
    entries, and the rollouts (target -> state) the revision starts, all written in the
    same transaction."""

    base: int  # the head the change was computed against
    at: float
    who: str
    action: str
    sources: Mapping[str, str | None]
    outputs: Mapping[str, TargetOutput | None]
    merged: bool = False
    audit: Sequence[Mapping[str, Any]] = ()
    rollouts: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)


@attrs.frozen
class AuditEntry:
    id: int
    at: float
    who: str
    action: str
    revision: int | None
    target: str | None
    path: str | None
    detail: Any


@attrs.frozen
class ClientRecord:
    client_id: str
    token: str | None
    labels: Mapping[str, str]
    target: str
    revision: int
    last_seen: float


class Store(Protocol):
    """What the server needs from storage. Every method may raise `StoreUnavailable`.

    Reads take an optional revision (None: the head). A commit is atomic and durable when
    it returns: a reader never sees part of a revision, and an acknowledged revision
    survives a crash of the server process.
    """

    def head(self) -> int:
        """The last revision (0 for an empty store)."""
        ...

    def commit(self, change: Commit) -> int:
        """Store ``change`` as revision ``change.base + 1``; `StaleHead` when the head is
        no longer ``change.base``. Returns the new revision."""
        ...

    def sources(self, revision: int | None = None) -> dict[str, str]:
        """Every source file (path -> text) at ``revision``."""
        ...

    def source(self, path: str, revision: int | None = None) -> tuple[str, int] | None:
        """The text of ``path`` at ``revision`` and the revision that last changed it."""
        ...

    def targets(self, revision: int | None = None) -> dict[str, int]:
        """Every target existing at ``revision`` -> its revision (last change)."""
        ...

    def output(self, target: str, revision: int | None = None) -> tuple[int, TargetOutput] | None:
        """The output of ``target`` as of ``revision``: (the target's revision, output)."""
        ...

    def target_history(self, target: str) -> list[Revision]:
        """The revisions that changed ``target``'s output, oldest first."""
        ...

    def revision(self, number: int) -> Revision | None:
        """One project revision."""
        ...

    def audit(
        self,
        *,
        target: str | None = None,
        path: str | None = None,
        who: str | None = None,
        since: float | None = None,
    ) -> list[AuditEntry]:
        """The audit log, oldest first, filtered."""
        ...

    def add_audit(self, entry: Mapping[str, Any]) -> None:
        """An audit entry outside a commit (a refused write, a rollout)."""
        ...

    def put_rollout(self, target: str, state: Mapping[str, Any]) -> None:
        """Store the current rollout of ``target`` (replacing the previous one)."""
        ...

    def replace_rollout(
        self, target: str, expect: Mapping[str, Any] | None, state: Mapping[str, Any]
    ) -> bool:
        """Store ``state`` as ``target``'s rollout only if the stored one is still
        ``expect`` (None: there is none), atomically: whether it was stored. Servers
        sharing a store start and end rollouts through this, so two that race on one
        target cannot both win."""
        ...

    def rollout(self, target: str) -> dict[str, Any] | None:
        """The current rollout of ``target``."""
        ...

    def seen(self, record: ClientRecord) -> None:
        """A client read ``record.target`` at ``record.revision``."""
        ...

    def seen_all(self, records: Sequence[ClientRecord]) -> None:
        """`seen` for each record, in one write."""
        ...

    def clients(self) -> list[ClientRecord]:
        """Every client, with the target and revision it last read."""
        ...

    def add_usage(self, target: str, client_id: str, keys: Sequence[str], at: float) -> None:
        """Keys of ``target`` a client reported reading."""
        ...

    def used_keys(self, target: str, since: float) -> set[str]:
        """Keys of ``target`` some client read since ``since``."""
        ...

    def close(self) -> None: ...
