"""Runtime values of the evaluator.

Scalars are Python values (`bool`, `int`, `float`, `str`, `None`) and the `Duration`,
`Size`, `Secret` classes of `cfglang.values`. Lists are tuples. Objects are `Obj`
(defined in `evaluate`), lazy and late-bound. Two markers complete the set: `ABSENT`
(a field that has no value: never set, or `unset`) and `BOTTOM` (a value whose
computation already produced a diagnostic; operations on it yield `BOTTOM` silently, so
one mistake gives one message).
"""

from __future__ import annotations

import json

from cfglang.values import Duration, Secret, Size


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def __bool__(self) -> bool:
        return False


ABSENT = _Marker("ABSENT")
BOTTOM = _Marker("BOTTOM")


def kind_of(v: object) -> str:
    """The CFL name of a value's kind, for messages."""
    # Imported only when called: the object model imports this module.
    from cfglang.eval.objects import Obj

    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, Duration):
        return "duration"
    if isinstance(v, Size):
        return "size"
    if isinstance(v, Secret):
        return "secret"
    if isinstance(v, tuple):
        return "list"
    if isinstance(v, Obj):
        return "object"
    return type(v).__name__.lower()


def show(v: object, limit: int = 60) -> str:
    """A short source-like rendering of a value for messages; secrets are redacted."""
    # Imported only when called: the object model imports this module.
    from cfglang.eval.objects import Obj

    if v is None:
        s = "null"
    elif isinstance(v, bool):
        s = "true" if v else "false"
    elif isinstance(v, str):
        s = json.dumps(v, ensure_ascii=False)
    elif isinstance(v, (Duration, Size)):
        s = v.canonical()
    elif isinstance(v, Secret):
        s = "<secret>"
    elif isinstance(v, float):
        s = format_float(v)
    elif isinstance(v, tuple):
        s = "[" + ", ".join(show(x, limit) for x in v[:5]) + (", ..." if len(v) > 5 else "") + "]"
    elif isinstance(v, Obj):
        s = "{...}"
    else:
        s = repr(v)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def format_float(f: float) -> str:
    r = repr(f)
    return r


def render_scalar(v: object) -> str:
    """How a scalar reads inside a string substitution."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return format_float(v)
    if isinstance(v, (Duration, Size)):
        return v.canonical()
    if isinstance(v, Secret):
        return v.value
    return str(v)
