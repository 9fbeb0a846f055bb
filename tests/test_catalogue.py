"""The diagnostic catalogue is complete and docs/errors.md is generated from it."""

from __future__ import annotations

import re
from pathlib import Path

from cfglang.diagnostics import CATALOGUE, errors_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_docs_errors_md_matches_catalogue() -> None:
    text = (ROOT / "docs" / "errors.md").read_text()
    assert text == errors_markdown(), "run: python -m cfglang.diagnostics > docs/errors.md"


def test_every_code_used_in_the_source_is_catalogued() -> None:
    used: set[str] = set()
    for path in (ROOT / "cfglang").rglob("*.py"):
        used |= set(re.findall(r'"([EW]\d{4})"', path.read_text()))
    missing = sorted(used - set(CATALOGUE))
    assert not missing, f"codes used but not in CATALOGUE: {missing}"


def test_catalogue_entries_are_short_lowercase_titles() -> None:
    for code, (title, text) in CATALOGUE.items():
        assert re.fullmatch(r"[EW]\d{4}", code)
        assert (title and not title.endswith(".") and title[0].islower()) or title[0] == "`"
        assert text.endswith(".")
