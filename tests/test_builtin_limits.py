"""Every builtin on large inputs either finishes quickly or stops at a limit (E0502).

The table below must name every builtin (`BUILTINS`): a new builtin needs its large-input
programs here. The limits are lowered so that a program that pays steps for its work hits
them in well under a second; one that does unpaid work (a quadratic loop in Python, a
backtracking regex) runs far past the time bound instead.
"""

from __future__ import annotations

import time

import pytest

from cfglang.api import compile
from cfglang.eval.builtins import BUILTINS
from cfglang.eval.evaluate import Limits

LIMITS = Limits(
    max_steps=200_000,
    max_collection=200_000,
    max_string=2 * 1024 * 1024,
    max_output_values=500_000,
    max_output_bytes=4 * 1024 * 1024,
)
# L: a long list; S: a long string; O: an object with many fields; N: nested lists.
PRELUDE = """\
let L = range(20000)
let S = "ab" * 500000
let O = { for i in range(5000) { "k$<i>" = i } }
let N = [[i, [i]] for i in range(10000)]
"""
SECONDS = 5.0  # generous: the machine is shared; unpaid work takes minutes, not seconds

PROGRAMS: dict[str, list[str]] = {
    "len": ["x = [len(L) for i in L]", "x = [len(S) for i in L]", "x = [len(O) for i in L]"],
    "keys": ["x = [keys(O) for i in L]"],
    "values": ["x = [values(O) for i in L]"],
    "matches": [
        'x = [matches(S, "(a|b|ab)*c$") for i in L]',
        'x = matches(S + "!", "^(ab|a|b)+$")',
        'x = [matches("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", "(a+)+$") for i in range(1000)]',
    ],
    "startswith": ["x = [startswith(S, S) for i in L]"],
    "endswith": ["x = [endswith(S, S) for i in L]"],
    "contains": ["x = [contains(L, i) for i in L]", 'x = [contains(S, "abc") for i in L]'],
    "lower": ["x = [lower(S) for i in L]"],
    "upper": ["x = [upper(S) for i in L]"],
    "trim": ["x = [trim(S) for i in L]"],
    "split": ['x = [split(S, "a") for i in L]', 'x = split(S * 2, "b")'],
    "join": ['x = [join(L, ",") for i in L]', 'x = join([S, S, S], "")'],
    "replace": ['x = [replace(S, "a", "b") for i in L]', 'x = replace(S, "a", "aaaa")'],
    "min": ["x = [min(L) for i in L]"],
    "max": ["x = [max(L) for i in L]"],
    "sum": ["x = [sum(L) for i in L]"],
    "all": ["x = [all([true for j in L]) for i in L]"],
    "any": ["x = [any([false for j in L]) for i in L]"],
    "unique": ["x = unique(L)", "x = unique(N)", "x = [unique(L) for i in L]"],
    "sort": ["x = sort(L)", "x = [sort(L) for i in L]"],
    "range": ["x = [range(100000) for i in L]"],
    "int": ['x = [int("12345") for i in L]', 'x = int("9" * 100000)'],
    "float": ['x = [float("1.5") for i in L]', 'x = float("9" * 100000)'],
    "string": ["x = [string(i) for i in L]"],
    "seconds": ["x = [seconds(5s) for i in L]"],
    "millis": ["x = [millis(5s) for i in L]"],
    "bytes": ["x = [bytes(5KiB) for i in L]"],
    "default": ["x = [default(null, L) for i in L]"],
    "secret": ["x = [len(secret(S)) for i in L]"],
}
# Operators that do work proportional to their operands.
OPERATORS = [
    "x = [i for i in L if i in L]",
    'x = [i for i in L if "abc" in S]',
    "x = [N == N for i in L]",
    "x = [L + L for i in L]",
    "x = [[i] * 100000 for i in L]",
    "x = [S + S for i in L]",
    'x = ["$<S>$<S>" for i in L]',
]
# Besides E0502, a program may fail for a reason of its own (a number too large).
ALLOWED = {"E0502", "E0501", "E0503"}


def test_every_builtin_has_large_input_programs() -> None:
    assert set(PROGRAMS) == set(BUILTINS)


@pytest.mark.parametrize(
    "program",
    [pytest.param(p, id=f"{name}-{i}") for name, ps in PROGRAMS.items() for i, p in enumerate(ps)]
    + [pytest.param(p, id=f"op-{i}") for i, p in enumerate(OPERATORS)],
)
def test_large_inputs_finish_quickly_or_hit_a_limit(program: str) -> None:
    start = time.perf_counter()
    result = compile(text=PRELUDE + program + "\n", limits=LIMITS, env={})
    elapsed = time.perf_counter() - start
    errors = [d for d in result.diagnostics if d.severity == "error"]
    assert {d.code for d in errors} <= ALLOWED, [d.message for d in errors]
    # The limit must stop the program's own line, not the building of its inputs.
    assert all(d.span is not None and d.span.start >= len(PRELUDE) for d in errors), [
        d.message for d in errors
    ]
    assert elapsed < SECONDS, f"{elapsed:.1f}s"
