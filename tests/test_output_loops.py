"""Outputs per service and per environment (issue 14 §2), through the command line.

`output` may stand in a module-level `for` or `if`, and `$<…>` in its name is substituted:
`cflc build -o DIR/` writes one file per iteration (and a conditional one only when its
condition holds), with the format of the evaluated name's extension; `cflc check` reports
exactly the errors `build` reports for the evaluated names, and writes nothing. The golden
cases under tests/cases/outputs/ pin the messages.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfglang.api import compile
from cfglang.tools.fmt import format_source
from tests.test_cli import assert_no_traceback, cflc

PROJECT = """\
input stage: "dev" | "prod" = "dev"
services = {
  web = { port = 80; replicas = 2 }
  api = { port = 8080; replicas = 3 }
}
for name, svc in services {
  output "$<stage>/$<name>.json" = svc
  output "$<stage>/$<name>.env" = { port = svc.port }
}
if stage == "prod" {
  output "$<stage>/alerts.yaml" = { page = true }
}
"""


def _files(d: Path) -> dict[str, str]:
    return {str(p.relative_to(d)): p.read_text() for p in sorted(d.rglob("*")) if p.is_file()}


def test_build_writes_one_file_per_service(tmp_path: Path) -> None:
    (tmp_path / "main.cfl").write_text(PROJECT)
    r = cflc("build", "-o", "out/", "main.cfl", cwd=tmp_path)
    assert_no_traceback(r)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    assert _files(tmp_path / "out") == {
        "dev/web.json": '{\n  "port": 80,\n  "replicas": 2\n}\n',
        "dev/web.env": "PORT=80\n",
        "dev/api.json": '{\n  "port": 8080,\n  "replicas": 3\n}\n',
        "dev/api.env": "PORT=8080\n",
    }


def test_build_writes_a_conditional_output_only_when_it_holds(tmp_path: Path) -> None:
    (tmp_path / "main.cfl").write_text(PROJECT)
    r = cflc("build", "-o", "out/", "--var", "stage=prod", "main.cfl", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    files = _files(tmp_path / "out")
    assert sorted(files) == [
        "prod/alerts.yaml",
        "prod/api.env",
        "prod/api.json",
        "prod/web.env",
        "prod/web.json",
    ]
    assert files["prod/alerts.yaml"] == "page: true\n"


BAD = {
    "empty_name": (
        'input stage: string = ""\noutput "$<stage>" = { a = 1 }\n',
        "error[E0603]: output name is empty\n --> main.cfl:2:8\n",
    ),
    "leaves_the_output_directory": (
        'input up: string = ".."\noutput "$<up>/x.json" = { a = 1 }\n',
        "error[E0603]: output `../x.json` leaves the output directory\n --> main.cfl:2:8\n",
    ),
    "absolute": (
        'input dir: string = "/etc"\noutput "$<dir>/x.json" = { a = 1 }\n',
        "error[E0603]: output `/etc/x.json` is an absolute path\n --> main.cfl:2:8\n",
    ),
    "duplicate_from_a_loop": (
        'for k in ["a", "b", "a"] {\n  output "$<k>.json" = { a = k }\n}\n',
        "error[E0603]: two outputs are named `a.json`\n --> main.cfl:2:10\n",
    ),
    "unknown_extension": (
        'for k in ["a"] {\n  output "$<k>.xml" = { a = k }\n}\n',
        "error[E0603]: cannot tell the format of output `a.xml`\n --> main.cfl:2:10\n",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_check_reports_what_build_reports_for_evaluated_names(tmp_path: Path, name: str) -> None:
    source, head = BAD[name]
    (tmp_path / "main.cfl").write_text(source)
    checked = cflc("check", "main.cfl", cwd=tmp_path)
    assert_no_traceback(checked)
    assert checked.returncode == 1 and checked.stdout == ""
    assert checked.stderr.startswith(head), checked.stderr
    built = cflc("build", "-o", "out/", "main.cfl", cwd=tmp_path)
    assert built.returncode == 1 and built.stdout == ""
    assert built.stderr == checked.stderr
    assert not (tmp_path / "out").exists()  # nothing is written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["main.cfl"]


def test_check_passes_a_good_loop_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "main.cfl").write_text(PROJECT)
    r = cflc("check", "--var", "stage=prod", "main.cfl", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["main.cfl"]


def test_output_outside_a_module_level_loop_is_refused(tmp_path: Path) -> None:
    (tmp_path / "main.cfl").write_text(
        'all = {\n  for k in ["a"] {\n    output "$<k>.json" = { a = 1 }\n  }\n}\n'
    )
    for args in (("check",), ("build", "-o", "out/")):
        r = cflc(*args, "main.cfl", cwd=tmp_path)
        assert r.returncode == 1
        assert r.stderr.startswith(
            "error[E0009]: `output` is only allowed at the top level of a module or in its "
            "module-level `if` and `for`\n --> main.cfl:3:5\n"
        ), r.stderr


def test_fmt_deps_and_explain_take_outputs_in_loops(tmp_path: Path) -> None:
    (tmp_path / "main.cfl").write_text(PROJECT)
    r = cflc("fmt", "--check", "main.cfl", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    r = cflc("deps", "main.cfl", cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == ""
    assert 'stage: "dev" | "prod", declared in main.cfl, has a default' in r.stdout
    r = cflc("explain", "main.cfl", "services.web.port", cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("services.web.port = 80  (int)\n")
    ugly = PROJECT.replace("output ", "output   ").replace(" = svc", "=svc")
    (tmp_path / "ugly.cfl").write_text(ugly)
    r = cflc("fmt", "ugly.cfl", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "ugly.cfl").read_text() == PROJECT


# ---- the sandbox holds for evaluated names (tests/test_sandbox.py for written ones) -----------


@pytest.mark.parametrize("cmd", ["build", "check"])
@pytest.mark.parametrize("name", ["/tmp/cflc-i14-abs", "..", "./..", "sub/../.."])
def test_an_escaping_evaluated_name_is_an_error_in_build_and_check(
    tmp_path: Path, cmd: str, name: str
) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "main.cfl").write_text(
        f'input dir: string = "{name}"\n'
        'for k in ["a", "b"] {\n  output "$<dir>/$<k>.json" = { x = k }\n}\n'
    )
    args = ["-o", "out/"] if cmd == "build" else []
    r = cflc(cmd, "main.cfl", *args, cwd=proj)
    assert_no_traceback(r)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("error[E0603]: output `"), r.stderr
    assert " --> main.cfl:3:10\n" in r.stderr
    assert r.stderr.count("error[") == 1  # one mistake, one message (not one per service)
    assert not any(Path("/tmp").glob("cflc-i14-abs*"))
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "proj",
        "proj/main.cfl",
    ]


def test_an_evaluated_name_through_a_symlink_leading_out_is_refused(tmp_path: Path) -> None:
    proj, outside = tmp_path / "proj", tmp_path / "outside"
    (proj / "out").mkdir(parents=True)
    outside.mkdir()
    (proj / "out" / "api").symlink_to(outside)
    (proj / "main.cfl").write_text(
        'for k in ["web", "api"] {\n  output "$<k>/app.json" = { name = k }\n}\n'
    )
    r = cflc("build", "main.cfl", "-o", "out/", cwd=proj)
    assert_no_traceback(r)
    assert r.returncode == 1
    assert "error[E0602]" in r.stderr and "symlink" in r.stderr
    assert list(outside.iterdir()) == []
    assert not (proj / "out" / "web").exists()  # nothing of the set is written


# ---- a property: one file per service, whatever the services, before and after `fmt` ----------

_NAMES = st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), max_size=6)


@given(_NAMES, st.sampled_from(["json", "yaml", "toml", "env"]))
def test_a_loop_writes_one_file_per_service(names: list[str], ext: str) -> None:
    services = "; ".join(f'"{n}" = {{ port = {i} }}' for i, n in enumerate(dict.fromkeys(names)))
    text = f'services = {{ {services} }}\nfor k,v in services {{ output "svc/$<k>.{ext}"=v }}\n'
    res = compile(text=text, filename="main.cfl", env={})
    unique = list(dict.fromkeys(names))
    assert res.ok, [d.message for d in res.diagnostics]
    assert [o.name for o in res.outputs] == [f"svc/{n}.{ext}" for n in unique]
    if ext == "json":
        assert [json.loads(o.text) for o in res.outputs] == [
            {"port": i} for i in range(len(unique))
        ]
    again = compile(text=format_source(text), filename="main.cfl", env={})
    assert [(o.name, o.text) for o in again.outputs] == [(o.name, o.text) for o in res.outputs]
