"""What data read from JSON, YAML or TOML must satisfy before CFL takes it in.

`check_data` refuses values nested deeper than CFL's limit, more than `MAX_VALUES`
values (a YAML alias bomb), lone surrogates in strings or keys, and integers outside
CFL's 64-bit range; `DataError` says where. Both `cflc import` (`cfglang.tools.importer`)
and the driver's ``--vars`` files use it, so it lives below both.
"""

from __future__ import annotations

import re
from typing import Any

from cfglang.limits import MAX_NESTING

__all__ = ["MAX_VALUES", "DataError", "check_data"]

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1  # CFL integers are 64-bit


class DataError(Exception):
    """The input cannot be read or cannot be written as CFL.

    ``line``/``column`` are 1-based and set when the parser reported a position; ``path``
    names the offending value when the problem is a value rather than the syntax. ``code``
    is the diagnostic code (E0702 for unreadable input, E0710 for a value CFL has no type
    for), ``help`` says how to fix the input when there is a fix, and ``width`` is how many
    characters the position's underline covers.
    """

    def __init__(
        self,
        message: str,
        line: int | None = None,
        column: int | None = None,
        path: tuple[str | int, ...] = (),
        *,
        code: str = "E0702",
        help: str | None = None,
        width: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.path = path
        self.code = code
        self.help = help
        self.width = width  # characters to underline from the position, within its line


MAX_VALUES = 1_000_000


class _LongInt(int):
    """An integer literal too long to convert (more than 19 digits, so outside 64 bits);
    its value is a stand-in, ``text`` is what the file said."""

    text: str

    def __new__(cls, text: str) -> _LongInt:
        self = super().__new__(cls, _INT_MAX + 1 if not text.startswith("-") else _INT_MIN - 1)
        self.text = text
        return self


def _int_text(text: str, base: int = 10) -> int:
    """``int(text)``, or a `_LongInt` for more digits than any 64-bit integer has (Python
    refuses to convert more than 4,300)."""
    digits = text.lstrip("+-").replace("_", "")
    if base == 16 or digits[:2].lower() == "0x":
        limit = 18
    elif base == 8 or digits[:2].lower() == "0o":
        limit = 24
    elif base == 2 or digits[:2].lower() == "0b":
        limit = 66
    else:
        limit = 19
    if len(digits.lstrip("0")) > limit:
        return _LongInt(text)
    return int(text, base)


# `\uD800`-style escapes of a surrogate half; a high half directly followed by a low half is
# a pair (one character), anything else is lone.
_SURROGATE_ESCAPE = re.compile(
    r"\\u([dD][89abAB][0-9a-fA-F]{2})(\\u[dD][c-fC-F][0-9a-fA-F]{2})?|"
    r"\\u([dD][c-fC-F][0-9a-fA-F]{2})|\\U0000([dD][89a-fA-F][0-9a-fA-F]{2})"
)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _lone_surrogate_at(text: str) -> tuple[int, int] | None:
    """Line and column of the first escape in ``text`` that decodes to a lone surrogate."""
    for m in _SURROGATE_ESCAPE.finditer(text):
        if m.group(1) is not None and m.group(2) is not None:
            continue  # a pair
        line = text.count("\n", 0, m.start()) + 1
        return line, m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
    return None


def check_data(data: Any, text: str) -> None:
    """Refuse data CFL cannot hold or cannot write: values nested deeper than CFL's limit,
    more than `MAX_VALUES` values, lone surrogates in strings or keys, integer literals too
    long to convert. One iterative pass, so any depth is safe."""
    seen = 0
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise DataError(
                f"the data holds more than {MAX_VALUES} values (YAML aliases repeat theirs)",
                path=path,
            )
        # As in CFL source: containers nest at most MAX_NESTING levels below the root.
        if len(path) > MAX_NESTING and isinstance(value, (dict, list)):
            raise DataError(f"the data is nested more than {MAX_NESTING} levels deep", path=path)
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, str):
                    _check_text(k, text, path, "key")
                stack.append((v, (*path, k if isinstance(k, str) else str(k))))
        elif isinstance(value, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(value))
        elif isinstance(value, str):
            _check_text(value, text, path, "string")
        elif isinstance(value, _LongInt):
            shown = (
                value.text
                if len(value.text) <= 40
                else f"{value.text[:20]}… ({len(value.text)} digits)"
            )
            raise DataError(f"integer {shown} is outside CFL's 64-bit range", path=path)


def _check_text(s: str, text: str, path: tuple[str | int, ...], what: str) -> None:
    if s.isascii():
        return
    m = _SURROGATE.search(s)
    if m is None:
        return
    where = _lone_surrogate_at(text)
    raise DataError(
        f"a {what} holds the lone surrogate U+{ord(m.group()):04X}, which is not a character",
        where[0] if where else None,
        where[1] if where else None,
        path=path,
    )
