"""Dotenv emitter: one ``NAME=value`` line per scalar, for python-dotenv style loaders.

Names:

- The data path is flattened: parts joined by ``_``, list indices as parts (``HOSTS_0``),
  every character outside ASCII ``A-Za-z0-9`` replaced by ``_``, then upper-cased; the
  ``env_prefix`` is prepended verbatim (it may only hold ``A-Za-z0-9_``).
- The root must be an object. Two paths that flatten to one name (``db_host`` and
  ``db.host``) are an `EmitError` at the second path naming the first; an empty name is an
  error too. Empty objects and lists have no scalars and so write no line.

Values (``dotenv_values(interpolate=False)`` reads each one back as exactly the original
string; with interpolation, only ``${NAME}`` references are expanded):

- Scalars: strings as is, ``true``/``false``, ints via ``str``, floats via ``repr``,
  durations and sizes canonical, secrets plain; null is an empty value (``NAME=``).
- A value made only of ``A-Za-z0-9_./:@+-`` is written bare. Anything else, including the
  empty string (``NAME=""``), is double-quoted with ``\\`` -> ``\\\\``, ``"`` -> ``\\"``,
  newline -> ``\\n``, carriage return -> ``\\r`` and tab -> ``\\t``; all other characters
  (``$``, ``'``, ``#``, ``=``, spaces, non-ASCII ...) stand for themselves inside quotes.
  ``$`` is *not* escaped: python-dotenv has no ``\\$`` escape and would keep the backslash.
- ``${NAME}`` is written as is, so a dotenv loader expands it (python-dotenv expands it in
  every kind of value and has no escape for it). This is the reading `cflc import` gives a
  .env file, which keeps ``${NAME}`` as written: a reference for the loader, so importing a
  .env file and building it back gives the same file content.
- A value ending in ``\\`` cannot be double-quoted (python-dotenv would take the final
  ``\\"`` for an escaped quote). It is written bare when a bare value reads back unchanged
  (no line break, no surrounding whitespace, no leading quote, no `` #`` comment marker)
  and is an `EmitError` otherwise.
"""

from __future__ import annotations

import re

from cfglang.emit import (
    DataPath,
    EmitError,
    Scalar,
    describe_path,
    finish,
    flatten_leaves,
    scalar_text,
    type_name,
)

_BARE = re.compile(r"[A-Za-z0-9_./:@+-]+")
_NOT_NAME_CHAR = re.compile(r"[^A-Za-z0-9]")
_PREFIX = re.compile(r"[A-Za-z0-9_]*")
# python-dotenv cuts an unquoted value at whitespace followed by `#` (a comment).
_COMMENT = re.compile(r"\s#")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NEEDS_ESCAPE = re.compile(r'[\\"\n\r\t]')


def emit_env(data: object, *, env_prefix: str = "") -> str:
    if not isinstance(data, dict):
        raise EmitError((), f"env needs an object at the root, not a {type_name(data)}")
    if not _PREFIX.fullmatch(env_prefix):
        raise EmitError((), f"env prefix `{env_prefix}` may only contain letters, digits and `_`")
    first_path: dict[str, DataPath] = {}
    lines: list[str] = []
    for path, value in flatten_leaves(data):
        name = env_prefix + "_".join(_NOT_NAME_CHAR.sub("_", str(part)).upper() for part in path)
        if not name:
            raise EmitError(path, "flattens to an empty env name")
        if name in first_path:
            raise EmitError(
                path, f"env name `{name}` is also used by `{describe_path(first_path[name])}`"
            )
        first_path[name] = path
        lines.append(f"{name}={_value(value, path)}")
    return finish(lines)


def _value(value: Scalar, path: DataPath) -> str:
    if value is None:
        return ""
    text = scalar_text(value)
    if _BARE.fullmatch(text):
        return text
    if text.endswith("\\"):
        if _reads_back_bare(text):
            return text
        raise EmitError(path, "env values ending in `\\` must be writable unquoted")
    return '"' + _NEEDS_ESCAPE.sub(lambda m: _ESCAPES[m.group()], text) + '"'


def _reads_back_bare(text: str) -> bool:
    """Whether python-dotenv reads ``text`` written without quotes as ``text`` itself."""
    return (
        "\n" not in text
        and "\r" not in text
        and text == text.strip()
        and text[0] not in "'\""
        and not _COMMENT.search(text)
    )
