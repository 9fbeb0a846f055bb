"""`cflc publish` against a real server: one write of the changed files, the diff printed,
refusals reported with the server's diagnostics."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server_util import REPO, ServerThread, write_project

PROJECT = {
    "cfl.toml": '[project]\ntargets = ["env/*.cfl"]\n',
    "base.cfl": "port = 8080\n",
    "env/prod.cfl": 'extends "../base.cfl"\nreplicas = 3\n',
    "env/dev.cfl": 'extends "../base.cfl"\nreplicas = 1\n',
}


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[ServerThread, Path]]:
    project = write_project(tmp_path / "project", PROJECT)
    srv = ServerThread(project, tmp_path / "state")
    yield srv, project
    srv.stop()


def publish(project: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, "-c", "from cfglang.cli import run; run()", "publish", *args),
            *("--server", url, "--project", str(project)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_publish_sends_the_changed_files_as_one_revision(setup: tuple[ServerThread, Path]) -> None:
    srv, project = setup
    r = publish(project, srv.url)
    assert (r.returncode, r.stdout) == (
        0,
        "nothing to publish: the server's revision 1 has these sources\n",
    )
    (project / "base.cfl").write_text("port = 9090\n")
    (project / "env" / "qa.cfl").write_text('extends "../base.cfl"\nreplicas = 2\n')
    (project / "env" / "dev.cfl").unlink()
    r = publish(project, srv.url, "--dry-run")
    assert r.returncode == 0 and "update base.cfl" in r.stdout
    with httpx.Client(base_url=srv.url) as c:
        assert c.get("/healthz").json()["revision"] == 1
    r = publish(project, srv.url)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "update base.cfl",
        "delete env/dev.cfl",
        "add env/qa.cfl",
        "env/dev:",  # deleted: every key removed
        "  - port: 8080",
        "  - replicas: 1",
        "env/prod:",
        "  ~ port: 8080 -> 9090",
        "env/qa:",
        "  (new target)",
        "published revision 2",
    ]
    with httpx.Client(base_url=srv.url) as c:
        assert c.get("/v1/configs/env/prod").json() == {"port": 9090, "replicas": 3}
        assert [t["target"] for t in c.get("/v1/configs").json()] == ["env/prod", "env/qa"]


def test_publish_of_named_targets_sends_only_their_files(setup: tuple[ServerThread, Path]) -> None:
    srv, project = setup
    (project / "env" / "prod.cfl").write_text('extends "../base.cfl"\nreplicas = 5\n')
    (project / "env" / "dev.cfl").write_text('extends "../base.cfl"\nreplicas = 7\n')
    r = publish(project, srv.url, "env/prod")
    assert r.returncode == 0, r.stderr
    assert "update env/prod.cfl" in r.stdout and "dev" not in r.stdout
    with httpx.Client(base_url=srv.url) as c:
        assert c.get("/v1/configs/env/dev").json()["replicas"] == 1


def test_a_refused_publish_prints_the_diagnostics_and_exits_1(
    setup: tuple[ServerThread, Path],
) -> None:
    srv, project = setup
    (project / "base.cfl").write_text("port = \n")
    r = publish(project, srv.url)
    assert r.returncode == 1
    assert "does not compile" in r.stderr and "base.cfl:1:" in r.stderr and "E0001" in r.stderr
    r = publish(project, "http://127.0.0.1:9")
    assert r.returncode == 1 and "cannot reach" in r.stderr


def test_publish_can_start_a_rollout_with_the_revision(setup: tuple[ServerThread, Path]) -> None:
    srv, project = setup
    (project / "env" / "prod.cfl").write_text('extends "../base.cfl"\nreplicas = 5\n')
    r = publish(project, srv.url, "--rollout-selector", "zone=a")
    assert r.returncode == 0, r.stderr
    assert "rollout of env/prod: revision 2 to zone=a, the others stay at 1" in r.stdout
    with httpx.Client(base_url=srv.url) as c:
        held = {"X-Cfl-Client-Id": "b", "X-Cfl-Client-Labels": "zone=b"}
        assert c.get("/v1/configs/env/prod", headers=held).json()["replicas"] == 3
        chosen = {"X-Cfl-Client-Id": "a", "X-Cfl-Client-Labels": "zone=a"}
        assert c.get("/v1/configs/env/prod", headers=chosen).json()["replicas"] == 5


@pytest.mark.parametrize(
    "args",
    [
        ("--rollout-selector", "zone"),
        ("--rollout-percent", "150"),
        ("--rollout-percent", "5", "--rollout-selector", "zone=a"),
    ],
)
def test_publish_refuses_a_bad_rollout_before_sending(
    setup: tuple[ServerThread, Path], args: tuple[str, ...]
) -> None:
    srv, project = setup
    (project / "env" / "prod.cfl").write_text('extends "../base.cfl"\nreplicas = 5\n')
    r = publish(project, srv.url, *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "rollout" in r.stderr.lower()
    with httpx.Client(base_url=srv.url) as c:
        assert c.get("/healthz").json()["revision"] == 1
