"""Builtin functions. Each checks its arguments and raises E0207/E0302 with the call's span.

`SIGNATURES` documents every builtin (used by messages and, later, editor completion).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cfglang.diagnostics import Note
from cfglang.eval.errors import err
from cfglang.eval.objects import Obj
from cfglang.eval.operators import equal, plain
from cfglang.eval.values import ABSENT, kind_of, render_scalar, show
from cfglang.secrets import SecretError
from cfglang.secrets.runtime import SecretContext
from cfglang.values import Duration, Secret, Size

if TYPE_CHECKING:
    from cfglang.eval.evaluate import Evaluator
    from cfglang.syntax import ast

SIGNATURES: dict[str, str] = {
    "len": "len(x: string | list | object) -> int",
    "keys": "keys(o: object) -> list[string]",
    "values": "values(o: object) -> list",
    "matches": "matches(s: string, regex: string) -> bool",
    "startswith": "startswith(s: string, prefix: string) -> bool",
    "endswith": "endswith(s: string, suffix: string) -> bool",
    "contains": "contains(x: string | list, item) -> bool",
    "lower": "lower(s: string) -> string",
    "upper": "upper(s: string) -> string",
    "trim": "trim(s: string) -> string",
    "split": "split(s: string, sep: string) -> list[string]",
    "join": "join(items: list, sep: string) -> string",
    "replace": "replace(s: string, old: string, new: string) -> string",
    "min": "min(list) | min(a, b, ...) -> value",
    "max": "max(list) | max(a, b, ...) -> value",
    "sum": "sum(list[int | float | duration | size]) -> number",
    "all": "all(list[bool]) -> bool",
    "any": "any(list[bool]) -> bool",
    "unique": "unique(list) -> list (first occurrences, in order)",
    "sort": "sort(list) -> list",
    "range": "range(stop) | range(start, stop[, step]) -> list[int]",
    "int": "int(x: string | float | int) -> int",
    "float": "float(x: string | int | float) -> float",
    "string": "string(x: scalar) -> string",
    "seconds": "seconds(d: duration) -> int",
    "millis": "millis(d: duration) -> int",
    "bytes": "bytes(s: size) -> int",
    "default": "default(x, fallback) -> x unless x is null, else fallback",
    "secret": 'secret(s: string) -> secret (decrypts an encrypted "cfl:v1:..." literal)',
}
BUILTINS = frozenset(SIGNATURES)


class RegexError(Exception):
    """A pattern CFL's regular expression dialect (RE2) cannot compile; ``help`` says why."""

    def __init__(self, message: str, help: str | None = None) -> None:
        super().__init__(message)
        self.help = help


@lru_cache(maxsize=1)
def _re2() -> tuple[Any, Any]:
    """The RE2 module and the options every pattern is compiled with."""
    # Most programs compile no pattern, and loading the extension costs ~3 ms: lazy, for
    # start-up.
    import re2

    opts = re2.Options()
    opts.log_errors = False  # the error becomes a diagnostic; RE2 must not print it too
    return re2, opts


@lru_cache(maxsize=256)
def compile_regex(pattern: str) -> Any:
    """Compile a user's pattern with RE2, whose matching time is linear in the text.

    Python's backtracking `re` takes exponential time on patterns such as `(a+)+$`, so a
    hostile author could hang the compiler with one `matches` call. RE2's `$` is already
    the end of the text (Python's also matches before a final newline).
    """
    re2, options = _re2()
    try:
        return re2.compile(pattern, options=options)
    except re2.error as e:
        raw = e.args[0] if e.args else ""
        why = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        help = None
        try:
            re.compile(pattern)
        except (re.error, RecursionError, OverflowError):
            pass
        else:  # valid for Python but not RE2: a backtracking-only feature
            help = (
                "CFL uses RE2 syntax: no backreferences, lookaround, atomic groups or "
                "possessive quantifiers, and counts up to 1000 (language reference, "
                "Regular expressions)"
            )
        raise RegexError(f"invalid regular expression: {why}", help) from None


def call_builtin(ev: Evaluator, name: str, args: list[Any], call: ast.Call) -> Any:
    def arity(*ns: int) -> None:
        if len(args) not in ns:
            want = " or ".join(str(n) for n in ns)
            raise err(
                "E0207",
                f"`{name}` takes {want} argument{'s' if ns != (1,) else ''}, got {len(args)}",
                call.span,
                help=SIGNATURES[name],
            )

    def want(i: int, kinds: tuple[type, ...], what: str) -> Any:
        v = args[i]
        if (isinstance(v, bool) and bool not in kinds) or not isinstance(v, kinds):
            span = call.args[i].value.span if i < len(call.args) else call.span
            raise err(
                "E0302",
                f"`{name}` expects {what} as argument {i + 1}, found {kind_of(v)}",
                span,
                help=SIGNATURES[name],
            )
        return v

    def items(i: int) -> tuple[Any, ...]:
        return want(i, (tuple,), "a list")  # type: ignore[no-any-return]

    def text(i: int) -> str:
        v = args[i]
        if isinstance(v, Secret):
            return v.value
        return want(i, (str,), "a string")  # type: ignore[no-any-return]

    # Every builtin pays for the work it does on its arguments (see `_cost`); those whose
    # work is larger (sort, unique over nested values, range) pay more below.
    ev.charge(sum(_cost(a) for a in args), call.span)
    if name == "len":
        arity(1)
        v = args[0]
        if isinstance(v, Obj):
            ev.charge(len(v.keys()), call.span)
            return sum(1 for k in v.keys() if v.get(k) is not ABSENT)
        if isinstance(v, Secret):
            return len(v.value)
        return len(want(0, (str, tuple), "a string, list or object"))
    if name in ("keys", "values"):
        arity(1)
        o = want(0, (Obj,), "an object")
        ev.charge(len(o.keys()), call.span)
        ks = [k for k in o.keys() if o.get(k) is not ABSENT]
        return tuple(ks) if name == "keys" else tuple(o.get(k) for k in ks)
    if name == "matches":
        arity(2)
        s, pattern = text(0), text(1)
        try:
            rx = compile_regex(pattern)
        except RegexError as e:
            raise err("E0501", str(e), call.args[1].value.span, help=e.help) from None
        return rx.search(s) is not None
    if name in ("startswith", "endswith"):
        arity(2)
        s, p = text(0), text(1)
        return s.startswith(p) if name == "startswith" else s.endswith(p)
    if name == "contains":
        arity(2)
        c = args[0]
        if isinstance(c, tuple):
            return any(equal(ev, x, args[1], call.span) for x in c)
        return text(1) in text(0)
    if name in ("lower", "upper", "trim"):
        arity(1)
        s = text(0)
        r = s.lower() if name == "lower" else s.upper() if name == "upper" else s.strip()
        return Secret(r) if isinstance(args[0], Secret) else r
    if name == "split":
        arity(2)
        s, sep = text(0), text(1)
        if sep == "":
            raise err("E0501", "`split` separator must not be empty", call.span)
        parts = s.split(sep)
        if len(parts) > ev.limits.max_collection:
            raise err("E0502", f"`split` would make {len(parts)} items", call.span)
        ev.charge(len(parts), call.span)
        return tuple(parts)
    if name == "join":
        arity(2)
        xs, sep = items(0), text(1)
        parts = []
        for x in xs:
            if isinstance(x, (tuple, Obj)):
                raise err("E0302", "`join` needs a list of scalars", call.args[0].value.span)
            parts.append(render_scalar(x))
        joined = sep.join(parts)
        if len(joined) > ev.limits.max_string:
            raise err("E0502", "string is too long", call.span)
        ev.charge(len(joined) >> 6, call.span)
        return joined
    if name == "replace":
        arity(3)
        r = text(0).replace(text(1), text(2))
        if len(r) > ev.limits.max_string:
            raise err("E0502", "string is too long", call.span)
        ev.charge(len(r) >> 6, call.span)
        return r
    if name in ("min", "max"):
        if len(args) == 1:
            xs = items(0)
        else:
            if not args:
                arity(1)
            xs = tuple(args)
        if not xs:
            raise err("E0501", f"`{name}` of an empty list", call.span)
        try:
            return min(xs) if name == "min" else max(xs)
        except TypeError as e:
            raise err("E0302", f"`{name}` needs comparable values", call.span) from e
    if name == "sum":
        arity(1)
        xs = items(0)
        if not xs:
            return 0
        if all(isinstance(x, Duration) for x in xs):
            return Duration(sum(x.millis for x in xs))
        if all(isinstance(x, Size) for x in xs):
            return Size(sum(x.bytes for x in xs))
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs):
            total = sum(xs)
            if isinstance(total, int) and not -(2**63) <= total < 2**63:
                raise err("E0503", "integer overflow", call.span)
            return total
        raise err("E0302", "`sum` needs a list of numbers, durations or sizes", call.span)
    if name in ("all", "any"):
        arity(1)
        xs = items(0)
        if not all(isinstance(x, bool) for x in xs):
            raise err("E0302", f"`{name}` needs a list of bools", call.span)
        return all(xs) if name == "all" else any(xs)
    if name == "unique":
        arity(1)
        kept: list[Any] = []
        seen: set[Any] = set()
        for x in items(0):
            k = _hashable(plain(ev, x, call.span))
            if k not in seen:
                seen.add(k)
                kept.append(x)
        return tuple(kept)
    if name == "sort":
        arity(1)
        xs = items(0)
        ev.charge(len(xs) * max(len(xs).bit_length() - 1, 0), call.span)
        try:
            return tuple(sorted(xs))
        except TypeError as e:
            raise err("E0302", "`sort` needs values of one comparable kind", call.span) from e
    if name == "range":
        arity(1, 2, 3)
        nums = [want(i, (int,), "an int") for i in range(len(args))]
        if len(nums) == 3 and nums[2] == 0:
            raise err("E0501", "`range` step must not be 0", call.span)
        rng = range(*nums) if len(nums) > 1 else range(nums[0])
        if len(rng) > ev.limits.max_collection:
            raise err(
                "E0502",
                f"`range` would make {len(rng)} items",
                call.span,
                label=f"the limit is {ev.limits.max_collection}",
            )
        ev.charge(len(rng), call.span)
        return tuple(rng)

    def i64(n: int) -> int:
        if not -(2**63) <= n < 2**63:
            raise err("E0503", f"`{name}` result does not fit in 64 bits", call.span)
        return n

    if name == "int":
        arity(1)
        v = args[0]
        try:
            if isinstance(v, bool):
                raise ValueError
            if isinstance(v, float):
                return i64(int(v))
            if isinstance(v, int):
                return v
            if isinstance(v, str):
                return i64(int(v.strip().replace("_", ""), 0))
        except (ValueError, OverflowError):
            pass
        raise err("E0501", f"cannot convert {kind_of(v)} {show(v)} to int", call.span)
    if name == "float":
        arity(1)
        v = args[0]
        try:
            if isinstance(v, (int, float, str)) and not isinstance(v, bool):
                f = float(v)
                if f != f or f in (float("inf"), float("-inf")):
                    raise err(
                        "E0501",
                        f"`float` of {show(v)} is not a finite number",
                        call.span,
                        help="CFL numbers are finite; JSON cannot hold nan",
                    )
                return f
        except ValueError:
            pass
        raise err("E0501", f"cannot convert {kind_of(v)} to float", call.span)
    if name == "string":
        arity(1)
        if isinstance(args[0], (tuple, Obj)):
            raise err("E0302", "`string` needs a scalar", call.span)
        if isinstance(args[0], Secret):
            return args[0]
        return render_scalar(args[0])
    if name in ("seconds", "millis"):
        arity(1)
        d = want(0, (Duration,), "a duration")
        return i64(d.millis // 1000 if name == "seconds" else d.millis)
    if name == "bytes":
        arity(1)
        return i64(want(0, (Size,), "a size").bytes)
    if name == "default":
        arity(2)
        return args[1] if args[0] is None else args[0]
    if name == "secret":
        arity(1)
        if isinstance(args[0], Secret):
            return args[0]
        s = want(0, (str,), "a string")
        return _secret(ev, s, call) if s.startswith("cfl:") else Secret(s)
    raise err("E0206", f"unknown builtin `{name}`", call.span)


def _cost(v: Any) -> int:
    """Steps a builtin pays for reading one argument: one per list item, one per 64
    characters (string work runs in C, about that much faster per item). Objects are
    not counted here: measuring one would expand it, and `default(obj, x)` must not."""
    c = v.__class__
    if c is tuple:
        return len(v)
    if c is str:
        return len(v) >> 6
    if c is Secret:
        return len(v.value) >> 6
    return 0


def _hashable(p: Any) -> Any:
    """A hashable stand-in for a `plain` value that is equal exactly when the values are
    equal, so `unique` runs in linear time with a set. Booleans are tagged: `true` and
    `1` are different values (Python's `True == 1` would merge them)."""
    c = p.__class__
    if c is list:
        return ("list", tuple(_hashable(x) for x in p))
    if c is dict:
        return ("object", frozenset((k, _hashable(x)) for k, x in p.items()))
    if c is bool:
        return ("bool", p)
    return p


def _secret(ev: Evaluator, token: str, call: ast.Call) -> Secret:
    """Open an encrypted literal with the compilation's `SecretContext` (see
    `cfglang.secrets.runtime`); a failure is an error at the call naming the value."""
    if not isinstance(ev.secrets, SecretContext):
        ev.secrets = SecretContext(env=ev.env)
    try:
        return ev.secrets.reveal(token, call.span.source, call.span.start)
    except SecretError as e:
        raise err(
            e.code, e.message, call.span, notes=tuple(Note(n) for n in e.notes), help=e.help
        ) from None


_: Callable[..., Any] = call_builtin
