"""`cfglang.datapath`: the one parser and printer of data paths."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfglang.datapath import DataPathError, parse, render

parts = st.lists(
    st.one_of(st.integers(min_value=-5, max_value=10_000), st.text(min_size=1, max_size=8)),
    max_size=6,
)


@given(parts)
def test_render_then_parse_gives_the_parts_back(p: list[str | int]) -> None:
    assert parse(render(p)) == tuple(p)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("", ()),
        ("  services.billing.db ", ("services", "billing", "db")),
        ('labels["app/name"]', ("labels", "app/name")),
        ('a["x\\"y"][2].max-conns', ("a", 'x"y', 2, "max-conns")),
        ("tags[-1]", ("tags", -1)),
    ],
)
def test_parse(text: str, want: tuple[str | int, ...]) -> None:
    assert parse(text) == want


@pytest.mark.parametrize("text", ["a..b", ".a", "a.", "a[", 'a["x]', "a b", "[x]", "a.1"])
def test_not_a_path(text: str) -> None:
    with pytest.raises(DataPathError, match="not a configuration path"):
        parse(text)


def test_render_quotes_only_keys_that_are_not_names() -> None:
    assert render(("services", "billing", 0, "db")) == "services.billing[0].db"
    assert render(("labels", "app.kubernetes.io/name")) == 'labels["app.kubernetes.io/name"]'
    assert render(()) == ""
