"""Source files and spans.

A `Span` is a pair of character offsets into one `SourceFile`. Lines and columns are
computed only when a span is rendered (CLI, LSP, JSON diagnostics), from the file's line
table, so the compiler never carries them around.
"""

from __future__ import annotations

import bisect

import attrs


@attrs.define(eq=False)
class SourceFile:
    """The text of one module plus a lazily built table of line starts.

    ``path`` is the name shown to users (relative to the project root where possible);
    ``real_path`` is where it was read from (None for in-memory text).
    """

    path: str
    text: str
    real_path: str | None = None
    _line_starts: list[int] | None = attrs.field(default=None, init=False, repr=False)

    def __reduce__(self) -> tuple[object, ...]:
        return (SourceFile, (self.path, self.text, self.real_path))

    def line_starts(self) -> list[int]:
        if self._line_starts is None:
            starts = [0]
            text = self.text
            i = text.find("\n")
            while i >= 0:
                starts.append(i + 1)
                i = text.find("\n", i + 1)
            self._line_starts = starts
        return self._line_starts

    def line_col(self, offset: int) -> tuple[int, int]:
        """1-based line and column of a character offset."""
        starts = self.line_starts()
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(starts, offset) - 1
        return line + 1, offset - starts[line] + 1

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its newline."""
        starts = self.line_starts()
        if line < 1 or line > len(starts):
            return ""
        start = starts[line - 1]
        end = starts[line] - 1 if line < len(starts) else len(self.text)
        return self.text[start:end].rstrip("\r")


@attrs.frozen(eq=False)
class Span:
    """A range of characters ``[start, end)`` in a source file."""

    source: SourceFile
    start: int
    end: int

    def __reduce__(self) -> tuple[object, ...]:
        return (Span, (self.source, self.start, self.end))

    @property
    def path(self) -> str:
        return self.source.path

    def start_line_col(self) -> tuple[int, int]:
        return self.source.line_col(self.start)

    def end_line_col(self) -> tuple[int, int]:
        return self.source.line_col(self.end)

    def text(self) -> str:
        return self.source.text[self.start : self.end]

    def cover(self, other: Span) -> Span:
        return Span(self.source, min(self.start, other.start), max(self.end, other.end))

    def key(self) -> tuple[str, int, int]:
        """A sortable identity: diagnostics are ordered and de-duplicated by it."""
        return (self.source.path, self.start, self.end)

    def __str__(self) -> str:
        line, col = self.start_line_col()
        return f"{self.source.path}:{line}:{col}"
