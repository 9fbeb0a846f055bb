"""Resolved types.

A `TypeExpr` from the syntax tree is resolved once, in the scope of its module, into one
of the classes below. Refinements keep their `where` expression and the module they were
written in; the evaluator checks them on values (`cfglang.eval.evaluate`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from cfglang.source import Span

if TYPE_CHECKING:
    from cfglang.semantic.resolve import ModuleInfo
    from cfglang.syntax import ast

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
        import json

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


@attrs.frozen(eq=False)
class SchemaT:
    """A schema; ``schema`` is the evaluator's `Schema` object."""

    schema: object
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


def schema_of(t: Type) -> object | None:
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
