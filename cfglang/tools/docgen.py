"""Reference documentation (`cflc doc`): Markdown and self-contained HTML from the types,
schemas and doc comments of modules, and, for a project, the values its targets give.

Algorithm: the modules are loaded without evaluation (`cfglang.tools.jsonschema.load_workspace`)
and turned into one small document model per page (headings, paragraphs, tables, code,
lists of inline text/code/links), which two renderers print as Markdown and as HTML, so
both formats always say the same thing. A page per module that declares types or schemas,
plus `index`. Every schema and type has an anchor (`schema-Service`, `type-Port`);
names in field types link to their declaration, on the same page or another.

For a project, each target is compiled with `cfglang.driver.compile`. Compiled data does not
say which schema an object follows, so instances are found structurally: an object whose
keys are all fields of a (closed) schema and include its required fields; when several
schemas fit, the one with fewest unused fields wins. Secrets print as `<secret>`.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import attrs

from cfglang.semantic import types as T
from cfglang.semantic.resolve import ModuleInfo
from cfglang.syntax import ast
from cfglang.tools.jsonschema import Workspace, default_of, schema_checks, schema_fields
from cfglang.values import Duration, Secret, Size

# ---- the document model -----------------------------------------------------------------------


@attrs.frozen
class Text:
    text: str


@attrs.frozen
class Code:
    text: str


@attrs.frozen
class Link:
    text: str
    page: str | None  # page slug, None for this page
    anchor: str
    code: bool = True


Inline = Text | Code | Link
Cell = list[Inline]


@attrs.frozen
class Heading:
    level: int
    text: str
    anchor: str | None = None


@attrs.frozen
class Para:
    parts: Cell


@attrs.frozen
class Table:
    headers: list[str]
    rows: list[list[Cell]]


@attrs.frozen
class Pre:
    text: str


@attrs.frozen
class Items:
    items: list[Cell]


Block = Heading | Para | Table | Pre | Items


@attrs.define
class Page:
    slug: str
    title: str
    blocks: list[Block] = attrs.Factory(list)


# ---- building ---------------------------------------------------------------------------------


@attrs.define
class TargetValues:
    """One compiled target: display name and redacted plain data (None on errors)."""

    name: str
    data: dict[str, Any] | None
    errors: int = 0


def slug_for(path: str) -> str:
    stem = path[:-4] if path.endswith(".cfl") else path
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem.replace("/", "-")).strip("-") or "module"


def plain(v: Any) -> Any:
    """JSON-ready data: durations and sizes canonical, secrets redacted."""
    if isinstance(v, Secret):
        return "<secret>"
    if isinstance(v, (Duration, Size)):
        return v.canonical()
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


class _Builder:
    def __init__(self, ws: Workspace, targets: Sequence[TargetValues]) -> None:
        self.ws = ws
        self.targets = targets
        self.modules = [m for m in ws.modules if m.types or m.schemas]
        self.slugs: dict[str, str] = {}
        for m in self.modules:
            slug, n = slug_for(m.source.path), 2
            while slug in self.slugs.values() or slug == "index":
                slug, n = f"{slug_for(m.source.path)}-{n}", n + 1
            self.slugs[m.key] = slug
        # (module key, name) -> (slug, anchor) of every documented declaration
        self.anchors: dict[tuple[str, str], tuple[str, str]] = {}
        for m in self.modules:
            for d in ws.declarations(m):
                kind = "schema" if isinstance(d, ast.SchemaDecl) else "type"
                self.anchors[(m.key, d.name)] = (self.slugs[m.key], f"{kind}-{d.name}")
        self.by_span: dict[tuple[str, int], ModuleInfo] = {
            (d.name_span.source.path, d.name_span.start): m
            for m in ws.modules
            for d in m.types.values()
        }
        self.instances = self._find_instances()

    # -- links ------------------------------------------------------------------------------

    def link_of(self, t: T.Type) -> tuple[str, str] | None:
        if isinstance(t, T.SchemaT):
            s = t.schema
            return self.anchors.get((s.module.key, s.name))
        if isinstance(t, T.Alias):
            m = self.by_span.get((t.decl_span.source.path, t.decl_span.start))
            return self.anchors.get((m.key, t.name)) if m is not None else None
        return None

    def type_cell(self, texpr: ast.TypeExpr | None, m: ModuleInfo, page: str) -> Cell:
        if texpr is None:
            return [Code("any")]
        out: Cell = []
        self._type_parts(texpr, m, page, out, top=True)
        return _merge(out)

    def _type_parts(
        self, t: ast.TypeExpr, m: ModuleInfo, page: str, out: Cell, top: bool = False
    ) -> None:
        if isinstance(t, ast.NamedType):
            name = ".".join(t.path)
            target = None
            if not (
                len(t.path) == 1 and (t.path[0] in T.PRIMITIVES or t.path[0] in ("list", "map"))
            ):
                target = self.link_of(self.ws.types_of(m).resolve(t, m))
            if target is not None:
                out.append(Link(name, None if target[0] == page else target[0], target[1]))
            else:
                out.append(Code(name))
            if t.args:
                out.append(Code("["))
                for i, a in enumerate(t.args):
                    if i:
                        out.append(Code(", "))
                    self._type_parts(a, m, page, out)
                out.append(Code("]"))
        elif isinstance(t, ast.OptionalType):
            wrap = isinstance(t.inner, ast.UnionType)
            if wrap:
                out.append(Code("("))
            self._type_parts(t.inner, m, page, out)
            out.append(Code(")?" if wrap else "?"))
        elif isinstance(t, ast.UnionType):
            for i, o in enumerate(t.options):
                if i:
                    out.append(Code(" | "))
                self._type_parts(o, m, page, out)
        else:
            out.append(Code(t.span.text()))

    # -- instances --------------------------------------------------------------------------

    def _find_instances(self) -> dict[int, dict[str, list[tuple[str, dict[str, Any]]]]]:
        """id(schema decl) -> target name -> [(data path, object)]."""
        shapes = []
        for m in self.modules:
            for decl in m.schemas.values():
                s = self.ws.types_of(m).schema(decl, m)
                fields = schema_fields(s)
                keys = {k for k, _, _ in fields}
                required = set()
                for k, f, mod in fields:
                    typ = (
                        self.ws.types_of(mod).resolve(f.type, mod) if f.type is not None else T.ANY
                    )
                    if not default_of(f)[0] and not T.is_optional(typ):
                        required.add(k)
                shapes.append((decl, keys, required))
        out: dict[int, dict[str, list[tuple[str, dict[str, Any]]]]] = {}
        for tv in self.targets:
            if tv.data is None:
                continue
            for path, obj in _objects(tv.data, ""):
                fits = [
                    (len(keys) - len(obj), decl)
                    for decl, keys, req in shapes
                    if obj and set(obj) <= keys and req <= set(obj)
                ]
                if not fits:
                    continue
                best = min(f[0] for f in fits)
                for extra, decl in fits:
                    if extra == best:
                        out.setdefault(id(decl), {}).setdefault(tv.name, []).append((path, obj))
        return out

    # -- pages ------------------------------------------------------------------------------

    def module_page(self, m: ModuleInfo) -> Page:
        slug = self.slugs[m.key]
        page = Page(slug, m.source.path)
        b = page.blocks
        b.append(Heading(1, f"Module {m.source.path}"))
        b.append(Para([Link("index", "index", "", code=False)]))
        if m.tree.doc:
            b.append(Para([Text(_one_para(m.tree.doc))]))
        decls = self.ws.declarations(m)
        types = [d for d in decls if isinstance(d, ast.TypeDecl)]
        schemas = [d for d in decls if isinstance(d, ast.SchemaDecl)]
        contents: list[Cell] = [
            [
                Link(
                    f"{'schema' if isinstance(d, ast.SchemaDecl) else 'type'} {d.name}",
                    None,
                    self.anchors[(m.key, d.name)][1],
                )
            ]
            for d in decls
        ]
        b.append(Items(contents))
        if types:
            b.append(Heading(2, "Types"))
            for td in types:
                b.extend(self.type_section(td))
        if schemas:
            b.append(Heading(2, "Schemas"))
            for sd in schemas:
                b.extend(self.schema_section(sd, m, slug))
        return page

    def type_section(self, d: ast.TypeDecl) -> list[Block]:
        out: list[Block] = [Heading(3, f"type {d.name}", f"type-{d.name}")]
        if d.doc:
            out.append(Para([Text(_one_para(d.doc))]))
        out.append(Pre(d.span.text()))
        return out

    def schema_section(self, d: ast.SchemaDecl, m: ModuleInfo, slug: str) -> list[Block]:
        s = self.ws.types_of(m).schema(d, m)
        out: list[Block] = [Heading(3, f"schema {d.name}", f"schema-{d.name}")]
        if d.doc:
            out.append(Para([Text(_one_para(d.doc))]))
        if s.parent is not None:
            target = self.anchors.get((s.parent.module.key, s.parent.name))
            parent: Inline = (
                Link(s.parent.name, None if target[0] == slug else target[0], target[1])
                if target
                else Code(s.parent.name)
            )
            out.append(
                Para([Text("Extends "), parent, Text(": it has all of its fields and checks.")])
            )
        rows: list[list[Cell]] = []
        fields = schema_fields(s)
        for key, f, mod in fields:
            typ = self.ws.types_of(mod).resolve(f.type, mod) if f.type is not None else T.ANY
            if f.value is not None:
                default: Cell = [Code(f.value.span.text())]
            elif f.body is not None:
                default = [Text("(block)")]
            elif T.is_optional(typ):
                default = [Text("optional")]
            else:
                default = [Text("required")]
            constraint: Cell = [Code(f.where.span.text())] if f.where is not None else []
            mods = [w for w, on in (("final", f.final),) if on]
            desc = _one_para(f.doc) if f.doc else ""
            if mods:
                desc = (desc + " " if desc else "") + f"({', '.join(mods)})"
            rows.append(
                [
                    [Code(key)],
                    self.type_cell(f.type, mod, slug),
                    default,
                    constraint,
                    [Text(desc)] if desc else [],
                ]
            )
        out.append(Table(["Field", "Type", "Default", "Constraints", "Description"], rows))
        checks = schema_checks(s)
        if checks:
            out.append(Para([Text("Checks:")]))
            items: list[Cell] = []
            for c in checks:
                item: Cell = [Code(c.expr.span.text())]
                if c.message:
                    item.append(Text(f" — {c.message}"))
                items.append(item)
            out.append(Items(items))
        found = self.instances.get(id(d), {})
        if found:
            out.append(Heading(4, f"Values of {d.name} in targets"))
            for tname, objs in found.items():
                out.append(Para([Text("Target "), Code(tname)]))
                cols = [p or "(root)" for p, _ in objs]
                trows: list[list[Cell]] = []
                for key, _f, _mod in fields:
                    row: list[Cell] = [[Code(key)]]
                    for _p, obj in objs:
                        row.append([Code(_show(obj[key]))] if key in obj else [Text("—")])
                    trows.append(row)
                out.append(Table(["Field", *cols], trows))
        return out

    def index(self, title: str) -> Page:
        page = Page("index", title)
        b = page.blocks
        b.append(Heading(1, title))
        b.append(
            Para(
                [
                    Text("Reference of the CFL types and schemas, generated by "),
                    Code("cflc doc"),
                    Text("."),
                ]
            )
        )
        b.append(Heading(2, "Modules"))
        rows: list[list[Cell]] = []
        for m in self.modules:
            decls = self.ws.declarations(m)
            names: Cell = []
            for i, d in enumerate(decls):
                if i:
                    names.append(Text(", "))
                slug, anchor = self.anchors[(m.key, d.name)]
                names.append(Link(d.name, slug, anchor))
            rows.append(
                [
                    [Link(m.source.path, self.slugs[m.key], "", code=True)],
                    [Text(_first_sentence(m.tree.doc))] if m.tree.doc else [],
                    names,
                ]
            )
        b.append(Table(["Module", "About", "Declares"], rows))
        if self.targets:
            b.append(Heading(2, "Targets"))
            b.append(
                Items(
                    [
                        [
                            Code(t.name),
                            Text(
                                ": compiled"
                                if t.data is not None
                                else f": has {t.errors} error(s), values not shown"
                            ),
                        ]
                        for t in self.targets
                    ]
                )
            )
        return page


def _objects(v: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(v, dict):
        out.append((path, v))
        for k, x in v.items():
            out.extend(_objects(x, f"{path}.{k}" if path else k))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            out.extend(_objects(x, f"{path}[{i}]"))
    return out


def _show(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False)


def _one_para(doc: str) -> str:
    return " ".join(line.strip() for line in doc.splitlines() if line.strip())


def _first_sentence(doc: str) -> str:
    text = _one_para(doc)
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    return m.group(1) if m else text


def _merge(cell: Cell) -> Cell:
    """Join neighbouring code pieces so a type reads as one code span between links."""
    out: Cell = []
    for part in cell:
        if isinstance(part, Code) and out and isinstance(out[-1], Code):
            out[-1] = Code(out[-1].text + part.text)
        else:
            out.append(part)
    return out


def build_pages(ws: Workspace, targets: Sequence[TargetValues], title: str) -> list[Page]:
    b = _Builder(ws, targets)
    return [b.index(title), *(b.module_page(m) for m in b.modules)]


# ---- rendering --------------------------------------------------------------------------------


# Characters that can start Markdown (or raw HTML) syntax anywhere in a line; CommonMark
# lets any ASCII punctuation be backslash-escaped, so escaping these is always safe.
_MD_ACTIVE = re.compile(r"([\\`*_\[\]<>|~&#!])")
# ... and ones that only act at the start of a line (lists, headings, quotes, rules).
_MD_LINE_START = re.compile(r"^(\s*)(?:([-+=])|(\d+)([.)]))")


def _md_text(text: str) -> str:
    """Doc comments and values are plain text, as in the HTML: nothing in them renders
    as Markdown or HTML (`<script>`, `|`, `*`, links)."""
    text = _MD_ACTIVE.sub(r"\\\1", text.replace("\r", " ").replace("\n", " "))
    m = _MD_LINE_START.match(text)
    if m is None:
        return text
    mark = "\\" + m.group(2) if m.group(2) else m.group(3) + "\\" + m.group(4)
    return m.group(1) + mark + text[m.end() :]


def _md_code(text: str) -> str:
    # A code span is literal; only a run of backticks as long as its fence can end it,
    # and it cannot hold a line break.
    text = text.replace("\r", " ").replace("\n", " ")
    longest = max((len(r) for r in re.findall("`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if longest or text.startswith(" ") or text.endswith(" ") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _md_href(href: str) -> str:
    return quote(href, safe="/#.-_~")


def _md_inline(cell: Cell, in_table: bool = False) -> str:
    out = []
    for p in cell:
        if isinstance(p, Text):
            out.append(_md_text(p.text))
        elif isinstance(p, Code):
            # GFM splits table cells before it reads code spans: `|` needs `\|` even there.
            code = _md_code(p.text)
            out.append(code.replace("|", "\\|") if in_table else code)
        else:
            href = (f"{p.page}.md" if p.page else "") + (f"#{p.anchor}" if p.anchor else "")
            label = _md_code(p.text) if p.code else _md_text(p.text)
            if in_table and p.code:
                label = label.replace("|", "\\|")
            out.append(f"[{label}]({_md_href(href)})")
    return "".join(out)


def _md_fence(text: str) -> str:
    longest = max((len(r) for r in re.findall("`{3,}", text)), default=2)
    return "`" * (longest + 1)


def render_markdown(page: Page) -> str:
    lines: list[str] = []
    for blk in page.blocks:
        if isinstance(blk, Heading):
            if blk.anchor:
                lines.append(f'<a id="{html.escape(blk.anchor)}"></a>')
                lines.append("")
            lines.append("#" * blk.level + " " + _md_text(blk.text))
        elif isinstance(blk, Para):
            lines.append(_md_inline(blk.parts))
        elif isinstance(blk, Pre):
            fence = _md_fence(blk.text)
            lines += [fence + "cfl", blk.text, fence]
        elif isinstance(blk, Items):
            lines += [f"- {_md_inline(i)}" for i in blk.items]
        else:
            lines.append("| " + " | ".join(_md_text(h) for h in blk.headers) + " |")
            lines.append("|" + "---|" * len(blk.headers))
            for row in blk.rows:
                lines.append("| " + " | ".join(_md_inline(c, True) for c in row) + " |")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; color: #1f2328; line-height: 1.5; }
h1, h2, h3, h4 { line-height: 1.25; }
h3 { border-top: 1px solid #d0d7de; padding-top: 1rem; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
            font-size: 0.9em; }
code { background: #f6f8fa; padding: 0.1em 0.3em; border-radius: 4px; }
pre { background: #f6f8fa; padding: 0.8rem; overflow-x: auto; border-radius: 6px; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #d0d7de; padding: 0.3rem 0.6rem; vertical-align: top;
         text-align: left; }
th { background: #f6f8fa; }
a { color: #0969da; text-decoration: none; }
a:hover { text-decoration: underline; }
"""


def _html_inline(cell: Cell) -> str:
    out = []
    for p in cell:
        if isinstance(p, Text):
            out.append(html.escape(p.text))
        elif isinstance(p, Code):
            out.append(f"<code>{html.escape(p.text)}</code>")
        else:
            href = (f"{p.page}.html" if p.page else "") + (f"#{p.anchor}" if p.anchor else "")
            label = f"<code>{html.escape(p.text)}</code>" if p.code else html.escape(p.text)
            out.append(f'<a href="{html.escape(href)}">{label}</a>')
    return "".join(out)


def highlight_cfl(text: str) -> str:
    """CFL source as HTML, coloured by the project's Pygments lexer with inline styles
    (the pages stay self-contained: no stylesheet, no script)."""
    try:  # lazy: only HTML pages need Pygments (a broken install gives plain ones)
        from pygments import highlight  # type: ignore[import-untyped]
        from pygments.formatters import HtmlFormatter  # type: ignore[import-untyped]

        from cfglang.pygments_lexer import CflLexer
    except ImportError:
        return html.escape(text)
    out: str = highlight(text, CflLexer(), HtmlFormatter(nowrap=True, noclasses=True))
    return out.rstrip("\n")


def render_html(page: Page) -> str:
    body: list[str] = []
    for blk in page.blocks:
        if isinstance(blk, Heading):
            ident = f' id="{html.escape(blk.anchor)}"' if blk.anchor else ""
            body.append(f"<h{blk.level}{ident}>{html.escape(blk.text)}</h{blk.level}>")
        elif isinstance(blk, Para):
            body.append(f"<p>{_html_inline(blk.parts)}</p>")
        elif isinstance(blk, Pre):
            body.append(f"<pre><code>{highlight_cfl(blk.text)}</code></pre>")
        elif isinstance(blk, Items):
            body.append(
                "<ul>" + "".join(f"<li>{_html_inline(i)}</li>" for i in blk.items) + "</ul>"
            )
        else:
            head = "".join(f"<th>{html.escape(h)}</th>" for h in blk.headers)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_html_inline(c)}</td>" for c in row) + "</tr>"
                for row in blk.rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(page.title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        "<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def write_docs(pages: Sequence[Page], out_dir: str) -> list[str]:
    """Write DIR/<page>.md and DIR/<page>.html; returns the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for page in pages:
        for ext, text in (("md", render_markdown(page)), ("html", render_html(page))):
            path = os.path.join(out_dir, f"{page.slug}.{ext}")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            written.append(path)
    return written
