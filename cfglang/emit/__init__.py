"""Emitters: turn evaluated plain data into the text of one output format.

Input is *plain data* (see `cfglang.values`): ``dict`` (insertion ordered, ``str`` keys),
``list``, ``str``, ``int``, ``float``, ``bool``, ``None``, `Duration`, `Size` and `Secret`.

Rules shared by every format (details live in each format's module docstring):

- Durations and sizes are written as their canonical strings (``1h30m``, ``512MiB``).
- A `Secret` is written as its plain value: emitters only ever produce build outputs.
- Output is deterministic byte for byte, keeps dict insertion order and ends with exactly
  one newline (an empty document is a single newline).
- Anything a format cannot express raises `EmitError` with the data path of the offending
  value; nothing is ever dropped or altered silently. (Two documented exceptions, both part
  of the language spec: toml omits null fields, and the flattening formats ini, env and
  properties write every scalar as text.)
- Only json and yaml accept a root that is not an object.

Third-party libraries (PyYAML, tomli_w) are imported inside the emitters that need them so
that importing this package costs nothing at compiler start-up.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TypeAlias

from cfglang.values import Duration, Secret, Size

__all__ = ["FORMATS", "EmitError", "emit", "format_for_filename"]

FORMATS: tuple[str, ...] = ("json", "yaml", "toml", "ini", "env", "properties")

DataPath: TypeAlias = tuple[str | int, ...]


class EmitError(Exception):
    """A value that the chosen output format cannot express.

    ``path`` is the data path of the offending value (``()`` for the root); ``message`` is
    one short lower-case line without a final period, with names in backticks.
    """

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(path, message)
        self.path: tuple[str | int, ...] = path
        self.message: str = message

    def __str__(self) -> str:
        if not self.path:
            return self.message
        return f"{describe_path(self.path)}: {self.message}"


_EXTENSIONS: dict[str, str] = {
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".ini": "ini",
    ".env": "env",
    ".properties": "properties",
}


def format_for_filename(name: str) -> str | None:
    """The output format implied by a file name's extension, or None if there is none.

    ``.env`` counts both as an extension (``prod.env``) and as a whole file name (``.env``,
    which `os.path.splitext` would see as a name without extension). Matching is exact
    (case-sensitive) so that ``X.JSON`` is not silently treated as json.
    """
    base = re.split(r"[\\/]", name)[-1]
    dot = base.rfind(".")
    if dot < 0:
        return None
    return _EXTENSIONS.get(base[dot:])


def emit(data: object, fmt: str, *, env_prefix: str = "") -> str:
    """Render plain ``data`` as ``fmt`` text; raises `EmitError`, or ValueError for a bad fmt.

    ``env_prefix`` is only used by the env format (prepended verbatim to every name).
    """
    # Imports are local: each emitter pulls in its own (possibly heavy) dependencies.
    if fmt == "json":
        from cfglang.emit.json_ import emit_json  # lazy: each format loads only when used

        return emit_json(data)
    if fmt == "yaml":
        from cfglang.emit.yaml_ import emit_yaml  # lazy: PyYAML only for YAML

        return emit_yaml(data)
    if fmt == "toml":
        from cfglang.emit.toml_ import emit_toml  # lazy: tomli-w only for TOML

        return emit_toml(data)
    if fmt == "ini":
        from cfglang.emit.ini_ import emit_ini  # lazy: only when used

        return emit_ini(data)
    if fmt == "env":
        from cfglang.emit.env_ import emit_env  # lazy: only when used

        return emit_env(data, env_prefix=env_prefix)
    if fmt == "properties":
        from cfglang.emit.properties_ import emit_properties  # lazy: only when used

        return emit_properties(data)
    raise ValueError(f"unknown output format {fmt!r} (expected one of {', '.join(FORMATS)})")


# ---------------------------------------------------------------------------------------
# Helpers shared by the format modules (kept here so the package stays one file per format).

Scalar: TypeAlias = str | int | float | bool | Duration | Size | Secret | None


def describe_path(path: DataPath) -> str:
    """A data path as people write it in CFL: ``db.hosts[0]``; the root is ``<root>``."""
    if not path:
        return "<root>"
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        else:
            out.append(f".{part}" if out else part)
    return "".join(out)


def type_name(value: object) -> str:
    """The CFL-ish name of a plain value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    return type(value).__name__.lower()


def as_scalar(value: object) -> tuple[bool, Scalar]:
    """``(True, value)`` if ``value`` is a plain scalar, else ``(False, None)``."""
    if value is None or isinstance(value, str | int | float | Duration | Size | Secret):
        return True, value
    return False, None


def unsupported(value: object, path: DataPath) -> EmitError:
    """The error for a value that is not plain data at all (a caller bug, but reported)."""
    return EmitError(path, f"value of type `{type(value).__name__}` is not plain data")


def check_key(key: object, path: DataPath) -> str:
    """Dict keys must be strings; ``path`` is the dict's own path."""
    if not isinstance(key, str):
        raise EmitError(path, f"object key `{key!r}` is not a string")
    return key


def named_string(value: object) -> str | None:
    """The text of a Duration, Size or Secret; None for any other value."""
    if isinstance(value, Duration | Size):
        return value.canonical()
    if isinstance(value, Secret):
        return value.value
    return None


def scalar_text(value: Scalar) -> str:
    """How the flattening formats (ini, env, properties) write one scalar.

    bool -> ``true``/``false`` (checked before int: bool is an int subclass), None -> empty,
    int via ``str`` and float via ``repr`` (shortest text that reads back to the same float).
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))  # int() so IntEnum-like subclasses print as numbers
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, str):
        return str(value)
    return value.canonical() if isinstance(value, Duration | Size) else value.value


def flatten_leaves(data: object, path: DataPath = ()) -> Iterator[tuple[DataPath, Scalar]]:
    """Every scalar under ``data`` with its path, in document order (env, properties).

    Empty objects and lists have no leaves and so produce nothing: a flat key=value file
    has no way to write "an empty container" and the language spec defines these formats
    as flattenings of the leaves.
    """
    if isinstance(data, dict):
        for key, value in data.items():
            yield from flatten_leaves(value, (*path, check_key(key, path)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from flatten_leaves(value, (*path, index))
    else:
        ok, scalar = as_scalar(data)
        if not ok:
            raise unsupported(data, path)
        yield path, scalar


def finish(lines: list[str]) -> str:
    """Join output lines so the text ends with exactly one newline."""
    return "\n".join(lines).rstrip("\n") + "\n"
