"""The editor's view of a project: open buffers and one compilation per open file.

Each open file is compiled as an entry module through `cfglang.api`, with every open buffer
laid over the disk (`overlay`), so an unsaved edit to `base.cfl` is what `env/prod.cfl`
sees. One compilation serves diagnostics, hover (the evaluator's provenance, as
`cflc explain` reads it) and navigation (the module graph, and the bindings of its
`Program`, shared with builds and tools of the same texts). Results are cached per file
and thrown away whenever any buffer changes (a change anywhere can change any dependent).
The last module graph that parsed is kept per file, so symbols, completion and navigation
keep working while the buffer is mid-edit and does not parse.
"""

from __future__ import annotations

import os
from typing import Any

import attrs

from cfglang import api
from cfglang.api import Compilation
from cfglang.diagnostics import Diagnostic
from cfglang.lsp import model
from cfglang.project import load_lenient
from cfglang.semantic.program import Program
from cfglang.semantic.programs import program_for
from cfglang.semantic.resolve import ModuleInfo


@attrs.define
class Analysis:
    """One compilation of an open file: diagnostics, evaluator state and module graph."""

    path: str
    generation: int
    compilation: Compilation
    ev: Any = None  # the evaluator, for provenance (None when evaluation did not start)
    doc: Any = None  # the evaluated document object
    entry: ModuleInfo | None = None  # the module graph (None when the file did not parse)
    modules: dict[str, ModuleInfo] = attrs.Factory(dict)
    # The program compiled (its bindings and types, `cfglang.semantic.program`), shared
    # through `cfglang.semantic.programs.PROGRAMS` with builds and tools of the same texts.
    program: Program | None = None

    def by_file(self) -> dict[str, list[Diagnostic]]:
        """The diagnostics grouped by the real path of the file they point into."""
        out: dict[str, list[Diagnostic]] = {self.path: []}
        for d in self.compilation.diagnostics:
            where = d.span.source.real_path if d.span is not None else None
            out.setdefault(where or self.path, []).append(d)
        return out


def project_settings(path: str) -> tuple[str, list[str]]:
    """The project root of ``path`` and its `allow_paths` (absolute)."""
    proj = load_lenient(path)
    return proj.root, list(proj.allow_paths)


def project_targets(path: str) -> list[str]:
    """The target files of the `cfl.toml` above ``path`` (absolute), if any."""
    return load_lenient(path).target_files()


def compile_recorded(path: str, overlay: dict[str, str]) -> Analysis:
    """Compile ``path`` like `cflc build` does, keeping the evaluator for provenance.

    Through `cfglang.api.compile_session` with the open buffers as an overlay: the
    session keeps the evaluator, so hover serves provenance without a second
    compilation, and the program, whose bindings navigation reads (`model.bindings`).
    """
    _, allow = project_settings(path)
    session = api.compile_session(path, allow_paths=allow, overlay=overlay)
    program: Program | None = session.program
    entry = session.entry
    if program is None:  # the compile failed inside: at least the module graph
        program = load_program(path, overlay)
        entry = program.entry if program is not None else None
    if program is not None:
        model.remember(program)
    return Analysis(
        path,
        0,
        session.result,
        session.evaluator,
        session.document,
        entry,
        model.modules_of(entry),
        program,
    )


def load_program(path: str, overlay: dict[str, str]) -> Program | None:
    """The program of ``path`` as a build sees it, with the open buffers laid over the
    disk (no evaluation; from the shared cache while the texts are unchanged)."""
    root, allow = project_settings(path)
    try:
        return program_for(path, root=root, allow_paths=allow, overlay=overlay)
    except Exception:  # a bug in a phase must not take the editor session down
        return None


def load_graph(path: str, overlay: dict[str, str]) -> ModuleInfo | None:
    """Parse and resolve the module graph of ``path`` (no evaluation)."""
    program = load_program(path, overlay)
    if program is None:
        return None
    model.remember(program)
    return program.entry


class State:
    """Open buffers and cached analyses; owned by the server, used by every feature."""

    def __init__(self) -> None:
        self.buffers: dict[str, str] = {}
        self.generation = 0
        self._analyses: dict[str, Analysis] = {}
        self._good: dict[str, ModuleInfo] = {}
        # The program of each graph in ``_good``: its bindings serve a broken buffer.
        self._good_programs: dict[str, Program] = {}

    def set_buffer(self, path: str, text: str) -> None:
        self.buffers[path] = text
        self.generation += 1

    def close(self, path: str) -> None:
        self.buffers.pop(path, None)
        self._analyses.pop(path, None)
        self.generation += 1

    def text(self, path: str) -> str | None:
        if path in self.buffers:
            return self.buffers[path]
        if not os.path.isfile(path):  # a FIFO or a device could block (or never end)
            return None
        try:
            with open(path, encoding="utf-8", newline="") as f:
                return f.read()
        except (OSError, UnicodeDecodeError):
            return None

    def analysis(self, path: str) -> Analysis:
        """The compilation of ``path`` for the current buffers (cached)."""
        cached = self._analyses.get(path)
        if cached is not None and cached.generation == self.generation:
            return cached
        overlay = dict(self.buffers)
        if path not in overlay and not os.path.isfile(path):
            # Nothing to read: a missing file, a directory, or a FIFO or device, whose
            # read could block the server (a request names any path it likes).
            overlay[path] = ""
        result = compile_recorded(path, overlay)
        result.generation = self.generation
        self._analyses[path] = result
        if result.entry is not None and result.entry.key == path:
            self._good[path] = result.entry
            if result.program is not None and result.program.entry is result.entry:
                self._good_programs[path] = result.program
            else:
                self._good_programs.pop(path, None)
        return result

    def module(self, path: str) -> ModuleInfo | None:
        """The module graph of ``path``: current if it parses, else the last that did."""
        a = self.analysis(path)
        if a.entry is not None:
            return a.entry
        return self._good.get(path)

    def dependents(self, changed: str) -> list[str]:
        """Open files whose last compilation loaded ``changed`` (itself included)."""
        out = []
        for path in self.buffers:
            a = self._analyses.get(path)
            if path == changed or a is None or changed in a.modules:
                out.append(path)
        return out

    def project_modules(self, path: str) -> dict[str, ModuleInfo]:
        """Modules loaded by ``path``, by every open file and by the project's targets."""
        out: dict[str, ModuleInfo] = {}
        entries = [path, *self.buffers]
        for p in dict.fromkeys(entries):
            m = self.module(p) if p in self.buffers or p == path else None
            out.update(model.modules_of(m))
        for target in project_targets(path):
            if target not in out:
                out.update(model.modules_of(load_graph(target, dict(self.buffers))))
        return out
