"""Static type checking: what can be known without evaluating.

The evaluator checks every value it computes, but it is lazy: a template never called or
a typed `let` never read is never evaluated. This pass walks every body whose schema is
known from the source — schema defaults, template bodies with a declared schema, typed
`let`s and fields (`app: Service { ... }`), and the blocks nested in them through the
schema's field types — and checks literal values against declared types and field names
against closed schemas. Findings use the same codes and spans as the runtime checks, so
the collector's de-duplication keeps one message per mistake.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cfglang.diagnostics import Note, did_you_mean
from cfglang.semantic import types as T
from cfglang.syntax import ast
from cfglang.values import Duration, Size

if TYPE_CHECKING:
    from cfglang.eval.evaluate import Evaluator, Schema
    from cfglang.semantic.resolve import ModuleInfo


def typecheck(modules: list[ModuleInfo], ev: Evaluator) -> None:
    """Check every loaded module; findings go to the evaluator's diagnostics."""
    for m in modules:
        _Checker(ev, m).run()


class _Checker:
    def __init__(self, ev: Evaluator, module: ModuleInfo) -> None:
        self.ev = ev
        self.module = module

    def run(self) -> None:
        m = self.module
        for decl in m.schemas.values():
            self.body(decl.body, self.ev.schema(decl, m), schema_body=True)
        for t in m.templates.values():
            self.body(t.body, self._schema_of(t.type))
            for p in t.params:
                if p.type is not None and p.default is not None:
                    self.literal(p.default, self.ev.resolve_type(p.type, m), p.span)
        for let in m.lets.values():
            self.typed_value(let.value, let.type)
        self.body(ast.Body(tuple(m.body), m.tree.span), None)

    def _schema_of(self, texpr: ast.TypeExpr | None) -> Schema | None:
        from cfglang.eval.evaluate import Schema

        if texpr is None:
            return None
        s = T.schema_of(self.ev.resolve_type(texpr, self.module))
        return s if isinstance(s, Schema) else None

    def typed_value(self, value: ast.Expr, texpr: ast.TypeExpr | None) -> None:
        """A value with a declared type: check a literal, or an object literal's body."""
        if texpr is None:
            self.expr_bodies(value)
            return
        t = self.ev.resolve_type(texpr, self.module)
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

    def body(self, body: ast.Body, schema: Schema | None, schema_body: bool = False) -> None:
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

    def field(self, f: ast.Field, schema: Schema | None, schema_body: bool) -> None:
        key = f.path[0].static
        declared: T.Type | None = None
        decl_span = None
        sub_schema: Schema | None = None
        if schema is not None and key is not None and not schema_body:
            sf = schema.fields.get(key)
            if sf is None:
                best = did_you_mean(key, schema.fields)
                self.ev.diags.error(
                    "E0202",
                    f"`{schema.name}` has no field `{key}`",
                    f.path[0].span,
                    label="unknown field",
                    help=f"did you mean `{best}`?" if best else None,
                    notes=(Note(f"`{schema.name}` is defined here", schema.decl.name_span),),
                )
                return
            if sf.type is not None:
                declared = self.ev.resolve_type(sf.type, schema.module)
                decl_span = sf.span
        if f.type is not None and len(f.path) == 1:
            declared = self.ev.resolve_type(f.type, self.module)
            decl_span = f.span
        if declared is not None:
            from cfglang.eval.evaluate import Schema

            s = T.schema_of(declared)
            sub_schema = s if isinstance(s, Schema) else None
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

    def literal(self, expr: ast.Expr, t: T.Type, decl_span: Any) -> None:
        """Check a value that is a literal (no names): evaluation is pure and cheap."""
        value = _literal_value(expr)
        if value is _NOT_LITERAL:
            return
        from cfglang.eval.evaluate import EvalError, _Propagate

        try:
            self.ev.conform(value, t, expr.span, decl_span, expr=expr)
        except EvalError as e:
            self.ev.diags.add(e.diag)
        except _Propagate:
            pass


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
