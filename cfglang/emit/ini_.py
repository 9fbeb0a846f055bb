"""INI emitter, written for Python's ``configparser.ConfigParser(interpolation=None)``.

Layout:

- The root must be an object. Each top-level object becomes a section ``[name]``; objects
  nested deeper become dotted sections ``[db.replica]``. A section's own scalars come right
  after its header, before any of its subsections (depth first, insertion order). A section
  with no scalars of its own but with subsections gets no header of its own; an empty
  object still gets one (``[name]`` with nothing under it), so it is not lost.
- Lines are ``key = value`` (configparser's own style), ``key =`` for an empty value;
  sections are separated by one blank line.
- Scalars: strings as is, ``true``/``false``, null as an empty value, ints via ``str``,
  floats via ``repr``, durations and sizes canonical, secrets plain.
- A list of scalars is written comma-joined (``a,b,c``).

Errors (`EmitError`), because configparser could not give the text back unchanged:

- a scalar or list at the top level (it would belong to no section);
- a list holding objects or lists;
- a list item containing ``,`` or with leading/trailing whitespace (the list could not be
  split back into the same items);
- a value with leading or trailing whitespace: configparser strips it and has no quoting,
  so we refuse rather than quote (quotes would read back as part of the value);
- a line break (``\\n`` or ``\\r``) in a value, key or section name: configparser would
  read a continuation line or a new entry;
- a key that is empty, has leading/trailing whitespace, contains ``=`` or ``:`` (the
  delimiters), or starts with ``#``, ``;`` (comments) or ``[`` (section headers);
- two keys of one section that differ only by case: configparser lowercases keys;
- a section name that is empty, is ``DEFAULT`` (configparser's defaults section, whose keys
  would leak into every other section), or equals another section's dotted name.

``%`` needs no escaping because the intended reader disables interpolation.
"""

from __future__ import annotations

from cfglang.emit import (
    DataPath,
    EmitError,
    as_scalar,
    check_key,
    describe_path,
    finish,
    scalar_text,
    type_name,
    unsupported,
)

_DEFAULT_SECTION = "DEFAULT"  # configparser.DEFAULTSECT


def emit_ini(data: object) -> str:
    if not isinstance(data, dict):
        raise EmitError((), f"ini needs an object at the root, not a {type_name(data)}")
    blocks: list[list[str]] = []
    seen_sections: dict[str, DataPath] = {}
    for key, value in data.items():
        name = check_key(key, ())
        if not isinstance(value, dict):
            raise EmitError(
                (name,),
                f"ini cannot express a top-level {type_name(value)}; only objects become sections",
            )
        _section(value, (name,), name, blocks, seen_sections)
    return finish(["\n".join(block) + "\n" for block in blocks])


def _section(
    table: dict[object, object],
    path: DataPath,
    name: str,
    blocks: list[list[str]],
    seen_sections: dict[str, DataPath],
) -> None:
    """Append the block for section ``name`` (if it needs one) and then its subsections."""
    _check_section_name(name, path, seen_sections)
    lines: list[str] = []
    lowered: dict[str, str] = {}
    subsections: list[tuple[str, dict[object, object]]] = []
    for key, value in table.items():
        key = check_key(key, path)
        if isinstance(value, dict):
            subsections.append((key, value))
            continue
        _check_key(key, (*path, key), lowered)
        lines.append(_line(key, _value_text(value, (*path, key))))
    if lines or not subsections:
        blocks.append([f"[{name}]", *lines])
    for key, value in subsections:
        _section(value, (*path, key), f"{name}.{key}", blocks, seen_sections)


def _check_section_name(name: str, path: DataPath, seen: dict[str, DataPath]) -> None:
    if not name:
        raise EmitError(path, "ini section names cannot be empty")
    if "\n" in name or "\r" in name:
        raise EmitError(path, "ini section names cannot contain line breaks")
    if name == _DEFAULT_SECTION:
        raise EmitError(path, f"`{_DEFAULT_SECTION}` is reserved for ini defaults")
    if name in seen:
        raise EmitError(
            path, f"ini section `{name}` is also produced by `{describe_path(seen[name])}`"
        )
    seen[name] = path


def _check_key(key: str, path: DataPath, lowered: dict[str, str]) -> None:
    if not key:
        raise EmitError(path, "ini keys cannot be empty")
    if key != key.strip():
        raise EmitError(path, "ini keys cannot have leading or trailing whitespace")
    if "\n" in key or "\r" in key:
        raise EmitError(path, "ini keys cannot contain line breaks")
    if "=" in key or ":" in key:
        raise EmitError(path, "ini keys cannot contain `=` or `:`")
    if key[0] in "#;[":
        raise EmitError(path, f"ini keys cannot start with `{key[0]}`")
    # configparser's optionxform is str.lower; match it exactly.
    folded = key.lower()
    if folded in lowered:
        raise EmitError(
            path, f"ini keys are case-insensitive: `{key}` clashes with `{lowered[folded]}`"
        )
    lowered[folded] = key


def _value_text(value: object, path: DataPath) -> str:
    if isinstance(value, list):
        items: list[str] = []
        for index, item in enumerate(value):
            if isinstance(item, dict | list):
                raise EmitError(
                    (*path, index), f"ini lists can only hold scalars, not a {type_name(item)}"
                )
            text = _scalar(item, (*path, index))
            if "," in text:
                raise EmitError((*path, index), "ini list items cannot contain `,`")
            items.append(text)
        return ",".join(items)
    return _scalar(value, path)


def _scalar(value: object, path: DataPath) -> str:
    ok, scalar = as_scalar(value)
    if not ok:
        raise unsupported(value, path)
    text = scalar_text(scalar)
    _check_value(text, path)
    return text


def _check_value(text: str, path: DataPath) -> None:
    if "\n" in text or "\r" in text:
        raise EmitError(path, "ini values cannot contain line breaks")
    if text != text.strip():
        raise EmitError(path, "ini values cannot have leading or trailing whitespace")


def _line(key: str, text: str) -> str:
    return f"{key} = {text}" if text else f"{key} ="
