"""Kept values: a reused `Program` takes the data of its input-independent fields from the
previous evaluation (`cfglang.semantic.dependence`, `cfglang.eval.materialise.Keeping`).

Every case compiles one program with a sequence of input values, the program reused (so
the second evaluation records kept data and the later ones use it), and checks each
result against a cold compile of the same inputs: data, diagnostics and provenance. The
cases are the ways an input can reach a value without being named beside it: through a
reference, a block, an `if`, a `for`, a template argument, a refinement, a check, an
`unset`, a computed key or index, a selected prototype.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfglang import api, driver
from cfglang.semantic.dependence import input_dependence


def _result(res: Any) -> tuple[str, list[str]]:
    data = json.dumps(res.data, sort_keys=True, default=repr) if res.data is not None else "null"
    return data, sorted(f"{d.code} {d.span} {d.message}" for d in res.diagnostics)


def _compile(path: Path, var: tuple[str, str]) -> Any:
    return api.compile(str(path), cli_vars=[var], env={})


def _program(path: Path) -> Any:
    for entry in driver.PROGRAMS._items.values():
        program = entry[0] if isinstance(entry, tuple) else entry
        if program.entry is not None and program.entry.source.real_path == str(path):
            return program
    raise AssertionError("no cached program")


def check_reuse(tmp_path: Path, files: dict[str, str], name: str, values: list[str]) -> None:
    """Compile the entry `main.cfl` with ``name`` set to each of ``values`` in turn,
    reusing the program, and compare every result with a cold compile."""
    for rel, text in files.items():
        (tmp_path / rel).write_text(text)
    entry = tmp_path / "main.cfl"
    driver.PROGRAMS.clear()
    cold = []
    for v in values:
        driver.PROGRAMS.clear()
        cold.append(_result(_compile(entry, (name, v))))
    driver.PROGRAMS.clear()
    for i, v in enumerate(values):
        got = _result(_compile(entry, (name, v)))
        assert got == cold[i], f"evaluation {i + 1} (with {name}={v}) differs from a cold build"


FLEET = {
    "schema.cfl": """
schema Db {
  host: string
  port: int = 5432
  pool: int = 10 where self > 0
}
schema Service {
  name: string
  port: int = 8080
  db: Db
  labels: map[string, string] = {}
}
""",
    "main.cfl": """
import "schema.cfl" as s
input region: string = "eu"
hidden proto: s.Service { db.host = "db-$<name>.$<region>" }
services {
  a extends proto { name = "a"; labels.team = "x" }
  b extends proto { name = "b"; port = 9000; db.pool = 20 }
}
""",
}


def test_a_field_reading_an_input_through_substitution(tmp_path: Path) -> None:
    check_reuse(tmp_path, FLEET, "region", ["eu", "us", "ap", "eu"])


def test_what_is_kept_and_what_is_evaluated_again(tmp_path: Path) -> None:
    check_reuse(tmp_path, FLEET, "region", ["eu", "us", "ap"])
    program = _program(tmp_path / "main.cfl")
    dep = program.input_dependence()
    assert dep.usable
    # `host` reads the input; the blocks that hold it contain it; nothing selects
    # between objects, so only `host` (and the input itself) is unstable.
    assert {"host", "db", "proto", "a", "b", "services", "region"} <= dep.dirty
    assert {"name", "port", "labels", "team", "pool"}.isdisjoint(dep.dirty)
    assert "db" not in dep.unstable and "host" in dep.unstable
    ((root, _spans),) = program.kept.values()
    svc_a = root.children["services"].children["a"]
    assert set(svc_a.fields) == {"name", "port", "labels"}
    assert set(svc_a.children["db"].fields) == {"port", "pool"}


def test_kept_data_is_a_copy(tmp_path: Path) -> None:
    for rel, text in FLEET.items():
        (tmp_path / rel).write_text(text)
    entry = tmp_path / "main.cfl"
    driver.PROGRAMS.clear()
    first = _compile(entry, ("region", "eu"))
    second = _compile(entry, ("region", "us"))  # records
    third = _compile(entry, ("region", "ap"))  # uses
    for res in (first, second, third):
        res.data["services"]["a"]["labels"]["team"] = "changed by the caller"
        res.data["services"]["a"]["name"] = "changed"
    fourth = _compile(entry, ("region", "eu"))
    assert fourth.data["services"]["a"]["labels"] == {"team": "x"}
    assert fourth.data["services"]["a"]["name"] == "a"
    assert fourth.data["services"]["a"]["db"]["host"] == "db-a.eu"


def test_provenance_of_kept_fields(tmp_path: Path) -> None:
    for rel, text in FLEET.items():
        (tmp_path / rel).write_text(text)
    entry = tmp_path / "main.cfl"
    driver.PROGRAMS.clear()
    cold = _compile(entry, ("region", "eu"))
    _compile(entry, ("region", "us"))
    warm = _compile(entry, ("region", "ap"))
    for path in (
        "services.a.labels.team",
        "services.b.db.pool",
        "services.a.db.host",
        "services.b.port",
        "services.a.name",
    ):
        want = cold._provenance.definition_span(path)
        assert want is not None
        assert warm._provenance.definition_span(path) == want, path


CASES: dict[str, tuple[dict[str, str], str, list[str]]] = {
    "if_at_top_level": (
        {
            "main.cfl": """\
input env: string = "dev"
if env == "prod" { replicas = 3 } else { replicas = 1 }
name = "x"
""",
        },
        "env",
        ["dev", "prod", "dev", "prod"],
    ),
    "if_in_a_nested_block_changes_a_sibling_key": (
        {
            "main.cfl": """\
input env: string = "dev"
app { name = "a"; if env == "prod" { debug = false; name = "b" } }
other { name = "o" }
""",
        },
        "env",
        ["dev", "prod", "dev", "prod"],
    ),
    "unset_under_an_input_condition": (
        {
            "main.cfl": """\
input env: string = "dev"
base { a = 1; b = 2 }
x extends base { if env == "prod" { unset a } }
""",
        },
        "env",
        ["dev", "prod", "dev", "prod"],
    ),
    "a_prototype_selected_by_an_input": (
        {
            "main.cfl": """\
input env: string = "dev"
hidden p1 { port = 1; name = "one" }
hidden p2 { port = 2; name = "two" }
svc = if env == "prod" then p1 else p2
copy { inner = svc }
""",
        },
        "env",
        ["dev", "prod", "dev", "prod"],
    ),
    "a_refinement_extending_a_selected_base": (
        {
            "main.cfl": """\
input env: string = "dev"
hidden p1 { port = 1 }
hidden p2 { port = 2 }
svc = (if env == "prod" then p1 else p2) { name = "n" }
""",
        },
        "env",
        ["dev", "prod", "dev", "prod"],
    ),
    "a_let_reading_an_input": (
        {
            "main.cfl": """\
input n: int = 1
let twice = n * 2
deep { deeper { v = twice; w = 5 } }
""",
        },
        "n",
        ["1", "2", "3", "1"],
    ),
    "a_for_over_an_input_list": (
        {
            "main.cfl": """\
input n: int = 1
items { for i in range(n) { k = i } }
fixed { a = 1 }
""",
        },
        "n",
        ["1", "2", "3", "1"],
    ),
    "computed_keys_from_an_input": (
        {
            "main.cfl": """\
input n: int = 1
items { for i in range(n) { "k$<i>" = i } }
fixed { a = 1 }
""",
        },
        "n",
        ["1", "2", "3", "1"],
    ),
    "a_template_argument_by_name": (
        {
            "main.cfl": """\
input n: int = 1
template T(x: int) { v = x; w = 7 }
a = T(x = n)
b { c = T(x = 3) }
""",
        },
        "n",
        ["1", "2", "3", "1"],
    ),
    "a_template_argument_by_position": (
        {
            "main.cfl": """\
input n: int = 1
template T(x: int) { v = x; w = 7 }
a { inner = T(n) }
b { inner = T(3) }
""",
        },
        "n",
        ["1", "2", "3", "1"],
    ),
    "a_refinement_reading_an_input_becomes_an_error": (
        {
            "main.cfl": """\
input max: int = 100
svc { limits { port: int = 80 where self <= max } }
""",
        },
        "max",
        ["100", "90", "50", "100"],
    ),
    "a_check_reading_an_input": (
        {
            "main.cfl": """\
input max: int = 100
svc { nested { port = 80; check port <= max } }
""",
        },
        "max",
        ["100", "90", "50", "100"],
    ),
    "self_read_whole": (
        {
            "main.cfl": """\
input n: int = 1
obj { a = n; b = 2; hidden me = self }
show { v = obj.me; w = 3 }
""",
        },
        "n",
        ["1", "2", "1"],
    ),
    "an_index_computed_from_an_input": (
        {
            "main.cfl": """\
input k: string = "a"
table { a = 1; b = 2 }
pick { v = table[k]; w = 3 }
""",
        },
        "k",
        ["a", "b", "a"],
    ),
    "a_comprehension_over_an_input": (
        {
            "main.cfl": """\
input n: int = 1
holder { xs = [i * 2 for i in range(n)]; ys = [1, 2] }
""",
        },
        "n",
        ["1", "2", "3", "1"],
    ),
    "an_object_literal_holding_an_input": (
        {
            "main.cfl": """\
input n: int = 1
holder { o = { a = n; b = 2 }; p = { c = 3 } }
""",
        },
        "n",
        ["1", "2", "1"],
    ),
    "a_schema_default_reading_an_input": (
        {
            "main.cfl": """\
input n: int = 1
schema S { a: int = n; b: int = 2 }
x: S {}
y { z: S {} }
""",
        },
        "n",
        ["1", "2", "1"],
    ),
    "super_building_on_an_input_default": (
        {
            "main.cfl": """\
input n: int = 1
base { v = n; w = 1 }
x extends base { v = super + 1; w = super + 1 }
""",
        },
        "n",
        ["1", "2", "1"],
    ),
    "a_base_layer_declaring_the_input": (
        {
            "base.cfl": """\
input n: int = 1
values { a = n; b = 2 }
""",
            "main.cfl": """\
extends "base.cfl"
more { c = values.a; d = 4 }
values { e = 5 }
""",
        },
        "n",
        ["1", "2", "1"],
    ),
    "a_template_of_an_imported_module": (
        {
            "lib.cfl": """\
template T(x: int) { a = x; b = 2 }
schema S { p: int = 7 }
""",
            "main.cfl": """\
import "lib.cfl" as lib
input n: int = 1
out { made = lib.T(x = n); typed: lib.S {}; own = 3 }
""",
        },
        "n",
        ["1", "2", "1"],
    ),
    "a_missing_field_appears_with_an_input": (
        {
            "main.cfl": """\
input env: string = "dev"
schema S { a: int; b: int = 1 }
x: S { if env == "dev" { a = 1 } }
""",
        },
        "env",
        ["dev", "dev", "prod", "dev"],
    ),
    "a_type_error_in_a_dirty_field_after_clean_runs": (
        {
            "main.cfl": """\
input v: string = "1"
schema S { port: int; name: string = "n" }
x: S { port = int(v) }
""",
        },
        "v",
        ["1", "2", "x", "3"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_reused_program_matches_a_cold_build(tmp_path: Path, case: str) -> None:
    files, name, values = CASES[case]
    check_reuse(tmp_path, files, name, values)


def test_a_computed_key_that_may_read_an_input_turns_keeping_off(tmp_path: Path) -> None:
    files, name, values = CASES["computed_keys_from_an_input"]
    check_reuse(tmp_path, files, name, values)
    program = _program(tmp_path / "main.cfl")
    assert not program.input_dependence().usable
    assert not program.kept


def test_nothing_is_kept_from_an_evaluation_that_reported_something(tmp_path: Path) -> None:
    (tmp_path / "main.cfl").write_text(
        'input v: string = "1"\nschema S { port: int }\nx: S { port = int(v) }\ny { a = 1 }\n'
    )
    entry = tmp_path / "main.cfl"
    driver.PROGRAMS.clear()
    _compile(entry, ("v", "1"))
    bad = _compile(entry, ("v", "x"))  # the one that would record
    assert not bad.ok
    assert not _program(entry).kept
    _compile(entry, ("v", "2"))  # records now
    assert _program(entry).kept


def test_secrets_are_never_kept(tmp_path: Path) -> None:
    (tmp_path / "main.cfl").write_text(
        "input n: int = 1\n"
        "schema S { password: secret; n: int }\n"
        'x: S { password = "hunter2hunter2"; n = n }\n'
    )
    entry = tmp_path / "main.cfl"
    driver.PROGRAMS.clear()
    results = [
        api.compile(str(entry), cli_vars=[("n", v)], env={}, plaintext_secrets="allow")
        for v in ("1", "2", "3")
    ]
    assert all(r.ok for r in results)
    assert [r.data["x"]["n"] for r in results] == [1, 2, 3]
    for ((root, _),) in [tuple(_program(entry).kept.values())]:
        assert "password" not in root.children["x"].fields


# ---- a property: random documents where inputs reach values in many ways -----------------

_LEAF = st.sampled_from(
    [
        "1",
        '"text"',
        "n",
        '"v$<n>"',
        "n + 1",
        "if n > 1 then 2 else 3",
        "other",
        "sibling",
        "o0.f0",  # another object's field (absent in some documents: an error both ways)
        "[n, 1]",
        "[1, 2]",
        "{ a = n; b = 1 }",
        "{ c = 2 }",
        "self.sibling",
        "len(keys(o0))",
        "T(x = n)",
        "T(x = 4)",
        "T(5)",
        'lower("A$<other>")',
    ]
)

_KINDS = [
    "block",
    "if",
    "if_clean",
    "extends",
    "nested",
    "let",
    "select",
    "for_clean",
    "typed",
    "list_of_objects",
    "unset",
]


@st.composite
def _documents(draw: Any) -> str:
    lines = [
        "input n: int = 1",
        "other = 10",
        "template T(x: int) { got = x; fixed = 3 }",
        'schema S { f0: int = 0; f1: string = "s"; sibling: int; extra: int = 9 }',
    ]
    for i in range(draw(st.integers(1, 4))):
        fields = []
        for j in range(draw(st.integers(1, 4))):
            fields.append(f"f{j} = {draw(_LEAF)}")
        fields.append("sibling = 5")
        body = "; ".join(fields)
        kind = draw(st.sampled_from(_KINDS))
        if kind == "block":
            lines.append(f"o{i} {{ {body} }}")
        elif kind == "if":
            lines.append(f"o{i} {{ g = 1; if n > 1 {{ {body} }} }}")
        elif kind == "if_clean":
            lines.append(f"o{i} {{ g = 1; if other > 5 {{ {body} }} else {{ h = 2 }} }}")
        elif kind == "extends":
            lines.append(f"hidden p{i} {{ {body} }}")
            lines.append(f"o{i} extends p{i} {{ extra = {draw(_LEAF)} }}")
        elif kind == "nested":
            lines.append(f"o{i} {{ inner {{ {body} }}; k = 2 }}")
        elif kind == "let":
            lines.append(f"let l{i} = {draw(_LEAF)}")
            lines.append(f"o{i} {{ v = l{i}; {body} }}")
        elif kind == "select":
            lines.append(f"hidden pa{i} {{ {body} }}")
            lines.append(f"hidden pb{i} {{ f0 = 7; sibling = 8 }}")
            lines.append(f"o{i} = if n > 1 then pa{i} else pb{i}")
        elif kind == "for_clean":
            lines.append(f"o{i} {{ for v in [1, 2] {{ if v == 2 {{ {body} }} }} }}")
        elif kind == "typed":
            lines.append(f"o{i}: S {{ f0 = {draw(_LEAF)}; sibling = 1 }}")
        elif kind == "list_of_objects":
            lines.append(f"o{i} {{ items = [{{ a = {draw(_LEAF)} }}, {{ {body} }}] }}")
        else:
            lines.append(f"hidden q{i} {{ {body}; gone = 1 }}")
            lines.append(f"o{i} extends q{i} {{ if n > 2 {{ unset gone }} }}")
    return "\n".join(lines) + "\n"


@pytest.mark.fuzz  # tests/fuzz.sh runs it long; CI in the short derandomised profile
@given(doc=_documents(), values=st.lists(st.sampled_from(["1", "2", "3"]), min_size=3, max_size=4))
def test_property_reuse_equals_cold(tmp_path_factory: Any, doc: str, values: list[str]) -> None:
    tmp = tmp_path_factory.mktemp("keep")
    check_reuse(tmp, {"main.cfl": doc}, "n", values)


def test_dependence_of_a_program_without_inputs_is_empty(tmp_path: Path) -> None:
    (tmp_path / "main.cfl").write_text("a { b = 1; c = self.b }\n")
    _compile(tmp_path / "main.cfl", ("x", "1"))
    dep = input_dependence(_program(tmp_path / "main.cfl").modules.values())
    assert dep.usable
    assert dep.dirty == {"\x00input", "secret"}


def test_static_findings_are_reported_by_every_evaluation(tmp_path: Path) -> None:
    # A literal that breaks its refinement, and one that breaks its type: found by the
    # static checks, which a reused program runs once and reports every time.
    (tmp_path / "main.cfl").write_text(
        'input n: int = 1\ntype Small = int where self < 10\na: Small = 50\nb: int = "x"\nc = n\n'
    )
    entry = tmp_path / "main.cfl"
    driver.PROGRAMS.clear()
    runs = [_result(_compile(entry, ("n", v)))[1] for v in ("1", "2", "3", "4")]
    assert runs[0] and all(r == runs[0] for r in runs)
    assert any("E0301" in d for d in runs[0]) and any("E0302" in d for d in runs[0])
    assert _program(entry).input_dependence().static_checks_fixed


def test_a_refinement_reading_an_input_is_checked_by_every_evaluation(tmp_path: Path) -> None:
    (tmp_path / "main.cfl").write_text("input max: int = 100\na: int = 50 where self < max\n")
    entry = tmp_path / "main.cfl"
    driver.PROGRAMS.clear()
    codes = [
        [d.split()[0] for d in _result(_compile(entry, ("max", v)))[1]]
        for v in ("100", "90", "10", "100")
    ]
    assert codes == [[], [], ["E0301"], []]
    assert not _program(entry).input_dependence().static_checks_fixed


# ---- every example and golden case that declares an input --------------------------------

_ROOT = Path(__file__).resolve().parent.parent
_INPUT = re.compile(r"^input\s+(\w+)\s*(?::\s*(\w+))?\s*(?:=\s*(\S+))?", re.MULTILINE)
_VALUES = {"string": ["a1", "b2", "a1"], "int": ["1", "2", "3"], "bool": ["true", "false", "true"]}


def _entries_with_an_input() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(
        [*(_ROOT / "examples").rglob("*.cfl"), *(_ROOT / "tests/cases").rglob("*.cfl")]
    ):
        m = _INPUT.search(path.read_text(encoding="utf-8"))
        if m is None:
            continue
        name, typ, default = m.groups()
        if typ is None and default is not None:
            typ = "string" if default.startswith('"') else "int" if default.isdigit() else None
        if typ in _VALUES:
            found.append((str(path.relative_to(_ROOT)), name, typ))
    return found


@pytest.mark.parametrize(("rel", "name", "typ"), _entries_with_an_input())
def test_reused_examples_and_cases_match_cold_builds(rel: str, name: str, typ: str) -> None:
    entry = _ROOT / rel
    values = _VALUES[typ]
    cold = []
    for v in values:
        driver.PROGRAMS.clear()
        cold.append(_result(api.compile(str(entry), cli_vars=[(name, v)], env={})))
    driver.PROGRAMS.clear()
    for i, v in enumerate(values * 2):
        got = _result(api.compile(str(entry), cli_vars=[(name, v)], env={}))
        assert got == cold[i % len(values)], f"evaluation {i + 1} with {name}={v}"


def test_the_analysis_is_linear_in_nested_literals(tmp_path: Path) -> None:
    # A hostile author's `[{ a = [{ a = ... }] }]`, 60 levels (120 brackets; the syntax
    # allows 128): the first version of the analysis walked each literal again for every
    # level above it (2^n: 1.9 s at 16 levels). Compared with cold builds like every case.
    depth = 60
    doc = "input n: int = 1\nx = " + "[{ a = " * depth + "n" + " }]" * depth + "\ny = 1\n"
    check_reuse(tmp_path, {"main.cfl": doc}, "n", ["1", "2", "3"])
    dep = _program(tmp_path / "main.cfl").input_dependence()
    assert dep.usable and "x" in dep.dirty and "y" not in dep.dirty


def test_a_program_keeps_one_tree_for_the_latest_limits(tmp_path: Path) -> None:
    from cfglang.eval.evaluate import Limits

    for rel, text in FLEET.items():
        (tmp_path / rel).write_text(text)
    entry = tmp_path / "main.cfl"
    driver.PROGRAMS.clear()
    cold = _result(_compile(entry, ("region", "us")))
    for i in range(6):
        limits = Limits(max_steps=1_000_000 + i % 2)  # alternating settings
        res = api.compile(str(entry), cli_vars=[("region", "us")], env={}, limits=limits)
        assert _result(res) == cold
        assert len(_program(entry).kept) == 1
