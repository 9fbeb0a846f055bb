"""Property tests: every emitter's output reads back, with the format's standard parser, to
the data it came from (for ini, env and properties: to the flattened string form).

Values include awkward text (spaces, ``=``, ``:``, ``#``, quotes, ``$``, backslashes, line
breaks, unicode). Where a format cannot express a value the emitter must raise `EmitError`
for the right path; it must never write something that reads back differently.

The expected results are computed here independently of the emitters' own helpers.
"""

from __future__ import annotations

import configparser
import io
import json
import math
import re
import tomllib
from collections.abc import Iterator
from typing import Any

import jproperties
import pytest
import yaml
from dotenv import dotenv_values
from hypothesis import given, settings
from hypothesis import strategies as st

from cfglang.emit import EmitError, emit
from cfglang.values import Duration, Secret, Size

# database=None: derandomized runs gain nothing from an example database, and the tests
# must not leave a .hypothesis directory in the repository.
SETTINGS = settings(max_examples=100, deadline=None, derandomize=True, database=None)

Path = tuple[str | int, ...]

# --- strategies ------------------------------------------------------------------------

AWKWARD_CHARS = [*" =:#!;,\"'$\\{}[]%@\n\r\t\f\x0b\x00\x7fé☃😀\u2028\x85", "${", "a", "Z"]
awkward_text = st.one_of(
    st.text(max_size=10),
    st.lists(st.sampled_from(AWKWARD_CHARS), max_size=8).map("".join),
    st.sampled_from(["", " ", "no", "y", "on", "1.0", "0x1", "~", "null", "2024-01-01", "-.5"]),
    st.sampled_from(["1e3", "0o17", "08", "x\\", " a ", '"q"', "'q'", "${HOME}", "a #b"]),
)
safe_text = st.from_regex(r"[A-Za-z0-9_./:@+-]{1,12}", fullmatch=True)
# Realistic keys: lower case, no separators, so distinct paths never flatten to one name.
safe_key = st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True)
section_key = st.from_regex(r"[a-z][a-z0-9_-]{0,5}", fullmatch=True)
awkward_key = st.one_of(safe_key, awkward_text)


def named(text: st.SearchStrategy[str]) -> Any:
    return st.one_of(
        st.integers(-(10**12), 10**12).map(Duration),
        st.integers(0, 2**52).map(Size),
        text.map(Secret),
    )


ints = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers())
finite = st.floats(allow_nan=False, allow_infinity=False)


def scalars(text: st.SearchStrategy[str], floats: st.SearchStrategy[float]) -> Any:
    return st.one_of(st.none(), st.booleans(), ints, floats, text, named(text))


def trees(leaves: Any, keys: Any) -> Any:
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)
        ),
        max_leaves=16,
    )


def objects(leaves: Any, keys: Any) -> Any:
    return st.dictionaries(keys, trees(leaves, keys), max_size=5)


# --- independent models ----------------------------------------------------------------


def plain(value: object) -> object:
    """What a typed reader (json, yaml) gives back: named values become their text."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Duration | Size):
        return str(value)
    if isinstance(value, Secret):
        return value.value
    return value


def text_of(value: object) -> str:
    """How the flattening formats write one scalar."""
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Secret):
        return value.value
    return str(value)


def leaves(value: object, path: Path = ()) -> Iterator[tuple[Path, object]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, (*path, i))
    else:
        yield path, value


def lookup(data: object, path: Path) -> object:
    for part in path:
        data = data[part]  # type: ignore[index]
    return data


def nan_safe(value: object) -> object:
    """nan != nan; compare a marker instead."""
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    if isinstance(value, dict):
        return {k: nan_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nan_safe(v) for v in value]
    return value


def check_output_shape(out: str) -> None:
    assert out.endswith("\n") and not out.endswith("\n\n")


# --- json ------------------------------------------------------------------------------


@SETTINGS
@given(trees(scalars(awkward_text, finite), awkward_key))
def test_json_roundtrip(data: object) -> None:
    out = emit(data, "json")
    check_output_shape(out)
    assert json.loads(out) == plain(data)
    assert emit(data, "json") == out


@SETTINGS
@given(trees(scalars(awkward_text, st.floats()), awkward_key))
def test_json_rejects_only_non_finite(data: object) -> None:
    bad = [p for p, v in leaves(data) if isinstance(v, float) and not math.isfinite(v)]
    if not bad:
        assert json.loads(emit(data, "json")) == plain(data)
        return
    with pytest.raises(EmitError) as info:
        emit(data, "json")
    assert info.value.path == bad[0]


# --- yaml ------------------------------------------------------------------------------


@SETTINGS
@given(trees(scalars(awkward_text, st.floats()), awkward_key))
def test_yaml_roundtrip(data: object) -> None:
    out = emit(data, "yaml")
    check_output_shape(out)
    assert nan_safe(yaml.safe_load(out)) == nan_safe(plain(data))


@SETTINGS
@given(trees(scalars(awkward_text, st.floats()), awkward_key))
def test_yaml_nodes_built_directly_print_as_pyyaml_would(data: object) -> None:
    # emit_yaml builds PyYAML's nodes itself (faster); the text must be exactly what
    # PyYAML's own representer gives.
    from cfglang.emit.yaml_ import reference_yaml

    assert emit(data, "yaml") == reference_yaml(data)


@SETTINGS
@given(
    st.sampled_from(["y", "Y", "n", "N", "-.5", "+.5", "1e3", "+1e-3", "0o17", "08", "0x1F"])
    | st.from_regex(r"[-+]?[0-9]{1,4}(\.[0-9]{0,3})?([eE][-+]?[0-9]{1,2})?", fullmatch=True)
)
def test_yaml_quotes_numbers_and_flags(text: str) -> None:
    out = emit({"k": text}, "yaml")
    assert out.startswith(("k: '", 'k: "')), out
    assert yaml.safe_load(out) == {"k": text}


# --- toml ------------------------------------------------------------------------------


def toml_expected(value: object) -> object:
    if isinstance(value, dict):
        return {k: toml_expected(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [toml_expected(v) for v in value]
    return plain(value)


def toml_first_error(value: object, path: Path = ()) -> Path | None:
    if isinstance(value, dict):
        for k, v in value.items():
            if v is not None and (found := toml_first_error(v, (*path, k))) is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if v is None:
                return (*path, i)
            if (found := toml_first_error(v, (*path, i))) is not None:
                return found
    elif isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**63:
            return path
    return None


@SETTINGS
@given(objects(scalars(awkward_text, st.floats()), awkward_key))
def test_toml_roundtrip(data: dict[str, object]) -> None:
    bad = toml_first_error(data)
    if bad is not None:
        with pytest.raises(EmitError) as info:
            emit(data, "toml")
        assert info.value.path == bad
        return
    out = emit(data, "toml")
    check_output_shape(out)
    assert nan_safe(tomllib.loads(out)) == nan_safe(toml_expected(data))


# --- ini -------------------------------------------------------------------------------


def ini_scalars(text: Any) -> Any:
    return scalars(text, st.floats())


def ini_tables(text: Any, keys: Any) -> Any:
    """Objects whose values are scalars, lists of scalars or (nested) objects."""
    value = ini_scalars(text) | st.lists(ini_scalars(text), max_size=3)
    return st.recursive(
        st.dictionaries(keys, value, max_size=4),
        lambda sub: st.dictionaries(keys, value | sub, max_size=4),
        max_leaves=6,
    )


def ini_expected(data: dict[str, Any]) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}

    def walk(name: str, table: dict[str, Any]) -> None:
        entries = {
            k.lower(): ",".join(text_of(x) for x in v) if isinstance(v, list) else text_of(v)
            for k, v in table.items()
            if not isinstance(v, dict)
        }
        subs = [(k, v) for k, v in table.items() if isinstance(v, dict)]
        if entries or not subs:
            sections[name] = entries
        for k, v in subs:
            walk(f"{name}.{k}", v)

    for name, table in data.items():
        walk(name, table)
    return sections


def ini_read(out: str) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(out)
    return {s: dict(parser[s]) for s in parser.sections()}


def ini_value_error(path: Path, value: object) -> Path | None:
    """Where an ini value must be refused: line breaks, surrounding space, commas in items."""

    def bad(text: str) -> bool:
        return "\n" in text or "\r" in text or text != text.strip()

    if isinstance(value, list):
        for i, item in enumerate(value):
            text = text_of(item)
            if bad(text) or "," in text:
                return (*path, i)
        return None
    return path if bad(text_of(value)) else None


def ini_first_error(data: dict[str, Any]) -> Path | None:
    """The path the ini emitter must report, in its order: scalars before subsections."""

    def walk(path: Path, table: dict[str, Any]) -> Path | None:
        for k, v in table.items():
            if not isinstance(v, dict) and (found := ini_value_error((*path, k), v)):
                return found
        for k, v in table.items():
            if isinstance(v, dict) and (found := walk((*path, k), v)):
                return found
        return None

    for name, table in data.items():
        if found := walk((name,), table):
            return found
    return None


@SETTINGS
@given(st.dictionaries(section_key, ini_tables(safe_text, section_key), max_size=4))
def test_ini_roundtrip_safe(data: dict[str, Any]) -> None:
    out = emit(data, "ini")
    check_output_shape(out)
    assert ini_read(out) == ini_expected(data)


@SETTINGS
@given(st.dictionaries(section_key, ini_tables(awkward_text, section_key), max_size=4))
def test_ini_roundtrip_awkward_values(data: dict[str, Any]) -> None:
    bad = ini_first_error(data)
    if bad is not None:
        with pytest.raises(EmitError) as info:
            emit(data, "ini")
        assert info.value.path == bad
        return
    assert ini_read(emit(data, "ini")) == ini_expected(data)


@SETTINGS
@given(st.dictionaries(awkward_key, ini_tables(awkward_text, awkward_key), max_size=4))
def test_ini_never_loses_data(data: dict[str, Any]) -> None:
    try:
        out = emit(data, "ini")
    except EmitError as error:
        lookup(data, error.path)  # the error names a real place in the data
        return
    assert ini_read(out) == ini_expected(data)


# --- env -------------------------------------------------------------------------------


def env_name(path: Path, prefix: str = "") -> str:
    return prefix + "_".join(re.sub(r"[^A-Za-z0-9]", "_", str(p)).upper() for p in path)


def env_value_ok(value: object) -> bool:
    """python-dotenv cannot give back, when quoting is needed, a trailing backslash that is
    not writable bare. (`${NAME}` is written as is, a reference for the loader.)"""
    text = text_of(value)
    if text.endswith("\\") and not re.fullmatch(r"[A-Za-z0-9_./:@+-]+", text):
        return (
            "\n" not in text
            and "\r" not in text
            and text == text.strip()
            and text[0] not in "'\""
            and not re.search(r"\s#", text)
        )
    return True


def env_check(data: dict[str, Any], prefix: str = "") -> None:
    expected: dict[str, str] = {}
    bad: Path | None = None
    for path, value in leaves(data):
        name = env_name(path, prefix)
        if not name or name in expected or not env_value_ok(value):
            bad = path
            break
        expected[name] = text_of(value)
    if bad is not None:
        with pytest.raises(EmitError) as info:
            emit(data, "env", env_prefix=prefix)
        assert info.value.path == bad
        return
    out = emit(data, "env", env_prefix=prefix)
    check_output_shape(out)
    assert dotenv_values(stream=io.StringIO(out), interpolate=False) == expected


@SETTINGS
@given(objects(scalars(safe_text, finite), safe_key), st.sampled_from(["", "APP_", "x"]))
def test_env_roundtrip_safe(data: dict[str, Any], prefix: str) -> None:
    out = emit(data, "env", env_prefix=prefix)
    expected = {env_name(p, prefix): text_of(v) for p, v in leaves(data)}
    assert dotenv_values(stream=io.StringIO(out)) == expected
    assert '"' not in out  # nothing here needs quoting


@SETTINGS
@given(objects(scalars(awkward_text, st.floats()), safe_key))
def test_env_roundtrip_awkward_values(data: dict[str, Any]) -> None:
    env_check(data)


@SETTINGS
@given(objects(scalars(awkward_text, st.floats()), awkward_key))
def test_env_roundtrip_awkward_keys(data: dict[str, Any]) -> None:
    env_check(data, "P_")


# --- properties ------------------------------------------------------------------------


def properties_read(out: str) -> dict[str, str]:
    props = jproperties.Properties()
    # Java .properties are Latin-1; our output is pure ASCII so the choice cannot matter.
    props.load(out.encode("latin-1"), "iso-8859-1")
    return {key: props[key].data for key in props}


@SETTINGS
@given(objects(scalars(awkward_text, st.floats()), awkward_key))
def test_properties_roundtrip(data: dict[str, Any]) -> None:
    expected: dict[str, str] = {}
    bad: Path | None = None
    for path, value in leaves(data):
        key = ".".join(str(p) for p in path)
        if key in expected:
            bad = path
            break
        expected[key] = text_of(value)
    if bad is not None:
        with pytest.raises(EmitError) as info:
            emit(data, "properties")
        assert info.value.path == bad
        return
    out = emit(data, "properties")
    check_output_shape(out)
    assert out.isascii()
    assert properties_read(out) == expected


@SETTINGS
@given(objects(scalars(awkward_text, st.floats()), safe_key))
def test_properties_safe_keys_never_fail(data: dict[str, Any]) -> None:
    out = emit(data, "properties")
    assert properties_read(out) == {
        ".".join(str(p) for p in path): text_of(v) for path, v in leaves(data)
    }
