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
from typing import TYPE_CHECKING, Any, TypeVar, overload

import attrs

from cfglang import driver
from cfglang.config import Config, ConfigError
from cfglang.diagnostics import Diagnostic
from cfglang.driver import BuildRequest, Compilation, SecretOptions
from cfglang.driver import Output as Output  # result types, re-exported: `api.Output`
from cfglang.driver import Profile as Profile
from cfglang.driver import compile as compile  # the one compile; documented there
from cfglang.emit import EmitError, emit
from cfglang.limits import MAX_NESTING
from cfglang.project import find_root as find_root  # the project root, re-exported
from cfglang.values import Secret

if TYPE_CHECKING:
    pass

__all__ = ["Compilation", "Config", "ConfigError", "compile", "dumps", "load", "loads"]


_run_guarded = driver.guarded  # tools and tests run work on the compile pool through it


# ---- Python API -------------------------------------------------------------------------------


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
    if isinstance(cfg, Config):
        data = cfg.to_dict()  # compiled: never deeper than every emitter writes
    else:
        data = dict(cfg)
        _check_depth(data)
    return emit(data, format, env_prefix=env_prefix)


def _check_depth(data: Any) -> None:
    """Plain data from the caller, nested no deeper than compiled data may be (the
    emitters recurse); an `EmitError` at the first value past the limit."""
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
    from cfglang.tools.explain import explain_path  # lazy: only explain loads the explain tool

    if loader is None and "@" in path:
        from cfglang.vcs import GitError, loader_for  # only when the path names a git revision

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
    from cfglang.tools.deps import target_deps  # lazy: only deps loads the deps tool

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
    # The `Program` compiled (`cfglang.semantic.program`): its bindings and types, shared
    # with every other build and tool of the same sources.
    program: Any = None

    def explain(self, data_path: str) -> Any:
        """`explain` on this compilation's record: an `Explanation`, else a `Compilation`
        with the diagnostics (the module did not compile, or no such path)."""
        if self.evaluator is None or self.document is None:
            return Compilation(None, list(self.result.diagnostics))
        from cfglang.tools.explain import explain_path  # lazy: only explain loads the explain tool

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
    result, files, built = driver.compile_recorded(
        path,
        vars=vars,
        cli_vars=cli_vars,
        var_files=var_files,
        env=env,
        allow_paths=allow_paths,
        emit_outputs=emit_outputs,
        env_prefix=env_prefix,
        overlay=overlay,
        use_cache=use_cache,
    )
    if built is None:
        return Session(result, files)
    return Session(
        result, files, built.evaluator, built.document, built.entry, program=built.program
    )


definition_span = driver.definition_span  # re-exported: an emit error's defining line


if TYPE_CHECKING:
    from cfglang.tools.merge import MergeResult


def merge_sources(
    base: str | None, ours: str | None, theirs: str | None, *, path: str
) -> MergeResult:
    """Three-way merge of one `.cfl` source at the level of statements and key paths.

    ``base`` is the common ancestor, ``ours`` (yours: the write being made) and ``theirs``
    (the version stored meanwhile) the two edits; ``path`` names the file. Returns a
    `cfglang.tools.merge.MergeResult`: ``clean`` with the merged ``text``; otherwise
    ``conflicts`` (each with ``path``, ``base``, ``theirs``, ``yours``) and a ``text`` with
    conflict markers, or ``diagnostics`` when a version does not parse. None is an absent
    file (a side that deleted it; ``deleted`` when the merge does). Nothing is compiled.
    """
    from cfglang.tools.merge import merge  # lazy: only merges load the merge tool

    return merge(base, ours, theirs, path=path)
