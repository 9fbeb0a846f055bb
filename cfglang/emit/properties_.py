"""Java ``.properties`` emitter: one ``key=value`` line per scalar.

Keys:

- The data path is flattened with ``.``, list indices as parts (``hosts.0``); the root
  must be an object. Two paths that flatten to one key (``a.b`` and ``a`` -> ``b``) are an
  `EmitError` at the second path naming the first. Empty objects and lists write no line.

Escaping (as ``java.util.Properties.store`` does, so Java and ``jproperties`` read the
exact strings back):

- The output is pure ASCII, so Latin-1 (the traditional encoding) and UTF-8 readers agree:
  characters outside printable ASCII (``U+0020``..``U+007E``) are written as ``\\uXXXX``
  (upper-case hex; UTF-16 surrogate pairs above ``U+FFFF``), except tab, newline, carriage
  return and form feed, written ``\\t``, ``\\n``, ``\\r``, ``\\f``.
- ``\\`` is doubled everywhere.
- In keys, space, ``:``, ``=``, ``#`` and ``!`` are escaped with a backslash (a space,
  ``:`` or ``=`` would end the key; ``#``/``!`` at line start begin a comment).
- In values only a leading space needs a backslash (readers skip whitespace before the
  value); ``:``, ``=``, ``#`` and ``!`` stand for themselves, which keeps URLs readable.
- Scalars: strings as is, ``true``/``false``, null as an empty value, ints via ``str``,
  floats via ``repr``, durations and sizes canonical, secrets plain.
"""

from __future__ import annotations

from cfglang.emit import DataPath, EmitError, describe_path, finish, flatten_leaves, scalar_text
from cfglang.emit import type_name as _type_name

_COMMON = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f"}
_KEY_ONLY = {" ": "\\ ", ":": "\\:", "=": "\\=", "#": "\\#", "!": "\\!"}


def emit_properties(data: object) -> str:
    if not isinstance(data, dict):
        raise EmitError((), f"properties needs an object at the root, not a {_type_name(data)}")
    first_path: dict[str, DataPath] = {}
    lines: list[str] = []
    for path, value in flatten_leaves(data):
        key = ".".join(str(part) for part in path)
        if key in first_path:
            raise EmitError(
                path, f"property `{key}` is also set by `{describe_path(first_path[key])}`"
            )
        first_path[key] = path
        lines.append(f"{_escape(key, is_key=True)}={_escape(scalar_text(value), is_key=False)}")
    return finish(lines)


def _escape(text: str, *, is_key: bool) -> str:
    out: list[str] = []
    for index, char in enumerate(text):
        if char in _COMMON:
            out.append(_COMMON[char])
        elif is_key and char in _KEY_ONLY:
            out.append(_KEY_ONLY[char])
        elif char == " " and index == 0:
            out.append("\\ ")
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.append(_unicode_escape(char))
    return "".join(out)


def _unicode_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04X}"
    # Java strings are UTF-16: characters beyond the BMP are written as a surrogate pair.
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04X}\\u{0xDC00 + (code & 0x3FF):04X}"
