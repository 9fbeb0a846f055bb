"""Resolved types, and the resolver that produces them.

A `TypeExpr` from the syntax tree is resolved once, in the scope of its module, into one
of the classes below. Refinements keep their `where` expression and the module they were
written in; the evaluator checks them on values (`cfglang.eval.evaluate`).

Algorithm (`TypeResolver`): a type expression is structural (`list[T]`, `T?`, `A | B`,
literals, primitives) or a name. A name `N` is looked up along the module's `extends`
chain, child first, among its `type` aliases and schemas; `m.N` is looked up in the module
imported as `m` (found along the same chain). An alias resolves its target in its own
module; a schema resolves its `extends` parent the same way, so a `Schema` knows its whole
ancestry. Both kinds of declaration are resolved once per declaration; a declaration met
again while it is being resolved closes a cycle (`type A = B; type B = A`, or a schema
extending itself) and is reported at the reference that closes it, which then resolves to
`any` (an alias) or to no parent (a schema).

Results are memoised per resolver (one resolver per module graph), each with the
diagnostics its resolution produced: a later request, from the same or another
compilation, replays them into that caller's collector, whose de-duplication keeps one
message per mistake. Misses are computed under one re-entrant lock, so the memo is filled
once and every caller sees the same `Schema` objects (identity matters: `Schema.is_a`).
Hits read the memo without the lock. Resolution never evaluates anything: nothing here
needs an evaluator or inputs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import attrs

from cfglang.diagnostics import Diagnostic, Diagnostics, Note, did_you_mean
from cfglang.source import Span
from cfglang.syntax import ast

if TYPE_CHECKING:
    from cfglang.semantic.resolve import ModuleInfo

PRIMITIVES = ("bool", "int", "float", "string", "duration", "size", "secret", "any", "null")


@attrs.frozen
class Prim:
    name: str

    def show(self) -> str:
        return self.name


@attrs.frozen
class Lit:
    value: object

    def show(self) -> str:
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        return json.dumps(self.value) if isinstance(self.value, str) else str(self.value)


@attrs.frozen
class ListT:
    elem: Type

    def show(self) -> str:
        return f"list[{self.elem.show()}]"


@attrs.frozen
class MapT:
    key: Type
    value: Type

    def show(self) -> str:
        return f"map[{self.key.show()}, {self.value.show()}]"


@attrs.frozen
class Opt:
    inner: Type

    def show(self) -> str:
        return f"{self.inner.show()}?"


@attrs.frozen
class UnionT:
    options: tuple[Type, ...]

    def show(self) -> str:
        return " | ".join(o.show() for o in self.options)


@attrs.frozen(eq=False)
class Refined:
    """``base where expr``; ``name`` is the alias that declared it (for messages)."""

    base: Type
    where: ast.Expr
    module: ModuleInfo
    name: str | None
    decl_span: Span | None

    def show(self) -> str:
        return self.name or f"{self.base.show()} where {self.where.span.text()}"


@attrs.frozen(eq=False)
class Alias:
    """A named `type` alias; keeps the name for messages and the declaration site."""

    name: str
    target: Type
    decl_span: Span

    def show(self) -> str:
        return self.name


class Schema:
    """A resolved schema: its declaration and module, the schema it extends (resolved),
    and its declared fields, inherited ones first (the first declaration of a key in a
    body wins, as in the evaluator's expansion), each with the module that declares it
    (``owners``): an inherited field's type and `where` mean what they mean there.

    ``field_types`` memoises, per key, the types the schema alone declares for that key
    (`TypeResolver.schema_field_types`, only for types that resolved without a finding);
    it is filled once and shared by every object and every evaluation of the schema.
    """

    __slots__ = ("decl", "field_types", "fields", "module", "name", "owners", "parent")

    def __init__(
        self, name: str, decl: ast.SchemaDecl, module: ModuleInfo, parent: Schema | None
    ) -> None:
        self.name = name
        self.decl = decl
        self.module = module
        self.parent = parent
        self.fields: dict[str, ast.Field] = dict(parent.fields) if parent else {}
        self.owners: dict[str, ModuleInfo] = dict(parent.owners) if parent else {}
        self.field_types: dict[str, list[tuple[Type, Span]]] = {}
        for stmt in decl.body.stmts:
            # `is not None`: the empty key `""` is a legitimate field name.
            if isinstance(stmt, ast.Field) and stmt.path and stmt.path[0].static is not None:
                key = stmt.path[0].static
                if key not in self.fields:
                    self.fields[key] = stmt
                    self.owners[key] = module

    def is_a(self, other: Schema) -> bool:
        s: Schema | None = self
        while s is not None:
            if s is other:
                return True
            s = s.parent
        return False

    def chain(self) -> list[Schema]:
        """This schema and its ancestors, the schema itself first."""
        out: list[Schema] = []
        s: Schema | None = self
        while s is not None:
            out.append(s)
            s = s.parent
        return out

    def __repr__(self) -> str:
        return f"Schema({self.name})"


@attrs.frozen(eq=False)
class SchemaT:
    """A schema used as a type."""

    schema: Schema
    name: str

    def show(self) -> str:
        return self.name


Type = Prim | Lit | ListT | MapT | Opt | UnionT | Refined | Alias | SchemaT

ANY = Prim("any")


def components(t: Type) -> tuple[Type, ...]:
    """The types ``t`` is directly made of (an alias's target, a refinement's base, a
    union's options, ...); a schema's fields are not components."""
    if isinstance(t, Alias):
        return (t.target,)
    if isinstance(t, Refined):
        return (t.base,)
    if isinstance(t, Opt):
        return (t.inner,)
    if isinstance(t, UnionT):
        return t.options
    if isinstance(t, ListT):
        return (t.elem,)
    if isinstance(t, MapT):
        return (t.key, t.value)
    return ()


def holds_secret(t: Type) -> bool:
    """Whether a value of type ``t`` may be (or hold) a secret, so that a message about a
    value offered for it must not quote the value (a refinement of ``secret`` included)."""
    stack = [t]
    while stack:
        x = stack.pop()
        if x == Prim("secret"):
            return True
        stack.extend(components(x))
    return False


def strip_alias(t: Type) -> Type:
    while isinstance(t, Alias):
        t = t.target
    return t


def is_optional(t: Type) -> bool:
    t = strip_alias(t)
    if isinstance(t, Opt):
        return True
    if isinstance(t, Refined):
        return is_optional(t.base)
    if isinstance(t, UnionT):
        return any(is_optional(o) or strip_alias(o) == Prim("null") for o in t.options)
    return t == Prim("any") or t == Prim("null")


def schema_of(t: Type) -> Schema | None:
    """The schema a value of this type must follow, if exactly one."""
    t = strip_alias(t)
    if isinstance(t, SchemaT):
        return t.schema
    if isinstance(t, (Opt, Refined)):
        return schema_of(t.inner if isinstance(t, Opt) else t.base)
    if isinstance(t, UnionT):
        found = [s for s in (schema_of(o) for o in t.options) if s is not None]
        return found[0] if len(found) == 1 else None
    return None


# ---- resolution ---------------------------------------------------------------------------


def find_import(module: ModuleInfo, alias: str) -> ModuleInfo | None:
    """The module imported as ``alias`` where ``module`` is (its `extends` chain, child
    first); None when there is no such import or it failed to load."""
    for mod in module.chain()[::-1]:
        if alias in mod.imports:
            return mod.imports[alias]
    return None


def failed_import(module: ModuleInfo, alias: str) -> bool:
    """Whether ``alias`` (a qualifier, `alias.Name`) may name a module that could not be
    loaded where ``module`` is: then names through it are silent placeholders, since the
    failed import was reported. That is so for an import of that name that failed, and for
    any unknown qualifier in a module whose chain has a failed import: a misspelt path
    (`import "schemas/servics.cfl"`) also misspells the alias it gives, while the module
    goes on writing `service.Service` (one mistake, one message)."""
    chain = module.chain()
    if any(alias in mod.imports for mod in chain):
        return all(mod.imports.get(alias, None) is None for mod in chain)
    return any(None in mod.imports.values() for mod in chain)


class _Cycle(Exception):
    """Unwinds to the schema whose `extends` chain closes on itself (already reported)."""


_V = TypeVar("_V")
# key -> (answer, findings, the node keyed by id: held so that its id is not reused)
_Memo = dict[object, tuple[_V, tuple[Diagnostic, ...], object]]


class TypeResolver:
    """Resolves the type expressions and schemas of one module graph (see the module
    docstring). Safe to share between threads; ``diags`` of each call may be None (then
    the findings are only memoised)."""

    def __init__(self) -> None:
        self._types: _Memo[Type] = {}
        self._aliases: _Memo[Type] = {}
        self._schemas: _Memo[Schema] = {}
        # Declarations being resolved (cycle detection); only touched under the lock.
        self._building: set[int] = set()
        self._lock = threading.RLock()
        # Every schema made, in the order made (see `schemas_made`).
        self._made: list[Schema] = []

    # -- public ---------------------------------------------------------------------------------

    def resolve(
        self, texpr: ast.TypeExpr, module: ModuleInfo, diags: Diagnostics | None = None
    ) -> Type:
        """The type ``texpr`` names, written in ``module``; `any` where it names nothing."""
        hit = self._types.get((id(texpr), module.key))
        if hit is None:
            return self._locked(diags, lambda out: self._resolve(texpr, module, out))
        if hit[1] and diags is not None:
            diags.extend(hit[1])
        return hit[0]

    def lookup(
        self,
        path: tuple[str, ...],
        module: ModuleInfo,
        span: Span,
        diags: Diagnostics | None = None,
    ) -> Type | None:
        """The alias or schema a name (`N` or `m.N`) denotes in ``module``; None (with a
        diagnostic at ``span``) when it denotes none."""
        return self._locked(diags, lambda out: self._lookup(path, module, span, out))

    def schema(
        self, decl: ast.SchemaDecl, module: ModuleInfo, diags: Diagnostics | None = None
    ) -> Schema:
        """The resolved schema of a declaration of ``module``."""
        hit = self._schemas.get(id(decl))
        if hit is None:
            return self._locked(diags, lambda out: self._schema(decl, module, out))
        if hit[1] and diags is not None:
            diags.extend(hit[1])
        return hit[0]

    def schema_field_types(
        self, schema: Schema, key: str, diags: Diagnostics | None = None
    ) -> list[tuple[Type, Span]]:
        """The types ``schema`` itself declares for ``key`` (none or one), with the
        declaring field's span; memoised on the schema."""
        cached = schema.field_types.get(key)
        if cached is not None:
            return cached
        sf = schema.fields.get(key)
        out: list[tuple[Type, Span]] = []
        if sf is not None and sf.type is not None:
            owner = schema.owners[key]
            out.append((self.resolve(sf.type, owner, diags), sf.span))
            if self._types[(id(sf.type), owner.key)][1]:
                # Its findings must reach every caller: resolved (and replayed) each time.
                return out
        # One list for every caller: set once, the first one stored wins.
        return schema.field_types.setdefault(key, out)

    def schemas_made(self) -> list[Schema]:
        """Every schema resolved so far, in the order they were made (a parent before the
        schema that extends it). Only ever appended to."""
        return self._made

    # -- under the lock -------------------------------------------------------------------------

    def _locked(self, diags: Diagnostics | None, compute: Callable[[list[Diagnostic]], _V]) -> _V:
        out: list[Diagnostic] = []
        try:
            with self._lock:
                return compute(out)
        finally:
            if diags is not None:
                diags.extend(out)

    def _memoised(
        self,
        table: _Memo[_V],
        key: object,
        node: object,
        out: list[Diagnostic],
        compute: Callable[[list[Diagnostic]], _V],
    ) -> _V:
        hit = table.get(key)
        if hit is not None:
            out.extend(hit[1])
            return hit[0]
        mine: list[Diagnostic] = []
        try:
            value = compute(mine)
        finally:
            # Findings of an unwound resolution (a schema cycle) still reach the caller.
            out.extend(mine)
        table[key] = (value, tuple(mine), node)
        return value

    def _resolve(self, t: ast.TypeExpr, module: ModuleInfo, out: list[Diagnostic]) -> Type:
        return self._memoised(
            self._types, (id(t), module.key), t, out, lambda mine: self._compute(t, module, mine)
        )

    def _compute(self, t: ast.TypeExpr, module: ModuleInfo, out: list[Diagnostic]) -> Type:
        if isinstance(t, ast.LiteralType):
            return Lit(t.value)
        if isinstance(t, ast.NullType):
            return Prim("null")
        if isinstance(t, ast.OptionalType):
            return Opt(self._resolve(t.inner, module, out))
        if isinstance(t, ast.UnionType):
            return UnionT(tuple(self._resolve(o, module, out) for o in t.options))
        path = t.path
        if len(path) == 1 and path[0] in ("list", "map"):
            want = 1 if path[0] == "list" else 2
            if len(t.args) != want:
                out.append(
                    Diagnostic(
                        "E0203",
                        f"`{path[0]}` takes {want} type argument{'s' if want > 1 else ''}",
                        t.span,
                    )
                )
                return ANY
            args = [self._resolve(a, module, out) for a in t.args]
            return ListT(args[0]) if want == 1 else MapT(args[0], args[1])
        if len(path) == 1 and path[0] in PRIMITIVES:
            if t.args:
                out.append(Diagnostic("E0203", f"`{path[0]}` takes no type arguments", t.span))
            return Prim(path[0])
        found = self._lookup(path, module, t.span, out)
        return found if found is not None else ANY

    def _lookup(
        self, path: tuple[str, ...], module: ModuleInfo, span: Span, out: list[Diagnostic]
    ) -> Type | None:
        name = path[0]
        if len(path) == 2:
            target = find_import(module, path[0])
            if target is None and failed_import(module, path[0]):
                return None  # the import itself failed and was reported
            if target is None:
                out.append(
                    Diagnostic(
                        "E0203",
                        f"unknown type `{'.'.join(path)}`",
                        span,
                        label=f"no import named `{path[0]}`",
                    )
                )
                return None
            name = path[1]
            chain = [target]
        else:
            chain = module.chain()[::-1]
        for mod in chain:
            if name in mod.types:
                return self._alias(mod.types[name], mod, span, out)
            if name in mod.schemas:
                return SchemaT(self._schema(mod.schemas[name], mod, out), name)
        known = [n for mod in chain for n in (*mod.types, *mod.schemas)]
        hint = did_you_mean(name, [*known, *PRIMITIVES, "list", "map"])
        out.append(
            Diagnostic(
                "E0203",
                f"unknown type `{'.'.join(path)}`",
                span,
                help=f"did you mean `{hint}`?" if hint else None,
            )
        )
        return None

    def _alias(
        self, decl: ast.TypeDecl, mod: ModuleInfo, span: Span, out: list[Diagnostic]
    ) -> Type | None:
        hit = self._aliases.get(id(decl))
        if hit is not None:
            out.extend(hit[1])
            return hit[0]
        if id(decl) in self._building:
            # Guard against `type A = B; type B = A`: not memoised, the alias being
            # resolved further out is.
            out.append(
                Diagnostic(
                    "E0205",
                    f"type `{decl.name}` refers to itself",
                    span,
                    label="this closes a cycle of type aliases",
                    notes=(Note(f"`{decl.name}` is declared here", decl.name_span),),
                )
            )
            return None

        def compute(mine: list[Diagnostic]) -> Type:
            self._building.add(id(decl))
            try:
                inner = self._resolve(decl.type, mod, mine)
            finally:
                self._building.discard(id(decl))
            if decl.where is not None:
                inner = Refined(inner, decl.where, mod, decl.name, decl.name_span)
            return Alias(decl.name, inner, decl.name_span)

        return self._memoised(self._aliases, id(decl), decl, out, compute)

    def _schema(self, decl: ast.SchemaDecl, module: ModuleInfo, out: list[Diagnostic]) -> Schema:
        hit = self._schemas.get(id(decl))
        if hit is not None:
            out.extend(hit[1])
            return hit[0]
        if decl.parent is not None and id(decl) in self._building:
            out.append(
                Diagnostic(
                    "E0205",
                    f"schema `{decl.name}` extends itself",
                    decl.parent_span or decl.span,
                    label="this closes a cycle of schema extends",
                )
            )
            raise _Cycle()

        def compute(mine: list[Diagnostic]) -> Schema:
            parent: Schema | None = None
            if decl.parent is not None:
                where = decl.parent_span or decl.span
                self._building.add(id(decl))
                try:
                    pt = self._lookup(decl.parent, module, where, mine)
                except _Cycle:
                    pt = None
                finally:
                    self._building.discard(id(decl))
                ps = schema_of(pt) if pt is not None else None
                if ps is not None:
                    parent = ps
                elif pt is not None:
                    mine.append(
                        Diagnostic("E0203", f"`{'.'.join(decl.parent)}` is not a schema", where)
                    )
            s = Schema(decl.name, decl, module, parent)
            self._made.append(s)
            return s

        return self._memoised(self._schemas, id(decl), decl, out, compute)
