"""Where the grammar is: inside the wheel, or in the source tree of a checkout.

A module of its own, importing nothing of cfglang, so that the caches (`cfglang.cache`,
which key their entries by the grammar's hash) and the parser, which stores its tables in
the cache directory, can both use it without importing each other.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["grammar_path"]


def grammar_path() -> Path:
    """The grammar inside the wheel, or in the source tree when running from a checkout."""
    here = Path(__file__).resolve().parent.parent
    for cand in (here / "_data" / "grammar" / "cfl.lark", here.parent / "grammar" / "cfl.lark"):
        if cand.is_file():
            return cand
    raise FileNotFoundError("grammar/cfl.lark is missing from the installation")
