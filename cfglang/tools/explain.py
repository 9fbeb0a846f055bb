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
    # A hidden field (or a value inside one): read by the configuration, never emitted.
    hidden: bool = False

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
            "hidden": self.hidden,
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
            f"{self.path} = {json.dumps(_jsonable(self.value), ensure_ascii=False)}"
            f"  ({self.kind}{', hidden: not emitted' if self.hidden else ''})"
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
    # A hidden field nothing reads is evaluated only now: its errors are reported here.
    reported = {id(d) for d in ev.diags}
    cur: Any = doc
    owner: Obj | None = None
    key: str | int | None = None
    walked: list[str | int] = []
    hidden = False
    for seg in path:
        if isinstance(cur, Obj) and isinstance(seg, str):
            v = cur.get(seg)
            # A hidden field is explained like any other: it is not emitted, but it is
            # read, overridden and fed by inputs like the rest.
            if v is ABSENT:
                return _no_such(result, walked, seg, cur)
            hidden = hidden or any(d.is_hidden for d in cur.defs().get(seg, ()))
            owner, key, cur = cur, seg, v
        elif isinstance(cur, tuple) and isinstance(seg, int):
            if not -len(cur) <= seg < len(cur):
                return _no_such(result, walked, seg, None)
            cur = cur[seg]  # provenance stays with the list field that holds it
        else:
            return _no_such(result, walked, seg, None)
        walked.append(seg)
    value = materialize(ev, cur) if cur is not BOTTOM else BOTTOM
    errors = [d for d in ev.diags if id(d) not in reported and d.is_error]
    if errors or value is BOTTOM:
        result.diagnostics.extend(errors)
        result.data = None
        return result
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
    return Explanation(
        dotted(tuple(path)), value, kind, set_by, overrides, tuple(types), inputs, hidden=hidden
    )


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
    """Inputs that fed the defining expression: named in it (directly or in a
    substitution), or read through the lets and fields it reads, hidden fields included
    (`hidden base = "https://$<region>"` then `url = "$<base>/api"` lists `region`)."""
    names: list[str] = []
    seen: set[int] = set()

    def resolve(name: str, scope: Scope | None, current: Def | None, outer: bool = False) -> Any:
        """What `name` reads in `scope`, as the evaluator's name lookup walks it: a
        (scope, let), an (object, key) field, None for a variable, or "global".
        ``outer``: `outer.name`, which looks past the current object's fields
        (docs/language.md §3.6)."""
        s = scope
        while s is not None:
            if name in s.vars:
                return None
            if name in s.lets:
                return (s, s.lets[name])
            obj = s.obj
            if obj is not None:
                if outer:
                    outer = False
                else:
                    stack = obj.defs().get(name)
                    # A field never reads itself: a bare `key` in `key = …` is an outer name.
                    if stack and not (current is not None and current in stack):
                        return (obj, name)
            s = s.parent
        return "global"

    def target(x: Any, scope: Scope | None, current: Def | None) -> tuple[Obj, str] | None:
        """The field that `x` (a name or `a.b.c`) reads, when it reads one."""
        if isinstance(x, ast.Name):
            r = resolve(x.name, scope, current, isinstance(x, ast.OuterName))
            return r if isinstance(r, tuple) and isinstance(r[0], Obj) else None
        if isinstance(x, ast.GetAttr):
            t = target(x.obj, scope, current)
            if t is not None:
                v = t[0].get(t[1])
                if isinstance(v, Obj) and v.defs().get(x.name):
                    return (v, x.name)
        return None

    def follow(obj: Obj, key: str) -> None:
        # The newest definition decides the value; a merge or an append also builds on
        # the ones beneath it, a plain `=` does not (except through `super`).
        for fd in reversed(obj.defs().get(key, [])):
            if fd.op == "decl":
                continue
            if id(fd) in seen:
                return
            seen.add(id(fd))
            if fd.expr is not None:
                walk(fd.expr, fd.scope, fd, frozenset())
            if fd.body_layer is not None:
                value = obj.get(key)
                if isinstance(value, Obj):
                    for k in fd_keys(fd):
                        if k in value.defs():
                            follow(value, k)
            if fd.op == "set" and not _reads_super(fd.expr):
                return

    def walk(x: Any, scope: Scope | None, current: Def | None, bound: frozenset[str]) -> None:
        if isinstance(x, ast.Name):
            if x.name in bound:
                return
            r = resolve(x.name, scope, current, isinstance(x, ast.OuterName))
            if r == "global":
                names.append(x.name)
            elif isinstance(r, tuple) and isinstance(r[1], ast.LetDecl):
                # An input read through a let (`let domain = "$<region>.example.com"`)
                # fed this value too.
                if id(r[1]) not in seen:
                    seen.add(id(r[1]))
                    walk(r[1].value, r[0], None, frozenset())
            elif isinstance(r, tuple):
                follow(r[0], r[1])
            return
        if isinstance(x, ast.GetAttr) and not bound & _names_in(x):
            t = target(x, scope, current)
            if t is not None:
                follow(*t)
                return
        if isinstance(x, ast.Comprehension):
            walk(x.iterable, scope, current, bound)
            inner = bound | {x.var} | ({x.key_var} if x.key_var else set())
            walk(x.elem, scope, current, inner)
            if x.cond is not None:
                walk(x.cond, scope, current, inner)
            return
        if isinstance(x, tuple):
            for item in x:
                walk(item, scope, current, bound)
        elif isinstance(x, ast._Node):
            # Every other node: its sub-expressions, whatever their place.
            for a in attrs.fields(type(x)):  # type: ignore[arg-type]  # nodes are attrs classes
                child = getattr(x, a.name)
                if isinstance(child, (ast._Node, tuple)):
                    walk(child, scope, current, bound)

    def fd_keys(fd: Def) -> list[str]:
        stmts = fd.body_layer.stmts if fd.body_layer is not None else ()
        return [
            k for st in stmts if isinstance(st, ast.Field) and (k := st.path[0].static) is not None
        ]

    if d.expr is not None:
        seen.add(id(d))
        walk(d.expr, d.scope, d, frozenset())
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


def _reads_super(x: Any) -> bool:
    if isinstance(x, ast.SuperRef):
        return True
    if isinstance(x, tuple):
        return any(_reads_super(i) for i in x)
    if isinstance(x, ast._Node):
        return any(
            _reads_super(getattr(x, a.name))
            for a in attrs.fields(type(x))  # type: ignore[arg-type]  # nodes are attrs classes
        )
    return False


def _names_in(x: Any) -> set[str]:
    """The bare names at the root of `a.b.c`."""
    while isinstance(x, ast.GetAttr):
        x = x.obj
    return {x.name} if isinstance(x, ast.Name) else set()
