"""Conformance: whether a value has a type, converting it where the language says so.

One implementation serves every check of a value against a type: a field's declared
types and `where` refinements (`conform_field`), inputs set from outside (`conform` with
``from_text``: ``"8080"`` from the command line is an int) and the static checks of
literals (`check_literal`). `conform` converts as it checks (int to float, string to
secret, an object re-based on its schema) and explains a mismatch at the offending item or
entry. The common case (a value that conforms as it is) costs a few class tests: each
step of `_conform` tries the exact class first and returns the value itself, and
builds a new one only when something was converted, so there is no separate fast path to
keep in step with it.

`Conformance` is a mixin of `cfglang.eval.evaluate.Evaluator`, with methods rather than
functions taking the evaluator so that the per-field path costs what it did before the
split; it needs the evaluator because refinements are expressions.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any, Literal, NoReturn, cast

from cfglang.diagnostics import Diagnostics, Note, did_you_mean
from cfglang.eval.builtins import BUILTINS
from cfglang.eval.errors import EvalError, _Propagate, err
from cfglang.eval.objects import TYPED, Def, Layer, Obj, Scope, _only_schema_annotates
from cfglang.eval.operators import INT_MAX, INT_MIN
from cfglang.eval.values import ABSENT, BOTTOM, kind_of, show
from cfglang.semantic import types as T
from cfglang.semantic.resolve import ModuleInfo
from cfglang.semantic.types import Schema
from cfglang.source import Span
from cfglang.syntax import ast
from cfglang.values import (
    Duration,
    Secret,
    Size,
    did_you_mean_unit,
    parse_duration,
    parse_size,
)

# How a value given from outside the program is read (docs/language.md, inputs):
# True: text from the command line or the environment (`"8080"` is an int, `"true"` a bool);
# "units": a string of a data file (`--vars`, `vars=`), which has ints and bools of its own
# but no duration or size values, so only `"20s"` or `"4GiB"` is read as one; False: a value
# of the program, converted by no rule.
FromText = bool | Literal["units"]

if TYPE_CHECKING:
    from cfglang.eval.evaluate import Evaluator
    from cfglang.semantic.program import Program


class Conformance:
    """Conformance of values to types, as methods of the `Evaluator` (module docstring)."""

    if TYPE_CHECKING:
        # What the evaluator provides.
        diags: Diagnostics
        where_ok: set[tuple[Any, ...]]
        program: Program | None

        def ev(self, e: ast.Expr, scope: Scope) -> Any: ...
        def module_scope(self, m: ModuleInfo) -> Scope: ...
        def schema_layers(self, s: Schema) -> tuple[Layer, ...]: ...
        def bind_schemas(self) -> None: ...

    def check_literal(
        self, value: Any, t: T.Type, span: Span, decl_span: Span | None, expr: ast.Expr
    ) -> None:
        """Report whether a literal (no names) conforms to ``t``: the static checks'
        (`cfglang.semantic.typecheck`) way to share the one implementation of conformance."""
        self.bind_schemas()
        try:
            self.conform(value, t, span, decl_span, expr=expr)
        except EvalError as e:
            self.diags.add(e.diag)
        except _Propagate:
            pass

    def conform_field(self, obj: Obj, key: str, defs: list[Def], v: Any) -> Any:
        if v is BOTTOM or v is ABSENT:
            return v
        schema = obj.schema
        types = None
        if schema is not None and obj._types is None and _only_schema_annotates(schema, key, defs):
            # The schema's shared types (usual), without making the object's own table.
            types = schema.field_types.get(key)
        if types is None:
            types = obj.field_type(key)
        top = defs[-1]
        for t, decl_span in types:
            r = self._conform(v, t, top.value_span, False)
            if r.__class__ is _Mismatch:
                self._mismatch(r, v, t, top.value_span, decl_span, top.expr)
            v = r
            if v is BOTTOM:
                return v
        for d in defs:
            if d.flags & TYPED:
                st = d.stmt
                assert isinstance(st, ast.Field)
                if st.where is not None:
                    self.check_where(v, st.where, d.scope.module, None, top.value_span, st.span)
        sf = obj.schema.fields.get(key) if obj.schema is not None else None
        if sf is not None and sf.where is not None and obj.schema is not None:
            for d in defs:
                if d.stmt is sf:
                    break  # checked above with the other definitions
            else:
                owner = obj.schema.owners[key]
                self.check_where(v, sf.where, owner, None, top.value_span, sf.span)
        return v

    def conform(
        self,
        v: Any,
        t: T.Type,
        span: Span,
        decl_span: Span | None,
        from_text: FromText = False,
        expr: ast.Expr | None = None,
    ) -> Any:
        """Check ``v`` against ``t``, returning it converted (int to float, string to
        secret, an object re-based on its schema); raises EvalError at ``span``."""
        r = self._conform(v, t, span, from_text)
        if r.__class__ is _Mismatch:
            self._mismatch(r, v, t, span, decl_span, expr)
        return r

    def _mismatch(
        self,
        problem: _Mismatch,
        v: Any,
        t: T.Type,
        span: Span,
        decl_span: Span | None,
        expr: ast.Expr | None,
    ) -> NoReturn:
        """Raise the E0302 of ``v`` not conforming to ``t`` (``problem`` says where)."""
        notes: tuple[Note, ...] = ()
        named = _named(t)
        if named is not None and named[1] is not None:
            notes = (Note(f"`{named[0]}` is defined here", named[1]),)
        elif decl_span is not None:
            notes = (Note("the type is declared here", decl_span),)
        # Point at the offending item or map entry, where the user must edit.
        if problem.span is not None:
            span = problem.span
        elif (
            problem.item is not None
            and isinstance(expr, ast.ListLit)
            and problem.item < len(expr.items)
        ):
            span = expr.items[problem.item].span
        raise err(
            "E0302",
            f"expected {t.show()}, found {kind_of(problem.value)} {show(problem.value)}"
            if problem.message is None
            else problem.message,
            span,
            label=problem.label or f"this is {kind_of(problem.value)}",
            notes=notes,
            help=problem.help if problem.message is not None else fix_help(v, t),
        )

    def _conform(self, v: Any, t: T.Type, span: Span, from_text: FromText) -> Any:
        """``v`` as a value of ``t`` (``v`` itself unless something was converted), or a
        `_Mismatch` saying what does not conform (never a value)."""
        while type(t) is T.Alias:
            t = t.target
        if v is BOTTOM:
            return v
        if type(t) is T.Prim:
            name = t.name
            if name == "any" or _PRIM_CLASS.get(name) is v.__class__:
                return v
            return self._conform_prim(v, name, from_text)
        if type(t) is T.Refined:
            r = self._conform(v, t.base, span, from_text)
            if r.__class__ is not _Mismatch:
                self.check_where(r, t.where, t.module, t.name, span, t.decl_span)
            return r
        if type(t) is T.SchemaT:
            s = t.schema
            if v.__class__ is not Obj:
                return _Mismatch(v)
            if v.schema is not None and v.schema.is_a(s):
                return v
            return Obj(cast("Evaluator", self), (*self.schema_layers(s), *v.layers), s, v.site)
        if type(t) is T.Lit:
            value = t.value
            return v if v.__class__ is value.__class__ and v == value else _Mismatch(v)
        if type(t) is T.Opt:
            if v is None or v is ABSENT:
                return v
            return self._conform(v, t.inner, span, from_text)
        if type(t) is T.UnionT:
            for o in t.options:
                r = self._conform(v, o, span, from_text)
                if r.__class__ is not _Mismatch:
                    return r
            return _Mismatch(v)
        if type(t) is T.ListT:
            return self._conform_list(v, t, span, from_text)
        if type(t) is T.MapT:
            return self._conform_map(v, t, span, from_text)
        return v

    def _conform_list(self, v: Any, t: T.ListT, span: Span, from_text: FromText) -> Any:
        if v.__class__ is not tuple:
            return _Mismatch(v)
        out: list[Any] | None = None  # made only when an item was converted
        for i, x in enumerate(v):
            r = self._conform(x, t.elem, span, from_text)
            if r.__class__ is _Mismatch:
                m = _Mismatch(
                    v,
                    f"item {i} of the list: expected {t.elem.show()}, "
                    f"found {kind_of(r.value)} {show(r.value)}",
                    label=f"this is {kind_of(r.value)}",
                )
                m.help = r.help if r.message is not None else fix_help(r.value, t.elem)
                m.item = i
                return m
            if out is not None:
                out.append(r)
            elif r is not x:
                out = [*v[:i], r]
        return v if out is None else tuple(out)

    def _conform_map(self, v: Any, t: T.MapT, span: Span, from_text: FromText) -> Any:
        if v.__class__ is not Obj:
            return _Mismatch(v)
        converted: dict[str, Any] = {}
        for k in v.keys():
            kr = self._conform(k, t.key, span, from_text)
            if kr.__class__ is _Mismatch:
                return _Mismatch(v, f"key `{k}`: expected {t.key.show()}")
            x = v.get(k)
            if x is ABSENT:
                continue
            r = self._conform(x, t.value, span, from_text)
            if r.__class__ is _Mismatch:
                m = _Mismatch(
                    v,
                    f"`{k}`: expected {t.value.show()}, found {kind_of(r.value)} {show(r.value)}",
                    label=f"this is {kind_of(r.value)}",
                )
                m.help = r.help if r.message is not None else fix_help(r.value, t.value)
                kdefs = v.defs().get(k)
                if kdefs:
                    m.span = kdefs[-1].value_span
                return m
            if r is not x:
                converted[k] = r
        if converted:
            # Values were converted (an object re-based on its schema gets the schema's
            # defaults and checks; an int became a float): a new map holds them.
            remapped = Obj(cast("Evaluator", self), v.layers, v.schema, v.site)
            remapped._values.update(v._values)
            remapped._values.update(converted)
            return remapped
        return v

    def _conform_prim(self, v: Any, name: str, from_text: FromText) -> Any:
        """The primitive cases `_conform` does not settle by the value's exact class:
        subclasses (a bool is not an int), conversions, and text read as a value."""
        if name == "bool":
            if isinstance(v, bool):
                return v
            if from_text is True and v in ("true", "false"):
                return v == "true"
            return _Mismatch(v)
        if name == "int":
            if isinstance(v, int) and not isinstance(v, bool):
                return v
            if from_text is True and isinstance(v, str):
                try:
                    n = int(v.replace("_", ""), 0)
                except ValueError:
                    return _Mismatch(v)
                if INT_MIN <= n <= INT_MAX:
                    return n
            return _Mismatch(v)
        if name == "float":
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
            if from_text is True and isinstance(v, str):
                try:
                    f = float(v)
                except ValueError:
                    return _Mismatch(v)
                if math.isfinite(f):
                    return f
            return _Mismatch(v)
        if name == "string":
            return v if isinstance(v, str) else _Mismatch(v)
        if name == "null":
            return v if v is None else _Mismatch(v)
        if name == "secret":
            if isinstance(v, Secret):
                return v
            if isinstance(v, str):
                return Secret(v)
            return _Mismatch(v)
        if name == "duration":
            if isinstance(v, Duration):
                return v
            if from_text and isinstance(v, str):
                try:
                    return parse_duration(v)
                except ValueError:
                    return _Mismatch(v)
            return _Mismatch(v)
        if name == "size":
            if isinstance(v, Size):
                return v
            if from_text and isinstance(v, str):
                try:
                    return parse_size(v)
                except ValueError:
                    return _Mismatch(v)
            return _Mismatch(v)
        return v

    def check_where(
        self,
        v: Any,
        where: ast.Expr,
        module: ModuleInfo,
        name: str | None,
        span: Span,
        decl_span: Span | None,
    ) -> None:
        # A refinement reads only `self` and module-level names, so for a scalar its
        # verdict depends on the value alone: most fields share a few values (a default
        # port, pool size or replica count), and each refinement is evaluated once per
        # distinct value instead of once per field.
        key = (id(where), module.key, v.__class__, v) if v.__class__ in _SCALARS else None
        shared: set[tuple[Any, ...]] | None = None
        if key is not None:
            if key in self.where_ok:
                return
            # A refinement that reads only `self` and builtins has the same verdict in
            # every evaluation of the program: kept there, a new `--var` re-checks none.
            program = self.program
            if program is not None and program.pure_refinement(where, BUILTINS):
                shared = program.where_verdicts
                if key in shared:
                    return
        scope = Scope(None, module, self.module_scope(module))
        scope.self_value = v
        ok = self.ev(where, scope)
        if ok is BOTTOM:
            raise _Propagate()
        if ok is True and key is not None:
            self.where_ok.add(key)
            if shared is not None and len(shared) < _SHARED_VERDICTS:
                shared.add(key)
        if ok is not True:
            what = f"a valid {name}" if name else "allowed here"
            notes = (
                (
                    Note(
                        f"`{name}` is defined here" if name else "the constraint is here", decl_span
                    ),
                )
                if decl_span is not None
                else ()
            )
            raise err(
                "E0301",
                f"{show(v)} is not {what}",
                span,
                label=f"constraint `{where.span.text()}` is false",
                notes=notes,
            )


class _Mismatch:
    __slots__ = ("help", "item", "label", "message", "span", "value")

    def __init__(self, value: Any, message: str | None = None, label: str | None = None) -> None:
        self.value = value
        self.message = message
        self.label = label
        self.help: str | None = None  # the fix, when it can be named
        self.item: int | None = None  # index of the bad list item, to point at it
        self.span: Span | None = None  # the bad entry's own site, when known


_SLOW = object()
# Primitive types a value conforms to as is when its class is exactly this one.
_PRIM_CLASS: dict[str, type] = {
    "string": str,
    "int": int,
    "bool": bool,
    "float": float,
    "duration": Duration,
    "size": Size,
    "secret": Secret,
    "null": type(None),
}
# Value classes whose refinement verdict can be memoised (hashable, compared by value).
_SCALARS = frozenset({int, float, str, bool, Duration, Size})
# Verdicts a program keeps for every evaluation (`Program.where_verdicts`): bounded, as a
# long-running server evaluates one program with ever new input values.
_SHARED_VERDICTS = 200_000


def _named(t: T.Type) -> tuple[str, Span | None] | None:
    if isinstance(t, T.Alias):
        return t.name, t.decl_span
    if isinstance(t, T.SchemaT):
        return t.name, t.schema.decl.name_span
    if isinstance(t, T.Opt):
        return _named(t.inner)
    return None


# ---- naming the fix of a mismatch ----------------------------------------------------------


def options(t: T.Type) -> list[T.Type]:
    """The alternatives a value of ``t`` may take, through aliases, `?` and unions (a
    refinement counts as its base: the help names the kind of value, `where` its rule)."""
    if isinstance(t, T.Alias):
        return options(t.target)
    if isinstance(t, T.Opt):
        return [*options(t.inner), T.Prim("null")]
    if isinstance(t, T.UnionT):
        return [o for x in t.options for o in options(x)]
    if isinstance(t, T.Refined):
        return options(t.base)
    return [t]


def choices(t: T.Type) -> list[T.Lit]:
    """The literal values of a literal union (`"debug" | "info"`), else none."""
    opts = options(t)
    lits = [o for o in opts if isinstance(o, T.Lit)]
    if not lits or any(not isinstance(o, T.Lit) and o != T.Prim("null") for o in opts):
        return []
    return lits


def fix_help(v: Any, t: T.Type, quoted: bool = True) -> str | None:
    """The help of a mismatch when it can name the fix: the allowed values of a literal
    union (with did-you-mean), or how to write a duration or size (`write 20s`)."""
    if isinstance(v, Secret):
        return None  # never derive a suggestion from a secret
    lits = choices(t)
    if len(lits) > 1:  # a single literal: the message already names it
        allowed = ", ".join(lit.show() for lit in lits)
        if isinstance(v, str):
            words = [lit.value for lit in lits if isinstance(lit.value, str)]
            near = next((w for w in words if w.lower() == v.lower()), None)
            near = near or did_you_mean(v, words)
            if near is not None:
                return f"did you mean {T.Lit(near).show()}? the allowed values are {allowed}"
        return f"the allowed values are {allowed}"
    prims = {o.name for o in options(t) if isinstance(o, T.Prim)}
    if "duration" in prims:
        hint = _write_as(v, parse_duration, "s", quoted)
        if hint is not None:
            return hint
    if "size" in prims:
        hint = _write_as(v, parse_size, "MB", quoted)
        if hint is not None:
            return hint
    return None


def _write_as(v: Any, parse: Any, unit: str, quoted: bool) -> str | None:
    """How to write ``v`` as a duration or size: unquoted (source text only), with a
    unit (a bare number), or with the unit its misspelt one means."""
    tail = ", without quotes" if quoted else ""
    if isinstance(v, str):
        text = v.strip()
        if text.isdigit():
            v = int(text)  # `--var timeout=20`, or `"20"`: a number without its unit
        else:
            try:
                parse(text)
            except ValueError:
                m = re.fullmatch(r"(\d+)\s*([A-Za-z]+)", text)
                near = did_you_mean_unit(m.group(1), m.group(2)) if m else None
                if near is None:
                    return None
                return near.replace("did you mean ", "write ", 1).rstrip("?") + tail
            return f"write {text}{tail}" if quoted else None
    if isinstance(v, int) and not isinstance(v, bool):
        return f"write {v}{unit}" if unit == "s" else f"write {v}{unit} (or {v}B, {v}MiB, ...)"
    return None


def type_rule(t: T.Type) -> str | None:
    """What a value of ``t`` must be, as a sentence for messages about values set from
    outside: the refinement, the allowed values, or how a bool, duration or size is
    written. None when the type's name says it all (`string`) or the message already
    shows the rule (an unnamed `where`)."""
    if isinstance(t, T.Refined):
        return f"{t.name} is `{t.base.show()} where {t.where.span.text()}`" if t.name else None
    if isinstance(t, T.Alias):
        return type_rule(t.target)
    lits = choices(t)
    if lits:
        return "the allowed values are " + ", ".join(lit.show() for lit in lits)
    prims = {o.name for o in options(t) if isinstance(o, T.Prim)} - {"null"}
    if prims == {"bool"}:
        return "a bool is `true` or `false`"
    if prims == {"duration"}:
        return "a duration is written like `30s`, `5m` or `1h30m` (units ms, s, m, h, d)"
    if prims == {"size"}:
        return (
            "a size is written like `512MiB` or `4GB` "
            "(units B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB)"
        )
    if prims == {"int"}:
        return "an int is written like `8080` or `-1`"
    if prims == {"float"}:
        return "a float is written like `0.5` or `2`"
    return None
