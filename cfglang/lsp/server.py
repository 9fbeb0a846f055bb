"""The pygls server: document sync, debounced checking and the feature handlers.

Every handler maps LSP positions to offsets, asks a feature module, and returns its
answer; the work is in `cfglang.api` (through `analysis`) and the feature modules.
Checking is debounced: a change schedules a check ``DEBOUNCE`` seconds later, and a
newer change cancels it. A check recompiles the changed file and every open file whose
last compilation loaded it, then publishes, for every file any of them reports on, the
union of the open files' diagnostics in that file (stale files are cleared).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any, BinaryIO

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from cfglang import __version__
from cfglang.diagnostics import Diagnostic
from cfglang.lsp import completion, formatting, hover, navigation, symbols
from cfglang.lsp.analysis import State
from cfglang.lsp.diagnostics import Ranges, convert, uri_of
from cfglang.lsp.positions import LineIndex
from cfglang.lsp.transport import CflProtocol, configure_logging, serve

DEBOUNCE = 0.15


def path_of(uri: str) -> str:
    path = to_fs_path(uri)
    return os.path.abspath(path if path is not None else uri)


class CflServer(LanguageServer):
    """A pygls server with the editor state of one session."""

    def __init__(self) -> None:
        super().__init__("cflc", __version__, protocol_cls=CflProtocol)
        self.state = State()
        # entry file -> file -> diagnostics located in that file
        self.reports: dict[str, dict[str, list[Diagnostic]]] = {}
        self.published: set[str] = set()
        self._pending: asyncio.Task[None] | None = None
        self._dirty: set[str] = set()

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """Serve on stdio with the resynchronising reader of `transport`."""
        assert isinstance(self.protocol, CflProtocol)
        try:
            serve(self.protocol, stdin or sys.stdin.buffer, stdout or sys.stdout.buffer)
        finally:
            self.shutdown()  # type: ignore[no-untyped-call]

    def report_server_error(self, error: Exception, source: Any) -> None:
        # pygls logs that a handler failed but not why; one line, never a traceback.
        logging.getLogger("cfglang.lsp").error("%s", error)
        super().report_server_error(error, source)

    # ---- positions ----

    @property
    def encoding(self) -> str:
        try:
            enc = self.workspace.position_encoding
        except RuntimeError:  # not initialised yet (or driven directly by a test)
            enc = None
        return str(getattr(enc, "value", enc) or "utf-16")

    def ranges(self) -> Ranges:
        return Ranges(self.encoding)

    def offset(self, uri: str, pos: lsp.Position) -> tuple[str, int]:
        path = path_of(uri)
        text = self.state.text(path) or ""
        return path, LineIndex(text, self.encoding).offset(pos.line, pos.character)

    # ---- checking ----

    def check(self, changed: list[str]) -> dict[str, list[lsp.Diagnostic]]:
        """Recompile what ``changed`` affects; return the diagnostics to publish by URI."""
        entries: list[str] = []
        for path in changed:
            entries += self.state.dependents(path)
        for path in dict.fromkeys(entries):
            if path in self.state.buffers:
                self.reports[path] = self.state.analysis(path).by_file()
        for path in list(self.reports):
            if path not in self.state.buffers:
                del self.reports[path]
        merged: dict[str, list[Diagnostic]] = {}
        for report in self.reports.values():
            for file, diags in report.items():
                merged.setdefault(file, []).extend(diags)
        ranges = self.ranges()
        out = {
            uri_of(f): convert(sorted(d, key=Diagnostic.sort_key), ranges)
            for f, d in merged.items()
        }
        for uri in self.published - set(out):
            out[uri] = []
        self.published = {u for u, d in out.items() if d}
        return out

    def publish(self, changed: list[str]) -> None:
        for uri, diags in self.check(changed).items():
            self.text_document_publish_diagnostics(
                lsp.PublishDiagnosticsParams(uri=uri, diagnostics=diags)
            )

    def schedule(self, path: str) -> None:
        self._dirty.add(path)
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()
        self._pending = asyncio.get_running_loop().create_task(self._later())

    async def _later(self) -> None:
        await asyncio.sleep(DEBOUNCE)
        dirty, self._dirty = sorted(self._dirty), set()
        self.publish(dirty)


server = CflServer()


def _sync(ls: CflServer, uri: str) -> str:
    path = path_of(uri)
    ls.state.set_buffer(path, ls.workspace.get_text_document(uri).source)
    return path


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: CflServer, params: lsp.DidOpenTextDocumentParams) -> None:
    """Check a file as soon as it is opened."""
    ls.publish([_sync(ls, params.text_document.uri)])


# Synchronous on purpose: pygls runs an `async` handler as a task, so a request sent right
# after a change (completion as the user types) could be answered from the old buffer.
# Only the check is deferred (debounced); the buffer is current before the next message.
@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: CflServer, params: lsp.DidChangeTextDocumentParams) -> None:
    """Re-check (debounced) the file and the open files that depend on it."""
    ls.schedule(_sync(ls, params.text_document.uri))


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: CflServer, params: lsp.DidSaveTextDocumentParams) -> None:
    ls.schedule(path_of(params.text_document.uri))


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: CflServer, params: lsp.DidCloseTextDocumentParams) -> None:
    """Forget the buffer; the files it was checked with fall back to the disk."""
    path = path_of(params.text_document.uri)
    ls.state.close(path)
    ls.publish(list(ls.state.buffers))


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
def on_hover(ls: CflServer, params: lsp.HoverParams) -> lsp.Hover | None:
    path, off = ls.offset(params.text_document.uri, params.position)
    return hover.hover(ls.state, path, off, ls.ranges())


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
def on_definition(ls: CflServer, params: lsp.DefinitionParams) -> list[lsp.Location]:
    path, off = ls.offset(params.text_document.uri, params.position)
    return navigation.definition(ls.state, path, off, ls.ranges())


@server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
def on_references(ls: CflServer, params: lsp.ReferenceParams) -> list[lsp.Location]:
    path, off = ls.offset(params.text_document.uri, params.position)
    return navigation.references(
        ls.state, path, off, params.context.include_declaration, ls.ranges()
    )


@server.feature(lsp.TEXT_DOCUMENT_RENAME)
def on_rename(ls: CflServer, params: lsp.RenameParams) -> lsp.WorkspaceEdit | None:
    path, off = ls.offset(params.text_document.uri, params.position)
    return navigation.rename(ls.state, path, off, params.new_name, ls.ranges())


@server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=["."]))
def on_completion(ls: CflServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    path, off = ls.offset(params.text_document.uri, params.position)
    return completion.complete(ls.state, path, off)


@server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def on_symbols(ls: CflServer, params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
    m = ls.state.module(path_of(params.text_document.uri))
    return symbols.document_symbols(m.tree, ls.ranges()) if m is not None else []


@server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
def on_formatting(ls: CflServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit]:
    path = path_of(params.text_document.uri)
    return formatting.format_document(ls.state.text(path) or "", path, ls.encoding)


def main(*_: Any) -> None:
    """Serve on stdin/stdout until the client exits."""
    configure_logging()
    server.start_io()
