"""Completion: unset schema fields, keywords, builtins and declared names.

The buffer being typed in rarely parses, so the cursor's context is read from the text
itself: a small scanner (strings and comments skipped) finds the blocks enclosing the
cursor and the header before each `{` (`billing: Service {`, `db {`, `schema S {`,
`template T(...) {`, `if … {`). The chain of field headers gives the data path of the
block, and the module graph (the current one, or the last that parsed) gives the schema
that types it (`model.schema_at`); its fields not yet written in the block are offered
first, with their type and doc. Elsewhere: after `alias.` the members of the import;
after `:` types; otherwise keywords, builtins (with `SIGNATURES`) and declared names.
"""

from __future__ import annotations

import re

import attrs
from lsprotocol import types as lsp

from cfglang.eval.builtins import SIGNATURES
from cfglang.lsp import model
from cfglang.lsp.analysis import State
from cfglang.semantic.bind import module_names
from cfglang.semantic.resolve import ModuleInfo
from cfglang.syntax import ast

KEYWORDS = (
    "import",
    "extends",
    "schema",
    "type",
    "let",
    "input",
    "template",
    "check",
    "where",
    "final",
    "hidden",
    "unset",
    "output",
    "if",
    "then",
    "else",
    "for",
    "in",
    "true",
    "false",
    "null",
    "self",
    "super",
)
BUILTIN_TYPES = (
    "bool",
    "int",
    "float",
    "string",
    "duration",
    "size",
    "null",
    "any",
    "secret",
    "list",
    "map",
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_KEY = r'(?:[A-Za-z_][A-Za-z0-9_]*|"(?:[^"\\]|\\.)*")'
_FIELD_HEAD = re.compile(
    rf"\s*(?:(?:final|hidden)\s+)*({_KEY}(?:\s*\.\s*{_KEY})*)\s*"
    r"(?::(?P<type>[^={]*))?(?:=|\+=|extends\b|\{|$)"
)
_SET_KEY = re.compile(rf"\s*(?:(?:final|hidden|unset)\s+)*({_KEY})\s*(?:=|\+=|\{{|:|\.|extends\b)")


@attrs.frozen
class Block:
    """A `{` enclosing the cursor: its offset and the statement header before it."""

    open: int
    header: str


def enclosing_blocks(text: str, offset: int) -> list[Block]:
    """The open blocks at ``offset``, outermost first (strings and comments skipped)."""
    stack: list[Block] = []
    parens = 0
    stmt_start = 0
    i = 0
    n = min(offset, len(text))
    while i < n:
        ch = text[i]
        if ch == "#":
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if ch == '"':
            if text.startswith('"""', i):
                j = text.find('"""', i + 3)
                i = n if j < 0 else j + 3
                continue
            j = i + 1
            while j < n and text[j] not in '"\n':
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if ch in "([":
            parens += 1
        elif ch in ")]":
            parens = max(0, parens - 1)
        elif ch == "{":
            stack.append(Block(i, text[stmt_start:i].strip()))
            stmt_start = i + 1
            parens = 0
        elif ch == "}":
            if stack:
                stack.pop()
            stmt_start = i + 1
        elif (ch == "\n" and parens == 0) or ch == ";":
            stmt_start = i + 1
        i += 1
    return stack


def _keys(path_text: str) -> tuple[str, ...]:
    return tuple(k.strip().strip('"') for k in re.findall(_KEY, path_text))


def block_context(blocks: list[Block]) -> tuple[str, str | None, tuple[str, ...]] | None:
    """(kind, declaration name, keys) of the innermost block: kind is ``data`` (a path of
    the document), ``schema``/``template`` (keys below that declaration) or None."""
    kind, name = "data", None
    keys: tuple[str, ...] = ()
    for b in blocks:
        h = b.header
        if h.startswith("}"):
            h = h[1:].strip()
        m = re.match(r"(schema|template)\s+([A-Za-z_][A-Za-z0-9_]*)", h)
        if m:
            kind, name, keys = m.group(1), m.group(2), ()
            continue
        if re.match(r"(if|else|for)\b", h) or h == "":
            if h.startswith("for"):
                return None
            continue
        if re.match(r"let\b|output\b|check\b", h):
            return None
        fm = _FIELD_HEAD.match(h)
        if fm is None:
            return None
        keys = keys + _keys(fm.group(1))
    return kind, name, keys


def _block_text(text: str, block: Block) -> str:
    """The text of a block at its own depth (nested blocks cut out)."""
    depth, out, i = 0, [], block.open + 1
    while i < len(text):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0:
            out.append(ch)
        i += 1
    return "".join(out)


def keys_set(text: str, block: Block) -> set[str]:
    body = _block_text(text, block)
    out = set()
    for stmt in re.split(r"[\n;]", body):
        m = _SET_KEY.match(stmt)
        if m:
            out.add(m.group(1).strip('"'))
    return out


def _schema_for(
    m: ModuleInfo, ctx: tuple[str, str | None, tuple[str, ...]]
) -> tuple[ModuleInfo, ast.SchemaDecl] | None:
    kind, name, keys = ctx
    if kind == "data":
        return model.schema_at(m.chain(), keys) if keys else None
    for mod in reversed(m.chain()):
        decl = (mod.schemas if kind == "schema" else mod.templates).get(name or "")
        if decl is not None:
            break
    else:
        return None
    if kind == "schema" and not keys:
        return None  # declaring a schema's own fields: nothing to complete from
    return model.schema_in_context(mod, decl, keys)


def field_items(m: ModuleInfo, text: str, offset: int) -> list[lsp.CompletionItem]:
    """The schema fields not yet set in the typed block around ``offset``."""
    blocks = enclosing_blocks(text, offset)
    if not blocks:
        return []
    ctx = block_context(blocks)
    if ctx is None:
        return []
    found = _schema_for(m, ctx)
    if found is None:
        return []
    done = keys_set(text, blocks[-1])
    items = []
    for i, (_, f) in enumerate(model.schema_fields(*found)):
        name = f.path[0].static
        if name is None or name in done:
            continue
        items.append(
            lsp.CompletionItem(
                label=name,
                kind=lsp.CompletionItemKind.Field,
                detail=f.type.span.text() if f.type is not None else None,
                documentation=lsp.MarkupContent(lsp.MarkupKind.Markdown, f.doc) if f.doc else None,
                sort_text=f"0{i:04d}",
                insert_text=name,
            )
        )
    return items


_ITEM_KINDS = {
    "type": lsp.CompletionItemKind.Class,
    "schema": lsp.CompletionItemKind.Struct,
    "import": lsp.CompletionItemKind.Module,
    "let": lsp.CompletionItemKind.Variable,
    "input": lsp.CompletionItemKind.Variable,
    "template": lsp.CompletionItemKind.Function,
}


def _decl_items(m: ModuleInfo, *, types_only: bool = False) -> list[lsp.CompletionItem]:
    """The module-level names a bare name reaches from ``m`` (`bind.module_names`: the
    module's own lets, not its base's, which the evaluator never looks at)."""
    items: list[lsp.CompletionItem] = []
    for b in module_names(m):
        if types_only and b.kind not in ("type", "schema", "import"):
            continue
        doc = getattr(b.decl, "doc", None)
        items.append(
            lsp.CompletionItem(
                label=b.name,
                kind=_ITEM_KINDS[b.kind],
                detail=b.kind,
                sort_text=f"1{b.name}",
                documentation=lsp.MarkupContent(lsp.MarkupKind.Markdown, doc)
                if isinstance(doc, str) and doc
                else None,
            )
        )
    return items


def _member_items(mod: ModuleInfo) -> list[lsp.CompletionItem]:
    """What `alias.` reads from the module (`bind.member_binding`): its own lets and
    templates, its types and schemas, then its fields (its imports and inputs are not
    members)."""
    items = [i for i in _decl_items(mod) if i.detail not in ("import", "input")]
    seen = {i.label for i in items}
    for stmt in mod.body:
        if isinstance(stmt, ast.Field):
            k = stmt.path[0].static
            if k is not None and k not in seen:
                seen.add(k)
                items.append(
                    lsp.CompletionItem(
                        label=k, kind=lsp.CompletionItemKind.Field, sort_text=f"0{k}"
                    )
                )
    return items


def complete(state: State, path: str, offset: int) -> lsp.CompletionList:
    """The completion list at a position of an open file."""
    text = state.text(path) or ""
    m = state.module(path)
    before = text[:offset]
    word = re.search(r"[A-Za-z_][A-Za-z0-9_]*\Z", before)
    start = word.start() if word else offset
    lead = before[:start]
    items: list[lsp.CompletionItem] = []
    member = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*\.\s*\Z", lead)
    if member is not None:
        mod = model.imported(m, member.group(1)) if m is not None else None
        return lsp.CompletionList(False, _member_items(mod) if mod is not None else [])
    line_lead = lead[lead.rfind("\n") + 1 :]
    if lead.rstrip().endswith((":", "|", "[")) and not line_lead.strip().startswith("check"):
        items += [
            lsp.CompletionItem(label=t, kind=lsp.CompletionItemKind.Class, sort_text=f"2{t}")
            for t in BUILTIN_TYPES
        ]
        if m is not None:
            items += _decl_items(m, types_only=True)
        return lsp.CompletionList(False, items)
    at_stmt_start = line_lead.strip() in ("", "final", "hidden") or lead.rstrip().endswith(
        ("{", ";")
    )
    if m is not None and at_stmt_start:
        items += field_items(m, text, offset)
    items += [
        lsp.CompletionItem(label=k, kind=lsp.CompletionItemKind.Keyword, sort_text=f"3{k}")
        for k in KEYWORDS
    ]
    if not at_stmt_start or not items or m is None:
        items += [
            lsp.CompletionItem(
                label=name,
                kind=lsp.CompletionItemKind.Function,
                detail=sig,
                sort_text=f"2{name}",
                insert_text=name,
            )
            for name, sig in SIGNATURES.items()
        ]
    if m is not None:
        items += _decl_items(m)
    return lsp.CompletionList(False, items)
