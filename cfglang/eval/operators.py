"""Binary operators on runtime values: arithmetic, comparison, membership, equality."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from cfglang.eval.errors import err
from cfglang.eval.objects import Obj
from cfglang.eval.values import ABSENT, kind_of, show
from cfglang.values import Duration, Secret, Size

if TYPE_CHECKING:
    from cfglang.eval.evaluate import Evaluator
    from cfglang.source import Span
    from cfglang.syntax import ast

INT_MIN, INT_MAX = -(2**63), 2**63 - 1


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def plain(ev: Evaluator, v: Any, span: Span | None = None) -> Any:
    """A comparable form of a value (objects become dicts of their emitted fields)."""
    # One step per value visited: comparing values shared many times over (`[l, l]`
    # nested 60 deep) must hit the step limit, not run for ever.
    ev.charge(1, span)
    if isinstance(v, Obj):
        out = {}
        for k in v.keys():
            x = v.get(k)
            if x is not ABSENT:
                out[k] = plain(ev, x, span)
        return out
    if isinstance(v, tuple):
        return [plain(ev, x, span) for x in v]
    if isinstance(v, Secret):
        return ("secret", v.value)
    return v


def equal(ev: Evaluator, a: Any, b: Any, span: Span | None = None) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(plain(ev, a, span) == plain(ev, b, span))


def binary(ev: Evaluator, op: str, a: Any, b: Any, e: ast.Binary) -> Any:
    def bad() -> Exception:
        return err(
            "E0302",
            f"`{op}` cannot combine {kind_of(a)} and {kind_of(b)}",
            e.op_span,
            label=f"{show(a)} {op} {show(b)}",
        )

    if op == "==":
        return equal(ev, a, b, e.span)
    if op == "!=":
        return not equal(ev, a, b, e.span)
    if op == "in":
        if isinstance(b, tuple):
            ev.charge(len(b), e.span)
            return any(equal(ev, a, x, e.span) for x in b)
        if isinstance(b, Obj):
            if not isinstance(a, str):
                raise bad()
            return b.has(a) and b.get(a) is not ABSENT
        if isinstance(b, str) and isinstance(a, str):
            ev.charge(len(b) >> 6, e.span)
            return a in b
        raise bad()
    if op in ("<", "<=", ">", ">="):
        if (_num(a) and _num(b)) or (type(a) is type(b) and isinstance(a, (str, Duration, Size))):
            if op == "<":
                return a < b
            if op == "<=":
                return a <= b
            if op == ">":
                return a > b
            return a >= b
        raise bad()
    if op == "+":
        if isinstance(a, str) and isinstance(b, str):
            r = a + b
            if len(r) > ev.limits.max_string:
                raise err("E0502", "string is too long", e.span)
            ev.charge(len(r) >> 6, e.span)
            return r
        if isinstance(a, (str, Secret)) and isinstance(b, (str, Secret)):
            return Secret(
                (a.value if isinstance(a, Secret) else a)
                + (b.value if isinstance(b, Secret) else b)
            )
        if isinstance(a, tuple) and isinstance(b, tuple):
            if len(a) + len(b) > ev.limits.max_collection:
                raise err("E0502", "list is too long", e.span)
            ev.charge(len(a) + len(b), e.span)
            return a + b
        if isinstance(a, Duration) and isinstance(b, Duration):
            return _dur(e, a.millis + b.millis)
        if isinstance(a, Size) and isinstance(b, Size):
            return _size(e, a.bytes + b.bytes)
        if _num(a) and _num(b):
            return _check(a + b, e)
        raise bad()
    if op == "-":
        if isinstance(a, Duration) and isinstance(b, Duration):
            return _dur(e, a.millis - b.millis)
        if isinstance(a, Size) and isinstance(b, Size):
            return _size(e, a.bytes - b.bytes)
        if _num(a) and _num(b):
            return _check(a - b, e)
        raise bad()
    if op == "*":
        if isinstance(a, Duration) and _int(b):
            return _dur(e, a.millis * b)
        if _int(a) and isinstance(b, Duration):
            return _dur(e, a * b.millis)
        if isinstance(a, Size) and _int(b):
            return _size(e, a.bytes * b)
        if _int(a) and isinstance(b, Size):
            return _size(e, a * b.bytes)
        if (isinstance(a, str) and _int(b)) or (isinstance(a, tuple) and _int(b)):
            if len(a) * max(b, 0) > ev.limits.max_string:
                raise err("E0502", "result is too large", e.span)
            n = len(a) * max(b, 0)
            ev.charge(n if isinstance(a, tuple) else n >> 6, e.span)
            return a * b
        if _num(a) and _num(b):
            return _check(a * b, e)
        raise bad()
    if op in ("/", "%"):
        if isinstance(a, Duration) and _int(b):
            return _dur(e, _idiv(a.millis, b, e) if op == "/" else _imod(a.millis, b, e))
        if isinstance(a, Size) and _int(b):
            return _size(e, _idiv(a.bytes, b, e) if op == "/" else _imod(a.bytes, b, e))
        if isinstance(a, Duration) and isinstance(b, Duration) and op == "/":
            if b.millis == 0:
                raise err("E0501", "division by zero", e.span)
            return a.millis / b.millis
        if _int(a) and _int(b):
            return _check(_idiv(a, b, e) if op == "/" else _imod(a, b, e), e)
        if _num(a) and _num(b):
            if b == 0:
                raise err("E0501", "division by zero", e.span)
            if op == "/":
                return a / b
            return math.fmod(a, b)
        raise bad()
    raise bad()


def _idiv(a: int, b: int, e: ast.Binary) -> int:
    if b == 0:
        raise err("E0501", "division by zero", e.span, label="the divisor is 0")
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _imod(a: int, b: int, e: ast.Binary) -> int:
    return a - b * _idiv(a, b, e)


def _check(v: Any, e: ast.Binary) -> Any:
    if isinstance(v, int) and not INT_MIN <= v <= INT_MAX:
        raise err("E0503", "integer overflow", e.span, label="the result does not fit in 64 bits")
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        raise err(
            "E0501",
            "the result is not a finite number",
            e.span,
            label="no output format can hold it",
        )
    return v


def _dur(e: ast.Binary, millis: int) -> Duration:
    return Duration(_check(millis, e))


def _size(e: ast.Binary, n: int) -> Size:
    return Size(_check(n, e))
