"""Object-level constraints: `check` invariants, and how a failed one is explained.

`run_check` evaluates a `check` of an object (called by `cfglang.eval.materialise` once
per object, when the object is made plain data). A failed check is reported at the
assignment of a field it read that was written last along the inheritance chain, with
the value of each part of the expression (``replicas <= 3`` -> ``5 <= 3`` -> false).
A read of a path follows it into nested blocks (`db { pool = 60 }` -> `pool = 60`); a
value that is a schema's default is reported at the object, with help naming the field
to set; `all([... for x in xs])` is reported at the element that failed.
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
from cfglang.source import Span
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
    failing = _failing_element(ev, stmt.expr, scope)
    if failing is not None:
        _report_element(ev, obj, stmt, scope, path, failing)
        return
    reads = _fields_read(stmt.expr, obj)
    found = _last_written(obj, reads, ())
    steps = explain(ev, stmt.expr, scope)
    msg = stmt.message or f"check `{stmt.expr.span.text()}` failed"
    label = " → ".join(steps)
    notes: list[Note] = []
    help = None
    primary = stmt.span
    if found is not None:
        owner, site, sub = found
        primary = site.span
        if owner.layers[site.layer_no].schema is not None:
            # The value is the schema's default: the fix is to set the field in the
            # object, so point there (the default is a note) and name the field to set.
            field = dotted((*path, *sub)) if path else dotted(sub)
            default = owner.get(sub[-1])
            shown = "" if secrets_in([default]) else f" ({show(default)})"
            help = f"`{field}` is the schema's default{shown}: set `{field} = …`"
            notes.append(Note("the default is here", site.span))
            # The block that makes the object holding the default (`db { host = "x" }`),
            # else the checked object: where `pool = …` is to be written.
            where = owner.site if owner is not obj and owner.site is not None else obj.site
            if where is not None:
                primary = where
    elif obj.site is not None:
        primary = obj.site
    if primary is not stmt.span and (REDACTED in label or _reads_secret(ev, obj, reads)):
        # The line of the field (or of the object, for a check that reads only lets and
        # inputs) may hold the secret in plain text: point at the check instead.
        primary = stmt.span
    if primary is not stmt.span:
        notes.insert(0, Note("the check is here", stmt.span))
    ev.diags.error(
        "E0304",
        msg,
        primary,
        label=label,
        notes=tuple(n for n in notes if n.span is not primary),
        help=help,
        data_path=dotted(path) if path else None,
    )


def _last_written(
    obj: Obj, reads: list[tuple[str, ...]], prefix: tuple[str, ...]
) -> tuple[Obj, Def, tuple[str, ...]] | None:
    """The definition, among the fields ``reads`` names, that was written last, with the
    object that holds it and its path from the checked object.

    A read of a path (`db.pool`) descends into the field's object: the last write of
    `pool` in `db` (`db { pool = 60 }` -> `pool = 60`), not the block that holds it."""
    site: Def | None = None
    best = (-1, -1)
    for read in reads:
        for d in obj.defs().get(read[0], []):
            # Written last: the latest layer, then the latest statement within it.
            rank = (d.layer_no, d.span.start)
            if rank >= best and d.op != "decl":
                best, site = rank, d
    if site is None:
        return None
    key = site.key
    deeper = [r[1:] for r in reads if r[0] == key and len(r) > 1]
    if deeper:
        sub = obj.get(key)
        if isinstance(sub, Obj):
            inner = _last_written(sub, deeper, (*prefix, key))
            # Only a write made in this object's own statements (a nested block or a
            # dotted path), or a schema's default: a value from a template body or a
            # shared let is better shown where this object takes it (`db = Db(...)`).
            if inner is not None and (
                inner[0].layers[inner[1].layer_no].schema is not None
                or any(_within(inner[1].span, d.span) for d in obj.defs()[key])
            ):
                return inner
    return obj, site, (*prefix, key)


def _within(inner: Span, outer: Span) -> bool:
    return (
        inner.source.path == outer.source.path
        and outer.start <= inner.start
        and inner.end <= outer.end
    )


class _Element:
    """The first element of `all([... for x in xs])` whose condition is false."""

    def __init__(self, comp: ast.Comprehension, key: Any, scope: Scope) -> None:
        self.comp = comp
        self.key = key
        self.scope = scope


def _failing_element(ev: Evaluator, e: ast.Expr, scope: Scope) -> _Element | None:
    if not (
        isinstance(e, ast.Call)
        and isinstance(e.func, ast.Name)
        and e.func.name == "all"
        and len(e.args) == 1
        and isinstance(e.args[0].value, ast.Comprehension)
    ):
        return None
    comp = e.args[0].value
    try:
        for k, v in ev.iterate(comp.iterable, scope, comp.key_var is not None):
            vars = {comp.var: v}
            if comp.key_var is not None:
                vars[comp.key_var] = k
            inner = scope.child(vars=vars)
            if comp.cond is not None and ev.ev(comp.cond, inner) is not True:
                continue
            if ev.ev(comp.elem, inner) is False:
                return _Element(comp, k, inner)
    except (EvalError, _Propagate):
        return None
    return None


def _report_element(
    ev: Evaluator,
    obj: Obj,
    stmt: ast.CheckStmt,
    scope: Scope,
    path: tuple[str | int, ...],
    el: _Element,
) -> None:
    """A failed `all([...])`: the element that failed, at its own line when the list
    is a field of the object written as a literal (`ports = [8080, 80]` -> `80`)."""
    comp = el.comp
    steps = explain(ev, comp.elem, el.scope)
    where = f"[{el.key}]" if isinstance(el.key, int) else f".{el.key}"
    it = comp.iterable
    reads = _fields_read(it, obj)
    subject = it.span.text() if isinstance(it, (ast.Name, ast.GetAttr)) else "the list"
    label = f"{subject}{where}: " + " → ".join(steps)
    primary = stmt.span
    found = _last_written(obj, reads, ()) if reads else None
    if found is not None:
        primary = found[1].span
        top = found[1].expr
        if isinstance(top, ast.ListLit) and isinstance(el.key, int) and el.key < len(top.items):
            primary = top.items[el.key].span
        elif isinstance(el.key, str):
            holder = found[0].get(found[1].key)
            if isinstance(holder, Obj) and holder.defs().get(el.key):
                primary = holder.defs()[el.key][-1].span
                # `s.port > 1024 for name, s in services`: the element's own field.
                element = holder.get(el.key)
                inner = _var_reads(comp.elem, comp.var)
                deeper = _last_written(element, inner, ()) if isinstance(element, Obj) else None
                if inner and deeper is not None:
                    primary = deeper[1].span
    if primary is not stmt.span and (
        REDACTED in label or secrets_in([ev.ev(it, scope)] if reads else [])
    ):
        primary = stmt.span
    msg = stmt.message or f"check `{stmt.expr.span.text()}` failed"
    ev.diags.error(
        "E0304",
        msg,
        primary,
        label=label,
        notes=(Note("the check is here", stmt.span),) if primary is not stmt.span else (),
        data_path=dotted(path) if path else None,
    )


def _reads_secret(ev: Evaluator, obj: Obj, reads: list[tuple[str, ...]]) -> bool:
    return any(secrets_in([obj.get(r[0])]) for r in reads)


def _path(x: ast.Expr, obj: Obj) -> tuple[str, ...] | None:
    """The field path of `db.pool` or `self.db.pool` when `db` is a field of ``obj``."""
    if isinstance(x, ast.OuterName):
        return None  # `outer.name` is never a field of this object
    if isinstance(x, ast.Name):
        return (x.name,) if obj.has(x.name) else None
    if isinstance(x, ast.GetAttr):
        if isinstance(x.obj, ast.SelfRef):
            return (x.name,)
        head = _path(x.obj, obj)
        return None if head is None else (*head, x.name)
    return None


def _var_reads(e: ast.Expr, var: str) -> list[tuple[str, ...]]:
    """The paths read below the variable ``var`` (`s.port` -> ``("port",)``)."""
    out: list[tuple[str, ...]] = []

    def walk(x: Any) -> None:
        if isinstance(x, ast.GetAttr):
            names: list[str] = []
            cur: ast.Expr = x
            while isinstance(cur, ast.GetAttr):
                names.append(cur.name)
                cur = cur.obj
            if isinstance(cur, ast.Name) and cur.name == var:
                out.append(tuple(reversed(names)))
                return
        for attr in ("left", "right", "operand", "obj", "cond", "then", "orelse", "index"):
            child = getattr(x, attr, None)
            if child is not None and not isinstance(child, (str, ast.Body)):
                walk(child)
        if isinstance(x, ast.Call):
            for a in x.args:
                walk(a.value)

    walk(e)
    return out


def _fields_read(e: ast.Expr, obj: Obj) -> list[tuple[str, ...]]:
    """The paths of fields of ``obj`` that ``e`` reads (`db.pool` -> ``("db", "pool")``)."""
    out: list[tuple[str, ...]] = []

    def walk(x: Any) -> None:
        p = _path(x, obj) if isinstance(x, (ast.Name, ast.GetAttr)) else None
        if p is not None:
            out.append(p)
            return
        for attr in ("left", "right", "operand", "obj", "cond", "then", "orelse", "index"):
            child = getattr(x, attr, None)
            if child is not None and not isinstance(child, (str, ast.Body)):
                walk(child)
        if isinstance(x, ast.Call):
            for a in x.args:
                walk(a.value)
        if isinstance(x, ast.Comprehension):
            walk(x.iterable)
        if isinstance(x, ast.ListLit):
            for item in x.items:
                walk(item)
        if isinstance(x, ast.Str):
            for p2 in x.parts:
                if not isinstance(p2, str):
                    walk(p2)

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
