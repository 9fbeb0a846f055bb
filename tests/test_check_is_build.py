"""`cflc check` checks everything `cflc build` checks, and writes nothing (issue 14 §1).

Check compiles the named outputs and renders every output exactly as build does (one code
path, `cfglang.console.write_results` with ``dry_run``), without decrypting secrets. The
CLI tests run the console script; the golden sweep calls the function both commands call
(`cfglang.cli._build`) in-process, once per error case and command.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from cfglang import cli
from cfglang.console import Ctx
from cfglang.eval.evaluate import Limits
from tests.test_cli import assert_no_traceback, cflc
from tests.test_secrets import (
    KNOWN,
    SOURCE,
    project,  # noqa: F401 - a fixture
)
from tests.test_secrets import cflc as cflc_no_identity

CASES = Path(__file__).parent / "cases"
ERROR_CASES = sorted(p.parent for p in CASES.glob("*/*/expected.err"))

# ---- the four outputs that build rejects -------------------------------------------------------

BAD_OUTPUTS = {
    "unknown_extension": ('output "web.xml" = { a = 1 }\n', "E0603", "cannot tell the format"),
    "two_outputs_one_name": (
        'output "a.json" = { a = 1 }\noutput "./a.json" = { b = 2 }\n',
        "E0603",
        "two outputs are named `a.json`",
    ),
    "ini_root_scalar": (
        'output "app.ini" = { port = 80; db = { host = "h" } }\n',
        "E0601",
        "cannot write ini",
    ),
    "env_collision": (
        'output "app.env" = { db_host = "a"; db = { host = "b" } }\n',
        "E0601",
        "cannot write env",
    ),
    "properties_collision": (
        'output "app.properties" = { "db.host" = "a"; db = { host = "b" } }\n',
        "E0601",
        "cannot write properties",
    ),
}


def _listing(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


@pytest.mark.parametrize("name", sorted(BAD_OUTPUTS))
def test_check_fails_where_build_fails_on_an_output(tmp_path: Path, name: str) -> None:
    source, code, message = BAD_OUTPUTS[name]
    (tmp_path / "app.cfl").write_text(source)
    before = _listing(tmp_path)
    checked = cflc("check", "app.cfl", cwd=tmp_path)
    assert_no_traceback(checked)
    assert checked.returncode == 1, checked.stderr
    assert checked.stdout == ""
    assert f"error[{code}]" in checked.stderr and message in checked.stderr
    assert _listing(tmp_path) == before  # check writes nothing
    built = cflc("build", "-o", "out/", "app.cfl", cwd=tmp_path)
    assert built.returncode == 1 and built.stdout == ""
    assert built.stderr == checked.stderr
    assert not (tmp_path / "out").exists()


def test_check_of_a_project_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "cfl.toml").write_text('[project]\ntargets = ["*.cfl"]\n')
    (tmp_path / "a.cfl").write_text('output "a.json" = { a = 1 }\n')
    (tmp_path / "b.cfl").write_text("b = 2\n")
    r = cflc("check", "-v", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and "wrote" not in r.stderr and "2 file(s) checked" in r.stderr
    assert not (tmp_path / "out").exists()
    (tmp_path / "b.cfl").write_text('output "b.yml" = { b = 2 }\noutput "c.conf" = {}\n')
    r = cflc("check", cwd=tmp_path)
    assert r.returncode == 1 and "error[E0603]" in r.stderr and "`c.conf`" in r.stderr
    assert cflc("build", cwd=tmp_path).stderr == r.stderr
    assert not (tmp_path / "out").exists()


def test_check_format_renders_the_document(tmp_path: Path) -> None:
    (tmp_path / "app.cfl").write_text('port = 80\ndb = { host = "h" }\n')
    assert cflc("check", "app.cfl", cwd=tmp_path).returncode == 0
    checked = cflc("check", "-f", "ini", "app.cfl", cwd=tmp_path)
    built = cflc("build", "-f", "ini", "app.cfl", cwd=tmp_path)
    assert checked.returncode == built.returncode == 1
    assert checked.stdout == built.stdout == ""
    assert "error[E0601]: cannot write ini" in checked.stderr
    assert checked.stderr == built.stderr
    assert _listing(tmp_path) == ["app.cfl"]
    r = cflc("check", "-f", "env", "--env-prefix", "bad-", "app.cfl", cwd=tmp_path)
    assert r.returncode == 1 and "env prefix `bad-`" in r.stderr


# ---- secrets: never decrypted, never printed, rendered as placeholders -------------------------


def test_check_renders_outputs_holding_encrypted_secrets(project: dict[str, Any]) -> None:  # noqa: F811
    d: Path = project["dir"]
    text = (d / "app.cfl").read_text()
    outputs = 'output "db.ini" = { database = db }\noutput "all.env" = db\n'
    (d / "app.cfl").write_text(text + outputs)
    before = _listing(d)
    r = cflc_no_identity("check", "app.cfl", cwd=d)  # no identity anywhere
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    # An output that cannot be written fails without the key, as build fails with it.
    (d / "app.cfl").write_text(text + 'output "db.ini" = { tok = token; database = db }\n')
    r = cflc_no_identity("check", "app.cfl", cwd=d)
    assert r.returncode == 1 and "error[E0601]: cannot write ini" in r.stderr
    built = cflc_no_identity("build", "-o", "out/", "app.cfl", cwd=d, env=project["env"])
    assert built.returncode == 1 and built.stderr == r.stderr
    assert _listing(d) == before
    for out in (r.stdout, r.stderr, built.stdout, built.stderr):
        assert KNOWN not in out and "tok-123" not in out


def test_check_never_prints_a_plaintext_secret(tmp_path: Path) -> None:
    (tmp_path / "p.cfl").write_text(SOURCE + 'output "p.properties" = { d = db; "d.host" = 1 }\n')
    r = cflc_no_identity("check", "--allow-plaintext-secrets", "p.cfl", cwd=tmp_path)
    assert r.returncode == 1 and "error[E0601]: cannot write properties" in r.stderr
    assert KNOWN not in r.stdout + r.stderr and "tok-123" not in r.stdout + r.stderr
    assert _listing(tmp_path) == ["p.cfl"]


# ---- every golden error case: check and build report the same diagnostics ---------------------


def _run(
    case: Path,
    opts: dict[str, Any],
    out: Path | None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[int, str]:
    args = list(opts.get("args", []))
    var, var_files = [], []
    while args:
        flag, value = args.pop(0), args.pop(0)
        (var if flag == "--var" else var_files).append(value)
    settings = {"limits": Limits(**opts["limits"])} if "limits" in opts else {}
    # cfl.toml's [limits] reach `_build` through the expanded targets, as for a project.
    monkeypatch.setattr(
        cli, "expand_targets", lambda ctx, paths, **kw: (list(paths), dict(settings))
    )
    ctx = Ctx("human", "never", False, 0)
    ctx.use_cache = False
    capsys.readouterr()
    code = cli._build(
        ctx,
        ["main.cfl"],
        opts.get("format"),
        str(out) if out is not None else None,
        var,
        var_files,
        (),
        "",
        write=out is not None,
    )
    captured = capsys.readouterr()
    assert captured.out == ""
    return code, captured.err


def test_enough_error_cases() -> None:
    assert len(ERROR_CASES) >= 100


IDS = [f"{p.parent.name}/{p.name}" for p in ERROR_CASES]


@pytest.mark.parametrize("case", ERROR_CASES, ids=IDS)
def test_check_and_build_report_the_same(
    case: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opts: dict[str, Any] = {}
    if (case / "case.toml").is_file():
        opts = tomllib.loads((case / "case.toml").read_text())
    if "expr" in opts:
        pytest.skip("an `eval` case: neither check nor build evaluates an expression")
    for k, v in opts.get("env", {}).items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(case)
    fmt = opts.get("format", "json")
    out = tmp_path / "out" / f"main.{fmt}"
    before = _listing(case)
    built = _run(case, opts, out, capsys, monkeypatch)
    checked = _run(case, opts, None, capsys, monkeypatch)
    assert checked == built
    assert built[1], "an error case reports something"
    assert _listing(case) == before  # nothing written beside the sources
    if built[0] != 0:
        assert not (tmp_path / "out").exists()
