"""The project root without `cfl.toml` (the git work tree, else the entry's directory), and
unknown keys in `cfl.toml` (issue 14 §6)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cfglang.project import find_root
from tests.test_cli import assert_no_traceback, cflc


def _layout(root: Path) -> None:
    """The commonest layout: environments that extend a shared base one directory up."""
    (root / "env").mkdir()
    (root / "base.cfl").write_text('region = "eu"\nport = 80\n')
    (root / "env" / "prod.cfl").write_text('extends "../base.cfl"\nport = 443\n')


def _git_init(root: Path) -> None:
    subprocess.run(["git", "init", "-q", str(root)], check=True)


def test_without_cfl_toml_the_git_work_tree_is_the_root(tmp_path: Path) -> None:
    _layout(tmp_path)
    _git_init(tmp_path)
    r = cflc("build", "env/prod.cfl", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert json.loads(r.stdout) == {"region": "eu", "port": 443}


def test_the_git_root_holds_from_a_subdirectory_too(tmp_path: Path) -> None:
    _layout(tmp_path)
    _git_init(tmp_path)
    r = cflc("build", "prod.cfl", cwd=tmp_path / "env")
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"region": "eu", "port": 443}


def test_a_git_file_marks_a_work_tree(tmp_path: Path) -> None:
    # A linked worktree or a submodule has a `.git` file, not a directory.
    _layout(tmp_path)
    (tmp_path / ".git").write_text("gitdir: /elsewhere/.git/worktrees/x\n")
    assert find_root(str(tmp_path / "env" / "prod.cfl")) == str(tmp_path)
    r = cflc("build", "env/prod.cfl", cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_cfl_toml_wins_over_the_git_root(tmp_path: Path) -> None:
    _layout(tmp_path)
    _git_init(tmp_path)
    (tmp_path / "env" / "cfl.toml").write_text("")
    assert find_root(str(tmp_path / "env" / "prod.cfl")) == str(tmp_path / "env")
    r = cflc("build", "env/prod.cfl", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "error[E0103]: `../base.cfl` is outside the project root" in r.stderr


def test_without_git_a_file_inside_its_directory_builds(tmp_path: Path) -> None:
    (tmp_path / "lib.cfl").write_text("x = 1\n")
    (tmp_path / "main.cfl").write_text('import "lib.cfl"\ny = lib.x\n')
    r = cflc("build", "main.cfl", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert json.loads(r.stdout) == {"y": 1}


def test_without_git_the_entry_directory_is_the_sandbox(tmp_path: Path) -> None:
    _layout(tmp_path)
    r = cflc("build", "env/prod.cfl", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "error[E0103]: `../base.cfl` is outside the project root" in r.stderr
    assert "--> prod.cfl:1:9" in r.stderr
    assert "help: pass `--allow-path DIR` to allow another directory" in r.stderr


def test_the_git_root_keeps_the_sandbox(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git_init(repo)
    (tmp_path / "outside.cfl").write_text("x = 1\n")
    (repo / "main.cfl").write_text('import "../outside.cfl"\ny = outside.x\n')
    r = cflc("build", "main.cfl", cwd=repo)
    assert_no_traceback(r)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "error[E0103]: `../outside.cfl` is outside the project root" in r.stderr
    r = cflc("build", "--allow-path", str(tmp_path), "main.cfl", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"y": 1}


@pytest.mark.parametrize(
    ("toml", "message", "where", "fix"),
    [
        (
            '[project]\ntarget = ["env/*.cfl"]\n',
            "error[E0703]: unknown key `target` in table `[project]`",
            "--> cfl.toml:2:1",
            "help: did you mean `targets`?",
        ),
        (
            '[project]\ntargets = ["env/*.cfl"]\n  "output_dirs" = "o"\n',
            "error[E0703]: unknown key `output_dirs` in table `[project]`",
            "--> cfl.toml:3:4",
            "help: did you mean `output_dir`?",
        ),
        (
            '[project]\ntargets = ["env/*.cfl"]\n\n[secret]\nrecipients = []\n',
            "error[E0703]: unknown table `secret` in cfl.toml",
            "--> cfl.toml:4:2",
            "help: did you mean `secrets`?",
        ),
        (
            '[project]\ntargets = ["env/*.cfl"]\n\n[secrets]\nrecipient = []\n',
            "error[E0703]: unknown key `recipient` in table `[secrets]`",
            "--> cfl.toml:5:1",
            "help: did you mean `recipients`?",
        ),
        (
            '[project]\ntargets = ["env/*.cfl"]\n\n[secrets.dir]\n"env" = []\n',
            "error[E0703]: unknown key `dir` in table `[secrets]`",
            "--> cfl.toml:4:10",
            "help: did you mean `dirs`?",
        ),
        (
            '[project]\ntargets = ["env/*.cfl"]\nzzz = 1\n',
            "error[E0703]: unknown key `zzz` in table `[project]`",
            "--> cfl.toml:3:1",
            "help: the known keys are `targets`, `output_dir`, `allow_paths`",
        ),
    ],
)
def test_unknown_key_in_cfl_toml_is_an_error_with_did_you_mean(
    tmp_path: Path, toml: str, message: str, where: str, fix: str
) -> None:
    _layout(tmp_path)
    (tmp_path / "cfl.toml").write_text(toml)
    for command in ("build", "check"):
        r = cflc(command, ".", cwd=tmp_path)
        assert_no_traceback(r)
        assert r.returncode == 2
        assert r.stdout == ""
        assert message in r.stderr
        assert where in r.stderr
        assert fix in r.stderr
    assert not (tmp_path / "out").exists()


def _commit(root: Path, message: str) -> None:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    for args in (["add", "-A"], ["commit", "-q", "-m", message]):
        subprocess.run(["git", "-C", str(root), *args], check=True, env={**os.environ, **env})


def test_history_and_impact_use_the_git_root_at_a_commit(tmp_path: Path) -> None:
    # The root of a commit's tree follows the same rule as the working tree's.
    _layout(tmp_path)
    _git_init(tmp_path)
    _commit(tmp_path, "base")
    (tmp_path / "base.cfl").write_text('region = "us"\nport = 80\n')
    r = cflc("impact", "env/prod.cfl", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert r.stdout == 'env/prod.cfl: 1 change\n  ~ region: "eu" -> "us"\n'
    _commit(tmp_path, "move to us")
    r = cflc("history", "env/prod.cfl", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert '    move to us\n  ~ region: "eu" -> "us"\n' in r.stdout
    assert "    base\n  created `env/prod.cfl`\n" in r.stdout
    assert "compile" not in r.stdout
