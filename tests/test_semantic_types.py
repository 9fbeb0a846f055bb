"""The semantic type resolver: types and schemas known without an evaluator, memoised per
module graph, shared safely between threads and between compilations."""

from __future__ import annotations

import threading
from pathlib import Path

from cfglang.diagnostics import Diagnostics
from cfglang.semantic import types as T
from cfglang.semantic.resolve import MemoryLoader, ModuleInfo, Resolver

NET = """
type Port = int where self >= 1 && self <= 65535
schema Endpoint {
  host: string
  port: Port = 80
}
"""

MAIN = """
import "net.cfl" as net

type Name = string
type Loop = Again
type Again = Loop

schema Service extends net.Endpoint {
  name: Name
  replicas: int = 1
  tags: list[string] = []
  ghost: Unknwn
}

schema Admin extends Service {
  level: int = 0
}

svc = 1
"""


def load(tmp_path: Path) -> tuple[ModuleInfo, Diagnostics]:
    root = str(tmp_path)
    files = {f"{root}/main.cfl": MAIN, f"{root}/net.cfl": NET}
    diags = Diagnostics()
    resolver = Resolver(MemoryLoader(files), root, diags)
    entry = resolver.load_entry(f"{root}/main.cfl")
    assert entry is not None and not diags.has_errors, [d.message for d in diags]
    return entry, diags


def resolve_all(types: T.TypeResolver, m: ModuleInfo, diags: Diagnostics | None) -> None:
    for decl in m.schemas.values():
        s = types.schema(decl, m, diags)
        for key, f in s.fields.items():
            if f.type is not None:
                types.resolve(f.type, s.owners[key], diags)
    for name, decl in m.types.items():
        types.lookup((name,), m, decl.name_span, diags)


def test_schemas_resolve_with_their_ancestry(tmp_path: Path) -> None:
    entry, _ = load(tmp_path)
    types = T.TypeResolver()
    admin = types.schema(entry.schemas["Admin"], entry)
    service = types.schema(entry.schemas["Service"], entry)
    assert [s.name for s in admin.chain()] == ["Admin", "Service", "Endpoint"]
    assert admin.parent is service and admin.is_a(service) and not service.is_a(admin)
    assert list(admin.fields) == ["host", "port", "name", "replicas", "tags", "ghost", "level"]
    assert admin.owners["port"] is entry.imports["net"] and admin.owners["name"] is entry
    endpoint = service.parent
    assert endpoint is not None and endpoint.module is entry.imports["net"]
    port = types.resolve(endpoint.fields["port"].type, endpoint.module)  # type: ignore[arg-type]
    assert isinstance(port, T.Alias) and port.show() == "Port"
    assert isinstance(port.target, T.Refined) and port.target.base == T.Prim("int")
    tags = types.resolve(service.fields["tags"].type, entry)  # type: ignore[arg-type]
    assert tags == T.ListT(T.Prim("string"))


def test_findings_are_replayed_to_every_collector(tmp_path: Path) -> None:
    entry, _ = load(tmp_path)
    types = T.TypeResolver()
    first, second = Diagnostics(), Diagnostics()
    resolve_all(types, entry, first)
    resolve_all(types, entry, second)  # every answer from the memo now
    codes = sorted((d.code, d.message) for d in first)
    assert codes == [
        ("E0203", "unknown type `Unknwn`"),
        ("E0205", "type `Loop` refers to itself"),
    ]
    assert [(d.code, d.message, d.span) for d in second] == [
        (d.code, d.message, d.span) for d in first
    ]
    # Without a collector the answer is the same, and the findings stay memoised.
    quiet = T.TypeResolver()
    resolve_all(quiet, entry, None)
    third = Diagnostics()
    resolve_all(quiet, entry, third)
    assert sorted((d.code, d.message) for d in third) == codes


def race(types: T.TypeResolver, entry: ModuleInfo, n: int) -> list[tuple[T.Schema, list[object]]]:
    """``n`` threads resolving everything at once: each one's schema and findings."""
    barrier = threading.Barrier(n)
    seen: list[tuple[T.Schema, list[object]]] = []
    lock = threading.Lock()

    def work() -> None:
        diags = Diagnostics()
        barrier.wait()
        resolve_all(types, entry, diags)
        admin = types.schema(entry.schemas["Admin"], entry)
        with lock:
            seen.append((admin, [(d.code, d.message, d.span) for d in diags]))

    threads = [threading.Thread(target=work) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return seen


def test_one_resolver_shared_by_threads_gives_one_answer(tmp_path: Path) -> None:
    entry, _ = load(tmp_path)
    expected = Diagnostics()
    resolve_all(T.TypeResolver(), entry, expected)
    want = [(d.code, d.message, d.span) for d in expected]
    for _ in range(20):
        seen = race(T.TypeResolver(), entry, 8)
        assert len(seen) == 8
        first = seen[0][0]
        # Identity: `is_a` compares schemas by identity.
        assert all(s is first for s, _ in seen)
        assert all(s.parent is first.parent for s, _ in seen)
        assert all(found == want for _, found in seen)


def test_find_import_follows_the_extends_chain(tmp_path: Path) -> None:
    entry, _ = load(tmp_path)
    assert T.find_import(entry, "net") is entry.imports["net"]
    assert T.find_import(entry, "nope") is None
