"""`cflc init`: the new project builds and checks, and nothing is ever overwritten by
accident."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CFLC = [sys.executable, "-c", "from cfglang.cli import run; run()"]
FILES = ["cfl.toml", "schemas/service.cfl", "base.cfl", "env/dev.cfl", "env/prod.cfl", "README.md"]


def cflc(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.pop("DB_PASSWORD", None)
    full_env.update(env or {})
    return subprocess.run(
        [*CFLC, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120, env=full_env
    )


def test_init_then_check_and_build(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    r = cflc("init", proj)
    assert r.returncode == 0, r.stderr
    assert "next: cd" in r.stderr
    for f in FILES:
        assert (proj / f).is_file(), f
    # The secret input has no plain-text default: prod needs DB_PASSWORD (or --var), even
    # with --strict nothing plain is built in, and without it prod does not build.
    assert "change-me" not in "".join((proj / f).read_text() for f in FILES)
    r = cflc("build", "--strict", cwd=proj)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "input `database_password` is not set" in r.stderr and "DB_PASSWORD" in r.stderr
    assert not (proj / "out").exists()
    r = cflc("build", "env/dev.cfl", "--strict", cwd=proj)
    assert r.returncode == 0, r.stderr
    pw = {"DB_PASSWORD": "hunter2"}
    r = cflc("check", "--strict", cwd=proj, env=pw)
    assert r.returncode == 0 and "W1104" not in r.stderr, r.stderr
    r = cflc("build", cwd=proj, env=pw)
    assert r.returncode == 0, r.stderr
    dev = json.loads((proj / "out" / "dev.json").read_text())
    prod = json.loads((proj / "out" / "prod.json").read_text())
    assert dev["app"]["replicas"] == 1 and dev["app"]["url"] == "http://app.dev.internal:8080"
    assert prod["app"]["replicas"] == 3 and prod["app"]["timeout"] == "1m"
    r = cflc("build", "env/prod.cfl", cwd=proj, env=pw)
    assert r.returncode == 0 and json.loads(r.stdout)["app"]["db_password"] == "hunter2"
    assert "proj" in (proj / "README.md").read_text().splitlines()[0]


def test_init_current_directory(tmp_path: Path) -> None:
    r = cflc("init", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "cfl.toml").is_file()
    assert cflc("check", cwd=tmp_path, env={"DB_PASSWORD": "x"}).returncode == 0


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("mine\n")
    r = cflc("init", tmp_path)
    assert r.returncode == 1
    assert "README.md" in r.stderr and "--force" in r.stderr and "Traceback" not in r.stderr
    assert (tmp_path / "README.md").read_text() == "mine\n"
    assert not (tmp_path / "cfl.toml").exists()  # nothing was written
    r = cflc("init", tmp_path, "--error-format", "json")
    assert r.returncode == 1
    diag = json.loads(r.stderr.splitlines()[0])
    assert diag["code"] == "E0602" and "README.md" in diag["message"]
    r = cflc("init", tmp_path, "--force", "-q")
    assert r.returncode == 0 and r.stderr == ""
    assert (tmp_path / "README.md").read_text() != "mine\n"
    assert cflc("build", cwd=tmp_path, env={"DB_PASSWORD": "x"}).returncode == 0


def test_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    r = cflc("init", tmp_path / "file")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = cflc("init", "--help")
    assert r.returncode == 0 and "--force" in r.stdout
    r = cflc("init", "--bogus")
    assert r.returncode == 2
