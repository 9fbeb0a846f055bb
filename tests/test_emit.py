"""Example-based tests for `cfglang.emit`: exact outputs, every error case, helpers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cfglang.emit import FORMATS, EmitError, emit, format_for_filename
from cfglang.values import Duration, Secret, Size

ROOT = Path(__file__).resolve().parents[1]

SAMPLE: dict[str, object] = {
    "name": "billing",
    "debug": False,
    "replicas": 3,
    "ratio": 0.25,
    "timeout": Duration(90_000),
    "max_body": Size(512 * 1024**2),
    "password": Secret("hunter2"),
    "note": None,
    "tags": ["eu", "prod"],
    "db": {"host": "db.local", "port": 5432, "replica": {"host": "r1", "lag": Duration(500)}},
}

INI_SAMPLE: dict[str, object] = {
    "server": {
        "host": "0.0.0.0",
        "port": 8080,
        "debug": True,
        "tags": ["a", "b", "c"],
        "note": None,
        "timeout": Duration(30_000),
        "empty": [],
    },
    "db": {"url": "postgres://u@h/db?x=%s", "replica": {"host": "r1", "size": Size(1024)}},
    "deep": {"a": {"b": {"k": 1}}},
    "nothing": {},
}


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# --- exact outputs ---------------------------------------------------------------------


def test_json_sample() -> None:
    assert emit(SAMPLE, "json") == dedent(
        """
        {
          "name": "billing",
          "debug": false,
          "replicas": 3,
          "ratio": 0.25,
          "timeout": "1m30s",
          "max_body": "512MiB",
          "password": "hunter2",
          "note": null,
          "tags": [
            "eu",
            "prod"
          ],
          "db": {
            "host": "db.local",
            "port": 5432,
            "replica": {
              "host": "r1",
              "lag": "500ms"
            }
          }
        }
        """
    )


def test_json_scalars_unicode_and_empty_containers() -> None:
    assert emit("héllo", "json") == '"héllo"\n'
    assert emit(None, "json") == "null\n"
    assert emit({"a": {}, "b": []}, "json") == '{\n  "a": {},\n  "b": []\n}\n'
    assert emit([], "json") == "[]\n"


def test_yaml_sample() -> None:
    assert emit(SAMPLE, "yaml") == dedent(
        """
        name: billing
        debug: false
        replicas: 3
        ratio: 0.25
        timeout: 1m30s
        max_body: 512MiB
        password: hunter2
        note: null
        tags:
        - eu
        - prod
        db:
          host: db.local
          port: 5432
          replica:
            host: r1
            lag: 500ms
        """
    )


@pytest.mark.parametrize(
    "text",
    [
        # quoted by PyYAML's own YAML 1.1 resolver
        "no", "No", "on", "yes", "off", "true", "False", "1.0", "0x1", "null", "~", "",
        "2024-01-01", "1_000", "190:20:30", ".inf", ".NaN", "<<", "=", "012", "+1", "0b101",
        # quoted by our extra rule (YAML 1.1 y/n and 1.1 floats, YAML 1.2 core numbers)
        "y", "N", "-.5", "+.5", "1e3", "1e+3", "0o17", "08",
    ],
)  # fmt: skip
def test_yaml_quotes_strings_that_look_typed(text: str) -> None:
    out = emit({"k": text}, "yaml")
    assert out in (f"k: '{text}'\n", f'k: "{text}"\n')


def test_yaml_quotes_typed_looking_keys_and_named_values() -> None:
    assert emit({"y": Secret("no"), "on": Size(0)}, "yaml") == "'y': 'no'\n'on': 0B\n"


def test_yaml_plain_strings_stay_plain() -> None:
    assert emit({"k": ["abc", "1h30m", "x.y", "é"]}, "yaml") == "k:\n- abc\n- 1h30m\n- x.y\n- é\n"


def test_yaml_empty_containers_and_no_aliases() -> None:
    shared = [1, 2]
    assert emit({"a": {}, "b": [], "c": shared, "d": shared}, "yaml") == dedent(
        """
        a: {}
        b: []
        c:
        - 1
        - 2
        d:
        - 1
        - 2
        """
    )


def test_yaml_floats() -> None:
    data = {"a": float("nan"), "b": float("inf"), "c": float("-inf"), "d": 1e16}
    assert emit(data, "yaml") == "a: .nan\nb: .inf\nc: -.inf\nd: 1.0e+16\n"


def test_yaml_does_not_change_global_dumper() -> None:
    import yaml

    emit({"k": Duration(1000)}, "yaml")
    with pytest.raises(yaml.representer.RepresenterError):
        yaml.safe_dump({"k": Duration(1000)})


def test_toml_sample() -> None:
    assert emit(SAMPLE, "toml") == dedent(
        """
        name = "billing"
        debug = false
        replicas = 3
        ratio = 0.25
        timeout = "1m30s"
        max_body = "512MiB"
        password = "hunter2"
        tags = [
            "eu",
            "prod",
        ]

        [db]
        host = "db.local"
        port = 5432

        [db.replica]
        host = "r1"
        lag = "500ms"
        """
    )


def test_toml_omits_nulls_and_writes_special_floats() -> None:
    data = {"a": None, "b": {"c": None, "d": float("nan"), "e": float("-inf")}}
    assert emit(data, "toml") == "[b]\nd = nan\ne = -inf\n"


def test_toml_empty_root_is_one_newline() -> None:
    assert emit({}, "toml") == "\n"
    assert emit({"a": None}, "toml") == "\n"


def test_ini_sample() -> None:
    assert emit(INI_SAMPLE, "ini") == dedent(
        """
        [server]
        host = 0.0.0.0
        port = 8080
        debug = true
        tags = a,b,c
        note =
        timeout = 30s
        empty =

        [db]
        url = postgres://u@h/db?x=%s

        [db.replica]
        host = r1
        size = 1KiB

        [deep.a.b]
        k = 1

        [nothing]
        """
    )


def test_ini_scalars_come_before_subsections() -> None:
    data = {"s": {"sub": {"x": 1}, "a": 2}}
    assert emit(data, "ini") == "[s]\na = 2\n\n[s.sub]\nx = 1\n"


def test_ini_allows_awkward_but_readable_text() -> None:
    data = {"s p": {"k-1": "a = b: c ; d # e % f", "K2": "x,y", "list": [1.5, None, "z"]}}
    assert emit(data, "ini") == ("[s p]\nk-1 = a = b: c ; d # e % f\nK2 = x,y\nlist = 1.5,,z\n")


def test_env_sample() -> None:
    assert emit(SAMPLE, "env") == dedent(
        """
        NAME=billing
        DEBUG=false
        REPLICAS=3
        RATIO=0.25
        TIMEOUT=1m30s
        MAX_BODY=512MiB
        PASSWORD=hunter2
        NOTE=
        TAGS_0=eu
        TAGS_1=prod
        DB_HOST=db.local
        DB_PORT=5432
        DB_REPLICA_HOST=r1
        DB_REPLICA_LAG=500ms
        """
    )


def test_env_prefix_and_name_mangling() -> None:
    data = {"db-main": {"host.name": "h"}, "héllo": 1, "xs": [[1]]}
    assert emit(data, "env", env_prefix="APP_") == (
        "APP_DB_MAIN_HOST_NAME=h\nAPP_H_LLO=1\nAPP_XS_0_0=1\n"
    )


def test_env_quoting() -> None:
    data = {
        "bare": "a-Z_0.9/x:y@z+w",
        "empty": "",
        "space": "a b",
        "quote": 'say "hi"',
        "backslash": "a\\b",
        "newline": "l1\nl2\r\tx",
        "dollar": "$HOME and $",
        "single": "it's #1 = ok",
        "unicode": "héllo ☃",
        "trailing": "C:\\dir\\",
        "float": 1e-07,
    }
    assert emit(data, "env") == dedent(
        r"""
        BARE=a-Z_0.9/x:y@z+w
        EMPTY=""
        SPACE="a b"
        QUOTE="say \"hi\""
        BACKSLASH="a\\b"
        NEWLINE="l1\nl2\r\tx"
        DOLLAR="$HOME and $"
        SINGLE="it's #1 = ok"
        UNICODE="héllo ☃"
        TRAILING=C:\dir\
        FLOAT=1e-07
        """
    )


def test_properties_sample() -> None:
    assert emit(SAMPLE, "properties") == dedent(
        """
        name=billing
        debug=false
        replicas=3
        ratio=0.25
        timeout=1m30s
        max_body=512MiB
        password=hunter2
        note=
        tags.0=eu
        tags.1=prod
        db.host=db.local
        db.port=5432
        db.replica.host=r1
        db.replica.lag=500ms
        """
    )


def test_properties_escaping() -> None:
    data = {
        "k ey:=#!\\": " lead and trail ",
        "url": "http://a=b#c!d",
        "multi": "l1\nl2\r\t\f",
        "uni": "é☃😀\x01\x7f",
        "é": "back\\slash",
    }
    assert emit(data, "properties") == "k\\ ey\\:\\=\\#\\!\\\\=\\ lead and trail \n" + dedent(
        r"""
        url=http://a=b#c!d
        multi=l1\nl2\r\t\f
        uni=\u00E9\u2603\uD83D\uDE00\u0001\u007F
        \u00E9=back\\slash
        """
    )


def test_empty_containers_in_flat_formats_write_nothing() -> None:
    assert emit({"a": {}, "b": []}, "env") == "\n"
    assert emit({"a": {}, "b": []}, "properties") == "\n"
    assert emit({}, "ini") == "\n"


# --- errors ----------------------------------------------------------------------------


def raises(data: object, fmt: str, path: tuple[str | int, ...], **kw: str) -> EmitError:
    with pytest.raises(EmitError) as info:
        emit(data, fmt, **kw)
    error = info.value
    assert error.path == path
    # one short line, lower case, no final period
    assert "\n" not in error.message
    assert error.message == error.message.strip()
    assert not error.message.endswith(".")
    assert error.message[0] == error.message[0].lower()
    return error


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_json_rejects_non_finite_floats(value: float) -> None:
    raises({"a": [1, value]}, "json", ("a", 1))
    raises(value, "json", ())


@pytest.mark.parametrize("fmt", FORMATS)
def test_rejects_non_plain_data(fmt: str) -> None:
    error = raises({"a": {"b": {1, 2}}}, fmt, ("a", "b"))
    assert "`set`" in error.message
    raises({"a": {"b": {1: "x"}}}, fmt, ("a", "b"))


@pytest.mark.parametrize("fmt", ["toml", "ini", "env", "properties"])
@pytest.mark.parametrize("root", [[1], "x", 3, None])
def test_root_must_be_object(fmt: str, root: object) -> None:
    error = raises(root, fmt, ())
    assert "root" in error.message


def test_toml_null_in_list() -> None:
    error = raises({"a": {"b": [1, None]}}, "toml", ("a", "b", 1))
    assert error.message == "toml cannot express `null` inside a list"


def test_toml_int_range() -> None:
    assert emit({"a": 2**63 - 1, "b": -(2**63)}, "toml").startswith("a = 9223372036854775807")
    raises({"a": [2**63]}, "toml", ("a", 0))


def test_ini_top_level_scalar_and_list() -> None:
    error = raises({"s": {}, "port": 1}, "ini", ("port",))
    assert "top-level" in error.message
    raises({"hosts": ["a"]}, "ini", ("hosts",))


def test_ini_nested_list() -> None:
    raises({"s": {"a": [1, [2]]}}, "ini", ("s", "a", 1))
    raises({"s": {"a": [{"x": 1}]}}, "ini", ("s", "a", 0))


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("a\nb", ("s", "k")),
        ("a\rb", ("s", "k")),
        (" a", ("s", "k")),
        ("a\t", ("s", "k")),
        (Secret(" pw"), ("s", "k")),
        (["a", "b,c"], ("s", "k", 1)),
        (["a", " b"], ("s", "k", 1)),
        (["a\n"], ("s", "k", 0)),
    ],
)
def test_ini_rejects_unreadable_values(value: object, path: tuple[str | int, ...]) -> None:
    raises({"s": {"k": value}}, "ini", path)


@pytest.mark.parametrize("key", ["", " k", "k ", "a=b", "a:b", "#k", ";k", "[k]", "a\nb"])
def test_ini_rejects_unreadable_keys(key: str) -> None:
    raises({"s": {key: 1}}, "ini", ("s", key))


def test_ini_rejects_keys_differing_by_case() -> None:
    error = raises({"s": {"Key": 1, "other": 2, "KEY": 3}}, "ini", ("s", "KEY"))
    assert "`Key`" in error.message
    # the same key in different sections is fine
    assert emit({"a": {"Key": 1}, "b": {"key": 2}}, "ini") == "[a]\nKey = 1\n\n[b]\nkey = 2\n"


def test_ini_rejects_bad_section_names() -> None:
    raises({"": {"k": 1}}, "ini", ("",))
    raises({"DEFAULT": {"k": 1}}, "ini", ("DEFAULT",))
    raises({"a\nb": {"k": 1}}, "ini", ("a\nb",))
    error = raises({"a": {"b": {"k": 1}}, "a.b": {"j": 2}}, "ini", ("a.b",))
    assert "`a.b`" in error.message


def test_env_name_clash_names_both_paths() -> None:
    error = raises({"db": {"host": 1}, "db_host": 2}, "env", ("db_host",))
    assert error.message == "env name `DB_HOST` is also used by `db.host`"
    raises({"a": "x", "A": "y"}, "env", ("A",))
    raises({"a": [1], "a_0": 2}, "env", ("a_0",))


def test_env_rejects_unexpressible_values() -> None:
    raises({"a": [" x\\"]}, "env", ("a", 0))
    raises({"a": "x #y\\"}, "env", ("a",))
    assert emit({"a": "x y\\"}, "env") == "A=x y\\\n"
    raises({"a": '"quoted\\'}, "env", ("a",))
    raises({"a": "l1\nl2\\"}, "env", ("a",))


def test_env_writes_a_reference_as_is() -> None:
    # `cflc import` keeps `${NAME}` as written, so writing it back must give the same text.
    assert emit({"a": "${HOME}/x", "b": "$${Y}"}, "env") == 'A="${HOME}/x"\nB="$${Y}"\n'


def test_env_rejects_empty_name_and_bad_prefix() -> None:
    raises({"": 1}, "env", ("",))
    raises({"a": 1}, "env", (), env_prefix="APP-")


def test_properties_clash() -> None:
    error = raises({"a": {"b": 1}, "a.b": 2}, "properties", ("a.b",))
    assert error.message == "property `a.b` is also set by `a.b`"
    raises({"a": [1], "a.0": 2}, "properties", ("a.0",))


def test_emit_error_str_and_fields() -> None:
    error = EmitError(("db", "hosts", 0), "bad `x`")
    assert error.path == ("db", "hosts", 0)
    assert error.message == "bad `x`"
    assert str(error) == "db.hosts[0]: bad `x`"
    assert str(EmitError((), "root problem")) == "root problem"


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="xml"):
        emit({}, "xml")


# --- determinism, order, newline -------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_deterministic_and_order_preserving(fmt: str) -> None:
    data = INI_SAMPLE if fmt == "ini" else SAMPLE
    first = emit(data, fmt)
    assert emit(data, fmt) == first
    assert first.endswith("\n") and not first.endswith("\n\n")
    # keys are written in insertion order, not sorted
    reordered = {"zeta": {"k": 1}, "alpha": {"k": 2}}
    out = emit(reordered, fmt)
    assert out.lower().index("zeta") < out.lower().index("alpha")


def test_determinism_across_processes() -> None:
    # String hashing is randomised per process; output must not depend on it.
    code = (
        "import sys, hashlib\n"
        "from cfglang.emit import emit, FORMATS\n"
        "d = {'s': {'b': 1, 'a': [1, 2], 'c': {'x': 'y'}}}\n"
        "print(hashlib.sha256(''.join(emit(d, f) for f in FORMATS).encode()).hexdigest())\n"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            cwd=ROOT,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1


def test_third_party_libraries_are_imported_lazily() -> None:
    code = (
        "import sys\n"
        "import cfglang.emit as e\n"
        "e.emit({'a': 1}, 'json'); e.emit({'a': {'b': 1}}, 'ini')\n"
        "print(sorted(m for m in ('yaml', 'tomli_w') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "[]"


# --- format_for_filename ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("billing.json", "json"),
        ("out/app.yaml", "yaml"),
        ("app.yml", "yaml"),
        ("pyproject.toml", "toml"),
        ("app.ini", "ini"),
        ("prod.env", "env"),
        (".env", "env"),
        ("dir/.env", "env"),
        ("app.properties", "properties"),
        ("a.b.json", "json"),
        ("app", None),
        ("app.txt", None),
        ("json", None),
        (".envrc", None),
        ("env", None),
        ("app.JSON", None),
        ("dir.json/app", None),
        ("", None),
    ],
)
def test_format_for_filename(name: str, fmt: str | None) -> None:
    assert format_for_filename(name) == fmt


def test_formats_tuple() -> None:
    assert FORMATS == ("json", "yaml", "toml", "ini", "env", "properties")
