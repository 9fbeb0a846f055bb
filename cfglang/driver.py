"""The driver: runs the phases of one build in order, and nothing else does.

    request -> workspace (loader, root, overlay) -> Program -> evaluation -> outputs

`run` takes a `BuildRequest` (everything a build depends on, as one frozen object) and
returns a `BuildResult`: the public `Compilation` plus what tools built on a build need
(the files read, the environment variables consulted, the program and the evaluation).
`run_cached` puts the content-addressed build cache (`cfglang.cache`) in front of `run`.

The `Program` (`cfglang.semantic.program`) is the part of a build that depends only on
source texts. `run` takes it from `PROGRAMS`, an in-process cache of programs checked
against the texts before each use, so a second build of unchanged sources with other
inputs (another `--var`, another environment) does not parse, resolve or plan again.
The evaluation is then a function of (program, inputs, secrets capability): an
`Evaluator` built from those three, touching nothing the program or another evaluation
holds.

Errors found after evaluation point at the line that set the value: a `Compilation`
keeps where each field of its data was defined (`Provenance`, collected while the data
is materialised), so an output format that cannot hold a value is reported at its
definition without compiling again.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from cfglang import cache, datapath, worker
from cfglang.datacheck import check_data
from cfglang.diagnostics import Diagnostic, Diagnostics, Note, did_you_mean
from cfglang.emit import FORMATS, EmitError, emit, format_for_filename
from cfglang.eval.constraints import dotted
from cfglang.eval.evaluate import EvalError, Evaluator, Limits, ProfilingEvaluator, _Propagate
from cfglang.eval.inputs import Given
from cfglang.eval.materialise import Keeping, SizeBudget, SpanTable, materialize
from cfglang.eval.values import BOTTOM
from cfglang.secrets.edit import plaintext_sites, report_plaintext
from cfglang.secrets.runtime import SecretContext
from cfglang.semantic.program import Program
from cfglang.semantic.programs import PROGRAMS as PROGRAMS
from cfglang.semantic.programs import ProgramCache as ProgramCache
from cfglang.semantic.programs import load_program as load_program
from cfglang.semantic.programs import program_for as program_for
from cfglang.semantic.programs import workspace
from cfglang.semantic.resolve import (
    normalise_output_name,
    output_name_error,
    output_name_problem,
)
from cfglang.semantic.typecheck import typecheck
from cfglang.source import SourceFile, Span
from cfglang.syntax import ast
from cfglang.syntax.parser import parse_expression
from cfglang.values import Secret

# ---- results ----------------------------------------------------------------------------------


@attrs.define
class Output:
    """A named output (`output "billing.json" = ...`): file name, format and text."""

    name: str
    format: str
    text: str
    secret: bool = False  # the output holds a decrypted secret (written with mode 0600)


@attrs.define
class Profile:
    """Where a compilation spent its time (``cflc build --profile``)."""

    phases: dict[str, float] = attrs.Factory(dict)
    files: dict[str, float] = attrs.Factory(dict)
    parsed: list[str] = attrs.Factory(list)  # files actually parsed (parse-cache misses)
    # (self seconds, "file:line", field name), slowest first
    sites: list[tuple[float, str, str]] = attrs.Factory(list)


@attrs.define
class Compilation:
    """The result of `compile`: data (None on errors), outputs, diagnostics.

    ``data`` is read-only: a value the program shares (`b = a`) is one dict or list in it,
    built once (see `cfglang.eval.constraints.SizeBudget`); `Config.to_dict` copies it.
    """

    data: dict[str, Any] | None
    diagnostics: list[Diagnostic]
    outputs: list[Output] = attrs.Factory(list)
    files: list[str] = attrs.Factory(list)
    from_cache: bool = False
    profile: Profile | None = None
    # Where each field of ``data`` was defined, for `definition_span`; not pickled (the
    # build cache keeps no provenance; see __getstate__).
    _provenance: Provenance | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)

    def definition_span(self, data_path: str) -> Span | None:
        """The span of the definition that set the value at ``data_path`` (None when not
        known: no such path, or a result served from the build cache)."""
        return self._provenance.definition_span(data_path) if self._provenance else None

    def __getstate__(self) -> dict[str, Any]:
        # The build cache stores results; provenance is keyed by the ids of this
        # process's dicts, meaningless once unpickled.
        state = {a.name: getattr(self, a.name) for a in attrs.fields(type(self))}
        state["_provenance"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for a in attrs.fields(type(self)):
            object.__setattr__(self, a.name, state.get(a.name, a.default))


class Provenance:
    """Where the values of one build's data were defined: for each object of the data (a
    plain dict, by id), the span of the definition that set each field (the top of its
    definition stack, as `cflc explain` reports it). Collected while the document is
    materialised (`cfglang.eval.constraints.materialize`), so nothing of the evaluation
    is kept: a `Compilation` a caller holds does not hold its evaluation."""

    __slots__ = ("_data", "_spans")

    def __init__(self, data: Any, spans: SpanTable) -> None:
        self._data = data  # keeps every dict of ``spans`` alive, so the ids stay theirs
        self._spans = spans

    def definition_span(self, data_path: str) -> Span | None:
        try:
            path = datapath.parse(data_path)
        except datapath.DataPathError:
            return None
        if not path:
            return None
        cur, span = self._data, None
        for seg in path:
            if isinstance(cur, dict) and isinstance(seg, str) and seg in cur:
                at = self._spans.get(id(cur), ())
                # The table holds the spans in the dict's key order.
                i = next((n for n, k in enumerate(cur) if k == seg), len(at))
                span = at[i] if i < len(at) else None
                cur = cur[seg]
            elif isinstance(cur, list) and isinstance(seg, int) and -len(cur) <= seg < len(cur):
                cur = cur[seg]  # provenance stays with the list field that holds it
            else:
                return None
        return span


# ---- requests ---------------------------------------------------------------------------------


@attrs.frozen
class SecretOptions:
    """How a build treats secrets: identity files, whether to decrypt (`cflc check` and
    `explain` only validate), and the plain-text policy (``warn``, ``error``, ``allow``)."""

    identity: tuple[str, ...] = ()
    decrypt: bool = True
    plaintext: str = "warn"


def _pairs(items: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in items)


def _strs(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


@attrs.frozen
class BuildRequest:
    """Everything one build depends on (`cfglang.api.compile` documents each field).

    ``record`` keeps the evaluation and the texts of every file read in the result (for
    sessions, `explain` and the build cache).
    """

    path: str | None = None
    text: str | None = None
    filename: str = "<string>"
    vars: Mapping[str, Any] = attrs.field(factory=dict)
    cli_vars: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_pairs)
    var_files: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    env: Mapping[str, str] = attrs.field(factory=lambda: os.environ)
    root: str | None = None
    allow_paths: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    emit_outputs: bool = True
    expr: str | None = None
    env_prefix: str = ""
    use_cache: bool = False
    profile: bool = False
    overlay: Mapping[str, str] | None = None
    secrets: SecretOptions = SecretOptions()
    loader: Any = None
    limits: Limits | None = None
    record: bool = False

    @property
    def cacheable(self) -> bool:
        """Whether the build cache may answer: a file on disk with command-line inputs
        only (Python values, overlays and other loaders are not part of its key)."""
        return (
            self.use_cache
            and self.text is None
            and not self.vars
            and self.path is not None
            and not self.overlay
            and self.loader is None
            and self.limits is None  # the build cache is keyed for the default limits
        )


@attrs.define
class BuildResult:
    """A `Compilation` and the state of the build behind it."""

    compilation: Compilation
    program: Program | None = None
    # Every file read (real path -> text): the modules, and the --vars files when recorded.
    texts: dict[str, str] = attrs.Factory(dict)
    env_read: dict[str, str | None] = attrs.Factory(dict)
    evaluator: Any = None
    document: Any = None

    @property
    def entry(self) -> Any:
        return self.program.entry if self.program is not None else None


# ---- programs ---------------------------------------------------------------------------------


# `ProgramCache`, `PROGRAMS` and `load_program` live in `cfglang.semantic.programs` (the
# declaration tools and the language server share the cache without loading the
# evaluator); re-exported here, where builds have always found them.


# ---- the build --------------------------------------------------------------------------------


def run(req: BuildRequest) -> BuildResult:
    """One build: load the program, evaluate it with the request's inputs, check the
    document and render the named outputs. Every user error is a diagnostic."""
    prof = Profile() if req.profile else None
    clock = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        if prof is not None:
            prof.phases[name] = prof.phases.get(name, 0.0) + now - clock
        clock = now

    diags = Diagnostics()
    path, text = req.path, req.text
    entry_path = path if path is not None else os.path.abspath(req.filename)
    loader, text, root = workspace(
        entry_path, text=text, root=req.root, overlay=req.overlay, loader=req.loader
    )
    limits = req.limits or Limits()
    program, reused = load_program(
        loader,
        entry_path,
        text=text,
        root=root,
        allow_paths=tuple(os.path.abspath(p) for p in req.allow_paths),
        use_cache=req.use_cache,
        max_depth=limits.max_module_depth,
        # Another loader (a git revision) reads from elsewhere: its texts are not checked.
        reuse=req.loader is None,
    )
    diags.extend(program.diagnostics)
    files = program.files
    if prof is not None:
        prof.files = dict(program.parse_times)
        prof.parsed = [] if reused else list(program.parsed)
    phase("parse and resolve")
    out = BuildResult(Compilation(None, [], files=files), program)
    if req.record:
        out.texts = dict(program.texts)
        for vf in req.var_files:
            try:
                with open(vf, encoding="utf-8", newline="") as f:
                    out.texts[os.path.abspath(vf)] = f.read()
            except (OSError, UnicodeDecodeError):
                pass
    if not program.runnable:
        out.compilation.diagnostics = diags.sorted()
        return out
    given = _given(program, req, diags)

    secrets = SecretContext(req.secrets.identity, req.env, req.secrets.decrypt, program=program)
    cls = ProfilingEvaluator if prof is not None else Evaluator
    ev = cls(diags, limits, env=req.env, program=program, inputs=given, secrets=secrets)
    doc = ev.main_doc
    assert doc is not None

    _static_checks(program, ev, diags, limits, reused)
    ev.bind_schemas()
    phase("inputs and static checks")
    out.env_read = dict(ev.env_read)
    if req.record:
        out.evaluator, out.document = ev, doc
    result = out.compilation
    # Static findings do not stop evaluation: every independent error is reported, and
    # the collector drops the runtime repeats of static ones (same code, same span).
    # A failed import does (see `Program.import_failed`).
    if any(d.code.startswith("E04") for d in diags) or program.import_failed:
        result.diagnostics = diags.sorted()
        return out
    if req.expr is not None:
        data = _eval_expr(ev, program, req.expr, diags)
        result.data = None if diags.has_errors else data
        result.diagnostics = diags.sorted()
        return out
    spans: SpanTable = {}
    keeping = _keeping(program, req, limits) if reused and prof is None and not req.record else None
    budget = SizeBudget(limits, spans, keeping)
    data = materialize(ev, doc, budget=budget)
    if keeping is not None and keeping.fill and not diags:
        # Kept only from an evaluation that reported nothing: a kept field is not
        # evaluated again, so it must have nothing to say.
        # One tree per program, the latest settings' (each holds a copy of most of the
        # document): a caller alternating limits records again rather than piling up.
        program.kept.clear()
        program.kept[(limits, req.secrets)] = (keeping.root, keeping.spans)
    report = req.secrets.plaintext != "allow"
    if (report or req.use_cache) and budget.secret:
        assert program.entry is not None
        found = plaintext_sites(program.entry, data)  # one scan: the report and the cache
        if report:
            report_plaintext(found, diags, strict=req.secrets.plaintext == "error")
        if req.use_cache:
            _forget_plaintext_trees(found)
    phase("evaluate and check")
    outputs: list[Output] = []
    if req.emit_outputs and not diags.has_errors:
        outputs = _outputs(ev, program, diags, req.env_prefix)
        phase("named outputs")
    if prof is not None and isinstance(ev, ProfilingEvaluator):
        prof.sites = ev.slowest(15)
    result.profile = prof
    result.diagnostics = diags.sorted()
    if not diags.has_errors:
        result.data, result.outputs = data, outputs
        result._provenance = Provenance(data, spans)
    return out


def _static_checks(
    program: Program, ev: Evaluator, diags: Diagnostics, limits: Limits, reused: bool
) -> None:
    """Type-check the program's modules into ``diags``. What a reused program's check
    finds is kept when no refinement reads an input (`Dependence.static_checks_fixed`):
    the literals and types it checks are the program's own, so it finds the same."""
    fixed = reused and program.input_dependence().static_checks_fixed
    found = program.static_findings.get(limits) if fixed else None
    if found is None:
        mine = Diagnostics()
        # The literal checks report through the evaluator's collector: pointed at this
        # one for the check, so that everything the check finds is in ``found``.
        ev.diags = mine
        try:
            typecheck(list(program.modules.values()), ev.types, mine, ev.check_literal)
        finally:
            ev.diags = diags
        found = tuple(mine)
        if fixed:
            program.static_findings.clear()  # the latest limits' only, as for `kept`
            program.static_findings[limits] = found
    diags.extend(found)


def _keeping(program: Program, req: BuildRequest, limits: Limits) -> Keeping | None:
    """How the document of a reused program takes the data of its input-independent
    fields from the previous evaluation (`Keeping`): used if one was kept under these
    settings, else recorded; None when the program's keys may depend on the inputs."""
    dep = program.input_dependence()
    if not dep.usable:
        return None
    return Keeping(dep.dirty, dep.unstable, program.kept.get((limits, req.secrets)))


def run_cached(req: BuildRequest) -> Compilation:
    """A build through the build cache: a hit re-hashes the recorded inputs and returns
    the stored result; a miss builds (with the parse cache) and stores the result."""
    assert req.path is not None
    key = cache.digest(
        "build",
        os.path.abspath(req.path),
        os.path.abspath(req.root) if req.root else "",
        json.dumps(
            [
                [list(v) for v in req.cli_vars],
                [os.path.abspath(v) for v in req.var_files],
                [os.path.abspath(a) for a in req.allow_paths],
                req.emit_outputs,
                req.expr,
                req.env_prefix,
            ]
        ),
    )
    start = time.perf_counter()
    hit = cache.get("build", key)
    if isinstance(hit, dict) and _still_valid(hit, req.env):
        result: Compilation = hit["result"]
        result.from_cache = True
        if req.profile:
            result.profile = Profile({"build cache hit": time.perf_counter() - start})
        return result
    built = run(attrs.evolve(req, use_cache=True, record=True))
    result = built.compilation
    if result.ok and not has_secret(result.data) and not any(o.secret for o in result.outputs):
        deps = [(p, cache.file_hash(t)) for p, t in built.texts.items()]
        cache.put("build", key, {"deps": deps, "env": built.env_read, "result": result})
    return result


def _forget_plaintext_trees(found: Any) -> None:
    """Drop the parse cache entries of the modules of ``found`` (module, site): they hold a
    plain-text literal that turned out to be a secret (through a schema: the parser alone
    could not tell, see `cfglang.semantic.resolve._plaintext_secret`)."""
    for src in {id(m.source): m.source for m, _ in found}.values():
        cache.forget("parse", cache.parse_key(src.path, src.real_path, src.text))


def _still_valid(entry: dict[str, Any], env: Mapping[str, str]) -> bool:
    try:
        for name, value in entry["env"].items():
            if env.get(name) != value:
                return False
        for path, digest in entry["deps"]:
            with open(path, encoding="utf-8", newline="") as f:
                if cache.file_hash(f.read()) != digest:
                    return False
    except (OSError, UnicodeDecodeError, KeyError, TypeError, ValueError):
        return False
    return True


def has_secret(data: Any) -> bool:
    """Whether plain ``data`` holds a `Secret` anywhere."""
    # Iterative with exact-class tests: this walks every value of every build (the
    # secrets policy, the build cache and the output writer all ask).
    todo = [data]
    pop, extend = todo.pop, todo.extend
    while todo:
        x = pop()
        c = x.__class__
        if c is dict:
            extend(x.values())
        elif c is list:
            extend(x)
        elif c not in _PLAIN and isinstance(x, Secret):
            return True
    return False


_PLAIN = frozenset({str, int, float, bool, type(None)})


# ---- inputs -----------------------------------------------------------------------------------


def _given(program: Program, req: BuildRequest, diags: Diagnostics) -> Given:
    """The inputs set from outside (`--vars` files, ``vars``, `--var`), by precedence; a
    name that is not an input of the program is an error (E0403)."""
    file_values: dict[str, tuple[Any, str]] = {}
    for vf in req.var_files:
        data = _read_vars_file(vf, diags)
        if data is None:
            continue
        for k, v in data.items():
            file_values[k] = (v, vf)
    given = Given.of(file_values, req.vars, req.cli_vars)
    decls = program.inputs
    for k, (_, src, _) in given.values.items():
        if k not in decls:
            best = did_you_mean(k, decls)
            diags.error(
                "E0403",
                f"`{k}` is not an input of this module ({src})",
                None,
                help=f"did you mean `{best}`?"
                if best
                else (
                    "declared inputs: " + ", ".join(sorted(decls))
                    if decls
                    else "this module declares no inputs"
                ),
            )
    return given


def _read_vars_file(path: str, diags: Diagnostics) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        diags.error("E0702", f"cannot read --vars file `{path}`: {getattr(e, 'strerror', e)}")
        return None
    src = SourceFile(path, text)
    try:
        if path.endswith(".json"):
            data = json.loads(text)
        elif path.endswith((".yaml", ".yml")):
            import yaml  # lazy: only a YAML --vars file needs PyYAML

            data = yaml.safe_load(text)
        elif path.endswith(".cfl"):
            sub = run(BuildRequest(path, filename=path, emit_outputs=False)).compilation
            if not sub.ok:
                diags.extend(sub.diagnostics)
                return None
            data = sub.data
        else:
            diags.error("E0701", f"--vars file `{path}` must be .json, .yaml, .yml or .cfl")
            return None
        if not path.endswith(".cfl"):
            check_data(data, text)  # a YAML alias bomb, nesting too deep, lone surrogates
    except Exception as e:
        line = (
            getattr(e, "lineno", None) or getattr(getattr(e, "problem_mark", None), "line", -1) + 1
        )
        pos = src.line_starts()[line - 1] if line and 0 < line <= len(src.line_starts()) else 0
        diags.error(
            "E0702", f"`{path}` is not valid: {str(e).splitlines()[0]}", Span(src, pos, pos)
        )
        return None
    if not isinstance(data, dict):
        diags.error(
            "E0702", f"--vars file `{path}` must hold an object of input values", Span(src, 0, 0)
        )
        return None
    return data


# ---- after evaluation -------------------------------------------------------------------------


def _eval_expr(ev: Any, program: Program, expr: str, diags: Diagnostics) -> dict[str, Any] | None:
    src = SourceFile("<expr>", expr)
    tree, errs = parse_expression(src)
    diags.extend(errs)
    if tree is None or errs:
        return None
    try:
        value = ev.ev(tree, ev.module_scope(program.entry))
    except EvalError as e:
        diags.add(e.diag)
        return None
    except _Propagate:
        return None
    return {"value": materialize(ev, value, site=tree.span)}


def _outputs(ev: Any, program: Program, diags: Diagnostics, env_prefix: str) -> list[Output]:
    """The named outputs of the entry's chain, base first, each module's in source order
    (one inside a module-level `for` once per iteration, inside an `if` when it holds)."""
    assert program.entry is not None
    out: list[Output] = []
    budget = SizeBudget(ev.limits)  # for all the outputs together: what one build writes
    seen: dict[str, tuple[ast.OutputDecl, Span]] = {}
    for m in program.entry.chain():
        for decl, scope in ev.output_sites(m):
            name = _output_name(ev, decl, scope, diags)
            if name is None:
                continue
            fmt = decl.format or format_for_filename(name)
            if fmt is None or fmt not in FORMATS:
                diags.error(
                    "E0603",
                    f"cannot tell the format of output `{name}`",
                    decl.name_span,
                    help="name it .json/.yaml/.toml/.ini/.env/"
                    '.properties, or write `output "name": json = ...`',
                )
                continue
            # Names that leave the output directory were rejected (by the resolver, or
            # above once evaluated); `./a.json` and `a.json` are one file, so duplicates
            # are found by the normal form.
            name = normalise_output_name(name)
            if name in seen:
                first, first_span = seen[name]
                again = first is decl  # one declaration in a loop, two iterations
                diags.error(
                    "E0603",
                    f"two outputs are named `{name}`",
                    decl.name_span,
                    label="an earlier iteration gave this name too" if again else None,
                    notes=(Note("first declared here", first_span),),
                    # A plain name in a loop: the likely fix. A substituted one already
                    # uses them, and the label says the values repeat.
                    help="use the loop's variables in the name, so that each iteration "
                    'writes a file of its own (`"$<k>.json"`)'
                    if again and decl.name.is_plain
                    else None,
                )
                continue
            seen[name] = (decl, decl.name_span)
            try:
                value = ev.ev(decl.value, scope)
            except EvalError as e:
                diags.add(e.diag)
                continue
            except _Propagate:
                continue
            data = materialize(ev, value, budget=budget, site=decl.value.span)
            if _has_bottom(data, BOTTOM) or diags.has_errors:
                continue
            try:
                out.append(
                    Output(
                        name,
                        fmt,
                        emit(data, fmt, env_prefix=env_prefix),
                        secret=has_secret(data),
                    )
                )
            except EmitError as e:
                diags.error(
                    "E0601",
                    f"cannot write {fmt}: {e.message}",
                    decl.value.span,
                    label=f"at `{dotted(e.path)}`",
                    data_path=dotted(e.path),
                )
    return out


def _output_name(ev: Any, decl: ast.OutputDecl, scope: Any, diags: Diagnostics) -> str | None:
    """The file name of an output, or None (reported). A plain name was checked by the
    resolver; a substituted one (`"$<k>.json"`) is evaluated in the output's scope and
    held to the same rules: a non-empty relative path inside the output directory."""
    if decl.name.is_plain:
        return decl.name.text
    try:
        name = ev.ev(decl.name, scope)
    except EvalError as e:
        diags.add(e.diag)
        return None
    except _Propagate:
        return None
    if isinstance(name, Secret):
        # A file name is printed by every command and listed by every directory: it
        # can never hold a secret.
        diags.error(
            "E0603",
            "an output name cannot be computed from a secret",
            decl.name_span,
            label="this name substitutes a secret",
        )
        return None
    if not isinstance(name, str):
        return None
    bad = output_name_problem(name)
    if bad is not None:
        output_name_error(diags, decl, name, bad, evaluated=True)
        return None
    return name


def _has_bottom(data: Any, bottom: Any) -> bool:
    if data is bottom:
        return True
    if isinstance(data, dict):
        return any(_has_bottom(v, bottom) for v in data.values())
    if isinstance(data, list):
        return any(_has_bottom(v, bottom) for v in data)
    return False


# ---- entry points: what cfglang.api re-exports, and what the tools call -------------------


def compile(
    path: str | None = None,
    *,
    text: str | None = None,
    filename: str = "<string>",
    vars: Mapping[str, Any] | None = None,
    cli_vars: Sequence[tuple[str, str]] = (),
    var_files: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    root: str | None = None,
    allow_paths: Sequence[str] = (),
    emit_outputs: bool = True,
    expr: str | None = None,
    env_prefix: str = "",
    use_cache: bool = False,
    profile: bool = False,
    overlay: Mapping[str, str] | None = None,
    identity: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    decrypt_secrets: bool = True,
    plaintext_secrets: str = "warn",
    loader: Any = None,
    limits: Limits | None = None,
) -> Compilation:
    """Compile one module (from ``path`` or ``text``).

    ``vars`` are typed values (Python API); ``cli_vars`` are ``--var`` strings, coerced to
    each input's declared type; ``var_files`` are ``--vars`` files (JSON, YAML or CFL).
    With ``expr``, the result's data is ``{"value": <the expression's value>}``.
    ``use_cache`` enables the parse and build caches (`cfglang.cache`); ``profile``
    records where time went in ``result.profile``. ``overlay`` maps absolute paths to
    text that replaces the file's content on disk (an editor's unsaved buffers).

    Secrets (`cfglang.secrets`): ``identity`` names age identity files (else
    ``CFL_AGE_IDENTITY`` / ``CFL_AGE_IDENTITY_FILE`` in ``env`` are used);
    ``decrypt_secrets=False`` checks encrypted values without decrypting them (`check`);
    ``plaintext_secrets`` is ``warn``, ``error`` or ``allow`` for secrets written in clear.

    Revisions (`cfglang.vcs`): ``path`` may be ``FILE@REV``; the module and everything it
    imports or extends are then read from the git tree at REV. ``loader`` (a
    `cfglang.semantic.resolve.Loader`) reads every module from elsewhere instead of disk.

    ``limits`` (`cfglang.eval.evaluate.Limits`) replaces the default evaluation limits
    (steps, depth, collection, string and emitted sizes; docs/language.md, Limits).
    """
    if loader is None and path is not None and "@" in path:
        from cfglang.vcs import GitError, loader_for  # only when a path names a revision

        try:
            path, loader, root = loader_for(path, root)
        except GitError as e:
            return Compilation(None, [e.diagnostic])
    ids = (
        ()
        if identity is None
        else (os.fspath(identity),)
        if isinstance(identity, (str, os.PathLike))
        else tuple(os.fspath(i) for i in identity)
    )
    req = BuildRequest(
        path,
        text,
        filename,
        vars or {},
        cli_vars,
        var_files,
        env if env is not None else os.environ,
        root,
        allow_paths,
        emit_outputs,
        expr,
        env_prefix,
        use_cache,
        profile,
        overlay,
        SecretOptions(ids, decrypt_secrets, plaintext_secrets),
        loader,
        limits,
    )

    def work() -> Compilation:
        return run_cached(req) if req.cacheable else run(req).compilation

    result = guarded(work)
    return result if isinstance(result, Compilation) else Compilation(None, [result])


def guarded(work: Any) -> Any:
    """Run ``work`` on the shared big-stack pool (`cfglang.worker`); a bug becomes an
    E0900 diagnostic.

    Evaluation recurses once per nested value, so deep (but bounded) programs would hit
    Python's small default stack before CFL's own depth limit could report them. No
    process-wide setting is changed here: the pool made its threads once.
    """
    box: dict[str, Any] = {}
    try:
        box["result"] = worker.run(work)
    except BaseException as e:  # a bug: report it, never a traceback to the user
        box["error"] = e
    if "error" in box:
        err = box["error"]
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise err
        import traceback  # only for an internal error's report

        detail = "".join(traceback.format_exception_only(type(err), err)).strip()
        where = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
        loc = f" at {os.path.basename(where.filename)}:{where.lineno}" if where else ""
        return Diagnostic(
            "E0900",
            f"internal error: {detail}{loc}",
            help="this is a bug in cflc; please report it with the input that caused it",
        )
    return box["result"]


def compile_recorded(
    path: str,
    *,
    vars: Mapping[str, Any] | None = None,
    cli_vars: Sequence[tuple[str, str]] = (),
    var_files: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    allow_paths: Sequence[str] = (),
    emit_outputs: bool = True,
    env_prefix: str = "",
    overlay: Mapping[str, str] | None = None,
    use_cache: bool = False,
    root: str | None = None,
    identity: Sequence[str] = (),
    decrypt_secrets: bool = True,
    plaintext_secrets: str = "warn",
) -> tuple[Compilation, set[str], BuildResult | None]:
    """Compile ``path`` without the build cache (it would answer without reading
    anything) and keep the evaluation: (result, absolute paths of every file read, the
    `BuildResult`, None when the compile failed inside). ``identity``,
    ``decrypt_secrets`` and ``plaintext_secrets`` are `compile`'s."""
    req = BuildRequest(
        path,
        filename=path,
        vars=vars or {},
        cli_vars=cli_vars,
        var_files=var_files,
        env=env if env is not None else os.environ,
        allow_paths=allow_paths,
        emit_outputs=emit_outputs,
        env_prefix=env_prefix,
        use_cache=use_cache,
        overlay=overlay,
        secrets=SecretOptions(tuple(identity), decrypt_secrets, plaintext_secrets),
        record=True,
        root=root,
    )
    out = guarded(lambda: run(req))
    files = {os.path.abspath(path), *(os.path.abspath(v) for v in var_files)}
    if isinstance(out, Diagnostic):
        return Compilation(None, [out]), files, None
    files.update(os.path.abspath(p) for p in out.texts)
    return out.compilation, files, out


def definition_span(
    path: str,
    data_path: str,
    *,
    cli_vars: Sequence[tuple[str, str]] = (),
    var_files: Sequence[str] = (),
    allow_paths: Sequence[str] = (),
    env_prefix: str = "",
    result: Compilation | None = None,
) -> Span | None:
    """The source span that set the value at ``data_path`` (None if unknown): lets an
    error found after evaluation (an output format that cannot hold a value) point at
    the line to edit.

    ``result`` is the compilation whose data failed: it keeps where each value was
    defined (`Compilation.definition_span`), which answers without compiling again. Only a
    result served from the build cache (it keeps no evaluation) is compiled again, from
    the in-process program when its sources are unchanged."""
    if result is not None and not result.from_cache:
        return result.definition_span(data_path)
    again, _, _ = compile_recorded(
        path,
        cli_vars=cli_vars,
        var_files=var_files,
        allow_paths=allow_paths,
        emit_outputs=False,
        env_prefix=env_prefix,
    )
    return again.definition_span(data_path) if data_path else None
