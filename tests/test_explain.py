"""`cflc explain`: provenance of a value along the inheritance chain."""

from __future__ import annotations

import json
import os
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
        # PYTHONPATH passes through so that the code under test is the one imported.
        env={
            "TOKEN": "hunter2",
            "PATH": "/usr/bin:/bin",
            **{k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "CFLC_NO_CACHE")},
        },
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


@pytest.fixture
def hidden_project(tmp_path: Path) -> Path:
    (tmp_path / "cfl.toml").write_text("[project]\n")
    (tmp_path / "base.cfl").write_text(
        'input region: string = "us-east-1"\n'
        'input stage: string = "dev"\n'
        'hidden base_url = "https://$<region>.example.com"\n'
        'hidden net = { zone = "$<region>-a"; name = "$<stage>-net" }\n'
        'url = "$<base_url>/api"\n'
        "zone = net.zone\n"
        "svc {\n"
        "  hidden port = 80\n"
        '  addr = "$<base_url>:$<port>"\n'
        "}\n"
    )
    (tmp_path / "prod.cfl").write_text(
        'extends "base.cfl"\ninput region = "eu-west-1"\nbase_url = "https://$<stage>.internal"\n'
    )
    return tmp_path


def test_explain_of_a_hidden_field(hidden_project: Path) -> None:
    r = cflc("explain", "base.cfl", "base_url", "--no-git", cwd=hidden_project)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines() == [
        'base_url = "https://us-east-1.example.com"  (string, hidden: not emitted)',
        "  set by     base.cfl:3:1                 "
        'hidden base_url = "https://$<region>.example.com"',
        '  input      region = "us-east-1" from default (base.cfl:1:24)',
    ]
    nested = cflc("explain", "base.cfl", "net.zone", "--json", "--no-git", cwd=hidden_project)
    assert (nested.returncode, nested.stderr) == (0, "")
    data = json.loads(nested.stdout)
    assert data["value"] == "us-east-1-a" and data["hidden"] is True
    assert [i["name"] for i in data["inputs"]] == ["region"]
    # A hidden field overridden in an extending module: the chain is shown as for any field.
    out = explain(str(hidden_project / "prod.cfl"), "base_url")
    assert isinstance(out, Explanation) and out.hidden
    assert out.set_by is not None and out.set_by.site.file == "prod.cfl"
    assert [d.site.file for d in out.overrides] == ["base.cfl"]
    assert [i.name for i in out.inputs] == ["stage"]


def test_inputs_read_through_hidden_fields(hidden_project: Path) -> None:
    def inputs(file: str, path: str) -> list[tuple[str, object]]:
        out = explain(str(hidden_project / file), path)
        assert isinstance(out, Explanation), out
        assert not out.hidden
        return [(i.name, i.value) for i in out.inputs]

    assert inputs("base.cfl", "url") == [("region", "us-east-1")]
    # `net.zone` reads only `zone` of the hidden object, so `stage` did not feed it.
    assert inputs("base.cfl", "zone") == [("region", "us-east-1")]
    assert inputs("base.cfl", "svc.addr") == [("region", "us-east-1")]
    # The override in prod.cfl decides what the hidden field reads.
    assert inputs("prod.cfl", "url") == [("stage", "dev")]
    r = cflc("explain", "prod.cfl", "svc.addr", "--no-git", cwd=hidden_project)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines()[-1] == '  input      stage = "dev" from default (base.cfl:2:23)'


def test_unknown_hidden_path_still_suggests(hidden_project: Path) -> None:
    r = cflc("explain", "base.cfl", "base_ur", "--no-git", cwd=hidden_project)
    assert (r.returncode, r.stdout) == (1, "")
    assert "the document has no `base_ur`" in r.stderr and "did you mean `base_url`?" in r.stderr


def test_an_error_in_a_hidden_field_nothing_reads_is_reported(tmp_path: Path) -> None:
    # A hidden field that nothing reads is not evaluated by a build; explain evaluates it,
    # and reports its error at file:line:col instead of failing without a word.
    (tmp_path / "a.cfl").write_text(
        'hidden bad = 1 + "x"\nhidden h = { a = 1; b = 2 + "y" }\nok = h.a\n'
    )
    assert cflc("build", "a.cfl", cwd=tmp_path).returncode == 0
    for path, line in (("bad", 1), ("h.b", 2), ("h", 2)):
        r = cflc("explain", "a.cfl", path, "--no-git", cwd=tmp_path)
        assert (r.returncode, r.stdout) == (1, ""), path
        assert r.stderr.startswith("error[E0302]: `+` cannot combine int and string\n")
        assert f" --> a.cfl:{line}:" in r.stderr and "internal error" not in r.stderr
    r = cflc("explain", "a.cfl", "h.a", "--no-git", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.startswith("h.a = 1  (int, hidden: not emitted)\n")


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
        # the field `app.env`, the next object out, which reads the input (explain follows
        # fields to the inputs they read)
        ("app.other.up", "prod", ["env"]),
        ("web.up", "prod", ["env"]),
    ):
        out = explain(main, path)
        assert isinstance(out, Explanation)
        assert out.value == value
        assert [i.name for i in out.inputs] == inputs, path
