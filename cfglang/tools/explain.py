"""`cflc explain`: the value at a data path and where it came from.

Nothing is recomputed by a second engine: the evaluator already keeps, for every key of
every object, the stack of definitions along the inheritance chain (`Def`, base first),
and for every input the source that won. This module walks the evaluated document to
the path, then reads that record: the definition that set the value, every definition
it overrides, the declared types with their sites, and the inputs that the setting
expression reads (directly or through a `$<...>` substitution).
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from cfglang import datapath
from cfglang.diagnostics import Diagnostic, did_you_mean
from cfglang.eval.constraints import dotted
from cfglang.eval.evaluate import Def, Evaluator, Obj, Scope
from cfglang.eval.materialise import materialize
from cfglang.eval.values import ABSENT, BOTTOM, kind_of
from cfglang.source import Span
from cfglang.syntax import ast
from cfglang.values import Duration, Secret, Size, redact


@attrs.frozen
class Site:
    """A place in the source: `file:line:col` and the text of that line."""

    file: str
    line: int
    column: int
    text: str
    # The span itself, for tools that point a diagnostic at the site (not serialised).
    span: Span | None = attrs.field(default=None, eq=False, repr=False)

    @classmethod
    def of(cls, span: Span) -> Site:
        line, col = span.start_line_col()
        return cls(span.path, line, col, span.source.line_text(line).strip(), span)

    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@attrs.frozen
class Definition:
    """One definition of the field along the chain; ``kind`` is set/merge/append/…"""

    kind: str
    site: Site
    origin: str  # "schema default", "schema declaration" or "assignment"


@attrs.frozen
class InputUse:
    name: str
    value: Any
    source: str
    site: Site | None


@attrs.frozen
class Explanation:
    path: str
    value: Any
    kind: str
    set_by: Definition | None
    overrides: tuple[Definition, ...]
    types: tuple[tuple[str, Site], ...]
    inputs: tuple[InputUse, ...]
    diagnostics: tuple[Diagnostic, ...] = ()

    def to_json(self) -> dict[str, Any]:
        def site(s: Site | None) -> dict[str, Any] | None:
            return (
                None
                if s is None
                else {"file": s.file, "line": s.line, "column": s.column, "text": s.text}
            )

        def definition(d: Definition | None) -> dict[str, Any] | None:
            return (
                None if d is None else {"kind": d.kind, "origin": d.origin, **(site(d.site) or {})}
            )

        return {
            "path": self.path,
            "value": _jsonable(self.value),
            "kind": self.kind,
            "set_by": definition(self.set_by),
            "overrides": [definition(d) for d in self.overrides],
            "types": [{"type": t, **(site(s) or {})} for t, s in self.types],
            "inputs": [
                {
                    "name": i.name,
                    "value": _jsonable(i.value),
                    "source": i.source,
                    "site": site(i.site),
                }
                for i in self.inputs
            ],
        }

    def render(self) -> str:
        out = [
            f"{self.path} = {json.dumps(_jsonable(self.value), ensure_ascii=False)}  ({self.kind})"
        ]
        if self.set_by is not None:
            out.append(
                f"  set by     {self.set_by.site.where():<28} {self.set_by.site.text}"
                + (f"   [{self.set_by.origin}]" if self.set_by.origin != "assignment" else "")
            )
        for d in self.overrides:
            out.append(
                f"  overrides  {d.site.where():<28} {d.site.text}"
                + (f"   [{d.origin}]" if d.origin != "assignment" else "")
            )
        for t, s in self.types:
            out.append(f"  type       {t}, declared at {s.where()}")
        for i in self.inputs:
            where = f" ({i.site.where()})" if i.site is not None else ""
            out.append(
                f"  input      {i.name} = {json.dumps(_jsonable(i.value))} from {i.source}{where}"
            )
        return "\n".join(out) + "\n"


def _jsonable(v: Any) -> Any:
    v = redact(v)
    if isinstance(v, (Duration, Size)):
        return v.canonical()
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    return v


def parse_path(text: str) -> list[str | int] | None:
    """`services.billing.replicas`, `tags[0]`, `labels["app.kubernetes.io/name"]`; None
    for the empty path and for text that is not a path (`cfglang.datapath.parse`)."""
    try:
        return list(datapath.parse(text)) or None
    except datapath.DataPathError:
        return None


def explain_path(ev: Evaluator, doc: Obj, path_text: str, result: Any) -> Any:
    """An `Explanation`, or ``result`` with a diagnostic added when the path is bad."""
    path = parse_path(path_text)
    if path is None:
        result.diagnostics.append(
            Diagnostic(
                "E0701",
                f"`{path_text}` is not a data path",
                help="write a path like services.billing.port or tags[0]",
            )
        )
        result.data = None
        return result
    cur: Any = doc
    owner: Obj | None = None
    key: str | int | None = None
    walked: list[str | int] = []
    for seg in path:
        if isinstance(cur, Obj) and isinstance(seg, str):
            v = cur.get(seg)
            if v is ABSENT or any(d.is_hidden for d in cur.defs().get(seg, ())):
                return _no_such(result, walked, seg, cur)
            owner, key, cur = cur, seg, v
        elif isinstance(cur, tuple) and isinstance(seg, int):
            if not -len(cur) <= seg < len(cur):
                return _no_such(result, walked, seg, None)
            cur = cur[seg]  # provenance stays with the list field that holds it
        else:
            return _no_such(result, walked, seg, None)
        walked.append(seg)
    if cur is BOTTOM:
        return result
    value = materialize(ev, cur)
    defs: list[Def] = (
        owner.defs().get(key, []) if owner is not None and isinstance(key, str) else []
    )
    top = next((d for d in reversed(defs) if d.op != "decl"), None)
    set_by = _definition(top, owner) if top is not None else None
    overrides = tuple(
        _definition(d, owner) for d in reversed(defs) if d is not top and d.op != "decl"
    )
    types: list[tuple[str, Site]] = []
    if owner is not None and isinstance(key, str):
        for t, span in owner.field_type(key):
            types.append((t.show(), Site.of(span)))
    inputs = tuple(_inputs_read(ev, top)) if top is not None else ()
    kind = (
        kind_of(cur)
        if not isinstance(cur, Obj)
        else (f"object of {cur.schema.name}" if cur.schema is not None else "object")
    )
    if isinstance(cur, Secret):
        kind = "secret"
    return Explanation(dotted(tuple(path)), value, kind, set_by, overrides, tuple(types), inputs)


def _no_such(result: Any, walked: list[str | int], seg: str | int, obj: Obj | None) -> Any:
    where = dotted(tuple(walked)) if walked else "the document"
    hint = None
    if obj is not None and isinstance(seg, str):
        best = did_you_mean(seg, obj.keys())
        hint = f"did you mean `{best}`?" if best else None
    result.diagnostics.append(Diagnostic("E0201", f"{where} has no `{seg}`", help=hint))
    result.data = None
    return result


def _definition(d: Def, owner: Obj | None) -> Definition:
    layer_schema = (
        owner is not None
        and owner.schema is not None
        and isinstance(d.stmt, ast.Field)
        and d.stmt is owner.schema.fields.get(d.key)
    )
    origin = "schema default" if layer_schema else "assignment"
    kind = {
        "set": "set",
        "merge": "merge block",
        "append": "append",
        "unset": "unset",
        "extends": "extends",
    }.get(d.op, d.op)
    return Definition(kind, Site.of(d.span), origin)


def _inputs_read(ev: Evaluator, d: Def) -> list[InputUse]:
    """Inputs named in the defining expression (directly or in a substitution)."""
    names: list[str] = []
    seen_lets: set[int] = set()

    def let_of(name: str) -> ast.LetDecl | None:
        s: Scope | None = d.scope
        while s is not None:
            if name in s.vars:
                return None
            if name in s.lets:
                return s.lets[name]
            s = s.parent
        return None

    def field_or_var(x: ast.Name) -> bool:
        """Whether ``x`` reads a field or a variable, not an input of its name: the
        evaluator's lookup, past the current object's fields for `outer.name` and for a
        field's own key in its value (docs/language.md §3.6)."""
        skip = isinstance(x, ast.OuterName) or (d.own and x.name == d.key)
        s: Scope | None = d.scope
        while s is not None:
            if x.name in s.vars:
                return True
            if x.name in s.lets:
                return False  # followed by `let_of`
            if s.obj is not None:
                if skip:
                    skip = False
                elif s.obj.has(x.name):
                    return True
            s = s.parent
        return False

    def walk(x: Any) -> None:
        if isinstance(x, ast.Name):
            if not field_or_var(x):
                names.append(x.name)
            # An input read through a let (`let domain = "$<region>.example.com"`) fed
            # this value too.
            let = let_of(x.name)
            if let is not None and id(let) not in seen_lets:
                seen_lets.add(id(let))
                walk(let.value)
        elif isinstance(x, ast.Str):
            for p in x.parts:
                if not isinstance(p, str):
                    walk(p)
        elif isinstance(x, (ast.Binary,)):
            walk(x.left)
            walk(x.right)
        elif isinstance(x, (ast.Unary,)):
            walk(x.operand)
        elif isinstance(x, ast.GetAttr):
            walk(x.obj)
        elif isinstance(x, ast.Call):
            for a in x.args:
                walk(a.value)
        elif isinstance(x, ast.IfExpr):
            walk(x.cond)
            walk(x.then)
            walk(x.orelse)

    if d.expr is not None:
        walk(d.expr)
    out: list[InputUse] = []
    for name in dict.fromkeys(names):
        if name in ev.input_sources and name in ev.inputs:
            source, span = ev.input_sources[name]
            out.append(
                InputUse(
                    name,
                    materialize(ev, ev.inputs[name]),
                    source,
                    Site.of(span) if span is not None else None,
                )
            )
    return out
