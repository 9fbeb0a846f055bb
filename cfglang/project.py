"""The project: `cfl.toml` and the discovery of the project root, in one place.

A project is the nearest directory at or above a path that holds `cfl.toml`; with none, the
directory of the path itself is the root (a lone file is its own project). `cfl.toml` has
three tables that cfglang reads:

```toml
[project]            # targets, output_dir, allow_paths (paths relative to the root)
[limits]             # fields of `cfglang.eval.evaluate.Limits`, positive integers
[secrets]            # recipients and per-directory recipients (`cfglang.secrets.keys`)
```

`find_root` finds the root; `read_toml` reads the file (a missing file is an empty table, an
unreadable or malformed one raises `ProjectError` with code E0703); `load` gives the frozen
`Project` model. Each tool decides how strict it is: `cflc build` refuses a bad file, the
language server and `cflc deps` carry on without it.
"""

from __future__ import annotations

import glob
import os
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

CONFIG_NAME = "cfl.toml"


class ProjectError(Exception):
    """`cfl.toml` cannot be read or is malformed; ``str(e)`` says why (no file name)."""

    code = "E0703"

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def find_root(path: str) -> str:
    """The project root: the nearest directory above ``path`` holding `cfl.toml`."""
    d = os.path.dirname(os.path.abspath(path)) if not os.path.isdir(path) else os.path.abspath(path)
    cur = d
    while True:
        if os.path.isfile(os.path.join(cur, CONFIG_NAME)):
            return cur
        parent = os.path.dirname(cur)
        if parent == cur:
            return d
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
    """

    root: str
    has_config: bool
    settings: Mapping[str, Any] = attrs.field(factory=dict)
    secrets: Mapping[str, Any] = attrs.field(factory=dict)

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


def load(path: str) -> Project:
    """The project of ``path`` (a file or a directory inside it); `ProjectError` when its
    `cfl.toml` cannot be read."""
    root = find_root(path)
    if not os.path.isfile(config_path(root)):
        return Project(root, False)
    data = read_toml(root)
    settings = _table(data, "project")
    if "limits" in data:  # [limits]: fields of cfglang.eval.evaluate.Limits
        settings["limits"] = data["limits"]
    return Project(root, True, settings, _table(data, "secrets"))


def load_lenient(path: str) -> Project:
    """Like `load`, but a `cfl.toml` that cannot be read counts as absent (for tools that
    work without it, such as the language server)."""
    try:
        return load(path)
    except ProjectError:
        return Project(find_root(path), False)
