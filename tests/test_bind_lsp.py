"""The language server's go to definition follows the evaluator's name lookup.

Each case is one where the server's former lookup (`lsp/model.py` walking the tree on
its own) disagreed with `Evaluator._name`; it now reads `cfglang.semantic.bind`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("lsprotocol.types")

from cfglang.lsp import hover, navigation
from cfglang.lsp.analysis import State
from cfglang.lsp.diagnostics import Ranges


def definitions(tmp_path: Path, files: dict[str, str], file: str, needle: str) -> list[str]:
    """The text of the lines `definition` jumps to from the end of ``needle`` in ``file``."""
    (tmp_path / "cfl.toml").write_text("[project]\n")
    state = State()
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        state.set_buffer(str(tmp_path / name), text)
    path = str(tmp_path / file)
    offset = files[file].index(needle) + len(needle) - 1
    out = []
    for loc in navigation.definition(state, path, offset, Ranges()):
        text = files[Path(loc.uri).name]
        out.append(text.splitlines()[loc.range.start.line].strip())
    return out


def test_a_base_let_is_not_seen_from_the_child(tmp_path: Path) -> None:
    files = {
        "base.cfl": "let domain = 1\na = domain\n",
        "main.cfl": 'extends "base.cfl"\nx = domain\n',
    }
    assert definitions(tmp_path, files, "main.cfl", "x = domain") == []
    assert definitions(tmp_path, files, "base.cfl", "a = domain") == ["let domain = 1"]


def test_a_template_parameter_shadows_the_body_field(tmp_path: Path) -> None:
    files = {"main.cfl": 'template T(name) {\n  name = "n"\n  x = name\n}\na = T(1)\n'}
    assert definitions(tmp_path, files, "main.cfl", "x = name") == ["template T(name) {"]


def test_a_for_variable_shadows_the_body_field(tmp_path: Path) -> None:
    files = {"main.cfl": "srv {\n  for port in [1] {\n    port = 2\n    seen = port\n  }\n}\n"}
    assert definitions(tmp_path, files, "main.cfl", "seen = port") == ["for port in [1] {"]


def test_a_field_shadows_an_import(tmp_path: Path) -> None:
    files = {
        "lib.cfl": "a = 1\n",
        "main.cfl": 'import "lib.cfl" as lib\nlib = 2\nx = lib\n',
    }
    assert definitions(tmp_path, files, "main.cfl", "x = lib") == ["lib = 2"]


def test_a_qualified_type_is_looked_up_in_the_import_alone(tmp_path: Path) -> None:
    files = {
        "types.cfl": "type Port = int\n",
        "net.cfl": 'extends "types.cfl"\ntype Host = string\n',
        "main.cfl": 'import "net.cfl" as net\nh: net.Host = "x"\np: net.Port = 1\n',
    }
    assert definitions(tmp_path, files, "main.cfl", "net.Host") == ["type Host = string"]
    assert definitions(tmp_path, files, "main.cfl", "net.Port") == []


def test_hover_names_the_parameter(tmp_path: Path) -> None:
    text = 'template T(name) {\n  name = "n"\n  x = name\n}\na = T(1)\n'
    (tmp_path / "cfl.toml").write_text("[project]\n")
    (tmp_path / "main.cfl").write_text(text)
    state = State()
    state.set_buffer(str(tmp_path / "main.cfl"), text)
    h = hover.hover(state, str(tmp_path / "main.cfl"), text.index("x = name") + 5, Ranges())
    assert h is not None
    assert "parameter declared in" in str(h.contents)


# ---- scoping (docs/language.md §3.6) -----------------------------------------------------------


def test_a_fields_own_key_in_its_value_is_the_input_it_hides(tmp_path: Path) -> None:
    files = {"main.cfl": 'input region = "eu"\nsvc {\n  region = region\n}\n'}
    assert definitions(tmp_path, files, "main.cfl", "= region") == ['input region = "eu"']


def test_a_fields_own_key_with_nothing_outside_is_the_field(tmp_path: Path) -> None:
    files = {"main.cfl": "svc {\n  zone = zone\n}\n"}
    assert definitions(tmp_path, files, "main.cfl", "= zone") == ["zone = zone"]


def test_outer_goes_to_the_parameter_the_field_hides(tmp_path: Path) -> None:
    files = {
        "main.cfl": 'template T(name) {\n  db {\n    name = "m"\n    host = outer.name\n  }\n}\n'
        "a = T(1)\n"
    }
    assert definitions(tmp_path, files, "main.cfl", "outer.name") == ["template T(name) {"]
    assert definitions(tmp_path, files, "main.cfl", "outer.n") == ["template T(name) {"]


def test_hover_on_outer_names_the_parameter(tmp_path: Path) -> None:
    text = 'template T(name) {\n  db {\n    name = "m"\n    host = "$<outer.name>"\n  }\n}\n'
    text += "a = T(1)\n"
    (tmp_path / "cfl.toml").write_text("[project]\n")
    (tmp_path / "main.cfl").write_text(text)
    state = State()
    state.set_buffer(str(tmp_path / "main.cfl"), text)
    h = hover.hover(state, str(tmp_path / "main.cfl"), text.index("outer.name") + 7, Ranges())
    assert h is not None
    assert "parameter declared in" in str(h.contents)
