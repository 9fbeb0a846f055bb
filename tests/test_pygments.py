"""The Pygments lexer: no error tokens on any valid file, the right token for each construct."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pygments.lexer import Lexer
from pygments.token import Error, Token, Whitespace, _TokenType

from cfglang.pygments_lexer import CflLexer

ROOT = Path(__file__).parent.parent
SYNTAX_ERROR = re.compile(r"error\[E000\d\]")


def _valid_files() -> list[Path]:
    files = sorted(p for d in ("examples", "stdlib") for p in (ROOT / d).rglob("*.cfl"))
    for case in sorted((ROOT / "tests" / "cases").glob("*/*")):
        err = case / "expected.err"
        if err.is_file() and SYNTAX_ERROR.match(err.read_text()):
            continue  # a case about a syntax error: its main.cfl is meant not to parse
        files.extend(sorted(case.rglob("*.cfl")))
    return files


VALID = _valid_files()


def tokens(src: str) -> list[tuple[_TokenType, str]]:
    return [(t, v) for t, v in CflLexer().get_tokens(src) if t not in Whitespace and v.strip()]


def token_of(src: str, text: str, nth: int = 1) -> _TokenType:
    """The token type of the `nth` token whose text is `text`."""
    seen = 0
    for t, v in tokens(src):
        if v == text:
            seen += 1
            if seen == nth:
                return t
    raise AssertionError(f"no token {text!r} (#{nth}) in {tokens(src)}")


def test_corpus_is_not_empty() -> None:
    assert len(VALID) > 50
    assert any(p.parts[-3:-1] == ("fleet", "env") for p in VALID)


@pytest.mark.parametrize("path", VALID, ids=[str(p.relative_to(ROOT)) for p in VALID])
def test_no_error_tokens(path: Path) -> None:
    src = path.read_text(encoding="utf-8")
    toks = list(CflLexer(stripnl=False).get_tokens(src))
    errors = [v for t, v in toks if t in Error]
    assert not errors, f"error tokens {errors} in {path}"
    # The lexer accounts for every character (get_tokens adds a final newline).
    assert "".join(v for _, v in toks).rstrip("\n") == src.replace("\r\n", "\n").rstrip("\n")


@pytest.mark.parametrize(
    ("src", "text", "expected", "nth"),
    [
        # comments and doc comments
        ("# plain\nx = 1", "# plain", Token.Comment.Single, 1),
        ("## documented\nx = 1", "## documented", Token.Literal.String.Doc, 1),
        # declarations
        ('import "std/net" as net', "import", Token.Keyword.Namespace, 1),
        ('import "std/net" as net', "as", Token.Keyword.Namespace, 1),
        ('import "std/net" as net', "net", Token.Name.Namespace, 1),
        ('extends "../base.cfl"', "extends", Token.Keyword.Namespace, 1),
        ('input token: secret from env "API_TOKEN"', "input", Token.Keyword.Declaration, 1),
        ('input token: secret from env "API_TOKEN"', "token", Token.Name.Variable, 1),
        ('input token: secret from env "API_TOKEN"', "secret", Token.Keyword.Type, 1),
        ('input token: secret from env "API_TOKEN"', "from", Token.Keyword, 1),
        ('input token: secret from env "API_TOKEN"', "env", Token.Keyword, 1),
        ("let domain = 1", "let", Token.Keyword.Declaration, 1),
        ("type Port = int where self > 0", "type", Token.Keyword.Declaration, 1),
        ("type Port = int where self > 0", "Port", Token.Name.Class, 1),
        ("type Port = int where self > 0", "int", Token.Keyword.Type, 1),
        ("type Port = int where self > 0", "where", Token.Keyword, 1),
        ("type Port = int where self > 0", "self", Token.Name.Builtin.Pseudo, 1),
        # `outer.name` (docs/language.md §3.6); a field called `outer` stays a name
        ("db { host = outer.name }", "outer", Token.Name.Builtin.Pseudo, 1),
        ("x = outer", "outer", Token.Name, 1),
        ("schema B extends a.A { x: int }", "B", Token.Name.Class, 1),
        ("schema B extends a.A { x: int }", "a.A", Token.Name.Class, 1),
        ("template Web(name: string, port: Port = 80): S {\n}", "Web", Token.Name.Function, 1),
        ("template Web(name: string, port: Port = 80): S {\n}", "port", Token.Name.Variable, 1),
        ("template Web(name: string, port: Port = 80): S {\n}", "Port", Token.Name.Class, 1),
        ("template Web(name: string, port: Port = 80): S {\n}", "S", Token.Name.Class, 1),
        ('output "a.ini": ini = app', "output", Token.Keyword.Declaration, 1),
        ('output "a.ini": ini = app', "ini", Token.Name.Constant, 1),
        ('check x > 1 : "msg"', "check", Token.Keyword, 1),
        ("unset db.host", "host", Token.Name.Attribute, 1),
        # keyword-named fields and contextual words
        ('db {\n  type = "postgres"\n}', "type", Token.Name.Attribute, 1),
        ("check = true", "check", Token.Name.Attribute, 1),
        ("output = 1", "output", Token.Name.Attribute, 1),
        ("import = 1; extends = 2", "extends", Token.Name.Attribute, 1),
        ("env = 1", "env", Token.Name.Attribute, 1),
        ("kind = db.type", "type", Token.Name.Attribute, 1),
        ("final region = 1", "final", Token.Keyword, 1),
        ("final region = 1", "region", Token.Name.Attribute, 1),
        ("a.b.c = 1", "c", Token.Name.Attribute, 1),
        # types
        ("x: map[string, list[net.Port]]? = {}", "map", Token.Keyword.Type, 1),
        ("x: map[string, list[net.Port]]? = {}", "net", Token.Name.Namespace, 1),
        ("x: map[string, list[net.Port]]? = {}", "Port", Token.Name.Class, 1),
        ("x: map[string, list[net.Port]]? = {}", "?", Token.Operator, 1),
        ('x: "a" | 8080 | null = null', "|", Token.Operator, 1),
        # numbers, durations, sizes
        ("x = [1_000, 0x1F, 2.5e3]", "1_000", Token.Literal.Number.Integer, 1),
        ("x = [1_000, 0x1F, 2.5e3]", "0x1F", Token.Literal.Number.Hex, 1),
        ("x = [1_000, 0x1F, 2.5e3]", "2.5e3", Token.Literal.Number.Float, 1),
        ("t = 1h30m", "1h30m", Token.Literal.Number.Duration, 1),
        ("t = 250ms", "250ms", Token.Literal.Number.Duration, 1),
        ("s = 512MiB", "512MiB", Token.Literal.Number.Size, 1),
        # strings and substitutions
        ('u = "a$<db.host>b"', "$<", Token.Literal.String.Interpol, 1),
        ('u = "a$<db.host>b"', "db", Token.Name, 1),
        ('u = "a$<db.host>b"', "host", Token.Name.Attribute, 1),
        ('u = "a$<db.host>b"', ">", Token.Literal.String.Interpol, 1),
        ('u = "$<(p > 5)>"', ">", Token.Operator, 1),
        ('u = "$<join(xs, ",")>"', "join", Token.Name.Builtin, 1),
        ('u = "$$<x> \\n \\u{1F600}"', "$$<", Token.Literal.String.Escape, 1),
        ('u = "$$<x> \\n \\u{1F600}"', "\\u{1F600}", Token.Literal.String.Escape, 1),
        ('p = r"C:\\$<x>"', "r", Token.Literal.String.Affix, 1),
        ('p = r"C:\\$<x>"', '"C:\\$<x>"', Token.Literal.String.Double, 1),
        ('m = """\n  a $<x> "q"\n  """', "x", Token.Name, 1),
        # statements and expressions
        ("if enabled {\n  x = 1\n} else {\n}", "enabled", Token.Name, 1),
        ("if enabled {\n  x = 1\n} else {\n}", "else", Token.Keyword, 1),
        ("for k, v in obj {\n}", "v", Token.Name.Variable, 1),
        ("xs = [x for x in ys if x > 1]", "x", Token.Name.Variable, 2),
        ('l = if a then "w" else null', "then", Token.Keyword, 1),
        ('l = if a then "w" else null', "null", Token.Keyword.Constant, 1),
        ("r = super + 1", "super", Token.Name.Builtin.Pseudo, 1),
        ('b = Web(name = "x") { replicas = 3 }', "Web", Token.Name.Function, 1),
        ('b = Web(name = "x") { replicas = 3 }', "name", Token.Name.Variable, 1),
        ('b = Web(name = "x") { replicas = 3 }', "replicas", Token.Name.Attribute, 1),
        ("n = len(xs)", "len", Token.Name.Builtin, 1),
    ],
)
def test_token_types(src: str, text: str, expected: _TokenType, nth: int) -> None:
    assert token_of(src, text, nth) == expected


def test_invalid_escape_is_an_error_token() -> None:
    assert any(t in Error for t, _ in CflLexer().get_tokens('x = "\\q"'))


def test_pyproject_declares_the_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pygments.lexers"]["cfl"] == ("cfglang.pygments_lexer:CflLexer")


def test_registered_with_pygments() -> None:
    from importlib.metadata import entry_points

    from pygments.lexers import get_lexer_by_name, get_lexer_for_filename

    if not any(ep.name == "cfl" for ep in entry_points(group="pygments.lexers")):
        pytest.skip("entry point not installed yet: reinstall with `pip install -e .`")
    lexer: Lexer = get_lexer_by_name("cfl")
    assert isinstance(lexer, CflLexer)
    assert isinstance(get_lexer_by_name("cfglang"), CflLexer)
    assert isinstance(get_lexer_for_filename("prod.cfl"), CflLexer)
