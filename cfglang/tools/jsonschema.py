"""JSON Schema (2020-12) export of CFL schemas and types, and the module loading shared by
the tools that read declarations rather than values (`cflc schema export`, `cflc codegen`,
`cflc doc`).

Algorithm: `load_workspace` takes the `Program` of each entry (`cfglang.semantic.programs`:
the one a build of the same sources uses, reused while they are unchanged), and resolves
every type and schema with that program's type resolver (`Program.types`), so exporting a
schema never evaluates a document and works on modules whose inputs are unset. `export` then
walks the resolved type (`cfglang.semantic.types`): every schema and every named alias it
meets becomes one entry of `$defs`, referenced by `$ref`, except the requested one, which
is the root itself (a reference back to it is `"#"`). Refinements (`where`) are split on
`&&` and each conjunct that has a JSON Schema equivalent becomes a keyword (`minimum`,
`pattern`, `maxLength`, ...); the rest are quoted in `description` and `x-cfl-where`, so
the export never claims more than CFL checks, only sometimes less.
"""

from __future__ import annotations

import keyword
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from cfglang.diagnostics import Diagnostic, Diagnostics
from cfglang.project import find_root
from cfglang.semantic import types as T
from cfglang.semantic.program import Program
from cfglang.semantic.programs import program_for
from cfglang.semantic.resolve import ModuleInfo
from cfglang.source import Span
from cfglang.syntax import ast
from cfglang.values import Duration, Size

DRAFT = "https://json-schema.org/draft/2020-12/schema"

# Canonical forms as the emitters print them (`Duration.canonical`, `Size.canonical`): the
# components of a duration are largest first and each below the next unit, so `90m` is
# never printed and the pattern rejects it; the lookahead rejects "" and "-".
DURATION_PATTERN = (
    r"^(0s|-?(?=[0-9])([1-9][0-9]*d)?(([1-9]|1[0-9]|2[0-3])h)?(([1-9]|[1-5][0-9])m)?"
    r"(([1-9]|[1-5][0-9])s)?([1-9][0-9]{0,2}ms)?)$"
)
SIZE_PATTERN = r"^(0B|-?[1-9][0-9]*(B|KB|MB|GB|TB|PB|KiB|MiB|GiB|TiB|PiB))$"


# ---- loading ----------------------------------------------------------------------------------


@attrs.define(eq=False)
class Workspace:
    """Loaded modules (entry files first, then what they import) and the programs they
    come from (one `Program` per entry, from `cfglang.semantic.programs`), every type and
    schema already resolved once by its program's resolver, the findings in
    ``diagnostics``."""

    entries: list[ModuleInfo]
    modules: list[ModuleInfo]
    programs: list[Program]
    diagnostics: list[Diagnostic]
    root: str
    # id of every loaded module (of every program) -> the program that loaded it.
    _owners: dict[int, Program] = attrs.field(factory=dict, repr=False)

    def __attrs_post_init__(self) -> None:
        for p in self.programs:
            for m in p.modules.values():
                self._owners.setdefault(id(m), p)

    def types_of(self, m: ModuleInfo) -> T.TypeResolver:
        """The type resolver of the program ``m`` belongs to (`Program.types`): a module
        is resolved in its own program's graph, with its own imports and parents."""
        return self._owners[id(m)].types

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)

    def find(
        self, name: str, scope: Sequence[ModuleInfo] | None = None
    ) -> tuple[T.Type, ModuleInfo, ast.SchemaDecl | ast.TypeDecl] | None:
        """Resolve NAME (`Service`, `net.Port`, `service.Service`) as the entry modules see
        it; failing that, a declaration of that name in any loaded module (for an
        unqualified name) or in a loaded module whose file stem is the qualifier."""
        parts = tuple(name.split("."))
        if len(parts) > 2 or not all(parts):
            return None
        for entry in scope if scope is not None else self.entries:
            found = self._in_scope(parts, entry)
            if found is not None:
                return found
        for m in self.modules:
            stem = os.path.splitext(os.path.basename(m.source.path))[0].replace("-", "_")
            if len(parts) == 2 and parts[0] != stem:
                continue
            if parts[-1] in m.types or parts[-1] in m.schemas:
                return self._resolve(parts[-1], m)
        return None

    def _in_scope(
        self, parts: tuple[str, ...], entry: ModuleInfo
    ) -> tuple[T.Type, ModuleInfo, ast.SchemaDecl | ast.TypeDecl] | None:
        if len(parts) == 2:
            target = T.find_import(entry, parts[0])
            if target is None:
                return None
            return (
                self._resolve(parts[1], target)
                if (parts[1] in target.types or parts[1] in target.schemas)
                else None
            )
        for m in entry.chain()[::-1]:
            if parts[0] in m.types or parts[0] in m.schemas:
                return self._resolve(parts[0], m)
        return None

    def _resolve(
        self, name: str, m: ModuleInfo
    ) -> tuple[T.Type, ModuleInfo, ast.SchemaDecl | ast.TypeDecl] | None:
        decl: ast.SchemaDecl | ast.TypeDecl = m.types[name] if name in m.types else m.schemas[name]
        t = self.types_of(m).lookup((name,), m, decl.name_span)
        return (t, m, decl) if t is not None else None

    def declarations(self, m: ModuleInfo) -> list[ast.SchemaDecl | ast.TypeDecl]:
        """Types and schemas of a module in the order written."""
        return [s for s in m.tree.body.stmts if isinstance(s, (ast.SchemaDecl, ast.TypeDecl))]


def load_workspace(paths: Iterable[str], allow_paths: Sequence[str] = ()) -> Workspace:
    """The modules at ``paths`` (and everything they import) as a build of each sees them:
    the program of each path comes from `cfglang.semantic.programs.program_for`, so the
    sources a build, the language server or another tool already loaded are not parsed
    or resolved again, and their types are the program's (`Program.types`)."""
    paths = list(paths)
    diags = Diagnostics()
    root = find_root(paths[0]) if paths else os.getcwd()
    programs = [program_for(p, allow_paths=allow_paths) for p in paths]
    entries: list[ModuleInfo] = []
    modules: dict[str, ModuleInfo] = {}
    for program in programs:
        diags.extend(program.diagnostics)
        if program.entry is not None:
            entries.append(program.entry)
        for key, m in program.modules.items():
            modules.setdefault(key, m)  # a module two entries load: the first's
    # Every schema and type is resolved once up front so that unknown types and schema
    # cycles are reported as diagnostics here instead of surfacing halfway through output
    # (a program's resolver memoises them, with their findings, for every later caller).
    for program in programs:
        for m in program.modules.values():
            decls: list[ast.TypeDecl | ast.SchemaDecl] = [*m.types.values(), *m.schemas.values()]
            for decl in decls:
                program.types.lookup((decl.name,), m, decl.name_span, diags)
                if isinstance(decl, ast.SchemaDecl):
                    for stmt in decl.body.stmts:
                        if isinstance(stmt, ast.Field) and stmt.type is not None:
                            program.types.resolve(stmt.type, m, diags)
    return Workspace(entries, list(modules.values()), programs, diags.sorted(), root)


# ---- static values ----------------------------------------------------------------------------


class NotStatic(Exception):
    """An expression whose value needs evaluation (a default such as `"$<name>"`)."""


def static_value(e: ast.Expr) -> Any:
    """The JSON value of a literal expression (durations and sizes canonical)."""
    if isinstance(e, ast.Literal):
        v = e.value
        return v.canonical() if isinstance(v, (Duration, Size)) else v
    if isinstance(e, ast.Str) and e.is_plain:
        return e.text
    if isinstance(e, ast.Unary) and e.op == "-":
        v = static_value(e.operand)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return -v
        raise NotStatic
    if isinstance(e, ast.ListLit):
        return [static_value(x) for x in e.items]
    if isinstance(e, ast.ObjectLit):
        out: dict[str, Any] = {}
        for s in e.body.stmts:
            if not (
                isinstance(s, ast.Field)
                and s.op == "set"
                and len(s.path) == 1
                and s.path[0].static is not None
                and s.value is not None
                and not s.hidden
            ):
                raise NotStatic
            out[s.path[0].static or ""] = static_value(s.value)
        return out
    raise NotStatic


def default_of(f: ast.Field) -> tuple[bool, Any]:
    """(has a default, its JSON value or None when it is not a literal)."""
    if f.value is not None:
        try:
            return True, static_value(f.value)
        except NotStatic:
            return True, None
    if f.body is not None:
        return True, None
    return False, None


def schema_fields(schema: T.Schema) -> list[tuple[str, ast.Field, ModuleInfo]]:
    """Emitted fields of a `Schema`, parents' first, with the module that declares each."""
    return [
        (key, f, schema.owners[key])
        for key, f in schema.fields.items()
        if not f.hidden and len(f.path) == 1
    ]


def schema_checks(schema: T.Schema) -> list[ast.CheckStmt]:
    chain = schema.chain()
    return [
        st for s in reversed(chain) for st in s.decl.body.stmts if isinstance(st, ast.CheckStmt)
    ]


def split_and(e: ast.Expr) -> list[ast.Expr]:
    if isinstance(e, ast.Binary) and e.op == "&&":
        return split_and(e.left) + split_and(e.right)
    return [e]


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def _number(e: ast.Expr) -> int | float | None:
    try:
        v = static_value(e)
    except NotStatic:
        return None
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _is_len_self(e: ast.Expr) -> bool:
    return (
        isinstance(e, ast.Call)
        and isinstance(e.func, ast.Name)
        and e.func.name == "len"
        and len(e.args) == 1
        and isinstance(e.args[0].value, ast.SelfRef)
    )


def _self_call(e: ast.Expr, name: str) -> str | None:
    """The plain string argument of `name(self, "...")`."""
    if (
        isinstance(e, ast.Call)
        and isinstance(e.func, ast.Name)
        and e.func.name == name
        and len(e.args) == 2
        and isinstance(e.args[0].value, ast.SelfRef)
        and isinstance(e.args[1].value, ast.Str)
        and e.args[1].value.is_plain
    ):
        return e.args[1].value.text
    return None


def refinement_keywords(
    where: ast.Expr, base_kind: str | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """JSON Schema keyword sets for the recognised conjuncts of a `where`, and the source
    text of the others. ``base_kind`` is "string", "number", "array" or "object"."""
    found: list[dict[str, Any]] = []
    rest: list[str] = []
    for c in split_and(where):
        kw = _conjunct(c, base_kind)
        if kw is None:
            rest.append(c.span.text())
        else:
            found.append(kw)
    return found, rest


def _conjunct(c: ast.Expr, kind: str | None) -> dict[str, Any] | None:
    pattern = _self_call(c, "matches")
    if pattern is not None and kind == "string":
        return {"pattern": pattern}
    prefix = _self_call(c, "startswith")
    if prefix is not None and kind == "string":
        return {"pattern": "^" + _js_escape(prefix)}
    suffix = _self_call(c, "endswith")
    if suffix is not None and kind == "string":
        return {"pattern": _js_escape(suffix) + "$"}
    if not isinstance(c, ast.Binary) or c.op not in _FLIP:
        return None
    op, left, right = c.op, c.left, c.right
    if not (isinstance(left, ast.SelfRef) or _is_len_self(left)):
        op, left, right = _FLIP[op], right, left
    n = _number(right)
    if n is None or op in ("==", "!="):
        if isinstance(left, ast.SelfRef) and op == "!=" and n is not None:
            return {"not": {"const": n}}
        return None
    if isinstance(left, ast.SelfRef) and kind == "number":
        return {
            "<": {"exclusiveMaximum": n},
            "<=": {"maximum": n},
            ">": {"exclusiveMinimum": n},
            ">=": {"minimum": n},
        }[op]
    if _is_len_self(left) and isinstance(n, int):
        word = {"string": "Length", "array": "Items", "object": "Properties"}.get(kind or "")
        if word is None:
            return None
        bound = {"<": ("max", n - 1), "<=": ("max", n), ">": ("min", n + 1), ">=": ("min", n)}[op]
        return {f"{bound[0]}{word}": max(bound[1], 0)}
    return None


def _js_escape(text: str) -> str:
    # Escape every non-word character: valid in both ECMA-262 (with the `u` flag off) and
    # Python regular expressions.
    return "".join(ch if ch.isalnum() or ch == "_" else "\\" + ch for ch in text)


def type_kind(t: T.Type) -> str | None:
    """The JSON kind of the values of a type: string, number, array, object or None."""
    t = T.strip_alias(t)
    if isinstance(t, T.Refined):
        return type_kind(t.base)
    if isinstance(t, T.Prim):
        return {
            "string": "string",
            "secret": "string",
            "duration": "string",
            "size": "string",
            "int": "number",
            "float": "number",
        }.get(t.name)
    if isinstance(t, T.ListT):
        return "array"
    if isinstance(t, (T.MapT, T.SchemaT)):
        return "object"
    if isinstance(t, T.Lit):
        return (
            "string"
            if isinstance(t.value, str)
            else (
                "number"
                if isinstance(t.value, (int, float)) and not isinstance(t.value, bool)
                else None
            )
        )
    return None


# ---- export -----------------------------------------------------------------------------------


class _Exporter:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.defs: dict[str, dict[str, Any]] = {}
        self.names: dict[int, str] = {}  # id(schema or alias) -> $defs key ("" = root)
        self.docs = _decl_docs(ws.modules)

    def ref(self, key: str) -> dict[str, Any]:
        return {"$ref": "#" if key == "" else f"#/$defs/{key}"}

    def _key_for(self, obj: object, name: str, module: ModuleInfo | None) -> str:
        if id(obj) in self.names:
            return self.names[id(obj)]
        key = name
        taken = set(self.names.values())
        if key in taken and module is not None:
            key = f"{_stem(module)}.{name}"
        n = 2
        base = key
        while key in taken:
            key, n = f"{base}{n}", n + 1
        self.names[id(obj)] = key
        return key

    def named(self, t: T.Alias | T.SchemaT) -> dict[str, Any]:
        obj: object = t.schema if isinstance(t, T.SchemaT) else t
        if id(obj) in self.names:
            return self.ref(self.names[id(obj)])
        module = t.schema.module if isinstance(t, T.SchemaT) else None
        if isinstance(t, T.Alias):
            module = self.docs.get(_span_key(t.decl_span), (None, None))[1]
        key = self._key_for(obj, t.name, module)
        self.defs[key] = {}  # reserve first: a recursive reference sees the key
        self.defs[key] = self.body(t)
        return self.ref(key)

    def body(self, t: T.Alias | T.SchemaT) -> dict[str, Any]:
        if isinstance(t, T.SchemaT):
            return self.schema_body(t.schema)
        out = dict(self.convert(t.target))
        doc = self.docs.get(_span_key(t.decl_span), (None, None))[0]
        out = _with_title(out, t.name)
        if doc:
            out = _add_description(out, doc, first=True)
        return out

    def schema_body(self, s: Any) -> dict[str, Any]:
        props: dict[str, Any] = {}
        required: list[str] = []
        for key, f, module in schema_fields(s):
            typ = self.ws.types_of(module).resolve(f.type, module) if f.type is not None else T.ANY
            p = self.convert(typ)
            if f.where is not None:
                p = self.refine(p, f.where, type_kind(typ))
            has_default, default = default_of(f)
            if has_default and default is not None:
                p = {**p, "default": default}
            if f.doc:
                p = _add_description(p, f.doc, first=True)
            if f.final:
                p = {**p, "readOnly": True}
            props[key] = p
            if not has_default and not T.is_optional(typ):
                required.append(key)
        out: dict[str, Any] = {"title": s.name, "type": "object"}
        if s.decl.doc:
            out["description"] = s.decl.doc
        out["properties"] = props
        if required:
            out["required"] = required
        out["additionalProperties"] = False
        checks = schema_checks(s)
        if checks:
            out["x-cfl-checks"] = [
                {"expr": c.expr.span.text(), **({"message": c.message} if c.message else {})}
                for c in checks
            ]
            lines = [
                f"check `{c.expr.span.text()}`" + (f": {c.message}" if c.message else "")
                for c in checks
            ]
            out = _add_description(out, "Checks:\n" + "\n".join(f"- {x}" for x in lines))
        if s.parent is not None:
            out["x-cfl-extends"] = s.parent.name
        return out

    def refine(self, base: dict[str, Any], where: ast.Expr, kind: str | None) -> dict[str, Any]:
        found, rest = refinement_keywords(where, kind)
        out = dict(base)
        extra: list[dict[str, Any]] = []
        for kw in found:
            # A keyword the base already has (two patterns, or a `$ref` sibling that sets
            # the same bound) goes into allOf so that both must hold.
            if any(k in out for k in kw) or "$ref" in out or "anyOf" in out:
                extra.append(kw)
            else:
                out.update(kw)
        if extra:
            out = {**out, "allOf": [*out.get("allOf", []), *extra]}
        if rest:
            out["x-cfl-where"] = [*out.get("x-cfl-where", []), *rest]
            out = _add_description(out, "Must satisfy: " + " && ".join(f"`{r}`" for r in rest))
        return out

    def convert(self, t: T.Type) -> dict[str, Any]:
        if isinstance(t, T.Alias):
            return self.named(t)
        if isinstance(t, T.SchemaT):
            return self.named(t)
        if isinstance(t, T.Prim):
            return _prim(t.name)
        if isinstance(t, T.Lit):
            return {"const": t.value}
        if isinstance(t, T.ListT):
            return {"type": "array", "items": self.convert(t.elem)}
        if isinstance(t, T.MapT):
            out: dict[str, Any] = {"type": "object", "additionalProperties": self.convert(t.value)}
            key = self.convert(t.key)
            if key not in ({"type": "string"}, {}):
                out["propertyNames"] = key
            return out
        if isinstance(t, T.Opt):
            return _or_null(self.convert(t.inner))
        if isinstance(t, T.UnionT):
            opts = [self.convert(o) for o in t.options]
            if all(set(o) == {"const"} for o in opts):
                return {"enum": _unique([o["const"] for o in opts])}
            return {"anyOf": opts}
        if isinstance(t, T.Refined):
            return self.refine(self.convert(t.base), t.where, type_kind(t.base))
        return {}  # pragma: no cover - every Type is handled above


def _prim(name: str) -> dict[str, Any]:
    if name == "duration":
        return {"type": "string", "pattern": DURATION_PATTERN, "x-cfl-type": "duration"}
    if name == "size":
        return {"type": "string", "pattern": SIZE_PATTERN, "x-cfl-type": "size"}
    if name == "secret":
        return {"type": "string", "x-cfl-type": "secret"}
    return {
        "bool": {"type": "boolean"},
        "int": {"type": "integer"},
        "float": {"type": "number"},
        "string": {"type": "string"},
        "null": {"type": "null"},
    }.get(name, {})


def _or_null(s: dict[str, Any]) -> dict[str, Any]:
    if s == {}:
        return s
    if set(s) == {"enum"}:
        return {"enum": _unique([*s["enum"], None])}
    if set(s) == {"const"}:
        return {"enum": _unique([s["const"], None])}
    if "anyOf" in s and set(s) == {"anyOf"}:
        if {"type": "null"} in s["anyOf"]:
            return s
        return {"anyOf": [*s["anyOf"], {"type": "null"}]}
    if isinstance(s.get("type"), str) and "$ref" not in s:
        # `type` with other keywords: pattern/minimum only constrain values of their own
        # kind, so widening `type` admits null without weakening them.
        if s["type"] == "null":
            return s
        return {**s, "type": [s["type"], "null"]}
    return {"anyOf": [s, {"type": "null"}]}


def _unique(xs: list[Any]) -> list[Any]:
    out: list[Any] = []
    for x in xs:
        if not any(x == y and type(x) is type(y) for y in out):
            out.append(x)
    return out


def _with_title(s: dict[str, Any], title: str) -> dict[str, Any]:
    return {"title": title, **s} if "$ref" not in s else {"title": title, "allOf": [s]}


def _add_description(s: dict[str, Any], text: str, *, first: bool = False) -> dict[str, Any]:
    old = s.get("description")
    if old:
        text = f"{text}\n\n{old}" if first else f"{old}\n\n{text}"
    return {**s, "description": text}


def _stem(m: ModuleInfo) -> str:
    return os.path.splitext(os.path.basename(m.source.path))[0].replace("-", "_")


def _span_key(span: Span | None) -> tuple[str, int] | None:
    return (span.source.path, span.start) if span is not None else None


def _decl_docs(
    modules: Iterable[ModuleInfo],
) -> dict[tuple[str, int] | None, tuple[str | None, ModuleInfo]]:
    """Doc comment and module of every type alias, keyed by its name's position (the
    resolved `Alias` keeps only that span)."""
    out: dict[tuple[str, int] | None, tuple[str | None, ModuleInfo]] = {}
    for m in modules:
        for d in m.types.values():
            out[_span_key(d.name_span)] = (d.doc, m)
    return out


def export(ws: Workspace, name: str) -> dict[str, Any] | None:
    """The JSON Schema document for NAME, or None when no schema or type has that name."""
    found = ws.find(name)
    if found is None:
        return None
    typ, _module, _decl = found
    ex = _Exporter(ws)
    target: object = typ.schema if isinstance(typ, T.SchemaT) else typ
    ex.names[id(target)] = ""  # the root: references to it are "#"
    root = ex.body(typ) if isinstance(typ, (T.SchemaT, T.Alias)) else ex.convert(typ)
    doc: dict[str, Any] = {"$schema": DRAFT, "$id": f"urn:cfl:{name}"}
    doc.update(root)
    doc["title"] = name
    if ex.defs:
        doc["$defs"] = dict(sorted(ex.defs.items()))
    return doc


def python_identifier(key: str) -> str:
    """A Python identifier for a CFL key (`max-conns` -> `max_conns`, `class` -> `class_`)."""
    ident = re.sub(r"\W", "_", key) or "_"
    if ident[0].isdigit():
        ident = "_" + ident
    if keyword.iskeyword(ident) or keyword.issoftkeyword(ident):
        ident += "_"
    return ident
