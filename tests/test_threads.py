"""Compiles from many threads at once (issue 13, item 3).

Every compile runs on one shared pool of big-stack threads (`cfglang.worker`), created once;
no compile changes the recursion limit, the collector or the thread stack size. Results
from many threads are byte-identical to sequential runs, deep programs included: those stop
at CFL's own depth limit (E0502), never at Python's.
"""

from __future__ import annotations

import gc
import json
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from cfglang import api, worker
from cfglang.diagnostics import render_human

REPO = Path(__file__).resolve().parent.parent
FLEET = REPO / "examples" / "fleet"
CASES = REPO / "tests" / "cases"

DEEP = 50_000


def _settings() -> tuple[int, bool, int, tuple[int, int, int]]:
    return sys.getrecursionlimit(), gc.isenabled(), threading.stack_size(), gc.get_threshold()


def _render(result: api.Compilation) -> str:
    """Everything a compile returns that a user sees, as text."""
    data = json.dumps(result.data, sort_keys=False, default=str)
    outs = [(o.name, o.format, o.text) for o in result.outputs]
    diags = "".join(render_human(d) for d in result.diagnostics)
    return f"{data}\n{outs}\n{diags}"


def _deep_lets(n: int) -> str:
    return (
        "let a0 = 0\n"
        + "".join(f"let a{i} = a{i - 1} + 1\n" for i in range(1, n))
        + (f"x = a{n - 1}\n")
    )


def _deep_substitutions(n: int) -> str:
    # Each field substitutes the next, so evaluating the first nests n deep.
    body = "".join(f'a{i} = "$<a{i + 1}>"\n' for i in range(n - 1))
    return body + f'a{n - 1} = "x"\n'


def _deep_templates(n: int) -> str:
    body = "".join(f"template t{i}() {{ v = t{i - 1}().v + 1 }}\n" for i in range(1, n))
    return "template t0() { v = 0 }\n" + body + f"x = t{n - 1}().v\n"


def _deep_lists(n: int) -> str:
    return (
        "let a0 = []\n"
        + "".join(f"let a{i} = [a{i - 1}]\n" for i in range(1, n))
        + (f"x = a{n - 1}\n")
    )


def _jobs(deep: dict[str, str]) -> list[Callable[[], api.Compilation]]:
    """Different projects, and one project with different inputs."""
    jobs: list[Callable[[], api.Compilation]] = []
    for env in ("dev", "staging", "prod"):
        p = str(FLEET / "env" / f"{env}.cfl")
        jobs.append(lambda p=p: api.compile(p, root=str(FLEET), env={}))
    base = str(FLEET / "base.cfl")
    for region in ("us-east-1", "eu-west-1", "us-west-2"):
        jobs.append(
            lambda r=region: api.compile(base, root=str(FLEET), env={}, cli_vars=[("region", r)])
        )
    for main in sorted(CASES.glob("*/*/main.cfl"))[:40]:
        if (main.parent / "cfl.toml").exists() or (main.parent / "args").exists():
            continue
        jobs.append(lambda m=main: api.compile(str(m), root=str(m.parent), env={}))
    for n in (1, 2, 3):
        text = f'input n: int = 0\nx = n * {n}\ny = "$<x>-$<n>"\n'
        jobs.append(lambda t=text, n=n: api.compile(text=t, vars={"n": n}, env={}))
    for name, text in deep.items():
        jobs.append(lambda t=text, name=name: api.compile(text=t, filename=f"{name}.cfl", env={}))
    return jobs


@pytest.fixture(scope="module")
def deep_programs() -> dict[str, str]:
    return {
        "lets": _deep_lets(DEEP),
        "substitutions": _deep_substitutions(DEEP // 10),
        "templates": _deep_templates(DEEP // 10),
        "lists": _deep_lists(DEEP // 10),
    }


def test_deep_programs_stop_at_cfl_depth_limit(deep_programs: dict[str, str]) -> None:
    for name, text in deep_programs.items():
        result = api.compile(text=text, filename=f"{name}.cfl", env={})
        codes = {d.code for d in result.diagnostics if d.is_error}
        assert codes == {"E0502"}, (name, [d.message for d in result.diagnostics])
        assert all(d.span is not None for d in result.diagnostics if d.is_error)


def test_many_threads_give_the_sequential_results(deep_programs: dict[str, str]) -> None:
    jobs = _jobs(deep_programs)
    expected = [_render(job()) for job in jobs]
    before = _settings()
    seen: list[tuple[int, bool, int, tuple[int, int, int]]] = []

    def run(i: int) -> str:
        out = _render(jobs[i % len(jobs)]())
        seen.append(_settings())
        return out

    rounds = 4
    with ThreadPoolExecutor(max_workers=10) as pool:
        got = list(pool.map(run, range(rounds * len(jobs))))
    assert len(got) >= 200
    for i, text in enumerate(got):
        assert text == expected[i % len(jobs)], i
    assert _settings() == before
    assert set(seen) == {before}


def test_no_compile_changes_process_settings() -> None:
    api.compile(text="x = 1\n", env={})  # the pool exists from here on
    before = _settings()
    observed: list[tuple[int, bool, int, tuple[int, int, int]]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            observed.append(_settings())

    t = threading.Thread(target=watch)
    t.start()
    try:
        for i in range(20):
            api.compile(text=_deep_lets(2_000 + i), env={})
            assert _settings() == before
    finally:
        stop.set()
        t.join()
    assert set(observed) == {before}


def test_no_compile_disables_the_collector_even_briefly() -> None:
    api.compile(text="x = 1\n", env={})
    observed: list[bool] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            observed.append(gc.isenabled())

    t = threading.Thread(target=watch)
    t.start()
    try:
        for i in range(20):
            api.compile(text=f"x = {i}\ny = [x, x]\n", env={})
    finally:
        stop.set()
        t.join()
    assert all(observed)


def test_a_compile_on_a_pool_thread_runs_inline() -> None:
    def nested() -> Any:
        return api.compile(text="x = 1\n", env={}).data

    assert worker.run(nested) == {"x": 1}
