"""The parse and build caches: identical bytes, and never a stale result."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cfglang import cache
from cfglang.api import compile

CFLC = [sys.executable, "-c", "from cfglang.cli import run; run()"]


def cflc(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [*CFLC, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CFLC_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cfl.toml").write_text('[project]\ntargets = ["env/*.cfl"]\n')
    (tmp_path / "env").mkdir()
    (tmp_path / "base.cfl").write_text(
        'input region: string = "us"\nport = 80\nurl = "http://$<region>:$<port>"\n'
    )
    (tmp_path / "env" / "prod.cfl").write_text('extends "../base.cfl"\nport = 443\n')
    return tmp_path


def test_cached_and_uncached_builds_give_identical_bytes(project: Path) -> None:
    cold = cflc("build", "env/prod.cfl", "--no-cache", cwd=project)
    first = cflc("build", "env/prod.cfl", cwd=project)
    warm = cflc("build", "env/prod.cfl", "--profile", cwd=project)
    assert cold.returncode == first.returncode == warm.returncode == 0
    assert cold.stdout == first.stdout == warm.stdout
    assert '"url": "http://us:443"' in warm.stdout
    assert "served from the build cache" in warm.stderr


def test_a_changed_file_is_never_served_from_cache(project: Path) -> None:
    path = str(project / "env" / "prod.cfl")
    assert compile(path, use_cache=True).data == {"port": 443, "url": "http://us:443"}
    (project / "base.cfl").write_text(
        'input region: string = "us"\nport = 80\nurl = "https://$<region>:$<port>"\n'
    )
    again = compile(path, use_cache=True)
    assert not again.from_cache
    assert again.data == {"port": 443, "url": "https://us:443"}
    hit = compile(path, use_cache=True)
    assert hit.from_cache and hit.data == again.data


def test_one_line_change_reparses_only_that_file(project: Path) -> None:
    path = str(project / "env" / "prod.cfl")
    compile(path, use_cache=True)
    (project / "env" / "prod.cfl").write_text('extends "../base.cfl"\nport = 8443\n')
    result = compile(path, use_cache=True, profile=True)
    assert result.data == {"port": 8443, "url": "http://us:8443"}
    # base.cfl came from the parse cache: it is in the graph but was not parsed again.
    assert result.profile is not None
    assert set(result.profile.files) == {"base.cfl", "env/prod.cfl"}
    assert result.profile.parsed == ["env/prod.cfl"]
    key = cache.digest(
        "parse", "base.cfl", str(project / "base.cfl"), (project / "base.cfl").read_text()
    )
    assert cache.get("parse", key) is not None


def test_environment_and_vars_files_are_part_of_the_key(project: Path) -> None:
    (project / "env" / "dev.cfl").write_text(
        'extends "../base.cfl"\ninput token: string from env "TOKEN"\nt = token\n'
    )
    path = str(project / "env" / "dev.cfl")
    assert compile(path, use_cache=True, env={"TOKEN": "a"}).data["t"] == "a"
    assert compile(path, use_cache=True, env={"TOKEN": "b"}).data["t"] == "b"
    vars_file = project / "vars.json"
    vars_file.write_text('{"region": "eu"}')
    one = compile(path, use_cache=True, env={"TOKEN": "b"}, var_files=[str(vars_file)])
    vars_file.write_text('{"region": "ap"}')
    two = compile(path, use_cache=True, env={"TOKEN": "b"}, var_files=[str(vars_file)])
    assert one.data["url"] == "http://eu:80" and two.data["url"] == "http://ap:80"


def test_corrupt_entries_are_misses(project: Path) -> None:
    path = str(project / "env" / "prod.cfl")
    compile(path, use_cache=True)
    cache_root = Path(os.environ["CFLC_CACHE_DIR"])
    for entry in cache_root.rglob("*"):
        if entry.is_file():
            entry.write_bytes(b"not a pickle")
    result = compile(path, use_cache=True)
    assert result.ok and not result.from_cache
    assert result.data == {"port": 443, "url": "http://us:443"}


def test_results_with_secrets_are_not_cached(project: Path) -> None:
    (project / "env" / "s.cfl").write_text('input key: secret from env "KEY"\nk = key\n')
    path = str(project / "env" / "s.cfl")
    compile(path, use_cache=True, env={"KEY": "hunter2"})
    cache_root = Path(os.environ["CFLC_CACHE_DIR"])
    for entry in cache_root.rglob("*"):
        if entry.is_file():
            assert b"hunter2" not in entry.read_bytes()
    assert not compile(path, use_cache=True, env={"KEY": "hunter2"}).from_cache


def test_profile_reports_phases_files_and_fields(project: Path) -> None:
    r = cflc("build", "env/prod.cfl", "--profile", "--no-cache", cwd=project)
    assert r.returncode == 0
    assert "parse and resolve" in r.stderr and "evaluate and check" in r.stderr
    assert "base.cfl" in r.stderr and "slowest fields" in r.stderr
    assert r.stdout.startswith("{")
