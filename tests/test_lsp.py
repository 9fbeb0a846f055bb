"""The language server: unit tests of the handlers, then end-to-end over stdio.

The unit tests drive the feature functions on a `State` in process (fast, exact); the
end-to-end tests start `cflc lsp` as a subprocess with pytest-lsp and speak LSP to it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

lsp = pytest.importorskip("lsprotocol.types")
pytest_lsp = pytest.importorskip("pytest_lsp")

from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

from cfglang.lsp import completion, hover, navigation, symbols  # noqa: E402
from cfglang.lsp.analysis import State  # noqa: E402
from cfglang.lsp.diagnostics import Ranges, convert, uri_of  # noqa: E402
from cfglang.lsp.positions import LineIndex  # noqa: E402

BASE = """\
## A deployable service.
schema Service {
  ## The service name.
  name: string
  ## How many copies run.
  replicas: int = 1
  ## The port it listens on.
  port: int = 8080
  token: secret?
}

let domain = "example.com"
input tok: secret from env "CFL_LSP_TEST_TOKEN"

## The API service.
api: Service {
  name = "api"
  token = tok
}
## Copies of the worker.
replicas = 2
url = "http://$<domain>:$<api.port>"
"""

PROD = """\
extends "../base.cfl"
replicas = 6
api {
  port = 9090
}
"""


# The secret comes from the environment (a literal would draw a plain-text warning).
os.environ.setdefault("CFL_LSP_TEST_TOKEN", "s3cr3t")


def write_project(root: Path) -> tuple[Path, Path]:
    (root / "env").mkdir()
    (root / "cfl.toml").write_text('[project]\ntargets = ["env/*.cfl"]\n')
    base = root / "base.cfl"
    prod = root / "env" / "prod.cfl"
    base.write_text(BASE)
    prod.write_text(PROD)
    return base, prod


def line_of(text: str, needle: str) -> int:
    """The zero-based line of the first occurrence of ``needle``."""
    return text[: text.index(needle)].count("\n")


def offset_of(text: str, needle: str, nth: int = 0, delta: int = 0) -> int:
    i = -1
    for _ in range(nth + 1):
        i = text.index(needle, i + 1)
    return i + delta


# ---- positions -----------------------------------------------------------------------------


def test_positions_ascii_and_lines() -> None:
    idx = LineIndex("ab\ncd\r\nef")
    assert idx.position(0) == (0, 0)
    assert idx.position(4) == (1, 1)
    assert idx.position(7) == (2, 0)
    assert idx.offset(1, 1) == 4
    assert idx.offset(1, 99) == 6  # clamped to the line's end (before \n, after \r)
    assert idx.offset(9, 0) == len(idx.text)


@pytest.mark.parametrize(("encoding", "col"), [("utf-16", 9), ("utf-8", 12), ("utf-32", 8)])
def test_positions_non_ascii(encoding: str, col: int) -> None:
    text = 'x = "é😀" + 1\n'
    idx = LineIndex(text, encoding)
    off = text.index('"', 5) + 1  # after the closing quote
    assert idx.position(off) == (0, col)
    assert idx.offset(0, col) == off


def test_positions_in_the_middle_of_a_surrogate_pair_round_down() -> None:
    idx = LineIndex("😀x")
    assert idx.offset(0, 1) == 1  # rounds to the next code point boundary
    assert idx.offset(0, 2) == 1
    assert idx.position(2) == (0, 3)


def test_diagnostic_ranges_count_utf16_units(tmp_path: Path) -> None:
    from cfglang.api import compile

    f = tmp_path / "a.cfl"
    f.write_text('s = "😀😀"; n: int = "x"\n')
    res = compile(str(f))
    (d,) = convert(res.diagnostics, Ranges())
    assert d.code == "E0302"
    start = f.read_text().index('"x"')
    assert d.range.start == lsp.Position(0, start + 2)  # two astral characters: +1 each
    assert d.source == "cflc"
    assert d.severity == lsp.DiagnosticSeverity.Error


# ---- handlers in process -------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> tuple[State, str, str]:
    base, prod = write_project(tmp_path)
    state = State()
    state.set_buffer(str(base), BASE)
    state.set_buffer(str(prod), PROD)
    return state, str(base), str(prod)


def _markdown(h: Any) -> str:
    assert h is not None
    return str(h.contents.value)


def test_hover_field_shows_value_site_type_and_doc(project: tuple[State, str, str]) -> None:
    state, _base, prod = project
    text = hover.hover(state, prod, offset_of(PROD, "replicas"), Ranges())
    md = _markdown(text)
    assert "```json\n6\n```" in md
    assert "set by `env/prod.cfl:2:1`" in md
    assert f"overrides `base.cfl:{line_of(BASE, 'replicas = 2') + 1}:1`" in md
    assert "Copies of the worker." in md  # the doc comment of the base definition


def test_hover_field_in_typed_block_shows_schema_type_and_doc(
    project: tuple[State, str, str],
) -> None:
    state, _base, prod = project
    md = _markdown(hover.hover(state, prod, offset_of(PROD, "port"), Ranges()))
    assert "9090" in md
    assert "`int`" in md
    assert "The port it listens on." in md


def test_hover_redacts_secrets(project: tuple[State, str, str]) -> None:
    state, base, _ = project
    md = _markdown(hover.hover(state, base, offset_of(BASE, "token = "), Ranges()))
    assert "s3cr3t" not in md
    assert "<secret>" in md


def test_hover_names(project: tuple[State, str, str]) -> None:
    state, base, _ = project
    md = _markdown(hover.hover(state, base, offset_of(BASE, "domain", 1), Ranges()))
    assert 'let domain = "example.com"' in md
    md = _markdown(hover.hover(state, base, offset_of(BASE, "Service", 1), Ranges()))
    assert "schema Service" in md and "A deployable service." in md


def test_definition_of_overridden_field_is_the_base(project: tuple[State, str, str]) -> None:
    state, base, prod = project
    (loc,) = navigation.definition(state, prod, offset_of(PROD, "replicas"), Ranges())
    assert loc.uri == uri_of(base)
    assert loc.range.start == lsp.Position(line_of(BASE, "replicas = 2"), 0)
    locs = navigation.definition(state, prod, offset_of(PROD, "port"), Ranges())
    assert [(x.uri, x.range.start.line) for x in locs] == [
        (uri_of(base), line_of(BASE, "port: int"))
    ]


def test_definition_of_names_and_paths(project: tuple[State, str, str]) -> None:
    state, base, prod = project
    (loc,) = navigation.definition(state, base, offset_of(BASE, "domain", 1), Ranges())
    assert loc.range.start == lsp.Position(line_of(BASE, "let domain"), 4)
    (loc,) = navigation.definition(state, prod, offset_of(PROD, "base.cfl"), Ranges())
    assert loc.uri == uri_of(base)
    (loc,) = navigation.definition(state, base, offset_of(BASE, "port>"), Ranges())
    # `api.port` is set nowhere: the schema's field declares it
    assert loc.range.start == lsp.Position(line_of(BASE, "port: int"), 2)


def test_references_and_rename_of_a_field_across_files(project: tuple[State, str, str]) -> None:
    state, base, prod = project
    refs = navigation.references(state, base, offset_of(BASE, "replicas = 2"), True, Ranges())
    assert sorted((r.uri, r.range.start.line) for r in refs) == sorted(
        [(uri_of(base), line_of(BASE, "replicas = 2")), (uri_of(prod), 1)]
    )
    edit = navigation.rename(state, prod, offset_of(PROD, "replicas"), "copies", Ranges())
    assert edit is not None and edit.changes is not None
    assert {u: [e.new_text for e in es] for u, es in edit.changes.items()} == {
        uri_of(base): ["copies"],
        uri_of(prod): ["copies"],
    }


def test_rename_let(project: tuple[State, str, str]) -> None:
    state, base, _ = project
    edit = navigation.rename(state, base, offset_of(BASE, "domain"), "zone", Ranges())
    assert edit is not None and edit.changes is not None
    assert sorted(e.range.start.line for e in edit.changes[uri_of(base)]) == [
        line_of(BASE, "let domain"),
        line_of(BASE, "url ="),
    ]
    assert navigation.rename(state, base, offset_of(BASE, "domain"), "not a name", Ranges()) is None


def test_completion_in_typed_block_lists_unset_fields(project: tuple[State, str, str]) -> None:
    state, _base, prod = project
    text = PROD.replace("  port = 9090\n", "  port = 9090\n  \n")
    state.set_buffer(prod, text)
    items = completion.complete(state, prod, offset_of(text, "  \n", delta=2)).items
    fields = [i for i in items if i.kind == lsp.CompletionItemKind.Field]
    assert [f.label for f in fields] == ["name", "replicas", "token"]
    assert fields[1].detail == "int"
    assert fields[1].documentation is not None
    assert "How many copies run." in fields[1].documentation.value


def test_completion_while_the_buffer_does_not_parse(project: tuple[State, str, str]) -> None:
    state, _base, prod = project
    state.module(prod)  # a good parse first
    text = PROD.replace("  port = 9090\n", "  port = 9090\n  re\n")
    state.set_buffer(prod, text)
    items = completion.complete(state, prod, offset_of(text, "  re", delta=4)).items
    assert "replicas" in [i.label for i in items if i.kind == lsp.CompletionItemKind.Field]
    text += "x = "
    state.set_buffer(prod, text)
    items = completion.complete(state, prod, len(text)).items
    labels = {i.label for i in items}
    assert {"len", "import", "tok", "Service"} <= labels
    # `domain` is a let of the base: a let is never seen from an extending module (the
    # evaluator says E0201 unknown name), so it is not offered there.
    assert "domain" not in labels
    assert next(i for i in items if i.label == "join").detail == (
        "join(items: list, sep: string) -> string"
    )


def test_symbols_tree(project: tuple[State, str, str]) -> None:
    state, base, _ = project
    m = state.module(base)
    assert m is not None
    syms = symbols.document_symbols(m.tree, Ranges())
    assert [(s.name, s.kind) for s in syms] == [
        ("Service", lsp.SymbolKind.Struct),
        ("domain", lsp.SymbolKind.Variable),
        ("tok", lsp.SymbolKind.Property),
        ("api", lsp.SymbolKind.Object),
        ("replicas", lsp.SymbolKind.Field),
        ("url", lsp.SymbolKind.Field),
    ]
    assert [c.name for c in syms[0].children or []] == ["name", "replicas", "port", "token"]


OUTPUTS = """\
services = { web = { port = 80 }; api = { port = 81 } }
for name, svc in services {
  output "$<name>.json" = svc
  if name == "web" {
    output "web-only.yaml" = svc
  }
}
"""


def test_outputs_inside_for_and_if(tmp_path: Path) -> None:
    # An `output` in a module-level `for`/`if`: listed in the outline (by its name as
    # written), its name's substitution is a use of the loop variable, and it checks.
    from cfglang.lsp.server import CflServer

    path = str(tmp_path / "main.cfl")
    (tmp_path / "main.cfl").write_text(OUTPUTS)
    state = State()
    state.set_buffer(path, OUTPUTS)
    m = state.module(path)
    assert m is not None
    syms = symbols.document_symbols(m.tree, Ranges())
    flat: list[tuple[str, Any]] = []

    def walk(items: Sequence[Any]) -> None:
        for sym in items:
            flat.append((sym.name, sym.kind))
            walk(sym.children or [])

    walk(syms)
    assert ('"$<name>.json"', lsp.SymbolKind.File) in flat
    assert ("web-only.yaml", lsp.SymbolKind.File) in flat
    (loc,) = navigation.definition(state, path, offset_of(OUTPUTS, "name", 1), Ranges())
    assert loc.range.start.line == line_of(OUTPUTS, "for name")
    md = _markdown(hover.hover(state, path, offset_of(OUTPUTS, "svc", 1), Ranges()))
    assert "svc" in md
    srv = CflServer()
    srv.state = state
    assert srv.check([path]) == {uri_of(path): []}
    state.set_buffer(path, OUTPUTS.replace('"$<name>.json"', '"all.json"'))
    (d,) = srv.check([path])[uri_of(path)]
    assert d.code == "E0603" and "two outputs are named `all.json`" in d.message


def test_edit_to_base_rechecks_dependents(project: tuple[State, str, str]) -> None:
    from cfglang.lsp.server import CflServer

    state, base, prod = project
    srv = CflServer()
    srv.state = state
    out = srv.check([base, prod])
    assert out == {uri_of(base): [], uri_of(prod): []}
    state.set_buffer(base, BASE.replace("port: int = 8080", 'port: string = "8080"'))
    out = srv.check([base])
    assert [(d.code, d.range.start.line) for d in out[uri_of(prod)]] == [("E0302", 3)]
    assert out[uri_of(base)] == []
    state.set_buffer(base, BASE)
    out = srv.check([base])
    assert out[uri_of(prod)] == [] and not any(out.values())  # prod's error is cleared


# ---- end to end over stdio -----------------------------------------------------------------

SERVER = [sys.executable, "-c", "from cfglang.cli import run; run()", "lsp"]


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    await lsp_client.initialize_session(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
    yield
    await lsp_client.shutdown_session()


async def wait_for(
    client: LanguageClient, uri: str, pred: Callable[[Sequence[Any]], bool], timeout: float = 10.0
) -> Sequence[Any]:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        got = client.diagnostics.get(uri)
        if got is not None and pred(got):
            return got
        await asyncio.sleep(0.02)
    raise AssertionError(f"no matching diagnostics for {uri}: {client.diagnostics.get(uri)}")


def open_doc(client: LanguageClient, path: Path, text: str | None = None) -> str:
    uri = uri_of(str(path))
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            lsp.TextDocumentItem(
                uri=uri,
                language_id="cfl",
                version=1,
                text=path.read_text() if text is None else text,
            )
        )
    )
    return uri


def change_doc(client: LanguageClient, uri: str, text: str, version: int) -> None:
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(version=version, uri=uri),
            [lsp.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


def pos(text: str, needle: str, nth: int = 0) -> lsp.Position:
    line, col = LineIndex(text).position(offset_of(text, needle, nth))
    return lsp.Position(line, col)


@pytest.mark.asyncio
async def test_e2e_diagnostics_follow_an_edit_to_the_base(
    client: LanguageClient, tmp_path: Path
) -> None:
    base, prod = write_project(tmp_path)
    prod_text = PROD + 'api.replicas = "many"\n'
    prod.write_text(prod_text)
    base_uri = open_doc(client, base)
    prod_uri = open_doc(client, prod)
    got = await wait_for(client, prod_uri, lambda d: len(d) == 1)
    # Identical to the CLI's: same code, message and position.
    cli = subprocess.run(
        [
            sys.executable,
            "-c",
            "from cfglang.cli import run; run()",
            "check",
            "--error-format",
            "json",
            "--no-cache",
            str(prod),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    expected = [json.loads(line) for line in cli.stderr.splitlines() if line.startswith("{")]
    assert [
        (d.code, d.message.split("\n")[0], d.range.start.line + 1, d.range.start.character + 1)
        for d in got
    ] == [(e["code"], e["message"], e["line"], e["column"]) for e in expected]
    # Edits to the base re-check prod: a string `replicas` fixes it, a string `port` breaks
    # it again (at prod's `port = 9090`).
    change_doc(client, base_uri, BASE.replace("replicas: int = 1", "replicas: string"), 2)
    await wait_for(client, prod_uri, lambda d: len(d) == 0)
    change_doc(client, base_uri, BASE.replace("port: int = 8080", "port: string"), 3)
    got = await wait_for(client, prod_uri, lambda d: len(d) == 2)
    assert sorted((d.code, d.range.start.line) for d in got) == [("E0302", 3), ("E0302", 5)]
    change_doc(client, base_uri, BASE.replace("\nreplicas = 2", "\nreplicas = 2 +"), 4)
    await wait_for(client, base_uri, lambda d: any(x.code.startswith("E000") for x in d))


@pytest.mark.asyncio
async def test_e2e_hover_definition_completion_symbols_rename(
    client: LanguageClient, tmp_path: Path
) -> None:
    base, prod = write_project(tmp_path)
    base_uri = open_doc(client, base)
    prod_uri = open_doc(client, prod)
    await wait_for(client, prod_uri, lambda d: len(d) == 0)
    doc = lsp.TextDocumentIdentifier(prod_uri)
    h = await client.text_document_hover_async(lsp.HoverParams(doc, pos(PROD, "replicas")))
    assert h is not None and "6" in h.contents.value and "env/prod.cfl:2:1" in h.contents.value
    defs = await client.text_document_definition_async(
        lsp.DefinitionParams(doc, pos(PROD, "replicas"))
    )
    assert isinstance(defs, list) and defs[0].uri == base_uri
    assert defs[0].range.start == lsp.Position(line_of(BASE, "replicas = 2"), 0)
    text = PROD.replace("  port = 9090\n", "  port = 9090\n  \n")
    change_doc(client, prod_uri, text, 2)
    res = await client.text_document_completion_async(
        lsp.CompletionParams(doc, lsp.Position(pos(text, "  \n").line, 2))
    )
    assert res is not None
    items = res.items if isinstance(res, lsp.CompletionList) else res
    assert [i.label for i in items if i.kind == lsp.CompletionItemKind.Field] == [
        "name",
        "replicas",
        "token",
    ]
    syms = await client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(lsp.TextDocumentIdentifier(base_uri))
    )
    assert syms is not None and [s.name for s in syms][:2] == ["Service", "domain"]
    edit = await client.text_document_rename_async(
        lsp.RenameParams(lsp.TextDocumentIdentifier(base_uri), pos(BASE, "domain"), "zone")
    )
    assert edit is not None and edit.changes is not None
    assert len(edit.changes[base_uri]) == 2
    refs = await client.text_document_references_async(
        lsp.ReferenceParams(
            text_document=lsp.TextDocumentIdentifier(base_uri),
            position=pos(BASE, "replicas = 2"),
            context=lsp.ReferenceContext(include_declaration=True),
        )
    )
    assert refs is not None and {r.uri for r in refs} == {base_uri, prod_uri}


@pytest.mark.asyncio
async def test_e2e_formatting(client: LanguageClient, tmp_path: Path) -> None:
    pytest.importorskip("cfglang.tools.fmt")
    f = tmp_path / "a.cfl"
    text = "a   =  1\nb= { c=2 }\n"
    f.write_text(text)
    uri = open_doc(client, f)
    edits = await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(
            lsp.TextDocumentIdentifier(uri), lsp.FormattingOptions(tab_size=2, insert_spaces=True)
        )
    )
    from cfglang.tools.fmt import format_source

    assert edits is not None and [e.new_text for e in edits] == [format_source(text, "a.cfl")]


def test_build_does_not_import_lsprotocol(tmp_path: Path) -> None:
    f = tmp_path / "a.cfl"
    f.write_text("a = 1\n")
    code = textwrap.dedent(f"""
        import sys
        from cfglang.cli import main
        try:
            main(["build", {str(f)!r}])
        except SystemExit:
            pass
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("lsprotocol", "pygls")))
    """)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "CFLC_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
