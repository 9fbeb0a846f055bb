"""YAML emitter (PyYAML, block style).

Rules:

- ``yaml.dump(data, Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)``
  with the C dumper when libyaml is available (identical output, faster); keys keep their
  insertion order, empty objects and lists print as ``{}`` and ``[]``, any value may be the
  root.
- Shared objects are written out in full every time: no ``&id001`` anchors or aliases,
  which would make the output depend on object identity rather than on the data.
- Strings that a YAML reader could take for another type are quoted. PyYAML already quotes
  everything its YAML 1.1 resolver would mis-read (``no``, ``on``, ``1.0``, ``0x1``,
  ``null``, ``~``, ``2024-01-01``, ``1_000``, ``<<`` ...). On top of that we force quotes
  for what PyYAML's resolver misses but other readers do not: the YAML 1.1 booleans ``y``/
  ``n``, YAML 1.1 floats without a leading digit (``-.5``) and every non-string plain
  scalar of the YAML 1.2 core schema (``1e3``, ``0o17``, ``08``).
- Durations and sizes are written as their canonical strings and secrets as their plain
  value, through the same quoting rule.
- Floats use PyYAML's own spelling (``.nan``, ``.inf``, ``1.0e+16``), all of which read back.
"""

from __future__ import annotations

import functools
import io
import re
from typing import TYPE_CHECKING, Any

from cfglang.emit import DataPath, as_scalar, check_key, unsupported
from cfglang.values import Duration, Secret, Size

if TYPE_CHECKING:
    import yaml  # lazy: PyYAML loads only when YAML is written

# Plain scalars PyYAML would write unquoted although some YAML reader resolves them to a
# non-string. Anything PyYAML itself quotes need not be listed; over-matching only costs a
# pair of quotes.
_LOOKS_TYPED = re.compile(
    r"""
      [yYnN]                                                # YAML 1.1 bool
    | [-+]?(?:[0-9][0-9_]*)?\.[0-9._]*(?:[eE][-+][0-9]+)?   # YAML 1.1 float
    | [-+]?[0-9]+                                           # YAML 1.2 int
    | 0o[0-7]+ | 0x[0-9a-fA-F]+                             # YAML 1.2 int
    | [-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?  # YAML 1.2 float
    | [-+]?\.(?:inf|Inf|INF) | \.(?:nan|NaN|NAN)           # YAML 1.2 float
    | null | Null | NULL | ~ | true | True | TRUE | false | False | FALSE
    """,
    re.VERBOSE,
)


def emit_yaml(data: object) -> str:
    dumper = _dumper()(
        stream := io.StringIO(), default_flow_style=False, allow_unicode=True, sort_keys=False
    )
    node = _node(dumper, data, ())
    dumper.open()
    dumper.serialize(node)
    dumper.close()
    text = stream.getvalue()
    # PyYAML always ends a document with one newline; guard the contract anyway.
    return text if text.endswith("\n") else text + "\n"


def _node(dumper: Any, value: object, path: DataPath) -> Any:
    """The YAML node PyYAML's representer would make for ``value`` (`reference_yaml`
    below), built directly for plain data: the representer's generic dispatch was ~60% of
    writing a large document. Rejects what is not plain data, in document order."""
    import yaml  # lazy: PyYAML loads only when YAML is written

    if isinstance(value, str):
        return _str_node(yaml, value)
    if isinstance(value, dict):
        pairs = []
        for k, v in value.items():
            key = check_key(k, path)
            pairs.append((_str_node(yaml, key), _node(dumper, v, (*path, key))))
        return yaml.MappingNode("tag:yaml.org,2002:map", pairs, flow_style=False)
    if isinstance(value, list):
        items = [_node(dumper, x, (*path, i)) for i, x in enumerate(value)]
        return yaml.SequenceNode("tag:yaml.org,2002:seq", items, flow_style=False)
    cls = value.__class__
    if cls is bool:
        return yaml.ScalarNode("tag:yaml.org,2002:bool", "true" if value else "false")
    if cls is int:
        return yaml.ScalarNode("tag:yaml.org,2002:int", str(value))
    if value is None:
        return yaml.ScalarNode("tag:yaml.org,2002:null", "null")
    if not as_scalar(value)[0]:
        raise unsupported(value, path)
    return dumper.represent_data(value)  # floats, durations, sizes, secrets: PyYAML's own


def _str_node(yaml: Any, text: str) -> Any:
    style = "'" if _LOOKS_TYPED.fullmatch(text) else None
    return yaml.ScalarNode("tag:yaml.org,2002:str", text, style=style)


def reference_yaml(data: object) -> str:
    """The same document through PyYAML's own representer (what `emit_yaml` must equal;
    the tests compare them)."""
    import yaml  # lazy: PyYAML loads only when YAML is written

    _check(data, ())
    text: str = yaml.dump(
        data,
        Dumper=_dumper(),
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
    )
    return text if text.endswith("\n") else text + "\n"


def _check(value: object, path: DataPath) -> None:
    """Reject what is not plain data before PyYAML gets a chance to write a python tag."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check(v, (*path, check_key(k, path)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check(v, (*path, i))
    elif not as_scalar(value)[0]:
        raise unsupported(value, path)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if _LOOKS_TYPED.fullmatch(data):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="'")
    return dumper.represent_str(data)


def _represent_named(dumper: yaml.SafeDumper, data: Duration | Size) -> yaml.ScalarNode:
    return _represent_str(dumper, data.canonical())


def _represent_secret(dumper: yaml.SafeDumper, data: Secret) -> yaml.ScalarNode:
    return _represent_str(dumper, data.value)


@functools.cache
def _dumper() -> Any:
    """Our dumper class, built once on first use (it needs the lazily imported PyYAML).

    A subclass, so that registering representers never changes PyYAML's global SafeDumper.
    """
    import yaml  # lazy: PyYAML loads only when YAML is written

    base: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    class Dumper(base):  # type: ignore[misc]
        def ignore_aliases(self, data: object) -> bool:
            return True

    Dumper.add_representer(str, _represent_str)
    Dumper.add_representer(Duration, _represent_named)
    Dumper.add_representer(Size, _represent_named)
    Dumper.add_representer(Secret, _represent_secret)
    return Dumper
