"""`cflc codegen python`: generated dataclasses import, type-check and load real configs."""

from __future__ import annotations

import dataclasses
import datetime
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import cfglang
from cfglang.values import Secret

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "examples" / "fleet"
CFLC = [sys.executable, "-c", "from cfglang.cli import run; run()"]


def cflc(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CFLC, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def generate(src: Path, out: Path) -> ModuleType:
    r = cflc("codegen", "python", src, "-o", out)
    assert r.returncode == 0, r.stderr
    spec = importlib.util.spec_from_file_location(out.stem, out)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[out.stem] = module  # dataclasses resolve string annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModuleType]:
    """A copy of the fleet with a schema for its whole document, and its classes."""
    root = tmp_path_factory.mktemp("fleet") / "fleet"
    shutil.copytree(FLEET, root, ignore=shutil.ignore_patterns("out"))
    (root / "schemas" / "document.cfl").write_text(
        'import "service.cfl"\n'
        "## The document of one environment.\n"
        "schema Fleet {\n  services: map[string, service.Service]\n}\n"
    )
    return root, generate(root / "schemas" / "document.cfl", root.parent / "fleet_types.py")


def test_fleet_classes(fleet: tuple[Path, ModuleType]) -> None:
    _, mod = fleet
    assert mod.__all__ == ["Fleet", "Service", "Database", "Resources", "ResourceList", "Probe"]
    fields = {f.name: f for f in dataclasses.fields(mod.Service)}
    assert fields["db"].default is None
    assert mod.Service.__dataclass_params__.frozen
    assert mod.Service.__doc__ == "One deployable service."


def test_load_as_generated_class(fleet: tuple[Path, ModuleType]) -> None:
    root, mod = fleet
    cfg = cfglang.load(root / "env" / "prod.cfl", as_=mod.Fleet)
    assert isinstance(cfg, mod.Fleet)
    billing = cfg.services["billing"]
    assert isinstance(billing, mod.Service)
    assert billing.replicas == 6 and billing.env == "prod"
    assert billing.timeout == datetime.timedelta(seconds=30)
    assert billing.db is not None and billing.db.sslmode == "verify-full"
    assert billing.db.pool == 50
    assert billing.allowFrom == ("10.0.0.0/8",)
    assert billing.resources.limits.memory == "2Gi"
    assert billing.liveness.port == 8080 and billing.liveness.scheme == "HTTP"
    with pytest.raises(dataclasses.FrozenInstanceError):
        billing.replicas = 1


def test_service_from_prod_config() -> None:
    """The generated classes for the fleet's own schema module, built from `load`."""
    cfg = cfglang.load(FLEET / "env" / "prod.cfl")
    src = FLEET / "schemas" / "service.cfl"
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        mod = generate(src, Path(d) / "fleet_service_types.py")
        search = mod.Service.from_dict(cfg.services.search)
        assert search.name == "search" and search.replicas == 4
        gateway = mod.Gateway.from_dict(cfg.services.gateway)
        assert isinstance(gateway, mod.Service) and gateway.publicHost.startswith("api.")
        assert gateway.upstreams[0].startswith("http://billing.")


def test_stdlib_and_mypy_strict(tmp_path: Path, fleet: tuple[Path, ModuleType]) -> None:
    root, _ = fleet
    k8s = generate(ROOT / "stdlib" / "std" / "k8s.cfl", tmp_path / "k8s_types.py")
    probe = k8s.Probe.from_dict(
        {
            "port": 80,
            "path": "/h",
            "scheme": "HTTPS",
            "initialDelaySeconds": 0,
            "periodSeconds": 10,
            "timeoutSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 3,
        }
    )
    assert probe.scheme == "HTTPS"
    with pytest.raises(ValueError, match=r"Probe\.scheme: expected"):
        k8s.Probe.from_dict(
            {"port": 80, "path": "/h", "scheme": "FTP"}
            | {
                k: 1
                for k in (
                    "initialDelaySeconds",
                    "periodSeconds",
                    "timeoutSeconds",
                    "successThreshold",
                    "failureThreshold",
                )
            }
        )
    with pytest.raises(ValueError, match="missing field `path`"):
        k8s.Probe.from_dict({})
    files = [tmp_path / "k8s_types.py", root.parent / "fleet_types.py"]
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy"),
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr


SCHEMA = """\
## Odd names, every kind of type.
schema Base {
  ## The id.
  id: int
}
schema Odd extends Base {
  class: string
  "max-conns": int = 10
  from_dict: bool = false
  ratio: float = 1
  cache: size = 1MiB
  wait: duration = 1h30m
  token: secret
  either: int | string = 1
  level: "a" | "b" | null = "a"
  maybe: list[string]?
  blob: any = null
  nested: map[string, list[int]] = {}
}
"""


def test_odd_schema(tmp_path: Path) -> None:
    (tmp_path / "odd.cfl").write_text(SCHEMA)
    mod = generate(tmp_path / "odd.cfl", tmp_path / "odd_types.py")
    names = {f.name for f in dataclasses.fields(mod.Odd)}
    assert {"id", "class_", "max_conns", "from_dict_", "maybe"} <= names
    assert issubclass(mod.Odd, mod.Base)
    (tmp_path / "v.cfl").write_text(
        'import "odd.cfl"\nx: odd.Odd { id = 1; class = "c"; token = "s3"; either = "e"\n'
        "  nested = { a = [1, 2] } }\n"
    )
    res = cfglang.api.compile(str(tmp_path / "v.cfl"), emit_outputs=False)
    assert res.ok and res.data is not None, res.diagnostics
    odd = mod.Odd.from_dict(res.data["x"])
    assert odd.class_ == "c" and odd.max_conns == 10 and odd.from_dict_ is False
    assert odd.cache == 1024**2 and odd.wait == datetime.timedelta(hours=1, minutes=30)
    assert isinstance(odd.token, Secret) and "s3" not in repr(odd)
    assert odd.either == "e" and odd.level == "a" and odd.maybe is None
    assert odd.nested == {"a": (1, 2)} and odd.ratio == 1.0
    # plain JSON (canonical strings) works too
    plain: dict[str, Any] = {
        "id": 2,
        "class": "k",
        "max-conns": 1,
        "from_dict": True,
        "ratio": 2,
        "cache": "2KiB",
        "wait": "5s",
        "token": "t",
        "either": 3,
        "level": None,
        "maybe": ["m"],
        "blob": [1],
        "nested": {},
    }
    odd2 = mod.Odd.from_dict(plain)
    assert odd2.cache == 2048 and odd2.level is None and odd2.maybe == ("m",)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy"),
            str(tmp_path / "odd_types.py"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_cli_errors(tmp_path: Path) -> None:
    r = cflc("codegen", "python", ROOT / "stdlib" / "std" / "net.cfl")
    assert r.returncode == 1 and "declares no schema" in r.stderr
    r = cflc("codegen", "python", tmp_path / "missing.cfl")
    assert r.returncode == 2 and "does not exist" in r.stderr
    (tmp_path / "bad.cfl").write_text("schema S { x: int = }\n")
    r = cflc("codegen", "python", tmp_path / "bad.cfl", "--error-format", "json")
    assert r.returncode == 1 and '"code": "E00' in r.stderr and "Traceback" not in r.stderr
    r = cflc("codegen", "python", "--help")
    assert r.returncode == 0 and "dataclasses" in r.stdout
    r = cflc("codegen", "python", FLEET / "schemas" / "service.cfl")
    assert r.returncode == 0 and "class Gateway(Service):" in r.stdout
