"""Document symbols: the module's declarations and fields as a tree.

Fields nest as their blocks do (a merge block, an object value or a refined value holds
children); schemas hold their fields, templates their body's fields; `if` bodies add
their fields to the enclosing level.
"""

from __future__ import annotations

from lsprotocol import types as lsp

from cfglang.lsp import model
from cfglang.lsp.diagnostics import Ranges
from cfglang.source import Span
from cfglang.syntax import ast

K = lsp.SymbolKind


def _sym(
    name: str,
    kind: lsp.SymbolKind,
    node: ast.Stmt,
    sel: Span,
    ranges: Ranges,
    children: list[lsp.DocumentSymbol] | None = None,
    detail: str | None = None,
) -> lsp.DocumentSymbol:
    return lsp.DocumentSymbol(
        name=name or "?",
        kind=kind,
        range=ranges.range(node.span),
        selection_range=ranges.range(sel),
        detail=detail,
        children=children or None,
    )


def body_symbols(body: ast.Body, ranges: Ranges) -> list[lsp.DocumentSymbol]:
    out: list[lsp.DocumentSymbol] = []
    for stmt in body.stmts:
        if isinstance(stmt, ast.Field):
            name = ".".join(k.static or k.span.text() for k in stmt.path)
            inner = model.value_body(stmt)
            kids = body_symbols(inner, ranges) if inner is not None else []
            kind = K.Object if inner is not None else K.Field
            detail = stmt.type.span.text() if stmt.type is not None else None
            out.append(_sym(name, kind, stmt, stmt.path[0].span, ranges, kids, detail))
        elif isinstance(stmt, ast.SchemaDecl):
            out.append(
                _sym(
                    stmt.name,
                    K.Struct,
                    stmt,
                    stmt.name_span,
                    ranges,
                    body_symbols(stmt.body, ranges),
                    "schema",
                )
            )
        elif isinstance(stmt, ast.TemplateDecl):
            out.append(
                _sym(
                    stmt.name,
                    K.Function,
                    stmt,
                    stmt.name_span,
                    ranges,
                    body_symbols(stmt.body, ranges),
                    "template",
                )
            )
        elif isinstance(stmt, ast.TypeDecl):
            out.append(
                _sym(
                    stmt.name,
                    K.TypeParameter,
                    stmt,
                    stmt.name_span,
                    ranges,
                    detail=stmt.type.span.text(),
                )
            )
        elif isinstance(stmt, ast.LetDecl):
            out.append(_sym(stmt.name, K.Variable, stmt, stmt.name_span, ranges, detail="let"))
        elif isinstance(stmt, ast.InputDecl):
            out.append(_sym(stmt.name, K.Property, stmt, stmt.name_span, ranges, detail="input"))
        elif isinstance(stmt, ast.Import):
            out.append(_sym(stmt.alias, K.Module, stmt, stmt.path_span, ranges, detail=stmt.path))
        elif isinstance(stmt, ast.OutputDecl):
            out.append(_sym(stmt.label, K.File, stmt, stmt.name_span, ranges, detail="output"))
        elif isinstance(stmt, ast.ForStmt):
            # A loop's fields have computed keys (not listed), but its outputs are files
            # the module writes: listed by their names as written (`"$<k>.json"`).
            out += [s for s in body_symbols(stmt.body, ranges) if s.kind == K.File]
        else:
            for b in model.sub_bodies(stmt):
                out += body_symbols(b, ranges)
    return out


def document_symbols(tree: ast.Module, ranges: Ranges) -> list[lsp.DocumentSymbol]:
    return body_symbols(tree.body, ranges)
