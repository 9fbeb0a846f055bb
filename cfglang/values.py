"""Scalar value types of CFL that Python has no exact equivalent for.

Durations and sizes are exact integers (milliseconds, bytes) so that arithmetic and
canonical printing never suffer float rounding. A `Secret` wraps a string so that every
place that is *not* a build output can recognise it and print ``<secret>`` instead.

Plain data handed to emitters and to the Python API is made of: ``dict`` (insertion
ordered), ``list``, ``str``, ``int``, ``float``, ``bool``, ``None``, `Duration`, `Size`
and `Secret`.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

import attrs

# Units largest first; the canonical form prints every non-zero component in this order.
DURATION_UNITS: tuple[tuple[str, int], ...] = (
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
)
DURATION_UNIT_MS: dict[str, int] = dict(DURATION_UNITS)

SIZE_UNITS: dict[str, int] = {
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "PB": 1000**5,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
    "PiB": 1024**5,
}
# Largest first; on a tie of magnitude binary and decimal never tie, so order is total.
_SIZE_BY_MAGNITUDE = sorted(SIZE_UNITS.items(), key=lambda kv: -kv[1])


# Spellings of duration units that CFL does not have, and the unit they mean.
_DURATION_SPELLINGS = {
    "sec": "s",
    "secs": "s",
    "second": "s",
    "seconds": "s",
    "min": "m",
    "mins": "m",
    "minute": "m",
    "minutes": "m",
    "hr": "h",
    "hrs": "h",
    "hour": "h",
    "hours": "h",
    "day": "d",
    "days": "d",
    "msec": "ms",
    "msecs": "ms",
    "milli": "ms",
    "millis": "ms",
    "millisecond": "ms",
    "milliseconds": "ms",
}
_SIZE_SPELLING = re.compile(r"([kmgtp])(i?)(?:b|bytes?)?")


def unit_suggestions(unit: str) -> tuple[str, ...]:
    """The units a misspelt duration or size unit most likely meant (`Gb` -> GB, GiB;
    `sec` -> s; `mins` -> m), for did-you-mean; empty for a unit CFL has or none near."""
    if unit in DURATION_UNIT_MS or unit in SIZE_UNITS:
        return ()
    low = unit.lower()
    if low in _DURATION_SPELLINGS:
        return (_DURATION_SPELLINGS[low],)
    if low in DURATION_UNIT_MS and not (len(unit) == 1 and unit in "KMGTP"):
        return (low,)  # `10S`, `2H`
    if low in ("b", "byte", "bytes"):
        return ("B",)
    m = _SIZE_SPELLING.fullmatch(low)
    if m:
        prefix = m.group(1).upper()
        return (f"{prefix}iB",) if m.group(2) else (f"{prefix}B", f"{prefix}iB")
    return ()


def did_you_mean_unit(number: str, unit: str) -> str | None:
    """``did you mean 4GB or 4GiB?`` for ``4Gb``; None when no unit is near."""
    units = unit_suggestions(unit)
    if not units:
        return None
    return "did you mean " + " or ".join(f"{number}{u}" for u in units) + "?"


@attrs.frozen(order=True)
class Duration:
    """A span of time, stored as whole milliseconds."""

    millis: int

    def canonical(self) -> str:
        """Largest components first, zero components left out (``90m`` -> ``1h30m``)."""
        ms = self.millis
        if ms == 0:
            return "0s"
        sign = "-" if ms < 0 else ""
        ms = abs(ms)
        parts = []
        for unit, factor in DURATION_UNITS:
            q, ms = divmod(ms, factor)
            if q:
                parts.append(f"{q}{unit}")
        return sign + "".join(parts)

    def to_timedelta(self) -> datetime.timedelta:
        return datetime.timedelta(milliseconds=self.millis)

    def __str__(self) -> str:
        return self.canonical()


@attrs.frozen(order=True)
class Size:
    """An amount of data, stored as whole bytes."""

    bytes: int

    def canonical(self) -> str:
        """The largest unit (binary or decimal) that divides the size exactly."""
        n = self.bytes
        if n == 0:
            return "0B"
        for unit, factor in _SIZE_BY_MAGNITUDE:
            if n % factor == 0:
                return f"{n // factor}{unit}"
        return f"{n}B"  # pragma: no cover - B always divides

    def __str__(self) -> str:
        return self.canonical()


@attrs.frozen
class Secret:
    """A string that prints as ``<secret>`` everywhere except in build outputs."""

    value: str = attrs.field(repr=False)
    #: For a secret that was not decrypted (`cflc check`, `diff`, `history` without an
    #: identity): a fingerprint of its *ciphertext* (never of the plain text), so that a
    #: changed ciphertext compares as a changed value (docs/secrets.md, Comparing without
    #: a key). None for a decrypted or plain secret. Not part of equality.
    sealed: str | None = attrs.field(default=None, repr=False, eq=False)

    def __str__(self) -> str:
        return "<secret>"

    def __repr__(self) -> str:
        return "Secret(<secret>)"


REDACTED = "<secret>"


def parse_duration(text: str) -> Duration:
    """Parse ``1h30m`` style text; raises ValueError on anything else."""
    if not text or not re.fullmatch(r"(?:\d+(?:ms|d|h|m|s))+", text):
        raise ValueError(f"not a duration: {text!r}")
    total = 0
    for num, unit in re.findall(r"(\d+)(ms|d|h|m|s)", text):
        total += int(num) * DURATION_UNIT_MS[unit]
    return Duration(total)


def parse_size(text: str) -> Size:
    """Parse ``512MiB`` style text; raises ValueError on anything else."""
    m = re.fullmatch(r"(\d+)(B|KB|MB|GB|TB|PB|KiB|MiB|GiB|TiB|PiB)", text or "")
    if not m:
        raise ValueError(f"not a size: {text!r}")
    return Size(int(m.group(1)) * SIZE_UNITS[m.group(2)])


def redact(data: Any) -> Any:
    """A copy of plain data with every `Secret` replaced by ``<secret>``."""
    if isinstance(data, Secret):
        return REDACTED
    if isinstance(data, dict):
        return {k: redact(v) for k, v in data.items()}
    if isinstance(data, list):
        return [redact(v) for v in data]
    return data
