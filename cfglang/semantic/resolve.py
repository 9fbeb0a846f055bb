"""The resolver: loads the module graph of an entry file.

Algorithm: depth-first from the entry module. Each module is read through a `Loader`
(so the compiler never knows whether bytes come from disk, git or memory), parsed once
(memoised by resolved path), and its header sorted into tables: imports, `extends`,
inputs, lets, types, schemas, templates, outputs, checks and the field statements that
form the document. A stack of modules being loaded detects import/extends cycles and
reports the whole chain. Paths are sandboxed to the project root plus `--allow-path`
directories. Name lookup itself is late-bound and happens in the evaluator; this phase
only reports what is wrong with the module graph and with declarations (duplicates,
misplaced declarations).
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
import time
from pathlib import Path
from typing import Protocol

import attrs

from cfglang import cache
from cfglang.diagnostics import Diagnostic, Diagnostics, Note, did_you_mean
from cfglang.limits import source_size_limit
from cfglang.paths import resolves_inside
from cfglang.source import SourceFile, Span
from cfglang.syntax import ast


class Loader(Protocol):
    """Where module text comes from. ``read`` raises OSError when a path cannot be read."""

    def read(self, path: str) -> str: ...

    def exists(self, path: str) -> bool: ...


class FileLoader:
    """Reads modules from the working tree."""

    def read(self, path: str) -> str:
        # Byte-exact (no newline translation): a file means what the same bytes on
        # standard input mean, and a bare CR in a comment stays inside the comment.
        # O_NONBLOCK and the regular-file test: a FIFO or device in the project (`import
        # "fifo"`) would otherwise block the compile for ever or read without end.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, encoding="utf-8", newline="", closefd=True) as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file", path)
            # One character more than the limit is over it (a character is at least one
            # byte): the parser refuses the file without more of it ever being read.
            return f.read(source_size_limit() + 1)

    def exists(self, path: str) -> bool:
        return os.path.isfile(path)


@attrs.define
class MemoryLoader:
    """Reads modules from a dict of path -> text, falling back to another loader."""

    files: dict[str, str]
    fallback: Loader | None = None

    def read(self, path: str) -> str:
        if path in self.files:
            return self.files[path]
        if self.fallback is not None:
            return self.fallback.read(path)
        raise FileNotFoundError(path)

    def exists(self, path: str) -> bool:
        return path in self.files or (self.fallback is not None and self.fallback.exists(path))


def stdlib_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    for cand in (here / "_data" / "stdlib", here.parent / "stdlib"):
        if (cand / "std").is_dir():
            return cand
    return here.parent / "stdlib"


@attrs.define(eq=False)
class ModuleInfo:
    """One loaded module and its sorted declarations."""

    key: str
    source: SourceFile
    tree: ast.Module
    parent: ModuleInfo | None = None
    extends_decl: ast.ExtendsDecl | None = None
    imports: dict[str, ModuleInfo | None] = attrs.Factory(dict)
    import_decls: dict[str, ast.Import] = attrs.Factory(dict)
    lets: dict[str, ast.LetDecl] = attrs.Factory(dict)
    inputs: dict[str, ast.InputDecl] = attrs.Factory(dict)
    types: dict[str, ast.TypeDecl] = attrs.Factory(dict)
    schemas: dict[str, ast.SchemaDecl] = attrs.Factory(dict)
    templates: dict[str, ast.TemplateDecl] = attrs.Factory(dict)
    # Every `output` of the module, at the top or in a module-level if/for (source order).
    outputs: list[ast.OutputDecl] = attrs.Factory(list)
    checks: list[ast.CheckStmt] = attrs.Factory(list)
    body: list[ast.Stmt] = attrs.Factory(list)

    def chain(self) -> list[ModuleInfo]:
        """Base first, this module last."""
        out: list[ModuleInfo] = []
        m: ModuleInfo | None = self
        while m is not None:
            out.append(m)
            m = m.parent
        return out[::-1]

    def declared_names(self) -> list[str]:
        return [
            *self.lets,
            *self.inputs,
            *self.imports,
            *self.types,
            *self.schemas,
            *self.templates,
        ]


@attrs.define
class Resolver:
    """Loads modules; one instance per compilation (it memoises parsed modules)."""

    loader: Loader
    root: str
    diags: Diagnostics
    allow_paths: tuple[str, ...] = ()
    use_cache: bool = False
    # How deep imports and `extends` may nest (`Limits.max_module_depth`): loading recurses
    # once per module, so a 50,000-module chain must stop at CFL's limit, not Python's.
    max_depth: int = 10_000
    # Seconds spent parsing each file (display path), for `cflc build --profile`.
    parse_times: dict[str, float] = attrs.Factory(dict)
    parsed: list[str] = attrs.Factory(list)  # files parsed, not served from the cache
    modules: dict[str, ModuleInfo] = attrs.Factory(dict)
    _stack: list[tuple[str, Span | None]] = attrs.Factory(list)
    # Where each path on `_stack` is: the cycle test is then O(1), not a scan of the stack
    # (which made a long `extends` chain quadratic).
    _on_stack: dict[str, int] = attrs.Factory(dict)
    _failed: set[str] = attrs.Factory(set)

    def display(self, path: str) -> str:
        std = str(stdlib_dir())
        if path.startswith(std + os.sep):
            return os.path.relpath(path, std).replace(os.sep, "/")
        try:
            rel = os.path.relpath(path, self.root)
        except ValueError:
            return path
        return rel.replace(os.sep, "/") if not rel.startswith("..") else path

    def load_entry(self, path: str, text: str | None = None) -> ModuleInfo | None:
        real = os.path.abspath(path)
        if text is not None:
            source = SourceFile(self.display(real), text, real)
            return self._load_source(real, source, None)
        return self._load(real, None)

    def _inside(self, path: str, bases: tuple[str, ...] | None = None) -> bool:
        """Whether ``path`` lies in one of ``bases`` (default: the root, the standard
        library and the allowed paths). Both sides are resolved through symlinks first,
        so a link inside the root that points elsewhere is outside."""
        if bases is None:
            bases = (self.root, str(stdlib_dir()), *self.allow_paths)
        return any(resolves_inside(path, base) for base in bases)

    def resolve_path(self, importer: ModuleInfo, spec: str, span: Span) -> str | None:
        if any(
            d.is_error
            and d.span is not None
            and d.span.source is span.source
            and span.start <= d.span.start < span.end
            for d in self.diags
        ):
            return None  # the path literal itself is wrong (an escape): said once, already
        bad = import_path_problem(spec)
        if bad is not None:
            self.diags.error("E0105", f"invalid import path: {bad}", span)
            return None
        if spec.startswith("std/"):
            rel = spec if spec.endswith(".cfl") else spec + ".cfl"
            # Normalised before it is trusted as stdlib: `std/../../x` must not climb out.
            norm = posixpath.normpath(rel)
            path = str(stdlib_dir() / norm)
            if not norm.startswith("std/") or not self._inside(path, (str(stdlib_dir()),)):
                self.diags.error(
                    "E0103",
                    f"`{spec}` is outside the standard library",
                    span,
                    label="this path leaves the standard library",
                )
                return None
            if not self.loader.exists(path) and not os.path.isfile(path):
                std = stdlib_dir()
                modules = [p.relative_to(std).as_posix() for p in (std / "std").rglob("*.cfl")]
                near = did_you_mean(rel, modules)
                if near is not None and not spec.endswith(".cfl"):
                    near = near[: -len(".cfl")]
                self.diags.error(
                    "E0101",
                    f"no standard library module `{spec}`",
                    span,
                    label="not in the standard library",
                    help=f"did you mean `{near}`?" if near else None,
                )
                return None
            return path
        base = os.path.dirname(importer.source.real_path or os.path.join(self.root, "x"))
        path = os.path.normpath(os.path.join(base, spec))
        if not path.endswith(".cfl") and not self.loader.exists(path):
            path += ".cfl"
        if not self._inside(path):
            self.diags.error(
                "E0103",
                f"`{spec}` is outside the project root",
                span,
                label="this path leaves the project",
                help="pass `--allow-path DIR` to allow another directory",
            )
            return None
        return path

    def _load(self, path: str, site: Span | None) -> ModuleInfo | None:
        if path in self.modules:
            return self.modules[path]
        if path in self._failed:
            return None
        try:
            text = self.loader.read(path)
        except IsADirectoryError:
            self._fail(path, site, "is a directory, not a module")
            return None
        except (OSError, UnicodeDecodeError) as e:
            reason = (
                "does not exist"
                if isinstance(e, FileNotFoundError)
                else (
                    "is not valid UTF-8" if isinstance(e, UnicodeDecodeError) else "cannot be read"
                )
            )
            self._fail(path, site, reason)
            return None
        source = SourceFile(self.display(path), text, path)
        return self._load_source(path, source, site)

    def _fail(self, path: str, site: Span | None, reason: str) -> None:
        self._failed.add(path)
        code = "E0101" if site is not None else "E0702"
        near = (
            self._near_file(path, site) if site is not None and reason == "does not exist" else None
        )
        self.diags.error(
            code,
            f"`{self.display(path)}` {reason}",
            site,
            label="imported here" if site else None,
            help=f"did you mean `{near}`?" if near else None,
        )

    def _near_file(self, path: str, site: Span) -> str | None:
        """The existing `.cfl` file nearest by name to the missing ``path`` (imported at
        ``site`` by the module on top of the stack), written as that import would write it:
        a did-you-mean for a misspelt import. The candidates are the files under the
        nearest existing directory of ``path`` (within the root, three levels deep, hidden
        directories skipped); only for modules read from disk."""
        if not self._stack or not _reads_disk(self.loader):
            return None
        importer = os.path.dirname(self._stack[-1][0])
        top = os.path.dirname(path)
        while not os.path.isdir(top) and resolves_inside(os.path.dirname(top), self.root):
            top = os.path.dirname(top)
        if not os.path.isdir(top) or not self._inside(top):
            return None
        found: list[str] = []
        for here, dirs, names in os.walk(top):
            depth = os.path.relpath(here, top).count(os.sep) + (here != top)
            dirs[:] = [d for d in dirs if not d.startswith(".")] if depth < 3 else []
            found += [os.path.join(here, n) for n in names if n.endswith(".cfl")]
            if len(found) > 2000:  # a did-you-mean is not worth a long walk
                break
        written = {os.path.relpath(f, importer).replace(os.sep, "/"): f for f in found}
        near = did_you_mean(os.path.relpath(path, importer).replace(os.sep, "/"), written)
        if near is None:
            return None
        literal = site.source.text[site.start : site.end]
        return near if ".cfl" in literal else near[: -len(".cfl")]

    def _load_source(self, path: str, source: SourceFile, site: Span | None) -> ModuleInfo | None:
        start = time.perf_counter()
        tree, errs = self._parse(source)
        self.parse_times[source.path] = time.perf_counter() - start
        self.diags.extend(errs)
        if tree is None:
            self._failed.add(path)
            return None
        info = ModuleInfo(path, source, tree)
        self.modules[path] = info
        self._on_stack[path] = len(self._stack)
        self._stack.append((path, site))
        try:
            self._sort(info)
        finally:
            self._stack.pop()
            del self._on_stack[path]
        return info

    def _parse(self, source: SourceFile) -> tuple[ast.Module | None, list[Diagnostic]]:
        """Parse, through the content-addressed parse cache when it is enabled."""
        # start-up: a parse-cache hit never loads the parser
        from cfglang.syntax.parser import parse_module

        if not self.use_cache:
            self.parsed.append(source.path)
            return parse_module(source)

        key = cache.parse_key(source.path, source.real_path, source.text)
        hit = cache.get_memory("parse", key)
        if isinstance(hit, ast.Module):
            return hit, []
        hit = cache.get("parse", key)
        if isinstance(hit, ast.Module):
            cache.put_memory("parse", key, hit)
            return hit, []
        tree, errs = parse_module(source)
        self.parsed.append(source.path)
        if tree is not None and not errs and not _plaintext_secret(source, tree):
            cache.put("parse", key, tree)
            cache.put_memory("parse", key, tree)
        return tree, errs

    def _enter(
        self, info: ModuleInfo, spec: str, span: Span, kind: str = "import"
    ) -> ModuleInfo | None:
        path = self.resolve_path(info, spec, span)
        if path is None:
            return None
        i = self._on_stack.get(path)
        if i is not None:
            chain = [self.display(q) for q, _ in self._stack[i:]] + [self.display(path)]
            verb = "extended" if kind == "extends" else "imported"
            notes = tuple(
                Note(f"`{self.display(q)}` is {verb} here", s)
                for q, s in self._stack[i + 1 :]
                if s is not None
            )
            self.diags.error(
                "E0102",
                f"{kind} cycle: " + " -> ".join(chain),
                span,
                label="this closes the cycle",
                notes=notes,
            )
            return None
        if path in self.modules:
            return self.modules[path]
        if len(self._stack) >= self.max_depth:
            self.diags.error(
                "E0502",
                f"modules are nested more than {self.max_depth} deep",
                span,
                label=f"this {kind} goes past the limit",
                help="a chain of `extends` or imports this long is almost surely generated; "
                "merge some of its modules",
            )
            return None
        return self._load(path, span)

    def _sort(self, info: ModuleInfo) -> None:
        seen: dict[str, Span] = {}

        def declare(name: str, span: Span) -> bool:
            if name in seen:
                self.diags.error(
                    "E0204",
                    f"`{name}` is declared twice",
                    span,
                    notes=(Note("first declared here", seen[name]),),
                )
                return False
            seen[name] = span
            return True

        for stmt in info.tree.body.stmts:
            if isinstance(stmt, ast.ExtendsDecl):
                if info.extends_decl is not None:
                    self.diags.error(
                        "E0104",
                        "a module can extend only one module",
                        stmt.span,
                        notes=(Note("first extends here", info.extends_decl.span),),
                    )
                    continue
                info.extends_decl = stmt
                info.parent = self._enter(info, stmt.path, stmt.path_span, "extends")
            elif isinstance(stmt, ast.Import):
                if declare(stmt.alias, stmt.span):
                    info.import_decls[stmt.alias] = stmt
                    info.imports[stmt.alias] = self._enter(info, stmt.path, stmt.path_span)
            elif isinstance(stmt, ast.InputDecl):
                if declare(stmt.name, stmt.name_span):
                    info.inputs[stmt.name] = stmt
            elif isinstance(stmt, ast.LetDecl):
                if declare(stmt.name, stmt.name_span):
                    info.lets[stmt.name] = stmt
            elif isinstance(stmt, ast.TypeDecl):
                if declare(stmt.name, stmt.name_span):
                    info.types[stmt.name] = stmt
            elif isinstance(stmt, ast.SchemaDecl):
                if declare(stmt.name, stmt.name_span):
                    info.schemas[stmt.name] = stmt
            elif isinstance(stmt, ast.TemplateDecl):
                if declare(stmt.name, stmt.name_span):
                    info.templates[stmt.name] = stmt
            elif isinstance(stmt, ast.OutputDecl):
                pass  # `check_bodies` below: outputs may sit in a module-level if/for too
            elif isinstance(stmt, ast.CheckStmt):
                info.checks.append(stmt)
            else:
                info.body.append(stmt)
        check_bodies(info.tree.body, self.diags, top=True, outputs=info.outputs)


def _reads_disk(loader: object) -> bool:
    """Whether ``loader`` reads the working tree (so listing a directory says what it has):
    a `FileLoader`, or a loader wrapping one (an editor overlay, a recording loader)."""
    for _ in range(8):
        if isinstance(loader, FileLoader):
            return True
        inner = next(
            (getattr(loader, a) for a in ("fallback", "inner", "_disk") if hasattr(loader, a)),
            None,
        )
        if inner is None:
            return False
        loader = inner
    return False


def import_path_problem(spec: str) -> str | None:
    """Why an import path cannot name a file, or None. The OS cannot take a NUL byte
    or a lone surrogate, so these are reported here rather than failing in `open`."""
    if "\0" in spec:
        return "it holds a NUL byte"
    try:
        spec.encode("utf-8")
    except UnicodeEncodeError:
        return "it holds a lone surrogate"
    return None


def output_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an output file inside the output directory, or None.

    Lexical only (the output directory is not known until `build` writes); the writer
    checks again with symlinks resolved. A backslash counts as a separator so a name
    means the same on every platform."""
    if name == "":
        return "has an empty name"
    if "\0" in name:
        return "holds a NUL byte"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone surrogate"
    unix = name.replace("\\", "/")
    if unix.startswith("/") or (len(unix) > 1 and unix[1] == ":" and unix[0].isalpha()):
        return "is an absolute path"
    norm = posixpath.normpath(unix)
    if norm == ".." or norm.startswith("../"):
        return "leaves the output directory"
    if norm == "." or unix.endswith("/"):
        return "names a directory, not a file"
    return None


def output_name_error(
    diags: Diagnostics, decl: ast.OutputDecl, name: str, bad: str, evaluated: bool
) -> None:
    """E0603 for an output name that is not a file inside the output directory, at the
    declaration's name; ``evaluated`` when ``name`` is what a substituted name gave."""
    text = _printable(name)
    message = "output name is empty" if evaluated and name == "" else f"output `{text}` {bad}"
    diags.error(
        "E0603",
        message,
        decl.name_span,
        label=f"evaluates to `{text}`" if evaluated else "not a path inside the output directory",
        help='name a relative path such as `"app.json"` or `"sub/app.json"`',
    )


def _check_output_name(decl: ast.OutputDecl, diags: Diagnostics) -> bool:
    """Check a plain output name (static, so `cflc check` reports it too and nothing is
    ever written); a substituted one is checked when evaluated. False if reported."""
    if not decl.name.is_plain:
        return True
    bad = output_name_problem(decl.name.text)
    if bad is None:
        return True
    output_name_error(diags, decl, decl.name.text, bad, evaluated=False)
    return False


def normalise_output_name(name: str) -> str:
    """The one spelling of a valid output name (`./a//b.json` -> `a/b.json`)."""
    return posixpath.normpath(name.replace("\\", "/"))


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\0", "\\0")


def check_bodies(
    body: ast.Body,
    diags: Diagnostics,
    *,
    top: bool = False,
    schema: bool = False,
    outputs: list[ast.OutputDecl] | None = None,
    merged: bool = False,
) -> None:
    """Static checks on statement placement, recursing into nested bodies.

    ``outputs`` is given for the module's body and the bodies of its module-level `if`
    and `for` (at any depth of `if`/`for`), the places an `output` may stand: each one
    found there whose name is valid as far as can be told without evaluating is
    appended, in source order. ``merged``: a merge block's body, whose assignments its
    enclosing body has already compared."""
    lets: dict[str, Span] = {}
    fields: dict[str, Span] = {}
    if not merged:
        _double_assignments(body, diags)
    for stmt in body.stmts:
        if isinstance(stmt, ast.OutputDecl) and outputs is not None:
            if _check_output_name(stmt, diags):
                outputs.append(stmt)
            _walk_expr_bodies(stmt.value, diags)
            continue
        if not top and isinstance(
            stmt,
            (
                ast.Import,
                ast.ExtendsDecl,
                ast.InputDecl,
                ast.TypeDecl,
                ast.SchemaDecl,
                ast.TemplateDecl,
                ast.OutputDecl,
            ),
        ):
            kind = type(stmt).__name__.replace("Decl", "").lower()
            where = "the top level of a module"
            if isinstance(stmt, ast.OutputDecl):
                where += " or in its module-level `if` and `for`"
            diags.error("E0009", f"`{kind}` is only allowed at {where}", stmt.span)
            continue
        if isinstance(stmt, ast.LetDecl):
            # Module-level duplicates are reported by `_sort`; the let/field clash below
            # applies to every body, the module included.
            if not top and stmt.name in lets:
                diags.error(
                    "E0204",
                    f"`{stmt.name}` is declared twice",
                    stmt.name_span,
                    notes=(Note("first declared here", lets[stmt.name]),),
                )
            lets.setdefault(stmt.name, stmt.name_span)
            _walk_expr_bodies(stmt.value, diags)
        elif isinstance(stmt, ast.Field):
            first = stmt.path[0].static
            if first is not None and first not in fields:
                fields[first] = stmt.path[0].span
            if not schema and stmt.op == "decl" and isinstance(stmt.type, ast.LiteralType):
                diags.error(
                    "E0005",
                    "`:` declares a type; use `=` to set a value",
                    stmt.span,
                    label=f"`{first}` is given a type, not a value",
                    help=f"write `{first} = {stmt.type.span.text()}`",
                )
            if stmt.body is not None:
                check_bodies(stmt.body, diags, merged=True)
            if stmt.value is not None:
                _walk_expr_bodies(stmt.value, diags)
        elif isinstance(stmt, ast.SchemaDecl):
            check_bodies(stmt.body, diags, schema=True)
        elif isinstance(stmt, ast.TemplateDecl):
            check_bodies(stmt.body, diags)
        elif isinstance(stmt, ast.IfStmt):
            check_bodies(stmt.then, diags, outputs=outputs)
            node: ast.Body | ast.IfStmt | None = stmt.orelse
            while isinstance(node, ast.IfStmt):
                check_bodies(node.then, diags, outputs=outputs)
                node = node.orelse
            if isinstance(node, ast.Body):
                check_bodies(node, diags, outputs=outputs)
        elif isinstance(stmt, ast.ForStmt):
            check_bodies(stmt.body, diags, outputs=outputs)
    for name, span in lets.items():
        if name in fields:
            diags.error(
                "E0204",
                f"`{name}` is both a let and a field in one body",
                span,
                notes=(Note("the field is defined here", fields[name]),),
            )


def _double_assignments(body: ast.Body, diags: Diagnostics) -> None:
    """E0204 for a field assigned twice in one body (docs/language.md §3.6).

    A body's assignments are compared by their whole data path, merge blocks and dotted
    paths flattened (`db.pool = 5` and `db { pool = 6 }` both assign `db.pool`), so a
    later line never silently replaces an earlier one. Only `=` and `extends` count:
    `+=` adds to the value, a merge block merges, `unset` removes. The statements under
    an `if` or a `for` are a body of their own: one key in an `if` and its `else`, or a
    default before an `if` that overrides it, is no duplicate. A computed key is only
    known at run time (`Evaluator.expand` reports a `for` that makes one key twice)."""
    seen: dict[tuple[str, ...], tuple[Span, bool]] = {}

    def walk(stmts: tuple[ast.Stmt, ...], prefix: tuple[str, ...]) -> None:
        for stmt in stmts:
            if not isinstance(stmt, ast.Field):
                continue
            path = prefix
            for k in stmt.path:
                text = k.static
                if text is None:
                    break
                path = (*path, text)
            else:
                if stmt.op == "merge" and stmt.body is not None:
                    walk(stmt.body.stmts, path)
                elif stmt.op in ("set", "extends"):
                    span = stmt.path[-1].span
                    hit = seen.get(path)
                    if hit is None:
                        seen[path] = (span, stmt.final)
                        continue
                    first, final = hit
                    if final:
                        continue  # E0305 (a final field changed) says it better
                    shown = ".".join(path)
                    diags.error(
                        "E0204",
                        f"`{shown}` is assigned twice in one body",
                        span,
                        label="this assignment would silently replace the first",
                        notes=(Note("first assigned here", first),),
                        help="remove one of them; to change a value inherited from a "
                        "base, override it in the extending module or block",
                    )

    walk(body.stmts, ())


def _walk_expr_bodies(expr: ast.Expr, diags: Diagnostics) -> None:
    if isinstance(expr, ast.ObjectLit):
        check_bodies(expr.body, diags)
    elif isinstance(expr, ast.Refine):
        check_bodies(expr.body, diags)
        _walk_expr_bodies(expr.base, diags)


def _plaintext_secret(source: SourceFile, tree: ast.Module) -> bool:
    """Whether ``tree`` holds a secret in plain text that the syntax alone shows: a plain
    literal in ``secret("...")`` or in a field declared ``: secret``.

    Such a tree is not cached: the cache would keep the text on disk after `cflc secrets
    encrypt` removed it from the source. A literal that is a secret only through a schema
    is found by evaluation instead, and its file's entry removed then (`cfglang.api`).
    """
    if "secret" not in source.text:
        return False  # the common case, without walking the tree
    # only when the text holds something that looks like a secret
    from cfglang.secrets.format import PREFIXES, sites

    return any(
        s.literal is not None
        and (s.declared if s.kind == "field" else not s.literal.text.startswith(PREFIXES))
        for s in sites(tree)
    )
