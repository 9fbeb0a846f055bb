"""Go to definition, find references and rename.

A declaration is identified across separately loaded module graphs by where it is: a
let, input, type, schema, template or import by its module and name span; a field of
the document by the data path it defines and the base module of its `extends` chain (so
`replicas` in `env/prod.cfl` and in `base.cfl` are one field). References are found by
looking at every occurrence of the name's text in the project's loaded modules and
resolving each with the same lookup as go to definition.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lsprotocol import types as lsp

from cfglang.lsp import model
from cfglang.lsp.analysis import State
from cfglang.lsp.diagnostics import Ranges, uri_of
from cfglang.semantic.resolve import ModuleInfo
from cfglang.source import Span
from cfglang.syntax import ast

Ident = tuple[object, ...]
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _loc(span: Span, ranges: Ranges) -> lsp.Location | None:
    return ranges.location(span)


def definition(state: State, path: str, offset: int, ranges: Ranges) -> list[lsp.Location]:
    """Where the thing under the cursor is declared (a field: its base definition)."""
    m = state.module(path)
    if m is None:
        return []
    hit = model.key_at(m.tree, offset)
    spans: list[Span] = []
    if hit is not None:
        spans = _field_definitions(m, hit)
    else:
        found = model.ref_at(m, offset)
        if found is not None:
            ref, _ = found
            if isinstance(ref, model.FileRef):
                return [
                    lsp.Location(
                        uri_of(ref.path), lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))
                    )
                ]
            if isinstance(ref, model.Target):
                spans = [ref.span]
    out = []
    for s in spans:
        loc = _loc(s, ranges)
        if loc is not None:
            out.append(loc)
    return out


def _field_definitions(m: ModuleInfo, hit: model.KeyHit) -> list[Span]:
    chain = m.chain()
    out: list[Span] = []
    if hit.path is not None:
        defs = model.field_defs(chain, hit.path)
        if defs and defs[0][1] is not hit.field:
            out.append(_key_span(defs[0][1], len(hit.path)))
        parent = model.schema_at(chain, hit.path[:-1])
        if parent is not None:
            sf = model.schema_field(parent[0], parent[1], hit.path[-1])
            if sf is not None:
                out.append(sf[1].path[0].span)
    elif hit.context is not None and hit.local:
        parent = model.schema_in_context(m, hit.context, hit.local[:-1])
        if parent is not None and not (
            isinstance(hit.context, ast.SchemaDecl) and len(hit.local) == 1
        ):
            sf = model.schema_field(parent[0], parent[1], hit.local[-1])
            if sf is not None:
                out.append(sf[1].path[0].span)
    return out or [hit.key.span]


def _key_span(f: ast.Field, _depth: int) -> Span:
    return f.path[-1].span


# ---- identities and occurrences ------------------------------------------------------------


def _family(m: ModuleInfo) -> str:
    return m.chain()[0].key


def ident_of_target(t: model.Target) -> Ident:
    if t.kind == "field":
        hit = model.key_at(t.module.tree, t.span.start)
        if hit is not None and hit.path is not None:
            return ("field", _family(t.module), hit.path)
    return ("decl", t.module.key, t.span.start, t.span.end)


def ident_at(m: ModuleInfo, offset: int) -> tuple[Ident, str] | None:
    """The identity of what the cursor names, and the name's text."""
    hit = model.key_at(m.tree, offset)
    if hit is not None:
        if hit.path is not None:
            return ("field", _family(m), hit.path), hit.path[-1]
        return ("decl", m.key, hit.key.span.start, hit.key.span.end), hit.key.static or ""
    found = model.ref_at(m, offset)
    if found is None:
        return None
    ref, _ = found
    if isinstance(ref, model.Target):
        name = getattr(ref.node, "name", None) or getattr(ref.node, "alias", None)
        if isinstance(ref.node, ast.Field):
            name = ref.node.path[-1].static
        if isinstance(ref.node, (ast.ForStmt, ast.Comprehension)):
            return None
        return ident_of_target(ref), str(name)
    return None


def _occurrences(m: ModuleInfo, name: str) -> Iterator[tuple[int, Span]]:
    """Offsets to resolve and the spans to report, for every spelling of ``name``."""
    for node in model.walk(m.tree):
        if isinstance(node, ast.OuterName) and node.name == name:
            yield node.name_span.start, node.name_span  # `outer.` stays as written
        elif isinstance(node, ast.Name) and node.name == name:
            yield node.span.start, node.span
        elif isinstance(node, ast.GetAttr) and node.name == name:
            yield node.name_span.start, node.name_span
        elif isinstance(node, ast.Key) and node.static == name:
            start = node.span.start
            yield start, node.span
        elif (
            isinstance(
                node, (ast.LetDecl, ast.InputDecl, ast.TypeDecl, ast.SchemaDecl, ast.TemplateDecl)
            )
            and node.name == name
        ):
            yield node.name_span.start, node.name_span
        elif isinstance(node, ast.NamedType) and name in node.path:
            text = node.span.text()
            pos = 0
            for seg in node.path:
                i = text.find(seg, pos)
                if i < 0:
                    break
                if seg == name:
                    s = node.span.start + i
                    yield s, Span(node.span.source, s, s + len(seg))
                pos = i + len(seg)
        elif (
            isinstance(node, ast.SchemaDecl)
            and node.parent
            and name in node.parent
            and (node.parent_span is not None)
        ):
            text = node.parent_span.text()
            i = text.rfind(name)
            if i >= 0:
                s = node.parent_span.start + i
                yield s, Span(node.parent_span.source, s, s + len(name))


def references(
    state: State, path: str, offset: int, include_decl: bool, ranges: Ranges
) -> list[lsp.Location]:
    """Every place in the project's loaded modules that names the same declaration."""
    return [loc for _, loc in _reference_spans(state, path, offset, include_decl, ranges)]


def _reference_spans(
    state: State, path: str, offset: int, include_decl: bool, ranges: Ranges
) -> list[tuple[Span, lsp.Location]]:
    m = state.module(path)
    if m is None:
        return []
    found = ident_at(m, offset)
    if found is None:
        return []
    ident, name = found
    out: list[tuple[Span, lsp.Location]] = []
    seen: set[tuple[str | None, int, int]] = set()
    for mod in state.project_modules(path).values():
        if mod.source.real_path is None:
            continue
        for pos, span in _occurrences(mod, name):
            got = ident_at(mod, pos)
            if got is None or got[0] != ident:
                continue
            key = (mod.source.real_path, span.start, span.end)
            if key in seen:
                continue
            is_decl = ident[0] == "decl" and ident[1] == mod.key and ident[2] == span.start
            if is_decl and not include_decl:
                continue
            seen.add(key)
            loc = ranges.location(span)
            if loc is not None:
                out.append((span, loc))
    return out


def rename(
    state: State, path: str, offset: int, new_name: str, ranges: Ranges
) -> lsp.WorkspaceEdit | None:
    """Rename a let or a field everywhere in the project's loaded modules."""
    m = state.module(path)
    if m is None or not _IDENT.match(new_name):
        return None
    found = ident_at(m, offset)
    if found is None:
        return None
    ident, _ = found
    if ident[0] == "decl":  # of the declarations, only lets are renamed
        hit = model.ref_at(m, offset)
        if hit is None or not isinstance(hit[0], model.Target) or hit[0].kind != "let":
            return None
    changes: dict[str, list[lsp.TextEdit]] = {}
    for span, loc in _reference_spans(state, path, offset, True, ranges):
        if span.source.text[span.start : span.start + 1] == '"':
            text = '"' + new_name + '"'
        else:
            text = new_name
        changes.setdefault(loc.uri, []).append(lsp.TextEdit(loc.range, text))
    return lsp.WorkspaceEdit(changes=changes) if changes else None
