"""Content-addressed caches in the user cache directory.

Two levels, both keyed by SHA-256 of content (never by modification times, so a changed
file can never be served from cache, and a touched but unchanged one still hits):

- *parse cache*: one entry per module text (and its display path, which spans carry),
  holding the pickled syntax tree. A build after a one-line change re-parses only the
  file that changed. A tree holding a secret in plain text is never kept (see
  `cfglang.semantic.resolve`): after `cflc secrets encrypt` the source no longer has it,
  and neither may the cache.
- *build cache*: one entry per entry file and command-line inputs, holding the result
  plus the list of every file the build read (with content hashes) and every environment
  variable it consulted. A later build with the same inputs re-hashes those files and, if
  nothing changed, returns the stored result without parsing or evaluating anything.

Entries are written atomically (temp file + rename), so concurrent builds never see a
torn entry; an unreadable or corrupt entry is ignored. The cache directory is
``$CFLC_CACHE_DIR``, else ``$XDG_CACHE_HOME/cfglang``, else ``~/.cache/cfglang``;
``--no-cache`` (or ``CFLC_NO_CACHE=1``) turns both off.

Trust: entries are pickles, so the cache directory must be writable only by its user, as
for Python's own ``__pycache__``: the default one is under the user's home directory. (The
parser's own files, in ``parser/``, are checked before they are read: see
`cfglang.syntax.store`.)
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from cfglang import __version__, paths
from cfglang.syntax.grammar import grammar_path

# Bump when the format of cached objects changes; the package version and the grammar's
# hash are part of every key as well.
SCHEMA = "6"  # 6: `outer.name` is an OuterName node; 5: an output's name is a string node


def cache_dir() -> Path | None:
    """The user's cache directory for cfglang (see `cfglang.paths.cache_dir`)."""
    return paths.cache_dir()


def enabled() -> bool:
    return os.environ.get("CFLC_NO_CACHE", "") in ("", "0")


_salt: str | None = None


def salt() -> str:
    """Version and grammar identity: a new cflc never reads an old cflc's entries."""
    global _salt
    if _salt is None:
        g = hashlib.sha256(grammar_path().read_bytes()).hexdigest()[:16]
        _salt = f"{SCHEMA}:{__version__}:{g}"
    return _salt


def digest(*parts: str | bytes) -> str:
    h = hashlib.sha256(salt().encode())
    for p in parts:
        h.update(b"\0")
        h.update(p.encode("utf-8", "surrogatepass") if isinstance(p, str) else p)
    return h.hexdigest()


def file_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _path(kind: str, key: str) -> Path | None:
    d = cache_dir()
    if d is None:
        return None
    return d / kind / key[:2] / key[2:]


def get(kind: str, key: str) -> Any:
    """The stored object, or None on a miss or an unreadable entry."""
    path = _path(kind, key)
    if path is None:
        return None
    import pickle  # start-up: a build with the caches off (or a miss) never unpickles

    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        return None
    except Exception:
        # A corrupt or incompatible entry is a miss, never an error.
        return None


def put(kind: str, key: str, value: Any) -> None:
    path = _path(kind, key)
    if path is None:
        return
    import pickle  # start-up: only storing an entry needs pickle and atomic (tempfile)

    from cfglang.atomic import write_atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda f: pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL))
    except (OSError, pickle.PicklingError, RecursionError):
        pass  # caching is an optimisation; a full or read-only disk must not fail a build


def forget(kind: str, key: str) -> None:
    """Remove an entry from the disk and the memory layer (a missing one is fine)."""
    with _MEMORY_LOCK:
        _MEMORY.pop((kind, key), None)
    path = _path(kind, key)
    if path is not None:
        try:
            path.unlink()
        except OSError:
            pass


def parse_key(path: str, real_path: str | None, text: str) -> str:
    """The parse cache's key of one module text (its display path is in the tree's spans)."""
    return digest("parse", path, real_path or "", text)


# An in-process layer in front of the disk: a long-running process (watch, live, the
# language server) or a project build with several targets sharing a base gets a parsed
# tree back without unpickling it again. Trees are immutable, so sharing them is safe.
_MEMORY: OrderedDict[tuple[str, str], Any] = OrderedDict()
_MEMORY_LIMIT = 256
_MEMORY_LOCK = threading.Lock()


def get_memory(kind: str, key: str) -> Any:
    with _MEMORY_LOCK:
        value = _MEMORY.get((kind, key))
        if value is not None:
            _MEMORY.move_to_end((kind, key))
        return value


def put_memory(kind: str, key: str, value: Any) -> None:
    with _MEMORY_LOCK:
        _MEMORY[(kind, key)] = value
        _MEMORY.move_to_end((kind, key))
        while len(_MEMORY) > _MEMORY_LIMIT:
            _MEMORY.popitem(last=False)
