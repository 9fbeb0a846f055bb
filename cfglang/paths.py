"""The one test of whether a path lies inside a directory, symlinks resolved.

The import sandbox (`cfglang.semantic.resolve`), the output writer (`cfglang.cli`) and the
journal replay (`cfglang.atomic`) all ask it; resolving both sides first is what makes a
link inside the directory that points elsewhere count as outside.
"""

from __future__ import annotations

import os


def resolves_inside(path: str, base: str) -> bool:
    """Whether ``path``, symlinks followed, is ``base`` or lies below it."""
    real = os.path.realpath(path)
    root = os.path.realpath(base)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)
