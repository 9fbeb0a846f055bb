"""The three-way merge of `.cfl` sources (`cfglang.tools.merge`, `cflc merge`).

Table-driven cases pin the merged text byte for byte (or the conflicts' key paths and
texts); a hypothesis property checks the laws every merge keeps; the CLI is checked for
exit codes, stdout and stderr; last, `cflc merge` runs as a real git merge driver.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfglang import api
from cfglang.source import SourceFile
from cfglang.syntax import ast
from cfglang.syntax.parser import parse_module
from cfglang.tools.merge import Conflict, merge

ROOT = Path(__file__).resolve().parent.parent


def d(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


BASE = d(
    """
    # The fleet.
    import "std/net" as net

    ## The stage.
    stage = "dev"   # set per environment

    services {
      billing {
        replicas = 2
        # the pool is sized for two replicas
        db { pool = 5; sslmode = "disable" }
      }
      search {
        replicas   = 1
        port = 9200
      }
    }
    """
)


def edit(text: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


# (name, base, ours, theirs, expected text) for merges that must be clean.
CLEAN = [
    (
        "different_keys_same_block",
        BASE,
        edit(BASE, ("replicas = 2", "replicas = 3")),
        edit(BASE, ("replicas   = 1", "replicas   = 4")),
        edit(BASE, ("replicas = 2", "replicas = 3"), ("replicas   = 1", "replicas   = 4")),
    ),
    (
        "different_top_level_statements",
        BASE,
        edit(BASE, ('stage = "dev"', 'stage = "prod"')),
        edit(BASE, ("port = 9200", "port = 9300")),
        edit(BASE, ('stage = "dev"', 'stage = "prod"'), ("port = 9200", "port = 9300")),
    ),
    (
        "identical_change_on_both_sides",
        BASE,
        edit(BASE, ("replicas = 2", "replicas = 3")),
        edit(BASE, ("replicas = 2", "replicas = 3"), ("port = 9200", "port = 1")),
        edit(BASE, ("replicas = 2", "replicas = 3"), ("port = 9200", "port = 1")),
    ),
    (
        "both_add_different_fields_at_one_place_ours_first",
        "a {\n  x = 1\n}\n",
        "a {\n  x = 1\n  y = 2\n}\n",
        "a {\n  x = 1\n  z = 3\n}\n",
        "a {\n  x = 1\n  y = 2\n  z = 3\n}\n",
    ),
    (
        "both_add_the_same_field_with_the_same_value",
        "a = 1\n",
        "a = 1\nb = 2\n",
        "a = 1\nb = 2\nc = 3\n",
        "a = 1\nb = 2\nc = 3\n",
    ),
    (
        "both_add_the_same_block_with_different_fields",
        "a = 1\n",
        'a = 1\ndb {\n  host = "h"\n}\n',
        "a = 1\ndb {\n  port = 5432\n}\n",
        'a = 1\ndb {\n  host = "h"\n  port = 5432\n}\n',
    ),
    (
        "delete_of_an_unchanged_statement",
        "a = 1\nb = 2\nc = 3\n",
        "a = 1\nc = 3\n",
        "a = 1\nb = 2\nc = 4\n",
        "a = 1\nc = 4\n",
    ),
    (
        "comments_and_layout_of_untouched_parts_kept",
        d(
            """
            # header

            ## doc of a
            a   =    1      # odd spacing
            # detached


            b = [1,2,
                 3]   # kept as written
            c = 0
            """
        ),
        d(
            """
            # header

            ## doc of a
            a   =    2      # odd spacing
            # detached


            b = [1,2,
                 3]   # kept as written
            c = 0
            """
        ),
        d(
            """
            # header

            ## doc of a
            a   =    1      # odd spacing
            # detached


            b = [1,2,
                 3]   # kept as written
            c = 0  # new comment
            """
        ),
        d(
            """
            # header

            ## doc of a
            a   =    2      # odd spacing
            # detached


            b = [1,2,
                 3]   # kept as written
            c = 0  # new comment
            """
        ),
    ),
    (
        "nested_blocks_three_levels",
        'services {\n  billing {\n    db {\n      pool = 5\n      host = "a"\n    }\n  }\n}\n',
        'services {\n  billing {\n    db {\n      pool = 6\n      host = "a"\n    }\n  }\n}\n',
        'services {\n  billing {\n    db {\n      pool = 5\n      host = "b"\n    }\n  }\n}\n',
        'services {\n  billing {\n    db {\n      pool = 6\n      host = "b"\n    }\n  }\n}\n',
    ),
    (
        "dotted_and_block_different_keys",
        "db {\n  pool = 5\n}\n",
        "db {\n  pool = 6\n}\n",
        'db {\n  pool = 5\n}\ndb.host = "h"\n',
        'db {\n  pool = 6\n}\ndb.host = "h"\n',
    ),
    (
        "dotted_inside_a_block_and_block_elsewhere",
        "services {\n  billing {\n    replicas = 2\n  }\n}\n",
        "services {\n  billing {\n    replicas = 3\n  }\n}\n",
        "services {\n  billing {\n    replicas = 2\n  }\n}\nservices.billing.port = 80\n",
        "services {\n  billing {\n    replicas = 3\n  }\n}\nservices.billing.port = 80\n",
    ),
    (
        "imports_added_by_both",
        'import "a.cfl"\n\nx = 1\n',
        'import "a.cfl"\nimport "b.cfl"\n\nx = 1\n',
        'import "a.cfl"\nimport "c.cfl"\n\nx = 1\n',
        'import "a.cfl"\nimport "b.cfl"\nimport "c.cfl"\n\nx = 1\n',
    ),
    (
        "the_same_import_added_by_both",
        "x = 1\n",
        'import "std/net" as net\nx = 1\n',
        'import "std/net" as net\nx = 2\n',
        'import "std/net" as net\nx = 2\n',
    ),
    (
        "reordered_by_theirs_edited_by_ours",
        "a = 1\nb = 2\nc = 3\n",
        "a = 1\nb = 20\nc = 3\n",
        "c = 3\nb = 2\na = 1\n",
        "c = 3\nb = 20\na = 1\n",
    ),
    (
        "both_reordered_ours_wins",
        "a = 1\nb = 2\nc = 3\n",
        "c = 3\na = 1\nb = 2\n",
        "b = 2\na = 1\nc = 3\n",
        "c = 3\na = 1\nb = 2\n",
    ),
    (
        "added_by_ours_after_its_neighbour_in_theirs_order",
        "a = 1\nb = 2\nc = 3\n",
        "a = 1\nb = 2\nz = 0\nc = 3\n",
        "c = 3\nb = 2\na = 1\n",
        "c = 3\nb = 2\nz = 0\na = 1\n",
    ),
    (
        "declarations_by_name",
        d(
            """
            input region: string = "us"
            let domain = "x.com"
            type Port = int where self > 0
            schema S {
              a: int
              b: string
            }
            template T(n: string) {
              name = n
              port = 80
            }
            output "a.json" = s
            s = T(n = "a")
            """
        ),
        d(
            """
            input region: string = "eu"
            let domain = "x.com"
            type Port = int where self > 0
            schema S {
              a: int
              b: string
              c: bool
            }
            template T(n: string) {
              name = n
              port = 8080
            }
            output "a.json" = s
            s = T(n = "a")
            """
        ),
        d(
            """
            input region: string = "us"
            let domain = "y.com"
            type Port = int where self > 1
            schema S {
              a: int
              b: string?
            }
            template T(n: string) {
              name = "$<n>!"
              port = 80
            }
            output "a.json" = s
            output "b.json" = s
            s = T(n = "a")
            """
        ),
        d(
            """
            input region: string = "eu"
            let domain = "y.com"
            type Port = int where self > 1
            schema S {
              a: int
              b: string?
              c: bool
            }
            template T(n: string) {
              name = "$<n>!"
              port = 8080
            }
            output "a.json" = s
            output "b.json" = s
            s = T(n = "a")
            """
        ),
    ),
    (
        "refinement_bodies_by_key",
        'billing = Svc(name = "billing") {\n  replicas = 2\n  db.pool = 20\n}\n',
        'billing = Svc(name = "billing") {\n  replicas = 3\n  db.pool = 20\n}\n',
        'billing = Svc(name = "billing") {\n  replicas = 2\n  db.pool = 30\n}\n',
        'billing = Svc(name = "billing") {\n  replicas = 3\n  db.pool = 30\n}\n',
    ),
    (
        "head_changed_by_one_side_body_by_the_other",
        'billing = Svc(name = "billing") {\n  replicas = 2\n}\n',
        'billing = Svc(name = "billing", has_db = true) {\n  replicas = 2\n}\n',
        'billing = Svc(name = "billing") {\n  replicas = 4\n}\n',
        'billing = Svc(name = "billing", has_db = true) {\n  replicas = 4\n}\n',
    ),
    (
        "no_newline_at_the_end",
        "a = 1\nb = 2",
        "a = 10\nb = 2",
        "a = 1\nb = 2\nc = 3",
        "a = 10\nb = 2\nc = 3",
    ),
    (
        "statements_sharing_a_line_are_one_unit",
        "a = 1; b = 2\nc = 3\n",
        "a = 1; b = 5\nc = 3\n",
        "a = 1; b = 2\nc = 4\n",
        "a = 1; b = 5\nc = 4\n",
    ),
    (
        "checks_by_text",
        "a = 1\ncheck a > 0\n",
        "a = 1\ncheck a > 0\ncheck a < 10\n",
        "a = 2\ncheck a > 0\n",
        "a = 2\ncheck a > 0\ncheck a < 10\n",
    ),
    (
        "comment_above_changed_by_one_side_value_by_the_other",
        "## the pool\npool = 5\n",
        "## the pool, sized for 2 replicas\npool = 5\n",
        "## the pool\npool = 6  # raised\n",
        "## the pool, sized for 2 replicas\npool = 6  # raised\n",
    ),
    (
        "crlf_line_ends",
        "a {\r\n  x = 1\r\n  y = 2\r\n}\r\n",
        "a {\r\n  x = 3\r\n  y = 2\r\n}\r\n",
        "a {\r\n  x = 1\r\n  y = 4\r\n}\r\n",
        "a {\r\n  x = 3\r\n  y = 4\r\n}\r\n",
    ),
]


@pytest.mark.parametrize(
    ("name", "base", "ours", "theirs", "expected"), CLEAN, ids=[c[0] for c in CLEAN]
)
def test_clean_merges(name: str, base: str, ours: str, theirs: str, expected: str) -> None:
    result = merge(base, ours, theirs, path="x.cfl")
    assert result.conflicts == ()
    assert result.diagnostics == ()
    assert result.text == expected
    assert result.clean


# (name, base, ours, theirs, the conflicts as (path, base, theirs, yours)).
CONFLICTS = [
    (
        "same_key_different_values",
        BASE,
        edit(BASE, ("replicas = 2", "replicas = 3")),
        edit(BASE, ("replicas = 2", "replicas = 9")),
        [("services.billing.replicas", "replicas = 2", "replicas = 9", "replicas = 3")],
    ),
    (
        "both_add_the_same_field_with_different_values",
        "a = 1\n",
        "a = 1\nb = 2\n",
        "a = 1\nb = 3\n",
        [("b", None, "b = 3", "b = 2")],
    ),
    (
        "both_add_the_same_field_in_a_block_with_different_values",
        "a = 1\n",
        "a = 1\ndb {\n  pool = 5\n}\n",
        "a = 1\ndb {\n  pool = 6\n}\n",
        [("db.pool", None, "pool = 6", "pool = 5")],
    ),
    (
        "delete_against_edit",
        "a = 1\nb = 2\n",
        "a = 1\n",
        "a = 1\nb = 3\n",
        [("b", "b = 2", "b = 3", None)],
    ),
    (
        "edit_against_delete",
        "a = 1\nb = 2\n",
        "a = 1\nb = 3\n",
        "a = 1\n",
        [("b", "b = 2", None, "b = 3")],
    ),
    (
        "dotted_against_block_same_key",
        "db {\n  pool = 5\n}\n",
        "db {\n  pool = 6\n}\n",
        "db {\n  pool = 5\n}\ndb.pool = 7\n",
        [("db.pool", "pool = 5", "db.pool = 7", "pool = 6")],
    ),
    (
        "top_level_dotted_against_nested_block",
        BASE,
        BASE + "services.billing.replicas = 7\n",
        edit(BASE, ("replicas = 2", "replicas = 9")),
        [
            (
                "services.billing.replicas",
                "replicas = 2",
                "replicas = 9",
                "services.billing.replicas = 7",
            )
        ],
    ),
    (
        "block_rewritten_as_dotted_against_its_deletion",
        "a {\n  x = 1\n}\nb = 2\n",
        "a.x = 1\nb = 2\n",
        "b = 2\n",
        [("a.x", "a {\n  x = 1\n}", None, "a.x = 1")],
    ),
    (
        "a_whole_block_set_against_a_key_inside",
        "db {\n  pool = 5\n}\n",
        "db {\n  pool = 6\n}\n",
        "db {\n  pool = 5\n}\ndb = { pool = 1 }\n",
        [("db", "pool = 5", "db = { pool = 1 }", "pool = 6")],
    ),
    (
        "imports_of_one_alias_from_different_paths",
        "x = 1\n",
        'import "a/net.cfl"\nx = 1\n',
        'import "b/net.cfl"\nx = 1\n',
        [("import net", None, 'import "b/net.cfl"', 'import "a/net.cfl"')],
    ),
    (
        "module_level_if_is_one_unit",
        "if true {\n  a = 1\n  b = 2\n}\n",
        "if true {\n  a = 3\n  b = 2\n}\n",
        "if true {\n  a = 1\n  b = 4\n}\n",
        [
            (
                "if true",
                "if true {\n  a = 1\n  b = 2\n}",
                "if true {\n  a = 1\n  b = 4\n}",
                "if true {\n  a = 3\n  b = 2\n}",
            )
        ],
    ),
    (
        "one_line_block_is_one_unit",
        'db { pool = 5; sslmode = "disable" }\n',
        'db { pool = 6; sslmode = "disable" }\n',
        'db { pool = 5; sslmode = "require" }\n',
        [
            (
                "db",
                'db { pool = 5; sslmode = "disable" }',
                'db { pool = 5; sslmode = "require" }',
                'db { pool = 6; sslmode = "disable" }',
            )
        ],
    ),
    (
        "comment_above_changed_differently",
        "# one\na = 1\n",
        "# two\na = 1\n",
        "# three\na = 2\n",
        [("a", "# one\na = 1", "# three\na = 2", "# two\na = 1")],
    ),
    (
        "let_by_name_in_a_template",
        "template T() {\n  let x = 1\n  a = x\n}\n",
        "template T() {\n  let x = 2\n  a = x\n}\n",
        "template T() {\n  let x = 3\n  a = x\n}\n",
        [("template T.let x", "let x = 1", "let x = 3", "let x = 2")],
    ),
]


@pytest.mark.parametrize(
    ("name", "base", "ours", "theirs", "expected"), CONFLICTS, ids=[c[0] for c in CONFLICTS]
)
def test_conflicts(
    name: str,
    base: str,
    ours: str,
    theirs: str,
    expected: list[tuple[str, str | None, str | None, str | None]],
) -> None:
    result = merge(base, ours, theirs, path="x.cfl")
    assert [(c.path, c.base, c.theirs, c.yours) for c in result.conflicts] == expected
    assert not result.clean
    assert result.text is not None and "<<<<<<< ours\n" in result.text
    # The other way round, the same conflicts with the two sides swapped.
    swapped = merge(base, theirs, ours, path="x.cfl")
    assert {(c.path, c.base, c.yours, c.theirs) for c in swapped.conflicts} == set(expected)


def test_conflict_markers_surround_only_the_conflicting_statement() -> None:
    base = "a = 1\nb {\n  x = 1\n  y = 2\n}\nc = 3\n"
    ours = "a = 10\nb {\n  x = 5\n  y = 2\n}\nc = 3\n"
    theirs = "a = 1\nb {\n  x = 6\n  y = 2\n}\nc = 30\n"
    result = merge(base, ours, theirs, path="x.cfl")
    assert result.text == (
        "a = 10\nb {\n<<<<<<< ours\n  x = 5\n=======\n  x = 6\n>>>>>>> theirs\n  y = 2\n}\nc = 30\n"
    )
    assert result.conflicts == (Conflict("b.x", "x = 1", "x = 6", "x = 5"),)


def test_delete_against_edit_markers_leave_one_side_empty() -> None:
    result = merge("a = 1\nb = 2\n", "a = 1\n", "a = 1\nb = 3\n", path="x.cfl")
    assert result.text == "a = 1\n<<<<<<< ours\n=======\nb = 3\n>>>>>>> theirs\n"


def test_attached_comments_travel_with_their_statement() -> None:
    base = "a = 1\n\n# about b\n## doc of b\nb = 2\nc = 3\n"
    ours = "a = 1\nc = 3\n"  # b deleted with its comments (and the blank line before it)
    theirs = "a = 1\n\n# about b\n## doc of b\nb = 2\nc = 4\n"
    assert merge(base, ours, theirs, path="x.cfl").text == "a = 1\nc = 4\n"
    added = "a = 1\n\n# about b\n## doc of b\nb = 2\n# about z\nz = 0\nc = 3\n"
    result = merge(base, added, theirs, path="x.cfl")
    assert result.text == "a = 1\n\n# about b\n## doc of b\nb = 2\n# about z\nz = 0\nc = 4\n"


def test_parse_error_is_a_diagnostic_with_a_position() -> None:
    result = merge("a = 1\n", "a = (\n", "a = 2\n", path="env/prod.cfl")
    assert result.text is None and not result.clean
    (diag,) = result.diagnostics
    assert diag.span is not None
    assert diag.span.path == "env/prod.cfl@ours"
    assert diag.span.start_line_col() == (1, 5)


def test_absent_files() -> None:
    # Added on both sides (no base): merged as if the base were empty.
    both = merge(None, "a = 1\n", "b = 2\n", path="x.cfl")
    assert both.clean and both.text == "a = 1\nb = 2\n"
    # Deleted on one side, left on the other: deleted.
    gone = merge("a = 1\n", None, "a = 1\n", path="x.cfl")
    assert gone.clean and gone.deleted and gone.text is None
    assert merge("a = 1\n", "a = 1\n", None, path="x.cfl").deleted
    # Deleted against edited: one conflict on the whole file.
    clash = merge("a = 1\n", None, "a = 2\n", path="x.cfl")
    assert clash.conflicts == (Conflict("(file)", "a = 1\n", "a = 2\n", None),)
    assert clash.text == "<<<<<<< ours\n=======\na = 2\n>>>>>>> theirs\n"
    # A present side that does not parse is still a diagnostic.
    assert merge("a = 1\n", None, "a = (\n", path="x.cfl").diagnostics


def test_the_front_door() -> None:
    result = api.merge_sources("a = 1\nb = 2\n", "a = 3\nb = 2\n", "a = 1\nb = 4\n", path="x.cfl")
    assert result.clean and result.text == "a = 3\nb = 4\n"


def test_example_fleet_edits_merge_and_parse() -> None:
    base = (ROOT / "examples/fleet/base.cfl").read_text(encoding="utf-8")
    ours = edit(base, ("    replicas = 2\n    db.pool = 20", "    replicas = 3\n    db.pool = 20"))
    theirs = edit(
        base, ("    port = 9200", "    port = 9300"), ('output "search.json"', 'output "s.json"')
    )
    result = merge(base, ours, theirs, path="base.cfl")
    assert result.conflicts == ()
    assert result.text == edit(
        ours, ("    port = 9200", "    port = 9300"), ('output "search.json"', 'output "s.json"')
    )


# ---- properties ---------------------------------------------------------------------------------
#
# Configurations are trees of small ints; a version is rendered with each block written as a
# block, as dotted assignments or with a comment above it (the same choice for a key in all
# three versions, or, "mixed", a choice per version, which turns edits into moves).

_KEYS = st.sampled_from(["a", "b", "c", "d"])
_Tree = dict[str, object]
_STYLES = st.sampled_from(["block", "block", "dotted", "comment"])
_ABSENT = object()


def _trees(depth: int = 2) -> st.SearchStrategy[_Tree]:
    leaf = st.integers(0, 3)
    if depth == 0:
        return st.dictionaries(_KEYS, leaf, min_size=1, max_size=3)
    return st.dictionaries(_KEYS, st.one_of(leaf, _trees(depth - 1)), min_size=1, max_size=4)


def _render(tree: _Tree, style: Callable[[str], str], indent: str = "", prefix: str = "") -> str:
    out = []
    for k, v in tree.items():
        how = style(prefix + k)
        if how == "comment":
            out.append(f"{indent}# about {k}\n")
        if isinstance(v, dict) and not v:
            out.append(f"{indent}{k} {{}}\n")
        elif isinstance(v, dict) and how == "dotted":
            out.append(_render(v, lambda _: "dotted", indent, ""))
            out[-1] = "".join(
                f"{indent}{k}.{line[len(indent) :]}\n" for line in out[-1].splitlines()
            )
        elif isinstance(v, dict):
            inner = _render(v, style, indent + "  ", prefix + k + ".")
            out.append(f"{indent}{k} {{\n{inner}{indent}}}\n")
        else:
            out.append(f"{indent}{k} = {v}\n")
    return "".join(out)


@st.composite
def _edited(draw: st.DrawFn, tree: _Tree) -> _Tree:
    """``tree`` with a few values changed, keys added and keys deleted."""
    out: _Tree = {}
    for k, v in tree.items():
        action = draw(st.sampled_from(["keep", "keep", "keep", "change", "delete"]))
        if action == "delete":
            continue
        if isinstance(v, dict):
            out[k] = draw(_edited(v)) if action == "change" else v
        else:
            out[k] = draw(st.integers(0, 3)) if action == "change" else v
    for k in draw(st.lists(_KEYS, max_size=2)):
        out.setdefault(k, draw(st.one_of(st.integers(0, 3), _trees(0))))
    return out


@st.composite
def _versions(draw: st.DrawFn) -> tuple[list[_Tree], list[str]]:
    base = draw(_trees())
    trees = [base, draw(_edited(base)), draw(_edited(base))]
    mixed = draw(st.booleans())
    shared: dict[str, str] = {}
    texts = []
    for tree in trees:
        memo: dict[str, str] = {} if mixed else shared

        def style(path: str, memo: dict[str, str] = memo) -> str:
            if path not in memo:
                memo[path] = draw(_STYLES)
            return memo[path]

        texts.append(_render(tree, style))
    return trees, texts


def _leaves(tree: _Tree, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], object]:
    out: dict[tuple[str, ...], object] = {}
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            out.update(_leaves(v, (*prefix, k)))
        else:
            out[(*prefix, k)] = "{}" if isinstance(v, dict) else v
    return out


def _leaf_merge(b: _Tree, o: _Tree, t: _Tree) -> dict[tuple[str, ...], object] | None:
    """The merge of the key paths (None: a conflict): a path one side changed takes that
    side's value; two changes of one path, or of a path and one inside it, conflict."""
    fb, fo, ft = _leaves(b), _leaves(o), _leaves(t)
    ours = {p for p in {*fb, *fo} if fb.get(p, _ABSENT) != fo.get(p, _ABSENT)}
    theirs = {p for p in {*fb, *ft} if fb.get(p, _ABSENT) != ft.get(p, _ABSENT)}
    same = {p for p in ours & theirs if fo.get(p, _ABSENT) == ft.get(p, _ABSENT)}
    for p in ours - same:
        for q in theirs - same:
            n = min(len(p), len(q))
            if p[:n] == q[:n]:
                return None
    out = {}
    for p in {*fb, *fo, *ft}:
        v = fo.get(p, _ABSENT) if p in ours else ft.get(p, _ABSENT) if p in theirs else fb[p]
        if v is not _ABSENT:
            out[p] = v
    return out


def _read_tree(text: str) -> _Tree:
    """The tree a merged text defines; a key defined twice fails the test."""
    module, diags = parse_module(SourceFile("x.cfl", text))
    assert module is not None and not any(x.is_error for x in diags), text
    root: _Tree = {}

    def walk(stmts: tuple[ast.Stmt, ...], target: _Tree) -> None:
        for s in stmts:
            assert isinstance(s, ast.Field)
            keys = [str(k.name) for k in s.path]
            place = target
            for k in keys[:-1]:
                inner = place.setdefault(k, {})
                assert isinstance(inner, dict), f"`{k}` is both a value and a block"
                place = inner
            last = keys[-1]
            if s.body is not None:
                inner = place.setdefault(last, {})
                assert isinstance(inner, dict), f"`{last}` is both a value and a block"
                walk(s.body.stmts, inner)
            else:
                assert last not in place, f"`{last}` is defined twice"
                assert isinstance(s.value, ast.Literal)
                place[last] = s.value.value

    walk(module.body.stmts, root)
    return root


@given(_versions())
def test_merge_laws(versions: tuple[list[_Tree], list[str]]) -> None:
    (b, o, t), (base, x, y) = versions
    assert merge(base, base, x, path="x.cfl").text == x
    assert merge(base, x, base, path="x.cfl").text == x
    assert merge(base, x, x, path="x.cfl").text == x
    xy = merge(base, x, y, path="x.cfl")
    yx = merge(base, y, x, path="x.cfl")
    assert {(c.path, c.base, c.theirs, c.yours) for c in xy.conflicts} == {
        (c.path, c.base, c.yours, c.theirs) for c in yx.conflicts
    }
    if xy.clean:
        # A clean merge is right key by key: every change of either side, nothing else.
        assert xy.text is not None
        expected = _leaf_merge(b, o, t)
        assert expected is not None, xy.text
        assert _leaves(_read_tree(xy.text)) == expected


# ---- the command --------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cflc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cfglang.cli", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )


def _write3(tmp_path: Path, base: str, ours: str, theirs: str) -> None:
    for name, text in (("base.cfl", base), ("ours.cfl", ours), ("theirs.cfl", theirs)):
        (tmp_path / name).write_text(text, encoding="utf-8")


def test_cli_clean_merge_to_stdout(tmp_path: Path) -> None:
    _write3(tmp_path, "a = 1\nb = 2\n", "a = 3\nb = 2\n", "a = 1\nb = 4\n")
    r = _cflc("merge", "base.cfl", "ours.cfl", "theirs.cfl", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "a = 3\nb = 4\n", "")


def test_cli_clean_merge_to_a_file(tmp_path: Path) -> None:
    _write3(tmp_path, "a = 1\nb = 2\n", "a = 3\nb = 2\n", "a = 1\nb = 4\n")
    r = _cflc("merge", "base.cfl", "ours.cfl", "theirs.cfl", "-o", "ours.cfl", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert (tmp_path / "ours.cfl").read_text(encoding="utf-8") == "a = 3\nb = 4\n"


def test_cli_conflict_writes_markers_and_lists_paths(tmp_path: Path) -> None:
    _write3(tmp_path, "a = 1\nb = 2\n", "a = 3\nb = 2\n", "a = 5\nb = 4\n")
    r = _cflc("merge", "base.cfl", "ours.cfl", "theirs.cfl", "-o", "out.cfl", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr == (
        "conflict: ours.cfl: a\n1 conflict in ours.cfl; resolve the marked statements\n"
    )
    assert (tmp_path / "out.cfl").read_text(encoding="utf-8") == (
        "<<<<<<< ours\na = 3\n=======\na = 5\n>>>>>>> theirs\nb = 4\n"
    )


def test_cli_json_format(tmp_path: Path) -> None:
    _write3(tmp_path, "a = 1\n", "a = 3\n", "a = 5\n")
    r = _cflc("merge", "base.cfl", "ours.cfl", "theirs.cfl", "--format", "json", cwd=tmp_path)
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc == {
        "clean": False,
        "conflicts": [{"path": "a", "base": "a = 1", "theirs": "a = 5", "yours": "a = 3"}],
        "text": "<<<<<<< ours\na = 3\n=======\na = 5\n>>>>>>> theirs\n",
    }


def test_cli_bad_input_exit_2(tmp_path: Path) -> None:
    _write3(tmp_path, "a = 1\n", "a = {\n", "a = 5\n")
    r = _cflc("merge", "base.cfl", "ours.cfl", "theirs.cfl", "-o", "out.cfl", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.startswith("error[E0002]: unclosed `{`\n --> ours.cfl:1:5\n")
    assert not (tmp_path / "out.cfl").exists()
    r = _cflc("merge", "base.cfl", "missing.cfl", "theirs.cfl", cwd=tmp_path)
    assert r.returncode == 2
    assert "error[E0702]: `missing.cfl` cannot be read" in r.stderr


# ---- as a git merge driver ----------------------------------------------------------------------


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = _env()
    env.update(
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
    )
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=check
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    _git(tmp_path, "init", "-q", "-b", "main")
    driver = f"{sys.executable} -m cfglang.cli merge %O %A %B -o %A --name %P"
    _git(tmp_path, "config", "merge.cfl.name", "cfglang statement merge")
    _git(tmp_path, "config", "merge.cfl.driver", driver)
    (tmp_path / ".gitattributes").write_text("*.cfl merge=cfl\n", encoding="utf-8")
    (tmp_path / "app.cfl").write_text(
        "# app\nservice {\n  replicas = 2\n  port = 80\n}\n", encoding="utf-8"
    )
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "base")
    return tmp_path


def _branch(repo: Path, name: str, text: str) -> None:
    _git(repo, "checkout", "-q", "-b", name, "main")
    (repo / "app.cfl").write_text(text, encoding="utf-8")
    _git(repo, "commit", "-q", "-am", name)


def test_git_merge_driver_merges_adjacent_keys(repo: Path) -> None:
    # Adjacent lines: git's own line merge would conflict here.
    _branch(repo, "ours", "# app\nservice {\n  replicas = 3\n  port = 80\n}\n")
    _branch(repo, "theirs", "# app\nservice {\n  replicas = 2\n  port = 8080\n}\n")
    _git(repo, "checkout", "-q", "ours")
    r = _git(repo, "merge", "--no-edit", "theirs", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (repo / "app.cfl").read_text(encoding="utf-8") == (
        "# app\nservice {\n  replicas = 3\n  port = 8080\n}\n"
    )


def test_git_merge_driver_leaves_markers_on_conflict(repo: Path) -> None:
    _branch(repo, "ours", "# app\nservice {\n  replicas = 3\n  port = 80\n}\n")
    _branch(repo, "theirs", "# app\nservice {\n  replicas = 4\n  port = 80\n}\n")
    _git(repo, "checkout", "-q", "ours")
    r = _git(repo, "merge", "--no-edit", "theirs", check=False)
    assert r.returncode != 0
    assert "conflict: app.cfl: service.replicas" in r.stderr + r.stdout
    assert (repo / "app.cfl").read_text(encoding="utf-8") == (
        "# app\nservice {\n<<<<<<< ours\n  replicas = 3\n=======\n  replicas = 4\n"
        ">>>>>>> theirs\n  port = 80\n}\n"
    )
    assert "app.cfl" in _git(repo, "diff", "--name-only", "--diff-filter=U").stdout
