"""Data paths: the one parser and printer of `services.billing.db`, `tags[0]`, `a["k/x"]`.

A data path names a place in a compiled configuration: keys joined by dots, list indexes
in brackets, and keys that are not plain names as JSON strings in brackets. `explain`,
`history`, `live` subscriptions, the driver's emit-error spans and every diagnostic's
``data_path`` read and write them through this module, so a path one tool prints another
reads back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

__all__ = ["DataPathError", "parse", "render"]

Part = str | int

_PART = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_-]*)|\[(-?\d+)\]|\["((?:[^"\\]|\\.)*)"\]')
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class DataPathError(ValueError):
    """The text is not a data path."""


def parse(text: str) -> tuple[Part, ...]:
    """The parts of ``text`` (surrounding blanks ignored); the empty path is ``()``, the
    whole configuration. Raises `DataPathError` for anything else that is not a path."""
    parts: list[Part] = []
    text = text.strip()
    pos = 0
    while pos < len(text):
        m = _PART.match(text, pos)
        # A dot joins two parts: none before the first, and never two in a row.
        if m is None or (m.group(1) is not None and (text[pos] == ".") != (pos > 0)):
            raise DataPathError(f"not a configuration path: `{text}`")
        if m.group(1) is not None:
            parts.append(m.group(1))
        elif m.group(2) is not None:
            parts.append(int(m.group(2)))
        else:
            try:
                parts.append(json.loads('"' + m.group(3) + '"'))
            except ValueError:
                raise DataPathError(f"not a configuration path: `{text}`") from None
        pos = m.end()
    return tuple(parts)


def render(parts: Sequence[Part]) -> str:
    """The text of a path, as `parse` reads it back; ``""`` for the whole configuration.
    Keys are written as names where they are plain names, else as quoted strings."""
    out: list[str] = []
    for p in parts:
        if isinstance(p, int):
            out.append(f"[{p}]")
        elif _NAME.fullmatch(p):
            out.append(("." if out else "") + p)
        else:
            out.append("[" + json.dumps(p, ensure_ascii=False) + "]")
    return "".join(out)
