"""Limits on what the front end accepts: source size and nesting depth.

Both are checked before anything else looks at a source file, so no later phase needs its
own guard. The nesting limit is low enough that every phase, emitter and tool that walks a
tree or a value recursively (the JSON, YAML and TOML writers, `Config.to_dict`, LSP hover,
the formatter) handles the deepest tree or value the compiler accepts with Python's default
recursion limit, on any thread; tests/test_limits.py checks each of them at exactly the
limit. Evaluation has its own limits (`cfglang.eval.evaluate.Limits`); the depth of an
emitted value is bounded by `MAX_NESTING` there too, since templates and `let` chains can
nest a value deeper than any one piece of syntax.
"""

from __future__ import annotations

import os
import re

__all__ = [
    "MAX_EXPRESSION_DEPTH",
    "MAX_NESTING",
    "MAX_SOURCE_SIZE",
    "SOURCE_SIZE_VARIABLE",
    "parse_size",
    "source_size_limit",
]

# Bytes of UTF-8 in one source file (16 MiB): ten times the largest real project module
# measured, and small enough that lexing and parsing stay within seconds and a few
# hundred MB.
MAX_SOURCE_SIZE = 16 * 1024 * 1024
SOURCE_SIZE_VARIABLE = "CFLC_MAX_SOURCE_SIZE"

# Levels of nesting: blocks and object literals, lists, calls and parentheses, indexing,
# substitutions, and each segment of a dotted path (`a.b.c = 1` nests like
# `a { b { c = 1 } }`). 128 is what serde_json allows by default; real configurations
# rarely pass 20.
MAX_NESTING = 128

# Depth of one expression counting every operator (`1 + 2 + ... + n` is n deep): long
# chains of operators nest without brackets.
MAX_EXPRESSION_DEPTH = 400

_SIZE = re.compile(r"\s*(\d{1,19})\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*")
_UNITS = {
    None: 1,
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
}


def parse_size(text: str) -> int | None:
    """A byte count written as ``1048576``, ``512KiB`` or ``16MiB``; None if malformed."""
    m = _SIZE.fullmatch(text)
    if m is None:
        return None
    return int(m.group(1)) * _UNITS[m.group(2)]


def source_size_limit() -> int:
    """The source size limit in bytes: ``$CFLC_MAX_SOURCE_SIZE`` if set and valid."""
    raw = os.environ.get(SOURCE_SIZE_VARIABLE, "")
    if raw:
        n = parse_size(raw)
        if n is not None and n > 0:
            return n
    return MAX_SOURCE_SIZE
