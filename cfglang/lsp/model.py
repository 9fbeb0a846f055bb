"""Questions about the syntax trees of a project, answered without evaluating anything.

Everything here reads the frozen trees and the module tables the resolver builds
(`ModuleInfo`), so it works on any module that parses. The algorithm for each question:

- *what is under the cursor* — descend from the module node into the child whose span
  holds the offset (`node_path`), keeping the ancestors;
- *which data path a field key names* — walk the statement bodies from the module down,
  appending the static keys of each field on the way (a merge block, an object literal
  and a refined value all continue the path; `if` bodies keep it; `for` bodies and
  computed keys make it unknown);
- *where a name is declared* — not worked out here: the binder
  (`cfglang.semantic.bind`) binds every name, type and import member of a module in
  the evaluator's own precedence, and `ref_at` reads its table (`bindings`: the
  table of the open file's `Program`, `Program.bindings`);
- *which schema types a data path* — along the path, a field's declared type, the schema
  field that the parent's schema declares for it, or the declared result type of the
  template whose call builds the value.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import attrs

from cfglang.eval.builtins import BUILTINS
from cfglang.semantic.bind import Binding, Bindings, bind, find_import, type_binding
from cfglang.semantic.program import Program
from cfglang.semantic.resolve import ModuleInfo
from cfglang.source import Span
from cfglang.syntax import ast

Node = Any
DataPath = tuple[str, ...]


def contains(span: Span | None, offset: int) -> bool:
    """Whether a cursor at ``offset`` touches ``span`` (its end included)."""
    return span is not None and span.start <= offset <= span.end


def children(node: Node) -> Iterator[Node]:
    """The syntax nodes directly below ``node``, in field order."""
    for a in attrs.fields(type(node)):
        value = getattr(node, a.name)
        if isinstance(value, tuple):
            for item in value:
                if attrs.has(type(item)):
                    yield item
        elif value is not None and attrs.has(type(value)) and not isinstance(value, Span):
            yield value


def node_path(root: Node, offset: int) -> list[Node]:
    """The chain of nodes holding ``offset``, outermost first."""
    out = [root]
    node = root
    while True:
        nxt = None
        for child in children(node):
            if contains(getattr(child, "span", None), offset):
                nxt = child
                break
        if nxt is None:
            return out
        out.append(nxt)
        node = nxt


def walk(root: Node) -> Iterator[Node]:
    """Every node below ``root`` (``root`` included), depth first in source order."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(list(children(node))))


def static_keys(path: tuple[ast.Key, ...]) -> DataPath | None:
    keys = [k.static for k in path]
    if any(k is None for k in keys):
        return None
    return tuple(k for k in keys if k is not None)


def value_body(f: ast.Field) -> ast.Body | None:
    """The body that continues a field's data path: a merge block or an object value."""
    if f.body is not None:
        return f.body
    if isinstance(f.value, ast.ObjectLit):
        return f.value.body
    if isinstance(f.value, ast.Refine):
        return f.value.body
    return None


def sub_bodies(stmt: ast.Stmt) -> Iterator[ast.Body]:
    """The bodies of an `if` statement (every branch) that add to the enclosing body."""
    if isinstance(stmt, ast.IfStmt):
        yield stmt.then
        node: ast.Body | ast.IfStmt | None = stmt.orelse
        while isinstance(node, ast.IfStmt):
            yield node.then
            node = node.orelse
        if isinstance(node, ast.Body):
            yield node


# ---- field keys and data paths -------------------------------------------------------------


@attrs.frozen
class KeyHit:
    """A field key under the cursor.

    ``path`` is the data path it names when the field is part of the module's document
    (None inside schemas, templates, `for` bodies and computed keys); ``context`` names
    the declaration holding it (``schema Name`` / ``template Name``) or is None.
    """

    field: ast.Field
    key: ast.Key
    path: DataPath | None
    local: DataPath  # the keys from the innermost schema/template body down to the key
    context: ast.SchemaDecl | ast.TemplateDecl | None


def key_at(tree: ast.Module, offset: int) -> KeyHit | None:
    """The field key under the cursor, with the data path it names."""

    def visit(
        body: ast.Body,
        prefix: DataPath | None,
        local: DataPath,
        ctx: ast.SchemaDecl | ast.TemplateDecl | None,
    ) -> KeyHit | None:
        for stmt in body.stmts:
            if not contains(stmt.span, offset):
                continue
            if isinstance(stmt, ast.Field):
                keys = static_keys(stmt.path)
                for i, k in enumerate(stmt.path):
                    if contains(k.span, offset):
                        mine = keys[: i + 1] if keys is not None else None
                        return KeyHit(
                            stmt,
                            k,
                            None if prefix is None or mine is None else prefix + mine,
                            local + mine if mine is not None else local,
                            ctx,
                        )
                inner = value_body(stmt)
                if inner is not None and contains(inner.span, offset):
                    return visit(
                        inner,
                        None if prefix is None or keys is None else prefix + keys,
                        local + (keys or ()),
                        ctx,
                    )
                # An object nested deeper in the value (a list item, an argument).
                for node in walk(stmt.value) if stmt.value is not None else ():
                    if (
                        isinstance(node, (ast.ObjectLit, ast.Refine))
                        and contains(node.body.span, offset)
                        and node is not stmt.value
                    ):
                        return visit(node.body, None, (), ctx)
            elif isinstance(stmt, ast.IfStmt):
                for b in sub_bodies(stmt):
                    if contains(b.span, offset):
                        return visit(b, prefix, local, ctx)
            elif isinstance(stmt, ast.ForStmt):
                return visit(stmt.body, None, local, ctx)
            elif isinstance(stmt, (ast.SchemaDecl, ast.TemplateDecl)):
                return visit(stmt.body, None, (), stmt)
            elif isinstance(stmt, (ast.LetDecl, ast.OutputDecl)):
                for node in walk(stmt.value):
                    if isinstance(node, (ast.ObjectLit, ast.Refine)) and contains(
                        node.body.span, offset
                    ):
                        return visit(node.body, None, (), ctx)
        return None

    return visit(tree.body, (), (), None)


def fields_at(body: ast.Body, path: DataPath) -> Iterator[ast.Field]:
    """Every field statement in ``body`` that defines exactly ``path`` (source order)."""
    for stmt in body.stmts:
        if isinstance(stmt, ast.Field):
            keys = static_keys(stmt.path)
            if keys is None or keys != path[: len(keys)]:
                continue
            if len(keys) == len(path):
                yield stmt
            else:
                inner = value_body(stmt)
                if inner is not None:
                    yield from fields_at(inner, path[len(keys) :])
        else:
            for b in sub_bodies(stmt):
                yield from fields_at(b, path)


def field_defs(chain: list[ModuleInfo], path: DataPath) -> list[tuple[ModuleInfo, ast.Field]]:
    """The definitions of a data path along an extends chain, base first."""
    return [(m, f) for m in chain for f in fields_at(m.tree.body, path)]


# ---- declarations --------------------------------------------------------------------------


Decl = (
    ast.LetDecl
    | ast.InputDecl
    | ast.TypeDecl
    | ast.SchemaDecl
    | ast.TemplateDecl
    | ast.Import
    | ast.Field
    | ast.Unset
    | ast.Param
    | ast.ForStmt
    | ast.Comprehension
)


@attrs.frozen
class Target:
    """A declaration found for a name: the node, its module and the span to jump to."""

    kind: str  # let, input, type, schema, template, import, field, parameter, variable
    node: Decl
    module: ModuleInfo
    span: Span


# The binder's kinds, as the editor shows them.
_KIND_NAMES = {"param": "parameter", "for_var": "variable"}

# The programs of the analyses alive (entry module id -> program; weak: a program lives
# as long as the analysis, or the last graph that parsed, that holds it), and bindings of
# modules no program here has as its entry, kept for the last ones asked about (a module
# graph is rebuilt, not changed, when a buffer changes).
_PROGRAMS: weakref.WeakValueDictionary[int, Program] = weakref.WeakValueDictionary()
_BINDINGS: OrderedDict[int, tuple[ModuleInfo, Bindings]] = OrderedDict()
_BINDINGS_KEPT = 64


def remember(program: Program) -> None:
    """Make ``program`` the one `bindings` reads for its entry module."""
    if program.entry is not None:
        _PROGRAMS[id(program.entry)] = program


def program_of(m: ModuleInfo) -> Program | None:
    """The program alive whose entry is ``m`` (each open file is compiled as one)."""
    program = _PROGRAMS.get(id(m))
    return program if program is not None and program.entry is m else None


def bindings(m: ModuleInfo) -> Bindings:
    """The static bindings of the names in ``m``, seen with ``m`` as the entry (each open
    file is compiled as one), from `cfglang.semantic.bind`: the table of the program
    compiled for ``m`` (`Program.bindings`, shared with every build of the same texts).
    A module that is no program's entry here (a base or an import of the open file, a
    target's graph) is bound on its own, seen as the entry of its own compile."""
    program = program_of(m)
    table = program.bindings(BUILTINS) if program is not None else None
    if table is not None:
        return table
    hit = _BINDINGS.get(id(m))
    if hit is not None and hit[0] is m:
        _BINDINGS.move_to_end(id(m))
        return hit[1]
    table = bind(m, builtins=BUILTINS, modules=(m,))
    _BINDINGS[id(m)] = (m, table)
    while len(_BINDINGS) > _BINDINGS_KEPT:
        _BINDINGS.popitem(last=False)
    return table


def target_of(b: Binding | None) -> Target | None:
    """The declaration a binding names, or None (a builtin, an unknown name)."""
    if b is None or b.decl is None or b.module is None or b.span is None:
        return None
    return Target(_KIND_NAMES.get(b.kind, b.kind), b.decl, b.module, b.span)


def imported(m: ModuleInfo, alias: str) -> ModuleInfo | None:
    found = find_import(m, alias)
    return found[2] if found is not None else None


def type_decl(m: ModuleInfo, path: tuple[str, ...]) -> Target | None:
    """The `type` or `schema` a type path (`Port`, `net.Port`) names, seen from ``m``."""
    t = target_of(type_binding(m, path))
    return t if t is not None and t.kind in ("type", "schema") else None


def schema_fields(m: ModuleInfo, schema: ast.SchemaDecl) -> list[tuple[ModuleInfo, ast.Field]]:
    """The fields a schema declares, its parents' first."""
    out: list[tuple[ModuleInfo, ast.Field]] = []
    if schema.parent is not None:
        parent = type_decl(m, schema.parent)
        if (
            parent is not None
            and isinstance(parent.node, ast.SchemaDecl)
            and (parent.node is not schema)
        ):
            out += schema_fields(parent.module, parent.node)
    for stmt in schema.body.stmts:
        if isinstance(stmt, ast.Field) and len(stmt.path) == 1:
            out.append((m, stmt))
    return out


def schema_field(
    m: ModuleInfo, schema: ast.SchemaDecl, name: str
) -> tuple[ModuleInfo, ast.Field] | None:
    found = None
    for mod, f in schema_fields(m, schema):
        if f.path[0].static == name:
            found = (mod, f)
    return found


def schema_of_type(
    m: ModuleInfo, t: ast.TypeExpr | None, depth: int = 0
) -> tuple[ModuleInfo, ast.SchemaDecl] | None:
    """The schema a type expression denotes (through `T?` and `type` aliases)."""
    if t is None or depth > 20:
        return None
    if isinstance(t, ast.OptionalType):
        return schema_of_type(m, t.inner, depth + 1)
    if isinstance(t, ast.NamedType):
        target = type_decl(m, t.path)
        if target is None:
            return None
        if isinstance(target.node, ast.SchemaDecl):
            return target.module, target.node
        if isinstance(target.node, ast.TypeDecl):
            return schema_of_type(target.module, target.node.type, depth + 1)
    return None


def _template_type(m: ModuleInfo, e: ast.Expr | None) -> tuple[ModuleInfo, ast.SchemaDecl] | None:
    if isinstance(e, ast.Refine):
        return _template_type(m, e.base)
    if isinstance(e, ast.Call):
        target: Target | None = None
        if isinstance(e.func, ast.Name):
            target = target_of(bindings(m).name(e.func))
        elif isinstance(e.func, ast.GetAttr):
            target = target_of(bindings(m).member(e.func))
        if target is not None and isinstance(target.node, ast.TemplateDecl):
            return schema_of_type(target.module, target.node.type)
    return None


def schema_at(chain: list[ModuleInfo], path: DataPath) -> tuple[ModuleInfo, ast.SchemaDecl] | None:
    """The schema that types the object at ``path`` of the document of ``chain``."""
    current: tuple[ModuleInfo, ast.SchemaDecl] | None = None
    for i in range(len(path)):
        found: tuple[ModuleInfo, ast.SchemaDecl] | None = None
        for mod, f in reversed(field_defs(chain, path[: i + 1])):
            found = schema_of_type(mod, f.type) or _template_type(mod, f.value)
            if found is not None:
                break
        if found is None and current is not None:
            sf = schema_field(current[0], current[1], path[i])
            if sf is not None:
                found = schema_of_type(sf[0], sf[1].type)
        current = found
    return current


def schema_in_context(
    m: ModuleInfo, ctx: ast.SchemaDecl | ast.TemplateDecl, local: DataPath
) -> tuple[ModuleInfo, ast.SchemaDecl] | None:
    """The schema typing ``local`` inside a schema or template body."""
    current: tuple[ModuleInfo, ast.SchemaDecl] | None
    if isinstance(ctx, ast.SchemaDecl):
        current = (m, ctx)
    else:
        current = schema_of_type(m, ctx.type)
    for seg in local:
        if current is None:
            return None
        sf = schema_field(current[0], current[1], seg)
        current = schema_of_type(sf[0], sf[1].type) if sf is not None else None
    return current


def modules_of(entry: ModuleInfo | None) -> dict[str, ModuleInfo]:
    """Every module reachable from ``entry`` through `extends` and imports, by path."""
    out: dict[str, ModuleInfo] = {}
    stack = [entry] if entry is not None else []
    while stack:
        m = stack.pop()
        if m.key in out:
            continue
        out[m.key] = m
        if m.parent is not None:
            stack.append(m.parent)
        stack.extend(x for x in m.imports.values() if x is not None)
    return out


# ---- what the cursor points at -------------------------------------------------------------


@attrs.frozen
class FileRef:
    """An `import`/`extends` path: jumps to the file."""

    path: str
    span: Span


@attrs.frozen
class BuiltinRef:
    """A call of a builtin function."""

    name: str
    span: Span


Ref = Target | FileRef | BuiltinRef


def _expr_path(m: ModuleInfo, e: ast.Expr) -> DataPath | None:
    """The document path a `a.b.c` expression reads, when `a` is a field of the document."""
    names: list[str] = []
    while isinstance(e, ast.GetAttr):
        names.append(e.name)
        e = e.obj
    if not isinstance(e, ast.Name):
        return None
    b = bindings(m).name(e)
    if b is None or b.kind != "field" or b.obj is None or b.obj.kind != "document":
        return None
    return (e.name, *reversed(names))


def ref_at(m: ModuleInfo, offset: int) -> tuple[Ref, Span] | None:
    """What the name under the cursor refers to, and the span of that name: read from
    the module's static bindings (`cfglang.semantic.bind`), so it is what the evaluator
    would find."""
    chain = node_path(m.tree, offset)
    table = bindings(m)
    for node in reversed(chain):
        if isinstance(node, (ast.Import, ast.ExtendsDecl)) and contains(node.path_span, offset):
            target = m.parent if isinstance(node, ast.ExtendsDecl) else m.imports.get(node.alias)
            if target is not None and target.source.real_path is not None:
                return FileRef(target.source.real_path, node.path_span), node.path_span
            return None
        if isinstance(node, ast.Name):
            b = table.name(node)
            t = target_of(b)
            # `outer.name`: the name is what refers (and what a rename changes).
            at = node.name_span if isinstance(node, ast.OuterName) else node.span
            if t is not None:
                return t, at
            if b is not None and b.kind == "builtin":
                return BuiltinRef(node.name, node.span), node.span
            return None
        if isinstance(node, ast.GetAttr) and contains(node.name_span, offset):
            member = table.member(node)
            if member is not None:
                t = target_of(member)
                return (t, node.name_span) if t is not None else None
            path = _expr_path(m, node)
            if path is not None:
                defs = field_defs(m.chain(), path)
                if defs:
                    mod, f = defs[0]
                    return Target("field", f, mod, f.path[-1].span), node.name_span
                parent = schema_at(m.chain(), path[:-1])
                sf = schema_field(parent[0], parent[1], path[-1]) if parent else None
                if sf is not None:
                    return Target("field", sf[1], sf[0], sf[1].path[0].span), node.name_span
            return None
        if isinstance(node, ast.NamedType):
            text = node.span.text()
            rel = offset - node.span.start
            seg = text[:rel].count(".")
            if seg >= len(node.path):
                return None
            b = table.type(node) or type_binding(m, node.path)
            if seg == 0 and len(node.path) > 1:
                b = b.via
            t = target_of(b)
            return (t, node.span) if t is not None else None
        if isinstance(node, ast.SchemaDecl) and contains(node.parent_span, offset):
            t = target_of(table.schema_parent(node))
            assert node.parent_span is not None
            return (t, node.parent_span) if t is not None else None
        if isinstance(
            node, (ast.LetDecl, ast.InputDecl, ast.TypeDecl, ast.SchemaDecl, ast.TemplateDecl)
        ) and contains(node.name_span, offset):
            kind = {
                ast.LetDecl: "let",
                ast.InputDecl: "input",
                ast.TypeDecl: "type",
                ast.SchemaDecl: "schema",
                ast.TemplateDecl: "template",
            }[type(node)]
            return Target(kind, node, m, node.name_span), node.name_span
    return None
