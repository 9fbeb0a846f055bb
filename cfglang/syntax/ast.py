"""The CFL syntax tree: frozen attrs nodes, one class per grammar construct.

Every node has a ``span`` (excluded from equality, so two parses of equivalent text
compare equal). Sequences are tuples. Later phases never modify nodes; they build side
tables keyed by node identity.
"""

from __future__ import annotations

import operator
from typing import Any

import attrs

from cfglang.source import Span


def _span() -> Any:
    # Spans are excluded from equality and repr: two parses of equal text compare equal.
    return attrs.field(eq=False, repr=False)


class _Node:
    """Base of every node: one `__repr__`, worked out when called.

    attrs would generate and compile a `__repr__` per class at import (a quarter of this
    module's ~20 ms import, paid by every `cflc` run); this one prints the same text."""

    __slots__ = ()

    def __repr__(self) -> str:
        fields = attrs.fields(type(self))  # type: ignore[arg-type]  # subclasses are attrs
        inner = ", ".join(f"{a.name}={getattr(self, a.name)!r}" for a in fields if a.repr)
        return f"{type(self).__name__}({inner})"


# ---- expressions ----------------------------------------------------------------------------


@attrs.frozen(repr=False)
class Literal(_Node):
    """A bool, int, float, duration, size or null literal; ``value`` is the Python value."""

    value: object
    span: Span = _span()


@attrs.frozen(repr=False)
class Str(_Node):
    """A string; ``parts`` alternate literal text and substituted expressions (`$<e>`)."""

    parts: tuple[str | Expr, ...]
    span: Span = _span()

    @property
    def is_plain(self) -> bool:
        return all(isinstance(p, str) for p in self.parts)

    @property
    def text(self) -> str:
        """The literal text of a plain string (no substitutions)."""
        return "".join(p for p in self.parts if isinstance(p, str))


@attrs.frozen(repr=False)
class Name(_Node):
    """A bare identifier: a field, let, input, for variable, parameter, import or type."""

    name: str
    span: Span = _span()


@attrs.frozen(repr=False)
class OuterName(Name):
    """``outer.name``: ``name`` looked up past the fields of the current object (the one
    ``self`` is): the enclosing parameter, `for` variable, let, input or outer field it
    hides (docs/language.md §3.6). ``span`` covers ``outer.name``, ``name_span`` the name.
    A subclass of `Name`, so that walkers looking for names (dependencies, the language
    server) see it as the name it reads."""

    name_span: Span = _span()


@attrs.frozen(repr=False)
class SelfRef(_Node):
    """``self``: the object being defined (in a refinement, the value being checked)."""

    span: Span = _span()


@attrs.frozen(repr=False)
class SuperRef(_Node):
    """``super``: the inherited value of the field being defined."""

    span: Span = _span()


@attrs.frozen(repr=False)
class GetAttr(_Node):
    """``obj.name``."""

    obj: Expr
    name: str
    name_span: Span = _span()
    span: Span = _span()


@attrs.frozen(repr=False)
class GetItem(_Node):
    """``obj[index]``."""

    obj: Expr
    index: Expr
    span: Span = _span()


@attrs.frozen(repr=False)
class Arg(_Node):
    """A call argument; ``name`` is set for ``name = value`` arguments."""

    name: str | None
    value: Expr
    span: Span = _span()


@attrs.frozen(repr=False)
class Call(_Node):
    """``func(args)``: a builtin or a template."""

    func: Expr
    args: tuple[Arg, ...]
    span: Span = _span()


@attrs.frozen(repr=False)
class Binary(_Node):
    """``left op right``; ``op`` is the operator's text (``in`` included)."""

    op: str
    left: Expr
    right: Expr
    op_span: Span = _span()
    span: Span = _span()


@attrs.frozen(repr=False)
class Unary(_Node):
    """``!x`` or ``-x`` or ``+x``."""

    op: str
    operand: Expr
    span: Span = _span()


@attrs.frozen(repr=False)
class IfExpr(_Node):
    """``if cond then a else b``."""

    cond: Expr
    then: Expr
    orelse: Expr
    span: Span = _span()


@attrs.frozen(repr=False)
class ListLit(_Node):
    """``[a, b, c]``."""

    items: tuple[Expr, ...]
    span: Span = _span()


@attrs.frozen(repr=False)
class Comprehension(_Node):
    """``[elem for [key_var,] var in iterable if cond]``."""

    elem: Expr
    key_var: str | None
    var: str
    iterable: Expr
    cond: Expr | None
    span: Span = _span()


@attrs.frozen(repr=False)
class ObjectLit(_Node):
    """``{ a = 1; b = 2 }``: an object with one layer of definitions."""

    body: Body
    span: Span = _span()


@attrs.frozen(repr=False)
class Refine(_Node):
    """``base { body }``: a new object inheriting from ``base`` (a template call, a path)."""

    base: Expr
    body: Body
    span: Span = _span()


Expr = (
    Literal
    | Str
    | Name
    | OuterName
    | SelfRef
    | SuperRef
    | GetAttr
    | GetItem
    | Call
    | Binary
    | Unary
    | IfExpr
    | ListLit
    | Comprehension
    | ObjectLit
    | Refine
)

# ---- types ----------------------------------------------------------------------------------


@attrs.frozen(repr=False)
class NamedType(_Node):
    """``int``, ``net.Port``, ``list[T]``, ``map[K, V]``: a path and type arguments."""

    path: tuple[str, ...]
    args: tuple[TypeExpr, ...]
    span: Span = _span()


@attrs.frozen(repr=False)
class LiteralType(_Node):
    """A literal used as a type: ``"dev"``, ``8080``, ``true``."""

    value: object
    span: Span = _span()


@attrs.frozen(repr=False)
class NullType(_Node):
    span: Span = _span()


@attrs.frozen(repr=False)
class OptionalType(_Node):
    """``T?``: the value may be absent or null."""

    inner: TypeExpr
    span: Span = _span()


@attrs.frozen(repr=False)
class UnionType(_Node):
    """``A | B | C``."""

    options: tuple[TypeExpr, ...]
    span: Span = _span()


TypeExpr = NamedType | LiteralType | NullType | OptionalType | UnionType

# ---- statements -----------------------------------------------------------------------------


@attrs.frozen(repr=False)
class Key(_Node):
    """One segment of a field path: an identifier or a (possibly interpolated) string."""

    name: str | None
    expr: Str | None
    span: Span = _span()

    @property
    def static(self) -> str | None:
        """The key's text when it is known without evaluation."""
        if self.name is not None:
            return self.name
        if self.expr is not None and self.expr.is_plain:
            return self.expr.text
        return None


@attrs.frozen(repr=False)
class Field(_Node):
    """A field definition in a module, block, object literal, schema or template body.

    ``op`` is one of ``set`` (``=``), ``append`` (``+=``), ``merge`` (``{ … }``),
    ``extends`` (``extends value``) or ``decl`` (type only, schemas).
    """

    path: tuple[Key, ...]
    op: str
    type: TypeExpr | None
    value: Expr | None
    body: Body | None
    where: Expr | None
    final: bool
    hidden: bool
    doc: str | None
    span: Span = _span()


@attrs.frozen(repr=False)
class Unset(_Node):
    """``unset a.b``: remove an inherited field."""

    path: tuple[Key, ...]
    span: Span = _span()


@attrs.frozen(repr=False)
class LetDecl(_Node):
    """``let name[: T] = value``: a local, never emitted, not overridable."""

    name: str
    type: TypeExpr | None
    value: Expr
    doc: str | None
    name_span: Span = _span()
    span: Span = _span()


@attrs.frozen(repr=False)
class IfStmt(_Node):
    """``if cond { … } else { … }``: conditional fields."""

    cond: Expr
    then: Body
    orelse: Body | IfStmt | None
    span: Span = _span()


@attrs.frozen(repr=False)
class ForStmt(_Node):
    """``for [k,] v in iterable { … }``: generated fields."""

    key_var: str | None
    var: str
    iterable: Expr
    body: Body
    span: Span = _span()


@attrs.frozen(repr=False)
class CheckStmt(_Node):
    """``check expr [: "message"]``: an invariant on the enclosing object (or document)."""

    expr: Expr
    message: str | None
    span: Span = _span()


@attrs.frozen(repr=False)
class Import(_Node):
    """``import "path" [as name]``; ``alias`` is the bound name (the file stem if absent)."""

    path: str
    alias: str
    path_span: Span = _span()
    span: Span = _span()


@attrs.frozen(repr=False)
class ExtendsDecl(_Node):
    """Module-level ``extends "path"``."""

    path: str
    path_span: Span = _span()
    span: Span = _span()


@attrs.frozen(repr=False)
class InputDecl(_Node):
    """``input name[: T] [= default] [from env "VAR"]``."""

    name: str
    type: TypeExpr | None
    default: Expr | None
    env: str | None
    doc: str | None
    name_span: Span = _span()
    span: Span = _span()


@attrs.frozen(repr=False)
class TypeDecl(_Node):
    """``type Name = T [where expr]``."""

    name: str
    type: TypeExpr
    where: Expr | None
    doc: str | None
    name_span: Span = _span()
    span: Span = _span()


@attrs.frozen(repr=False)
class SchemaDecl(_Node):
    """``schema Name [extends Parent] { fields and checks }``."""

    name: str
    parent: tuple[str, ...] | None
    body: Body
    doc: str | None
    name_span: Span = _span()
    parent_span: Span | None = _span()
    span: Span = _span()


@attrs.frozen(repr=False)
class Param(_Node):
    """A template parameter ``name[: T] [= default]``."""

    name: str
    type: TypeExpr | None
    default: Expr | None
    span: Span = _span()


@attrs.frozen(repr=False)
class TemplateDecl(_Node):
    """``template Name(params)[: T] { body }``."""

    name: str
    params: tuple[Param, ...]
    type: TypeExpr | None
    body: Body
    doc: str | None
    name_span: Span = _span()
    span: Span = _span()


@attrs.frozen(repr=False)
class OutputDecl(_Node):
    """``output "file.ext"[: format] = value``; the name may substitute (`"$<k>.json"`)."""

    name: Str
    format: str | None
    value: Expr
    name_span: Span = _span()
    span: Span = _span()

    @property
    def label(self) -> str:
        """The name as people read it: the text of a plain name, else the source
        (`"$<k>.json"`), for outlines and messages before the name is evaluated."""
        return self.name.text if self.name.is_plain else self.name.span.text()


Stmt = (
    Field
    | Unset
    | LetDecl
    | IfStmt
    | ForStmt
    | CheckStmt
    | Import
    | ExtendsDecl
    | InputDecl
    | TypeDecl
    | SchemaDecl
    | TemplateDecl
    | OutputDecl
)


@attrs.frozen(repr=False)
class Body(_Node):
    """The statements between ``{`` and ``}`` (or of a whole module)."""

    stmts: tuple[Stmt, ...]
    span: Span = _span()


@attrs.frozen(repr=False)
class Module(_Node):
    """A parsed ``.cfl`` file."""

    body: Body
    doc: str | None
    span: Span = _span()


def _install_reduce() -> None:
    """Pickle nodes as (class, field values).

    The default pickling of slotted frozen attrs classes restores every attribute through
    ``__setstate__`` one by one, which made loading a cached tree nearly as slow as
    parsing; calling the constructor is about five times faster.
    """
    for obj in list(globals().values()):
        if isinstance(obj, type) and attrs.has(obj) and obj.__module__ == __name__:
            names = tuple(a.name for a in attrs.fields(obj))
            # One C-level call gathers the fields (a tuple when there are several).
            get = operator.attrgetter(*names)
            if len(names) == 1:

                def reduce(self: Any, _get: Any = get) -> tuple[Any, ...]:
                    return (type(self), (_get(self),))
            else:

                def reduce(self: Any, _get: Any = get) -> tuple[Any, ...]:
                    return (type(self), _get(self))

            obj.__reduce__ = reduce  # type: ignore[method-assign]


_install_reduce()
