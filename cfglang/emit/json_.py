"""JSON emitter.

Rules:

- Output is ``json.dumps(data, indent=2, ensure_ascii=False)`` plus one newline: two-space
  indentation, non-ASCII text kept as is, empty objects and lists as ``{}`` and ``[]``.
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
    # allow_nan=False is a second line of defence: _prepare already reports such floats
    # with their path, which json.dumps could not do.
    return json.dumps(_prepare(data, ()), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


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
