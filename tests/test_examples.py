"""Build the example projects through the `cflc` command line and check what they write."""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
from pathlib import Path

import pytest

FLEET = Path(__file__).resolve().parent.parent / "examples" / "fleet"
CFLC = shutil.which("cflc")

pytestmark = pytest.mark.skipif(CFLC is None, reason="the cflc console script is not on PATH")

ENVS = ("dev", "staging", "prod")
FILES = ("billing.json", "search.json", "gateway.json", "billing.env", "app.ini")


def cflc(*args: str) -> subprocess.CompletedProcess[str]:
    assert CFLC is not None
    return subprocess.run(
        [CFLC, *args], cwd=FLEET, capture_output=True, text=True, timeout=120, check=False
    )


def read_env(text: str) -> dict[str, str]:
    """A minimal .env reader: NAME=value lines, optional double quotes."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f"not a NAME=value line: {line!r}"
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = json.loads(value)
        out[name] = value
    return out


def read_ini(text: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None)
    cp.read_string(text)
    return cp


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fleet-out")
    res = cflc("build", "-o", f"{out}/")
    assert res.returncode == 0, res.stderr
    return out


def test_check_passes() -> None:
    res = cflc("check")
    assert res.returncode == 0, res.stderr


def test_build_writes_every_output(built: Path) -> None:
    written = sorted(str(p.relative_to(built)) for p in built.rglob("*") if p.is_file())
    assert written == sorted(f"{env}/{name}" for env in ENVS for name in FILES)


@pytest.mark.parametrize("env", ENVS)
def test_outputs_parse(built: Path, env: str) -> None:
    for name in ("billing.json", "search.json", "gateway.json"):
        svc = json.loads((built / env / name).read_text())
        assert svc["env"] == env
        assert svc["name"] == name.removesuffix(".json")
        assert svc["liveness"]["port"] == svc["port"]
    assert read_env((built / env / "billing.env").read_text())["DB_NAME"] == "billing"
    ini = read_ini((built / env / "app.ini").read_text())
    assert ini.sections() == ["fleet", "billing", "search", "gateway"]
    assert ini["fleet"]["env"] == env


def test_prod_values(built: Path) -> None:
    billing = json.loads((built / "prod" / "billing.json").read_text())
    assert billing["replicas"] == 6
    assert billing["region"] == "eu-west-1"  # prod's own input default
    assert billing["db"]["host"] == "billing-db.prod.eu-west-1.internal"
    assert billing["db"]["sslmode"] == "verify-full"
    assert billing["labels"] == {
        "app": "billing",
        "env": "prod",
        "region": "eu-west-1",
        "tier": "critical",
    }
    assert billing["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}
    search = json.loads((built / "prod" / "search.json").read_text())
    assert search["url"] == "http://search.prod.eu-west-1.internal:9200"  # late-bound port
    gateway = json.loads((built / "prod" / "gateway.json").read_text())
    assert gateway["upstreams"] == [
        "http://billing.prod.eu-west-1.internal:8080",
        "http://search.prod.eu-west-1.internal:9200",
    ]
    assert gateway["publicHost"] == "api.eu-west-1.example.com"

    env = read_env((built / "prod" / "billing.env").read_text())
    assert env["DB_HOST"] == "billing-db.prod.eu-west-1.internal"
    assert env["DB_POOL"] == "50"
    assert env["SERVICE_PORT"] == "8080"

    ini = read_ini((built / "prod" / "app.ini").read_text())
    assert ini["fleet"]["zone"] == "prod.eu-west-1.internal"
    assert ini["billing"]["replicas"] == "6"
    assert ini["gateway"]["allow_from"] == "0.0.0.0/0"


def test_dev_and_staging_values(built: Path) -> None:
    dev = json.loads((built / "dev" / "billing.json").read_text())
    assert dev["replicas"] == 1
    assert dev["region"] == "us-east-1"  # base default
    assert dev["db"]["sslmode"] == "disable"
    assert dev["labels"]["owner"] == "alice"
    staging = json.loads((built / "staging" / "search.json").read_text())
    assert staging["replicas"] == 3
    assert staging["region"] == "us-west-2"
    assert staging["labels"]["tier"] == "canary"
    assert staging["db"]["host"] == "search-db.staging.us-west-2.internal"


def test_single_file_prints_json() -> None:
    res = cflc("build", "env/prod.cfl")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["services"]["billing"]["replicas"] == 6
    assert "stage" not in doc and "zone" not in doc  # hidden fields


def test_region_var_wins() -> None:
    res = cflc("build", "env/prod.cfl", "--var", "region=ap-south-1")
    assert res.returncode == 0, res.stderr
    billing = json.loads(res.stdout)["services"]["billing"]
    assert billing["region"] == "ap-south-1"
    assert billing["db"]["host"] == "billing-db.prod.ap-south-1.internal"


def test_bad_region_is_rejected() -> None:
    res = cflc("build", "env/prod.cfl", "--var", "region=Mars")
    assert res.returncode == 1
    assert "input region: expected Region" in res.stderr
    assert "Traceback" not in res.stderr
