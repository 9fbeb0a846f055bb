"""TOML emitter (tomli_w).

Rules:

- The root must be an object (a TOML document is a table); anything else is an `EmitError`
  at path ``()``.
- Null fields of objects are omitted, as the language spec says. A null inside a list is an
  `EmitError`: TOML has no null and dropping a list element would shift the others.
- Integers must fit in 64 signed bits (the TOML spec's range; readers may reject others).
- ``nan`` and the infinities are written as TOML's ``nan``/``inf``/``-inf``.
- Durations and sizes become their canonical strings, secrets their plain value.
- Layout is tomli_w's: scalars first, then ``[table]`` and ``[[array.of.tables]]`` sections;
  strings use basic one-line quoting with escapes, so any string round-trips.
"""

from __future__ import annotations

from cfglang.emit import (
    DataPath,
    EmitError,
    as_scalar,
    check_key,
    finish,
    named_string,
    type_name,
    unsupported,
)

_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1


def emit_toml(data: object) -> str:
    import tomli_w  # lazy: only TOML output needs tomli-w

    if not isinstance(data, dict):
        raise EmitError((), f"toml needs an object at the root, not a {type_name(data)}")
    # tomli_w returns "" for an empty table; finish() turns that into a lone newline.
    return finish([tomli_w.dumps(_prepare_table(data, ()))])


def _prepare_table(table: dict[object, object], path: DataPath) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in table.items():
        name = check_key(key, path)
        if value is not None:  # null fields are omitted (spec section 8)
            out[name] = _prepare(value, (*path, name))
    return out


def _prepare(value: object, path: DataPath) -> object:
    """A copy of ``value`` made only of types tomli_w writes the way we want."""
    if isinstance(value, dict):
        return _prepare_table(value, path)
    if isinstance(value, list):
        items: list[object] = []
        for index, item in enumerate(value):
            if item is None:
                raise EmitError((*path, index), "toml cannot express `null` inside a list")
            items.append(_prepare(item, (*path, index)))
        return items
    text = named_string(value)
    if text is not None:
        return text
    if isinstance(value, int) and not isinstance(value, bool):
        if not _INT_MIN <= value <= _INT_MAX:
            raise EmitError(path, f"toml integers are 64-bit; `{value}` is out of range")
        return int(value)
    ok, scalar = as_scalar(value)
    if not ok:
        raise unsupported(value, path)
    return scalar
