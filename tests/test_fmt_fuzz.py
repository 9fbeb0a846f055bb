"""A mutation fuzzer for the formatter: formatting never changes what a program means.

Every `.cfl` file of the repository (examples/, stdlib/, tests/cases/) is a seed. A seed is
cut into pieces (its tokens and the whitespace between them) and mutated a few times: a
piece is deleted, duplicated, swapped with another, or a token (from the same file or from
a vocabulary of awkward ones) is inserted; or one character is inserted or deleted inside a
piece. Whenever the mutant parses without errors, three things must hold:

- the formatted text parses without errors,
- its syntax tree equals the mutant's (spans aside; doc comments included),
- formatting the formatted text changes nothing.

The mutations are hypothesis data, so a failure shrinks to few, small mutations of the
first seed that shows it. The CI profile runs this for a few seconds; ``tests/fuzz.sh``
runs it (and the compiler's fuzzers) for long. ``python tests/test_fmt_fuzz.py SECONDS``
hunts without stopping at the first failure and prints every distinct one, cut down by
`minimise`; each became a golden case under tests/cases/fmt/.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_properties import TOKENS

from cfglang.source import SourceFile
from cfglang.syntax import ast
from cfglang.syntax.parser import lex_tokens, parse_module
from cfglang.tools.fmt import FormatError, format_source

pytestmark = pytest.mark.fuzz
T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
SEEDS = sorted(
    p.relative_to(ROOT)
    for pattern in ("examples/**/*.cfl", "stdlib/**/*.cfl", "tests/cases/**/*.cfl")
    for p in ROOT.glob(pattern)
)

# Tokens that separate, join or end statements, and literals at the edges of their range.
VOCABULARY = [
    *TOKENS,
    "\n\n",
    " ; ",
    ";;",
    "# c\n",
    "## d\n",
    "\n## d\n",
    "-9223372036854775808",
    "- 9223372036854775808",
    "-0",
    "0.5",
    "-1.5",
    "1_0",
    "0b101",
    "0o17",
    "1d2h",
    "-30s",
    "1KiB",
    'r"a\\b"',
    '"""\nx\n"""',
    "'a'",
    "'''\ny\n'''",
    '"$<a>b"',
    "...",
    "a.b",
    '"k".x',
    "+=",
    "extends",
    "import",
    "schema",
    "template",
    "output",
    "std",
    "as",
    "from env",
    "?",
    "\r\n",
    "\r",
    "\t",
    "\f",
    "\\\n",
    "a" * 90,
    '"' + "b" * 90 + '"',
    "f(" + "c, " * 40 + ")",
    "[" + "1, " * 40 + "]",
    '"é\\u00e9"',
]

_FALLBACK = re.compile(r"[A-Za-z_0-9]+|\s+|.", re.S)


@cache
def pieces(seed: Path) -> tuple[str, ...]:
    """The seed's tokens and the gaps between them; the pieces join to the seed."""
    text = (ROOT / seed).read_text(encoding="utf-8")
    try:
        toks = lex_tokens(SourceFile(str(seed), text))
    except Exception:  # a seed that does not lex (a syntax-error case): cut it by regex
        return tuple(_FALLBACK.findall(text))
    out: list[str] = []
    pos = 0
    for _, s, e in toks:
        if s < pos or e <= s:
            continue
        if s > pos:
            out.append(text[pos:s])
        out.append(text[s:e])
        pos = e
    if pos < len(text):
        out.append(text[pos:])
    return tuple(out)


OPS = ("insert", "delete", "duplicate", "swap", "char+", "char-")
CHARS = " \n;,.-+#\"'(){}[]=:0a_$<>|?!\\"


def mutate(
    parts: list[str], choose: Callable[[Sequence[T]], T], pick: Callable[[int, int], int]
) -> None:
    """Apply one mutation to ``parts`` in place; ``choose`` picks from a sequence and
    ``pick(lo, hi)`` an integer in [lo, hi] (hypothesis draws, or `random` in a long hunt)."""
    if not parts:
        parts.append("")
    i = pick(0, len(parts) - 1)
    op = choose(OPS)
    if op == "insert":
        tok = choose(parts if choose((True, False)) else VOCABULARY)
        space = choose(("", " ", "\n"))
        parts.insert(i, space + tok + space)
    elif op in ("delete", "duplicate"):
        # mostly one piece, sometimes a run of them (a run duplicated makes long lines)
        j = pick(i + 1, min(len(parts), i + 1 + choose((0, 0, 0, 3, 30))))
        if op == "delete":
            del parts[i:j]
        else:
            parts[i:i] = parts[i:j]
    elif op == "swap":
        j = pick(max(0, i - 8), min(len(parts) - 1, i + 8))
        parts[i], parts[j] = parts[j], parts[i]
    else:
        p = parts[i]
        k = pick(0, len(p))
        parts[i] = p[:k] + choose(CHARS) + p[k:] if op == "char+" else p[:k] + p[k + 1 :]


@st.composite
def mutants(draw: st.DrawFn) -> str:
    parts = list(pieces(draw(st.sampled_from(SEEDS))))

    def choose(seq: Sequence[T]) -> T:
        return draw(st.sampled_from(seq))

    def pick(lo: int, hi: int) -> int:
        return draw(st.integers(lo, hi))

    for _ in range(draw(st.integers(1, 6))):
        mutate(parts, choose, pick)
    return "".join(parts)


def parses(text: str) -> ast.Module | None:
    """The tree of ``text``, or None when it has a syntax (or other parse-time) error."""
    try:
        module, diags = parse_module(SourceFile("fuzz.cfl", text))
    except RecursionError:  # reported by the compiler as a limit; not the formatter's case
        return None
    return module if module is not None and not any(d.is_error for d in diags) else None


def problem(text: str) -> str | None:
    """What formatting ``text`` breaks, or None when nothing (or ``text`` does not parse)."""
    module = parses(text)
    if module is None:
        return None
    try:
        once = format_source(text)
    except FormatError as e:
        if all(d.code == "E0502" for d in e.diagnostics):
            return None  # too deeply nested to format: a clean, documented refusal
        return f"valid input refused: {e}"
    again = parses(once)
    if again is None:
        return "the output does not parse"
    if again != module:
        return "the output has another syntax tree"
    if format_source(once) != once:
        return "formatting twice changes the text"
    return None


def minimise(text: str, still: Callable[[str], bool]) -> str:
    """A small text for which ``still`` holds: delta debugging over lines, then characters.

    For turning a failure into a golden case: hypothesis shrinks the mutations, not the
    seed around them.
    """
    for unit in ("line", "char"):
        parts = text.splitlines(keepends=True) if unit == "line" else list(text)
        n = 2
        while len(parts) >= 2:
            chunk = max(1, len(parts) // n)
            for k in range(0, len(parts), chunk):
                cand = parts[:k] + parts[k + chunk :]
                if still("".join(cand)):
                    parts = cand
                    n = max(n - 1, 2)
                    break
            else:
                if chunk == 1:
                    break
                n = min(len(parts), n * 2)
        text = "".join(parts)
    return text


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(mutants())
def test_formatting_a_mutant_keeps_its_meaning(text: str) -> None:
    found = problem(text)
    event("parses" if parses(text) is not None else "does not parse")
    assert found is None, f"{found}:\n{text!r}"


def hunt(seconds: float, seed: int = 0) -> None:
    """Mutate at random for ``seconds`` and print each distinct failure, minimised, as a
    JSON line: unlike the property, which stops at the first failure, this shows the whole
    class. ``python tests/test_fmt_fuzz.py [SECONDS [SEED]]``."""
    import json
    import random
    import sys
    import time

    rng = random.Random(seed)
    seen: set[str] = set()
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        parts = list(pieces(rng.choice(SEEDS)))
        for _ in range(rng.randint(1, 6)):
            mutate(parts, rng.choice, rng.randint)
        text = "".join(parts)
        n += 1
        found = problem(text)
        if found is None:
            continue
        small = minimise(text, lambda t, found=found: problem(t) == found)
        if small not in seen:
            seen.add(small)
            print(json.dumps([found, small]), flush=True)
    print(f"{n} mutants, {len(seen)} distinct failures", file=sys.stderr)


if __name__ == "__main__":
    import sys

    hunt(
        float(sys.argv[1]) if len(sys.argv) > 1 else 60,
        int(sys.argv[2]) if len(sys.argv) > 2 else 0,
    )
