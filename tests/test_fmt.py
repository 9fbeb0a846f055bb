"""Tests of `cflc fmt` and `cfglang.tools.fmt.format_source`.

Goldens live in tests/cases/fmt/<name>/: `input.cfl` is formatted and compared with
`expected.cfl` (`pytest --update-goldens` rewrites them). For every golden, and for every
module of examples/ and stdlib/, formatting is also checked to be idempotent, to keep the
syntax tree (spans aside, doc comments included) and, where the input compiles, to give
the same JSON. A hypothesis test does the same for generated programs, and the CLI is
driven through subprocesses.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from test_properties import program_text, programs

from cfglang.api import compile
from cfglang.emit import emit
from cfglang.source import SourceFile
from cfglang.syntax import ast
from cfglang.syntax.parser import lex_tokens, parse_module
from cfglang.tools.fmt import FormatError, format_source

ROOT = Path(__file__).resolve().parent.parent
CASES = Path(__file__).parent / "cases" / "fmt"
GOLDENS = sorted(p.parent for p in CASES.glob("*/input.cfl"))
SOURCES = sorted([*ROOT.glob("examples/**/*.cfl"), *ROOT.glob("stdlib/**/*.cfl")])


def tree(text: str) -> ast.Module:
    module, diags = parse_module(SourceFile("t.cfl", text))
    assert module is not None, [d.message for d in diags]
    return module


def compiled(text: str) -> str | None:
    res = compile(text=text, filename="fmt.cfl", env={}, emit_outputs=False)
    return emit(res.data, "json") if res.ok and res.data is not None else None


def assert_faithful(original: str, formatted: str) -> None:
    """Formatting changed layout only: same tree, same JSON, and it is a fixed point."""
    assert format_source(formatted) == formatted, "formatting is not idempotent"
    assert tree(formatted) == tree(original)
    before = compiled(original)
    if before is not None:
        assert compiled(formatted) == before


# ---- goldens --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", GOLDENS, ids=[p.name for p in GOLDENS])
def test_golden(case: Path, update_goldens: bool) -> None:
    original = (case / "input.cfl").read_text(encoding="utf-8")
    got = format_source(original, "input.cfl")
    expected_path = case / "expected.cfl"
    if update_goldens or not expected_path.exists():
        expected_path.write_text(got, encoding="utf-8")
    assert got == expected_path.read_text(encoding="utf-8")
    assert_faithful(original, got)


def test_goldens_cover_the_grammar() -> None:
    """Every statement and expression class occurs in some golden input."""
    seen: set[type] = set()

    def walk(node: Any) -> None:
        if isinstance(node, tuple):
            for x in node:
                walk(x)
            return
        if not hasattr(node, "__attrs_attrs__"):
            return
        seen.add(type(node))
        for a in node.__attrs_attrs__:
            walk(getattr(node, a.name))

    for case in GOLDENS:
        walk(tree((case / "input.cfl").read_text(encoding="utf-8")))
    for name in (
        "Str",
        "Comprehension",
        "Refine",
        "IfExpr",
        "Unary",
        "SuperRef",
        "SelfRef",
        "GetItem",
        "Call",
        "Unset",
        "LetDecl",
        "IfStmt",
        "ForStmt",
        "CheckStmt",
        "Import",
        "ExtendsDecl",
        "InputDecl",
        "TypeDecl",
        "SchemaDecl",
        "TemplateDecl",
        "OutputDecl",
        "UnionType",
        "OptionalType",
        "NullType",
        "LiteralType",
        "NamedType",
        "Param",
        "Arg",
        "ObjectLit",
        "ListLit",
    ):
        assert getattr(ast, name) in seen, name
    ops = {"set", "append", "merge", "extends", "decl"}
    binary: set[str] = set()

    def fields_and_ops(node: Any) -> None:
        if isinstance(node, tuple):
            for x in node:
                fields_and_ops(x)
            return
        if isinstance(node, ast.Field):
            ops.discard(node.op)
        if isinstance(node, ast.Binary):
            binary.add(node.op)
        if hasattr(node, "__attrs_attrs__"):
            for a in node.__attrs_attrs__:
                fields_and_ops(getattr(node, a.name))

    for case in GOLDENS:
        fields_and_ops(tree((case / "input.cfl").read_text(encoding="utf-8")))
    assert not ops
    assert binary >= {
        "||",
        "&&",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "in",
        "+",
        "-",
        "*",
        "/",
        "%",
    }, binary


def test_program_golden_compiles() -> None:
    # The JSON comparison of `assert_faithful` must not be vacuous for this case.
    assert compiled((CASES / "program" / "input.cfl").read_text(encoding="utf-8")) is not None


def _outputs(text: str) -> list[tuple[str, str]]:
    res = compile(text=text, filename="fmt.cfl", env={})
    assert res.ok, [d.message for d in res.diagnostics]
    return [(o.name, o.text) for o in res.outputs]


def test_outputs_in_for_and_if_write_the_same_files_once_formatted() -> None:
    # `assert_faithful` compares the document only; the named outputs (one per service,
    # one per branch taken) must survive formatting too.
    case = CASES / "outputs_in_for_and_if"
    original = (case / "input.cfl").read_text(encoding="utf-8")
    formatted = (case / "expected.cfl").read_text(encoding="utf-8")
    got = _outputs(formatted)
    assert got == _outputs(original)
    assert [name for name, _ in got] == [
        "prod-all.json",
        "prod/web.json",
        "prod/web.yaml",
        "prod/api.json",
        "prod/api.env",
        "prod.toml",
    ]


# ---- small behaviours -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("", ""),
        ("\n\n", ""),
        ("# only\n", "# only\n"),
        ("a=1", "a = 1\n"),
        ("a = 1;;b = 2\n", "a = 1\nb = 2\n"),
        ("x = a - (b - c)\n", "x = a - (b - c)\n"),
        ("x = (a - b) - c\n", "x = (a - b) - c\n"),
        ("x = - 1\n", "x = -1\n"),
        ("x = 1 # c   \n", "x = 1  # c\n"),
        ("a = 1\r\nb = 2\r\n", "a = 1\nb = 2\n"),
        ("x {\n}\n", "x {}\n"),
        ("x = f( )\n", "x = f()\n"),
        ("type T = - 1\n", "type T = -1\n"),
        # the `\r` and the blanks ending a doc comment are not part of the doc
        ("## d \r\nx = 1\r\n", "## d\nx = 1\n"),
        (
            "x = { a = 1 }  # a comment long enough to push the line past the width limit ......\n",
            "x = { a = 1 }  # a comment long enough to push the line past the width limit ......\n",
        ),
    ],
)
def test_small(source: str, expected: str) -> None:
    assert format_source(source) == expected
    assert_faithful(source, expected)


def test_doc_comments_stay_attached() -> None:
    text = "## the port\n\n\nport = 1 +  # moved\n  2\n"
    out = format_source(text)
    assert out == "# moved\n## the port\n\nport = 1 + 2\n"
    field = tree(out).body.stmts[0]
    assert isinstance(field, ast.Field) and field.doc == "the port"


def test_syntax_error_raises_with_diagnostics() -> None:
    with pytest.raises(FormatError) as info:
        format_source("a = {\n", "bad.cfl")
    assert [d.code for d in info.value.diagnostics] == ["E0002"]
    with pytest.raises(FormatError):
        format_source("x = 1 < 2 < 3\n")  # recorded by the builder, not fatal to the parse


# ---- the repository's own sources -----------------------------------------------------------


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_repository_sources_format_stably(path: Path) -> None:
    original = path.read_text(encoding="utf-8")
    formatted = format_source(original, str(path))
    assert format_source(formatted, str(path)) == formatted
    assert tree(formatted) == tree(original)


# ---- generated programs ---------------------------------------------------------------------


@pytest.mark.fuzz
@given(programs())
def test_generated_programs_format_faithfully(tmp_path_factory: Any, prog: Any) -> None:
    base, main = program_text(prog)
    outputs = []
    for fmt in (False, True):
        d = tmp_path_factory.mktemp("fmt")
        for name, text in (("base.cfl", base), ("main.cfl", main)):
            if text is None:
                continue
            if fmt:
                formatted = format_source(text, name)
                assert format_source(formatted, name) == formatted
                assert tree(formatted) == tree(text)
                text = formatted
            (d / name).write_text(text, encoding="utf-8")
        res = compile(str(d / "main.cfl"), root=str(d), env={}, emit_outputs=False)
        assert res.ok and res.data is not None, [d.message for d in res.diagnostics]
        outputs.append(emit(res.data, "json"))
    assert outputs[0] == outputs[1]


COMMENTED = [*(c / "input.cfl" for c in GOLDENS), *SOURCES]
INSERTS = [" # c\n", "\n# own line\n", "\n", "\n\n\n", " ## doc\n", "## doc\n"]


@pytest.mark.fuzz
@given(st.sampled_from(COMMENTED), st.data())
def test_comments_anywhere_are_kept_faithfully(path: Path, data: st.DataObject) -> None:
    """Comments and line breaks inserted after random tokens of real sources: whenever the
    result still parses, formatting keeps its tree (doc comments included), is idempotent
    and loses no comment."""
    text = path.read_text(encoding="utf-8")
    ends = sorted({e for _, _, e in lex_tokens(SourceFile("t.cfl", text))})
    for pos in sorted(
        set(data.draw(st.lists(st.sampled_from(ends), min_size=1, max_size=4))), reverse=True
    ):
        text = text[:pos] + data.draw(st.sampled_from(INSERTS)) + text[pos:]
    module, diags = parse_module(SourceFile("t.cfl", text))
    assume(module is not None and not any(d.is_error for d in diags))
    formatted = format_source(text)
    assert format_source(formatted) == formatted
    assert tree(formatted) == module
    comments = [
        text[s:e].strip("# \t\r\f")
        for t, s, e in lex_tokens(SourceFile("t", text))
        if t == "COMMENT"
    ]
    kept = [
        formatted[s:e].strip("# \t\r\f")
        for t, s, e in lex_tokens(SourceFile("t", formatted))
        if t == "COMMENT"
    ]
    assert sorted(kept) == sorted(comments)  # hoisting may reorder a few


# ---- the command line -----------------------------------------------------------------------


def cflc(
    *args: str,
    stdin: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from cfglang.cli import run; run()", "fmt", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


UGLY = "a=1\nb  =  { c=2 }\n"
PRETTY = "a = 1\nb = { c = 2 }\n"


def test_cli_rewrites_files_in_place(tmp_path: Path) -> None:
    (tmp_path / "ugly.cfl").write_text(UGLY)
    (tmp_path / "pretty.cfl").write_text(PRETTY)
    r = cflc(str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "ugly.cfl").read_text() == PRETTY
    assert (tmp_path / "pretty.cfl").read_text() == PRETTY
    assert "reformatted" in r.stderr and "ugly.cfl" in r.stderr and "pretty.cfl" not in r.stderr


def test_cli_check_lists_files_that_would_change(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "ugly.cfl").write_text(UGLY)
    (tmp_path / "pretty.cfl").write_text(PRETTY)
    (tmp_path / "notes.txt").write_text(UGLY)
    r = cflc("--check", ".", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stdout.splitlines() == [str(Path(".") / "sub" / "ugly.cfl")]
    assert (tmp_path / "sub" / "ugly.cfl").read_text() == UGLY  # untouched
    r = cflc("--check", "pretty.cfl", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, "")


def test_cli_diff(tmp_path: Path) -> None:
    (tmp_path / "ugly.cfl").write_text(UGLY)
    r = cflc("--diff", "ugly.cfl", cwd=tmp_path)
    assert r.returncode == 0
    assert r.stdout == (
        "--- ugly.cfl\n+++ ugly.cfl\n@@ -1,2 +1,2 @@\n-a=1\n-b  =  { c=2 }\n"
        "+a = 1\n+b = { c = 2 }\n"
    )
    assert (tmp_path / "ugly.cfl").read_text() == UGLY
    r = cflc("--diff", "--check", "ugly.cfl", cwd=tmp_path)
    assert r.returncode == 1 and r.stdout.startswith("--- ugly.cfl")


def test_cli_stdin() -> None:
    r = cflc("-", stdin=UGLY)
    assert (r.returncode, r.stdout, r.stderr) == (0, PRETTY, "")
    r = cflc("--check", "-", stdin=UGLY)
    assert (r.returncode, r.stdout) == (1, "<stdin>\n")
    r = cflc("--check", "-", stdin=PRETTY)
    assert (r.returncode, r.stdout) == (0, "")


def test_cli_syntax_error_leaves_the_file_untouched(tmp_path: Path) -> None:
    bad = tmp_path / "bad.cfl"
    bad.write_text("a=1\nb = {\n")
    (tmp_path / "ugly.cfl").write_text(UGLY)
    r = cflc(str(tmp_path))
    assert r.returncode == 1
    assert "error[E0002]: unclosed `{`" in r.stderr and "bad.cfl:2:5" in r.stderr
    assert bad.read_text() == "a=1\nb = {\n"
    assert (tmp_path / "ugly.cfl").read_text() == PRETTY  # the other files are formatted


def test_cli_usage_errors(tmp_path: Path) -> None:
    r = cflc()
    assert r.returncode == 2 and "Missing argument" in r.stderr
    r = cflc(str(tmp_path / "missing.cfl"))
    assert r.returncode == 2 and "E0702" in r.stderr and "does not exist" in r.stderr


def test_cli_help() -> None:
    r = cflc("--help")
    assert r.returncode == 0
    for word in ("--check", "--diff", "standard input", "Exit codes"):
        assert word in r.stdout


def test_cli_syntax_error_as_json(tmp_path: Path) -> None:
    import json as _json

    bad = tmp_path / "bad.cfl"
    bad.write_text("a = {\n")
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "from cfglang.cli import run; run()",
            "fmt",
            "--check",
            "--error-format",
            "json",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1
    diag = _json.loads(r.stderr.splitlines()[0])
    assert diag["code"] == "E0002" and diag["line"] == 1 and diag["column"] == 5
    assert bad.read_text() == "a = {\n"
