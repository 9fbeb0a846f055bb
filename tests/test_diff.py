"""`cfglang.tools.diff` (the algorithm, on plain data) and `cflc diff` (through a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cfglang.tools.diff import Change, diff, format_path, render_human, to_json
from cfglang.values import Duration, Secret, Size

# --- the algorithm ---------------------------------------------------------------------------


def lines(a: Any, b: Any) -> list[str]:
    return render_human(diff(a, b)).splitlines()


def test_equal_data_has_no_changes() -> None:
    data = {"a": 1, "b": {"c": [1, 2, {"d": None}]}, "e": 1.5, "f": "x", "g": True}
    assert diff(data, json.loads(json.dumps(data))) == []
    assert render_human([]) == ""


def test_nested_objects_report_leaf_paths() -> None:
    a = {"services": {"billing": {"replicas": 2, "port": 80}, "search": {"replicas": 1}}}
    b = {"services": {"billing": {"replicas": 3, "port": 80}, "search": {"replicas": 1}}}
    assert diff(a, b) == [Change("change", ("services", "billing", "replicas"), 2, 3)]
    assert lines(a, b) == ["~ services.billing.replicas: 2 -> 3"]


def test_added_and_removed_keys_show_whole_values_compactly() -> None:
    a = {"keep": 1, "old": {"x": [1, 2]}}
    b = {"keep": 1, "new": {"y": "z", "n": None}}
    # `new` follows `keep` in b, so it comes right after `keep`, before `old`.
    assert lines(a, b) == ['+ new: {"y": "z", "n": null}', '- old: {"x": [1, 2]}']


def test_lists_are_compared_index_by_index() -> None:
    assert lines({"tags": ["a", "b", "c"]}, {"tags": ["a", "x"]}) == [
        '~ tags[1]: "b" -> "x"',
        '- tags[2]: "c"',
    ]
    assert lines({"tags": ["a"]}, {"tags": ["a", "b", "c"]}) == ['+ tags[1]: "b"', '+ tags[2]: "c"']
    # Items that are objects are compared field by field.
    assert lines({"xs": [{"a": 1, "b": 2}]}, {"xs": [{"a": 1, "b": 3}]}) == ["~ xs[0].b: 2 -> 3"]
    # An insertion at the front shifts every later index (documented: index-wise).
    assert lines([1, 2], [0, 1, 2]) == ["~ [0]: 1 -> 0", "~ [1]: 2 -> 1", "+ [2]: 2"]


def test_type_changes_replace_the_whole_value() -> None:
    assert lines({"a": {"b": 1}}, {"a": [1]}) == ['~ a: {"b": 1} -> [1]']
    assert lines({"a": [1]}, {"a": "x"}) == ['~ a: [1] -> "x"']
    assert lines({"a": "1"}, {"a": 1}) == ['~ a: "1" -> 1']
    assert lines({"a": None}, {"a": {}}) == ["~ a: null -> {}"]
    # Python says 1 == 1.0 == True; the emitted JSON does not.
    assert lines({"a": 1}, {"a": 1.0}) == ["~ a: 1 -> 1.0"]
    assert lines({"a": 1}, {"a": True}) == ["~ a: 1 -> true"]
    assert lines({"a": 0}, {"a": False}) == ["~ a: 0 -> false"]


def test_root_that_is_not_an_object() -> None:
    assert lines(1, 2) == ["~ <root>: 1 -> 2"]
    assert lines({"a": 1}, [1]) == ['~ <root>: {"a": 1} -> [1]']


def test_key_order_alone_is_no_difference() -> None:
    assert diff({"a": 1, "b": {"x": 1, "y": 2}}, {"b": {"y": 2, "x": 1}, "a": 1}) == []


def test_order_of_changes_follows_a_and_additions_follow_b() -> None:
    a = {"a": 1, "b": 1, "c": 1, "d": 1}
    b = {"new0": 0, "d": 2, "b": 2, "new1": 0, "new2": 0, "a": 2}
    # a's keys in a's order; new0 first (nothing precedes it in b); new1 and new2 after b,
    # the key preceding them in b.
    assert [c.path_text for c in diff(a, b)] == ["new0", "a", "b", "new1", "new2", "c", "d"]
    assert [c.op for c in diff(a, b)] == [
        "add",
        "change",
        "change",
        "add",
        "add",
        "remove",
        "change",
    ]


def test_durations_sizes_and_secrets_equal_their_emitted_text() -> None:
    compiled = {"t": Duration(90_000), "m": Size(1024**2), "pw": Secret("hunter2")}
    built = {"t": "1m30s", "m": "1MiB", "pw": "hunter2"}
    assert diff(compiled, built) == []
    assert diff(built, compiled) == []
    assert lines({"t": Duration(1000)}, {"t": Duration(2000)}) == ['~ t: "1s" -> "2s"']


def test_secrets_never_print() -> None:
    a = {"pw": Secret("old-secret"), "db": {"url": Secret("postgres://u:old@db")}}
    b = {
        "pw": "new-secret",
        "db": {"url": Secret("postgres://u:new@db"), "x": 1},
        "extra": Secret("added-secret"),
    }
    text = render_human(diff(a, b))
    assert "secret" in text
    for plain in ("old-secret", "new-secret", "postgres", "added-secret"):
        assert plain not in text
    assert text.splitlines() == [
        "~ pw: <secret> -> <secret>",
        "~ db.url: <secret> -> <secret>",
        "+ db.x: 1",
        "+ extra: <secret>",
    ]
    # A secret inside a removed object is redacted too.
    assert lines({"o": {"k": Secret("zzz")}}, {}) == ['- o: {"k": "<secret>"}']
    dumped = json.dumps(to_json(diff(a, b)))
    for plain in ("old-secret", "new-secret", "postgres", "added-secret"):
        assert plain not in dumped


def test_to_json_shape() -> None:
    changes = diff(
        {"a": 1, "b": [1], "t": Duration(60_000)}, {"a": 2, "c": {"d": None}, "t": Duration(1000)}
    )
    assert to_json(changes) == [
        {"op": "change", "path": "a", "old": 1, "new": 2},
        {"op": "add", "path": "c", "old": None, "new": {"d": None}},
        {"op": "remove", "path": "b", "old": [1], "new": None},
        {"op": "change", "path": "t", "old": "1m", "new": "1s"},
    ]


def test_paths_quote_keys_that_are_not_identifiers() -> None:
    assert format_path(("services", "billing", "replicas")) == "services.billing.replicas"
    assert format_path(("tags", 2)) == "tags[2]"
    assert format_path(("labels", "app/name", 0)) == 'labels["app/name"][0]'
    assert format_path(("db", "type")) == "db.type"  # keyword field names read fine
    assert format_path(("db", "final", "x")) == 'db["final"].x'
    assert format_path(('we"ird', "ü")) == '["we\\"ird"]["ü"]'
    assert format_path(()) == "<root>"


def test_human_rendering_with_colour() -> None:
    text = render_human(diff({"a": 1, "b": 1}, {"a": 2, "c": 1}), color=True)
    assert "\x1b[33m~ a: 1 -> 2\x1b[0m" in text
    assert "\x1b[31m- b: 1\x1b[0m" in text
    assert "\x1b[32m+ c: 1\x1b[0m" in text


def test_diff_does_not_mutate_its_inputs() -> None:
    a = {"x": [1, {"y": 2}]}
    b = {"x": [1, {"y": 3}, 4]}
    a_copy, b_copy = json.loads(json.dumps(a)), json.loads(json.dumps(b))
    diff(a, b)
    assert a == a_copy and b == b_copy


# --- the command -----------------------------------------------------------------------------

CFLC = [sys.executable, "-c", "from cfglang.cli import run; run()"]


def cflc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CFLC, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "NO_COLOR": "1"},
    )


BASE = """\
input region: string = "us-east-1"
input token: secret = "s3cr3t-token"
services {
  billing { replicas = 2; url = "http://billing.$<region>"; timeout = 90s }
  search { replicas = 1 }
}
tags = ["a", "b", "c"]
password = token
"""

CHANGED = """\
input region: string = "us-east-1"
input token: secret = "s3cr3t-token"
owner = "team"
services {
  billing { replicas = 3; url = "http://billing.$<region>"; timeout = 90s }
  search = "gone"
}
tags = ["a", "x"]
password = token
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "a.cfl").write_text(BASE)
    (tmp_path / "b.cfl").write_text(CHANGED)
    return tmp_path


def test_cli_human_diff(project: Path) -> None:
    r = cflc("diff", "a.cfl", "b.cfl", cwd=project)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        '+ owner: "team"',
        "~ services.billing.replicas: 2 -> 3",
        '~ services.search: {"replicas": 1} -> "gone"',
        '~ tags[1]: "b" -> "x"',
        '- tags[2]: "c"',
    ]
    assert r.stderr == ""


def test_cli_exit_code(project: Path) -> None:
    assert cflc("diff", "a.cfl", "b.cfl", "--exit-code", cwd=project).returncode == 1
    same = cflc("diff", "a.cfl", "a.cfl", "--exit-code", cwd=project)
    assert (same.returncode, same.stdout) == (0, "")


def test_cli_json(project: Path) -> None:
    r = cflc("diff", "a.cfl", "b.cfl", "--json", cwd=project)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out[0] == {"op": "add", "path": "owner", "old": None, "new": "team"}
    assert out[4] == {"op": "remove", "path": "tags[2]", "old": "c", "new": None}
    assert json.loads(cflc("diff", "a.cfl", "a.cfl", "--json", cwd=project).stdout) == []


def test_cli_vars_per_side_and_secrets(project: Path) -> None:
    r = cflc(
        "diff",
        "a.cfl",
        "a.cfl",
        "--var",
        "region=eu-west-1",
        "--var-b",
        "region=ap-south-1",
        "--var-a",
        "token=other-token",
        cwd=project,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        '~ services.billing.url: "http://billing.eu-west-1" -> "http://billing.ap-south-1"',
        "~ password: <secret> -> <secret>",
    ]
    assert "token" not in r.stdout
    # --var applies to both sides: no difference.
    r = cflc("diff", "a.cfl", "a.cfl", "--var", "region=eu-west-1", "--exit-code", cwd=project)
    assert (r.returncode, r.stdout) == (0, "")


def test_cli_compiled_json_and_yaml_against_a_module(project: Path) -> None:
    build = subprocess.run(
        [*CFLC, "build", "a.cfl"], cwd=project, capture_output=True, text=True, check=True
    )
    (project / "a.json").write_text(build.stdout)
    build = subprocess.run(
        [*CFLC, "build", "a.cfl", "-f", "yaml"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    (project / "a.yaml").write_text(build.stdout)
    for data_file in ("a.json", "a.yaml"):
        same = cflc("diff", data_file, "a.cfl", "--exit-code", cwd=project)
        assert (same.returncode, same.stdout, same.stderr) == (0, "", ""), data_file
        r = cflc("diff", data_file, "b.cfl", cwd=project)
        assert "~ services.billing.replicas: 2 -> 3" in r.stdout
        # The build output holds the secret in clear; the diff still hides it.
        r = cflc("diff", data_file, "a.cfl", "--var-b", "token=t2", cwd=project)
        assert r.stdout == "~ password: <secret> -> <secret>\n"


def test_cli_compile_errors_are_reported_for_both_sides(project: Path) -> None:
    (project / "bad.cfl").write_text("x = 1\ny = \n")
    (project / "bad.json").write_text('{"a": 1,\n  "b": [1, 2,, 3]}')
    r = cflc("diff", "bad.cfl", "bad.json", cwd=project)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "error[E0001]" in r.stderr and "bad.cfl:2:" in r.stderr
    assert "invalid JSON" in r.stderr and "bad.json:2:14" in r.stderr
    assert "Traceback" not in r.stderr
    r = cflc("diff", "bad.cfl", "a.cfl", "--error-format", "json", cwd=project)
    assert r.returncode == 1
    diag = json.loads(r.stderr.splitlines()[0])
    assert (diag["code"], diag["file"], diag["line"]) == ("E0001", "bad.cfl", 2)


def test_cli_unknown_input_names_the_side(project: Path) -> None:
    r = cflc("diff", "a.cfl", "b.cfl", "--var-b", "nope=1", cwd=project)
    assert r.returncode == 1
    assert "E0403" in r.stderr and "while compiling `b.cfl`" in r.stderr
    assert "while compiling `a.cfl`" not in r.stderr


def test_cli_usage_errors(project: Path) -> None:
    r = cflc("diff", "missing.cfl", "a.cfl", cwd=project)
    assert r.returncode == 2 and "`missing.cfl` does not exist" in r.stderr
    (project / "d").mkdir()
    assert cflc("diff", "a.cfl", "d", cwd=project).returncode == 2
    assert cflc("diff", "a.cfl", cwd=project).returncode == 2
    assert cflc("diff", "a.cfl", "b.cfl", "--var", "noequals", cwd=project).returncode == 2
    (project / "x.json").write_text("{}")
    r = cflc("diff", "x.json", "a.cfl", "--var-a", "region=x", cwd=project)
    assert r.returncode == 2 and "compiled data" in r.stderr
    for r in (cflc("diff", "missing.cfl", "a.cfl", cwd=project),):
        assert "Traceback" not in r.stderr


def test_cli_help() -> None:
    r = subprocess.run([*CFLC, "diff", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    for flag in ("--json", "--exit-code", "--var-a", "--var-b", "~ path: old -> new"):
        assert flag in r.stdout
