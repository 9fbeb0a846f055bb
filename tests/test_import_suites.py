"""`cflc import` against the official conformance suites (tests/suites/, see its README.md).

For every case the import is run as the command runs it (`read_text`, `load_data`,
`to_cfl`, the error as a `Diagnostic`) and:

- a valid case imports to data equal to the suite's reference (toml-test's tagged JSON,
  yaml-test-suite's in.json; JSONTestSuite's y_ files have no reference beyond parsing),
  and the written module compiles back to that same data, key order and kinds included;
  or it is refused with a diagnostic (E0702, or E0710 for a date or time), never a
  traceback or other data;
- an invalid case is refused with a diagnostic;
- an implementation-defined case (JSONTestSuite i_) is either.

What is knowingly different is listed below with the reason, and the test checks that each
listed case still is (so the list cannot go stale).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from cfglang.api import compile
from cfglang.tools.importer import DataError, diagnostic, load_data, read_text, to_cfl

SUITES = Path(__file__).parent / "suites"

# --- known exclusions -----------------------------------------------------------------------

# Invalid cases that are accepted, with the reason.
# (Files are read byte-exact, so a lone CR reaches tomllib and is refused, as on stdin.)
TOML_INVALID_ACCEPTED: dict[str, str] = {}
JSON_INVALID_ACCEPTED: dict[str, str] = {}
# PyYAML (6.0, a YAML 1.1 parser) accepts these invalid files; the data is what the text
# evidently means, so they are listed rather than worked around with a second parser.
YAML_INVALID_ACCEPTED = {
    "9C9N": "flow sequence items less indented than the key",
    "9JBA": "a comment without a space after `]`",
    "CVW2": "a comment without a space after `,`",
    "DK95/01": "a tab starting a continuation line of a quoted scalar",
    "G5U8": "`-` as a plain scalar in a flow sequence",
    "QB6E": "continuation lines of a quoted scalar less indented than its key",
    "S98Z": "a block scalar whose leading empty lines are more indented than its content",
    "SU5Z": "a comment without a space after a quoted scalar",
    "YJV2": "`-` as a plain scalar in a flow sequence",
    # Refused before only because the stream held two documents; now that empty documents
    # are skipped (as kubectl skips them), PyYAML's acceptance of these directives shows.
    "MUS6/01": "a second `%YAML` directive without a `...` document end before it",
    "RHX7": "a `%YAML` directive after a document without a `...` document end",
}
# Valid files that PyYAML reads as other data than in.json: its bugs, not import's. They are
# rare constructs; the list is the honest record until PyYAML fixes them.
YAML_VALID_OTHER_DATA = {
    "652Z": "`?foo` in a flow mapping is taken for an explicit key `foo`",
    "HM87/01": "`[?x]` is taken for an explicit key `x`",
    "JEF9/02": "a kept (`|+`) block scalar ending in a line of spaces loses its line break",
    "L24T/01": "a block scalar ending in a line of spaces without a line break",
    "Y2GN": "an anchor name with `:` in it (`&an:chor`) is cut at the colon",
}

# Valid YAML 1.2 files PyYAML's parser refuses (an error with its position, never data):
# tabs as separators, `:` adjacent to a flow key, implicit keys over one line in flow
# collections, anchors redefined, tags without a constructor, `%YAML 1.2`-only syntax.
YAML_VALID_REFUSED_BY_PYYAML = set(
    """
    2JQS 2SXE 3GZX 4MUZ/00 4MUZ/01 4MUZ/02 58MP 5MUD 5T43 5TYM 6BCT 6CA3 6CK3 6HB6 6M2F
    6WLZ 7FWL 7Z25 8XYN 9SA2 9WXW A2M4 C4HZ CC74 CFD4 CUP7 DBG4 DC7X DK3J DK95/00 DK95/03
    DK95/04 DK95/05 DK95/07 FP8R FRK4 HM87/00 HS5T HWV9 J3BT JR7V K3WX K54U M2N8/00 M5C3
    M7A3 MUS6/03 NB6Z NHX8 NJ66 NKF9 P76L PW8X Q5MG QT73 S3PD SM9W/01 UGM3 UKK6/00 UT92
    UV7Q VJP3/01 W4TN W5VH WZ62 Y79Y/002 Y79Y/010 Z67P Z9M4
    """.split()
)


# --- running one case -----------------------------------------------------------------------


class Run:
    """What `cflc import` made of one file: ``loaded`` says the reader accepted it (then
    ``data`` is what it read); ``error`` is the reader's or the writer's refusal."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.loaded = False
        self.data: Any = None
        self.error: DataError | None = None
        self.cfl: str | None = None
        text = read_text(str(path))
        if isinstance(text, DataError):
            self._refuse(text, path, None)
            return
        try:
            self.data = load_data(text, fmt)
        except DataError as e:
            self._refuse(e, path, text)
            return
        self.loaded = True
        if self.data is None and fmt in ("yaml", "toml"):
            self.data = {}  # as the command does: an empty YAML file is an empty module
        try:
            self.cfl = to_cfl(self.data, header="imported")
        except DataError as e:
            self._refuse(e, path, text)

    def _refuse(self, err: DataError, path: Path, text: str | None) -> None:
        check_diagnostic(err, path, text)
        self.error = err


def check_diagnostic(err: DataError, path: Path, text: str | None) -> None:
    diag = diagnostic(err, path.name, text)
    assert diag.code in ("E0702", "E0710"), diag
    assert diag.message and "Traceback" not in diag.message


def same(a: Any, b: Any) -> bool:
    """Equal data with equal kinds (1 is not 1.0 nor true); NaN equals NaN; key order is
    not compared (the references are not in file order)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


def check_builds_back(data: Any, cfl: str | None) -> None:
    if cfl is None:
        return
    res = compile(text=cfl, filename="imported.cfl", emit_outputs=False)
    assert res.ok, "\n".join(d.message for d in res.diagnostics) + "\n" + cfl
    assert json.dumps(res.data, ensure_ascii=False) == json.dumps(data, ensure_ascii=False)


# --- toml-test ------------------------------------------------------------------------------

TOML_ROOT = SUITES / "toml-test" / "tests"
TOML_CASES = [
    line.strip()
    for line in (TOML_ROOT / "files-toml-1.0.0").read_text().splitlines()
    if line.strip().endswith(".toml")
]
TOML_TIME_TYPES = {"datetime", "datetime-local", "date-local", "time-local"}


class _HasTime(Exception):
    pass


def untag(value: Any) -> Any:
    """toml-test's tagged JSON (`{"type": "integer", "value": "1"}`) as plain data."""
    if isinstance(value, list):
        return [untag(v) for v in value]
    assert isinstance(value, dict)
    if value.keys() == {"type", "value"} and isinstance(value["type"], str):
        kind, text = value["type"], value["value"]
        if kind in TOML_TIME_TYPES:
            raise _HasTime
        return {
            "string": lambda: text,
            "integer": lambda: int(text),
            "float": lambda: float(text),
            "bool": lambda: text == "true",
        }[kind]()
    return {k: untag(v) for k, v in value.items()}


@pytest.mark.parametrize("case", [c for c in TOML_CASES if c.startswith("valid/")])
def test_toml_valid(case: str) -> None:
    path = TOML_ROOT / case
    run = Run(path, "toml")
    try:
        expected = untag(json.loads(path.with_suffix(".json").read_text(encoding="utf-8")))
    except _HasTime:
        assert run.error is not None and run.error.code == "E0710", run.error
        assert run.error.line is not None, "a refused date or time is located in the file"
        return
    assert run.loaded, f"a valid file is refused: {run.error}"
    assert same(run.data, expected)
    if run.error is not None:  # CFL cannot hold it: NaN, infinities, ints beyond 64 bits
        assert "no CFL literal" in run.error.message or "64-bit" in run.error.message
    check_builds_back(run.data, run.cfl)


@pytest.mark.parametrize("case", [c for c in TOML_CASES if c.startswith("invalid/")])
def test_toml_invalid(case: str) -> None:
    run = Run(TOML_ROOT / case, "toml")
    if case in TOML_INVALID_ACCEPTED:
        assert run.loaded, f"{case} is refused now: remove it from TOML_INVALID_ACCEPTED"
        return
    assert not run.loaded and run.error is not None and run.error.code == "E0702"


# --- JSONTestSuite --------------------------------------------------------------------------

JSON_ROOT = SUITES / "JSONTestSuite" / "test_parsing"
JSON_CASES = sorted(p.name for p in JSON_ROOT.glob("*.json"))


@pytest.mark.parametrize("case", [c for c in JSON_CASES if c.startswith("y_")])
def test_json_valid(case: str) -> None:
    run = Run(JSON_ROOT / case, "json")
    assert run.loaded, f"a valid file is refused: {run.error}"
    assert same(run.data, json.loads((JSON_ROOT / case).read_bytes().decode("utf-8-sig")))
    if run.error is not None:  # a top level that is not an object, a float CFL cannot hold
        return
    check_builds_back(run.data, run.cfl)


@pytest.mark.parametrize("case", [c for c in JSON_CASES if c.startswith("n_")])
def test_json_invalid(case: str) -> None:
    run = Run(JSON_ROOT / case, "json")
    if case in JSON_INVALID_ACCEPTED:
        assert run.loaded, f"{case} is refused now: remove it from JSON_INVALID_ACCEPTED"
        return
    assert not run.loaded and run.error is not None, run.data


@pytest.mark.parametrize("case", [c for c in JSON_CASES if c.startswith("i_")])
def test_json_implementation_defined(case: str) -> None:
    run = Run(JSON_ROOT / case, "json")
    if run.error is None:
        check_builds_back(run.data, run.cfl)


# --- yaml-test-suite ------------------------------------------------------------------------

YAML_ROOT = SUITES / "yaml-test-suite"
YAML_CASES = sorted(str(p.parent.relative_to(YAML_ROOT)) for p in YAML_ROOT.glob("**/in.yaml"))


def json_stream(text: str) -> list[Any]:
    """in.json holds one JSON document per YAML document, one after another."""
    decoder = json.JSONDecoder()
    docs, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return docs
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)


@pytest.mark.parametrize("case", [c for c in YAML_CASES if not (YAML_ROOT / c / "error").exists()])
def test_yaml_valid(case: str) -> None:
    run = Run(YAML_ROOT / case / "in.yaml", "yaml")
    ref = YAML_ROOT / case / "in.json"
    docs = json_stream(ref.read_text(encoding="utf-8")) if ref.exists() else None
    if case in YAML_VALID_OTHER_DATA:
        assert run.loaded and docs is not None
        assert not same(run.data, docs[0]), f"{case} reads right now: unlist it"
        return
    if not run.loaded:
        # Refused with a diagnostic: a stream of several documents, a key that is not a
        # scalar, a set or binary value; or PyYAML cannot parse it (listed above).
        assert run.error is not None
        parse_error = run.error.message.startswith("invalid YAML")
        assert parse_error == (case in YAML_VALID_REFUSED_BY_PYYAML), run.error.message
        return
    assert case not in YAML_VALID_REFUSED_BY_PYYAML, f"{case} reads now: unlist it"
    if docs is not None:
        if len(docs) > 1:
            # Empty (null) documents of a stream are skipped, as kubectl skips them, so a
            # stream with one document of data imports as that document.
            docs = [d for d in docs if d is not None]
        assert len(docs) <= 1
        # An empty stream and a null document both import as an empty module.
        assert same(run.data, docs[0] if docs and docs[0] is not None else {})
    if run.error is None:
        check_builds_back(run.data, run.cfl)


@pytest.mark.parametrize("case", [c for c in YAML_CASES if (YAML_ROOT / c / "error").exists()])
def test_yaml_invalid(case: str) -> None:
    run = Run(YAML_ROOT / case / "in.yaml", "yaml")
    if case in YAML_INVALID_ACCEPTED:
        assert run.loaded, f"{case} is refused now: remove it from YAML_INVALID_ACCEPTED"
        return
    assert not run.loaded and run.error is not None, run.data
