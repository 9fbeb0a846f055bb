"""The dependency graph: `cfglang.tools.deps`, `cfglang.deps(...)` and `cflc deps`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cfglang.api
from cfglang.tools.deps import project_graph, target_deps

_SCRIPT = shutil.which("cflc")
CFLC = [_SCRIPT] if _SCRIPT else [sys.executable, "-c", "from cfglang.cli import run; run()"]


def make_project(root: Path) -> Path:
    (root / "env").mkdir(parents=True)
    (root / "schemas").mkdir()
    (root / "cfl.toml").write_text('[project]\ntargets = ["env/*.cfl"]\n')
    (root / "schemas" / "svc.cfl").write_text(
        'import "std/net" as net\nschema Svc { port: net.Port = 80 }\n'
    )
    (root / "base.cfl").write_text(
        'import "schemas/svc.cfl"\n'
        'input region: string = "eu" from env "REGION"\n'
        "app: svc.Svc { port = 81 }\n"
    )
    (root / "other.cfl").write_text("x = 1\n")
    (root / "env" / "a.cfl").write_text('extends "../base.cfl"\ninput token: string\n')
    (root / "env" / "b.cfl").write_text('import "../other.cfl"\ny = other.x\n')
    return root


def test_closure_edges_and_inputs(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    d = target_deps(str(root / "env" / "a.cfl"))
    assert d.ok
    assert d.target == "env/a.cfl"
    assert [m.path for m in d.modules] == [
        "env/a.cfl",
        "base.cfl",
        "schemas/svc.cfl",
        "std/net.cfl",
    ]
    assert [(e.kind, e.to) for e in d.modules[0].edges] == [("extends", "base.cfl")]
    assert [(e.kind, e.to, e.alias) for e in d.modules[1].edges] == [
        ("import", "schemas/svc.cfl", "svc")
    ]
    assert d.modules[-1].std
    assert [os.path.relpath(f, root) for f in d.project_files()] == [
        "base.cfl",
        os.path.join("env", "a.cfl"),
        os.path.join("schemas", "svc.cfl"),
    ]
    assert [(i.name, i.module, i.type, i.has_default, i.env) for i in d.inputs] == [
        ("region", "base.cfl", "string", True, "REGION"),
        ("token", "env/a.cfl", "string", False, None),
    ]
    # The front door answers the same.
    assert cfglang.api.deps(str(root / "env" / "a.cfl")).files == d.files


def test_missing_import_is_a_node_and_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.cfl").write_text('import "nope.cfl"\nx = 1\n')
    d = target_deps(str(tmp_path / "a.cfl"))
    assert not d.ok
    assert d.missing == ("nope.cfl",)
    assert str(tmp_path / "nope.cfl") in d.files
    assert d.modules[0].edges[0].missing


def test_project_graph_dependents(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    targets = [str(root / "env" / "a.cfl"), str(root / "env" / "b.cfl")]
    g = project_graph(targets)
    assert g.dependents([str(root / "other.cfl")]) == [targets[1]]
    assert g.dependents([str(root / "schemas" / "svc.cfl")]) == [targets[0]]
    assert g.dependents([str(root / "cfl.toml")]) == []


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CFLC, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_cli_text_json_dot(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    r = run("deps", "env/a.cfl", cwd=root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:3] == [
        "env/a.cfl",
        "└─ extends base.cfl",
        "   └─ import schemas/svc.cfl as svc",
    ]
    assert (
        "  region: string, declared in base.cfl, has a default, environment variable REGION"
        in r.stdout
    )
    r = run("deps", "env/a.cfl", "--json", cwd=root)
    data = json.loads(r.stdout)
    assert data["files"][:3] == ["base.cfl", "env/a.cfl", "schemas/svc.cfl"]
    assert len(data["files"]) == 4 and data["files"][3].endswith("std/net.cfl")
    assert data["inputs"][1] == {
        "name": "token",
        "module": "env/a.cfl",
        "type": "string",
        "has_default": False,
        "env": None,
    }
    r = run("deps", "env/a.cfl", "--dot", cwd=root)
    assert r.stdout.startswith("digraph deps {")
    assert '"env/a.cfl" -> "base.cfl" [label="extends", style=bold];' in r.stdout
    r = run("deps", "env/nothing.cfl", cwd=root)
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_cli_broken_target_prints_graph_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "a.cfl").write_text('import "b.cfl"\nx = 1\n')
    (tmp_path / "b.cfl").write_text("y = = 2\n")
    r = run("deps", "a.cfl", cwd=tmp_path)
    assert r.returncode == 1
    assert "import b.cfl as b (missing or broken)" in r.stdout
    assert "error[E0001]" in r.stderr
