"""Static type checking: what can be known without evaluating.

The evaluator checks every value it computes, but it is lazy: a template never called or
a typed `let` never read is never evaluated. This pass walks every body whose schema is
known from the source — schema defaults, template bodies with a declared schema, typed
`let`s and fields (`app: Service { ... }`), and the blocks nested in them through the
schema's field types — and checks literal values against declared types and field names
against closed schemas. Findings use the same codes and spans as the runtime checks, so
the collector's de-duplication keeps one message per mistake.

Types and schemas come from the semantic resolver (`cfglang.semantic.types`). Whether a
literal conforms to a type (refinements included) is decided by the one implementation of
conformance, which lives with evaluation: the driver passes it in as ``check_literal``, so
this phase never depends on the evaluator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from cfglang.diagnostics import Diagnostics, Note, did_you_mean
from cfglang.semantic import types as T
from cfglang.source import Span
from cfglang.syntax import ast
from cfglang.values import Duration, Size

if TYPE_CHECKING:
    from cfglang.semantic.resolve import ModuleInfo


class LiteralCheck(Protocol):
    """Checks a literal ``value`` (written as ``expr`` at ``span``) against ``t``, whose
    declaration is at ``decl_span``; reports what does not conform."""

    def __call__(
        self, value: Any, t: T.Type, span: Span, decl_span: Span | None, expr: ast.Expr
    ) -> None: ...


def typecheck(
    modules: list[ModuleInfo],
    types: T.TypeResolver,
    diags: Diagnostics,
    check_literal: LiteralCheck,
) -> None:
    """Check every loaded module; findings go to ``diags``."""
    for m in modules:
        _Checker(types, diags, check_literal, m).run()


class _Checker:
    def __init__(
        self,
        types: T.TypeResolver,
        diags: Diagnostics,
        check_literal: LiteralCheck,
        module: ModuleInfo,
    ) -> None:
        self.types = types
        self.diags = diags
        self.check_literal = check_literal
        self.module = module

    def resolve(self, texpr: ast.TypeExpr, module: ModuleInfo) -> T.Type:
        return self.types.resolve(texpr, module, self.diags)

    def run(self) -> None:
        m = self.module
        for decl in m.schemas.values():
            self.body(decl.body, self.types.schema(decl, m, self.diags), schema_body=True)
        for t in m.templates.values():
            self.body(t.body, self._schema_of(t.type))
            for p in t.params:
                if p.type is not None and p.default is not None:
                    self.literal(p.default, self.resolve(p.type, m), p.span)
        for let in m.lets.values():
            self.typed_value(let.value, let.type)
        self.body(ast.Body(tuple(m.body), m.tree.span), None)

    def _schema_of(self, texpr: ast.TypeExpr | None) -> T.Schema | None:
        if texpr is None:
            return None
        return T.schema_of(self.resolve(texpr, self.module))

    def typed_value(self, value: ast.Expr, texpr: ast.TypeExpr | None) -> None:
        """A value with a declared type: check a literal, or an object literal's body."""
        if texpr is None:
            self.expr_bodies(value)
            return
        t = self.resolve(texpr, self.module)
        if isinstance(value, ast.ObjectLit):
            self.body(value.body, self._schema_of(texpr))
        else:
            self.literal(value, t, texpr.span)
            self.expr_bodies(value)

    def expr_bodies(self, value: ast.Expr) -> None:
        if isinstance(value, ast.ObjectLit):
            self.body(value.body, None)
        elif isinstance(value, ast.Refine):
            self.body(value.body, None)

    def body(self, body: ast.Body, schema: T.Schema | None, schema_body: bool = False) -> None:
        for stmt in body.stmts:
            if isinstance(stmt, ast.Field):
                self.field(stmt, schema, schema_body)
            elif isinstance(stmt, ast.IfStmt):
                node: ast.Body | ast.IfStmt | None = stmt
                while isinstance(node, ast.IfStmt):
                    self.body(node.then, schema)
                    node = node.orelse
                if isinstance(node, ast.Body):
                    self.body(node, schema)
            elif isinstance(stmt, ast.ForStmt):
                self.body(stmt.body, schema)
            elif isinstance(stmt, ast.LetDecl):
                self.typed_value(stmt.value, stmt.type)

    def field(self, f: ast.Field, schema: T.Schema | None, schema_body: bool) -> None:
        key = f.path[0].static
        declared: T.Type | None = None
        decl_span = None
        sub_schema: T.Schema | None = None
        if schema is not None and key is not None and not schema_body:
            sf = schema.fields.get(key)
            if sf is None:
                best = did_you_mean(key, schema.fields)
                self.diags.error(
                    "E0202",
                    f"`{schema.name}` has no field `{key}`",
                    f.path[0].span,
                    label="unknown field",
                    help=f"did you mean `{best}`?" if best else None,
                    notes=(Note(f"`{schema.name}` is defined here", schema.decl.name_span),),
                )
                return
            if sf.type is not None:
                declared = self.resolve(sf.type, schema.owners[key])
                decl_span = sf.span
        if f.type is not None and len(f.path) == 1:
            declared = self.resolve(f.type, self.module)
            decl_span = f.span
        if declared is not None:
            sub_schema = T.schema_of(declared)
        if len(f.path) > 1:
            nested = ast.Field(
                f.path[1:], f.op, f.type, f.value, f.body, f.where, f.final, f.hidden, None, f.span
            )
            self.field(nested, sub_schema, False)
            return
        if f.body is not None:
            self.body(f.body, sub_schema)
        if f.value is not None and f.op in ("set", "extends"):
            if isinstance(f.value, ast.ObjectLit):
                self.body(f.value.body, sub_schema)
            elif isinstance(f.value, ast.Refine):
                self.body(f.value.body, sub_schema)
            elif declared is not None:
                self.literal(f.value, declared, decl_span)

    def literal(self, expr: ast.Expr, t: T.Type, decl_span: Span | None) -> None:
        """Check a value that is a literal (no names): evaluation is pure and cheap."""
        value = _literal_value(expr)
        if value is _NOT_LITERAL:
            return
        self.check_literal(value, t, expr.span, decl_span, expr)


_NOT_LITERAL = object()


def _literal_value(e: ast.Expr) -> Any:
    if isinstance(e, ast.Literal):
        return e.value
    if isinstance(e, ast.Str):
        return e.text if e.is_plain else _NOT_LITERAL
    if isinstance(e, ast.Unary) and e.op == "-" and isinstance(e.operand, ast.Literal):
        v = e.operand.value
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return -v
        if isinstance(v, Duration):
            return Duration(-v.millis)
        if isinstance(v, Size):
            return Size(-v.bytes)
        return _NOT_LITERAL
    if isinstance(e, ast.ListLit):
        items = [_literal_value(x) for x in e.items]
        return _NOT_LITERAL if any(x is _NOT_LITERAL for x in items) else tuple(items)
    return _NOT_LITERAL
