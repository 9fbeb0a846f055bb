"""The compiled `Program`: built once from source texts, reused across evaluations.

A program is shared by every build of unchanged sources in a process (`cfglang.driver`
keeps them, checked against the texts), so a build with other inputs does not parse,
resolve or plan again; its output is byte-identical to a cold build's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

import cfglang.syntax.parser as parser
from cfglang import api, driver
from cfglang.diagnostics import Diagnostics
from cfglang.eval.evaluate import Evaluator
from cfglang.eval.inputs import Given
from cfglang.eval.materialise import materialize
from cfglang.semantic.program import build_program
from cfglang.semantic.resolve import FileLoader

BASE = """\
schema Service {
  name: string
  port: int = 8080
  host: string = "$<name>.$<region>.internal"
}
input region: string = "us"
hidden proto: Service {}
services {
  a extends proto { name = "a" }
  b extends proto { name = "b"; port = 9000 }
  c.name = "c"
}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "cfl.toml").write_text("[project]\n")
    (tmp_path / "base.cfl").write_text(BASE)
    (tmp_path / "prod.cfl").write_text('extends "base.cfl"\ninput region = "eu"\nextra = 1\n')
    driver.PROGRAMS.clear()
    return tmp_path / "prod.cfl"


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The display paths of every module parsed from now on."""
    real = parser.parse_module
    seen: list[str] = []

    def counting(source: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(source.path)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(parser, "parse_module", counting)
    return seen


def text_of(res: api.Compilation) -> str:
    assert res.ok, res.diagnostics
    return json.dumps(res.data, sort_keys=True)


def build(path: Path, region: str | None = None, **kw: Any) -> driver.BuildResult:
    if region is not None:
        kw["cli_vars"] = [("region", region)]
    return driver.run(driver.BuildRequest(str(path), env={}, **kw))


def test_a_reused_program_gives_the_bytes_of_a_cold_build(project: Path, parses: list[str]) -> None:
    warm_up = build(project, "ap")
    assert sorted(parses) == ["base.cfl", "prod.cfl"]
    reused = build(project, "sa")
    assert reused.program is warm_up.program
    assert sorted(parses) == ["base.cfl", "prod.cfl"]  # nothing parsed again
    driver.PROGRAMS.clear()
    cold = build(project, "sa")
    assert cold.program is not reused.program
    assert text_of(reused.compilation) == text_of(cold.compilation)
    assert reused.compilation.diagnostics == cold.compilation.diagnostics


def test_different_inputs_give_different_outputs_from_one_program(project: Path) -> None:
    outs = {r: api.compile(str(project), cli_vars=[("region", r)], env={}) for r in "xyz"}
    hosts = {r: o.data["services"]["a"]["host"] for r, o in outs.items() if o.data}
    assert hosts == {"x": "a.x.internal", "y": "a.y.internal", "z": "a.z.internal"}
    # The default (the new one prod.cfl sets) when no value is given.
    assert api.compile(str(project), env={}).data["services"]["b"]["host"] == "b.eu.internal"
    typed = api.load(str(project), vars={"region": "py"}, env={})
    assert typed.services.a.host == "a.py.internal"


def test_profile_shows_a_reused_program_parsed_nothing(project: Path) -> None:
    first = api.compile(str(project), profile=True, env={})
    again = api.compile(str(project), cli_vars=[("region", "q")], profile=True, env={})
    assert first.profile is not None and sorted(first.profile.parsed) == [
        "base.cfl",
        "prod.cfl",
    ]
    assert again.profile is not None and again.profile.parsed == []
    assert set(again.profile.files) == {"base.cfl", "prod.cfl"}


def test_a_changed_text_invalidates_the_program(project: Path, parses: list[str]) -> None:
    first = build(project, "x")
    base = project.parent / "base.cfl"
    base.write_text(BASE.replace("port: int = 8080", "port: int = 7070"))
    second = build(project, "x")
    assert second.program is not first.program
    assert parses.count("base.cfl") == 2
    assert second.compilation.data is not None
    assert second.compilation.data["services"]["a"]["port"] == 7070
    # The entry itself changed: also a new program.
    project.write_text('extends "base.cfl"\nextra = 2\n')
    third = build(project)
    assert third.program is not second.program
    assert third.compilation.data is not None and third.compilation.data["extra"] == 2


def test_a_new_file_that_changes_what_an_import_names_invalidates_the_program(
    tmp_path: Path,
) -> None:
    # `import "lib"` reads `lib` when it exists, else `lib.cfl`.
    (tmp_path / "cfl.toml").write_text("[project]\n")
    (tmp_path / "lib.cfl").write_text("v = 1\n")
    (tmp_path / "main.cfl").write_text('import "lib" as l\nv = l.v\n')
    driver.PROGRAMS.clear()
    assert build(tmp_path / "main.cfl").compilation.data == {"v": 1}
    (tmp_path / "lib").write_text("v = 2\n")
    assert build(tmp_path / "main.cfl").compilation.data == {"v": 2}


def test_text_given_in_the_call_is_part_of_the_program(tmp_path: Path) -> None:
    name = str(tmp_path / "inline.cfl")
    assert api.loads("a = 1\n", filename=name).to_dict() == {"a": 1}
    assert api.loads("a = 2\n", filename=name).to_dict() == {"a": 2}


def test_an_overlay_is_read_like_the_disk(project: Path) -> None:
    api.compile(str(project), env={})
    over = {str(project): 'extends "base.cfl"\nextra = 5\n'}
    res = api.compile(str(project), overlay=over, env={})
    assert res.data is not None and res.data["extra"] == 5
    assert api.compile(str(project), env={}).data["extra"] == 1


def test_a_program_with_errors_is_not_kept(tmp_path: Path) -> None:
    (tmp_path / "cfl.toml").write_text("[project]\n")
    main = tmp_path / "main.cfl"
    main.write_text('import "missing.cfl" as m\nv = 1\n')
    driver.PROGRAMS.clear()
    first = build(main)
    assert not first.compilation.ok
    (tmp_path / "missing.cfl").write_text("w = 2\n")
    second = build(main)
    assert second.program is not first.program
    assert second.compilation.ok and second.compilation.data == {"v": 1}


def test_the_program_is_immutable(project: Path) -> None:
    program = build_program(FileLoader(), str(project), root=str(project.parent))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        program.entry = None  # type: ignore[misc]
    with pytest.raises(TypeError):
        program.modules["x"] = program.entry  # type: ignore[index]
    assert [name for name in program.inputs] == ["region"]
    assert [m.source.path for m, _ in program.inputs["region"]] == ["base.cfl", "prod.cfl"]


def test_an_evaluation_is_made_of_program_inputs_and_secrets(project: Path) -> None:
    program = build_program(FileLoader(), str(project), root=str(project.parent))
    results = []
    for region in ("one", "two"):
        diags = Diagnostics()
        ev = Evaluator(
            diags, env={}, program=program, inputs=Given.of(cli_vars=[("region", region)])
        )
        assert ev.main_doc is not None
        data = materialize(ev, ev.main_doc)
        assert not diags.has_errors, diags.sorted()
        results.append(data["services"]["a"]["host"])
        assert ev.input_sources["region"] == ("--var", None)
    assert results == ["a.one.internal", "a.two.internal"]


def test_plans_are_the_programs(project: Path) -> None:
    """A body's expansion plan is worked out once per program, not once per evaluation."""
    one = build(project, "x")
    assert one.program is not None
    plans = dict(one.program.lowering._plans)
    assert plans
    two = build(project, "y")
    assert two.program is one.program
    assert {k: v[1] for k, v in one.program.lowering._plans.items()} == {
        k: v[1] for k, v in plans.items()
    }
    for k, (_, plan) in plans.items():
        assert one.program.lowering._plans[k][1] is plan  # the same object: not planned again


def test_an_emit_error_finds_the_defining_line_without_a_second_compile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "a.cfl"
    src.write_text('db { host = "h" }\nx = 1\n')
    res = api.compile(str(src))
    assert res.ok
    span = res.definition_span("x")
    assert span is not None and span.start_line_col() == (2, 1)
    assert res.definition_span("db.host") is not None
    assert res.definition_span("db.host").start_line_col() == (1, 6)  # type: ignore[union-attr]
    assert res.definition_span("nope") is None

    def no_compile(*_: Any, **__: Any) -> Any:
        raise AssertionError("compiled again")

    monkeypatch.setattr(driver, "run", no_compile)
    found = api.definition_span(str(src), "x", result=res)
    assert found is not None and found.start_line_col() == (2, 1)


def test_a_cached_result_keeps_no_evaluation(tmp_path: Path) -> None:
    import pickle

    src = tmp_path / "a.cfl"
    src.write_text("x = 1\n")
    res = api.compile(str(src))
    assert res.definition_span("x") is not None
    back = pickle.loads(pickle.dumps(res))
    assert back.data == res.data and back.diagnostics == res.diagnostics
    assert back.definition_span("x") is None


def test_secret_sites_come_from_the_program(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parses: list[str]
) -> None:
    pyrage = pytest.importorskip("pyrage")
    import cfglang.secrets.format as fmt
    from cfglang.secrets.edit import encrypt_text

    ident = pyrage.x25519.Identity.generate()
    key = tmp_path / "key.txt"
    key.write_text(f"{ident}\n")
    (tmp_path / "cfl.toml").write_text("[project]\n")
    app = tmp_path / "app.cfl"
    text = 'input env: string = "dev"\npassword = secret("KNOWN")\nstage = env\n'
    app.write_text(encrypt_text(str(app), text, recipients=[str(ident.to_public())]).text)
    parses.clear()
    calls: list[int] = []
    real = fmt.sites

    def counting(tree: Any) -> Any:
        calls.append(1)
        return real(tree)

    monkeypatch.setattr(fmt, "sites", counting)
    driver.PROGRAMS.clear()
    secrets = driver.SecretOptions(identity=(str(key),), plaintext="allow")
    for env in ("dev", "prod"):
        out = build(app, secrets=secrets, cli_vars=[("env", env)])
        data = out.compilation.data
        assert data is not None, out.compilation.diagnostics
        assert data["password"].value == "KNOWN" and data["stage"] == env
    assert parses == ["app.cfl"]
    assert len(calls) == 1  # one walk of the tree, for both evaluations


def test_the_program_module_does_not_import_evaluation() -> None:
    code = (
        "import sys, cfglang.semantic.program\n"
        "bad = sorted(m for m in sys.modules if m.startswith('cfglang.eval'))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_threads_share_one_program(project: Path) -> None:
    """Evaluations of one program in many threads at once give the sequential results."""
    from concurrent.futures import ThreadPoolExecutor

    regions = [f"r{i % 5}" for i in range(80)]
    want = {r: text_of(build(project, r).compilation) for r in set(regions)}
    program = build(project, "r0").program

    def one(region: str) -> tuple[str, bool]:
        out = build(project, region)
        return text_of(out.compilation), out.program is program

    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(one, regions))
    assert [t for t, _ in got] == [want[r] for r in regions]
    assert all(same for _, same in got)


def test_a_reused_program_reports_the_errors_of_a_cold_build(tmp_path: Path) -> None:
    """Findings of the shared type resolver are reported by every evaluation."""
    from cfglang.diagnostics import render_human

    (tmp_path / "cfl.toml").write_text("[project]\n")
    main = tmp_path / "m.cfl"
    main.write_text(
        'input r: string = "a"\nschema S { x: Nope\n y: int where self > lim }\n'
        "let lim = 3\ns: S { x = 1; y = 2 }\nz = r\ntype A = B\ntype B = A\nq: A = 1\n"
    )
    driver.PROGRAMS.clear()

    def shown(region: str) -> list[str]:
        res = api.compile(str(main), cli_vars=[("r", region)], env={})
        return [render_human(d) for d in res.diagnostics]

    first, reused = shown("a"), shown("b")
    driver.PROGRAMS.clear()
    cold = shown("b")
    assert reused == cold == first
    assert [line.split(":")[0] for line in cold] == ["error[E0203]", "error[E0301]", "error[E0205]"]


def test_the_program_binds_its_names_once(project: Path) -> None:
    from cfglang.eval.builtins import BUILTINS

    program = build(project, "x").program
    assert program is not None
    bound = program.bindings(BUILTINS)
    assert bound is not None and bound is program.bindings(BUILTINS)
    kinds = {b.kind for b in bound.names.values()}
    assert "input" in kinds  # `region` in the host substitution


def test_a_held_result_does_not_hold_its_evaluation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc
    import weakref

    made: list[weakref.ref[Evaluator]] = []
    real = Evaluator.__init__

    def tracking(self: Evaluator, *args: Any, **kwargs: Any) -> None:
        made.append(weakref.ref(self))
        real(self, *args, **kwargs)

    monkeypatch.setattr(Evaluator, "__init__", tracking)
    src = tmp_path / "a.cfl"
    src.write_text('db { host = "h"; port = 5 }\nx = [1, { y = 2 }]\n')
    res = api.compile(str(src))
    gc.collect()
    assert made and all(r() is None for r in made)
    span = res.definition_span("x[1].y")  # an object in a list: its own field's site
    assert span is not None and span.start_line_col() == (2, 11)
    assert res.definition_span("db.port").start_line_col() == (1, 18)  # type: ignore[union-attr]


REFINED = """\
input limit: int = 10
let cap = limit
type Small = int where self <= cap
type Port = int where 1 <= self && self <= 65535
type Name = string where matches(self, "^[a-z]+$")
port: Port = 8080
name: Name = "web"
size: Small = 5
"""


def test_a_refinement_of_the_value_alone_is_decided_once_per_program(tmp_path: Path) -> None:
    path = tmp_path / "r.cfl"
    path.write_text(REFINED)
    driver.PROGRAMS.clear()
    first = build(path)
    program = first.program
    assert program is not None
    verdicts = set(program.where_verdicts)
    # `Port` and `Name` read only `self` and builtins: kept for every evaluation.
    assert {(k[3]) for k in verdicts} == {8080, "web"}
    # `Small` reads a let built from an input: decided again by each evaluation.
    ok = build(path, cli_vars=[("limit", "7")])
    assert ok.program is program and ok.compilation.ok
    refused = build(path, cli_vars=[("limit", "3")])
    assert refused.program is program
    assert [d.code for d in refused.compilation.diagnostics] == ["E0301"]
    assert set(program.where_verdicts) == verdicts


def test_a_module_name_that_shadows_a_builtin_makes_a_refinement_impure(tmp_path: Path) -> None:
    path = tmp_path / "r.cfl"
    path.write_text("input n: int = 3\nlet min = n\ntype T = int where self >= min\nx: T = 5\n")
    driver.PROGRAMS.clear()
    res = build(path)
    assert res.program is not None and res.compilation.ok
    assert not res.program.where_verdicts  # `min` is the let here, not the builtin
    refused = build(path, cli_vars=[("n", "9")])
    assert [d.code for d in refused.compilation.diagnostics] == ["E0301"]
