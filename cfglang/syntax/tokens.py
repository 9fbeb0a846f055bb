"""Tokens as the AST builder sees them, without importing Lark.

The fast driver (`fastlalr`) makes `Tok`s; Lark, the fallback and error path, makes
`lark.Token`s. Both are `str` subclasses with the same ``type``, ``value``, ``start_pos``
and ``end_pos``, which is all the builder reads. The builder tells tokens from other
children with ``isinstance(c, build._TOKENS)``; `build.accept_lark_tokens` adds
`lark.Token` to that tuple when the parser first builds Lark, so a process that never
needs Lark never imports it (importing it costs about as much as parsing a small project).
"""

from __future__ import annotations

from typing import Any


class Tok(str):
    """A token: its text, its terminal's name and its offsets in the parsed text.

    Line and column are never computed (spans are offsets); they read as None, as on a
    `lark.Token` made without them.
    """

    __slots__ = ("end_pos", "start_pos", "type", "value")
    type: str
    value: str
    start_pos: int | None
    end_pos: int | None
    line = None
    column = None
    end_line = None
    end_column = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (_make, (self.type, self.value, self.start_pos, self.end_pos))

    def __repr__(self) -> str:
        return f"Tok({self.type!r}, {self.value!r})"


def _make(type_: str, value: str, start: int | None, end: int | None) -> Tok:
    tok = str.__new__(Tok, value)
    tok.type, tok.value, tok.start_pos, tok.end_pos = type_, value, start, end
    return tok
