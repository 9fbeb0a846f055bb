"""Input coercion errors name the fix (issue 14, section 7): `--var`, `--vars` and the
environment show the value and the type's rule (the refinement or the allowed values, the
spellings of a bool, how a duration is written), and never echo a secret input's value.

Each test runs `cflc build` and checks the exit code, stdout and stderr.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

_SCRIPT = shutil.which("cflc")
CFLC: list[str] = (
    [_SCRIPT] if _SCRIPT else [sys.executable, "-c", "from cfglang.cli import run; run()"]
)

SOURCE = """\
type Replicas = int where 1 <= self && self <= 10
type Token = secret where len(self) >= 32
input replicas: Replicas = 2
input level: "debug" | "info" | "warn" = "info"
input debug: bool = false
input timeout: duration = 30s
input memory: size = 1GiB
input stage: "dev" | "prod" = "dev" from env "STAGE"
input token: Token = "0123456789abcdef0123456789abcdef" from env "API_TOKEN"
app = { replicas = replicas; level = level; debug = debug; timeout = timeout }
app.memory = memory
app.stage = stage
app.token = token
"""


def cflc(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    full_env.update({"CFLC_NO_CACHE": "1", **(env or {})})
    return subprocess.run(
        [*CFLC, *map(str, args)], env=full_env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def app(tmp_path: Path) -> Path:
    p = tmp_path / "app.cfl"
    p.write_text(SOURCE)
    return p


def failed(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 1, r.stderr
    assert r.stdout == ""
    assert "Traceback" not in r.stderr
    return r.stderr


@pytest.mark.parametrize(
    ("var", "message", "help"),
    [
        (
            "replicas=50",
            'input replicas: expected Replicas, got "50"',
            "help: set by --var; Replicas is `int where 1 <= self && self <= 10`",
        ),
        (
            "level=inof",
            'input level: expected "debug" | "info" | "warn", got "inof"',
            'help: set by --var; did you mean "info"? the allowed values are "debug", "info", '
            '"warn"',
        ),
        (
            "debug=yes",
            'input debug: expected bool, got "yes"',
            "help: set by --var; a bool is `true` or `false`",
        ),
        (
            "timeout=20",
            'input timeout: expected duration, got "20"',
            "help: set by --var; write 20s; a duration is written like",
        ),
        (
            "memory=4Gb",
            'input memory: expected size, got "4Gb"',
            "help: set by --var; write 4GB or 4GiB; a size is written like",
        ),
    ],
)
def test_var_shows_value_and_rule(app: Path, var: str, message: str, help: str) -> None:
    err = failed(cflc("build", app, "--var", var))
    assert f"error[E0402]: {message}\n" in err
    assert help in err


def test_vars_file_shows_value_and_rule(app: Path, tmp_path: Path) -> None:
    f = tmp_path / "vars.json"
    f.write_text('{"level": "Warn", "timeout": "20sec"}')
    err = failed(cflc("build", app, "--vars", f))
    assert 'input level: expected "debug" | "info" | "warn", got "Warn"' in err
    assert 'did you mean "warn"?' in err
    # A data file has no durations: its string is read as one, so only the spelling is wrong
    # (its quotes are not).
    assert 'input timeout: expected duration, got "20sec"' in err
    assert "write 20s" in err and "without quotes" not in err


def test_vars_file_string_is_read_as_a_duration_or_size(app: Path, tmp_path: Path) -> None:
    f = tmp_path / "vars.yaml"
    f.write_text('timeout: "20s"\nmemory: 4GiB\nreplicas: 3\n')
    r = cflc("eval", app, "app", "--vars", f)
    assert r.returncode == 0, r.stderr
    assert '"timeout": "20s"' in r.stdout and '"replicas": 3' in r.stdout
    # Only durations and sizes: an int stays an int, and a file's string is no int.
    f.write_text('replicas: "3"\n')
    err = failed(cflc("build", app, "--vars", f))
    assert 'input replicas: expected Replicas, got "3"' in err


def test_environment_shows_value_and_choices(app: Path) -> None:
    err = failed(cflc("build", app, env={"STAGE": "production"}))
    assert (
        'input stage: expected "dev" | "prod" in environment variable STAGE, got "production"'
        in err
    )
    assert 'help: set by environment variable STAGE; the allowed values are "dev", "prod"' in err


@pytest.mark.parametrize("how", ["var", "env", "vars"])
def test_secret_input_value_is_never_echoed(app: Path, tmp_path: Path, how: str) -> None:
    value = "hunter2-too-short"
    f = tmp_path / "vars.json"
    f.write_text(f'{{"token": "{value}"}}')
    args: list[str | Path] = {
        "var": ["--var", f"token={value}"],
        "env": [],
        "vars": ["--vars", f],
    }[how]
    err = failed(cflc("build", app, *args, env={"API_TOKEN": value}))
    assert "error[E0402]: input token: expected Token" in err and "got <secret>" in err
    assert "Token is `secret where len(self) >= 32`" in err
    assert value not in err


def test_check_reports_the_same_input_message(app: Path) -> None:
    built = failed(cflc("build", app, "--var", "level=inof"))
    checked = failed(cflc("check", app, "--var", "level=inof"))
    assert 'did you mean "info"? the allowed values are "debug", "info", "warn"' in checked
    assert built.splitlines()[0] == checked.splitlines()[0]
