"""JSON emitter.

Rules:

- Output is two-space indented JSON plus one newline (orjson when installed, else
  ``json.dumps(data, indent=2, ensure_ascii=False)``): non-ASCII text kept as is, empty
  objects and lists as ``{}`` and ``[]``. Floats print in their shortest round-trip form;
  the two writers differ only in spelling very small or large floats (``1e-05`` vs
  ``0.00001``), which every JSON reader reads as the same number.
- Any value may be the root.
- Durations and sizes become their canonical strings, secrets their plain value.
- ``nan`` and the infinities are an `EmitError`: JSON has no way to write them (Python's
  ``NaN``/``Infinity`` extension is not JSON and other readers reject it).
"""

from __future__ import annotations

import json
import math

from cfglang.emit import DataPath, EmitError, as_scalar, check_key, named_string, unsupported


def emit_json(data: object) -> str:
    fast = _emit_orjson(data)
    if fast is not None:
        return fast
    # allow_nan=False is a second line of defence: _prepare already reports such floats
    # with their path, which json.dumps could not do.
    return json.dumps(_prepare(data, ()), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _emit_orjson(data: object) -> str | None:
    """The same document through orjson, or None to take the careful path.

    json.dumps with indentation runs its pure-Python encoder: on a 30,000-service
    document it was most of a cached build's time; orjson writes the same layout about
    twenty times faster. orjson writes nan and the infinities as null, so output holding
    a `null` is re-done on the careful path, which reports them; so is anything orjson
    refuses (a non-string key, an integer beyond 64 bits), for the precise error.
    """
    try:
        import orjson  # optional: orjson when installed, else the json module
    except ImportError:
        return None
    try:
        # orjson appends the final newline itself: `text + "\n"` would copy the whole
        # document once more (~10 MB at S = 10,000).
        out = orjson.dumps(
            data,
            default=_orjson_default,
            option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE,
        )
    except (TypeError, orjson.JSONEncodeError):
        return None
    if b"null" in out:
        return None
    return out.decode("utf-8")


def _orjson_default(value: object) -> str:
    text = named_string(value)
    if text is None:
        raise TypeError
    return text


def _prepare(value: object, path: DataPath) -> object:
    """A copy of ``value`` made only of types the json module writes the way we want."""
    if isinstance(value, dict):
        return {check_key(k, path): _prepare(v, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_prepare(v, (*path, i)) for i, v in enumerate(value)]
    text = named_string(value)
    if text is not None:
        return text
    if isinstance(value, float) and not math.isfinite(value):
        raise EmitError(path, f"json cannot express the number `{value!r}`")
    ok, scalar = as_scalar(value)
    if not ok:
        raise unsupported(value, path)
    return scalar
