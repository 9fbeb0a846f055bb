"""The front end's limits (`cfglang.limits`): every depth the compiler accepts is written by
every emitter, `Config.to_dict`, `dumps` and LSP hover; every deeper program, and every
oversized file, is a diagnostic (never an internal error)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cfglang
from cfglang import api
from cfglang.emit import FORMATS, EmitError, emit
from cfglang.limits import MAX_EXPRESSION_DEPTH, MAX_NESTING, parse_size
from cfglang.source import SourceFile
from cfglang.syntax import ast
from cfglang.syntax.bounds import _RULES
from cfglang.syntax.parser import parse_module

N = MAX_NESTING
_SCRIPT = shutil.which("cflc")
CFLC: list[str] = (
    [_SCRIPT] if _SCRIPT else [sys.executable, "-c", "from cfglang.cli import run; run()"]
)

# Programs nested exactly as deep as the compiler accepts, one per way of nesting.
AT_LIMIT = {
    "blocks": "a {\n" * N + "x = 1\n" + "}\n" * N,
    "objects": "x = " + "{a = " * N + "1" + "}" * N + "\n",
    "lists": "x = " + "[" * N + "1" + "]" * N + "\n",
    "lists_of_objects": "x = " + "[{a = " * (N // 2) + "1" + "}]" * (N // 2) + "\n",
    "dotted": "x." + ".".join(["a"] * N) + " = 1\n",
    "lets": "a0 = 1\n" + "".join(f"a{i} = [a{i - 1}]\n" for i in range(1, N + 1)),
    "let_objects": "a0 = {v = 1}\n" + "".join(f"a{i} = {{v = a{i - 1}}}\n" for i in range(1, N)),
    "operators": "x = 0" + " + 1" * MAX_EXPRESSION_DEPTH + "\n",
}


def _depth(v: Any) -> int:
    d = 0
    stack = [(v, 0)]
    while stack:
        x, n = stack.pop()
        d = max(d, n)
        if isinstance(x, dict):
            stack += [(y, n + 1) for y in x.values()]
        elif isinstance(x, list):
            stack += [(y, n + 1) for y in x]
    return d


def _with_frames_used(frames: int, fn: Callable[[], Any]) -> Any:
    """Call ``fn`` from ``frames`` frames deep: a caller with a deep stack of its own."""
    if frames <= 0:
        return fn()
    return _with_frames_used(frames - 1, fn)


def test_every_node_class_has_a_nesting_rule() -> None:
    nodes = {
        c
        for c in vars(ast).values()
        if isinstance(c, type) and c.__module__ == ast.__name__ and hasattr(c, "__attrs_attrs__")
    }
    assert nodes <= set(_RULES)


@pytest.mark.parametrize("shape", sorted(AT_LIMIT))
def test_deepest_accepted_program_is_written_by_every_consumer(shape: str) -> None:
    cfg = cfglang.loads(AT_LIMIT[shape])
    data = cfg.to_dict()
    if shape != "operators":
        assert _depth(data) >= N
    # From a caller already 300 frames deep, with Python's default recursion limit.
    for fmt in FORMATS:
        try:
            text = _with_frames_used(300, lambda fmt=fmt: emit(data, fmt))
        except EmitError:
            continue  # a format that cannot express lists says so: also a clean answer
        assert text.endswith("\n")
        assert _with_frames_used(300, lambda fmt=fmt: cfglang.dumps(cfg, fmt)) == text
    assert _with_frames_used(300, cfg.to_dict) == data


def test_json_without_orjson_writes_the_deepest_value(monkeypatch: pytest.MonkeyPatch) -> None:
    from cfglang.emit import json_

    monkeypatch.setattr(json_, "_emit_orjson", lambda data: None)
    data = cfglang.loads(AT_LIMIT["lists"]).to_dict()
    assert _with_frames_used(300, lambda: json_.emit_json(data)).startswith("{")


@pytest.mark.parametrize("shape", ["blocks", "dotted", "lists"])
def test_build_writes_the_deepest_value_in_every_format(tmp_path: Path, shape: str) -> None:
    src = tmp_path / "main.cfl"
    src.write_text(AT_LIMIT[shape])
    for fmt in ("json", "yaml", "toml"):
        r = subprocess.run(
            [*CFLC, "build", str(src), "-f", fmt],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("1") >= 1
        assert "Traceback" not in r.stderr


def test_hover_at_the_deepest_key(tmp_path: Path) -> None:
    from cfglang.lsp import hover
    from cfglang.lsp.analysis import State
    from cfglang.lsp.diagnostics import Ranges

    text = AT_LIMIT["blocks"]
    path = tmp_path / "main.cfl"
    path.write_text(text)
    state = State()
    state.set_buffer(str(path), text)
    h = _with_frames_used(200, lambda: hover.hover(state, str(path), text.index("x = 1"), Ranges()))
    assert h is not None
    assert "```json\n1\n```" in str(h.contents.value)


# ---- past the limits -----------------------------------------------------------------------

PAST = {
    "blocks": "a {\n" * 5_000 + "x = 1\n" + "}\n" * 5_000,
    "objects": "x = " + "{a = " * 5_000 + "1" + "}" * 5_000 + "\n",
    "lists": "x = " + "[" * 5_000 + "1" + "]" * 5_000 + "\n",
    "dotted": "x." + ".".join(["a"] * 5_000) + " = 1\n",
    "calls": "x = " + "len(" * 5_000 + "[]" + ")" * 5_000 + "\n",
    "index": "x = [0]" + "[0]" * 5_000 + "\n",
    "unary": "x = " + "-" * 5_000 + "1\n",
    "binary": "x = 0" + " + 1" * 5_000 + "\n",
    "attributes": "a = {}\nx = a" + ".a" * 5_000 + "\n",
    "if_else": "x = " + "if false then 1 else " * 5_000 + "2\n",
    "else_if": "if false { a = 1 }" + " else if false { a = 1 }" * 5_000 + "\n",
}


@pytest.mark.parametrize("shape", sorted(PAST))
def test_too_deep_is_a_diagnostic_at_the_limit(shape: str) -> None:
    result = api.compile(text=PAST[shape], emit_outputs=False)
    codes = [d.code for d in result.diagnostics]
    assert codes == ["E0011"], [d.message for d in result.diagnostics]
    # The parse alone (as the formatter and the language server do it) says the same.
    tree, diags = parse_module(SourceFile("x.cfl", PAST[shape]))
    assert tree is None and [d.code for d in diags] == ["E0011"]


def test_a_50000_segment_dotted_path_stays_small() -> None:
    import tracemalloc

    tracemalloc.start()
    text = "x." + ".".join(["a"] * 50_000) + " = 1\n"
    result = api.compile(text=text, emit_outputs=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [d.code for d in result.diagnostics] == ["E0011"]
    assert peak < 200 * 1024 * 1024


def test_value_nested_at_run_time_is_e0502() -> None:
    text = "a0 = 1\n" + "".join(f"a{i} = [a{i - 1}]\n" for i in range(1, 3000))
    result = api.compile(text=text)
    # Each field past the limit is its own mistake, reported where it is set.
    assert {d.code for d in result.diagnostics} == {"E0502"}
    assert all(d.span is not None for d in result.diagnostics)


# ---- property: any nesting either compiles and emits, or is the depth diagnostic -----------

# Wrappers that nest what they hold: statements in a body, or expressions.
_STMT = [("k {\n", "\n}"), ("k.a {\n", "\n}"), ("k.a.b {\n", "\n}")]
_EXPR = [
    ("[", "]"),
    ("{a = ", "}"),
    ("(", ")"),
    ("[len([", "])]"),
    ("if true then ", " else 0"),
    ("{b {\na = ", "\n}}"),
    ("{c.d = ", "}"),
]


@st.composite
def _nested_programs(draw: st.DrawFn) -> str:
    depth = draw(st.integers(0, 3 * N))
    choices = draw(st.lists(st.integers(0, 99), min_size=1, max_size=12))
    opens, closes = [], []
    in_expr = False
    for i in range(depth):
        c = choices[i % len(choices)]
        if not in_expr and c % 4 == 0:  # from a body into an expression
            in_expr = True
            opens.append("k = ")
            closes.append("")
        o, e = _EXPR[c % len(_EXPR)] if in_expr else _STMT[c % len(_STMT)]
        opens.append(o)
        closes.append(e)
    inner = "1" if in_expr else "x = 1"
    return "".join(opens) + inner + "".join(reversed(closes)) + "\n"


@given(_nested_programs())
def test_nested_programs_compile_and_emit_or_report_the_depth(text: str) -> None:
    result = api.compile(text=text, emit_outputs=False)
    codes = {d.code for d in result.diagnostics if d.is_error}
    assert codes <= {"E0011", "E0502"}, ([d.message for d in result.diagnostics], text[:300])
    if codes:
        return
    cfg = cfglang.Config(result.data)
    for fmt in FORMATS:
        try:
            text_out = _with_frames_used(200, lambda fmt=fmt: cfglang.dumps(cfg, fmt))
        except EmitError:
            continue  # a format that cannot express the value says so
        assert text_out.endswith("\n")


# ---- source size --------------------------------------------------------------------------


def test_parse_size() -> None:
    assert parse_size("16MiB") == 16 * 1024 * 1024
    assert parse_size("1000") == 1000
    assert parse_size("2 KB") == 2000
    assert parse_size("lots") is None


def test_source_over_the_size_limit_is_refused_before_lexing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CFLC_MAX_SOURCE_SIZE", "1KiB")
    text = "x = 1\n" * 200
    tree, diags = parse_module(SourceFile("x.cfl", text))
    assert tree is None
    assert [d.code for d in diags] == ["E0010"]
    assert "limit (1024 bytes)" in diags[0].message
    monkeypatch.setenv("CFLC_MAX_SOURCE_SIZE", "2KiB")
    assert parse_module(SourceFile("x.cfl", text))[0] is not None


def test_cli_reports_a_file_over_the_size_limit(tmp_path: Path) -> None:
    import os

    f = tmp_path / "big.cfl"
    f.write_text("".join(f"x{i} = 1\n" for i in range(200)))  # 1,690 bytes, distinct keys
    env = {**os.environ, "CFLC_MAX_SOURCE_SIZE": "1KiB", "CFLC_NO_CACHE": "1"}
    r = subprocess.run([*CFLC, "check", str(f)], capture_output=True, text=True, env=env)
    assert r.returncode == 1
    assert "error[E0010]: the file is larger than the source size limit (1024 bytes)" in r.stderr
    env["CFLC_MAX_SOURCE_SIZE"] = "2KiB"
    assert subprocess.run([*CFLC, "check", str(f)], capture_output=True, env=env).returncode == 0


def test_source_size_counts_utf8_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFLC_MAX_SOURCE_SIZE", "100")
    text = 'x = "' + "é" * 60 + '"\n'  # 67 characters, 127 bytes
    assert [d.code for d in parse_module(SourceFile("x.cfl", text))[1]] == ["E0010"]


def test_lone_surrogate_in_source_text_is_refused() -> None:
    with pytest.raises(cfglang.ConfigError) as e:
        cfglang.loads('x = "a\ud800"\n')
    assert [d.code for d in e.value.diagnostics] == ["E0004"]


# ---- imported data (`cflc import`, `cflc diff` of data files) -----------------------------

BOMB = "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9) if p else ', '.join(['lol'] * 9)}]\n"
    for p, c in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)


def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    import time

    assert len(BOMB) < 500
    f = tmp_path / "bomb.yaml"
    f.write_text(BOMB)
    for args in (("import", f), ("diff", f, f)):
        start = time.monotonic()
        r = subprocess.run(
            [*CFLC, *map(str, args)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert time.monotonic() - start < 60
        assert r.returncode == 1, r.stderr
        assert "error[E0702]" in r.stderr
        assert "more than 1000000 values" in r.stderr
        assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        ("json", '{"x": ' + "1" * 5000 + "}"),
        ("yaml", "x: " + "1" * 5000 + "\n"),
        ("toml", "x = " + "1" * 5000 + "\n"),
    ],
)
def test_imported_integer_of_5000_digits_is_out_of_range(fmt: str, text: str) -> None:
    from cfglang.tools.importer import DataError, load_data

    with pytest.raises(DataError) as e:
        load_data(text, fmt)
    assert "outside CFL's 64-bit range" in e.value.message


@pytest.mark.parametrize(
    ("fmt", "text", "where"),
    [
        ("json", '{"\\uDFAA": 1}', (1, 3)),
        ("json", '{"a": ["ok \\uD83D\\uDE00", "\\uD800"]}', (1, 28)),
        ("yaml", 'a: "x\\uD800"\n', (1, 6)),
    ],
)
def test_imported_lone_surrogate_is_refused_at_its_escape(
    fmt: str, text: str, where: tuple[int, int]
) -> None:
    from cfglang.tools.importer import DataError, load_data

    with pytest.raises(DataError) as e:
        load_data(text, fmt)
    assert "lone surrogate" in e.value.message
    assert (e.value.line, e.value.column) == where


def test_imported_data_deeper_than_cfl_allows_is_refused() -> None:
    from cfglang.tools.importer import DataError, load_data, to_cfl

    ok = '{"x": ' + "[" * N + "]" * N + "}"
    assert cfglang.loads(to_cfl(load_data(ok, "json"))).to_dict()["x"] is not None
    with pytest.raises(DataError) as e:
        load_data('{"x": ' + "[" * (N + 1) + "]" * (N + 1) + "}", "json")
    assert f"nested more than {N} levels" in e.value.message


# ---- inputs -------------------------------------------------------------------------------


def test_input_bytes_that_are_not_utf8_are_refused(tmp_path: Path) -> None:
    import os

    f = tmp_path / "main.cfl"
    f.write_text('input s: string from env "SV"\nx = s\n')
    env = {**os.environ, "CFLC_NO_CACHE": "1"}
    for fmt in ("json", "yaml", "toml"):
        r = subprocess.run(
            [*CFLC, "build", str(f), "-f", fmt, "--var", "s=a\udcffb"],
            capture_output=True,
            text=True,
            env=env,
        )
        assert r.returncode == 1, r.stderr
        assert "error[E0402]: input s: the value is not valid Unicode text" in r.stderr
    r = subprocess.run(
        [*CFLC, "build", str(f), "-f", "yaml"],
        capture_output=True,
        text=True,
        env={**env, "SV": "\udcff"},
    )
    assert r.returncode == 1
    assert "set by environment variable SV" in r.stderr


def test_var_integer_of_5000_digits_is_a_bad_value() -> None:
    result = api.compile(text="input n: int\nx = n\n", cli_vars=[("n", "1" * 5000)])
    assert [d.code for d in result.diagnostics] == ["E0402"]


def test_language_server_at_and_past_the_limit(tmp_path: Path) -> None:
    from cfglang.lsp import hover, symbols
    from cfglang.lsp.analysis import State
    from cfglang.lsp.diagnostics import Ranges

    state = State()
    deep, past = tmp_path / "deep.cfl", tmp_path / "past.cfl"
    deep.write_text(AT_LIMIT["blocks"])
    past.write_text(PAST["blocks"])
    state.set_buffer(str(deep), AT_LIMIT["blocks"])
    state.set_buffer(str(past), PAST["blocks"])
    m = state.module(str(deep))
    assert m is not None
    syms = _with_frames_used(300, lambda: symbols.document_symbols(m.tree, Ranges()))
    assert syms and syms[0].name == "a"
    assert state.module(str(past)) is None
    codes = [d.code for ds in state.analysis(str(past)).by_file().values() for d in ds]
    assert codes == ["E0011"]
    assert hover.hover(state, str(past), 10, Ranges()) is None


def test_dumps_of_caller_data_deeper_than_the_limit_is_an_emit_error() -> None:
    data: dict[str, Any] = {"x": 1}
    for _ in range(N):
        data = {"a": data}
    assert cfglang.dumps(data, "toml")  # as deep as compiled data may be: written
    with pytest.raises(EmitError, match=f"nested more than {N} levels deep"):
        cfglang.dumps({"a": data}, "toml")


def test_vars_file_alias_bomb_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(BOMB)
    result = api.compile(
        text="input i: any = null\nx = 1\n", var_files=[str(tmp_path / "bomb.yaml")]
    )
    assert [d.code for d in result.diagnostics] == ["E0702"]
    assert "more than 1000000 values" in result.diagnostics[0].message
