"""Properties of the scoping rules (docs/language.md §3.6): merge blocks and dotted paths
split one body's fields any way without changing the document, and assigning any one of
them again, in either spelling, is E0204 naming both sites."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cfglang.api import compile
from cfglang.source import Span

KEYS = ("host", "port", "pool", "name")
# The first compile of a process raises the recursion limit (cfglang.worker); done here,
# not inside a hypothesis example, which would warn that the limit changed.
compile(text="a = 1\n", filename="warm.cfl", env={})


def _spell(block: str, key: str, value: int, dotted: bool) -> str:
    return f"{block}.{key} = {value}" if dotted else f"{block} {{ {key} = {value} }}"


@st.composite
def _fields(draw: st.DrawFn) -> list[tuple[str, str, int, bool]]:
    """Distinct (block, key) pairs with a value and a spelling."""
    pairs = draw(
        st.lists(
            st.tuples(st.sampled_from(("db", "cache")), st.sampled_from(KEYS)),
            min_size=1,
            max_size=6,
            unique=True,
        )
    )
    return [(b, k, draw(st.integers(0, 9)), draw(st.booleans())) for b, k in pairs]


def _line(span: Span | None) -> int:
    return span.start_line_col()[0] if span is not None else 0


def _build(text: str) -> tuple[object, list[str], list[tuple[int, list[int]]]]:
    r = compile(text=text, filename="main.cfl", env={})
    lines = [
        (_line(d.span), [_line(n.span) for n in d.notes])
        for d in r.diagnostics
        if d.code == "E0204"
    ]
    return r.data if r.ok else None, [d.code for d in r.diagnostics], lines


@given(_fields())
@settings(max_examples=40)
def test_merge_blocks_and_dotted_paths_split_a_body_freely(
    fields: list[tuple[str, str, int, bool]],
) -> None:
    split = "\n".join(_spell(b, k, v, d) for b, k, v, d in fields) + "\n"
    whole: dict[str, list[str]] = {}
    for b, k, v, _ in fields:
        whole.setdefault(b, []).append(f"{k} = {v}")
    joined = "".join(f"{b} {{ {'; '.join(kv)} }}\n" for b, kv in whole.items())
    got, codes, _ = _build(split)
    want, _, _ = _build(joined)
    assert codes == [] and got == want


@given(_fields(), st.data())
@settings(max_examples=40)
def test_assigning_a_field_again_is_e0204_naming_both_sites(
    fields: list[tuple[str, str, int, bool]], data: st.DataObject
) -> None:
    b, k, _, _ = data.draw(st.sampled_from(fields))
    first = next(i for i, f in enumerate(fields) if f[:2] == (b, k)) + 1
    again = _spell(b, k, 7, data.draw(st.booleans()))
    text = "\n".join(_spell(*f) for f in fields) + "\n" + again + "\n"
    _, codes, sites = _build(text)
    assert codes == ["E0204"]
    assert sites == [(len(fields) + 1, [first])]
