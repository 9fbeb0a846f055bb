"""Character offsets <-> LSP positions.

Spans hold offsets in code points into the text the compiler read. LSP positions are a
zero-based line and a column counted in UTF-16 code units by default (``utf-8`` and
``utf-32`` may be negotiated). Lines end at ``\\n``; a ``\\r`` before it belongs to the
line's text, and no column can point past the line's end.
"""

from __future__ import annotations

import bisect


class LineIndex:
    """The line starts of one text, for mapping in both directions."""

    def __init__(self, text: str, encoding: str = "utf-16") -> None:
        self.text = text
        self.encoding = encoding
        starts = [0]
        i = text.find("\n")
        while i >= 0:
            starts.append(i + 1)
            i = text.find("\n", i + 1)
        self.starts = starts

    def _units(self, s: str) -> int:
        if self.encoding == "utf-32" or s.isascii():
            return len(s)
        if self.encoding == "utf-8":
            return len(s.encode("utf-8"))
        return len(s) + sum(1 for ch in s if ord(ch) > 0xFFFF)

    def position(self, offset: int) -> tuple[int, int]:
        """Zero-based (line, column in code units) of a code-point offset."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self.starts, offset) - 1
        return line, self._units(self.text[self.starts[line] : offset])

    def offset(self, line: int, column: int) -> int:
        """The code-point offset of an LSP position (clamped to the text and the line)."""
        if line < 0:
            return 0
        if line >= len(self.starts):
            return len(self.text)
        start = self.starts[line]
        end = self.starts[line + 1] - 1 if line + 1 < len(self.starts) else len(self.text)
        if self.text[start:end].isascii() or self.encoding == "utf-32":
            return min(start + max(column, 0), end)
        units = 0
        for i in range(start, end):
            if units >= column:
                return i
            ch = self.text[i]
            if self.encoding == "utf-8":
                units += len(ch.encode("utf-8"))
            else:
                units += 2 if ord(ch) > 0xFFFF else 1
        return end
