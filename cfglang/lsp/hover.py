"""Hover: what a field evaluates to and where it was set; what a name declares.

For a field key of the document, the data path under the cursor is read from the tree
(`model.key_at`) and handed to the provenance record of the file's compilation — the
same `cfglang.tools.explain.explain_path` that `cflc explain` prints — giving the value (secrets
redacted), the site that set it, the sites it overrides and the declared types. The doc
comment is the nearest `##` along the chain: the field's own, a base definition's, or
the schema field's. For a name (a let, input, type, schema, template, import, template
parameter or builtin), the hover shows the declaration's first line and its doc comment.
"""

from __future__ import annotations

import json
import re
from typing import Any

from lsprotocol import types as lsp

from cfglang import api
from cfglang.eval.builtins import SIGNATURES
from cfglang.eval.materialise import materialize
from cfglang.lsp import model
from cfglang.lsp.analysis import Analysis, State
from cfglang.semantic.resolve import ModuleInfo
from cfglang.syntax import ast
from cfglang.tools.explain import Explanation, _jsonable, explain_path

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def path_text(path: tuple[str, ...]) -> str:
    """A data path as `cflc explain` reads it: `a.b`, `labels["app.io/name"]`."""
    out = ""
    for p in path:
        if _IDENT.match(p):
            out += ("." if out else "") + p
        else:
            out += "[" + json.dumps(p, ensure_ascii=False) + "]"
    return out


def explain(a: Analysis, path: tuple[str, ...]) -> Any:
    """The `Explanation` of a data path in an analysed file, or None."""
    if a.ev is None or a.doc is None:
        return None
    ev, doc = a.ev, a.doc
    out = api._run_guarded(
        lambda: explain_path(ev, doc, path_text(path), api.Compilation(None, []))
    )
    return out if isinstance(out, Explanation) else None


def _first_line(node: Any) -> str:
    text: str = node.span.text()
    line = text.split("\n", 1)[0].rstrip()
    if isinstance(node, (ast.SchemaDecl, ast.TemplateDecl)) and line.endswith("{"):
        line = line[:-1].rstrip()
    return line


def _doc(node: Any) -> str | None:
    doc = getattr(node, "doc", None)
    return doc if isinstance(doc, str) and doc.strip() else None


def field_doc(
    chain: list[ModuleInfo], hit: model.KeyHit, m: ModuleInfo
) -> tuple[str | None, str | None]:
    """The doc comment and declared type text of the field under the cursor."""
    doc = _doc(hit.field) if hit.key is hit.field.path[-1] else None
    type_text = (
        hit.field.type.span.text()
        if (hit.field.type is not None and hit.key is hit.field.path[-1])
        else None
    )
    if hit.path is not None:
        for _, f in reversed(model.field_defs(chain, hit.path)):
            doc = doc or _doc(f)
            if type_text is None and f.type is not None:
                type_text = f.type.span.text()
        parent = model.schema_at(chain, hit.path[:-1]) if hit.path else None
    elif hit.context is not None:
        parent = model.schema_in_context(m, hit.context, hit.local[:-1])
        if isinstance(hit.context, ast.SchemaDecl) and len(hit.local) == 1:
            parent = None  # the key is the schema's own declaration: shown above
    else:
        parent = None
    if parent is not None and hit.local:
        sf = model.schema_field(
            parent[0], parent[1], hit.local[-1] if hit.path is None else hit.path[-1]
        )
        if sf is not None:
            doc = doc or _doc(sf[1])
            if type_text is None and sf[1].type is not None:
                type_text = sf[1].type.span.text()
    return doc, type_text


def _value_text(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, indent=2)
    if len(text) > 1500:
        text = text[:1500] + "\n…"
    return text


def hover(state: State, path: str, offset: int, ranges: Any) -> lsp.Hover | None:
    """The hover for a position in an open file."""
    m = state.module(path)
    if m is None:
        return None
    hit = model.key_at(m.tree, offset)
    if hit is not None:
        return _field_hover(state, path, m, hit, ranges)
    found = model.ref_at(m, offset)
    if found is None:
        return None
    ref, span = found
    parts: list[str] = []
    if isinstance(ref, model.BuiltinRef):
        parts.append(f"```cfl\n{SIGNATURES[ref.name]}\n```\nbuiltin function")
    elif isinstance(ref, model.FileRef):
        parts.append(f"module `{ref.path}`")
        target = state.module(ref.path)
        if target is not None and target.tree.doc:
            parts.append(target.tree.doc)
    else:
        parts.append(f"```cfl\n{_first_line(ref.node)}\n```")
        where = ref.module.source.path
        line = ref.span.start_line_col()[0]
        parts.append(f"{ref.kind} declared in `{where}:{line}`")
        if ref.kind == "input" and isinstance(ref.node, ast.InputDecl):
            parts += _input_value(state.analysis(path), ref.node.name)
        doc = _doc(ref.node)
        if doc:
            parts.append(doc)
    return lsp.Hover(
        lsp.MarkupContent(lsp.MarkupKind.Markdown, "\n\n".join(parts)), ranges.range(span)
    )


def _input_value(a: Analysis, name: str) -> list[str]:
    ev = a.ev
    if ev is None or name not in getattr(ev, "inputs", {}):
        return []
    try:
        value = _jsonable(materialize(ev, ev.inputs[name]))
    except Exception:
        return []
    source = ev.input_sources.get(name, ("?", None))[0]
    return [f"value `{json.dumps(value, ensure_ascii=False)}` from {source}"]


def _field_hover(
    state: State, path: str, m: ModuleInfo, hit: model.KeyHit, ranges: Any
) -> lsp.Hover | None:
    chain = m.chain()
    doc, type_text = field_doc(chain, hit, m)
    parts: list[str] = []
    name = path_text(hit.path) if hit.path else ".".join(hit.local)
    head = f"**{name}**" + (f": `{type_text}`" if type_text else "")
    parts.append(head)
    ex = explain(state.analysis(path), hit.path) if hit.path else None
    if ex is not None:
        data = ex.to_json()
        parts.append(f"```json\n{_value_text(data['value'])}\n```\n({ex.kind})")
        lines = []
        if ex.set_by is not None:
            s = ex.set_by.site
            lines.append(
                f"set by `{s.where()}` `{s.text}`"
                + (f" ({ex.set_by.origin})" if ex.set_by.origin != "assignment" else "")
            )
        for d in ex.overrides:
            lines.append(f"overrides `{d.site.where()}` `{d.site.text}`")
        for t, s in ex.types:
            lines.append(f"type `{t}` declared at `{s.where()}`")
        for i in data["inputs"]:
            lines.append(
                f"input `{i['name']}` = `{json.dumps(i['value'], ensure_ascii=False)}`"
                f" from {i['source']}"
            )
        if lines:
            parts.append("  \n".join(lines))
    elif hit.path is None and hit.context is not None:
        kind = "schema" if isinstance(hit.context, ast.SchemaDecl) else "template"
        parts.append(f"field of {kind} `{hit.context.name}`")
    if doc:
        parts.append(doc)
    return lsp.Hover(
        lsp.MarkupContent(lsp.MarkupKind.Markdown, "\n\n".join(parts)), ranges.range(hit.key.span)
    )
