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


# ---- expressions ----------------------------------------------------------------------------


@attrs.frozen
class Literal:
    """A bool, int, float, duration, size or null literal; ``value`` is the Python value."""

    value: object
    span: Span = _span()


@attrs.frozen
class Str:
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


@attrs.frozen
class Name:
    """A bare identifier: a field, let, input, for variable, parameter, import or type."""

    name: str
    span: Span = _span()


@attrs.frozen
class SelfRef:
    """``self``: the object being defined (in a refinement, the value being checked)."""

    span: Span = _span()


@attrs.frozen
class SuperRef:
    """``super``: the inherited value of the field being defined."""

    span: Span = _span()


@attrs.frozen
class GetAttr:
    """``obj.name``."""

    obj: Expr
    name: str
    name_span: Span = _span()
    span: Span = _span()


@attrs.frozen
class GetItem:
    """``obj[index]``."""

    obj: Expr
    index: Expr
    span: Span = _span()


@attrs.frozen
class Arg:
    """A call argument; ``name`` is set for ``name = value`` arguments."""

    name: str | None
    value: Expr
    span: Span = _span()


@attrs.frozen
class Call:
    """``func(args)``: a builtin or a template."""

    func: Expr
    args: tuple[Arg, ...]
    span: Span = _span()


@attrs.frozen
class Binary:
    """``left op right``; ``op`` is the operator's text (``in`` included)."""

    op: str
    left: Expr
    right: Expr
    op_span: Span = _span()
    span: Span = _span()


@attrs.frozen
class Unary:
    """``!x`` or ``-x`` or ``+x``."""

    op: str
    operand: Expr
    span: Span = _span()


@attrs.frozen
class IfExpr:
    """``if cond then a else b``."""

    cond: Expr
    then: Expr
    orelse: Expr
    span: Span = _span()


@attrs.frozen
class ListLit:
    """``[a, b, c]``."""

    items: tuple[Expr, ...]
    span: Span = _span()


@attrs.frozen
class Comprehension:
    """``[elem for [key_var,] var in iterable if cond]``."""

    elem: Expr
    key_var: str | None
    var: str
    iterable: Expr
    cond: Expr | None
    span: Span = _span()


@attrs.frozen
class ObjectLit:
    """``{ a = 1; b = 2 }``: an object with one layer of definitions."""

    body: Body
    span: Span = _span()


@attrs.frozen
class Refine:
    """``base { body }``: a new object inheriting from ``base`` (a template call, a path)."""

    base: Expr
    body: Body
    span: Span = _span()


Expr = (
    Literal
    | Str
    | Name
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


@attrs.frozen
class NamedType:
    """``int``, ``net.Port``, ``list[T]``, ``map[K, V]``: a path and type arguments."""

    path: tuple[str, ...]
    args: tuple[TypeExpr, ...]
    span: Span = _span()


@attrs.frozen
class LiteralType:
    """A literal used as a type: ``"dev"``, ``8080``, ``true``."""

    value: object
    span: Span = _span()


@attrs.frozen
class NullType:
    span: Span = _span()


@attrs.frozen
class OptionalType:
    """``T?``: the value may be absent or null."""

    inner: TypeExpr
    span: Span = _span()


@attrs.frozen
class UnionType:
    """``A | B | C``."""

    options: tuple[TypeExpr, ...]
    span: Span = _span()


TypeExpr = NamedType | LiteralType | NullType | OptionalType | UnionType

# ---- statements -----------------------------------------------------------------------------


@attrs.frozen
class Key:
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


@attrs.frozen
class Field:
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


@attrs.frozen
class Unset:
    """``unset a.b``: remove an inherited field."""

    path: tuple[Key, ...]
    span: Span = _span()


@attrs.frozen
class LetDecl:
    """``let name[: T] = value``: a local, never emitted, not overridable."""

    name: str
    type: TypeExpr | None
    value: Expr
    doc: str | None
    name_span: Span = _span()
    span: Span = _span()


@attrs.frozen
class IfStmt:
    """``if cond { … } else { … }``: conditional fields."""

    cond: Expr
    then: Body
    orelse: Body | IfStmt | None
    span: Span = _span()


@attrs.frozen
class ForStmt:
    """``for [k,] v in iterable { … }``: generated fields."""

    key_var: str | None
    var: str
    iterable: Expr
    body: Body
    span: Span = _span()


@attrs.frozen
class CheckStmt:
    """``check expr [: "message"]``: an invariant on the enclosing object (or document)."""

    expr: Expr
    message: str | None
    span: Span = _span()


@attrs.frozen
class Import:
    """``import "path" [as name]``; ``alias`` is the bound name (the file stem if absent)."""

    path: str
    alias: str
    path_span: Span = _span()
    span: Span = _span()


@attrs.frozen
class ExtendsDecl:
    """Module-level ``extends "path"``."""

    path: str
    path_span: Span = _span()
    span: Span = _span()


@attrs.frozen
class InputDecl:
    """``input name[: T] [= default] [from env "VAR"]``."""

    name: str
    type: TypeExpr | None
    default: Expr | None
    env: str | None
    doc: str | None
    name_span: Span = _span()
    span: Span = _span()


@attrs.frozen
class TypeDecl:
    """``type Name = T [where expr]``."""

    name: str
    type: TypeExpr
    where: Expr | None
    doc: str | None
    name_span: Span = _span()
    span: Span = _span()


@attrs.frozen
class SchemaDecl:
    """``schema Name [extends Parent] { fields and checks }``."""

    name: str
    parent: tuple[str, ...] | None
    body: Body
    doc: str | None
    name_span: Span = _span()
    parent_span: Span | None = _span()
    span: Span = _span()


@attrs.frozen
class Param:
    """A template parameter ``name[: T] [= default]``."""

    name: str
    type: TypeExpr | None
    default: Expr | None
    span: Span = _span()


@attrs.frozen
class TemplateDecl:
    """``template Name(params)[: T] { body }``."""

    name: str
    params: tuple[Param, ...]
    type: TypeExpr | None
    body: Body
    doc: str | None
    name_span: Span = _span()
    span: Span = _span()


@attrs.frozen
class OutputDecl:
    """``output "file.ext"[: format] = value``."""

    name: str
    format: str | None
    value: Expr
    name_span: Span = _span()
    span: Span = _span()


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


@attrs.frozen
class Body:
    """The statements between ``{`` and ``}`` (or of a whole module)."""

    stmts: tuple[Stmt, ...]
    span: Span = _span()


@attrs.frozen
class Module:
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
