"""The parser shared between threads, deep inputs, and what it reads from its cache.

- Re-entrant: many threads parse different files at once, through the fast driver and
  through Lark (valid files, syntax errors, the formatter's lexing), and every result is
  the one a sequential parse gives: trees with every span and doc comment, diagnostics
  field by field. No lock is held around a parse, so these really do interleave.
- Deep: a file nested 50,000 levels deep (brackets, blocks, object literals,
  parentheses, substitutions, ...) gets E0011 (or its syntax error) at the default
  recursion limit, on the main thread and on a plain `threading.Thread`, and the parse
  changes neither the recursion limit nor the collector.
- Trusted cache: the fast driver's tables and Lark's pickle are read only from files the
  user alone could have written, and tables never supply code (`cfglang.syntax.store`).
"""

from __future__ import annotations

import gc
import marshal
import os
import pickle
import random
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_fastparse import BROKEN, CFL_FILES, ROOT, dump

from cfglang.source import SourceFile
from cfglang.syntax import parser, store
from cfglang.syntax.build import AstBuilder
from cfglang.syntax.fastlalr import FastLALR

THREADS = 8


def _run_threads(n: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` on ``n`` plain threads, started together; re-raise the first error."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException as e:  # re-raised on the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _inputs() -> list[tuple[str, str]]:
    """(path, text) of every repository file, the broken inputs, and some with docs."""
    files = [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in CFL_FILES]
    files += [(f"broken{i}.cfl", text) for i, text in enumerate(BROKEN)]
    files += [
        (
            f"docs{i}.cfl",
            f"## field {i}\n## second line\na{i} = {i}\n"
            f'b = "x $<a{i} + {i}> y"\n## block\nc {{ d = [({i}), 2] }}\n',
        )
        for i in range(20)
    ]
    return files


def _parse(path: str, text: str, fast: bool) -> Any:
    return dump(parser.parse_module(SourceFile(path, text), fast=fast))


def test_threads_parse_as_a_sequential_parse_does() -> None:
    files = _inputs()
    expected = {(path, fast): _parse(path, text, fast) for path, text in files for fast in (1, 0)}
    results: list[list[tuple[tuple[str, bool], Any]]] = [[] for _ in range(THREADS)]

    def work(i: int) -> None:
        order = [(path, text, fast) for path, text in files for fast in (True, False)]
        random.Random(i).shuffle(order)  # each thread in another order: they interleave
        for path, text, fast in order:
            results[i].append(((path, fast), _parse(path, text, fast)))

    _run_threads(THREADS, work)
    for got in results:
        assert len(got) == len(expected)
        for key, value in got:
            assert value == expected[key], key


def test_threads_get_their_own_syntax_errors() -> None:
    # Lark's post-lexer leaves the open brackets in the builder of its parse; the
    # messages made from them must be the thread's own, not another parse's.
    cases = [
        ("a = (1 +\nb = 2\n", "E0002"),
        ("a = [1,\n", "E0002"),
        ("a = {\n", "E0002"),
        ("a = 1,\n", "E0006"),
        ('a = "abc\n', "E0003"),
        ("a: = 1\n", "E0001"),
    ]

    def work(i: int) -> None:
        for _ in range(20):
            for text, code in cases:
                tree, diags = parser.parse_module(SourceFile(f"t{i}.cfl", text))
                assert tree is None and [d.code for d in diags] == [code], (text, diags)

    _run_threads(THREADS, work)


def test_threads_lex_for_the_formatter_as_a_sequential_lexing_does() -> None:
    files = [(p, t) for p, t in _inputs() if parser.parse_module(SourceFile(p, t))[0] is not None]
    files = files[:40]
    expected = [parser.lex_tokens(SourceFile(p, t)) for p, t in files]

    def work(i: int) -> None:
        for (path, text), want in zip(files, expected, strict=True):
            assert parser.lex_tokens(SourceFile(path, text)) == want, path

    _run_threads(4, work)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "lark"])
def test_no_lock_is_held_around_a_parse(monkeypatch: pytest.MonkeyPatch, fast: bool) -> None:
    # One parse stops inside a callback; another one, on the same parser, runs to the end.
    entered, release = threading.Event(), threading.Event()
    original = AstBuilder.comment

    def comment(self: AstBuilder, tok: Any) -> Any:
        if tok.value == "## wait":
            entered.set()
            assert release.wait(60)
        return original(self, tok)

    monkeypatch.setattr(AstBuilder, "comment", comment)
    p = parser._Parser()
    p.lark  # noqa: B018
    waiting: list[Any] = []
    slow = threading.Thread(
        target=lambda: waiting.append(p.parse(SourceFile("a.cfl", "## wait\na = 1\n"), fast=fast))
    )
    slow.start()
    try:
        assert entered.wait(60)
        tree, diags = p.parse(SourceFile("b.cfl", "## doc\nb = 2\n"), fast=fast)
        assert tree is not None and not diags and tree.body.stmts[0].doc == "doc"
        assert not waiting  # the first parse is still inside its callback
    finally:
        release.set()
        slow.join()
    ((tree, diags),) = waiting
    assert tree is not None and not diags and tree.body.stmts[0].doc == "wait"


def test_a_builder_holds_all_of_one_parses_state() -> None:
    # Nothing a parse changes lives on the shared parser.
    p = parser._parser()
    p.lark  # noqa: B018  # built before, as a syntax error needs it
    shared = dict(vars(p))
    parser.parse_module(SourceFile("a.cfl", "## doc\na = [1, (2)]\nb = (\n"))
    assert {k: v for k, v in vars(p).items() if k != "fallbacks"} == {
        k: v for k, v in shared.items() if k != "fallbacks"
    }


def test_one_definition_of_the_newline_rules() -> None:
    p = parser._parser()
    assert p.postlex.rules is parser.NEWLINES
    assert isinstance(p.fast, FastLALR) and p.fast._newlines is parser.NEWLINES


def test_a_builder_error_is_not_taken_for_a_syntax_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fast driver hands a parse to Lark only by raising `ParseFailed`: a bug in a
    # callback surfaces as itself, and is not retried as if the input were wrong.
    def broken(self: AstBuilder, ch: list[Any]) -> Any:
        raise ZeroDivisionError("a bug in a callback")

    monkeypatch.setattr(AstBuilder, "int_lit", broken)
    p = parser._Parser()
    with pytest.raises(ZeroDivisionError):
        p.parse(SourceFile("a.cfl", "a = 1\n"), fast=True)
    assert p.fallbacks == 0


# ---- deep inputs ------------------------------------------------------------------------------

DEEP = 50_000


def _deep_cases() -> dict[str, tuple[str, str]]:
    n = DEEP
    return {
        "brackets": ("x = " + "[" * n + "]" * n + "\n", "E0011"),
        "blocks": ("".join(f"a{i} {{ " for i in range(n)) + "}" * n + "\n", "E0011"),
        "object_literals": ("x = " + "{ a = " * n + "1" + " }" * n + "\n", "E0011"),
        "parentheses": ("x = " + "(" * n + "1" + ")" * n + "\n", "E0011"),
        "parenthesised_sums": ("x = " + "(1 + " * n + "1" + ")" * n + "\n", "E0011"),
        "substitution_operators": ('x = "$<' + "-" * n + '1>"\n', "E0011"),
        "substitution_path": ('x = "$<a' + ".b" * n + '>"\n', "E0011"),
        "dotted_key": ("a" + ".b" * n + " = 1\n", "E0011"),
        "calls": ("x = " + "f(" * n + "1" + ")" * n + "\n", "E0011"),
        "if_chain": ("x = " + "if true then 1 else " * n + "1\n", "E0011"),
        "unclosed": ("x = " + "[" * n + "\n", "E0002"),
    }


@pytest.fixture
def default_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The interpreter's default recursion limit; the parse must change nothing global."""
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    toggles: list[str] = []
    monkeypatch.setattr(gc, "disable", lambda: toggles.append("disable"))
    monkeypatch.setattr(gc, "enable", lambda: toggles.append("enable"))
    enabled = gc.isenabled()
    try:
        yield
        assert sys.getrecursionlimit() == 1000
        assert toggles == [] and gc.isenabled() == enabled
    finally:
        sys.setrecursionlimit(saved)


def _check_deep(name: str, fast: bool) -> None:
    text, code = _deep_cases()[name]
    tree, diags = parser.parse_module(SourceFile(f"{name}.cfl", text), fast=fast)
    assert tree is None
    assert [d.code for d in diags] == [code], diags
    if code == "E0011":
        assert "nested too deeply to parse" not in diags[0].message  # the limit, not a crash


@pytest.mark.parametrize("name", list(_deep_cases()))
def test_deep_input_on_the_main_thread(name: str, default_limits: None) -> None:
    assert threading.current_thread() is threading.main_thread()
    _check_deep(name, fast=True)


@pytest.mark.parametrize("name", list(_deep_cases()))
def test_deep_input_on_a_plain_thread(name: str, default_limits: None) -> None:
    _run_threads(1, lambda i: _check_deep(name, fast=True))


@pytest.mark.parametrize("name", ["brackets", "parentheses", "blocks", "unclosed"])
def test_deep_input_through_lark_on_a_plain_thread(name: str, default_limits: None) -> None:
    _run_threads(1, lambda i: _check_deep(name, fast=False))


def test_parentheses_count_from_the_second_pair() -> None:
    from cfglang.limits import MAX_NESTING

    def parse(depth: int) -> list[str]:
        text = "x = " + "(" * depth + "1" + ")" * depth + "\n"
        return [d.code for d in parser.parse_module(SourceFile("p.cfl", text))[1]]

    # One pair is grouping; each further pair around it is a level (x is at level 0).
    assert parse(MAX_NESTING + 1) == []
    assert parse(MAX_NESTING + 2) == ["E0011"]
    text = "x = " + "(" * 200 + "1" + ")" * 200 + "\n"
    (diag,) = parser.parse_module(SourceFile("p.cfl", text))[1]
    assert diag.span.start == 4 + MAX_NESTING + 1  # the pair that opens level 129
    assert parse(1) == []


# ---- what is read from the cache directory ----------------------------------------------------


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache directory of this test's own; returns the parser's directory in it."""
    monkeypatch.setenv("CFLC_CACHE_DIR", str(tmp_path))
    parser._Parser()  # derives and stores the tables
    parser._Parser().lark  # noqa: B018  # builds and stores Lark
    return tmp_path / "parser"


def _one(directory: Path, pattern: str) -> Path:
    (path,) = directory.glob(pattern)
    return path


class _Marker:
    """Unpickling this writes a file: proof that a pickle was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (Path.write_text, (self.path, "loaded"))


def _loads_stored_tables() -> bool:
    p = parser._Parser()
    assert isinstance(p.fast, FastLALR)
    return p._lark is None  # the tables were loaded, not derived from Lark


def test_the_parser_directory_is_private(cache: Path) -> None:
    assert cache.is_dir() and cache.stat().st_mode & 0o777 == 0o700
    for path in cache.iterdir():
        assert path.stat().st_mode & 0o077 == 0, path
    assert _loads_stored_tables()


@pytest.mark.parametrize("bits", [0o020, 0o002], ids=["group-writable", "world-writable"])
def test_tables_others_could_write_are_not_read(cache: Path, bits: int) -> None:
    path = _one(cache, "fastlalr-*.tables")
    os.chmod(path, 0o600 | bits)
    assert not _loads_stored_tables()
    assert parser.parse_module(SourceFile("a.cfl", "a = [1]\n")) == parser.parse_module(
        SourceFile("a.cfl", "a = [1]\n"), fast=False
    )


def test_a_directory_others_could_write_is_not_read(cache: Path) -> None:
    os.chmod(cache, 0o777)
    try:
        assert not _loads_stored_tables()
    finally:
        os.chmod(cache, 0o700)
    assert _loads_stored_tables()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs chown")
def test_files_of_another_user_are_not_read(cache: Path, tmp_path: Path) -> None:
    path = _one(cache, "fastlalr-*.tables")
    os.chown(path, 12345, 12345)
    assert not _loads_stored_tables()
    marker = tmp_path / "loaded"
    lark_file = _one(cache, "lark-*.pickle")
    lark_file.write_bytes(pickle.dumps(_Marker(marker)))
    os.chown(lark_file, 12345, 12345)
    parser._Parser().lark  # noqa: B018
    assert not marker.exists()


def test_a_pickle_others_could_write_is_not_loaded(cache: Path, tmp_path: Path) -> None:
    marker = tmp_path / "loaded"
    lark_file = _one(cache, "lark-*.pickle")
    lark_file.write_bytes(pickle.dumps(_Marker(marker)))
    os.chmod(lark_file, 0o666)
    p = parser._Parser()
    p.lark  # noqa: B018  # built from the grammar instead
    assert not marker.exists()
    tree, diags = p.parse(SourceFile("bad.cfl", "a = {\n"))
    assert tree is None and [d.code for d in diags] == ["E0002"]


def test_a_trusted_stored_lark_is_used(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lark

    def no_build(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("Lark was built from the grammar")

    monkeypatch.setattr(lark.Lark, "__init__", no_build)
    p = parser._Parser()
    _, diags = p.parse(SourceFile("bad.cfl", "a = {\n"))
    assert [d.code for d in diags] == ["E0002"]


def _tamper(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = marshal.loads(path.read_bytes())
    change(data["tables"])
    path.write_bytes(marshal.dumps(data))
    os.chmod(path, 0o600)


def test_tables_never_supply_code(cache: Path, tmp_path: Path) -> None:
    # Tables that pass the ownership check but were edited: a reducer "size" that would
    # be code if it were pasted into the generated reducers. It is refused, the tables
    # are derived again, and parsing works.
    marker = tmp_path / "ran"
    payload = f"1:]\n        open({str(marker)!r}, 'w')\n        ch = v[-1"

    def inject(tables: dict[str, Any]) -> None:
        _, *rest = tables["reducers"][0]
        tables["reducers"][0] = (payload, *rest)

    path = _one(cache, "fastlalr-*.tables")
    _tamper(path, inject)
    assert not _loads_stored_tables()
    assert not marker.exists()
    tree, diags = parser._Parser().parse(SourceFile("a.cfl", "a = { b = [1, 2] }\n"))
    assert tree is not None and not diags
    assert _loads_stored_tables()  # replaced by good ones


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.update(rules=[(o, k, ("method", "__init__"), f) for o, k, _, f in t["rules"]]),
        lambda t: t.update(reducers=[(1, [(5, True)], False, True, False)] * len(t["reducers"])),
        lambda t: t.update(reducers=[(1, None, "yes", True, False)] * len(t["reducers"])),
        lambda t: t.update(reducers="not a list"),
    ],
    ids=["private-method", "child-out-of-range", "flag-not-bool", "not-a-list"],
)
def test_edited_tables_are_refused(cache: Path, change: Callable[[dict[str, Any]], None]) -> None:
    _tamper(_one(cache, "fastlalr-*.tables"), change)
    assert not _loads_stored_tables()


def test_tables_hold_only_data(cache: Path) -> None:
    def plain(x: Any) -> bool:
        if isinstance(x, dict):
            return all(plain(k) and plain(v) for k, v in x.items())
        if isinstance(x, (list, tuple)):
            return all(plain(y) for y in x)
        return x is None or type(x) in (str, int, bool)

    tables = store.load_tables(_one(cache, "fastlalr-*.tables"))
    assert tables is not None and plain(tables)
