"""The one front door: the CLI, the language server and the server all call this module.

`compile` runs the phases in order — resolve (load and parse the module graph), evaluate
(late-bound merge), materialise (checks on whole objects) and emit — collecting every
diagnostic. `load`/`loads` wrap it for Python users and raise `ConfigError`; `dumps`
renders plain data or a `Config` in any output format.

Evaluation runs on a worker thread with a large stack, so deeply nested (but bounded)
programs hit CFL's own depth limit with a clean diagnostic rather than Python's
recursion limit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs

from cfglang.diagnostics import Diagnostic, Diagnostics, Note
from cfglang.project import find_root as find_root  # the project root, re-exported
from cfglang.source import SourceFile, Span
from cfglang.values import Duration, Secret, Size

if TYPE_CHECKING:
    from cfglang.eval.evaluate import Limits

__all__ = ["Compilation", "Config", "ConfigError", "compile", "dumps", "load", "loads"]


class ConfigError(Exception):
    """Raised by `load`/`loads` when the configuration has errors."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        from cfglang.diagnostics import render_human

        text = "".join(render_human(d) for d in self.diagnostics if d.is_error)
        super().__init__(text.rstrip() or "configuration error")


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

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


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
        from cfglang.vcs import GitError, loader_for

        try:
            path, loader, root = loader_for(path, root)
        except GitError as e:
            return Compilation(None, [e.diagnostic])
    ids = (
        []
        if identity is None
        else [os.fspath(identity)]
        if isinstance(identity, (str, os.PathLike))
        else [os.fspath(i) for i in identity]
    )
    secrets = {"identity": tuple(ids), "decrypt": decrypt_secrets, "plaintext": plaintext_secrets}

    def work() -> Compilation:
        args = (
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
        )
        if (
            use_cache
            and text is None
            and not vars
            and path is not None
            and not overlay
            and loader is None
            and limits is None  # the build cache is keyed for the default limits
        ):
            return _compile_cached(args, profile, secrets)
        return _compile(
            *args,
            use_cache=use_cache,
            profile=profile,
            overlay=overlay,
            secrets=secrets,
            loader=loader,
            limits=limits,
        )

    result = _run_guarded(work)
    return result if isinstance(result, Compilation) else Compilation(None, [result])


def _run_guarded(work: Any) -> Any:
    """Run ``work`` on the shared big-stack pool (`cfglang.worker`); a bug becomes an
    E0900 diagnostic.

    Evaluation recurses once per nested value, so deep (but bounded) programs would hit
    Python's small default stack before CFL's own depth limit could report them. No
    process-wide setting is changed here: the pool made its threads once.
    """
    from cfglang import worker

    box: dict[str, Any] = {}
    try:
        box["result"] = worker.run(work)
    except BaseException as e:  # a bug: report it, never a traceback to the user
        box["error"] = e
    if "error" in box:
        err = box["error"]
        if isinstance(err, (KeyboardInterrupt, SystemExit)):
            raise err
        import traceback

        detail = "".join(traceback.format_exception_only(type(err), err)).strip()
        where = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
        loc = f" at {os.path.basename(where.filename)}:{where.lineno}" if where else ""
        return Diagnostic(
            "E0900",
            f"internal error: {detail}{loc}",
            help="this is a bug in cflc; please report it with the input that caused it",
        )
    return box["result"]


def _compile_cached(
    args: tuple[Any, ...], profile: bool, secrets: Mapping[str, Any] | None = None
) -> Compilation:
    """A build through the build cache: a hit re-hashes the recorded inputs and returns
    the stored result; a miss compiles (with the parse cache) and stores the result."""
    import json

    from cfglang import cache

    (
        path,
        _text,
        _filename,
        _vars,
        cli_vars,
        var_files,
        env,
        root,
        allow_paths,
        emit_outputs,
        expr,
        env_prefix,
    ) = args
    assert path is not None
    entry_path = os.path.abspath(path)
    key = cache.digest(
        "build",
        entry_path,
        os.path.abspath(root) if root else "",
        json.dumps(
            [
                list(cli_vars),
                [os.path.abspath(v) for v in var_files],
                [os.path.abspath(a) for a in allow_paths],
                emit_outputs,
                expr,
                env_prefix,
            ]
        ),
    )
    start = time.perf_counter()
    hit = cache.get("build", key)
    if isinstance(hit, dict) and _still_valid(hit, env):
        result: Compilation = hit["result"]
        result.from_cache = True
        if profile:
            result.profile = Profile({"build cache hit": time.perf_counter() - start})
        return result
    box: dict[str, Any] = {}
    result = _compile(*args, use_cache=True, profile=profile, record=box, secrets=secrets)
    if result.ok and not _has_secret(result.data) and not any(o.secret for o in result.outputs):
        deps = [(p, cache.file_hash(t)) for p, t in box.get("texts", {}).items()]
        cache.put("build", key, {"deps": deps, "env": box.get("env", {}), "result": result})
    return result


def _forget_plaintext_trees(found: Sequence[tuple[Any, Any]]) -> None:
    """Drop the parse cache entries of the modules of ``found`` (module, site): they hold a
    plain-text literal that turned out to be a secret (through a schema: the parser alone
    could not tell, see `cfglang.semantic.resolve._plaintext_secret`)."""
    from cfglang import cache

    for src in {id(m.source): m.source for m, _ in found}.values():
        cache.forget("parse", cache.parse_key(src.path, src.real_path, src.text))


def _still_valid(entry: dict[str, Any], env: Mapping[str, str]) -> bool:
    from cfglang import cache

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


def _has_secret(data: Any) -> bool:
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


def _compile(
    path: str | None,
    text: str | None,
    filename: str,
    vars: Mapping[str, Any],
    cli_vars: Sequence[tuple[str, str]],
    var_files: Sequence[str],
    env: Mapping[str, str],
    root: str | None,
    allow_paths: Sequence[str],
    emit_outputs: bool,
    expr: str | None,
    env_prefix: str,
    *,
    use_cache: bool = False,
    profile: bool = False,
    record: dict[str, Any] | None = None,
    overlay: Mapping[str, str] | None = None,
    secrets: Mapping[str, Any] | None = None,
    loader: Any = None,
    limits: Limits | None = None,
) -> Compilation:
    from cfglang.eval.constraints import materialize
    from cfglang.eval.evaluate import Evaluator, Limits, ProfilingEvaluator
    from cfglang.semantic.resolve import FileLoader, Resolver

    prof = Profile() if profile else None
    clock = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        if prof is not None:
            prof.phases[name] = prof.phases.get(name, 0.0) + now - clock
        clock = now

    diags = Diagnostics()
    entry_path = path if path is not None else os.path.abspath(filename)
    root = os.path.abspath(root) if root else find_root(entry_path)
    loader = loader if loader is not None else FileLoader()
    if overlay:
        from cfglang.semantic.resolve import MemoryLoader

        loader = MemoryLoader({os.path.abspath(k): v for k, v in overlay.items()}, loader)
        if text is None and path is not None and os.path.abspath(path) in loader.files:
            text = loader.files[os.path.abspath(path)]
    limits = limits or Limits()
    resolver = Resolver(
        loader,
        root,
        diags,
        tuple(os.path.abspath(p) for p in allow_paths),
        use_cache=use_cache,
        max_depth=limits.max_module_depth,
    )
    entry = resolver.load_entry(entry_path, text)
    files = sorted(m.source.path for m in resolver.modules.values())
    if prof is not None:
        prof.files = dict(resolver.parse_times)
        prof.parsed = list(resolver.parsed)
    phase("parse and resolve")
    if record is not None:
        record["texts"] = {
            m.source.real_path: m.source.text
            for m in resolver.modules.values()
            if m.source.real_path
        }
        for vf in var_files:
            try:
                with open(vf, encoding="utf-8", newline="") as f:
                    record["texts"][os.path.abspath(vf)] = f.read()
            except (OSError, UnicodeDecodeError):
                pass
    # Syntax errors and a missing base stop here (evaluating would only add follow-on
    # errors); a failed import does not: names from it quietly evaluate to nothing, and
    # independent mistakes elsewhere are still reported.
    broken_chain = entry is not None and any(
        m.extends_decl is not None and m.parent is None for m in entry.chain()
    )
    if entry is None or broken_chain or any(d.code.startswith("E000") for d in diags):
        return Compilation(None, diags.sorted(), files=files)
    from cfglang.semantic.types import TypeResolver

    types = TypeResolver()
    ev = (ProfilingEvaluator if prof is not None else Evaluator)(
        diags, limits, env=env, types=types
    )
    from cfglang.secrets.runtime import SecretContext

    secrets = secrets or {}
    ev.secrets = SecretContext(
        secrets.get("identity", ()),
        env,
        secrets.get("decrypt", True),
        trees=[m.tree for m in resolver.modules.values()],
    )
    # The document first: it binds every module of the extends chain to the entry's
    # document, so input defaults and outputs declared in a base see the child's fields.
    doc = ev.document(entry)
    _setup_inputs(ev, entry, vars, cli_vars, var_files, diags)
    from cfglang.semantic.typecheck import typecheck

    typecheck(list(resolver.modules.values()), types, diags, ev.check_literal)
    ev.bind_schemas()
    phase("inputs and static checks")
    if record is not None:
        record["env"] = dict(ev.env_read)
        record.update(ev=ev, doc=doc, entry=entry)
    # Static findings do not stop evaluation: every independent error is reported, and
    # the collector drops the runtime repeats of static ones (same code, same span).
    if any(d.code.startswith("E04") for d in diags):
        return Compilation(None, diags.sorted(), files=files)
    if expr is not None:
        data = _eval_expr(ev, entry, expr, diags)
        return Compilation(None if diags.has_errors else data, diags.sorted(), files=files)
    data = materialize(ev, doc)
    report = secrets.get("plaintext", "warn") != "allow"
    if (report or use_cache) and _has_secret(data):
        from cfglang.secrets.edit import plaintext_sites, report_plaintext

        found = plaintext_sites(entry, data)  # one scan serves the report and the cache
        if report:
            report_plaintext(found, diags, strict=secrets.get("plaintext") == "error")
        if use_cache:
            _forget_plaintext_trees(found)
    phase("evaluate and check")
    outputs: list[Output] = []
    if emit_outputs and not diags.has_errors:
        outputs = _outputs(ev, entry, diags, env_prefix)
        phase("named outputs")
    if prof is not None and isinstance(ev, ProfilingEvaluator):
        prof.sites = ev.slowest(15)
    if diags.has_errors:
        return Compilation(None, diags.sorted(), files=files, profile=prof)
    return Compilation(data, diags.sorted(), outputs, files, profile=prof)


def _eval_expr(ev: Any, entry: Any, expr: str, diags: Diagnostics) -> dict[str, Any] | None:
    from cfglang.eval.constraints import materialize
    from cfglang.eval.evaluate import EvalError, _Propagate
    from cfglang.syntax.parser import parse_expression

    src = SourceFile("<expr>", expr)
    tree, errs = parse_expression(src)
    diags.extend(errs)
    if tree is None or errs:
        return None
    try:
        value = ev.ev(tree, ev.module_scope(entry))
    except EvalError as e:
        diags.add(e.diag)
        return None
    except _Propagate:
        return None
    return {"value": materialize(ev, value, site=tree.span)}


def _setup_inputs(
    ev: Any,
    entry: Any,
    vars: Mapping[str, Any],
    cli_vars: Sequence[tuple[str, str]],
    var_files: Sequence[str],
    diags: Diagnostics,
) -> None:
    """Register every input with a thunk computing its value by precedence (§4)."""
    from cfglang.eval.evaluate import err

    decls: dict[str, list[tuple[Any, Any]]] = {}
    for m in entry.chain():
        for name, d in m.inputs.items():
            decls.setdefault(name, []).append((m, d))
    file_values: dict[str, tuple[Any, str]] = {}
    for vf in var_files:
        data = _read_vars_file(vf, diags)
        if data is None:
            continue
        for k, v in data.items():
            file_values[k] = (v, vf)
    given: dict[str, tuple[Any, str, bool]] = {}
    for k, (v, src) in file_values.items():
        given[k] = (v, f"--vars {src}", False)
    for k, v in vars.items():
        given[k] = (v, "vars", False)
    for k, s in cli_vars:
        given[k] = (s, "--var", True)
    for k, (_, src, _) in given.items():
        if k not in decls:
            from cfglang.diagnostics import did_you_mean

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
    for name, chain in decls.items():
        _base_mod, base = chain[0]
        ev.input_decls[name] = base

        def thunk(name: str = name, chain: list[tuple[Any, Any]] = chain) -> Any:
            base_mod, base = chain[0]
            typ = ev.resolve_type(base.type, base_mod) if base.type is not None else None
            if name in given:
                raw, src, text = given[name]
                ev.input_sources[name] = (src, None)
                _refuse_surrogates(name, raw, src, base.name_span)
                value = _to_runtime(ev, raw)
                if typ is None:
                    return value
                try:
                    return ev.conform(value, typ, base.name_span, None, from_text=text)
                except Exception as e:
                    if not hasattr(e, "diag"):
                        raise
                    from cfglang.semantic.types import holds_secret

                    shown = f'"{raw}"' if isinstance(raw, str) else repr(raw)
                    if holds_secret(typ):
                        shown = "<secret>"  # a mistyped secret is still a secret
                    raise err(
                        "E0402",
                        f"input {name}: expected {typ.show()}, got {shown}",
                        None,
                        notes=(Note(f"`{name}` is declared here", base.name_span),),
                        help=f"set by {src}",
                    ) from None
            env_decl = next((d for _, d in reversed(chain) if d.env), None)
            if env_decl is not None and env_decl.env:
                ev.env_read[env_decl.env] = ev.env.get(env_decl.env)
            if env_decl is not None and env_decl.env in ev.env:
                raw = ev.env[env_decl.env]
                ev.input_sources[name] = (f"environment variable {env_decl.env}", env_decl.span)
                _refuse_surrogates(name, raw, f"environment variable {env_decl.env}", env_decl.span)
                if typ is None:
                    return raw
                try:
                    return ev.conform(raw, typ, env_decl.name_span, None, from_text=True)
                except Exception as e:
                    if not hasattr(e, "diag"):
                        raise
                    raise err(
                        "E0402",
                        f"input {name}: expected {typ.show()} in environment "
                        f"variable {env_decl.env}",
                        env_decl.span,
                    ) from None
            for mod, d in reversed(chain):
                if d.default is not None:
                    what = "default" if d is base else f"new default in {mod.source.path}"
                    ev.input_sources[name] = (what, d.default.span)
                    v = ev.ev(d.default, ev.module_scope(mod))
                    if typ is not None:
                        v = ev.conform(v, typ, d.default.span, base.name_span)
                    return v
            hint = f"pass `--var {name}=VALUE`"
            if env_decl is not None:
                hint += f" or set the environment variable {env_decl.env}"
            raise err(
                "E0401",
                f"input `{name}` is not set",
                base.name_span,
                label="no default and no value given",
                help=hint,
            )

        ev.input_thunks[name] = thunk
    # Every declared input is computed up front, so a missing or malformed one is an
    # error even if no expression happens to read it.
    for name in decls:
        try:
            ev.input_value(name, decls[name][0][1].name_span)
        except Exception as e:
            if hasattr(e, "diag"):
                diags.add(e.diag)


def _refuse_surrogates(name: str, raw: Any, src: str, span: Span) -> None:
    """A lone surrogate (from command-line bytes that are not UTF-8, or a `\\uD800` escape
    in a --vars file) is no character: no output format could write it."""
    import re

    from cfglang.eval.evaluate import err

    stack = [raw]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack += [*v.keys(), *v.values()]
        elif isinstance(v, (list, tuple)):
            stack += v
        elif isinstance(v, str) and not v.isascii() and re.search("[\ud800-\udfff]", v):
            raise err(
                "E0402",
                f"input {name}: the value is not valid Unicode text (a lone surrogate)",
                span,
                help=f"set by {src}; pass UTF-8 text",
            )


def _to_runtime(ev: Any, v: Any) -> Any:
    from cfglang.eval.evaluate import from_plain

    return from_plain(ev, v)


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
            import json

            data = json.loads(text)
        elif path.endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_load(text)
        elif path.endswith(".cfl"):
            sub = compile(path, emit_outputs=False)
            if not sub.ok:
                diags.extend(sub.diagnostics)
                return None
            data = sub.data
        else:
            diags.error("E0701", f"--vars file `{path}` must be .json, .yaml, .yml or .cfl")
            return None
        if not path.endswith(".cfl"):
            from cfglang.tools.importer import check_data

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


def _outputs(ev: Any, entry: Any, diags: Diagnostics, env_prefix: str) -> list[Output]:
    from cfglang.emit import FORMATS, EmitError, emit, format_for_filename
    from cfglang.eval.constraints import SizeBudget, dotted, materialize
    from cfglang.eval.evaluate import EvalError, _Propagate
    from cfglang.eval.values import BOTTOM
    from cfglang.semantic.resolve import normalise_output_name

    out: list[Output] = []
    budget = SizeBudget(ev.limits)  # for all the outputs together: what one build writes
    seen: dict[str, Span] = {}
    for m in entry.chain():
        for decl in m.outputs:
            fmt = decl.format or format_for_filename(decl.name)
            if fmt is None or fmt not in FORMATS:
                diags.error(
                    "E0603",
                    f"cannot tell the format of output `{decl.name}`",
                    decl.name_span,
                    help="name it .json/.yaml/.toml/.ini/.env/"
                    '.properties, or write `output "name": json = ...`',
                )
                continue
            # The resolver rejected names that leave the output directory; `./a.json`
            # and `a.json` are one file, so duplicates are found by the normal form.
            name = normalise_output_name(decl.name)
            if name in seen:
                diags.error(
                    "E0603",
                    f"two outputs are named `{name}`",
                    decl.name_span,
                    notes=(Note("first declared here", seen[name]),),
                )
                continue
            seen[name] = decl.name_span
            try:
                value = ev.ev(decl.value, ev.module_scope(m))
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
                        secret=_has_secret(data),
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


def _has_bottom(data: Any, bottom: Any) -> bool:
    if data is bottom:
        return True
    if isinstance(data, dict):
        return any(_has_bottom(v, bottom) for v in data.values())
    if isinstance(data, list):
        return any(_has_bottom(v, bottom) for v in data)
    return False


# ---- Python API -------------------------------------------------------------------------------


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
        from cfglang.values import redact

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


from typing import TypeVar, overload  # noqa: E402  (kept beside `load`, its only user)

_T = TypeVar("_T")


@overload
def load(
    path: str | os.PathLike[str],
    *,
    vars: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    as_: None = None,
    identity: str | os.PathLike[str] | None = None,
) -> Config: ...


@overload
def load(
    path: str | os.PathLike[str],
    *,
    vars: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    as_: type[_T],
    identity: str | os.PathLike[str] | None = None,
) -> _T: ...


def load(
    path: str | os.PathLike[str],
    *,
    vars: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    as_: type[Any] | None = None,
    identity: str | os.PathLike[str] | None = None,
) -> Any:
    """Compile a `.cfl` file and return its configuration; raises `ConfigError`.

    With ``as_`` (a class written by `cflc codegen python`), the data is handed to
    ``as_.from_dict`` and that typed object is returned instead of a `Config`.
    """
    result = compile(os.fspath(path), vars=vars, env=env, emit_outputs=False, identity=identity)
    if not result.ok or result.data is None:
        raise ConfigError(result.diagnostics)
    if as_ is not None:
        return as_.from_dict(result.data)
    return Config(result.data)


def loads(
    text: str,
    *,
    filename: str = "<string>",
    vars: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    identity: str | os.PathLike[str] | None = None,
) -> Config:
    """Compile CFL source text; relative imports resolve from the current directory."""
    result = compile(
        text=text, filename=filename, vars=vars, env=env, emit_outputs=False, identity=identity
    )
    if not result.ok or result.data is None:
        raise ConfigError(result.diagnostics)
    return Config(result.data)


def dumps(cfg: Config | Mapping[str, Any], format: str = "json", *, env_prefix: str = "") -> str:
    """Render configuration in an output format (json, yaml, toml, ini, env, properties)."""
    from cfglang.emit import emit

    if isinstance(cfg, Config):
        data = cfg.to_dict()  # compiled: never deeper than every emitter writes
    else:
        data = dict(cfg)
        _check_depth(data)
    return emit(data, format, env_prefix=env_prefix)


def _check_depth(data: Any) -> None:
    """Plain data from the caller, nested no deeper than compiled data may be (the
    emitters recurse); an `EmitError` at the first value past the limit."""
    from cfglang.emit import EmitError
    from cfglang.limits import MAX_NESTING

    stack: list[tuple[Any, tuple[str | int, ...]]] = [(data, ())]
    while stack:
        v, path = stack.pop()
        if isinstance(v, (dict, list)) and len(path) > MAX_NESTING:
            raise EmitError(path, f"nested more than {MAX_NESTING} levels deep")
        if isinstance(v, dict):
            stack += [(x, (*path, str(k))) for k, x in v.items()]
        elif isinstance(v, list):
            stack += [(x, (*path, i)) for i, x in enumerate(v)]


_unused = Secret


def explain(
    path: str,
    data_path: str,
    *,
    cli_vars: Sequence[tuple[str, str]] = (),
    var_files: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    allow_paths: Sequence[str] = (),
    root: str | None = None,
    loader: Any = None,
) -> Any:
    """Where the value at ``data_path`` of module ``path`` comes from.

    ``path`` may be ``FILE@REV`` (read from git at REV), or ``loader`` may be given,
    as for `compile`.

    Returns an `cfglang.tools.explain.Explanation`, or a `Compilation` holding the
    diagnostics when the module does not compile or the path does not exist.
    """
    from cfglang.tools.explain import explain_path

    if loader is None and "@" in path:
        from cfglang.vcs import GitError, loader_for

        try:
            path, loader, root = loader_for(path, root)
        except GitError as e:
            return Compilation(None, [e.diagnostic])

    def work() -> Any:
        record: dict[str, Any] = {}
        result = _compile(
            path,
            None,
            path,
            {},
            cli_vars,
            var_files,
            env if env is not None else os.environ,
            root,
            allow_paths,
            False,
            None,
            "",
            record=record,
            secrets={"decrypt": False},
            loader=loader,
        )
        if not result.ok or "ev" not in record:
            return result
        return explain_path(record["ev"], record["doc"], data_path, result)

    out = _run_guarded(work)
    return Compilation(None, [out]) if isinstance(out, Diagnostic) else out


def deps(
    path: str,
    *,
    root: str | None = None,
    allow_paths: Sequence[str] = (),
    var_files: Sequence[str] = (),
) -> Any:
    """The dependency graph of the target ``path``: the modules of its import/extends
    closure, the files it reads and the inputs it takes (a `cfglang.tools.deps.TargetDeps`).
    Nothing is evaluated; resolver errors are in the result's ``diagnostics``."""
    from cfglang.tools.deps import target_deps

    return target_deps(path, root=root, allow_paths=allow_paths, var_files=var_files)


@attrs.define
class Session:
    """A compilation together with the state tools built on it need.

    Long-running tools (the language server, `cflc watch`, `cfglang.tools.live`) need more than
    the output: every file the compilation read (to know when to run again) and the
    evaluator's record (for provenance, without a second compilation).
    """

    result: Compilation
    files: set[str]  # absolute paths of every module and --vars file read
    evaluator: Any = None
    document: Any = None
    entry: Any = None

    def explain(self, data_path: str) -> Any:
        """`explain` on this compilation's record: an `Explanation`, else a `Compilation`
        with the diagnostics (the module did not compile, or no such path)."""
        if self.evaluator is None or self.document is None:
            return Compilation(None, list(self.result.diagnostics))
        from cfglang.tools.explain import explain_path

        ev, doc = self.evaluator, self.document
        out = _run_guarded(lambda: explain_path(ev, doc, data_path, Compilation(None, [])))
        return Compilation(None, [out]) if isinstance(out, Diagnostic) else out


def compile_session(
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
) -> Session:
    """Compile ``path`` (as `compile` does, minus the build cache, which would answer
    without reading anything) and keep the state: see `Session`."""
    record: dict[str, Any] = {}

    def work() -> Compilation:
        return _compile(
            path,
            None,
            path,
            vars or {},
            cli_vars,
            var_files,
            env if env is not None else os.environ,
            None,
            allow_paths,
            emit_outputs,
            None,
            env_prefix,
            use_cache=use_cache,
            record=record,
            overlay=overlay,
        )

    out = _run_guarded(work)
    result = out if isinstance(out, Compilation) else Compilation(None, [out])
    files = {os.path.abspath(p) for p in record.get("texts", {})}
    files.add(os.path.abspath(path))
    files.update(os.path.abspath(v) for v in var_files)
    return Session(result, files, record.get("ev"), record.get("doc"), record.get("entry"))


def definition_span(
    path: str,
    data_path: str,
    *,
    cli_vars: Sequence[tuple[str, str]] = (),
    var_files: Sequence[str] = (),
    allow_paths: Sequence[str] = (),
    env_prefix: str = "",
) -> Span | None:
    """The source span that set the value at ``data_path`` (None if unknown): lets an
    error found after evaluation (an output format that cannot hold a value) point at
    the line to edit. Compiles again, so it is for error paths only."""
    from cfglang.tools.explain import Explanation

    session = compile_session(
        path,
        cli_vars=cli_vars,
        var_files=var_files,
        allow_paths=allow_paths,
        emit_outputs=False,
        env_prefix=env_prefix,
    )
    why = session.explain(data_path) if data_path else None
    if isinstance(why, Explanation) and why.set_by is not None:
        return why.set_by.site.span
    return None
