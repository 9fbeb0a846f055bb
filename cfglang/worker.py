"""One shared pool of big-stack threads that runs every compilation.

Evaluation recurses once per nested value, so a deep (but bounded) program needs more
stack and more Python frames than a default thread allows before CFL's own depth limit
(`Limits.max_depth`, counted per evaluation) can report it as E0502. The old driver changed
`threading.stack_size`, `sys.setrecursionlimit` and `gc` on every compile and started a
thread; two compiles in two threads then raced on those settings.

Now the settings are touched once, when the pool is first used, under a lock:

- the worker threads are created together with a 512 MiB stack (reserved address space,
  committed only as it is used); `threading.stack_size` is set for their creation and
  restored before the lock is released, and never touched again;
- Python's recursion limit is raised to at least `RECURSION_FLOOR`, never lowered and
  never changed again. CPython has one limit per process (no per-thread limit), and CFL's
  documented depth of 1,500 costs up to 7 Python frames a level (measured: a chain of
  `$<...>` substitutions between fields), so the default of 1,000 cannot hold it. Every
  other thread keeps its own stack, and no compile runs on one of them;
- the cyclic collector's first threshold is raised to at least `GC_THRESHOLD` (never
  lowered): a compilation allocates many long-lived objects and frees them together, and
  at the default of 700 the collector rescans them over and over. Measured on a
  1,000-service build (benchmarks/bench_build.py, in-process, median of 5): 1.1 s with the
  collector disabled (the old per-call `gc.disable()`), 1.7 s with the default thresholds,
  0.8-0.9 s with this one. The collector stays enabled.

Compiles from many threads run on the pool concurrently (`WORKERS` threads); a compile
started from a pool thread (an `explain` inside a tool running on the pool) runs inline,
so the pool can never wait on itself.
"""

from __future__ import annotations

import gc
import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["GC_THRESHOLD", "RECURSION_FLOOR", "STACK_SIZE", "WORKERS", "run"]

STACK_SIZE = 512 * 1024 * 1024
RECURSION_FLOOR = 60_000
WORKERS = 8
GC_THRESHOLD = 50_000

_T = TypeVar("_T")
_Job = tuple[Callable[[], Any], "Future[Any]"]

_lock = threading.Lock()
_jobs: queue.SimpleQueue[_Job] | None = None
_local = threading.local()


def _serve(jobs: queue.SimpleQueue[_Job]) -> None:
    _local.worker = True
    while True:
        work, fut = jobs.get()
        if not fut.set_running_or_notify_cancel():
            continue
        try:
            fut.set_result(work())
        except BaseException as e:  # handed to the caller, who decides what it means
            fut.set_exception(e)
        del work, fut


def _pool() -> queue.SimpleQueue[_Job]:
    global _jobs
    jobs = _jobs
    if jobs is not None:
        return jobs
    with _lock:
        if _jobs is None:
            jobs = queue.SimpleQueue()
            if sys.getrecursionlimit() < RECURSION_FLOOR:
                sys.setrecursionlimit(RECURSION_FLOOR)
            t0, t1, t2 = gc.get_threshold()
            if t0 < GC_THRESHOLD:
                gc.set_threshold(GC_THRESHOLD, max(t1, 20), max(t2, 100))
            old = threading.stack_size()
            threading.stack_size(STACK_SIZE)
            try:
                for i in range(WORKERS):
                    t = threading.Thread(
                        target=_serve, args=(jobs,), name=f"cfglang-worker-{i}", daemon=True
                    )
                    t.start()
            finally:
                threading.stack_size(old)
            _jobs = jobs
        return _jobs


def run(work: Callable[[], _T]) -> _T:
    """Run ``work`` on a pool thread and return its result (or raise its exception)."""
    if getattr(_local, "worker", False):
        return work()
    fut: Future[_T] = Future()
    _pool().put((work, fut))
    return fut.result()
