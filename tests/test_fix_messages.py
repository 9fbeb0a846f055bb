"""Messages that name the fix (issue 14, section 7), beside their golden cases: the unit
did-you-mean table, and which `{` the indentation says was never closed (docs/errors.md,
E0002), on layouts the goldens do not cover."""

from __future__ import annotations

import pytest

from cfglang.source import SourceFile
from cfglang.syntax.parser import parse_module
from cfglang.values import did_you_mean_unit, unit_suggestions


@pytest.mark.parametrize(
    ("unit", "want"),
    [
        ("Gb", ("GB", "GiB")),
        ("gb", ("GB", "GiB")),
        ("Mi", ("MiB",)),
        ("M", ("MB", "MiB")),
        ("sec", ("s",)),
        ("seconds", ("s",)),
        ("mins", ("m",)),
        ("hours", ("h",)),
        ("days", ("d",)),
        ("msec", ("ms",)),
        ("S", ("s",)),
        ("bytes", ("B",)),
        ("GB", ()),
        ("ms", ()),
        ("x", ()),
    ],
)
def test_unit_suggestions(unit: str, want: tuple[str, ...]) -> None:
    assert unit_suggestions(unit) == want


def test_did_you_mean_unit_keeps_the_number() -> None:
    assert did_you_mean_unit("4", "Gb") == "did you mean 4GB or 4GiB?"
    assert did_you_mean_unit("4", "zz") is None


def unclosed(text: str) -> tuple[int, int, str | None]:
    """(line, column) of the E0002 and its help."""
    source = SourceFile("m.cfl", text)
    tree, diags = parse_module(source)
    assert tree is None
    (d,) = diags
    assert d.code == "E0002" and d.span is not None
    line, col = d.span.source.line_col(d.span.start)
    return line, col, d.help


def test_same_line_blocks_are_closed() -> None:
    text = 'x { a = 1 }\nsvc {\n  db { host = "h" }\n  port = 1\n'
    assert unclosed(text) == (2, 5, "add `}`")


def test_the_inner_block_the_indentation_leaves_is_reported() -> None:
    text = "a {\n  b {\n    c = 1\n  d {\n    e = 2\n  }\n}\n"
    assert unclosed(text) == (2, 5, "add `}` before line 4")


def test_two_missing_braces_report_the_inner_one() -> None:
    text = "a {\n  b {\n    c = 1\nd = 2\n"
    assert unclosed(text) == (2, 5, "add `}` before line 4")


def test_comments_and_blank_lines_do_not_end_a_block() -> None:
    text = "a {\n  b = 1\n\n# note\n  c = 2\n"
    assert unclosed(text) == (1, 3, "add `}`")
