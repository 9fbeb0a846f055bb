"""`cflc`, the command-line interface: options in, `cfglang.api` call, rendering out.

Exit codes: 0 success, 1 the configuration has errors, 2 bad usage (including a file
that cannot be read), 3 an internal error. Diagnostics go to stderr, data to stdout.
The evaluator is imported only inside commands, so `cflc --help` stays fast.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from cfglang import __version__
from cfglang.commands import LazyGroup
from cfglang.commands._options import (
    allow_path_option,
    diagnostic_options,
    quiet_option,
    verbose_option,
)
from cfglang.console import (
    EXIT_ERRORS,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_USAGE,
    Ctx,
    check_var_files,
    expand_targets,
    parse_vars,
    write_results,
)

FORMAT_CHOICES = ("json", "yaml", "toml", "ini", "env", "properties")


def common(f: Any) -> Any:
    f = diagnostic_options(f)
    f = quiet_option()(f)
    f = verbose_option()(f)
    return f


def input_options(f: Any) -> Any:
    f = click.option(
        "--var",
        "var",
        multiple=True,
        metavar="NAME=VALUE",
        help="Set an input (repeatable; later wins).",
    )(f)
    f = click.option(
        "--vars",
        "var_files",
        multiple=True,
        metavar="FILE",
        help="Set inputs from a JSON, YAML or CFL file (repeatable).",
    )(f)
    f = allow_path_option(f)
    f = click.option(
        "--no-cache", is_flag=True, help="Neither read nor write the parse and build caches."
    )(f)
    f = click.option(
        "--profile", is_flag=True, help="Print time per phase and per file, and the slowest fields."
    )(f)
    return f


def secret_options(f: Any) -> Any:
    f = click.option(
        "--identity",
        "identity",
        multiple=True,
        metavar="FILE",
        type=click.Path(exists=True, dir_okay=False),
        help="age identity file to decrypt secrets with (repeatable; default: "
        "CFL_AGE_IDENTITY or CFL_AGE_IDENTITY_FILE).",
    )(f)
    return f


def plaintext_options(f: Any) -> Any:
    f = click.option(
        "--strict", is_flag=True, help="Treat a secret written in plain text as an error."
    )(f)
    f = click.option(
        "--allow-plaintext-secrets",
        is_flag=True,
        help="Do not report secrets written in plain text.",
    )(f)
    return f


def warnings_option(f: Any) -> Any:
    return click.option(
        "--warnings-as-errors",
        is_flag=True,
        help="Fail (exit 1) on any warning, reported as an error "
        "(also `[check] warnings_as_errors = true` in cfl.toml).",
    )(f)


def _plaintext_mode(strict: bool, allow: bool) -> str:
    return "allow" if allow else "error" if strict else "warn"


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="cflc")
def main() -> None:
    """cflc: compile, check and inspect CFL configuration (.cfl files).

    \b
    Exit codes: 0 ok, 1 configuration errors, 2 usage errors, 3 internal error.
    """


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(FORMAT_CHOICES),
    default=None,
    help="Output format of the document (default json, or from -o's extension).",
)
@click.option(
    "-o",
    "--output",
    "output",
    metavar="PATH",
    help="Write to a file, or with a trailing / (or an existing directory) write the "
    "module's named outputs there.",
)
@click.option("--env-prefix", default="", metavar="PREFIX", help="Prefix for env output names.")
@input_options
@secret_options
@plaintext_options
@warnings_option
@common
def build(
    paths: tuple[str, ...],
    fmt: str | None,
    output: str | None,
    var: tuple[str, ...],
    var_files: tuple[str, ...],
    allow_path: tuple[str, ...],
    env_prefix: str,
    no_cache: bool,
    profile: bool,
    identity: tuple[str, ...],
    strict: bool,
    allow_plaintext_secrets: bool,
    warnings_as_errors: bool,
    error_format: str,
    color: str,
    quiet: bool,
    verbose: int,
) -> None:
    """Compile FILE... (or a project directory) and emit the configuration.

    With no PATH (or a directory), builds the project's targets: `targets` in
    cfl.toml, else the entry files (the .cfl files no other file imports or extends).
    A mistake shared by several targets is reported once, naming them.
    Encrypted secrets are decrypted with --identity (or CFL_AGE_IDENTITY[_FILE]);
    outputs that hold a secret are written with mode 0600.
    """
    ctx = Ctx(error_format, color, quiet, verbose)
    ctx.use_cache, ctx.profile = not no_cache, profile
    ctx.identity, ctx.plaintext = identity, _plaintext_mode(strict, allow_plaintext_secrets)
    ctx.warnings_as_errors = warnings_as_errors
    _done_exit(_build(ctx, paths, fmt, output, var, var_files, allow_path, env_prefix, write=True))


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(FORMAT_CHOICES),
    default=None,
    help="Check that the document can be written in this format, as build -f does (default json).",
)
@click.option(
    "--env-prefix", default="", metavar="PREFIX", help="Prefix for env output names, as build."
)
@input_options
@secret_options
@plaintext_options
@warnings_option
@common
def check(
    paths: tuple[str, ...],
    fmt: str | None,
    env_prefix: str,
    var: tuple[str, ...],
    var_files: tuple[str, ...],
    allow_path: tuple[str, ...],
    no_cache: bool,
    profile: bool,
    identity: tuple[str, ...],
    strict: bool,
    allow_plaintext_secrets: bool,
    warnings_as_errors: bool,
    error_format: str,
    color: str,
    quiet: bool,
    verbose: int,
) -> None:
    """Check FILE... (or a project) as build does, writing nothing. Exit 1 on any error.

    With no PATH (or a directory), checks the project's targets, as build does.

    Every output is rendered as build renders it (named outputs, and the document in
    -f's format), so an output that build cannot write fails check too.
    Encrypted secrets are checked for form and type but never decrypted (--identity is
    accepted and unused); a secret written in plain text is a warning (--strict: an error).
    """
    ctx = Ctx(error_format, color, quiet, verbose)
    ctx.use_cache, ctx.profile = not no_cache, profile
    ctx.identity, ctx.plaintext = identity, _plaintext_mode(strict, allow_plaintext_secrets)
    ctx.warnings_as_errors = warnings_as_errors
    _done_exit(_build(ctx, paths, fmt, None, var, var_files, allow_path, env_prefix, write=False))


def _build(
    ctx: Ctx,
    paths: Sequence[str],
    fmt: str | None,
    output: str | None,
    var: Sequence[str],
    var_files: Sequence[str],
    allow_path: Sequence[str],
    env_prefix: str,
    *,
    write: bool,
) -> int:
    """`build` (``write``) or `check`: one path, so that check fails wherever build does.

    Check compiles the named outputs and renders every output as build does, but never
    decrypts a secret (they render as placeholders) and stops before writing anything.
    """
    from cfglang.api import compile  # start-up: `cflc --help` imports this module, not the compiler

    cli_vars = parse_vars(ctx, var)
    if cli_vars is None:
        return EXIT_USAGE
    if not check_var_files(ctx, var_files):
        return EXIT_USAGE
    expanded = expand_targets(ctx, paths, read_config=True)
    if expanded is None:
        return EXIT_USAGE
    files, settings = expanded
    ctx.warnings_as_errors = ctx.warnings_as_errors or bool(settings.get("warnings_as_errors"))
    project_build = not paths or any(os.path.isdir(p) for p in paths)
    to_dir = output is not None and (output.endswith(("/", os.sep)) or os.path.isdir(output))
    if write and output and not to_dir and len(files) > 1:
        ctx.usage_error(
            "E0701",
            f"-o `{output}` names one file but {len(files)} modules are "
            "built; give a directory (`-o DIR/`)",
        )
        return EXIT_USAGE
    allow = list(allow_path) + list(settings.get("allow_paths", []))
    results = []
    # Reported once all targets are compiled: a mistake in a shared file, found once per
    # target, is then reported once, naming the targets it breaks (`merge_targets`).
    reports: list[tuple[str, Sequence[Any]]] = []
    status = EXIT_OK
    for i, f in enumerate(files):
        if os.path.isdir(f):
            ctx.usage_error("E0702", f"`{f}` is a directory, not a module")
            return EXIT_USAGE
        if i and not gc.isenabled():
            # `run` turned the collector off for this process: free the previous
            # target's evaluation graph (cycles) so that peak memory stays that of the
            # largest target, not their sum. The last one is never collected.
            gc.collect()
        # Kept for error paths that must compile again to point at a source line.
        ctx.inputs = {
            "cli_vars": cli_vars,
            "var_files": tuple(var_files),
            "allow_paths": tuple(allow),
        }
        res = compile(
            f,
            cli_vars=cli_vars,
            var_files=var_files,
            allow_paths=allow,
            env_prefix=env_prefix,
            emit_outputs=True,
            use_cache=ctx.caching(),
            profile=ctx.profile,
            identity=ctx.identity,
            decrypt_secrets=write,
            plaintext_secrets=ctx.plaintext,
            limits=settings.get("limits"),
            root=settings.get("root"),
        )
        reports.append((f, res.diagnostics))
        ctx.print_profile(f, res)
        if any(d.code == "E0900" for d in res.diagnostics):
            ctx.report_targets(reports)
            return EXIT_INTERNAL
        if not res.ok or ctx.failed(res.diagnostics):
            status = EXIT_ERRORS
        results.append((f, res))
    ctx.report_targets(reports)
    if status != EXIT_OK:
        return status
    status = write_results(
        ctx, results, fmt, output, env_prefix, project_build, settings, dry_run=not write
    )
    if status == EXIT_OK and not write and ctx.verbose:
        ctx.info(f"ok: {len(files)} file(s) checked")
    return status


@main.command(name="eval")
@click.argument("file", type=click.Path())
@click.argument("expr")
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(FORMAT_CHOICES),
    default="json",
    help="Format for object values.",
)
@input_options
@secret_options
@common
def eval_cmd(
    file: str,
    expr: str,
    fmt: str,
    var: tuple[str, ...],
    var_files: tuple[str, ...],
    allow_path: tuple[str, ...],
    no_cache: bool,
    profile: bool,
    identity: tuple[str, ...],
    error_format: str,
    color: str,
    quiet: bool,
    verbose: int,
) -> None:
    """Print the value of EXPR evaluated in FILE's module scope (secrets redacted).

    Secrets print as <secret>; they are decrypted only with an identity (--identity,
    CFL_AGE_IDENTITY[_FILE]), so without one a value computed from a secret's content
    (a comparison, say) is computed from a stand-in of the same length.

    Example: cflc eval env/prod.cfl services.billing.replicas
    """
    # start-up: `cflc --help` imports this module, not the compiler
    import json

    from cfglang.api import compile
    from cfglang.emit import EmitError, emit
    from cfglang.secrets.keys import identity_given
    from cfglang.values import Duration, Size, redact

    ctx = Ctx(error_format, color, quiet, verbose)
    ctx.use_cache, ctx.profile = not no_cache, profile
    cli_vars = parse_vars(ctx, var)
    if cli_vars is None or not check_var_files(ctx, var_files):
        sys.exit(EXIT_USAGE)
    if os.path.isdir(file):
        ctx.usage_error("E0702", f"`{file}` is a directory, not a module")
        sys.exit(EXIT_USAGE)
    if expand_targets(ctx, [file]) is None:
        sys.exit(EXIT_USAGE)
    res = compile(
        file,
        cli_vars=cli_vars,
        var_files=var_files,
        allow_paths=allow_path,
        expr=expr,
        emit_outputs=False,
        use_cache=ctx.caching(),
        profile=ctx.profile,
        identity=identity,
        # Without an identity, secrets stay encrypted (they print as <secret> anyway).
        decrypt_secrets=identity_given(identity),
    )
    ctx.report(res.diagnostics)
    ctx.print_profile(file, res)
    if any(d.code == "E0900" for d in res.diagnostics):
        sys.exit(EXIT_INTERNAL)
    if not res.ok or res.data is None:
        sys.exit(EXIT_ERRORS)
    value = redact(res.data["value"])
    if isinstance(value, dict) and fmt != "json":
        try:
            sys.stdout.write(emit(value, fmt))
        except EmitError as e:
            ctx.usage_error("E0601", f"cannot write {fmt}: {e.message}")
            sys.exit(EXIT_ERRORS)
    elif isinstance(value, (dict, list)):
        sys.stdout.write(emit(value, "json"))
    else:
        if isinstance(value, (Duration, Size)):
            value = value.canonical()
        click.echo(json.dumps(value, ensure_ascii=False))
    sys.exit(EXIT_OK)


class _Finished(SystemExit):
    """The exit of a build or check that has written and closed everything (see `run`)."""


def _done_exit(code: int) -> None:
    raise _Finished(code)


def run() -> None:  # pragma: no cover - console entry with last-resort protection
    if sys.argv[1:2] in (["build"], ["check"]):
        # These leave with `os._exit` (below): the objects of a finished compile need
        # never be collected. With the collector on, the first collection after a compile
        # walked (and freed) its whole evaluation graph: ~0.1 s at S=1,000 and ~1 s at
        # S=10,000 (docs/performance.md). Imports allocate less with it off too. Only
        # the console entry does this: in-process callers (tests, tools) keep theirs.
        gc.disable()
    try:
        main()
    except SystemExit as e:
        if isinstance(e, _Finished):
            # A finished build leaves its whole syntax tree and evaluation graph alive (the
            # in-process parse cache keeps trees): freeing half a million objects and the
            # final collection at interpreter exit took ~0.9 s at S=10,000. The OS frees
            # the memory anyway, so flush the streams and leave without tearing down.
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            os._exit(e.code if isinstance(e.code, int) else EXIT_INTERNAL)
        raise
    except BaseException as e:
        click.echo(
            f"error[E0900]: internal error: {e!r}\nhelp: this is a bug in cflc; please "
            "report it with the input that caused it",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":  # `python -m cfglang.cli …`, as the git merge driver may call it
    run()
