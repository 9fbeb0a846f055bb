"""The served project: sources and targets at the head, every change compiled and checked
before it is stored, and the watchers woken when a revision lands.

`Service` keeps the head in memory (sources, the output of every target, each target's
revision history) so reads of the current configuration never touch the store; the store
(`cfglang.server.store.Store`) is the truth and is read back at start-up.

Compiles run from memory, never from the disk: the sources of the revision being built
are an overlay on a *virtual root*, a directory that does not exist (`<state>/tree`,
never created), so a file the store does not hold cannot be read, and `std/` still
resolves. The compile goes through `cfglang.api.compile`, on cfglang's shared worker pool
(programs are cached and reused while their texts are unchanged), from a thread pool of
its own so the event loop never waits on it, with the project's `[limits]` and a
wall-clock limit. Writes are serialised by one lock: a revision is computed against the
head, checked, committed, and only then does the next write start, so history is linear.
"""

from __future__ import annotations

import asyncio
import bisect
import fnmatch
import functools
import hashlib
import json
import os
import re
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from cfglang import api
from cfglang.diagnostics import Diagnostic, to_json
from cfglang.emit import FORMATS, EmitError, emit
from cfglang.eval.evaluate import Limits
from cfglang.project import CONFIG_NAME, limits_error, load_lenient
from cfglang.server.store import (
    Commit,
    Revision,
    StaleHead,
    Store,
    StoreUnavailable,
    TargetOutput,
)
from cfglang.tools import diff as semantic_diff
from cfglang.tools.rollout import bucket as bucket  # re-exported: tests and callers use it
from cfglang.tools.rollout import selects
from cfglang.values import Duration, Secret, Size

MAX_PATH = 1024
# Files of a working tree imported on first start: the modules, cfl.toml, and the data
# files a module may read (`--vars` files, imported JSON/YAML/TOML).
IMPORTED = (".cfl", ".toml", ".json", ".yaml", ".yml")
# Environment variables a compile sees: only those that say where the age identity is,
# so that a target's output depends on the stored sources alone, not on the server's
# environment.
PASSED_ENV = ("CFL_AGE_IDENTITY", "CFL_AGE_IDENTITY_FILE")
# How often one write catches up and tries again when other servers sharing the store
# keep committing first (each round reads their revisions and judges the write again).
STALE_RETRIES = 8


class Refused(Exception):
    """A request the server refuses: HTTP ``status``, a machine ``code``, a message and
    details (the body `{"error": {...}}`)."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


@attrs.frozen
class WriteResult:
    revision: int
    targets: tuple[str, ...]
    merged: bool
    warnings: tuple[dict[str, Any], ...] = ()
    rollouts: tuple[dict[str, Any], ...] = ()  # rollouts the write started with it


@attrs.frozen
class Built:
    """One target compiled: its output, or the diagnostics (JSON-ready) that refuse it."""

    target: str
    output: TargetOutput | None
    diagnostics: tuple[dict[str, Any], ...]
    seconds: float


def check_path(path: str) -> str:
    """A source path as stored: relative, `/`-separated, inside the project; `Refused`
    (400) for anything that could name a file elsewhere or a hidden one."""
    bad = (
        not path
        or len(path) > MAX_PATH
        or path.startswith("/")
        or "\\" in path
        or "\0" in path
        or any(ord(c) < 32 for c in path)
        or re.match(r"^[A-Za-z]:", path) is not None
    )
    parts = path.split("/")
    if bad or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise Refused(400, "bad_path", f"`{path}` is not a project path", {"path": path})
    return path


def target_of(path: str) -> str:
    return path[: -len(".cfl")]


def _glob(pattern: str, path: str) -> bool:
    """Whether project path ``path`` matches a `targets` pattern, as `glob.glob` would on
    the disk: `*` and `?` stay within one segment; `**` spans any number of them."""
    pp, sp = pattern.strip("/").split("/"), path.split("/")

    def match(i: int, j: int) -> bool:
        if i == len(pp):
            return j == len(sp)
        if pp[i] == "**":
            return any(match(i + 1, k) for k in range(j, len(sp) + 1))
        return j < len(sp) and fnmatch.fnmatchcase(sp[j], pp[i]) and match(i + 1, j + 1)

    return match(0, 0)


def project_settings(sources: Mapping[str, str]) -> tuple[tuple[str, ...] | None, Limits]:
    """The `targets` patterns (None: not set) and `Limits` of a stored `cfl.toml`;
    `Refused` (422) when it cannot be read."""
    text = sources.get(CONFIG_NAME)
    if text is None:
        return None, Limits()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise Refused(422, "invalid", f"cannot read {CONFIG_NAME}: {e}", []) from e
    proj = data.get("project", {})
    targets = proj.get("targets") if isinstance(proj, dict) else None
    patterns = tuple(str(p) for p in targets) if isinstance(targets, list) else None
    limits = Limits()
    if "limits" in data:
        bad = limits_error(data["limits"], [f.name for f in attrs.fields(Limits)])
        if bad is not None:
            raise Refused(422, "invalid", f"cannot read {CONFIG_NAME}: {bad}", [])
        limits = Limits(**data["limits"])
    return patterns, limits


def targets_of(sources: Mapping[str, str]) -> list[str]:
    """The target names of a set of sources: the `.cfl` files `[project] targets`
    matches, or, without `targets`, every `.cfl` file."""
    patterns, _ = project_settings(sources)
    cfl = sorted(p for p in sources if p.endswith(".cfl"))
    if patterns is None:
        return [target_of(p) for p in cfl]
    return [target_of(p) for p in cfl if any(_glob(pat, p) for pat in patterns)]


def _diffable(data: Any) -> Any:
    if isinstance(data, dict):
        return {str(k): _diffable(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_diffable(v) for v in data]
    if isinstance(data, Secret):
        return {"$secret": hashlib.sha256(data.value.encode()).hexdigest()}
    if isinstance(data, (Duration, Size)):
        return data.canonical()
    return data


def _undiffable(data: Any) -> Any:
    if isinstance(data, dict):
        if set(data) == {"$secret"}:
            return Secret(str(data["$secret"]))
        return {k: _undiffable(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_undiffable(v) for v in data]
    return data


def diff(old: TargetOutput | None, new: TargetOutput | None) -> list[dict[str, Any]]:
    """The semantic diff of two outputs (`cfglang.tools.diff`), secrets as ``<secret>``,
    ops as SERVER.md writes them (``~``, ``+``, ``-``)."""
    a = _undiffable(json.loads(old.diffable)) if old is not None else {}
    b = _undiffable(json.loads(new.diffable)) if new is not None else {}
    symbol = {"add": "+", "remove": "-", "change": "~"}
    return [{**c, "op": symbol[c["op"]]} for c in semantic_diff.to_json(semantic_diff.diff(a, b))]


@attrs.frozen
class Client:
    """Who reads: the `X-Cfl-Client-Id` and `X-Cfl-Client-Labels` of a request."""

    id: str | None = None
    labels: Mapping[str, str] = attrs.field(factory=dict)


def rollout_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The selection of a rollout spec: ``{"selector": {label: value}}`` or ``{"percent":
    P}``, or `Refused` 422 naming what is wrong."""
    selector, percent = spec.get("selector"), spec.get("percent")
    if (selector is None) == (percent is None):
        raise Refused(422, "invalid", "a rollout needs `selector` or `percent`", [])
    if selector is not None:
        if (
            not isinstance(selector, dict)
            or not selector
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in selector.items())
        ):
            raise Refused(422, "invalid", "`selector` must map label names to values", [])
        return {"selector": dict(selector)}
    if not isinstance(percent, (int, float)) or isinstance(percent, bool):
        raise Refused(422, "invalid", "`percent` must be a number in 0..100", [])
    if not 0 <= percent <= 100:
        raise Refused(422, "invalid", "`percent` must be a number in 0..100", [])
    return {"percent": percent}


def in_rollout(rollout: Mapping[str, Any], client: Client) -> bool:
    """Whether a rollout delivers its revision to ``client`` (`cfglang.tools.rollout`)."""
    return selects(rollout, client.id, client.labels)


def tree_files(root: str) -> dict[str, str]:
    """The sources of a working tree, as the server imports them: every `.cfl`, `.toml`,
    `.json`, `.yaml` and `.yml` file, except hidden files and directories and the output
    directory; a file that is not UTF-8 text is left out."""
    out_dir = str(load_lenient(root).settings.get("output_dir", "out"))
    skip = os.path.normpath(os.path.join(root, out_dir))
    files: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and os.path.join(dirpath, d) != skip
        )
        for name in sorted(filenames):
            if name.startswith(".") or not name.endswith(IMPORTED):
                continue
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            try:
                with open(full, encoding="utf-8", newline="") as f:
                    files[rel] = f.read()
            except (OSError, UnicodeDecodeError):
                continue
    return files


class Service:
    """The project a server serves (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        state_dir: str,
        *,
        compile_timeout: float = 30.0,
        on_compile: Callable[[float], None] | None = None,
    ) -> None:
        self.store = store
        self.vroot = os.path.join(os.path.abspath(state_dir), "tree")  # never created
        self.compile_timeout = compile_timeout
        self.on_compile = on_compile
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cfl-compile")
        self._lock: asyncio.Lock | None = None
        self._changed: asyncio.Condition | None = None
        self.load()

    # ---- state -------------------------------------------------------------------------

    def load(self) -> None:
        """Read the head back from the store."""
        self.head = self.store.head()
        self.sources: dict[str, str] = self.store.sources(self.head)
        self.changed_at: dict[str, int] = {}
        for path in self.sources:
            got = self.store.source(path, self.head)
            if got is not None:
                self.changed_at[path] = got[1]
        self.outputs: dict[str, tuple[int, TargetOutput]] = {}
        self.history: dict[str, list[int]] = {}
        # Revision records read with the histories, so that listings never wait on the
        # store (with etcd, a read on the event loop could stall it while etcd is down).
        self.revisions: dict[int, Revision] = {}
        for target in self.store.targets(self.head):
            out = self.store.output(target, self.head)
            if out is not None:
                self.outputs[target] = out
            hist = self.store.target_history(target)
            self.history[target] = [r.number for r in hist]
            self.revisions.update((r.number, r) for r in hist)
        self.rollouts: dict[str, dict[str, Any]] = {}
        for target in self.history:
            ro = self.store.rollout(target)
            if ro is not None:
                self.rollouts[target] = ro

    def revision_info(self, number: int) -> Revision | None:
        if number not in self.revisions:
            info = self.store.revision(number)
            if info is None:
                return None
            self.revisions[number] = info
        return self.revisions[number]

    @property
    def lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    @property
    def changed(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    # ---- compiling ---------------------------------------------------------------------

    def _abs(self, path: str) -> str:
        return os.path.join(self.vroot, *path.split("/"))

    def _rel(self, path: str) -> str:
        prefix = self.vroot + os.sep
        return path[len(prefix) :].replace(os.sep, "/") if path.startswith(prefix) else path

    def _diag(self, d: Diagnostic) -> dict[str, Any]:
        obj = to_json(d)
        if isinstance(obj.get("file"), str):
            obj["file"] = self._rel(str(obj["file"]))
        for note in obj.get("notes") or []:  # type: ignore[attr-defined]
            if isinstance(note.get("file"), str):
                note["file"] = self._rel(note["file"])
        return obj

    def compile_one(self, sources: Mapping[str, str], target: str, limits: Limits) -> Built:
        """Compile ``target`` from ``sources`` (blocking; called from the compile pool)."""
        start = time.perf_counter()
        overlay = {self._abs(p): t for p, t in sources.items()}
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        result = api.compile(
            self._abs(target + ".cfl"),
            overlay=overlay,
            root=self.vroot,
            env=env,
            limits=limits,
            emit_outputs=True,
        )
        diags = tuple(self._diag(d) for d in result.diagnostics)
        seconds = time.perf_counter() - start
        if not result.ok or result.data is None:
            return Built(target, None, diags, seconds)
        formats: dict[str, str | None] = {}
        for fmt in FORMATS:
            try:
                formats[fmt] = emit(result.data, fmt)
            except EmitError:
                formats[fmt] = None  # this format cannot hold the document
        # The files read, relative to the root (absolute: the standard library).
        files = tuple(sorted({self._rel(f).replace(os.sep, "/") for f in result.files}))
        diffable = json.dumps(_diffable(result.data), ensure_ascii=False)
        return Built(target, TargetOutput(formats, diffable, files), diags, seconds)

    async def build(
        self, sources: Mapping[str, str], targets: Sequence[str], limits: Limits
    ) -> list[Built]:
        """Compile ``targets`` concurrently, off the event loop, within the wall-clock
        limit (`Refused` 422 ``compile_timeout`` past it: the compile itself is stopped by
        CFL's step limit, its result is dropped)."""
        loop = asyncio.get_running_loop()
        jobs = [
            loop.run_in_executor(self.pool, self.compile_one, sources, t, limits) for t in targets
        ]
        try:
            built = await asyncio.wait_for(asyncio.gather(*jobs), self.compile_timeout)
        except TimeoutError:
            raise Refused(
                422,
                "compile_timeout",
                f"the change did not compile within {self.compile_timeout:g} s",
                [],
            ) from None
        if self.on_compile is not None:
            for b in built:
                self.on_compile(b.seconds)
        return list(built)

    # ---- writing -----------------------------------------------------------------------

    async def import_tree(self, root: str) -> int | None:
        """On first start (an empty store), the project's working tree as revision 1;
        None when the store already has revisions. `Refused` when it does not compile."""
        if self.head != 0:
            return None
        files: dict[str, str | None] = dict(tree_files(root))
        result = await self.write(0, files, who="import", action="import", stale_ok=False)
        return result.revision

    async def write(
        self,
        base: int,
        files: Mapping[str, str | None],
        *,
        who: str,
        action: str,
        stale_ok: bool = False,
        rollout: Mapping[str, Any] | None = None,
        may_roll_out: Callable[[str], bool] | None = None,
    ) -> WriteResult:
        """Store ``files`` (path -> text, None deletes) as one revision, computed against
        ``base``. Each path must be unchanged since ``base`` (its last change at or before
        it), else the write is stale (`_merge_stale`). Every affected target is compiled
        and checked first; any error refuses the whole change (422) and nothing is stored.

        With ``rollout`` (a `rollout_spec`), every target whose document the write changes
        starts a rollout of the new revision in the same store transaction, so no client
        outside the selection ever sees it (two requests would deliver it to everyone in
        between). ``may_roll_out(target)`` says whether the caller may start a rollout of
        ``target`` (its token's target scopes): the targets are known only once compiled,
        and one outside them refuses the whole write (403)."""
        for p in files:
            check_path(p)
        selection = rollout_spec(rollout) if rollout is not None else None
        async with self.lock:
            if base > self.head:
                await self._catch_up()  # a revision another server stored, not yet seen here
            for attempt in range(STALE_RETRIES + 1):
                try:
                    return await self._write_locked(
                        base,
                        files,
                        who=who,
                        action=action,
                        stale_ok=stale_ok,
                        selection=selection,
                        may_roll_out=may_roll_out,
                    )
                except StaleHead as e:
                    # Another server stored a revision first: read it (and any after it),
                    # then judge this write against them exactly as if it had arrived after
                    # them on this server (current, merged, or refused).
                    if attempt == STALE_RETRIES:
                        raise Refused(
                            409,
                            "conflict",
                            "the store kept moving on; retry against the current revision",
                            {"current": e.current, "conflicts": []},
                        ) from None
                    await self._catch_up()
        raise AssertionError("unreachable")

    async def _write_locked(
        self,
        base: int,
        files: Mapping[str, str | None],
        *,
        who: str,
        action: str,
        stale_ok: bool,
        selection: Mapping[str, Any] | None = None,
        may_roll_out: Callable[[str], bool] | None = None,
    ) -> WriteResult:
        """`write` under the write lock, against the head this process knows; `StaleHead`
        when the store's head has moved past it."""
        if base > self.head or base < 0:
            raise Refused(
                412, "bad_revision", f"revision {base} does not exist", {"current": self.head}
            )
        stale = [p for p in files if self.changed_at.get(p, 0) > base]
        merged = False
        if stale and not stale_ok:
            # Replaced by the texts to write against the head (or 409); those are then
            # compiled and checked like any write, under the same lock.
            files = await self._merge_stale(base, files, stale)
            merged = True
        for p, text in files.items():
            if text is None and p not in self.sources:
                raise Refused(404, "not_found", f"no source `{p}`", {"path": p})
        new = dict(self.sources)
        for p, text in files.items():
            if text is None:
                new.pop(p, None)
            else:
                new[p] = text
        _, limits = project_settings(new)
        names = targets_of(new)
        structural = CONFIG_NAME in files or any(
            (t is None) != (p not in self.sources) for p, t in files.items()
        )
        affected = [
            t
            for t in names
            if structural
            or t not in self.outputs
            or any(p in files for p in self.outputs[t][1].files)
        ]
        built = await self.build(new, affected, limits)
        failed = [b for b in built if b.output is None]
        if failed:
            # A file every target imports fails once, not once per target.
            unique = {json.dumps(d, sort_keys=True): d for b in failed for d in b.diagnostics}
            diags = list(unique.values())
            raise Refused(
                422,
                "invalid",
                "the change does not compile: "
                + ", ".join(b.target for b in failed)
                + (" fails" if len(failed) == 1 else " fail"),
                diags,
            )
        outputs: dict[str, TargetOutput | None] = {}
        for b in built:
            assert b.output is not None
            old = self.outputs.get(b.target)
            if old is None or old[1].formats != b.output.formats:
                outputs[b.target] = b.output
            elif old[1].files != b.output.files:
                outputs[b.target] = b.output  # same document, other files: keep them
        for t in self.outputs:
            if t not in names:
                outputs[t] = None  # the target's entry file is gone
        changed_docs = [
            t
            for t, o in outputs.items()
            if o is None or t not in self.outputs or self.outputs[t][1].formats != o.formats
        ]
        now = time.time()
        audit = [
            {
                "at": now,
                "who": who,
                "action": action,
                "target": t,
                "path": None,
                "detail": {"diff": diff(self.outputs[t][1] if t in self.outputs else None, o)},
            }
            for t, o in outputs.items()
            if t in changed_docs
        ] + [
            {
                "at": now,
                "who": who,
                "action": action,
                "path": p,
                "detail": {"deleted": t is None},
            }
            for p, t in files.items()
        ]
        sources = {p: t for p, t in files.items() if self.sources.get(p) != t}
        if not sources:  # every file already says this: no new revision
            return WriteResult(self.head, (), False)
        audit = [a for a in audit if a["path"] is None or a["path"] in sources]
        rollouts = (
            self._rollouts_with(changed_docs, outputs, selection, now, who, may_roll_out)
            if selection is not None
            else {}
        )
        audit += [
            {"at": now, "who": who, "action": "rollout", "target": t, "detail": st}
            for t, st in rollouts.items()
        ]
        commit = Commit(
            self.head, now, who, action, sources, outputs, audit=audit, rollouts=rollouts
        )
        loop = asyncio.get_running_loop()
        # StaleHead when another server committed first (`write` catches up and retries).
        rev = await loop.run_in_executor(None, self.store.commit, commit)
        self._apply(rev, new, commit, changed_docs)
        self.rollouts.update(rollouts)
        async with self.changed:
            self.changed.notify_all()
        warnings = tuple(
            {json.dumps(d, sort_keys=True): d for b in built for d in b.diagnostics}.values()
        )
        return WriteResult(
            rev, tuple(sorted(changed_docs)), merged, warnings, tuple(rollouts.values())
        )

    def _rollouts_with(
        self,
        changed: Sequence[str],
        outputs: Mapping[str, TargetOutput | None],
        selection: Mapping[str, Any],
        now: float,
        who: str,
        may_roll_out: Callable[[str], bool] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """The rollout states a write that changes the documents of ``changed`` starts:
        each delivers the new revision (the head's successor: the commit checks the head)
        to the selected clients and keeps the others at the target's current revision.
        `Refused` when a target has no revision to keep the others at, or has a rollout
        already, or when the write changes no document (nothing would be rolled out)."""
        if not changed:
            raise Refused(
                422, "invalid", "the change alters no compiled target: nothing to roll out", []
            )
        states: dict[str, dict[str, Any]] = {}
        for t in sorted(changed):
            if may_roll_out is not None and not may_roll_out(t):
                raise Refused(
                    403, "forbidden", f"`{t}` is outside the scopes of this token", {"target": t}
                )
            if outputs.get(t) is None or t not in self.outputs:
                raise Refused(
                    422,
                    "invalid",
                    f"`{t}` has no earlier revision to keep the other clients at",
                    [],
                )
            active = self.rollout(t)
            if active is not None:
                raise Refused(409, "rollout_active", f"`{t}` has a rollout already", active)
            states[t] = {
                "target": t,
                "revision": self.head + 1,
                "stable": self.outputs[t][0],
                "state": "active",
                "created": now,
                "by": who,
                **selection,
            }
        return states

    def _apply(self, rev: int, new: dict[str, str], commit: Commit, changed: list[str]) -> None:
        self.head = rev
        self.sources = new
        for p in commit.sources:
            self.changed_at[p] = rev
        for t, o in commit.outputs.items():
            if o is None:
                self.outputs.pop(t, None)
                continue
            prev = self.outputs.get(t)
            # A target's revision moves only when its document changed.
            self.outputs[t] = (rev if t in changed or prev is None else prev[0], o)
            if t in changed:
                self.history.setdefault(t, []).append(rev)

    # ---- revisions written by other servers sharing the store -------------------------

    async def catch_up(self) -> bool:
        """Apply the revisions the store has beyond this process's head (stored by other
        servers on the same store) and wake the watchers; whether there were any."""
        async with self.lock:
            return await self._catch_up()

    async def _catch_up(self) -> bool:
        loop = asyncio.get_running_loop()
        after = self.head
        read, gates = await loop.run_in_executor(None, self._read_after, after)
        if not read:
            return False
        # A revision stored with its own rollout (`write(rollout=)`) is applied with the
        # rollout already in place, so no watcher woken below sees it ungated.
        for target, state in gates.items():
            self.rollouts[target] = state
        for info, sources, outputs in read:
            new = dict(self.sources)
            for p, text in sources.items():
                if text is None:
                    new.pop(p, None)
                else:
                    new[p] = text
            changed = [
                t
                for t, o in outputs.items()
                if o is None or t not in self.outputs or self.outputs[t][1].formats != o.formats
            ]
            commit = Commit(info.number - 1, info.at, info.who, info.action, sources, outputs)
            self.revisions[info.number] = info
            self._apply(info.number, new, commit, changed)
        async with self.changed:
            self.changed.notify_all()
        return True

    def _read_after(
        self, after: int
    ) -> tuple[
        list[tuple[Revision, dict[str, str | None], dict[str, TargetOutput | None]]],
        dict[str, dict[str, Any]],
    ]:
        """Each stored revision after ``after``, with what it changed, and the active
        rollouts that gate those revisions (target -> state) (blocking)."""
        head = self.store.head()
        out = []
        gates: dict[str, dict[str, Any]] = {}
        for n in range(after + 1, head + 1):
            info = self.store.revision(n)
            if info is None:
                raise StoreUnavailable(f"revision {n} is missing from the store")
            sources: dict[str, str | None] = {}
            for p in info.paths:
                got = self.store.source(p, n)
                sources[p] = got[0] if got is not None and got[1] == n else None
            outputs: dict[str, TargetOutput | None] = {}
            for t in info.targets:
                out_t = self.store.output(t, n)
                outputs[t] = out_t[1] if out_t is not None and out_t[0] == n else None
            out.append((info, sources, outputs))
        for t in {t for info, _, _ in out for t in info.targets}:
            state = self.store.rollout(t)
            if state is not None and state.get("state") == "active" and state["revision"] > after:
                gates[t] = state
        return out, gates

    async def set_rollouts(self, rollouts: Mapping[str, Mapping[str, Any]]) -> None:
        """Rollouts another server stored (target -> state): replace ours, wake watchers."""
        changed = False
        for target, state in rollouts.items():
            if self.rollouts.get(target) != state:
                self.rollouts[target] = dict(state)
                changed = True
        if changed:
            async with self.changed:
                self.changed.notify_all()

    async def _merge_stale(
        self, base: int, files: Mapping[str, str | None], stale: Sequence[str]
    ) -> Mapping[str, str | None]:
        """A write whose paths in ``stale`` changed after its base revision: the files to
        write against the head instead (``files`` with each stale path's text three-way
        merged by `api.merge_sources`: base = its text at ``base``, theirs = the head's,
        yours = ``files[p]``), or `Refused` 409 with ``details = {"current", "conflicts":
        [{"file", "path", "base", "theirs", "yours"}]}`` when edits overlap (``path`` the
        key path or statement, the texts those of that statement). Called under the write
        lock; the result is compiled and checked like any write and answered with
        ``"merged": true``. A file that is not CFL merges only when both sides agree."""
        loop = asyncio.get_running_loop()
        out = dict(files)
        conflicts: list[dict[str, Any]] = []
        diagnostics: list[dict[str, Any]] = []
        for p in sorted(stale):
            # Off the event loop: a networked store (etcd) may take its whole deadline.
            at_base = await loop.run_in_executor(None, self.store.source, p, base) if base else None
            old = at_base[0] if at_base else None
            theirs = self.sources.get(p)
            yours = files[p]
            if yours == theirs:
                continue  # both made the same change
            if not p.endswith(".cfl"):
                conflicts.append(
                    {"file": p, "path": "(file)", "base": old, "theirs": theirs, "yours": yours}
                )
                continue
            # Off the event loop: a merge parses four texts, slow on a large file.
            merged = await loop.run_in_executor(
                self.pool, functools.partial(api.merge_sources, old, yours, theirs, path=p)
            )
            if merged.diagnostics:
                diagnostics.extend(to_json(d) for d in merged.diagnostics)
            elif merged.conflicts:
                conflicts.extend({"file": p, **c.to_json()} for c in merged.conflicts)
            else:
                out[p] = None if merged.deleted else merged.text
        if diagnostics:
            raise Refused(422, "invalid", "the change does not parse", diagnostics)
        if conflicts:
            where = ", ".join(sorted({f"{c['file']}: {c['path']}" for c in conflicts}))
            raise Refused(
                409,
                "conflict",
                f"edits overlap with changes made after revision {base}: {where}",
                {"current": self.head, "conflicts": conflicts},
            )
        return out

    async def rollback(self, target: str, to: int, *, who: str) -> WriteResult:
        """A new revision whose sources of ``target``'s files equal those of revision
        ``to`` (files the target read then, and files it reads now that did not exist
        then, deleted)."""
        if target not in self.outputs:
            raise Refused(404, "not_found", f"no target `{target}`", {"target": target})
        old = self.store.output(target, to) if 0 < to <= self.head else None
        if old is None:
            raise Refused(
                404, "not_found", f"`{target}` has no revision {to}", {"target": target, "to": to}
            )
        then = self.store.sources(to)
        paths = set(old[1].files) | set(self.outputs[target][1].files)
        files = {p: then.get(p) for p in sorted(paths) if then.get(p) != self.sources.get(p)}
        files = {p: t for p, t in files.items() if t is not None or p in self.sources}
        if not files:
            return WriteResult(self.head, (), False)
        return await self.write(self.head, files, who=who, action="rollback", stale_ok=True)

    # ---- rollouts ----------------------------------------------------------------------

    def rollout(self, target: str) -> dict[str, Any] | None:
        """The active rollout of ``target`` (None when there is none)."""
        ro = self.rollouts.get(target)
        return ro if ro is not None and ro.get("state") == "active" else None

    def gated(self, target: str, client: Client) -> int | None:
        """The stable revision ``client`` is held at by an active rollout of ``target``,
        or None when it gets the head (no rollout, or the client is in it)."""
        ro = self.rollout(target)
        if ro is None or in_rollout(ro, client):
            return None
        return int(ro["stable"])

    def delivered(self, target: str, client: Client) -> int | None:
        """The revision of ``target`` that ``client`` should run."""
        held = self.gated(target, client)
        if held is not None:
            return held
        return self.outputs[target][0] if target in self.outputs else None

    async def start_rollout(
        self, target: str, spec: Mapping[str, Any], *, who: str
    ) -> dict[str, Any]:
        """Deliver ``target``'s current revision only to the clients ``spec`` selects
        (``{"revision", "selector": {...}}`` or ``{"revision", "percent": P}``); the others
        keep ``spec["stable"]`` (default: the target's revision before it)."""
        if target not in self.outputs:
            raise Refused(404, "not_found", f"no target `{target}`", {"target": target})
        async with self.lock:
            if self.rollout(target) is not None:
                raise Refused(
                    409, "rollout_active", f"`{target}` has a rollout already", self.rollout(target)
                )
            current = self.outputs[target][0]
            revision = spec.get("revision", current)
            hist = self.history.get(target, [])
            if revision != current:
                raise Refused(
                    422,
                    "invalid",
                    f"a rollout delivers the target's current revision ({current}), not {revision}",
                    [],
                )
            earlier = [r for r in hist if r < current]
            stable = spec.get("stable", earlier[-1] if earlier else None)
            if not isinstance(stable, int) or stable not in earlier:
                raise Refused(
                    422, "invalid", f"`stable` must be an earlier revision of `{target}`", []
                )
            state: dict[str, Any] = {
                "target": target,
                "revision": current,
                "stable": stable,
                "state": "active",
                "created": time.time(),
                "by": who,
            }
            state.update(rollout_spec(spec))
            await self._save_rollout(target, state, who, "rollout", self.rollouts.get(target))
        return state

    async def end_rollout(self, target: str, how: str, *, who: str) -> dict[str, Any]:
        """``promote`` (everyone gets the head) or ``abort`` (a new revision equal to the
        stable one, for everyone)."""
        ro = self.rollout(target)
        if ro is None:
            raise Refused(404, "not_found", f"`{target}` has no active rollout", {"target": target})
        state = dict(ro)
        if how == "abort":
            result = await self.rollback(target, int(ro["stable"]), who=who)
            state["aborted_by_revision"] = result.revision
        async with self.lock:
            state["state"] = "promoted" if how == "promote" else "aborted"
            state["ended"] = time.time()
            await self._save_rollout(target, state, who, how, ro)
        return state

    async def _save_rollout(
        self,
        target: str,
        state: dict[str, Any],
        who: str,
        action: str,
        expect: Mapping[str, Any] | None,
    ) -> None:
        """Store ``state`` as ``target``'s rollout if the stored one is still ``expect``
        (what this server last saw), and audit it; else another server sharing the store
        started or ended one meanwhile: take that one and refuse (409)."""
        loop = asyncio.get_running_loop()
        entry = {"at": time.time(), "who": who, "action": action, "target": target, "detail": state}
        entry["revision"] = state["revision"]

        def save() -> dict[str, Any] | None:
            if not self.store.replace_rollout(target, expect, state):
                return self.store.rollout(target) or {}
            self.store.add_audit(entry)
            return None

        theirs = await loop.run_in_executor(None, save)
        if theirs is not None:
            if theirs:
                self.rollouts[target] = theirs
            async with self.changed:
                self.changed.notify_all()
            active = theirs.get("state") == "active"
            raise Refused(
                409,
                "rollout_active" if active else "conflict",
                f"`{target}`'s rollout was changed meanwhile (through another server); "
                "read it again: GET …/rollouts/current",
                theirs,
            )
        self.rollouts[target] = state
        async with self.changed:
            self.changed.notify_all()

    # ---- watching ----------------------------------------------------------------------

    def revisions_after(self, target: str, after: int, client: Client | None = None) -> list[int]:
        """The target's revisions after ``after`` that ``client`` may see: while a rollout
        holds the client at a stable revision, none past it."""
        hist = self.history.get(target, [])
        held = self.gated(target, client) if client is not None else None
        if held is not None:
            hist = hist[: bisect.bisect_right(hist, held)]
        return hist[bisect.bisect_right(hist, after) :]

    async def wait_after(
        self, target: str, after: int, timeout: float | None, client: Client | None = None
    ) -> list[int]:
        """The target's revisions after ``after``, waiting up to ``timeout`` seconds (None:
        for ever) for one when there is none yet."""

        def ready() -> bool:
            return bool(self.revisions_after(target, after, client))

        if ready():  # (asyncio.wait_for with no time left would not even look)
            return self.revisions_after(target, after, client)
        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait_for(ready), timeout)
            except TimeoutError:
                return []
        return self.revisions_after(target, after, client)
