"""`cflc explain`: provenance of a value along the inheritance chain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cfglang.api import explain
from cfglang.tools.explain import Explanation, parse_path

CFLC = [sys.executable, "-c", "from cfglang.cli import run; run()"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "cfl.toml").write_text("[project]\n")
    (tmp_path / "schema.cfl").write_text(
        "schema Svc {\n  replicas: int = 1 where self >= 1\n  host: string\n  token: secret?\n}\n"
    )
    (tmp_path / "base.cfl").write_text(
        'import "schema.cfl"\n'
        'input region: string = "us-east-1"\n'
        'input api_token: secret from env "TOKEN"\n'
        'let domain = "$<region>.example.com"\n'
        "svc: schema.Svc {\n"
        '  host = "db.$<domain>"\n'
        "  replicas = 2\n"
        "  token = api_token\n"
        "}\n"
    )
    (tmp_path / "prod.cfl").write_text(
        'extends "base.cfl"\ninput region = "eu-west-1"\nsvc.replicas = super + 3\n'
    )
    return tmp_path


def cflc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CFLC, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"TOKEN": "hunter2", "PATH": "/usr/bin:/bin"},
    )


def test_override_chain_base_to_child(project: Path) -> None:
    out = explain(str(project / "prod.cfl"), "svc.replicas", env={"TOKEN": "t"})
    assert isinstance(out, Explanation)
    assert out.value == 5
    assert out.set_by is not None
    assert (out.set_by.site.file, out.set_by.site.line) == ("prod.cfl", 3)
    assert [(d.site.file, d.site.line, d.origin) for d in out.overrides] == [
        ("base.cfl", 7, "assignment"),
        ("schema.cfl", 2, "schema default"),
    ]
    assert [t for t, _ in out.types] == ["int"]


def test_input_fed_through_let_and_substitution(project: Path) -> None:
    out = explain(str(project / "prod.cfl"), "svc.host", env={"TOKEN": "t"})
    assert isinstance(out, Explanation)
    assert out.value == "db.eu-west-1.example.com"
    assert [(i.name, i.value, i.source) for i in out.inputs] == [
        ("region", "eu-west-1", "new default in prod.cfl")
    ]
    cli = explain(
        str(project / "prod.cfl"),
        "svc.host",
        env={"TOKEN": "t"},
        cli_vars=[("region", "ap-south-1")],
    )
    assert isinstance(cli, Explanation)
    assert cli.inputs[0].source == "--var" and cli.value == "db.ap-south-1.example.com"


def test_human_output_and_secret_redaction(project: Path) -> None:
    r = cflc("explain", "prod.cfl", "svc.token", cwd=project)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == 'svc.token = "<secret>"  (secret)'
    assert "hunter2" not in r.stdout
    assert "from environment variable TOKEN" in r.stdout


def test_json_output(project: Path) -> None:
    r = cflc("explain", "prod.cfl", "svc.replicas", "--json", cwd=project)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["value"] == 5 and data["set_by"]["file"] == "prod.cfl"
    assert [o["file"] for o in data["overrides"]] == ["base.cfl", "schema.cfl"]


def test_unknown_path_is_an_error_with_suggestion(project: Path) -> None:
    r = cflc("explain", "prod.cfl", "svc.replica", cwd=project)
    assert r.returncode == 1
    assert "svc has no `replica`" in r.stderr and "did you mean `replicas`?" in r.stderr
    bad = cflc("explain", "prod.cfl", "svc..x", cwd=project)
    assert bad.returncode == 2 and "is not a data path" in bad.stderr


def test_path_syntax() -> None:
    assert parse_path('a.b[2]["x.y"].c') == ["a", "b", 2, "x.y", "c"]
    assert parse_path("a..b") is None and parse_path("") is None


def test_inputs_read_follow_the_scoping_rules(tmp_path: Path) -> None:
    """docs/language.md §3.6: a field's own key in its value and `outer.name` read the
    input; a bare name a field of the object captures does not."""
    (tmp_path / "cfl.toml").write_text("[project]\n")
    (tmp_path / "main.cfl").write_text(
        'input env: string = "prod"\n'
        "app {\n"
        "  env = env\n"
        '  other = { env = "dev"; label = "$<env>"; up = "$<outer.env>" }\n'
        "}\n"
        'web { env = "dev"; up = "$<outer.env>" }\n'
    )
    main = str(tmp_path / "main.cfl")
    for path, value, inputs in (
        ("app.env", "prod", ["env"]),
        ("app.other.label", "dev", []),
        ("app.other.up", "prod", []),  # the field `app.env`: the next object out
        ("web.up", "prod", ["env"]),
    ):
        out = explain(main, path)
        assert isinstance(out, Explanation)
        assert out.value == value
        assert [i.name for i in out.inputs] == inputs, path
