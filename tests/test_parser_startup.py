"""Parser start-up: the fast driver's tables stored in the cache directory.

A new process builds the fast driver from stored tables and parses valid files without
importing Lark; Lark is built only for a syntax error (or the formatter's lexing). The
stored tables must give the same trees as Lark, a stale or damaged file must be ignored
and replaced, and errors must still be Lark's.
"""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from test_fastparse import BROKEN, CFL_FILES, ROOT, dump

from cfglang.source import SourceFile
from cfglang.syntax import parser
from cfglang.syntax.fastlalr import FORMAT, FastLALR


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache directory of this test's own."""
    monkeypatch.setenv("CFLC_CACHE_DIR", str(tmp_path))
    return tmp_path


def tables_file(cache: Path) -> Path:
    (path,) = cache.glob("parser/fastlalr-*.tables")
    return path


def stored_parser(cache: Path) -> parser._Parser:
    """A parser whose fast driver came from the stored tables, not from Lark."""
    parser._Parser()  # derives and stores them
    assert tables_file(cache).is_file()
    p = parser._Parser()
    assert isinstance(p.fast, FastLALR)
    assert p._lark is None, "the tables were derived again rather than loaded"
    return p


def parse_both(p: parser._Parser, text: str, path: str = "input.cfl") -> tuple[Any, Any]:
    before = p.fallbacks
    fast = p.parse(SourceFile(path, text), fast=True)
    fell_back = p.fallbacks != before
    lark = p.parse(SourceFile(path, text), fast=False)
    if lark[0] is not None and not any(d.code == "E0008" for d in lark[1]):
        assert not fell_back, "the fast driver handed a valid input to Lark"
    return dump(fast), dump(lark)


def test_stored_tables_parse_the_repository_as_lark_does(cache: Path) -> None:
    p = stored_parser(cache)
    for path in CFL_FILES:
        fast, lark = parse_both(p, path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
        assert fast == lark, path


@pytest.mark.parametrize("text", BROKEN)
def test_stored_tables_leave_syntax_errors_to_lark(cache: Path, text: str) -> None:
    p = stored_parser(cache)
    fast, lark = parse_both(p, text)
    assert fast == lark
    assert lark[1] != dump([])


def _rewrite(path: Path, change: Any) -> None:
    data = marshal.loads(path.read_bytes())
    change(data["tables"])
    path.write_bytes(marshal.dumps(data))


def _rename_method(tables: dict[str, Any]) -> None:
    for i, (origin, kind, cb, body) in enumerate(tables["rules"]):
        if cb is not None and cb[0] == "method":
            tables["rules"][i] = (origin, kind, ("method", "no_such_method"), body)
            return
    raise AssertionError("no rule with a method")


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(b"not marshal data"),
        lambda path: path.write_bytes(path.read_bytes()[:1000]),  # truncated
        lambda path: path.write_bytes(b""),
        lambda path: path.write_bytes(marshal.dumps({"file": "another.tables", "tables": {}})),
        lambda path: _rewrite(path, lambda t: t.update(format=FORMAT - 1)),
        lambda path: _rewrite(path, lambda t: t.update(actions=t["actions"][:3])),
        lambda path: _rewrite(path, _rename_method),
        lambda path: _rewrite(path, lambda t: t.update(callbacks=[])),
    ],
    ids=[
        "garbage",
        "truncated",
        "empty",
        "other-file",
        "old-format",
        "short-table",
        "stale-method",
        "other-callbacks",
    ],
)
def test_stale_or_damaged_tables_are_ignored_and_replaced(cache: Path, damage: Any) -> None:
    parser._Parser()
    path = tables_file(cache)
    good = marshal.loads(path.read_bytes())
    damage(path)
    p = parser._Parser()
    assert isinstance(p.fast, FastLALR)
    assert p._lark is not None  # the tables were derived again...
    assert marshal.loads(path.read_bytes()) == good  # ...and stored again
    fast, lark = parse_both(p, "a = 1\nb = { c = [1, 2] }\n")
    assert fast == lark


def test_tables_follow_the_grammar(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parser._Parser()
    grammar = tmp_path / "cfl.lark"
    grammar.write_text(
        parser.grammar_path().read_text(encoding="utf-8") + "\n// changed\n", encoding="utf-8"
    )
    monkeypatch.setattr(parser, "grammar_path", lambda: grammar)
    p = parser._Parser()
    assert p._lark is not None  # another grammar: the stored tables are not used
    assert len(list(cache.glob("parser/fastlalr-*.tables"))) == 2


def test_no_cache_directory_means_lark_builds_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cfglang.paths.cache_dir", lambda: None)
    p = parser._Parser()
    assert isinstance(p.fast, FastLALR) and p._lark is not None


_PROBE = textwrap.dedent("""
    import sys
    from cfglang.source import SourceFile
    from cfglang.syntax.parser import _parser, parse_module

    tree, diags = parse_module(SourceFile("a.cfl", sys.argv[1]))
    assert tree is not None and not diags, diags
    print("lark" in sys.modules, _parser().fallbacks)
    tree, diags = parse_module(SourceFile("b.cfl", "a = {\\n"))
    print("lark" in sys.modules, [d.code for d in diags])
""")


@pytest.mark.parametrize("no_cache", ["", "1"])
def test_a_new_process_parses_without_lark(cache: Path, no_cache: str) -> None:
    # `CFLC_NO_CACHE` turns off the parse and build caches, not the grammar's tables
    # (as for Lark's own grammar cache): they hold nothing of the user's.
    env = {**os.environ, "CFLC_CACHE_DIR": str(cache), "CFLC_NO_CACHE": no_cache}
    text = (ROOT / "examples/fleet/base.cfl").read_text(encoding="utf-8")  # committed

    def run() -> list[str]:
        r = subprocess.run(
            [sys.executable, "-c", _PROBE, text],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        return r.stdout.splitlines()

    assert run()[0] == "True 0"  # no tables yet: Lark derives them
    assert run() == ["False 0", "True ['E0002']"]  # Lark only for the error
