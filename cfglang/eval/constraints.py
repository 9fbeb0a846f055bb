"""Object-level constraints: `check` invariants, and how a failed one is explained.

`run_check` evaluates a `check` of an object (called by `cfglang.eval.materialise` once
per object, when the object is made plain data). A failed check is reported at the
assignment of a field it read that was written last along the inheritance chain, with
the value of each part of the expression (``replicas <= 3`` -> ``5 <= 3`` -> false).
`dotted` prints a data path for diagnostics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cfglang.datapath import render
from cfglang.diagnostics import Note
from cfglang.eval.errors import EvalError, _Propagate
from cfglang.eval.objects import Def, Obj, Scope
from cfglang.eval.secrecy import secrets_in
from cfglang.eval.values import BOTTOM, show
from cfglang.syntax import ast
from cfglang.syntax.build import PRECEDENCE
from cfglang.values import REDACTED

if TYPE_CHECKING:
    from cfglang.eval.evaluate import Evaluator


def dotted(path: tuple[str | int, ...]) -> str:
    """A data path as diagnostics print it (`cfglang.datapath`), ``(root)`` for none."""
    return render(path) or "(root)"


class _Trace:
    """Records the fields of the checked object that a check reads."""

    def __init__(self) -> None:
        self.reads: list[Def] = []


def run_check(
    ev: Evaluator, obj: Obj, stmt: ast.CheckStmt, scope: Scope, path: tuple[str | int, ...]
) -> None:
    ev.quiet_check(stmt)
    try:
        result = ev.ev(stmt.expr, scope)
    except EvalError as e:
        ev.diags.add(e.diag)
        return
    except _Propagate:
        return
    if result is BOTTOM:
        return
    if not isinstance(result, bool):
        ev.diags.error("E0302", f"a check must be a bool, not {show(result)}", stmt.expr.span)
        return
    if result:
        return
    reads = _fields_read(stmt.expr, obj)
    site = None
    best = (-1, -1)
    for key in reads:
        stack = obj.defs().get(key, [])
        for d in stack:
            # Written last: the latest layer, then the latest statement within it.
            rank = (d.layer_no, d.span.start)
            if rank >= best and d.op != "decl":
                best, site = rank, d
    steps = explain(ev, stmt.expr, scope)
    msg = stmt.message or f"check `{stmt.expr.span.text()}` failed"
    label = " → ".join(steps)
    primary = site.span if site is not None else (obj.site or stmt.span)
    if primary is not stmt.span and (REDACTED in label or _reads_secret(ev, obj, reads)):
        # The line of the field (or of the object, for a check that reads only lets and
        # inputs) may hold the secret in plain text: point at the check instead.
        primary = stmt.span
    ev.diags.error(
        "E0304",
        msg,
        primary,
        label=label,
        notes=(Note("the check is here", stmt.span),) if primary is not stmt.span else (),
        data_path=dotted(path) if path else None,
    )


def _reads_secret(ev: Evaluator, obj: Obj, keys: list[str]) -> bool:
    return any(secrets_in([obj.get(k)]) for k in keys)


def _fields_read(e: ast.Expr, obj: Obj) -> list[str]:
    out: list[str] = []

    def walk(x: Any) -> None:
        if type(x) is ast.Name and obj.has(x.name):  # not `outer.name`: not this object's
            out.append(x.name)
        elif isinstance(x, ast.GetAttr) and isinstance(x.obj, ast.SelfRef):
            out.append(x.name)
        for attr in ("left", "right", "operand", "obj", "cond", "then", "orelse", "index"):
            child = getattr(x, attr, None)
            if child is not None and not isinstance(child, (str, ast.Body)):
                walk(child)
        if isinstance(x, ast.Call):
            for a in x.args:
                walk(a.value)
        if isinstance(x, ast.Str):
            for p in x.parts:
                if not isinstance(p, str):
                    walk(p)

    walk(e)
    return out


def explain(ev: Evaluator, e: ast.Expr, scope: Scope) -> list[str]:
    """The expression, then with its leaves replaced by values, then step by step."""
    steps = [e.span.text()]
    leaves = _render(ev, e, scope, 0)
    if leaves not in steps:
        steps.append(leaves)
    mid = _render(ev, e, scope, 1)
    if mid not in steps:
        steps.append(mid)
    final = _value(ev, e, scope)
    if final not in steps:
        steps.append(final)
    return steps


def _value(ev: Evaluator, e: ast.Expr, scope: Scope) -> str:
    try:
        v = ev.ev(e, scope)
        if isinstance(e, ast.Call) and not isinstance(v, bool):
            # `len(password)` is a plain int (constraints need it), but a failed check's
            # trace goes to build logs: it shows the number as a secret.
            if secrets_in([ev.ev(a.value, scope) for a in e.args]):
                return "<secret>"
        return show(v)
    except (EvalError, _Propagate):
        return "?"


def _render(ev: Evaluator, e: ast.Expr, scope: Scope, level: int) -> str:
    """Level 0: leaves as values. Level 1: each operand of the top operator as a value."""
    if isinstance(e, ast.Binary):
        if (
            level == 1
            and not isinstance(e.left, ast.Binary)
            and not isinstance(e.right, ast.Binary)
        ):
            return _value(ev, e, scope)

        def side(x: ast.Expr, right: bool) -> str:
            text = _render(ev, x, scope, level)
            if isinstance(x, ast.Binary):
                inner, outer = PRECEDENCE[x.op], PRECEDENCE[e.op]
                if inner < outer or (right and inner == outer):
                    return f"({text})"
            return text

        return f"{side(e.left, False)} {e.op} {side(e.right, True)}"
    if isinstance(e, ast.Unary):
        inner = _render(ev, e.operand, scope, level)
        return f"{e.op}({inner})" if isinstance(e.operand, ast.Binary) else f"{e.op}{inner}"
    if isinstance(e, ast.Literal):
        return e.span.text()
    return _value(ev, e, scope)
