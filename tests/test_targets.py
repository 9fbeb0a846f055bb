"""A project-wide `check`/`build`: one message per mistake naming its targets, warnings as
errors, and the default targets of a root without `targets` (issue 14 §4 and §6)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cfglang.project import entry_files
from tests.test_cli import assert_no_traceback, cflc

ENVS = ("dev", "prod", "stage")


def _project(root: Path, *, toml: str | None = '[project]\ntargets = ["env/*.cfl"]\n') -> None:
    """base.cfl (importing a schema) extended by env/{dev,prod,stage}.cfl."""
    (root / "schemas").mkdir()
    (root / "schemas" / "svc.cfl").write_text("schema Svc {\n  name: string\n}\n")
    (root / "base.cfl").write_text(
        'import "schemas/svc.cfl"\nregion = "eu"\nport = 80\nweb: svc.Svc = { name = "web" }\n'
    )
    (root / "env").mkdir()
    for env in ENVS:
        (root / "env" / f"{env}.cfl").write_text(f'extends "../base.cfl"\nstage = "{env}"\n')
    if toml is not None:
        (root / "cfl.toml").write_text(toml)


def _break_base(root: Path) -> None:
    text = (root / "base.cfl").read_text().replace("port = 80", 'port = 80 + "x"')
    (root / "base.cfl").write_text(text)


TARGETS = "env/dev.cfl, env/prod.cfl, env/stage.cfl"


# ---- one message per mistake ---------------------------------------------------------------


@pytest.mark.parametrize("command", ["check", "build"])
def test_a_mistake_in_a_shared_file_is_reported_once_naming_its_targets(
    tmp_path: Path, command: str
) -> None:
    _project(tmp_path)
    _break_base(tmp_path)
    r = cflc(command, cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr == (
        "error[E0302]: `+` cannot combine int and string\n"
        " --> base.cfl:3:11\n"
        "  |\n"
        '3 | port = 80 + "x"\n'
        '  |           ^ 80 + "x"\n'
        "  |\n"
        f"note: breaks 3 targets: {TARGETS}\n\n"
    )
    assert not (tmp_path / "out").exists()


def test_json_diagnostics_carry_the_targets_list(tmp_path: Path) -> None:
    _project(tmp_path)
    _break_base(tmp_path)
    r = cflc("check", "--error-format", "json", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 1
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1
    d = json.loads(lines[0])
    assert d["code"] == "E0302"
    assert (d["file"], d["line"], d["column"]) == ("base.cfl", 3, 11)
    assert d["targets"] == ["env/dev.cfl", "env/prod.cfl", "env/stage.cfl"]
    assert d["notes"] == []


def test_a_mistake_of_one_target_names_it(tmp_path: Path) -> None:
    _project(tmp_path)
    _break_base(tmp_path)
    (tmp_path / "env" / "prod.cfl").write_text('extends "../base.cfl"\nstage = 1 + true\n')
    r = cflc("check", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 1
    assert r.stderr.count("error[E0302]") == 2
    assert f"note: breaks 3 targets: {TARGETS}\n" in r.stderr
    assert " --> env/prod.cfl:2:11\n" in r.stderr
    assert "note: breaks target env/prod.cfl\n" in r.stderr
    r = cflc("check", "--error-format", "json", cwd=tmp_path)
    targets = [json.loads(line)["targets"] for line in r.stderr.splitlines()]
    assert targets == [["env/dev.cfl", "env/prod.cfl", "env/stage.cfl"], ["env/prod.cfl"]]


def test_one_file_names_no_target(tmp_path: Path) -> None:
    _project(tmp_path)
    _break_base(tmp_path)
    r = cflc("check", "env/prod.cfl", "--error-format", "json", cwd=tmp_path)
    assert r.returncode == 1
    assert "targets" not in json.loads(r.stderr)


def test_the_same_site_with_different_messages_stays_apart(tmp_path: Path) -> None:
    # The message differs per target (the value shown): two mistakes, each named.
    _project(tmp_path)
    (tmp_path / "base.cfl").write_text('stage = "x"\nport: int = stage\n')
    r = cflc("check", "--error-format", "json", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 1
    found = [json.loads(line) for line in r.stderr.splitlines()]
    assert len(found) == len(ENVS)
    assert [d["targets"] for d in found] == [[f"env/{e}.cfl"] for e in ENVS]


# ---- warnings as errors --------------------------------------------------------------------


def _near_miss(root: Path) -> None:
    (root / "main.cfl").write_text("db {\n  replicas = 1\n}\n")
    (root / "prod.cfl").write_text('extends "main.cfl"\ndb {\n  replcias = 3\n}\n')


@pytest.mark.parametrize("command", ["check", "build"])
def test_a_warning_passes_without_the_flag(tmp_path: Path, command: str) -> None:
    _near_miss(tmp_path)
    r = cflc(command, "prod.cfl", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert "warning[W0801]: `replcias` is a new key" in r.stderr


@pytest.mark.parametrize("command", ["check", "build"])
def test_warnings_as_errors_fails_on_a_warning(tmp_path: Path, command: str) -> None:
    _near_miss(tmp_path)
    r = cflc(command, "--warnings-as-errors", "prod.cfl", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "error[W0801]: `replcias` is a new key, close to the inherited `replicas`" in r.stderr
    assert " --> prod.cfl:3:3\n" in r.stderr
    assert "note: warnings are errors here (`--warnings-as-errors`" in r.stderr
    r = cflc(command, "--warnings-as-errors", "-q", "prod.cfl", cwd=tmp_path)
    assert r.returncode == 1
    assert "error[W0801]" in r.stderr  # an error now: -q does not hide it


def test_warnings_as_errors_json(tmp_path: Path) -> None:
    _near_miss(tmp_path)
    r = cflc("check", "--warnings-as-errors", "--error-format", "json", "prod.cfl", cwd=tmp_path)
    assert r.returncode == 1
    d = json.loads(r.stderr)
    assert (d["code"], d["severity"]) == ("W0801", "error")


def test_warnings_as_errors_from_cfl_toml(tmp_path: Path) -> None:
    _near_miss(tmp_path)
    (tmp_path / "cfl.toml").write_text(
        '[project]\ntargets = ["prod.cfl"]\n\n[check]\nwarnings_as_errors = true\n'
    )
    for args in (["check"], ["build"], ["check", "prod.cfl"], ["build", "prod.cfl"]):
        r = cflc(*args, cwd=tmp_path)
        assert_no_traceback(r)
        assert r.returncode == 1, args
        assert r.stdout == ""
        assert "error[W0801]" in r.stderr
    assert not (tmp_path / "out").exists()
    (tmp_path / "cfl.toml").write_text(
        '[project]\ntargets = ["prod.cfl"]\n\n[check]\nwarnings_as_errors = false\n'
    )
    r = cflc("check", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "warning[W0801]" in r.stderr


@pytest.mark.parametrize(
    ("toml", "message", "where", "fix"),
    [
        (
            "[check]\nwarnings_as_error = true\n",
            "error[E0703]: unknown key `warnings_as_error` in table `[check]`",
            "--> cfl.toml:2:1",
            "help: did you mean `warnings_as_errors`?",
        ),
        (
            '[check]\nwarnings_as_errors = "yes"\n',
            "error[E0703]: `check.warnings_as_errors` must be true or false",
            "--> cfl.toml:2:1",
            "help: write `warnings_as_errors = true` or `false`",
        ),
        (
            "[limits]\nmax_stepz = 10\n",
            "error[E0703]: unknown limit `max_stepz`",
            "--> cfl.toml:2:1",
            "help: did you mean `max_steps`?",
        ),
        (
            '[limits]\nmax_depth = 10\n  max_steps = "many"\n',
            "error[E0703]: `limits.max_steps` must be a positive integer",
            "--> cfl.toml:3:3",
            "help: write a whole number, 1 or more",
        ),
    ],
)
def test_bad_check_and_limits_keys_are_located(
    tmp_path: Path, toml: str, message: str, where: str, fix: str
) -> None:
    _near_miss(tmp_path)
    (tmp_path / "cfl.toml").write_text('[project]\ntargets = ["prod.cfl"]\n' + toml)
    for args in (["check"], ["build", "."]):
        r = cflc(*args, cwd=tmp_path)
        assert_no_traceback(r)
        assert r.returncode == 2
        assert r.stdout == ""
        assert message in r.stderr
        assert where.replace("2:", "4:").replace("3:", "5:") in r.stderr
        assert fix in r.stderr


def test_a_bad_cfl_toml_fails_a_file_check_too(tmp_path: Path) -> None:
    # The strict check runs wherever cfl.toml is read: `check FILE` reads `[check]`.
    _near_miss(tmp_path)
    (tmp_path / "cfl.toml").write_text("[projet]\n")
    r = cflc("check", "prod.cfl", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 2
    assert "error[E0703]: unknown table `projet` in cfl.toml" in r.stderr
    assert "help: did you mean `project`?" in r.stderr


# ---- default targets: the entry files of the root ------------------------------------------


def _git_init(root: Path) -> None:
    subprocess.run(["git", "init", "-q", str(root)], check=True)


def test_entry_files_are_those_nobody_imports_or_extends(tmp_path: Path) -> None:
    _project(tmp_path, toml=None)
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.cfl").write_text("x = 1\n")
    got = [Path(p).relative_to(tmp_path).as_posix() for p in entry_files(str(tmp_path))]
    assert got == ["env/dev.cfl", "env/prod.cfl", "env/stage.cfl"]
    inside = entry_files(str(tmp_path), str(tmp_path / "schemas"))
    assert inside == []


@pytest.mark.parametrize("with_git", [False, True])
def test_without_cfl_toml_build_builds_the_entry_files(tmp_path: Path, with_git: bool) -> None:
    _project(tmp_path, toml=None)
    if with_git:
        _git_init(tmp_path)
    r = cflc("build", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert r.stderr == (
        "targets (no cfl.toml: the entry files, which no other file imports or extends): "
        f"{TARGETS}\n"
        "wrote out/dev.json\nwrote out/prod.json\nwrote out/stage.json\n"
    )
    data = json.loads((tmp_path / "out" / "prod.json").read_text())
    assert data == {"region": "eu", "port": 80, "web": {"name": "web"}, "stage": "prod"}
    r = cflc("check", "-q", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_a_subdirectory_of_a_git_root_builds_its_own_entries(tmp_path: Path) -> None:
    _project(tmp_path, toml=None)
    _git_init(tmp_path)
    (tmp_path / "tools.cfl").write_text("x = 1\n")  # an entry of the root, not of env/
    r = cflc("check", "-v", "env", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert f"): {TARGETS}\n" in r.stderr
    assert "ok: 3 file(s) checked" in r.stderr
    r = cflc("check", "-v", cwd=tmp_path)
    assert "env/stage.cfl, tools.cfl\n" in r.stderr
    assert "ok: 4 file(s) checked" in r.stderr


def test_cfl_toml_without_targets_uses_the_entry_files(tmp_path: Path) -> None:
    _project(tmp_path, toml="[limits]\nmax_steps = 100000\n")
    r = cflc("check", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert r.stderr == (
        "targets (cfl.toml has no `targets`: the entry files, which no other file imports "
        f"or extends): {TARGETS}\n"
    )


def test_the_targets_line_is_left_out_of_json_diagnostics(tmp_path: Path) -> None:
    _project(tmp_path, toml=None)
    r = cflc("check", "--error-format", "json", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_no_entry_file_is_a_clear_error(tmp_path: Path) -> None:
    r = cflc("check", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr == (
        "error[E0704]: no targets in `.`: no cfl.toml, and no .cfl file there is an entry "
        "file (one that no other file imports or extends)\n"
        "help: name the files to build, or set `targets` in cfl.toml\n\n"
    )
    (tmp_path / "a.cfl").write_text('import "b.cfl"\n')
    (tmp_path / "b.cfl").write_text('import "a"\n')  # a cycle: neither is an entry
    r = cflc("build", cwd=tmp_path)
    assert r.returncode == 2
    assert "error[E0704]: no targets in `.`" in r.stderr


def _commit(root: Path) -> None:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    for args in (["add", "-A"], ["commit", "-q", "-m", "x"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, env={**os.environ, **env})


def test_impact_defaults_to_the_entry_files(tmp_path: Path) -> None:
    _project(tmp_path, toml=None)
    _git_init(tmp_path)
    _commit(tmp_path)
    (tmp_path / "base.cfl").write_text((tmp_path / "base.cfl").read_text().replace('"eu"', '"us"'))
    r = cflc("impact", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "".join(f'env/{e}.cfl: 1 change\n  ~ region: "eu" -> "us"\n' for e in ENVS)
    assert f"): {TARGETS}\n" in r.stderr


def test_watch_defaults_to_the_entry_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # No cfl.toml and no git: the directory watched is the root of its entry files.
    from cfglang.console import Ctx
    from cfglang.tools.watch import Watcher

    _project(tmp_path, toml=None)
    monkeypatch.chdir(tmp_path)
    lines: list[str] = []
    watcher = Watcher(".", Ctx("human", "never", False, 0), echo=lines.append)
    reports = watcher.build_all()
    assert [r.target for r in reports] == [f"env/{e}.cfl" for e in ENVS]
    assert [r.kind for r in reports] == ["built"] * 3, [r.diagnostics for r in reports]
    assert json.loads((tmp_path / "out" / "stage.json").read_text())["stage"] == "stage"
    assert capsys.readouterr().err.count(f"): {TARGETS}\n") == 1
    (tmp_path / "base.cfl").write_text((tmp_path / "base.cfl").read_text().replace("80", "81"))
    reports = watcher.changed([str(tmp_path / "base.cfl")])
    assert [r.kind for r in reports] == ["rebuilt"] * 3
    assert "targets (" not in capsys.readouterr().err  # said once, not every round


# ---- a failed import: one message ----------------------------------------------------------


def test_a_misspelt_import_in_a_shared_file_is_one_diagnostic(tmp_path: Path) -> None:
    # The misspelt path also misspells the alias (`svcs`): the names written with the
    # intended one (`svc.Svc`) are placeholders, and nothing is evaluated without it.
    _project(tmp_path)
    base = (tmp_path / "base.cfl").read_text().replace('"schemas/svc.cfl"', '"schemas/svcs.cfl"')
    (tmp_path / "base.cfl").write_text(base + "url = web.name + port\n")
    for command in ("check", "build"):
        r = cflc(command, cwd=tmp_path)
        assert_no_traceback(r)
        assert r.returncode == 1
        assert r.stdout == ""
        assert r.stderr == (
            "error[E0101]: `schemas/svcs.cfl` does not exist\n"
            " --> base.cfl:1:8\n"
            "  |\n"
            '1 | import "schemas/svcs.cfl"\n'
            "  |        ^^^^^^^^^^^^^^^^^^ imported here\n"
            "  |\n"
            f"note: breaks 3 targets: {TARGETS}\n"
            "help: did you mean `schemas/svc.cfl`?\n\n"
        )
    r = cflc("check", "--error-format", "json", cwd=tmp_path)
    (d,) = [json.loads(line) for line in r.stderr.splitlines()]
    assert d["code"] == "E0101"
    assert d["help"] == "did you mean `schemas/svc.cfl`?"
    assert d["targets"] == ["env/dev.cfl", "env/prod.cfl", "env/stage.cfl"]


def test_impact_reports_a_shared_mistake_once(tmp_path: Path) -> None:
    _project(tmp_path)
    _git_init(tmp_path)
    _commit(tmp_path)
    _break_base(tmp_path)
    r = cflc("impact", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 1
    assert r.stderr.count("error[E0302]") == 1
    assert f"note: breaks 3 targets: {TARGETS}\n" in r.stderr


def test_cflc_secrets_reads_cfl_toml_strictly(tmp_path: Path) -> None:
    (tmp_path / "cfl.toml").write_text("[secrets]\nrecipient = []\n")
    key = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"
    r = cflc("secrets", "init", "--recipient", key, cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 1
    assert r.stderr == (
        "error[E0703]: unknown key `recipient` in table `[secrets]` (cfl.toml:2:1)\n"
        "help: did you mean `recipients`?\n\n"
    )
    assert (tmp_path / "cfl.toml").read_text() == "[secrets]\nrecipient = []\n"


def test_watch_reports_a_shared_mistake_once_per_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cfglang.console import Ctx
    from cfglang.tools.watch import Watcher

    _project(tmp_path)
    _break_base(tmp_path)
    monkeypatch.chdir(tmp_path)
    lines: list[str] = []
    watcher = Watcher(".", Ctx("human", "never", False, 0), echo=lines.append)
    reports = watcher.build_all()
    assert [r.kind for r in reports] == ["failed"] * 3
    assert [len(r.diagnostics) for r in reports] == [1, 1, 1]
    err = capsys.readouterr().err
    assert err.count("error[E0302]") == 1
    assert f"note: breaks 3 targets: {TARGETS}\n" in err


def test_a_shared_warning_is_reported_once_and_fails_with_the_flag(tmp_path: Path) -> None:
    _project(tmp_path)
    (tmp_path / "common.cfl").write_text("replicas = 1\n")
    base = (tmp_path / "base.cfl").read_text()
    (tmp_path / "base.cfl").write_text('extends "common.cfl"\n' + base + "replcias = 3\n")
    r = cflc("check", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("warning[W0801]") == 1
    assert f"note: in 3 targets: {TARGETS}\n" in r.stderr
    r = cflc("check", "--warnings-as-errors", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.count("error[W0801]") == 1
    assert f"note: breaks 3 targets: {TARGETS}\n" in r.stderr
