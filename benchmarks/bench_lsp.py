"""Latency of `cflc lsp` as an editor feels it, measured over stdio.

Two figures per workload, each the median of several runs:

- *didChange → diagnostics*: from sending a change to receiving the
  `publishDiagnostics` for that file (includes the server's 150 ms debounce; the table
  also shows the figure without it);
- *hover*: a hover request on a field (value and provenance) until its answer.

Workloads: a generated 1,000-line module, and `examples/fleet/env/prod.cfl` (with its
base and schemas). Run: ``python benchmarks/bench_lsp.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

from cfglang.lsp.diagnostics import uri_of
from cfglang.lsp.positions import LineIndex
from cfglang.lsp.server import DEBOUNCE

ROOT = Path(__file__).resolve().parent.parent
SERVER = [sys.executable, "-c", "from cfglang.cli import run; run()", "lsp"]


def generated(lines: int = 1000) -> str:
    """A module of about ``lines`` lines: a schema and many typed blocks."""
    out = ["schema Svc {", "  name: string", "  replicas: int = 1 where self >= 1",
           "  port: int = 8080", "  url: string", "}", "let domain = \"example.com\""]
    i = 0
    while len(out) < lines - 6:
        out += [f"svc_{i}: Svc {{", f'  name = "svc-{i}"', f"  replicas = {i % 5 + 1}",
                f"  port = {8000 + i}", '  url = "http://$<name>.$<domain>:$<port>"', "}"]
        i += 1
    return "\n".join(out) + "\n"


async def measure(path: Path, edit: tuple[str, str], hover_at: str,
                  runs: int) -> tuple[list[float], list[float]]:
    client = LanguageClient("bench", "1")
    got: dict[str, asyncio.Event] = {}

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diags(params: lsp.PublishDiagnosticsParams) -> None:
        ev = got.get(params.uri)
        if ev is not None:
            ev.set()

    await client.start_io(*SERVER)
    await client.initialize_async(lsp.InitializeParams(capabilities=lsp.ClientCapabilities()))
    client.initialized(lsp.InitializedParams())
    text = path.read_text()
    uri = uri_of(str(path))
    got[uri] = asyncio.Event()
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        lsp.TextDocumentItem(uri, "cfl", 1, text)))
    await got[uri].wait()
    changes: list[float] = []
    hovers: list[float] = []
    for run in range(runs):
        new = text.replace(*edit) if run % 2 == 0 else text
        got[uri] = asyncio.Event()
        start = time.perf_counter()
        client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(run + 2, uri),
            [lsp.TextDocumentContentChangeWholeDocument(new)]))
        await got[uri].wait()
        changes.append(time.perf_counter() - start)
        line, col = LineIndex(new).position(new.index(hover_at))
        start = time.perf_counter()
        h = await client.text_document_hover_async(lsp.HoverParams(
            lsp.TextDocumentIdentifier(uri), lsp.Position(line, col)))
        hovers.append(time.perf_counter() - start)
        assert h is not None, "no hover"
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return changes, hovers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gen = Path(tmp) / "gen.cfl"
        gen.write_text(generated())
        workloads = [
            ("generated 1,000 lines", gen, ("replicas = 3", "replicas = 4"), "replicas = 4"),
            ("examples/fleet env/prod.cfl", ROOT / "examples/fleet/env/prod.cfl",
             ("replicas = 6", "replicas = 7"), "replicas = "),
        ]
        rows = []
        for name, path, edit, hover_at in workloads:
            changes, hovers = asyncio.run(measure(path, edit, hover_at, args.runs))
            rows.append((name, statistics.median(changes) * 1000,
                         statistics.median(hovers) * 1000))
    print(f"{'workload':<30} {'change→diags':>14} {'minus debounce':>15} {'hover':>9}")
    for name, change, hov in rows:
        print(f"{name:<30} {change:>11.1f} ms {change - DEBOUNCE * 1000:>12.1f} ms "
              f"{hov:>6.1f} ms")
    print(f"(median of {args.runs} runs; debounce {DEBOUNCE * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
