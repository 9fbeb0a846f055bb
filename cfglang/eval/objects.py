"""The runtime object model: layers, scopes, definitions and lazy, late-bound objects.

An `Obj` is a chain of `Layer`s (bodies of statements, base first) bound to one identity;
it expands them into a stack of `Def`s per key on first access and memoises each field's
value. Names are looked up through `Scope`s. `TemplateValue`, `ModuleValue` and `Builtin`
are the other runtime values that are not plain data. These classes hold state and memo
tables; the computing (expansion, field values, types, conformance) is the `Evaluator`'s,
reached through ``Obj.ctx``, so this module imports the evaluator for type checking only. Kept
apart from `cfglang.eval.evaluate` so that builtins, operators, inputs and
materialisation can import the object model without importing the evaluator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from cfglang.eval.values import ABSENT
from cfglang.semantic import types as T
from cfglang.semantic.resolve import ModuleInfo
from cfglang.semantic.types import Schema
from cfglang.source import Span
from cfglang.syntax import ast

if TYPE_CHECKING:
    from cfglang.eval.evaluate import Evaluator
    from cfglang.eval.expand import _NearKeys


# ---- scopes, layers, definitions ----------------------------------------------------------


class Layer:
    """A body of statements to be bound to an object; ``parent`` is its lexical scope."""

    __slots__ = (
        "boundary",
        "decl",
        "lets",
        "module",
        "parent",
        "schema",
        "site",
        "stmts",
        "vars",
    )

    def __init__(
        self,
        stmts: tuple[ast.Stmt, ...] | list[ast.Stmt],
        parent: Scope | None,
        module: ModuleInfo,
        vars: dict[str, Any] | None = None,
        schema: Schema | None = None,
        site: Span | None = None,
        lets: dict[str, ast.LetDecl] | None = None,
        boundary: bool = False,
        decl: Any = None,
    ) -> None:
        self.decl = decl  # the template whose parameters ``vars`` are
        self.stmts = tuple(stmts)
        self.boundary = boundary  # starts an inheritance step (extends, refinement)
        self.parent = parent
        self.module = module
        self.vars = vars or _NO_VARS
        self.schema = schema
        self.site = site
        self.lets = (
            lets
            if lets is not None
            else {s.name: s for s in self.stmts if isinstance(s, ast.LetDecl)}
        )


class Scope:
    """One level of name lookup."""

    __slots__ = (
        "decl",
        "let_cache",
        "lets",
        "module",
        "obj",
        "parent",
        "self_value",
        "sup",
        "vars",
    )

    def __init__(
        self,
        obj: Obj | None,
        module: ModuleInfo,
        parent: Scope | None = None,
        lets: Mapping[str, ast.LetDecl] | None = None,
        vars: Mapping[str, Any] | None = None,
    ) -> None:
        self.obj = obj
        self.module = module
        self.parent = parent
        # Shared empty tables: most scopes have no lets or variables (never written).
        self.lets = lets or _NO_LETS
        self.vars = vars or _NO_VARS
        self.let_cache: dict[str, Any] = {} if lets else _NO_VARS
        self.sup: Callable[[], Any] | None = None
        self.self_value: Any = ABSENT
        # What declares ``vars`` (a `for`, a comprehension, a template), for messages.
        self.decl: Any = None

    def child(
        self,
        *,
        vars: Mapping[str, Any] | None = None,
        lets: Mapping[str, ast.LetDecl] | None = None,
        decl: Any = None,
    ) -> Scope:
        s = Scope(None, self.module, self, lets, vars)
        s.decl = decl
        return s


class Def:
    """One definition of one key, from one statement of one layer.

    A build makes one per statement per object (about 700,000 at S = 10,000), so it holds
    only what differs between objects and the flags read on every field evaluation, as
    bits of one int (`FINAL`, `HIDDEN`, `TYPED`, `OWN`); the rest is read off the
    statement."""

    __slots__ = ("body_layer", "expr", "flags", "key", "layer_no", "op", "scope", "stmt")

    def __init__(
        self,
        key: str,
        op: str,
        stmt: ast.Field | ast.Unset,
        scope: Scope,
        layer_no: int,
        expr: ast.Expr | None = None,
        body_layer: Layer | None = None,
        own: bool = False,
    ) -> None:
        self.key = key
        self.op = op
        self.stmt = stmt
        self.scope = scope
        self.layer_no = layer_no
        self.expr = expr
        self.body_layer = body_layer
        # Flags read on every field evaluation, worked out once here instead of by
        # isinstance tests each time. OWN: the value reads the bare name `key`, the
        # binding the field hides (docs/language.md §3.6).
        flags = OWN if own else 0
        if type(stmt) is ast.Field:
            if stmt.final:
                flags |= FINAL
            if stmt.hidden:
                flags |= HIDDEN
            if stmt.type is not None or stmt.where is not None:
                flags |= TYPED
        self.flags = flags

    @property
    def key_span(self) -> Span:
        """The key's span in the statement (the first key of its path)."""
        return self.stmt.path[0].span

    @property
    def is_final(self) -> bool:
        return bool(self.flags & FINAL)

    @property
    def is_hidden(self) -> bool:
        return bool(self.flags & HIDDEN)

    @property
    def typed(self) -> bool:
        return bool(self.flags & TYPED)

    @property
    def own(self) -> bool:
        return bool(self.flags & OWN)

    @property
    def span(self) -> Span:
        return self.stmt.span

    @property
    def value_span(self) -> Span:
        if self.expr is not None:
            return self.expr.span
        return self.stmt.span


# The bits of `Def.flags`.
FINAL = 1
HIDDEN = 2
TYPED = 4
OWN = 8


class TemplateValue:
    def __init__(self, decl: ast.TemplateDecl, module: ModuleInfo) -> None:
        self.decl = decl
        self.module = module


class ModuleValue:
    def __init__(self, info: ModuleInfo) -> None:
        self.info = info


class Builtin:
    def __init__(self, name: str) -> None:
        self.name = name


# ---- objects ------------------------------------------------------------------------------


class Obj:
    """A lazy, late-bound object: the merge of its layers."""

    __slots__ = (
        "_checked",
        "_checks",
        "_defs",
        "_expanding",
        "_near",
        "_partials",
        "_types",
        "_values",
        "ctx",
        "layers",
        "schema",
        "site",
    )

    def __init__(
        self, ctx: Evaluator, layers: tuple[Layer, ...], schema: Schema | None, site: Span | None
    ) -> None:
        self.ctx = ctx
        self.layers = layers
        self.schema = schema
        self.site = site
        self._defs: dict[str, list[Def]] | None = None
        # The object's `check`s with their scopes, made when it has one (most do not).
        self._checks: list[tuple[ast.CheckStmt, Scope]] | None = None
        self._values: dict[str, Any] = {}
        # Values of a field's definition stack up to a definition (the key), for `super`:
        # made on first use.
        self._partials: dict[Def, Any] | None = None
        self._types: dict[str, list[tuple[T.Type, Span]]] | None = None
        self._expanding = False
        self._checked = False  # its checks have run (materialise)
        self._near: _NearKeys | None = None  # only while expanding a long chain

    @classmethod
    def from_plain(cls, ctx: Evaluator, data: Mapping[str, Any]) -> Obj:
        """An object with fixed values (from `--vars` files); it has no layers."""
        o = cls(ctx, (), None, None)
        o._defs = {k: [] for k in data}
        o._values = {k: from_plain(ctx, v) for k, v in data.items()}
        return o

    # -- expansion ----------------------------------------------------------------------------

    def defs(self) -> dict[str, list[Def]]:
        if self._defs is None:
            self._defs = {}
            self._expanding = True
            try:
                # Keys count as inherited (for the near-miss warning) only across an
                # inheritance step: another module, or an `extends`/refinement. Sibling
                # blocks of one module (`db.host = …` then `db.port = …`) are not.
                # Keys are only ever added, in order: the inherited keys are the first
                # `inherited` keys of the table (no copy per layer).
                inherited = 0
                defs = self._defs
                checks = self._checks if self._checks is not None else []
                prev = None
                for no, layer in enumerate(self.layers):
                    if prev is not None and (layer.boundary or layer.module is not prev):
                        inherited = len(defs)
                    prev = layer.module
                    if not layer.stmts:
                        continue  # an empty body (`proto: S {}`) defines nothing
                    scope = Scope(self, layer.module, layer.parent, layer.lets, layer.vars)
                    scope.decl = layer.decl
                    self.ctx.expand(self, layer.stmts, scope, no, defs, checks, inherited)
                if checks:
                    self._checks = checks
            finally:
                self._expanding = False
                self._near = None
        return self._defs

    def checks(self) -> list[tuple[ast.CheckStmt, Scope]]:
        self.defs()
        return self._checks if self._checks is not None else []

    def keys(self) -> list[str]:
        return list(self.defs())

    def has(self, key: str) -> bool:
        return key in self.defs()

    def get(self, key: str) -> Any:
        if key in self._values:
            return self._values[key]
        defs = self.defs().get(key)
        if not defs:
            return ABSENT
        return self.ctx.field_value(self, key, defs)

    def field_type(self, key: str) -> list[tuple[T.Type, Span]]:
        """Declared types of a field: the schema's, then inline annotations."""
        types = self._types.get(key) if self._types is not None else None
        if types is None:
            types = self._field_type(key)
            if self._types is None:
                self._types = {}
            self._types[key] = types
        return types

    def _field_type(self, key: str) -> list[tuple[T.Type, Span]]:
        schema = self.schema
        if schema is not None and _only_schema_annotates(schema, key, self.defs().get(key, ())):
            # Shared by every object of the schema.
            cached = schema.field_types.get(key)
            if cached is None:
                cached = self.ctx.schema_field_types(schema, key)
            return cached
        return self._field_type_slow(key)

    def _field_type_slow(self, key: str) -> list[tuple[T.Type, Span]]:
        out: list[tuple[T.Type, Span]] = []
        if self.schema is not None:
            sf = self.schema.fields.get(key)
            if sf is not None and sf.type is not None:
                owner = self.schema.owners[key]
                out.append((self.ctx.resolve_type(sf.type, owner), sf.span))
        for d in self.defs().get(key, ()):
            st = d.stmt
            if (
                isinstance(st, ast.Field)
                and st.type is not None
                and (self.schema is None or st is not self.schema.fields.get(key))
            ):
                out.append((self.ctx.resolve_type(st.type, d.scope.module), st.span))
        return out

    def __repr__(self) -> str:
        return f"Obj(schema={self.schema.name if self.schema else None})"


def _only_schema_annotates(schema: Schema, key: str, defs: Iterable[Def]) -> bool:
    """Whether the schema is the only place that gives ``key`` a type (no definition
    adds an inline annotation): its types are then the same for every object."""
    sf = schema.fields.get(key)
    for d in defs:
        if d.flags & TYPED and d.stmt is not sf and d.stmt.type is not None:  # type: ignore[union-attr]
            return False
    return True


def from_plain(ctx: Evaluator, v: Any) -> Any:
    if isinstance(v, dict):
        return Obj.from_plain(ctx, v)
    if isinstance(v, list):
        return tuple(from_plain(ctx, x) for x in v)
    return v


_NO_LETS: dict[str, ast.LetDecl] = {}
_NO_VARS: dict[str, Any] = {}
