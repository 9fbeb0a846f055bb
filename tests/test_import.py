"""`cfglang.tools.importer` and `cflc import`: readers, CFL writing, schema inference, round trips.

The central property: for generated JSON data (awkward keys, strings with quotes,
backslashes, `$<`, line breaks and unicode, 64-bit ints, finite floats, bools, null, nested
lists and objects), importing and compiling gives back exactly the same data, key order
included; and with `--infer-schema` the typed module still compiles to the same data.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values
from hypothesis import given
from hypothesis import strategies as st

from cfglang.api import compile
from cfglang.tools.importer import (
    DataError,
    format_for_path,
    infer_schema,
    key_text,
    load_data,
    quote,
    scalar,
    to_cfl,
)

CFLC = [sys.executable, "-c", "from cfglang.cli import run; run()"]


def build(text: str) -> Any:
    res = compile(text=text, filename="imported.cfl", emit_outputs=False)
    assert res.ok, "\n".join(d.message for d in res.diagnostics) + "\n" + text
    return res.data


def exact(data: Any) -> str:
    """JSON text: equal texts mean equal values *and* kinds (1 vs 1.0 vs true) and order."""
    return json.dumps(data, ensure_ascii=False)


def import_json(data: Any, **kw: Any) -> str:
    return to_cfl(load_data(json.dumps(data), "json"), **kw)


# --- generated data --------------------------------------------------------------------------

AWKWARD = [
    "",
    " ",
    "a b",
    "a.b",
    "x-y",
    "1st",
    "$<x>",
    "$$<",
    "\\",
    '"',
    "else",
    "in",
    "null",
    "true",
    "self",
    "super",
    "final",
    "hidden",
    "type",
    "check",
    "output",
    "schema",
    "env",
    "as",
    "from",
    "é",
    "日本",
    "\n",
    "\t",
    "a\u2028b",
    "Root",
]
keys = st.one_of(
    st.sampled_from(AWKWARD),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
    st.text(max_size=8),
)
strings = st.one_of(
    st.text(max_size=20),
    st.lists(
        st.sampled_from(
            [
                "$<",
                "$",
                "<",
                "$$<",
                "\\",
                '"',
                "\n",
                "\r",
                "\t",
                "\0",
                "x",
                "😀",
                "\u0085",
                "\ufeff",
                "$<a>",
                "\\n",
                "\x7f",
            ]
        ),
        max_size=8,
    ).map("".join),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([-(2**63), 2**63 - 1, 0, -1]),
    st.floats(allow_nan=False, allow_infinity=False),
    strings,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)
documents = st.dictionaries(keys, json_values, max_size=6)


@given(documents)
def test_import_then_build_gives_back_the_same_data(data: dict[str, Any]) -> None:
    text = import_json(data)
    assert exact(build(text)) == exact(data)


@given(documents)
def test_inferred_schema_compiles_and_the_data_still_validates(data: dict[str, Any]) -> None:
    text = import_json(data, schemas=infer_schema(data))
    out = build(text)
    # A schema-typed object is emitted in schema order; list items that list their keys in
    # different orders share one schema, so only there may the order differ.
    assert json.dumps(out, sort_keys=True) == json.dumps(data, sort_keys=True)


@given(st.lists(st.dictionaries(st.sampled_from("abc"), st.integers(0, 3), max_size=3), max_size=4))
def test_inferred_schema_keeps_order_when_list_items_agree(items: list[dict[str, Any]]) -> None:
    # Items whose keys come in one consistent order (a subsequence of a b c) keep it.
    items = [{k: d[k] for k in sorted(d)} for d in items]
    data = {"items": items}
    assert exact(build(import_json(data, schemas=infer_schema(data)))) == exact(data)


# --- writing CFL ----------------------------------------------------------------------------


def test_strings_are_escaped() -> None:
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    assert quote("line\nnext\ttab\r") == '"line\\nnext\\ttab\\r"'
    assert quote("$<name> and $$<x> and $5") == '"$$<name> and $$$<x> and $5"'
    assert quote("\0\x07\u2028é😀") == '"\\0\\u{7}\\u{2028}é😀"'
    for s in ["$<name>", "$$<x>", "$$$<", "a$", "$", "\\$<x>", "<$<>"]:
        assert build(f"s = {quote(s)}") == {"s": s}


def test_keys_are_bare_when_possible() -> None:
    assert key_text("name") == "name"
    assert key_text("type") == "type"  # keyword allowed as a field name
    assert key_text("else") == '"else"'
    assert key_text("max-conns") == '"max-conns"'
    assert key_text("") == '""'
    assert key_text("$<x>") == '"$$<x>"'


def test_keyword_keys_round_trip_in_every_form() -> None:
    for k in ("type", "check", "output", "input", "schema", "template", "import", "extends"):
        data = {
            k: {"a": 1, "b": 2},
            "x": {k: {"c": 1}},
            "y": {k: {"d": {"e": 2, "f": 3}}},
            "z": [{k: 1}],
        }
        text = to_cfl(data)
        assert exact(build(text)) == exact(data), text
    assert '"check" {' in to_cfl({"check": {"a": 1, "b": 2}})


def test_scalars() -> None:
    assert scalar(None) == "null"
    assert scalar(True) == "true"
    assert scalar(-5) == "-5"
    assert scalar(1.0) == "1.0"
    assert scalar(1e16) == "1e+16"
    assert scalar(-(2**63)) == "-9223372036854775807 - 1"
    with pytest.raises(DataError, match="64-bit"):
        scalar(2**63, ("a",))
    with pytest.raises(DataError, match="finite"):
        scalar(float("inf"))


def test_layout_blocks_dotted_paths_and_lists() -> None:
    data = {
        "name": "svc",
        "db": {"host": "x"},
        "a": {"b": {"c": 1}},
        "server": {"host": "0.0.0.0", "port": 80, "tls": {"enabled": False}},
        "tags": ["a", "b"],
        "hosts": [f"host-number-{i:02d}.example.internal" for i in range(4)],
        "empty": {},
        "none": [],
    }
    text = to_cfl(data, header="imported from x.json by cflc import")
    assert (
        text
        == """\
# imported from x.json by cflc import

name = "svc"
db.host = "x"
a.b.c = 1

server {
  host = "0.0.0.0"
  port = 80
  tls.enabled = false
}

tags = ["a", "b"]

hosts = [
  "host-number-00.example.internal",
  "host-number-01.example.internal",
  "host-number-02.example.internal",
  "host-number-03.example.internal",
]

empty = {}
none = []
"""
    )
    assert exact(build(text)) == exact(data)


def test_lists_of_objects_one_per_line_when_long() -> None:
    data = {
        "servers": [{"name": f"server-{i}", "port": 8000 + i, "tags": ["a", "b"]} for i in range(3)]
    }
    text = to_cfl(data)
    assert 'servers = [\n  { name = "server-0"; port = 8000; tags = ["a", "b"] },\n' in text
    assert exact(build(text)) == exact(data)


def test_root_must_be_an_object() -> None:
    for value in ([1], 3, None, "x"):
        with pytest.raises(DataError, match="top level"):
            to_cfl(value)


def test_null_is_kept() -> None:
    assert build(to_cfl({"x": None, "y": {"z": None}})) == {"x": None, "y": {"z": None}}


# --- schema inference ------------------------------------------------------------------------


def test_infer_schema_text() -> None:
    data = {
        "name": "svc",
        "db": {"host": "x", "port": 5432},
        "servers": [{"host": "a", "port": 1}, {"host": "b", "port": 2.5, "tls": None}],
        "ratio": None,
        "labels": {},
        "matrix": [[1, 2], [3]],
    }
    schemas = infer_schema(data)
    assert schemas.root_types == {
        "name": "string",
        "db": "Db",
        "servers": "list[Server]",
        "ratio": "any?",
        "labels": "map[string, any]",
        "matrix": "list[list[int]]",
    }
    assert (
        schemas.text
        == """\
## The shape of the imported data (inferred by `cflc import --infer-schema`).
schema Root {
  name: string
  db: Db
  servers: list[Server]
  ratio: any?
  labels: map[string, any]
  matrix: list[list[int]]
}

schema Db {
  host: string
  port: int
}

schema Server {
  host: string
  port: int | float
  tls: any?
}
"""
    )
    text = to_cfl(data, schemas=schemas)
    assert "db: Db {" in text and "servers: list[Server] = [" in text
    assert exact(build(text)) == exact(data)


def test_schema_field_with_an_empty_name() -> None:
    # The empty key is a field name like any other (it used to be dropped from schemas,
    # which is why `infer_schema` still types an object with a `""` key as a map).
    assert build('schema S { "": int }\nx: S { "" = 1 }') == {"x": {"": 1}}


def test_inferred_schema_rejects_a_wrong_edit() -> None:
    data = {"db": {"host": "x", "port": 5432}}
    text = to_cfl(data, schemas=infer_schema(data))
    res = compile(text=text + 'db.port = "oops"\n')
    assert not res.ok and any(d.code == "E0302" for d in res.diagnostics)
    res = compile(text=text + "db.prot = 1\n")
    assert not res.ok and any(d.code == "E0202" for d in res.diagnostics)


# --- reading the formats ---------------------------------------------------------------------


def test_format_for_path() -> None:
    assert format_for_path("a/b.json") == "json"
    assert format_for_path("x.yml") == "yaml"
    assert format_for_path(".env") == "env"
    assert format_for_path("prod.env") == "env"
    assert format_for_path("setup.cfg") == "ini"
    assert format_for_path("README") is None


def test_yaml_keys_and_multiple_documents() -> None:
    assert load_data("b: 1\na: [x, 2, null]\n1: true\n", "yaml") == {
        "b": 1,
        "a": ["x", 2, None],
        "1": True,
    }
    with pytest.raises(DataError, match="2 documents"):
        load_data("a: 1\n---\nb: 2\n", "yaml")
    with pytest.raises(DataError) as e:
        load_data("a: [1, 2\nb: 3\n", "yaml")
    assert (e.value.line, e.value.column) == (2, 2)


def test_yaml_keys_are_their_source_text() -> None:
    # YAML 1.1 would read these keys as true, true, false, 1, 1.5, null, null and a date.
    text = "on: push\nyes: 1\nOff: 2\n1: a\n1.5: b\n~: c\nnull: d\n2024-01-02: e\n"
    assert list(load_data(text, "yaml")) == [
        "on",
        "yes",
        "Off",
        "1",
        "1.5",
        "~",
        "null",
        "2024-01-02",
    ]
    # Quoted keys are their content; values keep YAML 1.1 resolution.
    assert load_data("'on': yes\n\"a\\tb\": 0x10\n", "yaml") == {"on": True, "a\tb": 16}
    assert load_data("{on: 1, ? off : 2}", "yaml") == {"on": 1, "off": 2}


def test_yaml_non_scalar_key_is_refused() -> None:
    with pytest.raises(DataError, match="a list used as a YAML mapping key") as e:
        load_data("a: 1\n? [x, y]\n: 2\n", "yaml")
    assert (e.value.line, e.value.column) == (2, 3)


def test_yaml_duplicate_key_is_an_error_at_the_second() -> None:
    with pytest.raises(DataError, match=r"duplicate key `a` .*first at line 1") as e:
        load_data("a: 1\nb: 2\na: 3\n", "yaml")
    assert (e.value.line, e.value.column) == (3, 1)
    with pytest.raises(DataError) as e:
        load_data("x:\n  - {k: 1, j: 2, k: 3}\n", "yaml")
    assert (e.value.line, e.value.column) == (2, 18)
    # `on` and `true` were one key (true) under YAML 1.1; as text they are two.
    assert load_data("on: 1\ntrue: 2\n", "yaml") == {"on": 1, "true": 2}
    with pytest.raises(DataError, match="duplicate key `on`"):
        load_data("on: 1\n'on': 2\n", "yaml")


# Plain scalars YAML 1.1 resolves to something else than their text, and ordinary ones.
YAML_KEY_WORDS = ["on", "On", "off", "yes", "No", "y", "true", "False", "null", "~", "Null"]
YAML_KEY_WORDS += ["1", "0x1F", "0o7", "017", "1_000", "1:30", "1.5", ".inf", "-.5", "1e3"]
YAML_KEY_WORDS += ["2024-01-02", "2001-12-14t21:59:43.10-05:00", "=", "a", "b-c", "x.y"]
yaml_keys = st.one_of(
    st.sampled_from(YAML_KEY_WORDS), st.from_regex(r"[a-z0-9][a-z0-9_.~+-]{0,6}", fullmatch=True)
)


@given(st.lists(yaml_keys, min_size=1, max_size=6))
def test_yaml_plain_keys_are_their_text_and_unique(keys: list[str]) -> None:
    block = "".join(f"{k}: {i}\n" for i, k in enumerate(keys))
    flow = "{" + ", ".join(f"{k}: {i}" for i, k in enumerate(keys)) + "}"
    for text in (block, flow):
        if len(set(keys)) < len(keys):
            with pytest.raises(DataError, match="duplicate key"):
                load_data(text, "yaml")
        else:
            assert load_data(text, "yaml") == {k: i for i, k in enumerate(keys)}


def test_yaml_merge_keys_may_be_overridden() -> None:
    text = "base: &b {x: 1, y: 2}\nmore: &m {<<: *b, z: 3}\nc:\n  <<: [*m, *b]\n  x: 5\n"
    assert load_data(text, "yaml")["c"] == {"x": 5, "y": 2, "z": 3}
    with pytest.raises(DataError, match="duplicate key `x`"):
        load_data("b: &b {x: 1}\nc:\n  <<: *b\n  x: 2\n  x: 3\n", "yaml")


def test_yaml_dates_and_timestamps_are_refused_with_position_and_path() -> None:
    with pytest.raises(DataError) as e:
        load_data("a:\n  - when: 2001-12-14t21:59:43.10-05:00\n", "yaml")
    err = e.value
    assert (err.code, err.line, err.column, err.path) == ("E0710", 2, 11, ("a", 0, "when"))
    assert err.message == "a timestamp (`2001-12-14t21:59:43.10-05:00`) has no CFL type"
    assert err.help is not None and '"2001-12-14t21:59:43.10-05:00"' in err.help
    with pytest.raises(DataError, match="a date"):
        load_data("d: !!timestamp 2024-01-02\n", "yaml")
    # Quoted, it is a string, as the help says.
    assert load_data('d: "2024-01-02"\n', "yaml") == {"d": "2024-01-02"}


def test_toml() -> None:
    data = load_data('a = 1\n[db]\nhost = "x"\n', "toml")
    assert data == {"a": 1, "db": {"host": "x"}}
    with pytest.raises(DataError) as e:
        load_data("a = 1\nb = = 2\n", "toml")
    assert (e.value.line, e.value.column) == (2, 5)


@pytest.mark.parametrize(
    ("text", "what", "written", "where", "path"),
    [
        ("[db]\nwhen = 1979-05-27T07:32:00Z\n", "a timestamp", "1979-05-27T07:32:00Z", (2, 8),
         ("db", "when")),
        # The decoy in the string and the comment are not taken for the value.
        ('s = "1979-05-27" # 1979-05-27\nd = [1, 1979-05-27]\n', "a date", "1979-05-27", (2, 9),
         ("d", 1)),
        ("t = 07:32:00.999999999\n", "a time", "07:32:00.999999999", (1, 5), ("t",)),
        ("[[x]]\n[[x]]\nl = 1979-05-27 07:32:00.1234567\n", "a timestamp",
         "1979-05-27 07:32:00.1234567", (3, 5), ("x", 1, "l")),
    ],
)  # fmt: skip
def test_toml_dates_and_times_are_refused_as_written(
    text: str, what: str, written: str, where: tuple[int, int], path: tuple[str | int, ...]
) -> None:
    with pytest.raises(DataError) as e:
        load_data(text, "toml")
    err = e.value
    assert err.message == f"{what} (`{written}`) has no CFL type"
    assert (err.code, (err.line, err.column), err.path) == ("E0710", where, path)


def test_ini_sections_nest_like_cflc_build_writes_them() -> None:
    text = (
        "[app]\nName = demo\nport = 8080\n[db.replica]\nhost = r1\n[db]\nhost = main\n"
        "[DEFAULT]\nk = v\n[other]\nempty =\nflag\n"
    )
    assert load_data(text, "ini") == {
        "app": {"Name": "demo", "port": "8080"},
        "db": {"replica": {"host": "r1"}, "host": "main"},
        "DEFAULT": {"k": "v"},
        "other": {"empty": "", "flag": None},
    }
    with pytest.raises(DataError, match="duplicate") as e:
        load_data("[a]\nx = 1\nx = 2\n", "ini")
    assert e.value.line == 3


def test_ini_keys_before_the_first_section_are_top_level() -> None:
    text = "; .editorconfig\nroot = true\n\n[*]\nindent_style = space\n[Makefile]\nx = 1\n"
    assert load_data(text, "ini") == {
        "root": "true",
        "*": {"indent_style": "space"},
        "Makefile": {"x": "1"},
    }
    assert load_data("a = 1\nb\n", "ini") == {"a": "1", "b": None}
    with pytest.raises(DataError, match="duplicate top-level key: `a`") as e:
        load_data("\na = 1\na = 2\n", "ini")
    assert e.value.line == 3  # the line in the file, not in what configparser was given
    with pytest.raises(DataError, match=r"section \[a\] clashes with a top-level key"):
        load_data("a = 1\n[a]\nb = 2\n", "ini")


def test_ini_written_by_cflc_build_reads_back() -> None:
    from cfglang.emit import emit

    data = {"app": {"name": "demo", "port": "8080"}, "db": {"host": "h", "replica": {"host": "r"}}}
    assert load_data(emit(data, "ini"), "ini") == data


def test_env() -> None:
    text = (
        '# comment\nexport A=1\nB="x\\ny $HOME \\"q\\""\nC=\'lit $x \\n\'\n'
        'D=bare value # comment\nE=\nF="multi\nline"\n\n'
    )
    assert load_data(text, "env") == {
        "A": "1",
        "B": 'x\ny $HOME "q"',
        "C": "lit $x \\n",
        "D": "bare value",
        "E": "",
        "F": "multi\nline",
    }
    with pytest.raises(DataError) as e:
        load_data("A=1\n  not a line\n", "env")
    assert (e.value.line, e.value.column) == (2, 3)
    with pytest.raises(DataError, match="unterminated"):
        load_data('A="open\n', "env")


def test_env_written_by_cflc_build_reads_back() -> None:
    from cfglang.emit import emit

    data = {"A": "plain", "B": "with space", "C": 'q"\\n\n\t', "D": "", "E": "$x #y"}
    assert load_data(emit(data, "env"), "env") == data


def test_env_quotes_read_as_python_dotenv_reads_them() -> None:
    text = (
        "A='it\\'s'\nB='a\\\\b\\n'\nC=\"x\\$y \\a\\v\\'\"\n"
        "E='two\nlines'  # c\nF=\"q\"#c\nD='ends\\\\'\n"
    )
    expected = {
        "A": "it's",
        "B": "a\\b\\n",
        "C": "x\\$y \a\v'",
        "E": "two\nlines",
        "F": "q",
        "D": "ends\\",
    }
    assert load_data(text, "env") == expected
    assert dict(dotenv_values(stream=io.StringIO(text), interpolate=False)) == expected
    # As in python-dotenv, `\\'` is an escaped quote even after `\\\\`, so this value only
    # ends at the next quote, and the line after it is not `NAME=value`.
    with pytest.raises(DataError, match="unexpected text after the quoted value"):
        load_data("D='ends\\\\'\nE='x'\n", "env")


ENV_CHARS = st.sampled_from([*"'\"\\ #$={}\nab", "\\'", '\\"', "${X}", "\\n", "\\$"])


# Mostly quoted values (where the readers can disagree), sometimes unterminated.
ENV_VALUES = st.builds(
    lambda q, body, close: q + "".join(body) + (q if close else ""),
    st.sampled_from(["'", '"', ""]),
    st.lists(ENV_CHARS, max_size=8),
    st.booleans(),
)
ENV_LINES = st.lists(st.tuples(st.sampled_from(["A", "B_1", "c"]), ENV_VALUES), max_size=4)


@given(ENV_LINES)
def test_env_agrees_with_python_dotenv(lines: list[tuple[str, str]]) -> None:
    """Whatever python-dotenv reads without complaint, import reads the same; what it
    skips with a warning, import refuses."""
    from dotenv.parser import parse_stream

    text = "".join(f"{k}={v}\n" for k, v in lines)
    bindings = list(parse_stream(io.StringIO(text)))
    # dotenv skips a line it cannot read; a key without `=` (possible after a newline in a
    # value) it reads as None: both are refused by import.
    if any(b.error or (b.key is not None and b.value is None) for b in bindings):
        with pytest.raises(DataError):
            load_data(text, "env")
        return
    assert load_data(text, "env") == dict(
        dotenv_values(stream=io.StringIO(text), interpolate=False)
    )


def test_env_references_round_trip_through_build(tmp_path: Path) -> None:
    # import -> build -f env -> import gives the same data; the text keeps `${...}`.
    text = 'URL="${HOST}:${PORT:-80}/x"\nRAW=\'${HOME}\'\nBARE=$${Y}\nQ="it\'s \\"q\\""\n'
    (tmp_path / "app.env").write_text(text)
    r = cflc("import", "app.env", "-o", "app.cfl", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    built = subprocess.run(
        [*CFLC, "build", "app.cfl", "-f", "env"], cwd=tmp_path, capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr
    first = load_data(text, "env")
    assert first == {
        "URL": "${HOST}:${PORT:-80}/x",
        "RAW": "${HOME}",
        "BARE": "$${Y}",
        "Q": 'it\'s "q"',
    }
    assert load_data(built.stdout, "env") == first
    # A loader that expands references expands the same ones in both files.
    env = {"HOST": "h", "HOME": "/home/u", "Y": "y"}
    os_env = {**os.environ, **env}
    assert _expanded(built.stdout, os_env) == _expanded(text, os_env)


def _expanded(text: str, env: dict[str, str]) -> dict[str, str | None]:
    from unittest import mock

    with mock.patch.dict(os.environ, env, clear=True):
        return dict(dotenv_values(stream=io.StringIO(text), interpolate=True))


# --- the command -----------------------------------------------------------------------------


def cflc(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CFLC, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )


SAMPLE = {
    "name": "billing",
    "replicas": 3,
    "db": {"host": "db.internal", "port": 5432},
    "tags": ["a", "b"],
    "max-conns": 10,
    "ratio": 0.5,
    "debug": False,
    "owner": None,
}


def test_cli_import_json_to_stdout_and_file(tmp_path: Path) -> None:
    (tmp_path / "app.json").write_text(json.dumps(SAMPLE))
    r = cflc("import", "app.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("# imported from app.json by cflc import\n")
    assert r.stderr == ""
    assert exact(build(r.stdout)) == exact(SAMPLE)
    r = cflc("import", "app.json", "-o", "app.cfl", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, "")
    built = subprocess.run(
        [*CFLC, "build", "app.cfl"], cwd=tmp_path, capture_output=True, text=True
    )
    assert built.returncode == 0 and json.loads(built.stdout) == SAMPLE


@pytest.mark.parametrize(
    ("name", "text", "fmt"),
    [
        ("app.yaml", "name: billing\nreplicas: 3\ndb:\n  host: h\n", None),
        ("app.toml", 'name = "billing"\nreplicas = 3\n[db]\nhost = "h"\n', None),
        ("conf.txt", '{"name": "billing", "replicas": 3, "db": {"host": "h"}}', "json"),
    ],
)
def test_cli_import_formats(tmp_path: Path, name: str, text: str, fmt: str | None) -> None:
    (tmp_path / name).write_text(text)
    r = cflc("import", name, *(["--from", fmt] if fmt else []), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert build(r.stdout) == {"name": "billing", "replicas": 3, "db": {"host": "h"}}


def test_cli_import_ini_env_and_stdin(tmp_path: Path) -> None:
    (tmp_path / "app.ini").write_text("[server]\nport = 80\n")
    r = cflc("import", "app.ini", cwd=tmp_path)
    assert build(r.stdout) == {"server": {"port": "80"}}
    (tmp_path / ".env").write_text("DB_HOST=h\nPORT=80\n")
    r = cflc("import", ".env", cwd=tmp_path)
    assert build(r.stdout) == {"DB_HOST": "h", "PORT": "80"}
    r = cflc("import", "-", "--from", "yaml", cwd=tmp_path, stdin="a: 1\n")
    assert build(r.stdout) == {"a": 1}
    r = cflc("import", "-", cwd=tmp_path, stdin="a: 1\n")
    assert r.returncode == 2 and "--from" in r.stderr


def test_cli_infer_schema_appended(tmp_path: Path) -> None:
    (tmp_path / "app.json").write_text(json.dumps(SAMPLE))
    r = cflc("import", "app.json", "--infer-schema", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "schema Root {" in r.stdout and "db: Db {" in r.stdout
    assert exact(build(r.stdout)) == exact(SAMPLE)


def test_cli_infer_schema_to_its_own_file(tmp_path: Path) -> None:
    (tmp_path / "app.json").write_text(json.dumps(SAMPLE))
    (tmp_path / "cfl.toml").write_text("[project]\n")  # the project root: env/ may import ../
    r = cflc(
        "import",
        "app.json",
        "--schema-out",
        "schemas/app-types.cfl",
        "-o",
        "env/app.cfl",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    module = (tmp_path / "env" / "app.cfl").read_text()
    assert 'import "../schemas/app-types.cfl" as app_types' in module
    assert "db: app_types.Db {" in module
    assert "schema Root {" in (tmp_path / "schemas" / "app-types.cfl").read_text()
    built = subprocess.run(
        [*CFLC, "build", "env/app.cfl"], cwd=tmp_path, capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout) == SAMPLE


def test_cli_malformed_input_points_at_the_error(tmp_path: Path) -> None:
    cases = {
        "bad.json": ('{"a": 1,\n  "b": [1, 2,, 3]}', "bad.json:2:14"),
        "bad.yaml": ("a: [1, 2\nb: 3\n", "bad.yaml:2:2"),
        "bad.toml": ("a = 1\nb = = 2\n", "bad.toml:2:5"),
        "bad.ini": ("[a]\nx = 1\nx = 2\n", "bad.ini:3:1"),
        "bad.env": ("A=1\nnot a line\n", "bad.env:2:1"),
    }
    for name, (text, where) in cases.items():
        (tmp_path / name).write_text(text)
        r = cflc("import", name, cwd=tmp_path)
        assert r.returncode == 1, name
        assert where in r.stderr, (name, r.stderr)
        assert "error[E0702]" in r.stderr and "Traceback" not in r.stderr
        assert r.stdout == ""
    r = cflc("import", "bad.json", "--error-format", "json", cwd=tmp_path)
    diag = json.loads(r.stderr)
    assert (diag["file"], diag["line"], diag["column"]) == ("bad.json", 2, 14)


def test_cli_values_cfl_cannot_hold(tmp_path: Path) -> None:
    (tmp_path / "big.json").write_text('{"a": {"b": [1, 100000000000000000000]}}')
    r = cflc("import", "big.json", cwd=tmp_path)
    assert r.returncode == 1 and "64-bit" in r.stderr and "a.b[1]" in r.stderr
    (tmp_path / "list.json").write_text("[1, 2]")
    r = cflc("import", "list.json", cwd=tmp_path)
    assert r.returncode == 1 and "top level is a list" in r.stderr
    (tmp_path / "nan.json").write_text('{"a": NaN}')
    assert cflc("import", "nan.json", cwd=tmp_path).returncode == 1
    (tmp_path / "latin1.json").write_bytes(b'{"a": "\xe9"}')
    r = cflc("import", "latin1.json", cwd=tmp_path)
    assert r.returncode == 1 and "UTF-8" in r.stderr and "Traceback" not in r.stderr


def test_cli_usage_errors(tmp_path: Path) -> None:
    r = cflc("import", "missing.json", cwd=tmp_path)
    assert r.returncode == 2 and "does not exist" in r.stderr
    (tmp_path / "dir.json").mkdir()
    assert cflc("import", "dir.json", cwd=tmp_path).returncode == 2
    (tmp_path / "README").write_text("x")
    r = cflc("import", "README", cwd=tmp_path)
    assert r.returncode == 2 and "--from" in r.stderr
    assert cflc("import", "README", "--from", "xml", cwd=tmp_path).returncode == 2


def test_cli_help() -> None:
    r = subprocess.run([*CFLC, "import", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    for flag in ("--from", "--infer-schema", "--schema-out", "-o, --output"):
        assert flag in r.stdout


def test_cli_round_trip_of_generated_like_data(tmp_path: Path) -> None:
    data = {"": 1, "else": {"$<x>": 'a\\b"c\n$<y>'}, "l": [[], {}, -(2**63), 1e-7, None]}
    (tmp_path / "d.json").write_text(json.dumps(data))
    r = cflc("import", "d.json", "-o", "d.cfl", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    built = subprocess.run([*CFLC, "build", "d.cfl"], cwd=tmp_path, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert exact(json.loads(built.stdout)) == exact(data)


# --- faithfulness (issue 12 §6) ------------------------------------------------------------


def test_cli_github_workflow_keeps_its_on_key(tmp_path: Path) -> None:
    (tmp_path / "ci.yml").write_text(
        "name: ci\non:\n  push:\n    branches: [main]\njobs:\n  test:\n    runs-on: x\n"
    )
    r = cflc("import", "ci.yml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert build(r.stdout) == {
        "name": "ci",
        "on": {"push": {"branches": ["main"]}},
        "jobs": {"test": {"runs-on": "x"}},
    }


def test_cli_duplicate_yaml_key_points_at_the_second(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text("a: 1\nb:\n  c: 2\n  c: 3\n")
    r = cflc("import", "d.yaml", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (1, "")
    assert "error[E0702]: duplicate key `c` in a YAML mapping (first at line 3)" in r.stderr
    assert "d.yaml:4:3" in r.stderr and "help: " in r.stderr


@pytest.mark.parametrize(
    ("name", "text", "where", "message"),
    [
        ("a.yaml", "x:\n  when: 2024-01-02\n", "a.yaml:2:9", "a date (`2024-01-02`)"),
        ("a.toml", "[db]\nat = 1979-05-27T07:32:00.123456789Z\n", "a.toml:2:6",
         "a timestamp (`1979-05-27T07:32:00.123456789Z`)"),
    ],
)  # fmt: skip
def test_cli_dates_are_refused_not_rewritten(
    tmp_path: Path, name: str, text: str, where: str, message: str
) -> None:
    (tmp_path / name).write_text(text)
    r = cflc("import", name, cwd=tmp_path)
    assert (r.returncode, r.stdout) == (1, "")
    assert f"error[E0710]: {message} has no CFL type (at `" in r.stderr
    assert where in r.stderr
    assert "help: quote the value in the input file to import it as a string" in r.stderr
    diag = json.loads(cflc("import", name, "--error-format", "json", cwd=tmp_path).stderr)
    written = message.split("`")[1]
    assert diag["end_column"] - diag["column"] == len(written)  # the whole value underlined


def test_cli_editorconfig_top_level_keys(tmp_path: Path) -> None:
    (tmp_path / ".editorconfig").write_text(
        "# top-most EditorConfig file\nroot = true\n\n[*]\nindent_style = space\n"
    )
    r = cflc("import", ".editorconfig", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert build(r.stdout) == {"root": "true", "*": {"indent_style": "space"}}


def test_cli_diff_reads_yaml_keys_as_import_does(tmp_path: Path) -> None:
    # A YAML data file and the CFL it was written from: `on` is the same key on both sides.
    (tmp_path / "w.yaml").write_text("on:\n  push: {}\nyes: 1\n")
    (tmp_path / "w.cfl").write_text('on { push {} }\n"yes" = 1\n')
    r = cflc("diff", "w.yaml", "w.cfl", "--exit-code", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (0, ""), r.stderr
    (tmp_path / "d.yaml").write_text("on: 1\non: 2\n")
    r = cflc("diff", "d.yaml", "w.cfl", cwd=tmp_path)
    assert r.returncode == 1 and "d.yaml:2:1" in r.stderr and "duplicate key `on`" in r.stderr


# --- multi-document YAML and data-keyed objects (issue 14) ------------------------------------

K8S_MANIFEST = """\
# A small web service: Deployment, Service and its ConfigMap.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels:
    app.kubernetes.io/name: web
    app.kubernetes.io/part-of: shop
    tier: frontend
  annotations:
    deployment.kubernetes.io/revision: "3"
spec:
  replicas: 3
  selector:
    matchLabels:
      app.kubernetes.io/name: web
  template:
    metadata:
      labels:
        app.kubernetes.io/name: web
        tier: frontend
    spec:
      containers:
        - name: web
          image: registry.example.com/shop/web:1.4.2
          ports:
            - containerPort: 8080
              name: http
          env:
            - name: LOG_LEVEL
              value: info
            - name: DB_HOST
              valueFrom:
                configMapKeyRef:
                  name: web-config
                  key: db_host
          resources:
            limits:
              cpu: 500m
              memory: 256Mi
          envFrom:
            - configMapRef:
                name: web-config
      nodeSelector:
        kubernetes.io/os: linux
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  labels:
    app.kubernetes.io/name: web
spec:
  type: ClusterIP
  selector:
    app.kubernetes.io/name: web
  ports:
    - name: http
      port: 80
      targetPort: http
      protocol: TCP
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: shop
data:
  db_host: db.shop.svc.cluster.local
  cache_ttl: "300"
  feature_flags: "checkout,search"
---
"""


def k8s_documents() -> list[Any]:
    import yaml

    return [d for d in yaml.safe_load_all(K8S_MANIFEST) if d is not None]


def test_yaml_stream_documents_are_read_in_order_without_empty_ones() -> None:
    from cfglang.tools.importer import load_yaml_documents

    assert load_yaml_documents(K8S_MANIFEST) == k8s_documents()
    assert [d["kind"] for d in load_yaml_documents(K8S_MANIFEST)] == [
        "Deployment",
        "Service",
        "ConfigMap",
    ]
    assert load_yaml_documents("---\na: 1\n---\n---\nb: 2\n---\n") == [{"a": 1}, {"b": 2}]
    assert load_yaml_documents("") == [] and load_yaml_documents("a: 1\n") == [{"a": 1}]
    # A refused value names its document: the path starts with the index in the list.
    with pytest.raises(DataError) as e:
        load_yaml_documents("a: 1\n---\nb: 2024-01-02\n")
    assert (e.value.path, e.value.line, e.value.column) == ((1, "b"), 3, 4)


def test_cli_multi_document_yaml_becomes_a_list(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(K8S_MANIFEST)
    r = cflc("import", "app.yaml", "-o", "app.cfl", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    module = (tmp_path / "app.cfl").read_text()
    assert module.startswith(
        "# imported from app.yaml (3 documents) by cflc import\n\ndocuments = [\n"
    )
    built = cflc("build", "app.cfl", cwd=tmp_path)
    assert (built.returncode, built.stderr) == (0, "")
    assert exact(json.loads(built.stdout)) == exact({"documents": k8s_documents()})


def test_cli_document_n_takes_one_document(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(K8S_MANIFEST)
    r = cflc("import", "app.yaml", "--document", "1", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.startswith("# imported from app.yaml (document 1 of 3) by cflc import\n")
    assert exact(build(r.stdout)) == exact(k8s_documents()[1])
    r = cflc("import", "app.yaml", "--document", "3", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (2, "")
    assert "--document 3 is out of range: `app.yaml` holds 3 documents (0 to 2)" in r.stderr
    (tmp_path / "one.yaml").write_text("a: 1\n")
    r = cflc("import", "one.yaml", "--document", "0", cwd=tmp_path)
    assert (r.returncode, build(r.stdout)) == (0, {"a": 1})
    r = cflc("import", "one.yaml", "--document", "1", cwd=tmp_path)
    assert r.returncode == 2 and "holds 1 document\n" in r.stderr
    (tmp_path / "app.json").write_text("{}")
    r = cflc("import", "app.json", "--document", "0", cwd=tmp_path)
    assert (r.returncode, r.stdout) == (2, "")
    assert "--document applies to YAML input only, not json" in r.stderr
    r = cflc("import", "app.yaml", "--document", "-1", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_cli_infer_schema_types_labels_and_data_as_maps(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(K8S_MANIFEST)
    r = cflc("import", "app.yaml", "--infer-schema", "-o", "app.cfl", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    module = (tmp_path / "app.cfl").read_text()
    for line in (
        "  labels: map[string, string]?",
        "  annotations: map[string, string]?",
        "  data: map[string, string]?",
        "  nodeSelector: map[string, string]",
        "  matchLabels: map[string, string]?",
    ):
        assert f"\n{line}\n" in module
    built = cflc("build", "app.cfl", cwd=tmp_path)
    assert (built.returncode, built.stderr) == (0, "")
    assert exact(json.loads(built.stdout)) == exact({"documents": k8s_documents()})
    # A new label or ConfigMap key is data, not a misspelt field; a misspelt field still is.
    edited = module.replace(
        '    data {\n      db_host = "db', '    data {\n      log = "x"\n      db_host = "db'
    )
    assert edited != module
    res = compile(text=edited, filename="app.cfl", emit_outputs=False)
    assert res.ok, [d.message for d in res.diagnostics]
    assert res.data["documents"][2]["data"]["log"] == "x"
    typo = module.replace(
        '      namespace = "shop"\n    }\n    data',
        '      namespace = "shop"\n      namspace = "x"\n    }\n    data',
    )
    assert typo != module
    res = compile(text=typo, filename="app.cfl", emit_outputs=False)
    assert not res.ok and [d.code for d in res.diagnostics] == ["E0202"]


def test_infer_schema_map_heuristic() -> None:
    def types(data: dict[str, Any]) -> dict[str, str]:
        schemas = infer_schema(data)
        # Whatever the types, the typed module builds back to the data.
        assert exact(build(to_cfl(data, schemas=schemas))) == exact(data)
        return schemas.root_types

    many = {f"flag_{i}": i % 2 == 0 for i in range(8)}
    assert types(
        {
            "labels": {"app": "web", "tier": "frontend"},  # a known name
            "headers": {"Content-Type": "text/plain"},  # known, and not an identifier
            "ports": {"http": 80, "https": 443},  # plain record: a schema
            "sizes": {"a.b": 1, "c": 2.5},  # a key that is not an identifier; int and float
            "flags": many,  # eight keys, one type
            "mixed": {"x.y": 1, "z": "s"},  # not one type: a schema, keys quoted
            "env": {"HOME": {"value": "/root"}, "PATH": {"value": "/bin"}},  # same keys
            "tags": {"a": {"x": 1}, "b": {"y": 2}},  # objects of different keys: a schema
            "data": {"a": None},  # only null: no value type to give
        }
    ) == {
        "labels": "map[string, string]",
        "headers": "map[string, string]",
        "ports": "Ports",
        "sizes": "map[string, int | float]",
        "flags": "map[string, bool]",
        "mixed": "Mixed",
        "env": "map[string, EnvItem]",
        "tags": "Tags",
        "data": "Data",
    }
    assert types({"db": {f"k{i}": "v" for i in range(7)}}) == {"db": "Db"}
    # Maps inside list items: every item's labels are merged into one value type.
    assert types({"items": [{"labels": {"a": "1"}}, {"labels": {"b": "2", "c": "3"}}]}) == {
        "items": "list[Item]"
    }
    assert (
        "  labels: map[string, string]\n"
        in infer_schema({"items": [{"labels": {"a": "1"}}, {"labels": {"b": "2", "c": "3"}}]}).text
    )
