"""Where every client gets the `Program` of a set of source texts: one in-process cache.

A build (`cfglang.driver`), the declaration tools (`cflc schema export`, `cflc doc`,
`cflc codegen`, `cflc deps`) and the language server all ask `program_for` (the driver
through `load_program`, with its own loader and limits), so unchanged sources are
parsed, resolved, typed and bound once per process whichever of them asks first: a
schema export after an editor's analysis of the same files reuses its program, its
`TypeResolver` (`Program.types`) and its bindings (`Program.bindings`).

`PROGRAMS` holds the programs of recent requests by entry and options (`content_key`),
each checked against the texts it was built from before it is used again
(`Program.still_valid`). A program with a resolver error is not kept (the next request
reads again, in case the error was fixed).

This lives in the semantic layer, not in the driver, because the declaration tools must
not load the evaluator (the driver imports it): nothing here imports `cfglang.eval`.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cfglang.limits import source_size_limit
from cfglang.project import find_root
from cfglang.semantic.program import Program, build_program, content_key
from cfglang.semantic.resolve import FileLoader, Loader, MemoryLoader

__all__ = ["MODULE_DEPTH", "PROGRAMS", "ProgramCache", "load_program", "program_for", "workspace"]

# How deep imports and `extends` may nest by default: `Limits.max_module_depth`'s default
# (`cfglang.eval.evaluate`, which this layer does not import; a test keeps them equal).
MODULE_DEPTH = 10_000


class ProgramCache:
    """Programs of recent builds, by entry and options, each checked against the texts it
    was built from before it is used again. Shared by every thread: programs are
    immutable, and the table is behind a lock."""

    def __init__(self, limit: int = 8) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, Program] = OrderedDict()
        self.limit = limit

    def get(
        self, key: str, read: Callable[[str], str], exists: Callable[[str], bool]
    ) -> Program | None:
        with self._lock:
            program = self._items.get(key)
        if program is None or not program.still_valid(read, exists):
            return None
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
        return program

    def put(self, key: str, program: Program) -> None:
        with self._lock:
            self._items[key] = program
            self._items.move_to_end(key)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


PROGRAMS = ProgramCache()


def load_program(
    loader: Any,
    entry_path: str,
    *,
    text: str | None,
    root: str,
    allow_paths: tuple[str, ...],
    use_cache: bool,
    max_depth: int,
    reuse: bool,
) -> tuple[Program, bool]:
    """The program of ``entry_path``: from `PROGRAMS` when ``reuse`` and its texts are
    unchanged (then ``True``), else built now and remembered when it has no error."""
    # Whether the entry's text was given (an editor buffer) or read is not part of the
    # key: the texts are checked before a program is reused, so one built from a buffer
    # serves a read of the same text from disk (an export after the editor's analysis).
    key = "\0".join(
        (content_key(entry_path, root, allow_paths, max_depth), str(source_size_limit()))
    )
    entry_abs = os.path.abspath(entry_path)

    def read(path: str) -> str:
        return text if text is not None and path == entry_abs else str(loader.read(path))

    if reuse:
        hit = PROGRAMS.get(key, read, loader.exists)
        if hit is not None:
            return hit, True
    program = build_program(
        loader,
        entry_path,
        text=text,
        root=root,
        allow_paths=allow_paths,
        use_cache=use_cache,
        max_depth=max_depth,
    )
    if reuse and program.ok:
        PROGRAMS.put(key, program)
    return program, False


def workspace(
    entry_path: str,
    *,
    text: str | None = None,
    root: str | None = None,
    overlay: Mapping[str, str] | None = None,
    loader: Loader | None = None,
) -> tuple[Loader, str | None, str]:
    """How a request reads its sources: (loader, the entry's text if given, the project
    root). An ``overlay`` (absolute path -> text, an editor's unsaved buffers) is laid
    over the loader (default: the disk), and gives the entry's text when it holds it."""
    real_root = os.path.abspath(root) if root else find_root(entry_path)
    base: Loader = loader if loader is not None else FileLoader()
    if overlay:
        mem = MemoryLoader({os.path.abspath(k): v for k, v in overlay.items()}, base)
        if text is None and os.path.abspath(entry_path) in mem.files:
            text = mem.files[os.path.abspath(entry_path)]
        base = mem
    return base, text, real_root


def program_for(
    entry_path: str,
    *,
    text: str | None = None,
    root: str | None = None,
    allow_paths: Sequence[str] = (),
    overlay: Mapping[str, str] | None = None,
    use_cache: bool = False,
    max_depth: int = MODULE_DEPTH,
) -> Program:
    """The program of the module at ``entry_path`` as a build of it sees it (the same
    root, allowed paths, overlay and limits give the same program): from `PROGRAMS`
    when its sources are unchanged, else built now (and kept when it has no error)."""
    loader, text, real_root = workspace(entry_path, text=text, root=root, overlay=overlay)
    program, _ = load_program(
        loader,
        entry_path,
        text=text,
        root=real_root,
        allow_paths=tuple(os.path.abspath(p) for p in allow_paths),
        use_cache=use_cache,
        max_depth=max_depth,
        reuse=True,
    )
    return program
