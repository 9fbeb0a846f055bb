"""The syntax tree's own behaviour: equality without spans, readable reprs, pickling."""

from __future__ import annotations

import pickle

from cfglang.source import SourceFile
from cfglang.syntax import ast
from cfglang.syntax.parser import parse_module


def _parse(text: str) -> ast.Module:
    module, diags = parse_module(SourceFile("t.cfl", text))
    assert module is not None and not diags
    return module


def test_repr_lists_fields_without_spans() -> None:
    stmt = _parse("a = x\n").body.stmts[0]
    assert repr(stmt.value) == "Name(name='x')"  # type: ignore[union-attr]
    assert repr(stmt).startswith("Field(path=(Key(name='a', expr=None),), op='set', type=None, ")


def test_equal_text_gives_equal_trees_and_pickles_round_trip() -> None:
    a = _parse('a = "$<b> c"\nb = [1, 2]\n')
    b = _parse('a   =   "$<b> c"\n\nb = [1,2]\n')
    assert a == b
    assert pickle.loads(pickle.dumps(a)) == a
