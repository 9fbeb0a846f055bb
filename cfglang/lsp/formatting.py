"""Formatting: the `cflc fmt` engine (`cfglang.tools.fmt.format_source`), as one whole edit."""

from __future__ import annotations

import os

from lsprotocol import types as lsp

from cfglang.lsp.positions import LineIndex
from cfglang.tools.fmt import FormatError, format_source


def format_document(text: str, path: str, encoding: str = "utf-16") -> list[lsp.TextEdit]:
    """One edit replacing the whole text, or none when it is formatted or does not parse."""
    try:
        new = format_source(text, os.path.basename(path))
    except FormatError:
        return []
    if new == text:
        return []
    idx = LineIndex(text, encoding)
    end = idx.position(len(text))
    return [lsp.TextEdit(lsp.Range(lsp.Position(0, 0), lsp.Position(*end)), new)]
