"""Diagnostics: the catalogue of codes, the `Diagnostic` record, and its two renderings.

Every user-facing error has a code from `CATALOGUE`; `docs/errors.md` is generated from it
(``python -m cfglang.diagnostics > docs/errors.md``) and a test keeps the two in step.
Phases never print: they append to a `Diagnostics` collector and carry on, so one run
reports many independent mistakes. The collector de-duplicates (same code at the same
span) and sorts, so output is deterministic whatever order phases found things in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

import attrs

from cfglang.source import Span

# code -> (title, explanation). Titles are one short line; explanations say the fix.
CATALOGUE: dict[str, tuple[str, str]] = {
    "E0001": (
        "syntax error",
        "The text does not follow the CFL grammar at this point. The "
        "message lists what the parser expected.",
    ),
    "E0002": (
        "unclosed delimiter",
        "A `{`, `[` or `(` was opened and the file ended before "
        "it was closed. Add the closing delimiter. For a `{`, the indentation says which "
        "brace lacks its `}`: the last brace in the file that is still open at the end, or "
        "whose matching `}` is on a later line indented less than the brace's own line "
        "(that `}` was written for an enclosing block); a note shows the first line after "
        "it that returns to or below its indentation, where the `}` is missing.",
    ),
    "E0003": (
        "unterminated string",
        'A string was opened with `"` and the line (or the file, '
        'for `"""`) ended before the closing quote.',
    ),
    "E0004": ("invalid character", "A character that starts no CFL token."),
    "E0005": (
        "`:` used where `=` sets a value",
        "`key: T` declares a type; `key = value` "
        "sets a value. Write `key = value` (or `key: T = value`).",
    ),
    "E0006": (
        "stray comma",
        "Fields in a body are separated by newlines or `;`; commas only "
        "separate list items, arguments and parameters.",
    ),
    "E0007": (
        "invalid literal",
        "A number out of the 64-bit range, an unknown escape "
        "sequence or a malformed duration or size. A unit CFL lacks (`4Gb`, `10sec`, "
        "`5mins`) gets the nearest units (`did you mean 4GB or 4GiB?`).",
    ),
    "E0008": (
        "invalid substitution",
        "The text inside `$<...>` is not an expression, or the substitution is not closed by `>`.",
    ),
    "E0009": (
        "misplaced declaration",
        "A declaration appears where it is not allowed (for "
        "example `import` inside a block, or a value in a schema that is not a "
        "default). An `output` may stand at the top level of a module and in its "
        "module-level `if` and `for`, nowhere else.",
    ),
    "E0010": (
        "source file too large",
        "A source file is over the size limit (16 MiB unless `CFLC_MAX_SOURCE_SIZE` says "
        "otherwise). Split it into modules, or raise the limit.",
    ),
    "E0011": (
        "nested too deeply",
        "Blocks, lists, calls, substitutions, dotted paths and parentheses directly inside "
        "parentheses nest at most 128 levels, and operators at most 400 within one "
        "expression; a value nests at most 128 levels. Flatten the structure or split the "
        "expression with `let`s.",
    ),
    "E0101": (
        "module not found",
        "An `import` or `extends` names a file that does not exist or cannot be read; the "
        "help names the nearest existing file. Names reached through the failed import are "
        "not reported again, and the module is not evaluated until it loads.",
    ),
    "E0102": (
        "import cycle",
        "Modules import or extend each other in a cycle; the message lists the whole chain.",
    ),
    "E0103": (
        "path outside the project root",
        "Imports may not leave the project root "
        "(the directory of `cfl.toml`, else of the entry file) unless "
        "`--allow-path` grants the directory; symlinks are resolved first, and a "
        "`std/` path may not leave the standard library.",
    ),
    "E0104": ("more than one extends", "A module inherits from at most one module."),
    "E0105": (
        "invalid import path",
        "An `import` or `extends` path holds a character no file name can hold "
        "(a NUL byte or a lone surrogate).",
    ),
    "E0201": (
        "unknown name",
        "No field, let, input, import, type or schema of that name is "
        "in scope. The help suggests the nearest known name.",
    ),
    "E0202": (
        "unknown field",
        "Schemas are closed: every field must be declared by the schema or one it extends.",
    ),
    "E0203": ("unknown type", "A type name that is no builtin type, alias or schema in scope."),
    "E0204": (
        "duplicate definition",
        "Two lets, or a let and a field, share a name in one body; a field is assigned "
        "twice in one body (`db.pool = 5` then `db { pool = 6 }`; merge blocks, `+=` and "
        "`if`/`else` branches are not assignments twice), or by two items of one `for`; "
        "or a declaration is repeated.",
    ),
    "E0205": (
        "reference cycle",
        "A value depends on itself; the message lists every site of the chain.",
    ),
    "E0206": ("not callable", "Only builtins and templates can be called."),
    "E0207": (
        "bad arguments",
        "A builtin or template was called with the wrong number, names or kinds of arguments.",
    ),
    "E0208": (
        "`super` without an inherited value",
        "`super` refers to the value this field had before this definition; there is none here.",
    ),
    "E0301": ("constraint violated", "A value breaks the `where` refinement of its type."),
    "E0302": (
        "type mismatch",
        "A value is not of the declared type. For a literal union (an enum) the help lists "
        'the allowed values, with did-you-mean; for a quoted duration or size (`"20s"`) '
        "it says `write 20s, without quotes`, and for a number without its unit `write 20s`.",
    ),
    "E0303": ("missing required field", "A schema field with no default was never set."),
    "E0304": (
        "check failed",
        "A `check` invariant is false; the message shows the value of each part of the "
        "expression. It points at the assignment, in the failing object, of the field the "
        "check reads that was written last (inside nested blocks: `db { pool = 60 }` -> "
        "`pool = 60`); for `all([... for x in xs])` at the element that failed; for a "
        "schema default at the object, with help naming the field to set.",
    ),
    "E0305": (
        "final field overridden",
        "A field declared `final` may not be changed by an extending module or block.",
    ),
    "E0306": ("required field unset", "`unset` removed a field that the schema requires."),
    "E0401": (
        "missing input",
        "An `input` has no default and nobody set it; pass `--var NAME=VALUE`.",
    ),
    "E0402": (
        "bad input value",
        "A `--var`, `--vars` or environment value cannot be coerced to the input's declared "
        "type. The message shows the value (`<secret>` for a secret input) and the help the "
        "type's rule: its refinement, its allowed values (with did-you-mean), `true` or "
        "`false` for a bool, how a duration or size is written. A `--vars` file holds no "
        "durations or sizes (its strings are not coerced): pass them with `--var`.",
    ),
    "E0403": ("unknown input", "`--var` or `--vars` names an input the module does not declare."),
    "E0501": (
        "evaluation error",
        "An operation failed on the values it was given (division "
        "by zero, a missing key, an index out of range, operands of the wrong kinds).",
    ),
    "E0502": (
        "evaluation limit exceeded",
        "The program exceeded a limit on depth, steps, "
        "collection size or string size; limits turn runaway programs into errors.",
    ),
    "E0503": ("integer overflow", "Integers are 64-bit signed."),
    "E0601": (
        "cannot emit value",
        "The output format cannot express this value (for "
        "example a top-level scalar in INI, or two keys that flatten to one env name).",
    ),
    "E0602": ("cannot write output", "An output file or directory could not be written."),
    "E0603": (
        "bad output declaration",
        "An `output` has an unknown format, two outputs share a file name, or a name "
        "does not stay inside the output directory (an absolute path, or `..` leading "
        'out of it). A substituted name (`"$<stage>-a.json"`) is held to the same rules '
        "once evaluated, at the declaration: it must not be empty or hold a secret, and "
        "two iterations of one `for` must not give one name.",
    ),
    "E0701": ("usage error", "A command-line argument or option is wrong."),
    "E0702": (
        "file not readable",
        "A file given on the command line does not exist, is a directory, or cannot be read.",
    ),
    "E0703": ("bad project file", "`cfl.toml` is not valid TOML or has unknown keys."),
    "E0704": (
        "no targets",
        "A command that works on the project's targets (`build` or `check` of a directory "
        "or with no argument, `impact`, `watch`) found none: `cfl.toml` names no `targets`, "
        "and every `.cfl` file in the directory is imported or extended by another one, so "
        "none is an entry file. Name the files, or set `targets` in `cfl.toml`.",
    ),
    "E0710": (
        "imported value has no CFL type",
        "`cflc import` (or `cflc diff` of a data file) met a TOML or YAML date, time or "
        "timestamp. CFL has no date or time type, and writing it as a string would change "
        "its type silently, so it is refused. Quote the value in the input file to import "
        "it as a string.",
    ),
    "W0801": (
        "near miss of an inherited key",
        "An extending module or block adds a key "
        "that differs by a typo from an inherited one; probably a misspelt override.",
    ),
    "W0802": (
        "a field hides an enclosing binding",
        "A bare name finds a field of an inner object while an enclosing template "
        "parameter, `for` variable, let or input has the same name, so the field "
        "silently captures it. Write `outer.NAME` for the enclosing binding (it passes "
        "over the fields of the current object) or `self.NAME` for the field, or rename "
        "one of them. A field that copies what it hides (`name = name`) is not reported.",
    ),
    "E1101": (
        "cannot decrypt secret",
        'A `secret("cfl:v1:...")` value needs its file\'s data '
        "key, and no identity given opens it. The notes list the recipients it is "
        "encrypted for; pass `--identity FILE` or set `CFL_AGE_IDENTITY_FILE` to one of "
        "their keys. See docs/secrets.md.",
    ),
    "E1102": (
        "encrypted secret is malformed or altered",
        "The value, or the file's "
        "`# cfl-secrets:` header, does not read or does not authenticate: it was "
        "edited, truncated, moved from another field or copied from another file (or "
        "from before a rotation). Restore it from version control, or write the value "
        "in plain text and run `cflc secrets encrypt`.",
    ),
    "E1103": (
        "secrets are not set up",
        "An identity file cannot be read or holds no age key, "
        "a recipient is not an `age1...` key, or no recipients are configured; run "
        "`cflc secrets init`.",
    ),
    "W1104": (
        "secret written in plain text",
        "A value that ends up in a `secret` field is a "
        "plain string in the source. Run `cflc secrets encrypt FILE`, or pass "
        "`--allow-plaintext-secrets` where plain text is intended (tests, examples).",
    ),
    "E1105": ("secret written in plain text (--strict)", "As W1104, made an error by `--strict`."),
    "E1201": (
        "not a git repository",
        "`FILE@REV`, `cflc history` and `cflc impact` read "
        "git history, and the file (or directory) is not inside a git working tree. Run "
        "the command inside the repository that holds the configuration.",
    ),
    "E1202": (
        "unknown revision",
        "Git does not know the revision after `@` (or given to "
        "`--rev`): a typo, a branch or tag not fetched, a commit missing from a shallow "
        "clone (`git fetch --unshallow`), or a repository with no commits yet.",
    ),
    "E1203": (
        "file absent at revision",
        "The module does not exist in the tree of that "
        "commit (it was added later, deleted, or renamed). `git log -- FILE` shows the "
        "commits that touched it.",
    ),
    "W1204": (
        "history cut short by a shallow clone",
        "The repository is a shallow clone, so "
        "history stops at the oldest fetched commit; older changes are not shown. "
        "Fetch the full history with `git fetch --unshallow`.",
    ),
    "E1205": (
        "git failed",
        "git is not installed, or a git command failed; the message quotes git's own error.",
    ),
    "E0900": ("internal error", "A bug in cflc. Please report it with the input that caused it."),
}


@attrs.frozen
class Note:
    """A secondary message, optionally pointing at a span (``note: ... --> file:l:c``)."""

    message: str
    span: Span | None = None


@attrs.frozen
class Diagnostic:
    """One user-facing message.

    ``span`` is the primary location: where the user must edit. ``label`` is printed
    under the caret. ``data_path`` names the value in the output data (``services.db.port``)
    when there is one.
    """

    code: str
    message: str
    span: Span | None = None
    label: str | None = None
    notes: tuple[Note, ...] = ()
    help: str | None = None
    severity: str = "error"
    data_path: str | None = None
    # The source line holds a secret: renderings give file:line:col but never the text.
    sensitive: bool = False
    # The targets of a project-wide build or check this diagnostic breaks (one message per
    # mistake however many targets share the file, `cfglang.console.merge_targets`).
    targets: tuple[str, ...] = ()

    def sort_key(self) -> tuple[str, int, int, str, str]:
        if self.span is None:
            return ("", 0, 0, self.code, self.message)
        path, start, end = self.span.key()
        return (path, start, end, self.code, self.message)

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    # Where the diagnostic points, read from the span, as `--error-format json` gives it:
    # the file as the user named it, 1-based lines and columns; None without a span.
    @property
    def file(self) -> str | None:
        return self.span.path if self.span is not None else None

    @property
    def line(self) -> int | None:
        return self.span.start_line_col()[0] if self.span is not None else None

    @property
    def column(self) -> int | None:
        return self.span.start_line_col()[1] if self.span is not None else None

    @property
    def end_line(self) -> int | None:
        return self.span.end_line_col()[0] if self.span is not None else None

    @property
    def end_column(self) -> int | None:
        return self.span.end_line_col()[1] if self.span is not None else None


class Diagnostics:
    """A collector shared by the phases of one compilation."""

    def __init__(self) -> None:
        self._items: list[Diagnostic] = []
        self._seen: set[tuple[object, ...]] = set()

    def add(self, diag: Diagnostic) -> None:
        # One mistake, one message: the same code at the same place is reported once.
        # Every missing field of one object shares the object's site, yet each is its own
        # mistake: those are told apart by data path. (Other codes are not: a static and an
        # evaluated report of one error differ only in having a data path.)
        key = (
            diag.code,
            diag.span.key() if diag.span else None,
            diag.message if diag.span is None else "",
            diag.data_path if diag.code == "E0303" else None,
        )
        if key in self._seen:
            return
        self._seen.add(key)
        self._items.append(diag)

    def error(self, code: str, message: str, span: Span | None = None, **kw: object) -> None:
        self.add(Diagnostic(code, message, span, **kw))  # type: ignore[arg-type]

    def warning(self, code: str, message: str, span: Span | None = None, **kw: object) -> None:
        self.add(Diagnostic(code, message, span, severity="warning", **kw))  # type: ignore[arg-type]

    def extend(self, diags: Iterable[Diagnostic]) -> None:
        for d in diags:
            self.add(d)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self._items)

    def sorted(self) -> list[Diagnostic]:
        return sorted(self._items, key=Diagnostic.sort_key)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.sorted())

    def __len__(self) -> int:
        return len(self._items)


# ---- rendering ------------------------------------------------------------------------------

_BOLD, _RED, _YELLOW, _BLUE, _CYAN, _RESET = (
    "\x1b[1m",
    "\x1b[31m",
    "\x1b[33m",
    "\x1b[34m",
    "\x1b[36m",
    "\x1b[0m",
)


def render_human(diag: Diagnostic, *, color: bool = False) -> str:
    """rustc-style rendering: header, location, source line with carets, notes, help."""

    def c(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    sev_color = _RED if diag.is_error else _YELLOW
    out = [c(_BOLD + sev_color, f"{diag.severity}[{diag.code}]") + c(_BOLD, f": {diag.message}")]
    if diag.span is not None and diag.sensitive:
        line, col = diag.span.start_line_col()
        out.append(c(_BLUE, " --> ") + f"{diag.span.path}:{line}:{col}")
    elif diag.span is not None:
        out.extend(_snippet(diag.span, diag.label, color=color))
        if diag.notes or diag.help or diag.targets:
            gutter = " " * len(str(diag.span.start_line_col()[0]))
            out.append(c(_BLUE, f"{gutter} |"))
    elif diag.label:
        out.append(f"   = {diag.label}")
    width = len(str(diag.span.start_line_col()[0])) if diag.span is not None else 1
    for note in diag.notes:
        out.append(c(_BOLD + _CYAN, "note") + f": {note.message}")
        if note.span is not None:
            line, col = note.span.start_line_col()
            out.append(c(_BLUE, " " * width + "--> ") + f"{note.span.path}:{line}:{col}")
    if diag.targets:
        out.append(c(_BOLD + _CYAN, "note") + f": {targets_note(diag)}")
    if diag.help:
        out.append(c(_BOLD + _CYAN, "help") + f": {diag.help}")
    # A blank line separates diagnostics, as rustc does.
    return "\n".join(out) + "\n\n"


def targets_note(diag: Diagnostic) -> str:
    """The note naming the targets of a project-wide build a diagnostic concerns."""
    verb = "breaks" if diag.is_error else "in"
    n = len(diag.targets)
    if n == 1:
        return f"{verb} target {diag.targets[0]}"
    return f"{verb} {n} targets: {', '.join(diag.targets)}"


def _snippet(span: Span, label: str | None, *, color: bool) -> list[str]:
    line, col = span.start_line_col()
    end_line, end_col = span.end_line_col()
    src = span.source.line_text(line)
    gutter = " " * len(str(line))
    blue = (lambda t: f"{_BLUE}{t}{_RESET}") if color else (lambda t: t)
    if end_line != line:
        end_col = len(src) + 1
    width = max(1, end_col - col)
    caret = " " * (col - 1) + "^" * width
    if color:
        caret = f"{_RED}{caret}{_RESET}"
    lines = [
        blue(f"{gutter}--> ") + f"{span.path}:{line}:{col}",
        blue(f"{gutter} |"),
        blue(f"{line} | ") + src.replace("\t", " "),
        blue(f"{gutter} | ") + caret + (f" {label}" if label else ""),
    ]
    return lines


def to_json(diag: Diagnostic) -> dict[str, object]:
    """The machine-readable form; one JSON object per diagnostic."""
    obj: dict[str, object] = {
        "code": diag.code,
        "severity": diag.severity,
        "message": diag.message,
        "file": None,
        "line": None,
        "column": None,
        "end_line": None,
        "end_column": None,
    }
    if diag.span is not None:
        line, col = diag.span.start_line_col()
        eline, ecol = diag.span.end_line_col()
        obj.update(file=diag.span.path, line=line, column=col, end_line=eline, end_column=ecol)
    if diag.label:
        obj["label"] = diag.label
    notes = []
    for note in diag.notes:
        n: dict[str, object] = {"message": note.message}
        if note.span is not None:
            line, col = note.span.start_line_col()
            n.update(file=note.span.path, line=line, column=col)
        notes.append(n)
    obj["notes"] = notes
    if diag.help:
        obj["help"] = diag.help
    if diag.data_path:
        obj["path"] = diag.data_path
    if diag.targets:
        obj["targets"] = list(diag.targets)
    return obj


def render_json(diag: Diagnostic) -> str:
    return json.dumps(to_json(diag), ensure_ascii=False, sort_keys=False)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """The nearest candidate by edit distance, if it is near enough to be a typo."""
    best: str | None = None
    best_d = 10**9
    for cand in sorted(set(candidates)):
        if cand == name:
            continue
        d = edit_distance(name, cand)
        if d < best_d:
            best, best_d = cand, d
    if best is None:
        return None
    limit = max(1, min(3, len(name) // 3 + (1 if len(name) > 3 else 0)))
    return best if best_d <= limit else None


def edit_distance(a: str, b: str) -> int:
    """Damerau–Levenshtein (optimal string alignment) distance."""
    if abs(len(a) - len(b)) > 3:
        return 4 + abs(len(a) - len(b))
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def errors_markdown() -> str:
    """docs/errors.md, generated from the catalogue."""
    out = [
        "# Diagnostic codes",
        "",
        "Generated from `cfglang/diagnostics.py` (`python -m cfglang.diagnostics`).",
        "",
    ]
    for code, (title, text) in CATALOGUE.items():
        out += [f"## {code}: {title}", "", text, ""]
    return "\n".join(out)


if __name__ == "__main__":  # pragma: no cover
    print(errors_markdown(), end="")
