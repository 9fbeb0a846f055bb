"""`cflc schema export`: JSON Schema 2020-12 from CFL schemas and types.

Every export must be a valid 2020-12 schema, and must accept what `cflc build` accepts:
the fleet's compiled targets, and (property test) generated objects that compile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfglang.api import compile
from cfglang.emit import emit
from cfglang.tools.jsonschema import DURATION_PATTERN, SIZE_PATTERN, export, load_workspace
from cfglang.values import Duration, Size

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "examples" / "fleet"
CFLC = [sys.executable, "-c", "from cfglang.cli import run; run()"]


def cflc(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CFLC, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def validator(doc: dict[str, Any]) -> Any:
    jsonschema.Draft202012Validator.check_schema(doc)
    return jsonschema.Draft202012Validator(doc)


def as_json(data: Any) -> Any:
    """Compiled data as the JSON emitter writes it (durations, sizes as strings)."""
    return json.loads(emit(data, "json"))


@pytest.fixture(scope="module")
def fleet_ws() -> Any:
    ws = load_workspace([str(FLEET / "base.cfl")])
    assert ws.ok, ws.diagnostics
    return ws


def test_every_fleet_and_stdlib_declaration_exports_a_valid_schema(fleet_ws: Any) -> None:
    names = [
        f"{os.path.splitext(os.path.basename(m.source.path))[0]}.{d.name}"
        for m in fleet_ws.modules
        for d in fleet_ws.declarations(m)
    ]
    assert "service.Service" in names and "k8s.Probe" in names and "net.Port" in names
    for name in names:
        doc = export(fleet_ws, name)
        assert doc is not None, name
        assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        validator(doc)


def test_service_schema_shape(fleet_ws: Any) -> None:
    doc = export(fleet_ws, "service.Service")
    assert doc is not None
    assert doc["type"] == "object" and doc["additionalProperties"] is False
    assert doc["description"].startswith("One deployable service.")
    assert doc["required"] == ["name", "env", "region", "image", "url", "liveness", "owner"]
    props = doc["properties"]
    assert props["replicas"] == {
        "type": "integer",
        "minimum": 1,
        "default": 1,
        "description": "Number of pods.",
    }
    assert props["port"]["$ref"] == "#/$defs/Port" and props["port"]["default"] == 8080
    assert props["timeout"]["pattern"] == DURATION_PATTERN
    assert props["timeout"]["default"] == "30s"
    assert props["db"]["anyOf"] == [{"$ref": "#/$defs/Database"}, {"type": "null"}]
    assert props["labels"]["additionalProperties"] == {"type": "string"}
    assert props["allowFrom"]["items"] == {"$ref": "#/$defs/CIDR"}
    assert props["image"]["pattern"] == "^[a-z0-9./-]+:[A-Za-z0-9._-]+$"
    defs = doc["$defs"]
    assert defs["Env"]["enum"] == ["dev", "staging", "prod"]
    assert defs["Port"]["minimum"] == 1 and defs["Port"]["maximum"] == 65535
    assert defs["Host"]["maxLength"] == 253 and "pattern" in defs["Host"]
    assert defs["Database"]["additionalProperties"] is False
    assert defs["Database"]["properties"]["pool"]["maximum"] == 200
    assert defs["ImagePullPolicy"]["enum"] == ["Always", "IfNotPresent", "Never"]
    checks = doc["x-cfl-checks"]
    assert checks[0] == {
        "expr": 'replicas <= 3 || env == "prod"',
        "message": "more than 3 replicas is for prod only",
    }
    assert "liveness.port == port" in doc["description"]
    assert defs["Probe"]["properties"]["path"]["pattern"] == "^\\/"


def test_gateway_extends_service(fleet_ws: Any) -> None:
    doc = export(fleet_ws, "service.Gateway")
    assert doc is not None
    assert {"name", "publicHost", "upstreams"} <= set(doc["properties"])
    assert doc["x-cfl-extends"] == "Service"
    assert [c["expr"] for c in doc["x-cfl-checks"]][-1] == "len(upstreams) > 0"


def test_alias_root_and_unrecognised_refinement(tmp_path: Path) -> None:
    (tmp_path / "m.cfl").write_text(
        "## Even numbers.\n"
        "type Even = int where self % 2 == 0 && self >= 0\n"
        'type Short = string where len(self) < 4 && startswith(self, "a.")\n'
        "schema Tree { name: string; kids: list[Tree] = []; c: Short? }\n"
    )
    ws = load_workspace([str(tmp_path / "m.cfl")])
    even = export(ws, "Even")
    assert even is not None
    validator(even)
    assert even["minimum"] == 0 and even["x-cfl-where"] == ["self % 2 == 0"]
    assert even["description"].startswith("Even numbers.")
    assert "`self % 2 == 0`" in even["description"]
    tree = export(ws, "Tree")
    assert tree is not None
    v = validator(tree)
    assert tree["properties"]["kids"]["items"] == {"$ref": "#"}
    short = tree["$defs"]["Short"]
    assert short["maxLength"] == 3 and short["pattern"] == "^a\\."
    assert tree["properties"]["c"]["anyOf"][1] == {"type": "null"}
    assert v.is_valid({"name": "x", "kids": [{"name": "y", "kids": []}], "c": "a.b"})
    assert not v.is_valid({"name": "x", "c": "b.b"})
    assert not v.is_valid({"name": "x", "other": 1})
    assert export(ws, "Nope") is None


def test_canonical_patterns_match_the_emitters() -> None:
    import re

    for ms in (
        0,
        1,
        999,
        1000,
        59_999,
        60_000,
        3_600_000,
        86_400_000 * 3 + 1,
        5_400_000,
        123_456_789,
    ):
        assert re.fullmatch(DURATION_PATTERN, Duration(ms).canonical()), ms
    for text in ("90m", "1h60m", "", "-", "24h", "1000ms"):
        assert not re.fullmatch(DURATION_PATTERN, text), text
    for n in (0, 1, 1000, 1024, 1536 * 1024**2, 1024**5 * 3, 7):
        assert re.fullmatch(SIZE_PATTERN, Size(n).canonical()), n
    assert not re.fullmatch(SIZE_PATTERN, "1.5GB")


def test_compiled_fleet_targets_validate(fleet_ws: Any) -> None:
    service = validator(export(fleet_ws, "service.Service") or {})
    gateway = validator(export(fleet_ws, "service.Gateway") or {})
    for target in ("dev", "staging", "prod"):
        res = compile(str(FLEET / "env" / f"{target}.cfl"), emit_outputs=False)
        assert res.ok and res.data is not None
        data = as_json(res.data)["services"]
        for name in ("billing", "search"):
            errors = [e.message for e in service.iter_errors(data[name])]
            assert not errors, (target, name, errors)
        assert not list(gateway.iter_errors(data["gateway"]))
        # additionalProperties: false is what tells a Gateway from a Service
        assert not service.is_valid(data["gateway"])


# ---- property test: what build accepts, the export accepts ---------------------------------

SCHEMA_SRC = """\
type Level = "debug" | "info" | "warn"
schema Inner {
  host: string where len(self) <= 5
  port: int = 80 where 1 <= self && self <= 100
}
schema Demo {
  name: string where matches(self, "^[a-z]+$")
  count: int where self > 0 && self < 50
  ratio: float = 0.5
  level: Level = "info"
  timeout: duration = 30s
  cache: size = 1MiB
  tags: list[string] = []
  limits: map[string, int] = {}
  inner: Inner?
  token: secret?
  mode: "a" | 1 | true = "a"
  flag: bool = false
  check count < 40 || flag : "big counts need flag"
}
"""

_DIR = Path(tempfile.mkdtemp(prefix="cfl-schema-prop-"))
(_DIR / "cfl.toml").write_text("")
(_DIR / "demo.cfl").write_text(SCHEMA_SRC)


def _q(s: str) -> str:
    return json.dumps(s)


_strings = st.text(alphabet="abcXyz-9", min_size=0, max_size=7)
_fields: dict[str, st.SearchStrategy[str]] = {
    # Mostly valid values, some invalid ones: both sides of what build accepts are tried.
    "name": st.one_of(st.text(alphabet="abcxyz", min_size=1, max_size=6), _strings).map(_q),
    "count": st.one_of(st.integers(1, 39), st.integers(-3, 55)).map(str),
    "ratio": st.one_of(
        st.integers(-5, 5).map(str),
        st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: repr(float(f))),
    ),
    "level": st.sampled_from(["debug", "info", "warn", "info", "error"]).map(_q),
    "timeout": st.integers(0, 10**9).map(lambda ms: f"{ms}ms"),
    "cache": st.tuples(st.integers(0, 5000), st.sampled_from(["B", "KB", "KiB", "MiB", "GB"])).map(
        lambda t: f"{t[0]}{t[1]}"
    ),
    "tags": st.lists(_strings.map(_q), max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
    "limits": st.dictionaries(
        st.sampled_from(["cpu", "mem", "io"]), st.integers(-9, 9), max_size=3
    ).map(lambda d: "{ " + "; ".join(f"{k} = {v}" for k, v in d.items()) + " }"),
    "inner": st.one_of(
        st.just("null"),
        st.tuples(
            st.text(alphabet="abc.-", max_size=6),
            st.one_of(st.none(), st.integers(1, 100), st.integers(0, 120)),
        ).map(
            lambda t: "{ host = " + _q(t[0]) + ("" if t[1] is None else f"; port = {t[1]}") + " }"
        ),
    ),
    "token": _strings.map(_q),
    "mode": st.sampled_from(['"a"', "1", "true", '"a"', "true", '"b"']),
    "flag": st.booleans().map(lambda b: "true" if b else "false"),
}
_candidate = st.fixed_dictionaries(
    {"name": _fields["name"], "count": _fields["count"]},
    optional={k: v for k, v in _fields.items() if k not in ("name", "count")},
)


@pytest.fixture(scope="module")
def demo_validator() -> Any:
    ws = load_workspace([str(_DIR / "demo.cfl")])
    assert ws.ok, ws.diagnostics
    doc = export(ws, "Demo")
    assert doc is not None
    return validator(doc)


def _build(fields: dict[str, str]) -> Any:
    body = "\n".join(f"  {k} = {v}" for k, v in fields.items())
    text = f'import "demo.cfl"\nx: demo.Demo {{\n{body}\n}}\n'
    return compile(text=text, filename=str(_DIR / "entry.cfl"), emit_outputs=False)


def test_an_accepted_candidate_validates(demo_validator: Any) -> None:
    res = _build(
        {
            "name": '"abc"',
            "count": "3",
            "timeout": "90061001ms",
            "cache": "2048KiB",
            "inner": '{ host = "h" }',
            "token": '"s"',
            "mode": "true",
        }
    )
    assert res.ok, res.diagnostics
    data = as_json(res.data)["x"]
    assert data["timeout"] == "1d1h1m1s1ms" and data["cache"] == "2MiB"
    assert not list(demo_validator.iter_errors(data))


@settings(max_examples=min(40, settings.default.max_examples))
@given(_candidate)
def test_what_build_accepts_validates(demo_validator: Any, fields: dict[str, str]) -> None:
    res = _build(fields)
    if not res.ok:
        return  # only accepted objects carry a promise
    data = as_json(res.data)["x"]
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in demo_validator.iter_errors(data)]
    assert not errors, (fields, data, errors)


# ---- CLI --------------------------------------------------------------------------------------


def test_cli_export_from_project_and_file() -> None:
    r = cflc("schema", "export", "Service", cwd=FLEET)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["title"] == "Service" and doc["additionalProperties"] is False
    r = cflc("schema", "export", "net.Port", "--file", FLEET / "base.cfl")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["maximum"] == 65535


def test_cli_export_to_file(tmp_path: Path) -> None:
    out = tmp_path / "svc.schema.json"
    r = cflc("schema", "export", "service.Service", "--file", FLEET / "base.cfl", "-o", out)
    assert r.returncode == 0 and r.stdout == ""
    validator(json.loads(out.read_text()))


def test_cli_errors() -> None:
    r = cflc("schema", "export", "Nope", "--file", FLEET / "base.cfl", "--error-format", "json")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    diag = json.loads(r.stderr.splitlines()[0])
    assert diag["code"] == "E0203" and "`Nope`" in diag["message"]
    r = cflc("schema", "export", "X", "--file", "missing.cfl")
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = cflc("schema", "export")
    assert r.returncode == 2
    r = cflc("schema", "export", "--help")
    assert r.returncode == 0 and "JSON Schema" in r.stdout


def test_cli_reports_broken_module(tmp_path: Path) -> None:
    (tmp_path / "bad.cfl").write_text("schema S { x: Nope }\n")
    r = cflc("schema", "export", "S", "--file", tmp_path / "bad.cfl")
    assert r.returncode == 1 and "E0203" in r.stderr and "Traceback" not in r.stderr


def test_export_and_codegen_need_no_evaluator() -> None:
    """Types come from the semantic layer: exporting a schema or generating code never
    loads the evaluator (issue 13)."""
    code = (
        "import sys\n"
        "from cfglang.tools.jsonschema import export, load_workspace\n"
        "from cfglang.tools.codegen import generate\n"
        f"ws = load_workspace([{str(FLEET / 'base.cfl')!r}])\n"
        "assert ws.ok and export(ws, 'service.Service') is not None\n"
        "assert generate(ws, ws.entries[0])\n"
        "print(sorted(m for m in sys.modules if m.startswith('cfglang.eval')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"
