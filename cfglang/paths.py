"""Where things are: whether a path lies inside a directory, and the cache directory.

`resolves_inside` is the one test of whether a path lies inside a directory, symlinks
resolved. The import sandbox (`cfglang.semantic.resolve`), the output writer (`cfglang.cli`) and the
journal replay (`cfglang.atomic`) all ask it; resolving both sides first is what makes a
link inside the directory that points elsewhere count as outside.
"""

from __future__ import annotations

import os
from pathlib import Path


def resolves_inside(path: str, base: str) -> bool:
    """Whether ``path``, symlinks followed, is ``base`` or lies below it."""
    real = os.path.realpath(path)
    root = os.path.realpath(base)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def cache_dir() -> Path | None:
    """``$CFLC_CACHE_DIR``, else ``$XDG_CACHE_HOME/cfglang`` (``~/.cache/cfglang``), made if
    missing; None when it cannot be made or written. Here, below every phase, because the
    parser keeps its tables there and the parse and build caches their entries."""
    base = os.environ.get("CFLC_CACHE_DIR")
    if base:
        path = Path(base)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = Path(xdg) / "cfglang"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path if os.access(path, os.W_OK) else None
