"""Limits on module chains and on the work a long chain does (issue 12, section 3).

A 4,000-module `extends` chain took 97 s: each module's new key was compared with every
inherited key (the near-miss warning) and each module entered was looked up in the
resolver's whole stack. A 50,000-module chain ended in RecursionError.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import cfglang.diagnostics
import cfglang.eval.expand as expand
from cfglang.api import compile
from cfglang.diagnostics import did_you_mean, edit_distance
from cfglang.eval.evaluate import Limits
from cfglang.eval.expand import _NearKeys


def _chain(root: Path, n: int, key: str = "field_{i}") -> Path:
    (root / "m0.cfl").write_text("base_key = 0\n")
    for i in range(1, n):
        k = key.format(i=i)
        (root / f"m{i}.cfl").write_text(f'extends "m{i - 1}.cfl"\n{k} = {i}\n')
    return root / f"m{n - 1}.cfl"


def test_long_extends_chain_does_linear_near_miss_work(tmp_path: Path, monkeypatch) -> None:
    calls = 0
    real = cfglang.diagnostics.edit_distance

    def counting(a: str, b: str) -> int:
        nonlocal calls
        calls += 1
        return real(a, b)

    monkeypatch.setattr(expand, "edit_distance", counting)
    monkeypatch.setattr(cfglang.diagnostics, "edit_distance", counting)
    n = 400
    result = compile(str(_chain(tmp_path, n)), root=str(tmp_path), env={})
    assert result.ok
    assert result.data is not None and len(result.data) == n
    # Every key is near another (`field_12` / `field_13`): the warnings are still given.
    assert sum(d.code == "W0801" for d in result.diagnostics) > n // 2
    # Comparing each key with every inherited one is n^2 / 2 = 80,000 distances.
    assert calls < 40 * n


def test_extends_chain_deeper_than_the_limit_is_a_diagnostic(tmp_path: Path) -> None:
    entry = _chain(tmp_path, 60)
    result = compile(str(entry), root=str(tmp_path), env={}, limits=Limits(max_module_depth=50))
    errors = [d for d in result.diagnostics if d.severity == "error"]
    assert [d.code for d in errors] == ["E0502"]
    assert errors[0].message == "modules are nested more than 50 deep"
    assert errors[0].span is not None and errors[0].span.path == "m10.cfl"


def test_import_chain_deeper_than_the_limit_is_a_diagnostic(tmp_path: Path) -> None:
    (tmp_path / "m0.cfl").write_text("x = 0\n")
    for i in range(1, 30):
        (tmp_path / f"m{i}.cfl").write_text(f'import "m{i - 1}.cfl" as prev\nx = prev.x + 1\n')
    result = compile(
        str(tmp_path / "m29.cfl"), root=str(tmp_path), env={}, limits=Limits(max_module_depth=20)
    )
    assert [d.code for d in result.diagnostics if d.severity == "error"] == ["E0502"]


def _unindexed(key: str, keys: list[str]) -> str | None:
    cand = did_you_mean(key, keys)
    if cand is not None and edit_distance(key, cand) > (1 if len(key) <= 7 else 2):
        return None
    return cand


keys_strategy = st.text(alphabet="ab_1", min_size=4, max_size=10)


@given(st.lists(keys_strategy, min_size=1, max_size=30, unique=True), keys_strategy)
def test_indexed_near_miss_finds_what_the_full_scan_finds(keys: list[str], key: str) -> None:
    if key in keys:
        return
    index = _NearKeys()
    for k in keys:
        index.add(k)
    assert index.nearest(key) == _unindexed(key, keys)
