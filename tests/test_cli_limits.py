"""`cflc build` of a project reads evaluation limits from cfl.toml's `[limits]` table."""

from __future__ import annotations

from pathlib import Path

from tests.test_cli import assert_no_traceback, cflc


def _project(root: Path, limits: str) -> None:
    (root / "cfl.toml").write_text(f'[project]\ntargets = ["main.cfl"]\n\n[limits]\n{limits}')
    (root / "main.cfl").write_text(
        'let s = "x" * 1000\nnames = [s for i in range(100)]\n'
        'output "names.json" = { list = names }\n'
    )


def test_project_limits_lower_the_output_size(tmp_path: Path) -> None:
    _project(tmp_path, "max_output_bytes = 50000\n")
    r = cflc("build", ".", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "error[E0502]: value is too large to emit" in r.stderr
    assert "more than 50000 bytes when written out" in r.stderr
    assert "main.cfl:2:9" in r.stderr


def test_project_with_generous_limits_builds(tmp_path: Path) -> None:
    _project(tmp_path, "max_steps = 5000000\n")
    r = cflc("build", ".", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "names.json").is_file()


def test_unknown_limit_in_cfl_toml_is_a_usage_error(tmp_path: Path) -> None:
    _project(tmp_path, "max_stepz = 10\n")
    r = cflc("build", ".", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 2
    assert r.stdout == ""
    assert "E0703" in r.stderr and "unknown limit `max_stepz`" in r.stderr


def test_limit_must_be_a_positive_integer(tmp_path: Path) -> None:
    _project(tmp_path, 'max_steps = "many"\n')
    r = cflc("check", ".", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 2
    assert "`limits.max_steps` must be a positive integer" in r.stderr
