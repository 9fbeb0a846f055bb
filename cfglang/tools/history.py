"""`cflc history`: how the *compiled* value of a target changed across git commits.

Git knows line-level history; this module maps it onto compiled values. Algorithm:

1. List the commits reachable from HEAD along first parents, newest first, each with the
   paths it changed against its first parent (one `git log --name-only`; merges count as
   one change, as in `git log --first-parent`).
2. Compile the target at HEAD through a `cfglang.vcs.GitLoader`; the loader records the
   target's *closure*: every repository path the resolver read or probed (the module, all
   it imports or extends, and import candidates that did not exist).
3. Walk the commits. A commit that changed no path of the current closure cannot change
   the value: every file on every import path is the same in its parent, so the parent's
   closure and value are the same too, and it is skipped without compiling. Otherwise the
   parent is compiled (its closure replaces the current one) and the two values -- the
   whole document, or the value at PATH -- are compared with `cfglang.tools.diff.diff`.
4. Every compilation is memoised by the blob ids of its closure, so reverts and
   back-and-forth edits compile once; blobs are read once each (`Repo.blob`) and, with the
   parse cache on, each distinct file content is parsed once (`cfglang.cache` keys syntax
   trees by content, which is what a git blob id names).

A commit whose tree does not compile is an entry of status ``broken`` (with its errors);
the commit that repairs it is ``fixed``, diffed against the last good value before the
breakage. The commit that created the file is ``created``. Walking stops there, at
``--since``, after ``--max-count`` entries, or at a shallow clone's boundary (warning W1204).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from cfglang.diagnostics import Diagnostic, to_json
from cfglang.driver import compile
from cfglang.tools import diff as semdiff
from cfglang.tools.explain import parse_path
from cfglang.vcs import Commit, GitError, GitLoader, Repo, find_repo, split_spec

__all__ = ["Entry", "History", "history", "last_change"]


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Any = _Absent()


@attrs.frozen
class State:
    """The target at one commit: present at all, compiled or not, its value (at PATH) and
    closure (repository paths)."""

    present: bool
    ok: bool
    value: Any
    closure: frozenset[str]
    errors: tuple[Diagnostic, ...] = ()


@attrs.define
class Entry:
    """One commit that changed the compiled value.

    ``status``: ``changed`` (``changes`` is the semantic diff), ``created`` (the file
    appeared; ``changes`` adds everything), ``broken`` (the target stops compiling here;
    ``errors``), ``fixed`` (it compiles again; ``changes`` against the last good value).
    """

    commit: Commit
    status: str
    changes: list[semdiff.Change] = attrs.Factory(list)
    errors: tuple[Diagnostic, ...] = ()

    def to_json(self) -> dict[str, Any]:
        c = self.commit
        return {
            "commit": c.sha,
            "author": c.author,
            "email": c.email,
            "date": c.date,
            "subject": c.subject,
            "status": self.status,
            "changes": semdiff.to_json(self.changes),
            "errors": [to_json(d) for d in self.errors],
        }


@attrs.define
class History:
    """The result of `history`: entries newest first, plus warnings (W1204)."""

    target: str
    path: str | None
    head: str
    branch: str | None
    entries: list[Entry] = attrs.Factory(list)
    diagnostics: list[Diagnostic] = attrs.Factory(list)
    compiled: int = 0  # revisions actually compiled (for -v and the benchmark)
    walked: int = 0  # commits looked at

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "path": self.path,
            "head": self.head,
            "branch": self.branch,
            "entries": [e.to_json() for e in self.entries],
            "diagnostics": [to_json(d) for d in self.diagnostics],
        }

    def render(self, *, color: bool = False) -> str:
        """Human text: one block per entry, newest first, like `git log`."""
        out: list[str] = []
        for e in self.entries:
            c = e.commit
            head = f"commit {c.short}  {c.date}  {c.author} <{c.email}>"
            out.append(f"\x1b[33m{head}\x1b[0m" if color else head)
            out.append(f"    {c.subject}")
            if e.status == "broken":
                out.append("  ! does not compile:")
                for d in e.errors[:3]:
                    where = ""
                    if d.span is not None:
                        line, col = d.span.start_line_col()
                        where = f" at {d.span.path}:{line}:{col}"
                    out.append(f"    error[{d.code}]: {d.message}{where}")
                if len(e.errors) > 3:
                    out.append(f"    ... and {len(e.errors) - 3} more")
            elif e.status == "created":
                out.append(
                    f"  created `{self.target}`"
                    if self.path is None
                    else f"  `{self.target}` created"
                )
            elif e.status == "fixed":
                out.append(
                    "  compiles again"
                    + (f"; `{self.path}` unchanged" if self.path and not e.changes else "")
                )
            if e.status != "broken" and (e.status != "created" or self.path is not None):
                text = semdiff.render_human(e.changes, color=color)
                out += ["  " + line for line in text.splitlines()]
            out.append("")
        return "\n".join(out) + ("\n" if out else "")


def _prefixed(changes: list[semdiff.Change], prefix: tuple[str | int, ...]) -> list[semdiff.Change]:
    return [attrs.evolve(c, path=(*prefix, *c.path)) for c in changes]


def _compare(old: Any, new: Any, prefix: tuple[str | int, ...]) -> list[semdiff.Change]:
    """The semantic diff of two values at ``prefix``, either of which may be absent."""
    if old is ABSENT and new is ABSENT:
        return []
    if old is ABSENT:
        if not prefix and isinstance(new, dict):
            return semdiff.diff({}, new)
        return [semdiff.Change("add", prefix, new=new, secret=semdiff._has_secret(new))]
    if new is ABSENT:
        if not prefix and isinstance(old, dict):
            return semdiff.diff(old, {})
        return [semdiff.Change("remove", prefix, old=old, secret=semdiff._has_secret(old))]
    return _prefixed(semdiff.diff(old, new), prefix)


def _value_at(data: Any, path: Sequence[str | int]) -> Any:
    cur = data
    for part in path:
        if isinstance(part, int):
            if not isinstance(cur, list) or not -len(cur) <= part < len(cur):
                return ABSENT
            cur = cur[part]
        else:
            if not isinstance(cur, dict) or part not in cur:
                return ABSENT
            cur = cur[part]
    return cur


@attrs.define
class _Compiler:
    """Compiles the target at commits, memoised by the blob ids of its closure."""

    repo: Repo
    target: str  # absolute working-tree path of the module
    rel: str
    path: tuple[str | int, ...]
    compile_kwargs: dict[str, Any]
    memo: dict[tuple[tuple[str, str | None], ...], State] = attrs.Factory(dict)
    compiled: int = 0

    def signature(self, commit: str, closure: frozenset[str]) -> tuple[tuple[str, str | None], ...]:
        files, _ = self.repo.tree(commit)
        return tuple((p, files[p][1] if p in files else None) for p in sorted(closure))

    def state(self, commit: str, hint: frozenset[str] = frozenset()) -> State:
        files, _ = self.repo.tree(commit)
        if self.rel not in files:
            return State(False, False, ABSENT, frozenset({self.rel}))
        if hint:
            hit = self.memo.get(self.signature(commit, hint))
            if hit is not None:
                return hit
        loader = GitLoader(self.repo, commit)
        res = compile(
            self.target,
            loader=loader,
            root=loader.root_for(self.target),
            emit_outputs=False,
            decrypt_secrets=False,
            plaintext_secrets="allow",
            **self.compile_kwargs,
        )
        self.compiled += 1
        closure = frozenset(loader.touched)
        if res.ok and res.data is not None:
            st = State(True, True, _value_at(res.data, self.path), closure)
        else:
            st = State(
                True, False, ABSENT, closure, tuple(d for d in res.diagnostics if d.is_error)
            )
        self.memo[self.signature(commit, closure)] = st
        return st


def history(
    target: str,
    path: str | None = None,
    *,
    since: str | None = None,
    max_count: int | None = None,
    rev: str = "HEAD",
    cli_vars: Sequence[tuple[str, str]] = (),
    var_files: Sequence[str] = (),
    allow_paths: Sequence[str] = (),
    use_cache: bool = True,
    changes_only: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> History:
    """The commits (newest first, from ``rev``) where the compiled value of ``target`` (or
    its value at data ``path``) changed. With ``changes_only``, entries without a value
    change (``broken``, and ``fixed`` back to the same value) are left out and do not
    count towards ``max_count``. Raises `cfglang.vcs.GitError` for git problems and
    ValueError for a malformed ``path``."""
    segments: tuple[str | int, ...] = ()
    if path is not None:
        parsed = parse_path(path)
        if parsed is None:
            raise ValueError(f"`{path}` is not a data path")
        segments = tuple(parsed)
    repo = find_repo(target)
    rel = repo.rel(target)
    if rel is None:
        raise GitError(Diagnostic("E1203", f"`{target}` is outside the git repository"))
    head = repo.resolve(rev)
    branch = repo.head()[1] if rev == "HEAD" else None
    display = os.path.relpath(os.path.abspath(target)) if not os.path.isabs(target) else target
    result = History(display.replace(os.sep, "/"), path, head, branch)
    comp = _Compiler(
        repo,
        os.path.abspath(target),
        rel,
        segments,
        {
            "cli_vars": cli_vars,
            "var_files": var_files,
            "allow_paths": allow_paths,
            "use_cache": use_cache,
        },
    )
    cur = comp.state(head)
    if not cur.present:
        raise GitError(
            Diagnostic(
                "E1203",
                f"`{rel}` does not exist at `{rev}` (commit {head[:10]})",
                help=f"`git log --oneline -- {rel}` lists the commits that touched it",
            )
        )
    commits = list(repo.log(head, since=since))
    pending_fix: tuple[Entry, Any] | None = None  # a `fixed` entry waiting for its old side

    def counted() -> int:
        if not changes_only:
            return len(result.entries)
        return sum(
            1
            for e in result.entries
            if e.changes and (pending_fix is None or e is not pending_fix[0])
        )

    for i, c in enumerate(commits):
        result.walked += 1
        if progress is not None:
            progress(i + 1, len(commits))
        full = max_count is not None and counted() >= max_count
        if full and pending_fix is None:
            break
        if c.parent is None and _is_boundary(repo, c):
            result.diagnostics.append(
                Diagnostic(
                    "W1204",
                    f"history stops at commit {c.short}: this is a shallow clone",
                    severity="warning",
                    help="fetch the full history with `git fetch --unshallow`",
                )
            )
            break
        if c.parent is not None and not (set(c.changed) & cur.closure):
            continue
        before = (
            comp.state(c.parent, cur.closure)
            if c.parent is not None
            else State(False, False, ABSENT, frozenset())
        )
        entry: Entry | None = None
        if not before.present:
            if cur.ok:
                entry = Entry(c, "created", _compare(ABSENT, cur.value, segments))
            else:
                entry = Entry(c, "broken", errors=cur.errors)
        elif before.ok and cur.ok:
            changes = _compare(before.value, cur.value, segments)
            if changes:
                entry = Entry(c, "changed", changes)
        elif before.ok and not cur.ok:
            entry = Entry(c, "broken", errors=cur.errors)
            if pending_fix is not None:
                fix, new_value = pending_fix
                fix.changes = _compare(before.value, new_value, segments)
                pending_fix = None
        elif cur.ok:  # before is broken: this commit repairs the target
            entry = Entry(c, "fixed")
            pending_fix = (entry, cur.value)
        if entry is not None and not full:
            result.entries.append(entry)
        cur = before
        if not before.present:
            break
    if pending_fix is not None:
        pending_fix[0].changes = _compare(ABSENT, pending_fix[1], segments)
    if changes_only:
        result.entries = [e for e in result.entries if e.changes][:max_count]
    result.compiled = comp.compiled
    return result


def _is_boundary(repo: Repo, commit: Commit) -> bool:
    return commit.sha in repo._shallow_commits()


def last_change(target: str, path: str | None, **kwargs: Any) -> Entry | None:
    """The newest commit whose compiled value (at ``path``) differs from its parent's,
    or None (never changed, or not in a repository: no error is raised)."""
    try:
        h = history(target, path, max_count=1, changes_only=True, **kwargs)
    except (GitError, ValueError):
        return None
    return h.entries[0] if h.entries else None


def render_json(h: History) -> str:
    return json.dumps(h.to_json(), ensure_ascii=False, indent=2)


def explain_note(
    spec: str,
    path: str,
    *,
    cli_vars: Sequence[tuple[str, str]] = (),
    var_files: Sequence[str] = (),
    allow_paths: Sequence[str] = (),
    use_cache: bool = True,
) -> tuple[str, dict[str, Any]] | None:
    """For `cflc explain`: a line and a JSON object saying which commit last changed the
    value at ``path`` of ``spec`` (``FILE`` or ``FILE@REV``). A working-tree value that
    differs from HEAD's is reported as an uncommitted change. None outside a repository
    or when no commit ever changed it."""
    file, rev = split_spec(spec)
    segments = parse_path(path)
    if segments is None:
        return None
    kw: dict[str, Any] = {
        "cli_vars": cli_vars,
        "var_files": var_files,
        "allow_paths": allow_paths,
        "use_cache": use_cache,
    }
    try:
        repo = find_repo(file)
        if rev is None:
            head = repo.resolve("HEAD")
            rel = repo.rel(file)
            files, _ = repo.tree(head)
            now = compile(
                file, emit_outputs=False, decrypt_secrets=False, plaintext_secrets="allow", **kw
            )
            then: Any = ABSENT
            if rel is not None and rel in files:
                loader = GitLoader(repo, head)
                old = compile(
                    file,
                    loader=loader,
                    root=loader.root_for(file),
                    emit_outputs=False,
                    decrypt_secrets=False,
                    plaintext_secrets="allow",
                    **kw,
                )
                then = _value_at(old.data, segments) if old.ok else ABSENT
            if now.ok and _compare(then, _value_at(now.data, segments), tuple(segments)):
                return (
                    "  last changed  in the working tree (not committed)",
                    {"uncommitted": True},
                )
    except GitError:
        return None
    entry = last_change(file, path, rev=rev or "HEAD", **kw)
    if entry is None:
        return None
    c = entry.commit
    return (
        f"  last changed  commit {c.short}  {c.date}  {c.author} <{c.email}>  "
        f"{json.dumps(c.subject, ensure_ascii=False)}",
        {
            "uncommitted": False,
            "commit": c.sha,
            "author": c.author,
            "email": c.email,
            "date": c.date,
            "subject": c.subject,
        },
    )
