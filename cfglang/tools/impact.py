"""`cflc impact`: which targets, and which paths of their outputs, a change affects.

For each target the working tree is compiled (through a loader that records every file
the resolver read or probed: the target's closure). If every file of that closure has the
same content (and the same existence) at REV as in the working tree, the target is
unchanged and REV is not compiled at all. Otherwise the target is compiled at REV through
a `cfglang.vcs.GitLoader` and the two values are compared with `cfglang.tools.diff.diff`.
The closure argument is the one of `cfglang.tools.history`: the files reachable from the entry
are the same, so the value is the same.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import attrs

from cfglang.diagnostics import Diagnostic, to_json
from cfglang.driver import compile
from cfglang.semantic.resolve import FileLoader
from cfglang.tools import diff as semdiff
from cfglang.vcs import GitLoader, Repo, find_repo

__all__ = ["Impact", "TargetImpact", "impact"]


@attrs.define
class RecordingLoader:
    """The working tree, remembering every path read or probed."""

    touched: set[str] = attrs.Factory(set)
    _disk: FileLoader = attrs.Factory(FileLoader)

    def read(self, path: str) -> str:
        self.touched.add(os.path.abspath(path))
        return self._disk.read(path)

    def exists(self, path: str) -> bool:
        self.touched.add(os.path.abspath(path))
        return self._disk.exists(path)


@attrs.define
class TargetImpact:
    """One target: ``status`` is ``unchanged``, ``changed``, ``added`` (absent at REV),
    ``broken`` (does not compile in the working tree; ``errors``) or ``fixed`` (did not
    compile at REV, compiles now)."""

    target: str
    status: str
    changes: list[semdiff.Change] = attrs.Factory(list)
    errors: tuple[Diagnostic, ...] = ()
    compiled_old: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "status": self.status,
            "changes": semdiff.to_json(self.changes),
            "errors": [to_json(d) for d in self.errors],
        }


@attrs.define
class Impact:
    """The result of `impact`: one `TargetImpact` per target, in the order given."""

    rev: str
    commit: str
    targets: list[TargetImpact] = attrs.Factory(list)

    @property
    def changed(self) -> bool:
        return any(t.status != "unchanged" for t in self.targets)

    def to_json(self) -> dict[str, Any]:
        return {
            "rev": self.rev,
            "commit": self.commit,
            "changed": self.changed,
            "targets": [t.to_json() for t in self.targets],
        }

    def render(self, *, color: bool = False) -> str:
        out: list[str] = []
        for t in self.targets:
            n = len(t.changes)
            if t.status == "unchanged":
                out.append(f"{t.target}: unchanged")
                continue
            head = {
                "changed": f"{n} change{'s' if n != 1 else ''}",
                "added": f"new target (not in {self.rev})",
                "broken": "does not compile in the working tree",
                "fixed": f"compiles again (did not compile at {self.rev})",
            }[t.status]
            line = f"{t.target}: {head}"
            out.append(f"\x1b[1m{line}\x1b[0m" if color else line)
            if t.status != "added":
                text = semdiff.render_human(t.changes, color=color)
                out += ["  " + x for x in text.splitlines()]
        return "".join(x + "\n" for x in out)


def _same_at(repo: Repo, commit: str, closure: set[str]) -> bool:
    files, _ = repo.tree(commit)
    for path in sorted(closure):
        rel = repo.rel(path)
        if rel is None:
            continue  # outside the repository (stdlib, allowed dirs): the same either way
        entry = files.get(rel)
        on_disk = os.path.isfile(path)
        if entry is None or not on_disk:
            if (entry is None) != (not on_disk):
                return False
            continue
        try:
            with open(path, "rb") as f:
                if f.read() != repo.blob(entry[1]):
                    return False
        except OSError:
            return False
    return True


def impact(
    targets: Sequence[str],
    *,
    rev: str = "HEAD",
    cli_vars: Sequence[tuple[str, str]] = (),
    var_files: Sequence[str] = (),
    allow_paths: Sequence[str] = (),
    use_cache: bool = True,
) -> Impact:
    """Compare each target in the working tree with the same target at ``rev``.
    Raises `cfglang.vcs.GitError` when there is no repository or ``rev`` is unknown."""
    if not targets:
        return Impact(rev, "")
    repo = find_repo(targets[0])
    commit = repo.resolve(rev)
    result = Impact(rev, commit)
    kwargs: dict[str, Any] = {
        "cli_vars": cli_vars,
        "var_files": var_files,
        "allow_paths": allow_paths,
        "emit_outputs": False,
        "decrypt_secrets": False,
        "plaintext_secrets": "allow",
    }
    for target in targets:
        name = target.replace(os.sep, "/")
        rec = RecordingLoader()
        new = compile(target, loader=rec, use_cache=use_cache, **kwargs)
        rec.touched.add(os.path.abspath(target))
        if not new.ok or new.data is None:
            result.targets.append(
                TargetImpact(name, "broken", errors=tuple(d for d in new.diagnostics if d.is_error))
            )
            continue
        if _same_at(repo, commit, rec.touched):
            result.targets.append(TargetImpact(name, "unchanged"))
            continue
        rel = repo.rel(target)
        files, _ = repo.tree(commit)
        if rel is None or rel not in files:
            result.targets.append(TargetImpact(name, "added", semdiff.diff({}, new.data)))
            continue
        loader = GitLoader(repo, commit)
        old = compile(
            target, loader=loader, root=loader.root_for(target), use_cache=use_cache, **kwargs
        )
        if not old.ok or old.data is None:
            result.targets.append(
                TargetImpact(name, "fixed", semdiff.diff({}, new.data), compiled_old=True)
            )
            continue
        changes = semdiff.diff(old.data, new.data)
        result.targets.append(
            TargetImpact(name, "changed" if changes else "unchanged", changes, compiled_old=True)
        )
    return result
