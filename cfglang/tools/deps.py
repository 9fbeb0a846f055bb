"""The dependency graph of a target: which files and inputs its output depends on.

Algorithm: the module graph is the target's `Program` (`cfglang.semantic.programs`), the
one a build of the target uses (same sandbox, same parse cache; reused while the sources
are unchanged), and nothing is evaluated.
Every loaded module becomes a node; its ``extends`` and each ``import`` become edges in
declaration order. Files that are referenced but could not be loaded (missing, unreadable,
or with syntax errors) are kept as *missing* nodes: a watcher must still react when such a
file appears or is fixed. The inputs of the target are those declared along its
``extends`` chain (the only ones a caller can set), each with its type, whether it has a
default and the environment variable it may be read from. ``--vars`` files are listed as
files, since their content feeds the inputs.

`project_graph` builds the graph of every target of a project and answers the question a
watcher asks: given changed paths, which targets must be rebuilt (`ProjectGraph.dependents`).
Paths are compared as absolute, normalised real paths; everything shown to people uses
the project-relative display paths the compiler uses in diagnostics.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from cfglang.diagnostics import Diagnostic, Diagnostics
from cfglang.project import find_root
from cfglang.semantic.programs import program_for
from cfglang.semantic.resolve import FileLoader, ModuleInfo, Resolver, stdlib_dir

__all__ = [
    "Edge",
    "InputDep",
    "ModuleNode",
    "ProjectGraph",
    "TargetDeps",
    "project_graph",
    "target_deps",
]


@attrs.frozen
class Edge:
    """``kind`` is ``extends`` or ``import``; ``alias`` the bound name of an import;
    ``spec`` the path as written; ``to`` the display path of the target module (or of the
    file that could not be loaded, then ``missing`` is true)."""

    kind: str
    spec: str
    to: str
    alias: str | None = None
    missing: bool = False


@attrs.frozen
class ModuleNode:
    """One module of the closure: display path, real path, whether it is in the stdlib,
    and its outgoing edges in declaration order."""

    path: str
    real_path: str
    std: bool
    edges: tuple[Edge, ...] = ()


@attrs.frozen
class InputDep:
    """An input of the target: where it is declared, its type text (None if untyped),
    whether some module of the chain gives it a default, and its environment variable."""

    name: str
    module: str
    type: str | None
    has_default: bool
    env: str | None


@attrs.frozen
class TargetDeps:
    """Everything one target depends on.

    ``modules`` lists the closure depth-first from the target (the target first);
    ``files`` the absolute paths of every file read or wanted (modules, missing modules
    and ``--vars`` files), sorted; ``missing`` the display paths of referenced files that
    could not be loaded; ``diagnostics`` the resolver's errors (syntax errors, cycles).
    """

    target: str
    root: str
    modules: tuple[ModuleNode, ...]
    inputs: tuple[InputDep, ...]
    var_files: tuple[str, ...]
    missing: tuple[str, ...]
    files: tuple[str, ...]
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)

    def project_files(self) -> tuple[str, ...]:
        """``files`` without the standard library (which does not change under a user)."""
        std = {m.real_path for m in self.modules if m.std}
        return tuple(f for f in self.files if f not in std)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "modules": [
                {
                    "path": m.path,
                    "std": m.std,
                    "edges": [
                        {
                            "kind": e.kind,
                            "spec": e.spec,
                            "to": e.to,
                            "alias": e.alias,
                            "missing": e.missing,
                        }
                        for e in m.edges
                    ],
                }
                for m in self.modules
            ],
            # The project's files first, then the standard library's (by absolute path):
            # a stable order wherever the project and the installation live.
            "files": [_rel(self.root, f) for f in self.project_files()]
            + [f for f in self.files if f not in self.project_files()],
            "missing": list(self.missing),
            "inputs": [
                {
                    "name": i.name,
                    "module": i.module,
                    "type": i.type,
                    "has_default": i.has_default,
                    "env": i.env,
                }
                for i in self.inputs
            ],
            "var_files": [_rel(self.root, f) for f in self.var_files],
        }

    def render_text(self) -> str:
        """An indented tree of the closure, then the inputs; a module reached twice is
        printed once and marked ``(see above)`` afterwards."""
        by_path = {m.path: m for m in self.modules}
        lines = [self.target]
        seen = {self.target}

        def walk(node: ModuleNode, indent: str) -> None:
            for i, e in enumerate(node.edges):
                last = i == len(node.edges) - 1
                branch, cont = ("└─ ", "   ") if last else ("├─ ", "│  ")
                what = (
                    f"extends {e.to}"
                    if e.kind == "extends"
                    else (f"import {e.to}" + (f" as {e.alias}" if e.alias else ""))
                )
                if e.missing:
                    lines.append(f"{indent}{branch}{what} (missing or broken)")
                    continue
                again = e.to in seen
                lines.append(f"{indent}{branch}{what}" + (" (see above)" if again else ""))
                if not again and e.to in by_path:
                    seen.add(e.to)
                    walk(by_path[e.to], indent + cont)

        if self.modules:
            walk(self.modules[0], "")
        lines.append("")
        files = [_rel(self.root, f) for f in self.project_files()]
        lines.append(f"files ({len(files)}):")
        lines += [f"  {f}" for f in files]
        if self.inputs:
            lines.append(f"inputs ({len(self.inputs)}):")
            for inp in self.inputs:
                bits = [f"declared in {inp.module}"]
                if inp.type:
                    bits.insert(0, inp.type)
                bits.append("has a default" if inp.has_default else "required")
                if inp.env:
                    bits.append(f"environment variable {inp.env}")
                lines.append(f"  {inp.name}: " + ", ".join(bits))
        return "\n".join(lines) + "\n"

    def render_dot(self) -> str:
        """A graphviz digraph: modules as boxes (stdlib grey, missing red), inputs as
        ellipses pointing at the module that declares them."""

        def q(s: str) -> str:
            return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

        out = ["digraph deps {", "  rankdir=LR;", "  node [shape=box, fontname=monospace];"]
        for m in self.modules:
            style = (
                ", style=filled, fillcolor=lightgrey"
                if m.std
                else (", penwidth=2" if m.path == self.target else "")
            )
            out.append(f"  {q(m.path)} [label={q(m.path)}{style}];")
        for path in self.missing:
            out.append(f"  {q(path)} [color=red, fontcolor=red, style=dashed];")
        for m in self.modules:
            for e in m.edges:
                label = "extends" if e.kind == "extends" else f"import as {e.alias}"
                out.append(
                    f"  {q(m.path)} -> {q(e.to)} [label={q(label)}"
                    + (", style=bold" if e.kind == "extends" else "")
                    + "];"
                )
        for inp in self.inputs:
            node = q("input " + inp.name)
            label = f"input {inp.name}" + (f" (env {inp.env})" if inp.env else "")
            out.append(f"  {node} [shape=ellipse, label={q(label)}];")
            out.append(f"  {node} -> {q(inp.module)} [style=dashed, arrowhead=none];")
        for vf in self.var_files:
            out.append(f"  {q(_rel(self.root, vf))} [shape=note];")
        out.append("}")
        return "\n".join(out) + "\n"


def _rel(root: str, path: str) -> str:
    try:
        rel = os.path.relpath(path, root)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel.replace(os.sep, "/")


def target_deps(
    path: str,
    *,
    root: str | None = None,
    allow_paths: Sequence[str] = (),
    var_files: Sequence[str] = (),
    use_cache: bool = True,
) -> TargetDeps:
    """The dependency graph of the module at ``path`` (see the module docstring)."""
    real_root = os.path.abspath(root) if root else find_root(path)
    # The program a build of ``path`` uses (shared with builds, the tools and the language
    # server while the sources are unchanged): its module graph, inputs and findings.
    program = program_for(path, root=real_root, allow_paths=allow_paths, use_cache=use_cache)
    # Display paths as the compiler shows them (project-relative, stdlib as `std/...`).
    resolver = Resolver(FileLoader(), real_root, Diagnostics())
    entry_real = os.path.abspath(path)
    entry = program.entry
    diags = Diagnostics()
    diags.extend(program.diagnostics)
    std_dir = _std_dir()
    nodes: list[ModuleNode] = []
    missing: dict[str, str] = {}  # real -> display
    visited: set[str] = set()

    def node_for(info: ModuleInfo) -> None:
        if info.key in visited:
            return
        visited.add(info.key)
        edges: list[Edge] = []
        children: list[ModuleInfo] = []
        if info.extends_decl is not None:
            spec = info.extends_decl.path
            if info.parent is not None:
                edges.append(Edge("extends", spec, info.parent.source.path))
                children.append(info.parent)
            else:
                edges.append(_missing_edge(resolver, info, "extends", spec, None, missing))
        for alias, decl in info.import_decls.items():
            target = info.imports.get(alias)
            if target is not None:
                edges.append(Edge("import", decl.path, target.source.path, alias))
                children.append(target)
            else:
                edges.append(_missing_edge(resolver, info, "import", decl.path, alias, missing))
        real = info.source.real_path or info.key
        nodes.append(
            ModuleNode(info.source.path, real, real.startswith(std_dir + os.sep), tuple(edges))
        )
        for child in children:
            node_for(child)

    if entry is not None:
        node_for(entry)
    else:
        missing[entry_real] = resolver.display(entry_real)
    inputs: list[InputDep] = []
    if entry is not None:
        decls = program.inputs
        for name, chain in decls.items():
            mod, base = chain[0]
            env = next((d.env for _, d in reversed(chain) if d.env), None)
            inputs.append(
                InputDep(
                    name,
                    mod.source.path,
                    base.type.span.text() if base.type is not None else None,
                    any(d.default is not None for _, d in chain),
                    env,
                )
            )
    vfs = tuple(os.path.abspath(v) for v in var_files)
    files = sorted({*(n.real_path for n in nodes), *missing, *vfs})
    return TargetDeps(
        resolver.display(entry_real),
        real_root,
        tuple(nodes),
        tuple(inputs),
        vfs,
        tuple(sorted(missing.values())),
        tuple(files),
        tuple(diags.sorted()),
    )


def _missing_edge(
    resolver: Any, info: Any, kind: str, spec: str, alias: str | None, missing: dict[str, str]
) -> Edge:
    """An edge to a file that did not load; its path is resolved the way the resolver
    does, without reporting anything again (errors were reported on the first attempt)."""
    if spec.startswith("std/"):
        return Edge(kind, spec, spec, alias, True)
    base = os.path.dirname(info.source.real_path or os.path.join(resolver.root, "x"))
    real = os.path.normpath(os.path.join(base, spec))
    if not real.endswith(".cfl") and not os.path.exists(real):
        real += ".cfl"
    shown = resolver.display(real)
    missing[real] = shown
    return Edge(kind, spec, shown, alias, True)


def _std_dir() -> str:
    return str(stdlib_dir())


@attrs.frozen
class ProjectGraph:
    """The graphs of every target of a project, keyed by the target's path as given."""

    targets: dict[str, TargetDeps]

    def dependents(self, changed: Iterable[str]) -> list[str]:
        """Targets (in the project's order) whose closure holds one of ``changed``."""
        paths = {os.path.abspath(p) for p in changed}
        return [t for t, d in self.targets.items() if paths.intersection(d.files)]


def project_graph(
    targets: Sequence[str],
    *,
    root: str | None = None,
    allow_paths: Sequence[str] = (),
    var_files: Sequence[str] = (),
) -> ProjectGraph:
    """`target_deps` of each target (the parse cache makes shared modules cheap)."""
    return ProjectGraph(
        {
            t: target_deps(t, root=root, allow_paths=allow_paths, var_files=var_files)
            for t in targets
        }
    )
