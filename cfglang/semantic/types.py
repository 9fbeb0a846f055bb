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
