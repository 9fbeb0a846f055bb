"""Every client reads the one `Program` of a set of sources (issue 13).

Builds, the declaration tools (`cflc schema export`, `cflc doc`, `cflc codegen`,
`cflc deps`) and the language server get their program from one in-process cache
(`cfglang.semantic.programs`): unchanged sources are built into a program once, whoever
asks first, and the tools read their types from that program's resolver
(`Program.types`) and the language server its bindings (`Program.bindings`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import cfglang.semantic.programs as programs
from cfglang import api, driver
from cfglang.eval.builtins import BUILTINS
from cfglang.eval.evaluate import Limits
from cfglang.lsp import model
from cfglang.lsp.analysis import State
from cfglang.semantic import types as T
from cfglang.tools.codegen import generate
from cfglang.tools.deps import target_deps
from cfglang.tools.docgen import build_pages
from cfglang.tools.jsonschema import export, load_workspace

BASE = """\
schema Service {
  name: string
  port: int = 8080
}
input region: string = "us"
web: Service { name = "web" }
"""
PROD = 'extends "base.cfl"\ninput region = "eu"\napi: Service { name = "api"; port = 9 }\n'
DEV = 'extends "base.cfl"\ndev = true\n'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "cfl.toml").write_text("[project]\n")
    (tmp_path / "base.cfl").write_text(BASE)
    (tmp_path / "prod.cfl").write_text(PROD)
    (tmp_path / "dev.cfl").write_text(DEV)
    driver.PROGRAMS.clear()
    return tmp_path


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The entry of every program built from now on (a cache miss)."""
    real = programs.build_program
    seen: list[str] = []

    def counting(loader: Any, entry_path: str, **kw: Any) -> Any:
        seen.append(Path(entry_path).name)
        return real(loader, entry_path, **kw)

    monkeypatch.setattr(programs, "build_program", counting)
    return seen


@pytest.fixture
def resolvers(monkeypatch: pytest.MonkeyPatch) -> list[T.TypeResolver]:
    """Every type resolver asked to resolve a type expression from now on."""
    real = T.TypeResolver.resolve
    seen: list[T.TypeResolver] = []

    def tracking(self: T.TypeResolver, *args: Any, **kw: Any) -> Any:
        seen.append(self)
        return real(self, *args, **kw)

    monkeypatch.setattr(T.TypeResolver, "resolve", tracking)
    return seen


def test_an_editor_analysis_and_a_schema_export_share_one_program(
    project: Path, built: list[str], resolvers: list[T.TypeResolver]
) -> None:
    prod = str(project / "prod.cfl")
    state = State()
    state.set_buffer(prod, PROD)  # open in the editor, unchanged
    analysis = state.analysis(prod)
    program = analysis.program
    assert program is not None and program.entry is analysis.entry
    assert built == ["prod.cfl"]

    ws = load_workspace([prod])
    assert ws.ok, ws.diagnostics
    assert built == ["prod.cfl"]  # the export reused the editor's program
    assert ws.programs == [program] and ws.entries == [program.entry]
    assert ws.types_of(ws.entries[0]) is program.types
    resolvers.clear()
    doc = export(ws, "Service")
    assert doc is not None and doc["properties"]["port"]["default"] == 8080
    assert resolvers and all(r is program.types for r in resolvers)

    # The language server's names are bound by that program, once.
    assert model.bindings(program.entry) is program.bindings(BUILTINS)


def test_a_build_and_every_declaration_tool_share_one_program(
    project: Path, built: list[str], resolvers: list[T.TypeResolver]
) -> None:
    prod = str(project / "prod.cfl")
    res = driver.run(driver.BuildRequest(prod, env={}))
    assert res.compilation.ok, res.compilation.diagnostics
    program = res.program
    assert program is not None

    ws = load_workspace([prod])
    deps = target_deps(prod)
    assert built == ["prod.cfl"]
    assert ws.programs == [program]
    assert {n.path for n in deps.modules} == {"prod.cfl", "base.cfl"}
    assert [i.name for i in deps.inputs] == list(program.inputs) == ["region"]

    resolvers.clear()
    base = next(m for m in ws.modules if m.source.path == "base.cfl")
    assert "class Service" in generate(ws, base)
    assert build_pages(ws, [], "Reference")
    assert resolvers and all(r is program.types for r in resolvers)

    # Another build with other inputs: still that program, still not built again.
    again = api.compile(prod, cli_vars=[("region", "ap")], env={})
    assert again.ok and built == ["prod.cfl"]


def test_a_changed_source_gives_the_tools_a_new_program(project: Path, built: list[str]) -> None:
    prod = str(project / "prod.cfl")
    first = load_workspace([prod])
    (project / "base.cfl").write_text(BASE.replace("8080", "7070"))
    second = load_workspace([prod])
    assert built == ["prod.cfl", "prod.cfl"]
    assert second.programs[0] is not first.programs[0]
    doc = export(second, "Service")
    assert doc is not None and doc["properties"]["port"]["default"] == 7070


def test_a_workspace_of_two_targets_resolves_each_module_in_its_own_program(
    project: Path,
) -> None:
    ws = load_workspace([str(project / "prod.cfl"), str(project / "dev.cfl")])
    assert ws.ok, ws.diagnostics
    prod, dev = ws.programs
    assert [m.source.path for m in ws.modules] == ["prod.cfl", "base.cfl", "dev.cfl"]
    assert ws.types_of(ws.entries[0]) is prod.types
    assert ws.types_of(ws.entries[1]) is dev.types
    # The base both extend is listed once (the first target's), and typed by its program.
    base = ws.modules[1]
    assert base is prod.modules[base.key] and ws.types_of(base) is prod.types
    assert ws.types_of(dev.modules[base.key]) is dev.types


def test_a_broken_buffer_keeps_the_last_program_that_parsed(project: Path) -> None:
    prod = str(project / "prod.cfl")
    state = State()
    state.set_buffer(prod, PROD)
    good = state.analysis(prod).program
    assert good is not None and good.entry is not None
    state.set_buffer(prod, PROD + "broken = {\n")
    broken = state.analysis(prod)
    assert broken.entry is None and not broken.compilation.ok
    m = state.module(prod)
    assert m is good.entry  # the last graph that parsed
    assert model.program_of(m) is good
    assert model.bindings(m) is good.bindings(BUILTINS)


def test_a_module_that_is_no_programs_entry_is_bound_on_its_own(project: Path) -> None:
    prod = str(project / "prod.cfl")
    state = State()
    state.set_buffer(prod, PROD)
    entry = state.module(prod)
    assert entry is not None and entry.parent is not None
    base = entry.parent
    assert model.program_of(base) is None
    table = model.bindings(base)
    assert table.entry is base and table is model.bindings(base)


def test_the_default_module_depth_is_the_evaluators() -> None:
    assert programs.MODULE_DEPTH == Limits().max_module_depth


def test_the_driver_reexports_the_one_cache() -> None:
    assert driver.PROGRAMS is programs.PROGRAMS
    assert driver.program_for is programs.program_for


def test_cflc_doc_documents_the_programs_it_compiled(
    project: Path, built: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`cflc doc` of a project compiles each target (for its values), then documents the
    schemas: from the programs those compiles made, not from a second parse."""
    from cfglang.commands.doc import _doc

    (project / "cfl.toml").write_text('[project]\ntargets = ["prod.cfl", "dev.cfl"]\n')
    out = tmp_path_factory.mktemp("docs")
    assert _doc((str(project),), str(out), None, (), "human", "never", True) == 0
    assert sorted(built) == ["dev.cfl", "prod.cfl"]
    assert "schema Service" in (out / "base.md").read_text()


def test_the_server_keeps_no_program_of_an_old_buffer(project: Path) -> None:
    """Each edit makes a new program; the old ones are not kept alive by the server."""
    import gc

    prod = str(project / "prod.cfl")
    state = State()
    for i in range(5):
        state.set_buffer(prod, PROD + f"n = {i}\n")
        assert state.analysis(prod).program is not None
    gc.collect()
    alive = [
        p for p in list(model._PROGRAMS.values()) if p.entry is not None and p.entry.key == prod
    ]
    assert alive == [state.analysis(prod).program]
