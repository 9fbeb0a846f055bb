"""The Python API: load, loads, dumps, compile, ConfigError, read-only typed results."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

import cfglang
from cfglang.values import Secret

SRC = """
input region: string = "us-east-1"
input token: secret from env "API_TOKEN"
app {
  name = "billing"
  timeout = 1h30m
  memory = 512MiB
  tags = ["a", "b"]
  "max-conns" = 10
  url = "https://$<region>.example.com"
  auth = token
}
"""


def test_loads_gives_typed_read_only_config() -> None:
    cfg = cfglang.loads(SRC, env={"API_TOKEN": "s3cret"})
    assert cfg.app.name == "billing"
    assert cfg["app"]["max-conns"] == 10
    assert cfg.app.timeout == timedelta(hours=1, minutes=30)
    assert cfg.app.memory == 512 * 1024 * 1024
    assert cfg.app.tags == ("a", "b")
    assert cfg.app.auth == Secret("s3cret")
    assert "s3cret" not in repr(cfg)
    with pytest.raises(AttributeError):
        cfg.app.name = "x"
    with pytest.raises(AttributeError):
        _ = cfg.app.missing


def test_vars_override_defaults_and_are_coerced() -> None:
    cfg = cfglang.loads(SRC, vars={"region": "eu-west-1"}, env={"API_TOKEN": "t"})
    assert cfg.app.url == "https://eu-west-1.example.com"


def test_config_error_carries_diagnostics() -> None:
    with pytest.raises(cfglang.ConfigError) as info:
        cfglang.loads("a = 1 +\n", filename="bad.cfl")
    diags = info.value.diagnostics
    assert diags and diags[0].code.startswith("E0")
    assert "bad.cfl" in str(info.value)


def test_missing_input_is_a_config_error_naming_the_flag() -> None:
    with pytest.raises(cfglang.ConfigError) as info:
        cfglang.loads("input x: int\ny = x\n")
    assert [d.code for d in info.value.diagnostics] == ["E0401"]
    assert "--var x=VALUE" in (info.value.diagnostics[0].help or "")


def test_load_from_file_and_dumps_formats(tmp_path: Path) -> None:
    (tmp_path / "base.cfl").write_text('port = 80\nurl = "http://h:$<port>"\n')
    (tmp_path / "main.cfl").write_text('extends "base.cfl"\nport = 8080\n')
    cfg = cfglang.load(tmp_path / "main.cfl")
    assert cfg.to_dict() == {"port": 8080, "url": "http://h:8080"}
    assert json.loads(cfglang.dumps(cfg)) == {"port": 8080, "url": "http://h:8080"}
    assert cfglang.dumps(cfg, format="env") == "PORT=8080\nURL=http://h:8080\n"
    assert "port: 8080" in cfglang.dumps(cfg, format="yaml")


def test_compile_collects_all_errors_without_raising(tmp_path: Path) -> None:
    (tmp_path / "m.cfl").write_text('schema S { a: int }\nx: S { a = "no" }\ny: S { b = 1 }\n')
    result = cfglang.compile(str(tmp_path / "m.cfl"))
    assert not result.ok
    assert result.data is None
    codes = sorted(d.code for d in result.diagnostics)
    assert codes == ["E0202", "E0302", "E0303"]


def test_overlay_replaces_files_on_disk(tmp_path: Path) -> None:
    (tmp_path / "base.cfl").write_text('team = "disk"\n')
    (tmp_path / "main.cfl").write_text('extends "base.cfl"\nx = team\n')
    result = cfglang.compile(
        str(tmp_path / "main.cfl"), overlay={str(tmp_path / "base.cfl"): 'team = "buffer"\n'}
    )
    assert result.data == {"team": "buffer", "x": "buffer"}
    entry = cfglang.compile(
        str(tmp_path / "main.cfl"),
        overlay={str(tmp_path / "main.cfl"): 'extends "base.cfl"\ny = 1\n'},
    )
    assert entry.data == {"team": "disk", "y": 1}


def test_compile_session_keeps_files_read_and_provenance(tmp_path: Path) -> None:
    from cfglang.api import compile_session
    from cfglang.tools.explain import Explanation

    (tmp_path / "base.cfl").write_text("port = 80\n")
    (tmp_path / "main.cfl").write_text('extends "base.cfl"\nport = 8080\n')
    session = compile_session(str(tmp_path / "main.cfl"))
    assert session.result.data == {"port": 8080}
    assert session.files == {str(tmp_path / "base.cfl"), str(tmp_path / "main.cfl")}
    why = session.explain("port")
    assert isinstance(why, Explanation) and why.value == 8080
    assert why.set_by is not None and why.set_by.site.file == "main.cfl"
    assert [d.site.file for d in why.overrides] == ["base.cfl"]
    missing = session.explain("nope")
    assert not isinstance(missing, Explanation)
    assert [d.code for d in missing.diagnostics] == ["E0201"]


def test_diagnostic_has_the_documented_location_attributes(tmp_path: Path) -> None:
    from cfglang.diagnostics import Diagnostic, to_json

    (tmp_path / "app.cfl").write_text('name = "x"\nport: int = "oops"\n')
    with pytest.raises(cfglang.ConfigError) as info:
        cfglang.load(tmp_path / "app.cfl")
    (d,) = info.value.diagnostics
    data = to_json(d)
    # The attributes read like `--error-format json`, which docs/cli.md promises.
    assert (d.file, d.line, d.column, d.end_line, d.end_column) == (
        data["file"],
        data["line"],
        data["column"],
        data["end_line"],
        data["end_column"],
    )
    assert d.line == 2 and d.file is not None and d.file.endswith("app.cfl")
    nowhere = Diagnostic("E0701", "no place")
    assert (nowhere.file, nowhere.line, nowhere.column) == (None, None, None)
    with pytest.raises(AttributeError):
        d.line = 4  # type: ignore[misc]  # read-only
    # Every attribute docs/cli.md lists for a Diagnostic exists.
    doc = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
    listed = doc[doc.index("A `Diagnostic` has") :].split("\n\n")[0]
    names = set(re.findall(r"`([a-z_]+)`", listed)) - {"error", "warning", "message", "span"}
    assert {"file", "line", "column", "code", "notes", "data_path"} <= names
    for name in names | {"message", "span"}:
        getattr(d, name)


def test_load_signature_is_as_documented() -> None:
    import inspect

    params = inspect.signature(cfglang.load).parameters
    assert list(params) == ["path", "vars", "env", "as_", "identity"]
    doc = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
    assert "`load(path, *, vars=None, env=None, as_=None, identity=None)`" in doc
    loads = list(inspect.signature(cfglang.loads).parameters)
    assert loads == ["text", "filename", "vars", "env", "identity"]
    assert '`loads(text, *, filename="<string>", vars=None, env=None, identity=None)`' in doc
