"""The one front door: the CLI, the language server and the server all call this module.

This is the façade over `cfglang.driver`, which runs the phases in order — load the
`Program` (parse and resolve the module graph; reused while its texts are unchanged),
evaluate it with the inputs (late-bound merge), materialise (checks on whole objects) and
emit — collecting every diagnostic. `compile` turns its keyword arguments into one
`cfglang.driver.BuildRequest`; `load`/`loads` wrap it for Python users and raise
`ConfigError`; `dumps` renders plain data or a `Config` in any output format.

Evaluation runs on a worker thread with a large stack, so deeply nested (but bounded)
programs hit CFL's own depth limit with a clean diagnostic rather than Python's
recursion limit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from cfglang.config import Config, ConfigError
from cfglang.diagnostics import Diagnostic
from cfglang.driver import BuildRequest, Compilation, SecretOptions
from cfglang.driver import Output as Output  # result types, re-exported: `api.Output`
from cfglang.driver import Profile as Profile
from cfglang.project import find_root as find_root  # the project root, re-exported
from cfglang.source import Span
from cfglang.values import Secret

if TYPE_CHECKING:
    from cfglang.eval.evaluate import Limits

__all__ = ["Compilation", "Config", "ConfigError", "compile", "dumps", "load", "loads"]


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
        from cfglang import driver

        return driver.run_cached(req) if req.cacheable else driver.run(req).compilation

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


# ---- Python API -------------------------------------------------------------------------------


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

    req = BuildRequest(
        path,
        filename=path,
        cli_vars=cli_vars,
        var_files=var_files,
        env=env if env is not None else os.environ,
        root=root,
        allow_paths=allow_paths,
        emit_outputs=False,
        secrets=SecretOptions(decrypt=False),
        loader=loader,
        record=True,
    )

    def work() -> Any:
        from cfglang import driver

        built = driver.run(req)
        result = built.compilation
        if not result.ok or built.evaluator is None:
            return result
        return explain_path(built.evaluator, built.document, data_path, result)

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
        record=True,
    )

    def work() -> Any:
        from cfglang import driver

        return driver.run(req)

    out = _run_guarded(work)
    files = {os.path.abspath(path), *(os.path.abspath(v) for v in var_files)}
    if isinstance(out, Diagnostic):
        return Session(Compilation(None, [out]), files)
    files.update(os.path.abspath(p) for p in out.texts)
    return Session(out.compilation, files, out.evaluator, out.document, out.entry)


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
