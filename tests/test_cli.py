"""End-to-end tests of the `cflc` console script, run as a real subprocess.

Every test checks the exit code, stdout and stderr separately: data goes to stdout,
diagnostics to stderr, and the exit code is 0 (ok), 1 (configuration errors), 2 (usage),
3 (internal error).
"""

from __future__ import annotations

import configparser
import io
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import click
import jproperties
import pytest
import yaml
from dotenv import dotenv_values

from cfglang import __version__

_SCRIPT = shutil.which("cflc")
CFLC: list[str] = (
    [_SCRIPT] if _SCRIPT else [sys.executable, "-c", "from cfglang.cli import run; run()"]
)
ANSI = "\x1b["


def cflc(
    *args: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    # APP's secret input: from the environment, since a plain default is W1104.
    full_env["CFLC_APP_TOKEN"] = "s3cr3t"
    full_env.update(env or {})
    return subprocess.run(
        [*CFLC, *map(str, args)],
        cwd=cwd,
        env=full_env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_no_traceback(r: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in r.stderr, r.stderr
    assert "Traceback" not in r.stdout


# --- fixtures ------------------------------------------------------------------------------

APP = """\
input region: string = "us-east-1"
input count: int = 2
input token: secret from env "CFLC_APP_TOKEN"
let domain = "$<region>.example.com"

type Port = int where 1 <= self && self <= 65535

schema Service {
  name: string
  port: Port = 8080
  replicas: int = 1 where self >= 1
  timeout: duration = 30s
}

app: Service {
  name = "billing"
  replicas = count
  timeout = 90m
}
url = "http://$<app.name>.$<domain>:$<app.port>"
tok = token
mem = 1024KiB
db {
  host = "db.$<domain>"
  port = 5432
}

output "app.json" = app
output "app.env" = app
"""

APP_DATA: dict[str, Any] = {
    "app": {"name": "billing", "port": 8080, "replicas": 2, "timeout": "1h30m"},
    "url": "http://billing.us-east-1.example.com:8080",
    "tok": "s3cr3t",
    "mem": "1MiB",
    "db": {"host": "db.us-east-1.example.com", "port": 5432},
}

BAD = """\
type Port = int where 1 <= self && self <= 65535
schema S { port: Port }
a: S { port = 70000 }
"""

WARN = """\
base = { timeout = 1 }
child extends base { timeuot = 2 }
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    p = tmp_path / "app.cfl"
    p.write_text(APP)
    return p


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    p = tmp_path / "bad.cfl"
    p.write_text(BAD)
    return p


def flat_strings(data: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """Leaves as strings, by path (how ini/env/properties carry every value)."""
    out: dict[tuple[str, ...], str] = {}
    if isinstance(data, dict):
        for k, v in data.items():
            out.update(flat_strings(v, (*prefix, k)))
    else:
        out[prefix] = str(data).lower() if isinstance(data, bool) else str(data)
    return out


# --- build ---------------------------------------------------------------------------------


def test_build_json_to_stdout(app: Path) -> None:
    r = cflc("build", app)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert json.loads(r.stdout) == APP_DATA
    # key order is the order of definition
    assert list(json.loads(r.stdout)) == list(APP_DATA)


def test_build_yaml(app: Path) -> None:
    r = cflc("build", app, "-f", "yaml")
    assert (r.returncode, r.stderr) == (0, "")
    assert yaml.safe_load(r.stdout) == APP_DATA


def test_build_toml(app: Path) -> None:
    r = cflc("build", app, "--format", "toml")
    assert (r.returncode, r.stderr) == (0, "")
    assert tomllib.loads(r.stdout) == APP_DATA


def test_build_ini(tmp_path: Path) -> None:
    src = tmp_path / "a.cfl"
    src.write_text('app { name = "x"; port = 80 }\ndb { host = "h"; replica { host = "r" } }\n')
    r = cflc("build", src, "-f", "ini")
    assert (r.returncode, r.stderr) == (0, "")
    cp = configparser.ConfigParser(interpolation=None)
    cp.read_string(r.stdout)
    assert dict(cp["app"]) == {"name": "x", "port": "80"}
    assert dict(cp["db"]) == {"host": "h"}
    assert dict(cp["db.replica"]) == {"host": "r"}


def test_build_ini_top_level_scalar_is_an_error(tmp_path: Path) -> None:
    src = tmp_path / "a.cfl"
    src.write_text('db { host = "h" }\nx = 1\n')
    r = cflc("build", src, "-f", "ini")
    assert r.returncode == 1
    assert r.stdout == ""
    assert "E0601" in r.stderr and "`x`" in r.stderr
    # The diagnostic points at the line that set the value, not only at its data path.
    assert "a.cfl:2:1" in r.stderr
    j = cflc("build", src, "-f", "ini", "--error-format", "json")
    diag = json.loads(j.stderr.splitlines()[0])
    assert (diag["code"], diag["line"], diag["column"], diag["path"]) == ("E0601", 2, 1, "x")
    assert_no_traceback(r)


def test_build_env(app: Path) -> None:
    r = cflc("build", app, "-f", "env")
    assert (r.returncode, r.stderr) == (0, "")
    got = dotenv_values(stream=io.StringIO(r.stdout))
    want = {"_".join(p).upper(): v for p, v in flat_strings(APP_DATA).items()}
    assert got == want


def test_build_env_prefix(app: Path) -> None:
    r = cflc("build", app, "-f", "env", "--env-prefix", "APP_")
    assert (r.returncode, r.stderr) == (0, "")
    got = dotenv_values(stream=io.StringIO(r.stdout))
    assert got["APP_DB_HOST"] == "db.us-east-1.example.com"
    assert all(k.startswith("APP_") for k in got)


def test_build_properties(app: Path) -> None:
    r = cflc("build", app, "-f", "properties")
    assert (r.returncode, r.stderr) == (0, "")
    props = jproperties.Properties()
    props.load(r.stdout, "utf-8")
    got = {k: v.data for k, v in props.items()}
    want = {".".join(p): v for p, v in flat_strings(APP_DATA).items()}
    assert got == want


def test_build_output_file(app: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "config.json"
    r = cflc("build", app, "-o", out)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert json.loads(out.read_text()) == APP_DATA


def test_build_output_file_format_from_extension(app: Path, tmp_path: Path) -> None:
    out = tmp_path / "config.yaml"
    r = cflc("build", app, "-o", out)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert yaml.safe_load(out.read_text()) == APP_DATA
    assert not out.read_text().lstrip().startswith("{")


def test_build_output_dir_writes_named_outputs(app: Path, tmp_path: Path) -> None:
    out = tmp_path / "dist"
    r = cflc("build", app, "-o", f"{out}/")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert sorted(p.name for p in out.iterdir()) == ["app.env", "app.json"]
    assert json.loads((out / "app.json").read_text()) == APP_DATA["app"]
    env = dotenv_values(out / "app.env")
    assert env == {"NAME": "billing", "PORT": "8080", "REPLICAS": "2", "TIMEOUT": "1h30m"}


def test_build_output_dir_without_named_outputs(tmp_path: Path) -> None:
    src = tmp_path / "plain.cfl"
    src.write_text("x = 1\n")
    out = tmp_path / "dist"
    out.mkdir()
    r = cflc("build", src, "-o", out)  # an existing directory, no trailing slash
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert json.loads((out / "plain.json").read_text()) == {"x": 1}


def test_build_output_file_with_several_modules_is_usage_error(app: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.cfl"
    other.write_text("x = 1\n")
    r = cflc("build", app, other, "-o", tmp_path / "one.json")
    assert r.returncode == 2
    assert r.stdout == ""
    assert "-o" in r.stderr
    assert not (tmp_path / "one.json").exists()


def test_failed_build_leaves_earlier_output_untouched(app: Path, tmp_path: Path) -> None:
    out = tmp_path / "config.json"
    assert cflc("build", app, "-o", out).returncode == 0
    before = out.read_bytes()
    mtime = out.stat().st_mtime_ns
    app.write_text(APP.replace('name = "billing"', "name = 42"))
    r = cflc("build", app, "-o", out)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "error[" in r.stderr
    assert out.read_bytes() == before
    assert out.stat().st_mtime_ns == mtime
    # no temporary files are left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.cfl", "config.json"]


def test_failed_build_leaves_named_outputs_untouched(app: Path, tmp_path: Path) -> None:
    out = tmp_path / "dist"
    assert cflc("build", app, "-o", f"{out}/").returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    app.write_text(APP.replace("port = 5432", "port = "))  # syntax error
    r = cflc("build", app, "-o", f"{out}/")
    assert r.returncode == 1
    assert r.stdout == ""
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_unwritable_format_leaves_output_untouched(tmp_path: Path) -> None:
    src = tmp_path / "a.cfl"
    src.write_text("x = 1\n")
    out = tmp_path / "a.ini"
    out.write_text("[keep]\nme = 1\n")
    r = cflc("build", src, "-o", out)  # a top-level scalar cannot be written as ini
    assert r.returncode == 1
    assert "E0601" in r.stderr
    assert out.read_text() == "[keep]\nme = 1\n"


# --- check ---------------------------------------------------------------------------------


def test_check_ok(app: Path) -> None:
    r = cflc("check", app)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_check_errors(bad: Path) -> None:
    r = cflc("check", bad)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "error[E0301]: 70000 is not a valid Port" in r.stderr
    assert "bad.cfl:3:15" in r.stderr
    assert_no_traceback(r)


def test_check_writes_nothing(app: Path, tmp_path: Path) -> None:
    before = sorted(p.name for p in tmp_path.iterdir())
    r = cflc("check", app, cwd=tmp_path)
    assert r.returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_build_errors_go_to_stderr_only(bad: Path) -> None:
    r = cflc("build", bad)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "E0301" in r.stderr


# --- eval ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("app.port", "8080"),
        ("app.replicas + 1", "3"),
        ("app.name", '"billing"'),
        ("app.timeout", '"1h30m"'),
        ("url", '"http://billing.us-east-1.example.com:8080"'),
        ("domain", '"us-east-1.example.com"'),
    ],
)
def test_eval_scalar(app: Path, expr: str, want: str) -> None:
    r = cflc("eval", app, expr)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.strip() == want


def test_eval_object(app: Path) -> None:
    r = cflc("eval", app, "app")
    assert (r.returncode, r.stderr) == (0, "")
    assert json.loads(r.stdout) == APP_DATA["app"]


def test_eval_secret_is_redacted(app: Path) -> None:
    r = cflc("eval", app, "token")
    assert (r.returncode, r.stderr) == (0, "")
    assert json.loads(r.stdout) == "<secret>"
    assert "s3cr3t" not in r.stdout
    r = cflc("eval", app, "{ t = token; n = 1 }")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"t": "<secret>", "n": 1}
    assert "s3cr3t" not in r.stdout + r.stderr


def test_eval_unknown_name(app: Path) -> None:
    r = cflc("eval", app, "nope")
    assert r.returncode == 1
    assert r.stdout == ""
    assert "nope" in r.stderr
    assert_no_traceback(r)


def test_eval_syntax_error_in_expression(app: Path) -> None:
    r = cflc("eval", app, "app.port +")
    assert r.returncode == 1
    assert r.stdout == ""
    assert "error[" in r.stderr
    assert_no_traceback(r)


# --- inputs --------------------------------------------------------------------------------


def test_var_sets_input(app: Path) -> None:
    r = cflc("build", app, "--var", "region=eu-west-1", "--var", "count=5")
    assert (r.returncode, r.stderr) == (0, "")
    data = json.loads(r.stdout)
    assert data["db"]["host"] == "db.eu-west-1.example.com"
    assert data["app"]["replicas"] == 5


def test_var_later_wins(app: Path) -> None:
    r = cflc("eval", app, "region", "--var", "region=a", "--var", "region=b")
    assert (r.returncode, r.stderr) == (0, "")
    assert json.loads(r.stdout) == "b"


def test_var_value_may_contain_equals(app: Path) -> None:
    r = cflc("eval", app, "region", "--var", "region=a=b")
    assert (r.returncode, r.stderr) == (0, "")
    assert json.loads(r.stdout) == "a=b"


def test_var_wrong_type(app: Path) -> None:
    r = cflc("build", app, "--var", "count=abc")
    assert r.returncode == 1
    assert r.stdout == ""
    assert 'input count: expected int, got "abc"' in r.stderr


def test_var_unknown_input(app: Path) -> None:
    r = cflc("build", app, "--var", "regoin=x")
    assert r.returncode == 1
    assert r.stdout == ""
    assert "regoin" in r.stderr and "region" in r.stderr


@pytest.mark.parametrize("kind", ["json", "yaml", "cfl"])
def test_vars_file(app: Path, tmp_path: Path, kind: str) -> None:
    f = tmp_path / f"vars.{kind}"
    f.write_text(
        {
            "json": '{"region": "ap-south-1", "count": 4}',
            "yaml": "region: ap-south-1\ncount: 4\n",
            "cfl": 'region = "ap-south-1"\ncount = 4\n',
        }[kind]
    )
    r = cflc("build", app, "--vars", f)
    assert (r.returncode, r.stderr) == (0, "")
    data = json.loads(r.stdout)
    assert data["db"]["host"] == "db.ap-south-1.example.com"
    assert data["app"]["replicas"] == 4


def test_var_beats_vars_file_and_later_file_wins(app: Path, tmp_path: Path) -> None:
    a = tmp_path / "a.json"
    a.write_text('{"region": "from-a", "count": 7}')
    b = tmp_path / "b.yaml"
    b.write_text("region: from-b\n")
    r = cflc("build", app, "--var", "region=from-flag", "--vars", a, "--vars", b)
    assert (r.returncode, r.stderr) == (0, "")
    data = json.loads(r.stdout)
    assert data["db"]["host"] == "db.from-flag.example.com"
    assert data["app"]["replicas"] == 7
    r = cflc("eval", app, "region", "--vars", a, "--vars", b)
    assert (r.returncode, r.stderr) == (0, "")
    assert json.loads(r.stdout) == "from-b"


def test_vars_file_malformed(app: Path, tmp_path: Path) -> None:
    f = tmp_path / "v.json"
    f.write_text('{"region": ')
    r = cflc("build", app, "--vars", f)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "v.json" in r.stderr
    assert_no_traceback(r)


def test_input_without_default_names_the_flag(tmp_path: Path) -> None:
    src = tmp_path / "a.cfl"
    src.write_text("input region: string\nx = region\n")
    r = cflc("build", src)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "--var region=" in r.stderr
    r = cflc("build", src, "--var", "region=eu")
    assert (r.returncode, r.stderr) == (0, "")
    assert json.loads(r.stdout) == {"x": "eu"}


def test_input_from_env(tmp_path: Path) -> None:
    src = tmp_path / "a.cfl"
    src.write_text('input token: secret from env "CFLC_TEST_TOKEN"\nt = token\n')
    r = cflc("build", src, env={"CFLC_TEST_TOKEN": "abc"})
    assert (r.returncode, r.stderr) == (0, "")
    assert json.loads(r.stdout) == {"t": "abc"}  # build outputs carry the plain secret
    r = cflc("eval", src, "t", env={"CFLC_TEST_TOKEN": "abc"})
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, '"<secret>"', "")


# --- diagnostics formats ---------------------------------------------------------------------

JSON_KEYS = {
    "code",
    "severity",
    "message",
    "file",
    "line",
    "column",
    "end_line",
    "end_column",
    "notes",
}


def test_error_format_json(bad: Path, tmp_path: Path) -> None:
    r = cflc("check", bad, "--error-format", "json", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines
    objs = [json.loads(line) for line in lines]  # one JSON object per line
    for o in objs:
        assert isinstance(o, dict)
        assert JSON_KEYS <= set(o), o
        assert isinstance(o["notes"], list)
    [d] = [o for o in objs if o["code"] == "E0301"]
    assert d["severity"] == "error"
    assert d["message"] == "70000 is not a valid Port"
    assert d["file"] == "bad.cfl"
    assert (d["line"], d["column"], d["end_line"], d["end_column"]) == (3, 15, 3, 20)
    assert d["notes"] and d["notes"][0]["line"] == 1


def test_error_format_json_for_usage_errors(app: Path) -> None:
    r = cflc("build", app, "--var", "novalue", "--error-format", "json")
    assert r.returncode == 2
    assert r.stdout == ""
    [line] = r.stderr.splitlines()
    o = json.loads(line)
    assert JSON_KEYS <= set(o)
    assert o["severity"] == "error"
    assert "NAME=VALUE" in o["message"]


def test_error_format_json_warning(tmp_path: Path) -> None:
    src = tmp_path / "w.cfl"
    src.write_text(WARN)
    r = cflc("build", src, "--error-format", "json")
    assert r.returncode == 0
    [o] = [json.loads(line) for line in r.stderr.splitlines()]
    assert o["severity"] == "warning"
    assert o["code"] == "W0801"
    assert (o["line"], o["column"]) == (2, 22)


def test_quiet_hides_warnings(tmp_path: Path) -> None:
    src = tmp_path / "w.cfl"
    src.write_text(WARN)
    loud = cflc("build", src)
    assert loud.returncode == 0
    assert "warning[W0801]" in loud.stderr
    quiet = cflc("build", src, "-q")
    assert (quiet.returncode, quiet.stderr) == (0, "")
    assert quiet.stdout == loud.stdout
    assert json.loads(quiet.stdout) == {
        "base": {"timeout": 1},
        "child": {"timeout": 1, "timeuot": 2},
    }


def test_quiet_still_shows_errors(bad: Path) -> None:
    r = cflc("check", bad, "-q")
    assert r.returncode == 1
    assert "E0301" in r.stderr


# --- colour --------------------------------------------------------------------------------


def test_color_always_emits_ansi_into_a_pipe(bad: Path) -> None:
    r = cflc("check", bad, "--color", "always")
    assert r.returncode == 1
    assert ANSI in r.stderr
    assert "E0301" in r.stderr


def test_color_never(bad: Path) -> None:
    r = cflc("check", bad, "--color", "never")
    assert r.returncode == 1
    assert ANSI not in r.stderr


def test_color_auto_in_a_pipe_is_plain(bad: Path) -> None:
    r = cflc("check", bad)
    assert r.returncode == 1
    assert ANSI not in r.stderr


def test_json_errors_are_never_coloured(bad: Path) -> None:
    r = cflc("check", bad, "--color", "always", "--error-format", "json")
    assert ANSI not in r.stderr
    for line in r.stderr.splitlines():
        json.loads(line)


def _stderr_on_a_tty(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    full_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    full_env.update(env)
    try:
        p = subprocess.Popen([*CFLC, *args], stdout=subprocess.PIPE, stderr=slave, env=full_env)
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO once the child closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert p.stdout is not None
        p.stdout.read()
        p.stdout.close()
        rc = p.wait(timeout=120)
    finally:
        os.close(master)
    return rc, b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")
def test_color_auto_on_a_terminal_and_no_color(bad: Path) -> None:
    rc, err = _stderr_on_a_tty(["check", str(bad)], {})
    assert rc == 1
    assert ANSI in err
    rc, err = _stderr_on_a_tty(["check", str(bad)], {"NO_COLOR": "1"})
    assert rc == 1
    assert "E0301" in err
    assert ANSI not in err
    # an explicit flag beats the environment (https://no-color.org)
    rc, err = _stderr_on_a_tty(["check", str(bad), "--color", "never"], {})
    assert ANSI not in err


# --- usage errors: exit 2 ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["build", "--no-such-flag", "{app}"],
        ["build", "-f", "xml", "{app}"],
        ["build", "--format", "JSON5", "{app}"],
        ["build", "--error-format", "xml", "{app}"],
        ["build", "--color", "sometimes", "{app}"],
        ["build", "--var", "region", "{app}"],
        ["build", "--var", "=x", "{app}"],
        ["eval", "{app}", "region", "--var", "region"],
        ["check", "--var", "novalue", "{app}"],
        ["eval", "{app}"],
        ["no-such-command"],
    ],
)
def test_bad_usage_exits_2(app: Path, args: list[str]) -> None:
    r = cflc(*[a.format(app=app) for a in args])
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert r.stderr.strip()
    assert_no_traceback(r)


@pytest.mark.parametrize("cmd", [["build"], ["check"], ["eval", "@", "x"]])
def test_missing_file_exits_2(tmp_path: Path, cmd: list[str]) -> None:
    missing = tmp_path / "nope.cfl"
    args = [str(missing) if a == "@" else a for a in cmd]
    if "@" not in cmd:
        args.append(str(missing))
    r = cflc(*args)
    assert r.returncode == 2
    assert r.stdout == ""
    assert "nope.cfl" in r.stderr and "does not exist" in r.stderr


@pytest.mark.parametrize("cmd", ["build", "check", "eval"])
def test_directory_given_as_file_exits_2(tmp_path: Path, cmd: str) -> None:
    d = tmp_path / "somedir.cfl"
    d.mkdir()
    args = [cmd, str(d)] + (["x"] if cmd == "eval" else [])
    r = cflc(*args)
    assert r.returncode == 2
    assert r.stdout == ""
    assert "somedir.cfl" in r.stderr
    assert_no_traceback(r)


def test_missing_vars_file_exits_2(app: Path, tmp_path: Path) -> None:
    r = cflc("build", app, "--vars", tmp_path / "nope.json")
    assert r.returncode == 2
    assert r.stdout == ""
    assert "nope.json" in r.stderr


def test_vars_directory_exits_2(app: Path, tmp_path: Path) -> None:
    r = cflc("eval", app, "region", "--vars", tmp_path)
    assert r.returncode == 2
    assert r.stdout == ""


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.mark.skipif(_is_root(), reason="root can read a chmod 000 file")
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_unreadable_file_exits_2(app: Path) -> None:
    app.chmod(0)
    try:
        for args in (["build", str(app)], ["check", str(app)], ["eval", str(app), "region"]):
            r = cflc(*args)
            assert r.returncode == 2, args
            assert r.stdout == ""
            assert "app.cfl" in r.stderr
            assert_no_traceback(r)
    finally:
        app.chmod(0o644)


@pytest.mark.skipif(_is_root(), reason="root can read a chmod 000 file")
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_unreadable_vars_file_exits_2(app: Path, tmp_path: Path) -> None:
    f = tmp_path / "v.json"
    f.write_text("{}")
    f.chmod(0)
    try:
        r = cflc("build", app, "--vars", f)
        assert r.returncode == 2
        assert r.stdout == ""
    finally:
        f.chmod(0o644)


def test_invalid_utf8_is_a_diagnostic(tmp_path: Path) -> None:
    src = tmp_path / "bin.cfl"
    src.write_bytes(b'a = "\xff\xfe"\n')
    r = cflc("build", src)
    assert r.returncode in (1, 2)
    assert r.stdout == ""
    assert "UTF-8" in r.stderr
    assert_no_traceback(r)


# --- help and version ----------------------------------------------------------------------


def _command_paths() -> list[list[str]]:
    from cfglang.cli import main

    out: list[list[str]] = []

    def walk(cmd: click.Command, prefix: list[str]) -> None:
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None, f"`{name}` is listed but cannot be loaded"
                out.append([*prefix, name])
                walk(sub, [*prefix, name])

    walk(main, [])
    return out


def test_help_lists_commands_from_their_docstrings_exactly() -> None:
    # `cflc --help` reads each lazy command's docstring from its source instead of
    # importing it; that text must be exactly the help click would show.
    from cfglang.commands import _modules, docstring, load

    for name in _modules():
        command = load(name)
        assert command is not None, name
        assert docstring(name) == command.help, name
        assert not command.hidden and not command.deprecated, name


def test_build_loads_no_other_command_module() -> None:
    # Sub-commands load lazily: `cflc build` must not import (and pay for) the others.
    code = (
        "import sys; from cfglang.cli import main\n"
        "try:\n    main(['build', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('cfglang.commands.')"
        " and not m.endswith('_options')))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_every_command_is_covered() -> None:
    names = {p[0] for p in _command_paths()}
    assert {"build", "check", "eval"} <= names


@pytest.mark.parametrize("path", [[], *_command_paths()], ids=lambda p: " ".join(p) or "cflc")
def test_help(path: list[str]) -> None:
    for flag in ("--help", "-h"):
        r = cflc(*path, flag)
        assert r.returncode == 0, r.stderr
        assert r.stderr == ""
        assert r.stdout.startswith("Usage: cflc")
        assert "Traceback" not in r.stdout


def test_top_level_help_lists_commands_and_exit_codes() -> None:
    r = cflc("--help")
    assert r.returncode == 0
    for name in ("build", "check", "eval"):
        assert name in r.stdout
    assert "Exit codes" in r.stdout


def test_version() -> None:
    r = cflc("--version")
    assert (r.returncode, r.stderr) == (0, "")
    assert __version__ in r.stdout
    assert r.stdout.startswith("cflc")


def test_help_does_not_import_the_compiler() -> None:
    probe = (
        "import sys\n"
        "from cfglang.cli import main\n"
        "for argv in (['--help'], ['build', '--help'], ['check', '--help'], ['--version']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('cfglang.eval.evaluate', 'cfglang.api', 'cfglang.syntax.parser',"
        " 'lark') if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy) + '\\n')\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "HEAVY=\n" in r.stderr, r.stderr


def test_help_importtime_has_no_lark() -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "import sys; sys.argv=['cflc','--help']; from cfglang.cli import run; run()",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0
    imported = {
        line.split("|")[-1].strip()
        for line in r.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "cfglang.cli" in imported
    assert "lark" not in imported
    assert "cfglang.eval.evaluate" not in imported


# --- projects ------------------------------------------------------------------------------


def make_project(root: Path, *, output_dir: str | None = None) -> Path:
    (root / "env").mkdir(parents=True)
    toml = '[project]\ntargets = ["env/*.cfl"]\n'
    if output_dir:
        toml += f'output_dir = "{output_dir}"\n'
    (root / "cfl.toml").write_text(toml)
    (root / "base.cfl").write_text('input env: string = "dev"\nreplicas = 1\nname = "svc-$<env>"\n')
    (root / "env" / "dev.cfl").write_text('extends "../base.cfl"\n')
    (root / "env" / "prod.cfl").write_text(
        'extends "../base.cfl"\ninput env = "prod"\nreplicas = 3\n'
    )
    return root


def test_project_build_without_arguments(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj")
    r = cflc("build", cwd=root)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    assert sorted(p.name for p in (root / "out").iterdir()) == ["dev.json", "prod.json"]
    assert json.loads((root / "out" / "dev.json").read_text()) == {"replicas": 1, "name": "svc-dev"}
    assert json.loads((root / "out" / "prod.json").read_text()) == {
        "replicas": 3,
        "name": "svc-prod",
    }
    assert "out/dev.json" in r.stderr.replace(os.sep, "/")
    q = cflc("build", "-q", cwd=root)
    assert (q.returncode, q.stdout, q.stderr) == (0, "", "")


def test_project_build_by_directory_from_elsewhere(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", output_dir="dist")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = cflc("build", root, "-q", cwd=elsewhere)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    # output_dir is relative to the project root, not the current directory
    assert sorted(p.name for p in (root / "dist").iterdir()) == ["dev.json", "prod.json"]
    assert list(elsewhere.iterdir()) == []


def test_project_build_format(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj")
    r = cflc("build", "-f", "yaml", "-q", cwd=root)
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load((root / "out" / "prod.yaml").read_text()) == {
        "replicas": 3,
        "name": "svc-prod",
    }


def test_project_check_and_failure_writes_nothing(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj")
    assert cflc("check", cwd=root).returncode == 0
    assert not (root / "out").exists()
    (root / "env" / "prod.cfl").write_text('extends "../base.cfl"\nreplicas = nope\n')
    r = cflc("build", cwd=root)
    assert r.returncode == 1
    assert "prod.cfl" in r.stderr
    assert not (root / "out").exists()  # dev is fine, but a failing project writes nothing


def test_project_without_cfl_toml_is_usage_error(tmp_path: Path) -> None:
    r = cflc("build", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stdout == ""
    assert "cfl.toml" in r.stderr


def test_project_target_matching_nothing(tmp_path: Path) -> None:
    (tmp_path / "cfl.toml").write_text('[project]\ntargets = ["env/*.cfl"]\n')
    r = cflc("build", cwd=tmp_path)
    assert r.returncode == 2
    assert "env/*.cfl" in r.stderr


def test_malformed_cfl_toml(tmp_path: Path) -> None:
    (tmp_path / "cfl.toml").write_text("[project\n")
    r = cflc("build", cwd=tmp_path)
    assert r.returncode == 2
    assert "cfl.toml" in r.stderr
    assert_no_traceback(r)


# --- the near-miss warning (W0801) fires across inheritance only, for one-edit typos ---------


@pytest.mark.parametrize(
    "src",
    [
        'db.host = "h"\ndb.port = 1\n',
        'db { host = "h" }\ndb { port = 1 }\n',
        'a = { host = "h" }\nb extends a { port = 1 }\n',
    ],
)
def test_no_spurious_near_miss_warning(tmp_path: Path, src: str) -> None:
    f = tmp_path / "a.cfl"
    f.write_text(src)
    r = cflc("build", f)
    assert r.returncode == 0
    assert r.stderr == ""


def test_near_miss_warning_across_modules(tmp_path: Path) -> None:
    (tmp_path / "base.cfl").write_text("svc { replicas = 1 }\n")
    f = tmp_path / "a.cfl"
    f.write_text('extends "base.cfl"\nsvc { replcas = 3 }\n')
    r = cflc("build", f)
    assert r.returncode == 0
    assert "warning[W0801]: `replcas` is a new key, close to the inherited `replicas`" in r.stderr
    assert "a.cfl:2:7" in r.stderr
