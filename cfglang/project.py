"""The project: `cfl.toml` and the discovery of the project root, in one place.

A project is the nearest directory at or above a path that holds `cfl.toml`; with none, the
top of the git work tree that holds the path; with neither, the directory of the path itself
(a lone file is its own project). `cfl.toml` has
three tables that cfglang reads:

```toml
[project]            # targets, output_dir, allow_paths (paths relative to the root)
[limits]             # fields of `cfglang.eval.evaluate.Limits`, positive integers
[secrets]            # recipients and per-directory recipients (`cfglang.secrets.keys`)
[check]              # warnings_as_errors: any warning fails `cflc build` and `cflc check`
```

`find_root` finds the root; `read_toml` reads the file (a missing file is an empty table, an
unreadable or malformed one raises `ProjectError` with code E0703); `load` gives the frozen
`Project` model. Each tool decides how strict it is: `cflc build` refuses a bad file, the
language server and `cflc deps` carry on without it.
"""

from __future__ import annotations

import glob
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from cfglang.diagnostics import Diagnostic, did_you_mean
from cfglang.source import SourceFile, Span

CONFIG_NAME = "cfl.toml"

# The tables cfglang reads and, for those it reads here, their keys (`[limits]` is checked
# against `Limits` by `limits_error`; its keys are the evaluator's, not this module's).
TABLES: Mapping[str, tuple[str, ...] | None] = {
    "project": ("targets", "output_dir", "allow_paths"),
    "limits": None,
    "secrets": ("recipients", "dirs"),
    "check": ("warnings_as_errors",),
}


class ProjectError(Exception):
    """`cfl.toml` cannot be read or is malformed; ``str(e)`` says why (no file name).

    ``span`` is the key at fault when there is one (an unknown key), ``help`` the fix.
    """

    code = "E0703"

    def __init__(
        self, message: str, path: str, span: Span | None = None, help: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.span = span
        self.help = help

    def diagnostic(self) -> Diagnostic:
        """The message a command prints for it."""
        if self.span is None:
            return Diagnostic(self.code, f"cannot read cfl.toml: {self.message}", help=self.help)
        return Diagnostic(self.code, self.message, self.span, help=self.help)


def find_root(path: str) -> str:
    """The project root of ``path`` (a file, or a directory inside the project).

    The nearest directory at or above it holding `cfl.toml`; else the top of the git work
    tree that holds it; else the directory itself (a lone file is its own project), so that
    `env/prod.cfl` may `extends "../base.cfl"` in a repository without `cfl.toml`.

    The work tree is found by walking up to the nearest `.git` entry, a directory or, in a
    linked worktree or submodule, a file; `git` is not run: this is called on every compile
    and by the language server, and must not depend on git being installed.
    """
    d = os.path.dirname(os.path.abspath(path)) if not os.path.isdir(path) else os.path.abspath(path)
    git_top: str | None = None
    cur = d
    while True:
        if os.path.isfile(os.path.join(cur, CONFIG_NAME)):
            return cur
        if git_top is None and os.path.exists(os.path.join(cur, ".git")):
            git_top = cur
        parent = os.path.dirname(cur)
        if parent == cur:
            return git_top if git_top is not None else d
        cur = parent


def config_path(root: str) -> str:
    """Where the `cfl.toml` of project ``root`` is (or would be)."""
    return os.path.join(root, CONFIG_NAME)


def read_toml(root: str) -> dict[str, Any]:
    """The parsed `cfl.toml` of ``root``: empty when there is none, `ProjectError` when it
    cannot be read or is not TOML."""
    p = config_path(root)
    if not os.path.isfile(p):
        return {}
    try:
        with open(p, "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ProjectError(str(e), p) from None


def _key_span(src: SourceFile, table: str | None, key: str) -> Span | None:
    """Where ``key`` is written: of table ``table``, or a table header when ``table`` is None.

    `tomllib` gives no positions, so the text is scanned line by line: a header `[name]` (or
    `[[name]]`, `[name.sub]`) sets the current table, and the key is the first line inside
    that table starting with it (bare or quoted) and then `=` or `.`. Good enough for the
    keys of a valid file, which is all this is asked about; None when not found.
    """
    current = ""
    offset = 0
    name = re.escape(key)
    for line in src.text.splitlines(keepends=True):
        header = re.match(r"\s*\[\[?\s*([^\]]*?)\s*\]", line)
        if header:
            current = header.group(1).replace(" ", "").replace('"', "")
            sub = current[len(table) + 1 :] if table and current.startswith(table + ".") else None
            if (table is None and re.fullmatch(rf"{name}(\..*)?", current)) or (
                sub is not None and re.fullmatch(rf"{name}(\..*)?", sub)
            ):  # `[name]`, or `[table.name]` for a key that is a sub-table
                col = line.index("." + key) + 1 if table else line.index(key)
                return Span(src, offset + col, offset + col + len(key))
        elif table is not None and current == table:
            m = re.match(rf"(\s*)(?:{name}|\"{name}\"|'{name}')\s*[=.]", line)
            if m:
                col = len(m.group(1)) + (0 if line[len(m.group(1))] not in "\"'" else 1)
                return Span(src, offset + col, offset + col + len(key))
        offset += len(line)
    return None


def unknown_key(data: Mapping[str, Any], path: str) -> ProjectError | None:
    """The first unknown table or `[project]`/`[secrets]` key of parsed `cfl.toml` ``data``
    (read from ``path``), as a `ProjectError` at the key with did-you-mean; None if all are
    known."""
    found: tuple[str | None, str, Iterable[str]] | None = None
    for name, value in data.items():
        if name not in TABLES:
            found = (None, name, TABLES)
            break
        keys = TABLES[name]
        if keys is not None and isinstance(value, dict):
            bad = [k for k in value if k not in keys]
            if bad:
                found = (name, bad[0], keys)
                break
    if found is None:
        return None
    table, key, known = found
    span = _located(path, table, key)
    near = did_you_mean(key, known)
    where = f"table `[{table}]`" if table is not None else "cfl.toml"
    what = "key" if table is not None else "table"
    listed = ", ".join(f"`{k}`" for k in known)
    fix = f"did you mean `{near}`?" if near else f"the known {what}s are {listed}"
    return ProjectError(f"unknown {what} `{key}` in {where}", path, span, fix)


def _located(path: str, table: str | None, key: str) -> Span | None:
    """Where ``key`` of ``table`` is written in the `cfl.toml` at ``path`` (see `_key_span`)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        text = ""
    shown = os.path.relpath(path)  # as the user would type it, from the current directory
    return _key_span(SourceFile(path if shown.startswith("..") else shown, text, path), table, key)


def check_limits(table: object, names: Iterable[str], path: str) -> ProjectError | None:
    """Why the `[limits]` table of the `cfl.toml` at ``path`` is wrong for limit fields
    ``names``, as a `ProjectError` at the key (did-you-mean for an unknown one), or None."""
    known = list(names)
    bad = limits_error(table, known)
    if bad is None or not isinstance(table, dict):
        return None if bad is None else ProjectError(bad, path, _located(path, None, "limits"))
    key = next(
        k
        for k, v in table.items()
        if k not in known or not isinstance(v, int) or isinstance(v, bool) or v < 1
    )
    if key in known:
        return ProjectError(
            bad, path, _located(path, "limits", key), "write a whole number, 1 or more"
        )
    near = did_you_mean(key, known)
    listed = ", ".join(f"`{k}`" for k in known)
    fix = f"did you mean `{near}`?" if near else f"the known limits are {listed}"
    return ProjectError(f"unknown limit `{key}`", path, _located(path, "limits", key), fix)


def limits_error(table: object, names: Iterable[str]) -> str | None:
    """Why a `[limits]` table is wrong for limit fields ``names``, or None when it is right.

    The names are passed in so that this module stays below the evaluator that defines them.
    """
    known = list(names)
    if not isinstance(table, dict):
        return "`limits` must be a table"
    for k, v in table.items():
        if k not in known:
            return f"unknown limit `{k}` (known: {', '.join(known)})"
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            return f"`limits.{k}` must be a positive integer"
    return None


def _table(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    t = data.get(name, {})
    return dict(t) if isinstance(t, dict) else {}


@attrs.frozen
class Project:
    """A project root and what its `cfl.toml` says.

    ``settings`` is the `[project]` table as written (plus ``limits``, the raw `[limits]`
    table, when there is one), the shape `cflc` has always passed around; ``secrets`` is the
    `[secrets]` table. ``has_config`` is false for a root without `cfl.toml`.
    ``warnings_as_errors`` is `[check] warnings_as_errors`.
    """

    root: str
    has_config: bool
    settings: Mapping[str, Any] = attrs.field(factory=dict)
    secrets: Mapping[str, Any] = attrs.field(factory=dict)
    warnings_as_errors: bool = False

    @property
    def targets(self) -> tuple[str, ...]:
        """The target patterns, as written (relative to the root)."""
        t = self.settings.get("targets", [])
        return tuple(str(p) for p in t) if isinstance(t, list) else ()

    @property
    def allow_paths(self) -> tuple[str, ...]:
        """`allow_paths`, absolute (they are relative to the root in the file)."""
        a = self.settings.get("allow_paths", [])
        items = a if isinstance(a, list) else []
        return tuple(os.path.join(self.root, str(p)) for p in items if isinstance(p, str))

    def target_files(self) -> list[str]:
        """The files the target patterns match, absolute, sorted per pattern."""
        out: list[str] = []
        for pattern in self.targets:
            out += sorted(glob.glob(os.path.join(self.root, pattern)))
        return [os.path.abspath(p) for p in out]


# `import "path"` and `extends "path"` statements: module-level, one per line, the path a
# plain string literal (an escape in it is not decoded: such a path is not worth guessing).
_REFERENCE = re.compile(r'^[ \t]*(?:import|extends)[ \t]+"([^"\\\n]*)"', re.MULTILINE)


def _referenced(path: str, text: str) -> Iterable[str]:
    """The absolute paths the module at ``path`` imports or extends (the standard library
    aside), resolved as the resolver does: relative to the module, `.cfl` added when the
    path as written is not a file."""
    base = os.path.dirname(path)
    for m in _REFERENCE.finditer(text):
        spec = m.group(1)
        if spec.startswith("std/"):
            continue
        target = os.path.normpath(os.path.join(base, spec))
        if not target.endswith(".cfl") and not os.path.isfile(target):
            target += ".cfl"
        yield target


def entry_files(root: str, under: str | None = None) -> list[str]:
    """The default targets of the project at ``root``: its entry files, absolute, sorted.

    An entry file is a `.cfl` file under the root that no other file under the root
    imports or extends: `env/prod.cfl` (which extends `../base.cfl`) is one, `base.cfl`
    and a schema file that is only imported are not. ``under`` (a directory inside the
    root) keeps the entries inside it; every file of the root counts as an importer.
    Hidden directories (`.git`, `.venv`) are skipped and symlinked directories not
    followed. The files are not compiled: their `import` and `extends` lines are read, so
    that this stays fast on a large work tree and works while a file is broken. Used by
    every command that needs targets (`build`, `check`, `impact`, `watch`) when
    `cfl.toml` names none.
    """
    found: list[str] = []
    for top, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(top, n) for n in sorted(names) if n.endswith(".cfl")]
    referenced: set[str] = set()
    for f in found:
        try:
            with open(f, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue
        referenced.update(r for r in _referenced(f, text) if r != f)
    inside = os.path.abspath(under) if under is not None else None
    return sorted(
        os.path.abspath(f)
        for f in found
        if f not in referenced
        and (inside is None or os.path.abspath(f).startswith(inside.rstrip(os.sep) + os.sep))
    )


def load(path: str) -> Project:
    """The project of ``path`` (a file or a directory inside it); `ProjectError` when its
    `cfl.toml` cannot be read."""
    root = find_root(path)
    if not os.path.isfile(config_path(root)):
        return Project(root, False)
    data = read_toml(root)
    bad = unknown_key(data, config_path(root))
    if bad is not None:
        raise bad
    settings = _table(data, "project")
    if "limits" in data:  # [limits]: fields of cfglang.eval.evaluate.Limits
        settings["limits"] = data["limits"]
    check = _table(data, "check")
    strict = check.get("warnings_as_errors", False)
    if not isinstance(strict, bool):
        span = _located(config_path(root), "check", "warnings_as_errors")
        fix = "write `warnings_as_errors = true` or `false`"
        raise ProjectError(
            "`check.warnings_as_errors` must be true or false", config_path(root), span, fix
        )
    return Project(root, True, settings, _table(data, "secrets"), strict)


def load_lenient(path: str) -> Project:
    """Like `load`, but a `cfl.toml` that cannot be read counts as absent (for tools that
    work without it, such as the language server)."""
    try:
        return load(path)
    except ProjectError:
        return Project(find_root(path), False)
