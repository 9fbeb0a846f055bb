"""The fast LALR driver (cfglang/syntax/fastlalr.py) against Lark, its reference.

Every parse is done twice, through the fast driver and through Lark alone (``fast=False``),
and the two results must be the same: the trees compared node by node with every span and
doc comment (node equality ignores spans), and the diagnostics field by field. Inputs:
every CFL file of the repository (golden cases, examples, the standard library), the
fleet benchmark's sources as gen.py writes them, generated programs, token soups and
broken files, where the fast driver must hand over to Lark and the diagnostics must be
Lark's. Valid files must also get through the fast driver without that hand-over, or the
speed-up would silently vanish.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lark import Token
from test_properties import program_text, programs, token_soup

from cfglang.source import SourceFile, Span
from cfglang.syntax import parser
from cfglang.syntax.fastlalr import FastLALR, Tok
from cfglang.syntax.parser import parse_expression, parse_module

ROOT = Path(__file__).resolve().parent.parent
CFL_FILES = sorted(
    {
        *ROOT.glob("tests/cases/**/*.cfl"),
        *ROOT.glob("examples/**/*.cfl"),
        *ROOT.glob("stdlib/**/*.cfl"),
        *ROOT.glob("benchmarks/peers/work/s10/cfl/*.cfl"),
    }
    # Nested as deep as the compiler allows: deeper than `dump` (recursive, several frames
    # a level) can compare. tests/test_limits.py covers them.
    - {*ROOT.glob("tests/cases/limits/*_at_limit/*.cfl")}
)


def dump(x: Any) -> Any:
    """A comparable image of a tree: every field of every node, spans as offsets."""
    if isinstance(x, Span):
        return ("span", x.source.path, x.start, x.end)
    if isinstance(x, (Token, Tok)):
        raise AssertionError(f"a token in the tree: {x!r}")
    if attrs.has(type(x)):
        return (
            type(x).__name__,
            tuple((f.name, dump(getattr(x, f.name))) for f in attrs.fields(type(x))),
        )
    if isinstance(x, (tuple, list)):
        return (type(x).__name__, tuple(dump(y) for y in x))
    if isinstance(x, dict):
        return ("dict", tuple((k, dump(v)) for k, v in x.items()))
    return (type(x).__name__, repr(x))


@contextmanager
def no_fallback() -> Iterator[None]:
    """Fails unless every parse inside is done by the fast driver alone."""
    p = parser._parser()
    assert p.fast is not None, "the fast driver does not support this Lark configuration"
    before = p.fallbacks
    yield
    assert p.fallbacks == before, "the fast driver handed a valid input to Lark"


def both(text: str, path: str = "input.cfl", *, expr: bool = False) -> tuple[Any, Any]:
    """(fast, lark) results of parsing ``text``, each as a dump of (tree, diagnostics).

    Checks on the way that the fast driver handed the input to Lark only if it had to:
    for a syntax error, or a substitution that is no expression (E0008), which makes Lark
    parse the whole file again.
    """
    parse = parse_expression if expr else parse_module
    p = parser._parser()
    before = p.fallbacks
    tree, diags = parse(SourceFile(path, text), fast=True)
    fell_back = p.fallbacks != before
    lark_tree, lark_diags = parse(SourceFile(path, text), fast=False)
    if fell_back:
        assert lark_tree is None or any(d.code == "E0008" for d in lark_diags), (
            "the fast driver handed a valid input to Lark"
        )
    return (dump(tree), dump(diags)), (dump(lark_tree), dump(lark_diags))


def assert_same(text: str, path: str = "input.cfl", *, expr: bool = False) -> Any:
    fast, lark = both(text, path, expr=expr)
    assert fast == lark
    return fast


# ---- the repository's sources ---------------------------------------------------------------


@pytest.mark.parametrize("path", CFL_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_repository_sources_parse_the_same(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    tree, _ = assert_same(text, str(path.relative_to(ROOT)))
    if tree != dump(None):  # a valid file: the fast driver must have done it alone
        with no_fallback():
            parse_module(SourceFile(str(path), text), fast=True)


def test_the_repository_has_sources_to_compare() -> None:
    assert len(CFL_FILES) > 100
    assert any("syntax" in p.parts for p in CFL_FILES)  # broken files too


def _fleet_sources(size: int) -> dict[str, str]:
    """The fleet benchmark's CFL files, as benchmarks/peers/gen.py writes them."""
    spec = importlib.util.spec_from_file_location("peers_gen", ROOT / "benchmarks/peers/gen.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    files: dict[str, str] = gen.gen_cfl(gen.base_services(size), None)
    return {name: text for name, text in files.items() if name.endswith(".cfl")}


@pytest.mark.parametrize("size", [10, 300])
def test_benchmark_sources_parse_the_same(size: int) -> None:
    for name, text in _fleet_sources(size).items():
        assert_same(text, name)
        with no_fallback():
            parse_module(SourceFile(name, text), fast=True)


# ---- constructs the driver must get exactly right -------------------------------------------


EXACT = [
    # keywords lex as NAME where the keyword is not acceptable
    "env = 1\nin = 2\ntype = 3\ncheck = 4\nfrom = 5\ninput { output = 1 }\n",
    'schema S { type: string; env: int = 1 }\ninput port: int = 8 from env "PORT"\n',
    # newline rules: inside ( and [, after continuation tokens, runs and separators
    "a = [\n  1,\n\n  2\n]\nb = f(\n  1,\n  x = 2\n)\nc = 1 +\n  2\nd = a.\n  b\n",
    "a = 1;;\n\n;b = 2\n\n\n",
    "\n\n  # only a comment\n\n",
    "",
    "x = if a then\n  1 else\n  2\n",
    "\r\n a = 1\r\n\r\nb = [\r\n 1]\r\n",
    "\tx\t=\f1 \r\n",
    # doc comments, attached to what follows them
    "## the port\n## (two lines)\nport: int = 8\n\n## a schema\nschema S {\n  ## f\n  f: int\n}\n",
    "a = 1 ## trailing doc\nb = 2\n",
    # strings: escapes, substitutions (plain paths and real expressions), raw, multi-line
    'a = "x\\ty\\u{1F600}\\u0041\\$<no>"\nb = "$<a> and $<a.b[0]> and $<(1 + 2)>"\n',
    'c = r"raw $<x> \\n"\nd = """\n    two\n      lines $<a>\n    """\ne = r"""\n  raw\n  """\n',
    'f = "$$<literal>"\ng = "$<if a then "x" else f("y", [1])>"\nh = "$<a > b>"\n',
    # literals
    "a = [1_000, 0xff, 1.5e3, 2h30m, 10MiB, -9223372036854775808, true, false, null]\n",
    "a = 9223372036854775808\nb = 99999999999999999999\n",
    # expressions: precedence, unary, calls, comprehensions, refinements
    "a = 1 + 2 * 3 - -4 % 5 == 6 || !b && c in d\ne = x.y[0](1, k = 2,)\n",
    "a = [x * 2 for x in xs if x > 1]\nb = [k for k, v in m]\nc = base { d = 1 }\n",
    "a = self.b\nc = super.d\ne = (1 + 2) * 3\n",
    # statements
    'import "std/net"\nimport "a.cfl" as b\nextends "base.cfl"\nlet x: int = 1\n',
    'type Port = int where self > 0 && self < 65536\ntype E = "a" | "b" | 1 | -2 | null\n',
    "schema S extends T.U { final hidden a: map[string, list[int?]] = {} where true }\n",
    'template t(a: int, b = 2,): S { x = a }\noutput "o.json": json = t(1)\n',
    'check a > 0: "positive"\ncheck { x = 1 }\nunset a.b\n',
    "if a { b = 1 } else if c { d = 2 } else { e = 3 }\nfor k, v in m { x = v }\n",
    'a.b."c d".e += [1]\nf extends g\nh { i = 1 }\n"k" = 1\n',
    # reserved words used as names: a diagnostic, but the parse goes on
    "else = 1\nx = then\n",
]


@pytest.mark.parametrize("text", EXACT)
def test_constructs_parse_the_same(text: str) -> None:
    tree, _ = assert_same(text)
    assert tree != dump(None)


@pytest.mark.parametrize(
    "text", ["1 + 2 * x.y", "  \n if a then b else c \n", '"$<a>"', "[for]", ""]
)
def test_expressions_parse_the_same(text: str) -> None:
    assert_same(text, expr=True)


# ---- errors: Lark's diagnostics, unchanged --------------------------------------------------


BROKEN = [
    "a = \n",
    "a = 1,\nb = 2\n",
    "a = 1\nb: 1 = 2 = 3\n",
    "x = (1 +\n",
    "x = [1, 2\ny = 3\n",
    "s {\n",
    'a = "never closed\n',
    'a = """\nnever closed',
    'a = "$<x"\n',
    "a = 1 @ 2\n",
    "a = .5\n",
    "a = 5 parsecs\n",
    "}\n",
    'a = "$<1 +>"\n',
    "x = 1 +\n",
    "a = 1 < 2 < 3\n",
    "let = 1\n",
    "a = b c\n",
    "\x00",
    "a = 1\n\n@",
]


@pytest.mark.parametrize("text", BROKEN)
def test_syntax_errors_get_larks_diagnostics(text: str) -> None:
    fast, lark = both(text)
    assert fast == lark
    assert lark[1] != dump([])  # each of these is reported


def test_syntax_error_falls_back_to_lark() -> None:
    p = parser._parser()
    before = p.fallbacks
    tree, diags = parse_module(SourceFile("bad.cfl", "a = {\nb = [1,\n"), fast=True)
    assert p.fallbacks == before + 1
    assert tree is None and [d.code for d in diags] == ["E0002"]


def test_lark_can_be_forced_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    p = parser._parser()
    monkeypatch.setenv("CFLC_PARSER", "lark")
    fast = p.fast
    p.fast = None  # would fail loudly if it were used
    try:
        tree, diags = parse_module(SourceFile("a.cfl", "a = 1\n"))
    finally:
        p.fast = fast
    assert tree is not None and not diags
    monkeypatch.delenv("CFLC_PARSER")
    assert os.environ.get("CFLC_PARSER") is None


# ---- generated inputs -----------------------------------------------------------------------


@given(programs())
def test_generated_programs_parse_the_same(prog: Any) -> None:
    base, main = program_text(prog)
    for text in (base, main):
        if text is not None:
            assert_same(text)
            with no_fallback():
                parse_module(SourceFile("input.cfl", text), fast=True)


@given(token_soup())
def test_token_soups_parse_the_same(text: str) -> None:
    assert_same(text)


@given(
    st.text(
        alphabet=st.sampled_from(list(' \t\r\n\f#;,.=+-*/%<>!|&?:()[]{}"$\\rx0_1a')), max_size=60
    )
)
def test_character_soups_parse_the_same(text: str) -> None:
    assert_same(text)


# ---- the driver itself ----------------------------------------------------------------------


def test_tokens_have_what_the_builder_reads() -> None:
    tok = str.__new__(Tok, "abc")
    tok.type, tok.value, tok.start_pos, tok.end_pos = "NAME", "abc", 3, 6
    assert tok == "abc" and tok.line is None and tok.column is None
    import pickle

    back = pickle.loads(pickle.dumps(tok))
    assert type(back) is Tok and back == "abc"
    assert (back.type, back.value, back.start_pos, back.end_pos) == ("NAME", "abc", 3, 6)


def test_the_builder_takes_both_kinds_of_tokens() -> None:
    from cfglang.syntax import build

    parser._parser().lark  # noqa: B018  # building Lark admits its tokens
    assert build._TOKENS == (Tok, Token)


def test_driver_is_built_from_larks_tables() -> None:
    p = parser._parser()
    assert isinstance(p.fast, FastLALR)
    # The suffix that eats whitespace after a token is derived from the %ignore terminal.
    assert p.fast._suffix
