"""`Config`, the read-only view of compiled configuration that `cfglang.load` returns, and
`ConfigError`, raised when a configuration has errors.

Below the compiler: `cfglang.api` and `cfglang.live` hand these out, and neither the view
nor the error needs more than plain values and diagnostics.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from cfglang.diagnostics import Diagnostic, render_human
from cfglang.values import Duration, Size, redact

__all__ = ["Config", "ConfigError"]


class ConfigError(Exception):
    """Raised by `load`/`loads` when the configuration has errors."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        text = "".join(render_human(d) for d in self.diagnostics if d.is_error)
        super().__init__(text.rstrip() or "configuration error")


class Config(Mapping[str, Any]):
    """A read-only view of compiled configuration.

    Attribute and item access (``cfg.services.billing.db.port``, ``cfg["max-conns"]``);
    durations are `datetime.timedelta`, sizes are `int` bytes, secrets are `Secret`;
    nested objects are `Config`, lists are tuples.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_data", dict(data))

    def __getitem__(self, key: str) -> Any:
        return _wrap(self._data[key])

    def __getattr__(self, key: str) -> Any:
        try:
            return _wrap(self._data[key])
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("Config is read-only")

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Config({redact(self._data)!r})"

    def to_dict(self) -> dict[str, Any]:
        """The plain data: dicts, lists and scalars (durations and sizes kept as objects)."""
        return _copy(self._data)  # type: ignore[no-any-return]


def _wrap(v: Any) -> Any:
    if isinstance(v, dict):
        return Config(v)
    if isinstance(v, list):
        return tuple(_wrap(x) for x in v)
    if isinstance(v, Duration):
        return timedelta(milliseconds=v.millis)
    if isinstance(v, Size):
        return v.bytes
    return v


def _copy(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v
