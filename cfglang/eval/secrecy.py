"""Secrecy across builtins: a value computed from a secret is a secret.

`call_builtin` wraps `cfglang.eval.builtins.call_builtin` (the whole table, so a builtin
added later is covered without editing its body):

* when an argument holds a `Secret` (itself, or an item of a list argument), every string
  in the result, and every string item of a list result, becomes a `Secret`: ``join``,
  ``replace``, ``split``, ``lower``... can no longer turn a password into plain text that
  ``eval``, ``diff``, LSP hover, error messages, 0644 outputs or the build cache would show;
* *selectors*, whose result is one of their arguments (or its items) unchanged
  (``default``, ``min``, ``max``, ``sort``, ``unique``, ``keys``, ``values``), keep each
  value's own secrecy: ``default(name, fallback_secret)`` is a plain string when ``name``
  is set;
* bools and ints stay plain (``len``, ``matches``, ``startswith``, ``contains``, ...):
  constraints such as ``where len(self) >= 12`` need them, and a `Secret` holds text only.
  ``int(...)`` and ``float(...)`` of a secret are errors, so the text never becomes a
  plain number;
* an error raised while a secret is an argument has every secret's text (and its
  JSON-escaped form) replaced by ``<secret>`` in its message, label, notes and help, so a
  message that quotes an argument (a regular expression error, say) cannot print it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import attrs

from cfglang.eval import builtins
from cfglang.eval.errors import EvalError
from cfglang.values import REDACTED, Secret

if TYPE_CHECKING:
    from cfglang.eval.evaluate import Evaluator
    from cfglang.syntax import ast

# Builtins whose result is an argument or items of one, unchanged: nothing is derived.
SELECTORS = frozenset({"default", "min", "max", "sort", "unique", "keys", "values", "secret"})


def call_builtin(ev: Evaluator, name: str, args: list[Any], call: ast.Call) -> Any:
    """`builtins.call_builtin`, with secrecy carried into the result (module docstring)."""
    try:
        result = builtins.call_builtin(ev, name, args, call)
    except EvalError as e:
        found = secrets_in(args)
        if found:
            raise EvalError(scrub(e.diag, found)) from None
        raise
    if name in SELECTORS or not _has_text(result):
        return result
    if not secrets_in(args):
        return result
    return _seal(result)


def secrets_in(values: Any) -> list[str]:
    """The texts of the secrets among ``values`` and the items of its lists."""
    out: list[str] = []
    stack = [values]
    while stack:
        v = stack.pop()
        if isinstance(v, Secret):
            out.append(v.value)
        elif isinstance(v, (tuple, list)):
            stack.extend(v)
    return out


def _has_text(v: Any) -> bool:
    if v.__class__ is str:
        return True
    return isinstance(v, tuple) and any(_has_text(x) for x in v)


def _seal(v: Any) -> Any:
    if v.__class__ is str:
        return Secret(v)
    if isinstance(v, tuple):
        return tuple(_seal(x) for x in v)
    return v


def scrub(diag: Any, texts: list[str]) -> Any:
    """``diag`` with each of ``texts`` (and its JSON-escaped form) shown as ``<secret>``."""
    forms = sorted(
        {f for t in texts if t for f in (t, json.dumps(t, ensure_ascii=False)[1:-1])},
        key=len,
        reverse=True,
    )

    def clean(s: str | None) -> str | None:
        if s is None:
            return None
        for f in forms:
            s = s.replace(f, REDACTED)
        return s

    notes = tuple(attrs.evolve(n, message=clean(n.message)) for n in diag.notes)
    return attrs.evolve(
        diag,
        message=clean(diag.message),
        label=clean(diag.label),
        help=clean(diag.help),
        notes=notes,
    )
