"""Compiler diagnostics as LSP diagnostics.

The code, message and span are the compiler's own (what `cflc build` prints); the label
under the caret and the help go on extra lines of the message, notes with a span become
related information and notes without one extra lines. Spans are mapped from character
offsets to line/UTF-16 positions of the text the compiler read.
"""

from __future__ import annotations

from collections.abc import Iterable

from lsprotocol import types as lsp
from pygls.uris import from_fs_path

from cfglang.diagnostics import Diagnostic
from cfglang.lsp.positions import LineIndex
from cfglang.source import SourceFile, Span

_SEVERITY = {
    "error": lsp.DiagnosticSeverity.Error,
    "warning": lsp.DiagnosticSeverity.Warning,
    "note": lsp.DiagnosticSeverity.Information,
    "info": lsp.DiagnosticSeverity.Information,
}


class Ranges:
    """Maps spans to LSP ranges, one line table per source file."""

    def __init__(self, encoding: str = "utf-16") -> None:
        self.encoding = encoding
        self._index: dict[int, tuple[SourceFile, LineIndex]] = {}

    def index(self, source: SourceFile) -> LineIndex:
        hit = self._index.get(id(source))
        if hit is None or hit[0] is not source:
            hit = (source, LineIndex(source.text, self.encoding))
            self._index[id(source)] = hit
        return hit[1]

    def range(self, span: Span) -> lsp.Range:
        idx = self.index(span.source)
        sl, sc = idx.position(span.start)
        el, ec = idx.position(max(span.end, span.start))
        return lsp.Range(lsp.Position(sl, sc), lsp.Position(el, ec))

    def location(self, span: Span) -> lsp.Location | None:
        if span.source.real_path is None:
            return None
        return lsp.Location(uri_of(span.source.real_path), self.range(span))


def uri_of(path: str) -> str:
    uri = from_fs_path(path)
    return uri if uri is not None else "file://" + path


def to_lsp(d: Diagnostic, ranges: Ranges) -> lsp.Diagnostic:
    """One compiler diagnostic as an LSP diagnostic (a span-less one sits at 0:0)."""
    lines = [d.message]
    if d.label:
        lines.append(d.label)
    related: list[lsp.DiagnosticRelatedInformation] = []
    for note in d.notes:
        loc = ranges.location(note.span) if note.span is not None else None
        if loc is not None:
            related.append(lsp.DiagnosticRelatedInformation(loc, note.message))
        else:
            lines.append(f"note: {note.message}")
    if d.help:
        lines.append(f"help: {d.help}")
    rng = (
        ranges.range(d.span)
        if d.span is not None
        else lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))
    )
    return lsp.Diagnostic(
        range=rng,
        message="\n".join(lines),
        severity=_SEVERITY.get(d.severity, lsp.DiagnosticSeverity.Error),
        code=d.code,
        source="cflc",
        related_information=related or None,
    )


def convert(diags: Iterable[Diagnostic], ranges: Ranges) -> list[lsp.Diagnostic]:
    """Convert and de-duplicate (several entry files may report one mistake)."""
    out: list[lsp.Diagnostic] = []
    seen: set[tuple[object, ...]] = set()
    for d in diags:
        key = (d.code, d.span.key() if d.span is not None else None, d.message)
        if key in seen:
            continue
        seen.add(key)
        out.append(to_lsp(d, ranges))
    return out
