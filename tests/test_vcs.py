"""Version-control integration: FILE@REV builds, `cflc history`, `cflc impact`, explain's
commit, and the diagnostics for bad input. Every test runs against real git repositories
built in temporary directories with fixed authors and dates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cfglang.cli import main

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

BASE = 'replicas = 1\nname = "svc"\ntimeout = 30s\n'
PROD = 'extends "../base.cfl"\nport = 80\n'
DEV = 'extends "../base.cfl"\nport = 8080\n'


def git(
    repo: Path, *args: str, date: str = "2024-01-01T12:00:00+00:00", author: str = "Alice"
) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_DATE=date,
        GIT_COMMITTER_DATE=date,
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
    )
    out = subprocess.run(
        [
            "git",
            "-c",
            f"user.name={author}",
            "-c",
            f"user.email={author.lower()}@example.com",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "advice.detachedHead=false",
            *args,
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def commit(repo: Path, files: dict[str, str], msg: str, day: int, author: str) -> str:
    for name, text in files.items():
        p = repo / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    git(repo, "add", "-A")
    date = f"2024-01-{day:02d}T12:00:00+00:00"
    git(repo, "commit", "-q", "-m", msg, date=date, author=author)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("vcs") / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    commit(
        repo,
        {
            "cfl.toml": '[project]\ntargets = ["env/*.cfl"]\n',
            "base.cfl": BASE,
            "env/prod.cfl": PROD,
            "env/dev.cfl": DEV,
        },
        "initial layout",
        1,
        "Alice",
    )
    commit(repo, {"env/dev.cfl": DEV.replace("8080", "8081")}, "dev: move port", 2, "Bob")
    commit(
        repo,
        {"base.cfl": BASE.replace("replicas = 1", "replicas = 2")},
        "base: two replicas",
        3,
        "Alice",
    )
    git(repo, "tag", "v1")
    commit(
        repo,
        {"base.cfl": "# the base layer\n" + BASE.replace("replicas = 1", "replicas = 2")},
        "base: comment only",
        4,
        "Bob",
    )
    commit(repo, {"env/prod.cfl": PROD.replace("port = 80", "port = ")}, "prod: oops", 5, "Carol")
    commit(repo, {"env/prod.cfl": PROD.replace("80", "443")}, "prod: https", 6, "Carol")
    commit(repo, {"lib/common.cfl": 'owner = "team-a"\n'}, "lib: add common", 7, "Bob")
    commit(
        repo,
        {
            "env/prod.cfl": 'import "../lib/common.cfl"\n'
            + PROD.replace("80", "443")
            + "owner = common.owner\n"
        },
        "prod: owner from lib",
        8,
        "Alice",
    )
    commit(repo, {"lib/common.cfl": 'owner = "team-b"\n'}, "lib: hand over", 9, "Bob")
    return repo


@pytest.fixture
def repo(origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private copy of the repository (tests may edit its working tree), as cwd."""
    dest = tmp_path / "repo"
    shutil.copytree(origin, dest, symlinks=True)
    monkeypatch.chdir(dest)
    monkeypatch.setenv("NO_COLOR", "1")
    yield dest


def cflc(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def sha(repo: Path, rev: str) -> str:
    return git(repo, "rev-parse", rev)


# ---- FILE@REV -----------------------------------------------------------------------------


def test_build_at_tag_reads_the_whole_closure_from_git(repo: Path) -> None:
    (repo / "base.cfl").write_text(BASE.replace("replicas = 1", "replicas = 9"))
    r = cflc("build", "env/prod.cfl@v1")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout) == {"replicas": 2, "name": "svc", "timeout": "30s", "port": 80}
    r = cflc("build", "env/prod.cfl")  # the working tree is another matter
    assert json.loads(r.stdout)["replicas"] == 9


def test_check_and_eval_at_revisions(repo: Path) -> None:
    assert cflc("eval", "env/prod.cfl@HEAD~8", "replicas").stdout == "1\n"
    assert cflc("eval", "env/prod.cfl@HEAD", "owner").stdout == '"team-b"\n'
    assert cflc("eval", "env/prod.cfl@HEAD~1", "owner").stdout == '"team-a"\n'
    assert cflc("check", "env/prod.cfl@HEAD~3").exit_code == 0
    r = cflc("check", "env/prod.cfl@HEAD~4")  # "prod: oops" does not compile
    assert r.exit_code == 1
    assert "env/prod.cfl:2" in r.stderr
    full = sha(repo, "HEAD~6")
    assert cflc("eval", f"env/prod.cfl@{full}", "replicas").stdout == "2\n"
    assert cflc("eval", f"env/prod.cfl@{full[:8]}", "port").stdout == "80\n"


def test_diff_across_revisions(repo: Path) -> None:
    r = cflc("diff", "env/prod.cfl@v1", "env/prod.cfl")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == '~ port: 80 -> 443\n+ owner: "team-b"\n'
    r = cflc("diff", "env/prod.cfl@HEAD~8", "env/prod.cfl@v1", "--exit-code")
    assert (r.exit_code, r.stdout) == (1, "~ replicas: 1 -> 2\n")
    r = cflc("diff", "env/dev.cfl@HEAD~8", "env/prod.cfl@HEAD~8", "--json")
    assert json.loads(r.stdout) == [{"op": "change", "path": "port", "old": 8080, "new": 80}]


# ---- history ------------------------------------------------------------------------------


def test_history_of_the_whole_document(repo: Path) -> None:
    r = cflc("history", "env/prod.cfl")
    assert r.exit_code == 0, r.stderr
    s = {n: sha(repo, f"HEAD~{n}")[:10] for n in range(9)}
    assert r.stdout == (
        f"commit {s[0]}  2024-01-09T12:00:00+00:00  Bob <bob@example.com>\n"
        "    lib: hand over\n"
        '  ~ owner: "team-a" -> "team-b"\n\n'
        f"commit {s[1]}  2024-01-08T12:00:00+00:00  Alice <alice@example.com>\n"
        "    prod: owner from lib\n"
        '  + owner: "team-a"\n\n'
        f"commit {s[3]}  2024-01-06T12:00:00+00:00  Carol <carol@example.com>\n"
        "    prod: https\n"
        "  compiles again\n"
        "  ~ port: 80 -> 443\n\n"
        f"commit {s[4]}  2024-01-05T12:00:00+00:00  Carol <carol@example.com>\n"
        "    prod: oops\n"
        "  ! does not compile:\n"
        f"    error[E0001]: {_first_error(repo)} at env/prod.cfl:2:8\n\n"
        f"commit {s[6]}  2024-01-03T12:00:00+00:00  Alice <alice@example.com>\n"
        "    base: two replicas\n"
        "  ~ replicas: 1 -> 2\n\n"
        f"commit {s[8]}  2024-01-01T12:00:00+00:00  Alice <alice@example.com>\n"
        "    initial layout\n"
        "  created `env/prod.cfl`\n\n"
    )


def _first_error(repo: Path) -> str:
    r = cflc("check", "env/prod.cfl@HEAD~4", "--error-format", "json")
    return str(json.loads(r.stderr.splitlines()[0])["message"])


def test_history_skips_commits_outside_the_closure(repo: Path) -> None:
    r = cflc("history", "env/prod.cfl", "-v")
    # 9 commits walked; compiled: HEAD plus the parents of the 7 that touch the closure
    # ("dev: move port" and "lib: add common" do not), one of them served from the memo.
    assert "9 commit(s) walked" in r.stderr
    compiled = int(r.stderr.split("walked, ")[1].split()[0])
    assert compiled <= 8


def test_history_of_a_path_with_limits_and_json(repo: Path) -> None:
    r = cflc("history", "env/prod.cfl", "replicas")
    assert r.exit_code == 0
    # The breakage is shown even though `replicas` itself did not change there.
    assert [
        line
        for line in r.stdout.splitlines()
        if line.startswith("  ") and not line.startswith("    ")
    ] == [
        "  compiles again; `replicas` unchanged",
        "  ! does not compile:",
        "  ~ replicas: 1 -> 2",
        "  `env/prod.cfl` created",
        "  + replicas: 1",
    ]
    r = cflc("history", "env/prod.cfl", "port", "--max-count", "1", "--json")
    data = json.loads(r.stdout)
    assert data["path"] == "port" and data["branch"] == "main"
    assert data["head"] == sha(repo, "HEAD")
    [entry] = data["entries"]
    assert entry == {
        "commit": sha(repo, "HEAD~3"),
        "author": "Carol",
        "email": "carol@example.com",
        "date": "2024-01-06T12:00:00+00:00",
        "subject": "prod: https",
        "status": "fixed",
        "changes": [{"op": "change", "path": "port", "old": 80, "new": 443}],
        "errors": [],
    }
    r = cflc("history", "env/prod.cfl", "--since", "2024-01-07T00:00:00+00:00", "--json")
    assert [e["subject"] for e in json.loads(r.stdout)["entries"]] == [
        "lib: hand over",
        "prod: owner from lib",
    ]
    r = cflc("history", "env/dev.cfl", "port")
    assert "  ~ port: 8080 -> 8081" in r.stdout
    r = cflc("history", "env/prod.cfl", "name")
    assert [
        line
        for line in r.stdout.splitlines()
        if line.startswith("  ") and not line.startswith("    ")
    ] == [
        "  compiles again; `name` unchanged",
        "  ! does not compile:",
        "  `env/prod.cfl` created",
        '  + name: "svc"',
    ]


# ---- explain ------------------------------------------------------------------------------


def test_explain_names_the_commit_that_last_changed_the_value(repo: Path) -> None:
    r = cflc("explain", "env/prod.cfl", "replicas")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[-1] == (
        f"  last changed  commit {sha(repo, 'HEAD~6')[:10]}  2024-01-03T12:00:00+00:00  "
        'Alice <alice@example.com>  "base: two replicas"'
    )
    data = json.loads(cflc("explain", "env/prod.cfl", "owner", "--json").stdout)
    assert data["last_changed"]["subject"] == "lib: hand over"
    r = cflc("explain", "env/prod.cfl@v1", "port")
    assert r.stdout.startswith("port = 80")
    assert '"initial layout"' in r.stdout
    (repo / "env" / "prod.cfl").write_text(PROD.replace("80", "444"))
    r = cflc("explain", "env/prod.cfl", "port")
    assert r.stdout.splitlines()[-1] == "  last changed  in the working tree (not committed)"
    assert "last changed" not in cflc("explain", "env/prod.cfl", "port", "--no-git").stdout


# ---- impact -------------------------------------------------------------------------------


def test_impact_of_a_base_change(repo: Path) -> None:
    r = cflc("impact", "--exit-code")
    assert (r.exit_code, r.stdout) == (0, "env/dev.cfl: unchanged\nenv/prod.cfl: unchanged\n")
    (repo / "base.cfl").write_text("# x\n" + BASE.replace("replicas = 1", "replicas = 3"))
    r = cflc("impact", "--exit-code")
    assert r.exit_code == 1
    assert r.stdout == (
        "env/dev.cfl: 1 change\n  ~ replicas: 2 -> 3\n"
        "env/prod.cfl: 1 change\n  ~ replicas: 2 -> 3\n"
    )
    assert cflc("impact").exit_code == 0


def test_impact_of_an_env_change_since_a_tag(repo: Path) -> None:
    (repo / "env" / "dev.cfl").write_text(DEV.replace("8080", "9000"))
    r = cflc("impact", "--json")
    data = json.loads(r.stdout)
    assert data["changed"] is True and data["commit"] == sha(repo, "HEAD")
    assert data["targets"] == [
        {
            "target": "env/dev.cfl",
            "status": "changed",
            "errors": [],
            "changes": [{"op": "change", "path": "port", "old": 8081, "new": 9000}],
        },
        {"target": "env/prod.cfl", "status": "unchanged", "changes": [], "errors": []},
    ]
    r = cflc("impact", "--rev", "v1", "env/prod.cfl")
    assert r.stdout == 'env/prod.cfl: 2 changes\n  ~ port: 80 -> 443\n  + owner: "team-b"\n'
    (repo / "env" / "qa.cfl").write_text(PROD)
    r = cflc("impact")
    assert "env/qa.cfl: new target (not in HEAD)" in r.stdout
    (repo / "env" / "prod.cfl").write_text("port = \n")
    r = cflc("impact")
    assert r.exit_code == 1
    assert "env/prod.cfl: does not compile in the working tree" in r.stdout


# ---- bad input ----------------------------------------------------------------------------


def test_bad_revisions_and_files(repo: Path, tmp_path: Path) -> None:
    r = cflc("build", "env/prod.cfl@no-such-tag")
    assert r.exit_code == 2
    assert r.stderr.startswith("error[E1202]: unknown revision `no-such-tag`")
    r = cflc("build", "lib/common.cfl@HEAD~8")
    assert r.exit_code == 2
    assert "error[E1203]: `lib/common.cfl` does not exist at `HEAD~8`" in r.stderr
    r = cflc("diff", "env/prod.cfl@HEAD~99", "env/prod.cfl")
    assert r.exit_code == 2 and "E1202" in r.stderr
    r = cflc("history", "env/prod.cfl", "--rev", "nope")
    assert r.exit_code == 2 and "E1202" in r.stderr
    r = cflc("impact", "--rev", "nope")
    assert r.exit_code == 2 and "E1202" in r.stderr
    r = cflc("build", "env/prod.cfl@")
    assert r.exit_code == 2 and "names no revision" in r.stderr
    r = cflc("history", "env/prod.cfl", "a..b")
    assert r.exit_code == 2 and "not a data path" in r.stderr


def test_not_a_git_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.cfl").write_text("x = 1\n")
    (plain / "cfl.toml").write_text('[project]\ntargets = ["a.cfl"]\n')
    monkeypatch.chdir(plain)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for args in (("build", "a.cfl@HEAD"), ("history", "a.cfl"), ("impact",)):
        r = cflc(*args)
        assert r.exit_code == 2, args
        assert "error[E1201]" in r.stderr and "is not in a git repository" in r.stderr
        assert "Traceback" not in r.stderr + r.stdout
    r = cflc("explain", "a.cfl", "x")  # explain still works, without a commit line
    assert (r.exit_code, r.stdout.count("last changed")) == (0, 0)
    subprocess.run(["git", "init", "-q"], cwd=plain, check=True)
    r = cflc("build", "a.cfl@HEAD")
    assert r.exit_code == 2 and "the repository has no commits yet" in r.stderr


def test_shallow_clone(origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clone = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "3", f"file://{origin}", str(clone)],
        check=True,
        capture_output=True,
    )
    monkeypatch.chdir(clone)
    r = cflc("build", "env/prod.cfl@HEAD~5")
    assert r.exit_code == 2
    assert "E1202" in r.stderr and "shallow clone" in r.stderr
    assert "git fetch --unshallow" in r.stderr
    r = cflc("history", "env/prod.cfl")
    assert r.exit_code == 0
    assert "warning[W1204]: history stops at commit" in r.stderr
    assert r.stdout.count("commit ") == 2  # hand over, owner from lib; not "created"
    assert "created" not in r.stdout


def test_detached_head(repo: Path) -> None:
    git(repo, "checkout", "-q", "--detach", "v1")
    r = cflc("history", "env/prod.cfl", "--json")
    data = json.loads(r.stdout)
    assert data["branch"] is None and data["head"] == sha(repo, "v1")
    assert [e["subject"] for e in data["entries"]] == ["base: two replicas", "initial layout"]
    assert cflc("eval", "env/prod.cfl@HEAD", "port").stdout == "80\n"
    assert cflc("impact", "--rev", "main", "env/prod.cfl").stdout.startswith(
        "env/prod.cfl: 2 changes\n"
    )
