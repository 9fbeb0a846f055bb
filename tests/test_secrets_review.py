"""Secrets for reviewers without the key (issue 14, section 3).

Every read-only command works without an identity and prints `<secret>`; a changed
ciphertext is a changed value (`~ db.password: <secret> -> <secret>`) in `diff`, `impact`,
`history` and `explain`'s last-changed commit; commands that decrypt take `--identity`.
The repository is made once per module with real git and real age keys.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyrage
import pytest
from click.testing import CliRunner, Result

import cfglang
from cfglang.cli import Ctx, main
from cfglang.tools.watch import Report, Watcher
from cfglang.values import Secret

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

OLD = "hunter2-old-password"
NEW = "hunter3-new-password"
APP = f"""\
schema Db {{
  host: string
  password: secret
}}
db: Db {{
  host = "db.internal"
  password = "{OLD}"
}}
url = "postgres://app:$<db.password>@$<db.host>"
output "app.json" = {{ host = db.host; password = db.password }}
"""
NO_ID = {"CFL_AGE_IDENTITY": None, "CFL_AGE_IDENTITY_FILE": None, "NO_COLOR": "1"}


def git(repo: Path, *args: str) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_DATE="2024-01-01T12:00:00+00:00",
        GIT_COMMITTER_DATE="2024-01-01T12:00:00+00:00",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
    )
    out = subprocess.run(
        ["git", "-c", "user.name=Alice", "-c", "user.email=alice@example.com", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def cflc(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(
        main, [str(a) for a in args], env={**NO_ID, **(env or {})}, catch_exceptions=False
    )


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Commit 1: `app.cfl` encrypted; commit 2: the password changed with `secrets edit`;
    commit 3: `secrets rotate` (every ciphertext new, no plain text changed)."""
    d = tmp_path_factory.mktemp("review") / "repo"
    d.mkdir()
    ident = pyrage.x25519.Identity.generate()
    key = d.parent / "key.txt"
    key.write_text(f"# test key\n{ident}\n")
    (d / "cfl.toml").write_text(
        f'[project]\ntargets = ["app.cfl"]\n\n[secrets]\nrecipients = ["{ident.to_public()}"]\n'
    )
    (d / "app.cfl").write_text(APP)
    git(d, "init", "-q", "-b", "main")
    cwd = os.getcwd()
    os.chdir(d)
    try:
        r = cflc("secrets", "encrypt", "app.cfl")
        assert r.exit_code == 0, r.output
        git(d, "add", "-A")
        git(d, "commit", "-q", "-m", "first")
        editor = {"EDITOR": f"sed -i s/{OLD}/{NEW}/"}
        r = cflc("secrets", "edit", "--identity", key, "app.cfl", env=editor)
        assert r.exit_code == 0, r.output
        git(d, "commit", "-q", "-am", "change the password")
        r = cflc("secrets", "rotate", "--identity", key, "app.cfl")
        assert r.exit_code == 0, r.output
        git(d, "commit", "-q", "-am", "rotate")
    finally:
        os.chdir(cwd)
    return {"dir": d, "key": key}


@pytest.fixture
def repo(
    origin: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Any]]:
    dest = tmp_path / "repo"
    shutil.copytree(origin["dir"], dest, symlinks=True)
    monkeypatch.chdir(dest)
    for k in ("CFL_AGE_IDENTITY", "CFL_AGE_IDENTITY_FILE"):
        monkeypatch.delenv(k, raising=False)
    yield {"dir": dest, "key": origin["key"]}


def _clean(r: Result) -> None:
    out = r.stdout + r.stderr
    assert "Traceback" not in out, out
    assert OLD not in out and NEW not in out, out


def test_every_read_only_command_works_without_an_identity(repo: dict[str, Any]) -> None:
    runs: list[tuple[str, ...]] = [
        ("diff", "app.cfl@HEAD~2", "app.cfl@HEAD~1"),
        ("diff", "--json", "app.cfl@HEAD~2", "app.cfl"),
        ("eval", "app.cfl", "db"),
        ("eval", "app.cfl", "db.password"),
        ("eval", "app.cfl", "url"),
        ("explain", "app.cfl", "db.password"),
        ("history", "app.cfl"),
        ("impact", "--rev", "HEAD~2"),
    ]
    for args in runs:
        r = cflc(*args)
        _clean(r)
        assert r.exit_code == 0, (args, r.output)
        assert "<secret>" in r.stdout, (args, r.stdout)
    r = cflc("check", "app.cfl")
    _clean(r)
    assert r.exit_code == 0, r.output
    r = cflc("doc", "-o", "docs-out", ".")
    _clean(r)
    assert r.exit_code == 0, r.output
    pages = "".join(p.read_text() for p in Path("docs-out").rglob("*") if p.is_file())
    assert "&lt;secret&gt;" in pages or "<secret>" in pages
    assert OLD not in pages and NEW not in pages


def test_a_changed_ciphertext_is_a_changed_value(repo: dict[str, Any]) -> None:
    change = "~ db.password: <secret> -> <secret>"
    r = cflc("diff", "app.cfl@HEAD~2", "app.cfl@HEAD~1")
    assert r.exit_code == 0 and change in r.stdout.splitlines(), r.output
    # A value computed from the secret changes with it.
    assert "~ url: <secret> -> <secret>" in r.stdout.splitlines()
    # ... but the unchanged host does not.
    assert "db.host" not in r.stdout
    r = cflc("impact", "--rev", "HEAD~2")
    assert r.exit_code == 0 and change in r.stdout and "unchanged" not in r.stdout, r.output
    r = cflc("history", "--json", "app.cfl", "db.password")
    entries = json.loads(r.stdout)["entries"]
    assert [e["subject"] for e in entries] == ["rotate", "change the password", "first"]
    assert entries[0]["changes"][0] == {
        "op": "change",
        "path": "db.password",
        "old": "<secret>",
        "new": "<secret>",
    }
    r = cflc("explain", "app.cfl", "db.password")
    assert '"rotate"' in r.stdout and "last changed" in r.stdout, r.stdout
    r = cflc("explain", "app.cfl@HEAD~1", "db.password")
    assert '"change the password"' in r.stdout, r.stdout
    # Same ciphertext, no change: the edit kept it, and a file compared with itself.
    assert cflc("diff", "--exit-code", "app.cfl@HEAD~1", "app.cfl@HEAD~1").exit_code == 0


def test_with_an_identity_secrets_compare_by_value(repo: dict[str, Any]) -> None:
    key = str(repo["key"])
    # `rotate` changed every ciphertext but no value: a change without the key, none with.
    assert cflc("diff", "--exit-code", "app.cfl@HEAD~1", "app.cfl").exit_code == 1
    r = cflc("diff", "--identity", key, "--exit-code", "app.cfl@HEAD~1", "app.cfl")
    assert r.exit_code == 0 and r.stdout == "", r.output
    r = cflc("diff", "app.cfl@HEAD~2", "app.cfl", env={"CFL_AGE_IDENTITY_FILE": key})
    assert "~ db.password: <secret> -> <secret>" in r.stdout
    _clean(r)
    r = cflc("eval", "--identity", key, "app.cfl", "len(db.password)")
    assert r.exit_code == 0 and r.stdout.strip() == str(len(NEW))
    r = cflc("eval", "--identity", key, "app.cfl", "db.password")
    assert r.stdout.strip() == '"<secret>"'
    _clean(r)


def test_diff_against_a_build_output_says_the_secrets_were_not_compared(
    repo: dict[str, Any],
) -> None:
    key = str(repo["key"])
    r = cflc("build", "--identity", key, "-o", "doc.json", "app.cfl")
    assert r.exit_code == 0, r.output
    r = cflc("diff", "--identity", key, "app.cfl", "doc.json")
    assert r.exit_code == 0 and r.stdout == "", r.output
    r = cflc("diff", "app.cfl", "doc.json")
    _clean(r)
    assert r.exit_code == 0
    assert "~ db.password: <secret> -> <secret>" in r.stdout
    assert "pass --identity FILE" in r.stderr


def test_watch_without_an_identity_reports_but_writes_no_secret(repo: dict[str, Any]) -> None:
    d: Path = repo["dir"]
    reports: list[Report] = []
    lines: list[str] = []
    w = Watcher(".", Ctx("human", "never", True, 0), echo=lines.append, on_report=reports.append)
    w.build_all()
    assert [r.kind for r in reports] == ["built"] and reports[0].withheld
    assert not (d / "out").exists()
    assert "no identity was given (--identity)" in lines[0]
    (d / "app.cfl").write_text(
        git(d, "show", "HEAD~2:app.cfl").replace('"db.internal"', '"db2"') + "\n"
    )
    w.changed([str(d / "app.cfl")])
    text = "\n".join(lines)
    assert "~ db.host: " in text and "~ db.password: <secret> -> <secret>" in text
    assert OLD not in text and NEW not in text
    # With the identity the outputs are written, holding the clear value.
    w2 = Watcher(".", Ctx("human", "never", True, 0), echo=lines.append, identity=[repo["key"]])
    w2.build_all()
    assert OLD in (d / "out" / "app.json").read_text()


def test_live_without_and_with_an_identity(repo: dict[str, Any]) -> None:
    d: Path = repo["dir"]
    with cfglang.live(d / "app.cfl", watch=False) as cfg:
        pw = cfg.current.config.db.password
        assert isinstance(pw, Secret) and str(pw) == "<secret>" and NEW not in pw.value
        assert len(pw.value) == len(NEW)
        seen: list[Any] = []
        cfg.subscribe("db.password", seen.append)
        (d / "app.cfl").write_text(git(d, "show", "HEAD~1:app.cfl") + "\n")
        assert cfg.reload() and len(seen) == 1  # the rotation is a change
    with cfglang.live(d / "app.cfl", watch=False, identity=repo["key"]) as cfg:
        assert cfg.current.config.db.password.value == NEW
    with cfglang.live(
        d / "app.cfl", watch=False, env={"CFL_AGE_IDENTITY_FILE": str(repo["key"])}
    ) as cfg:
        assert cfg.current.config.db.password.value == NEW


# ---- cflc secrets recipients -------------------------------------------------------------------


def _key(path: Path) -> str:
    ident = pyrage.x25519.Identity.generate()
    path.write_text(f"# test key\n{ident}\n")
    return str(ident.to_public())


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A project encrypted for its author only: `app.cfl`, and `env/prod.cfl`."""
    monkeypatch.chdir(tmp_path)
    for k in ("CFL_AGE_IDENTITY", "CFL_AGE_IDENTITY_FILE"):
        monkeypatch.delenv(k, raising=False)
    me, bob = _key(tmp_path / "me.txt"), _key(tmp_path / "bob.txt")
    (tmp_path / "cfl.toml").write_text(f'[secrets]\nrecipients = ["{me}"]\n')
    (tmp_path / "env").mkdir()
    for f in ("app.cfl", "env/prod.cfl"):
        (tmp_path / f).write_text(f'pw: secret = "{OLD}"\nhost = "h"\n')
    assert cflc("secrets", "encrypt", "app.cfl", "env/prod.cfl").exit_code == 0
    return {"dir": tmp_path, "me": me, "bob": bob}


def _opens(key: str, file: str) -> bool:
    r = cflc("eval", "--identity", key, file, "len(pw)")
    return r.exit_code == 0 and r.stdout.strip() == str(len(OLD))


def test_recipients_add_keeps_the_author_and_rewraps(team: dict[str, Any]) -> None:
    me, bob = team["me"], team["bob"]
    before = Path("app.cfl").read_text()
    r = cflc("secrets", "recipients", "add", "--identity", "me.txt", bob)
    assert r.exit_code == 0, r.output
    assert "re-wrapped its data key for 2 recipient(s)" in r.stderr
    after = Path("app.cfl").read_text()
    # Only header lines changed: the author's line and every value are byte for byte kept.
    assert [x for x in after.splitlines() if "recipient" not in x] == [
        x for x in before.splitlines() if "recipient" not in x
    ]
    assert next(x for x in before.splitlines() if me in x) in after.splitlines()
    assert _opens("bob.txt", "app.cfl") and _opens("me.txt", "app.cfl")
    assert _opens("bob.txt", "env/prod.cfl")
    # The next rotation is for both: the author is not locked out.
    assert cflc("secrets", "rotate", "--identity", "bob.txt", "app.cfl").exit_code == 0
    assert _opens("me.txt", "app.cfl") and _opens("bob.txt", "app.cfl")
    r = cflc("secrets", "recipients", "list", "--json")
    listed = json.loads(r.stdout)
    assert listed["project"] == [me, bob] and listed["out_of_date"] == []
    r = cflc("secrets", "recipients", "list")
    assert r.exit_code == 0 and r.stdout.splitlines() == [
        "project: 2 recipient(s)",
        f"  {me}",
        f"  {bob}",
    ]


def test_recipients_add_without_an_identity_says_what_is_pending(team: dict[str, Any]) -> None:
    r = cflc("secrets", "recipients", "add", team["bob"])
    assert r.exit_code == 0, r.output
    assert "run `cflc secrets recipients sync --identity FILE`" in r.stderr
    assert not _opens("bob.txt", "app.cfl")
    assert json.loads(cflc("secrets", "recipients", "list", "--json").stdout)["out_of_date"] == [
        "app.cfl",
        "env/prod.cfl",
    ]
    r = cflc("secrets", "recipients", "sync")
    assert r.exit_code == 1 and "no age identity was given" in r.stderr
    r = cflc("secrets", "recipients", "sync", env={"CFL_AGE_IDENTITY_FILE": "me.txt"})
    assert r.exit_code == 0, r.output
    assert _opens("bob.txt", "app.cfl") and _opens("bob.txt", "env/prod.cfl")


def test_recipients_remove_rotates_and_guards_the_last_and_own(team: dict[str, Any]) -> None:
    me, bob = team["me"], team["bob"]
    assert cflc("secrets", "recipients", "add", "--identity", "me.txt", bob).exit_code == 0
    # Removing from env only: env/prod.cfl gets an entry of its own and a new data key.
    r = cflc("secrets", "recipients", "remove", "--dir", "env", "--identity", "me.txt", bob)
    assert r.exit_code == 0, r.output
    assert "env/prod.cfl: rotated (new data key) for 1 recipient(s)" in r.stderr
    assert not _opens("bob.txt", "env/prod.cfl") and _opens("me.txt", "env/prod.cfl")
    assert _opens("bob.txt", "app.cfl")
    # The last recipient of an entry is never removed.
    r = cflc("secrets", "recipients", "remove", "--dir", "env", "--force", me)
    assert r.exit_code == 1 and "cannot remove the last recipient of env" in r.stderr
    assert "Traceback" not in r.output
    # Your own recipient only with --force.
    r = cflc("secrets", "recipients", "remove", "--identity", "me.txt", me)
    assert r.exit_code == 1 and "is your own recipient" in r.stderr and "--force" in r.stderr
    r = cflc("secrets", "recipients", "remove", "--identity", "me.txt", "--force", me)
    assert r.exit_code == 0, r.output
    assert not _opens("me.txt", "app.cfl") and _opens("bob.txt", "app.cfl")
    r = cflc("secrets", "recipients", "remove", bob[:-1] + "q")
    assert r.exit_code == 1 and "is not a recipient of the project" in r.stderr


def test_init_says_when_it_replaces_recipients(team: dict[str, Any]) -> None:
    r = cflc("secrets", "init", "--recipient", team["bob"])
    assert r.exit_code == 0
    assert f"replaced the recipients of the project; removed `{team['me']}`" in r.stderr
    assert "cflc secrets recipients add" in r.stderr
    r = cflc("secrets", "init", "--recipient", team["bob"])
    assert "replaced" not in r.stderr


def test_messages_suggest_only_flags_the_command_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("pt.cfl").write_text('pw: secret = "abcdefghijkl"\n')
    # W1104 suggests --allow-plaintext-secrets: `diff` (a reading, not a gate) does not
    # report it, and `watch`, which does, has the flag (and --strict).
    r = cflc("diff", "pt.cfl", "pt.cfl")
    assert r.exit_code == 0 and "W1104" not in r.stderr
    r = cflc("watch", "--help")
    assert "--allow-plaintext-secrets" in r.stdout and "--strict" in r.stdout
    assert "--identity" in r.stdout
    for cmd in ("build", "eval", "diff", "watch"):
        assert "--identity" in cflc(cmd, "--help").stdout, cmd
    # E1101 suggests --identity, which every command that can print it takes.
    ident = pyrage.x25519.Identity.generate()
    Path("other.txt").write_text(f"{pyrage.x25519.Identity.generate()}\n")
    Path("cfl.toml").write_text(f'[secrets]\nrecipients = ["{ident.to_public()}"]\n')
    assert cflc("secrets", "encrypt", "pt.cfl").exit_code == 0
    for args in (
        ("build", "pt.cfl"),
        ("eval", "--identity", "other.txt", "pt.cfl", "pw"),
        ("diff", "--identity", "other.txt", "pt.cfl", "pt.cfl"),
    ):
        r = cflc(*args)
        assert r.exit_code == 1 and "E1101" in r.stderr and "pass --identity FILE" in r.stderr


def test_cli_watch_without_an_identity(repo: dict[str, Any]) -> None:
    """The real `cflc watch`: builds, reports, writes no output holding a secret, and
    stops cleanly on Ctrl-C."""
    import signal
    import sys
    import threading

    from file_events import DEADLINE, wait_until

    d: Path = repo["dir"]
    script = shutil.which("cflc")
    cmd = [script] if script else [sys.executable, "-c", "from cfglang.cli import run; run()"]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CFL_AGE_IDENTITY", "CFL_AGE_IDENTITY_FILE", "NO_COLOR", "FORCE_COLOR")
    }
    p = subprocess.Popen(
        [*cmd, "watch", str(d)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: list[str] = []
    assert p.stdout is not None
    stdout = p.stdout

    def read() -> None:
        for line in stdout:
            lines.append(line.rstrip("\n"))

    pump = threading.Thread(target=read, daemon=True)
    pump.start()
    try:
        wait_until(lambda: any(x.startswith("watching") for x in lines), "watching")
        assert any("app.cfl: built, outputs not written" in x for x in lines), lines
        p.send_signal(signal.SIGINT)
        assert p.wait(DEADLINE) == 0
        pump.join(DEADLINE)
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
        stdout.close()
    text = "\n".join(lines)
    assert "Traceback" not in text and OLD not in text and NEW not in text
    assert not (d / "out").exists()


def test_python_load_without_an_identity_names_both_spellings(repo: dict[str, Any]) -> None:
    with pytest.raises(cfglang.ConfigError) as e:
        cfglang.load(repo["dir"] / "app.cfl")
    text = str(e.value)
    assert "E1101" in text and "identity=" in text and "--identity FILE" in text
    assert OLD not in text and NEW not in text
    assert cfglang.load(repo["dir"] / "app.cfl", identity=repo["key"]).db.password.value == NEW
