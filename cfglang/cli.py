"""`cflc`, the command-line interface: options in, `cfglang.api` call, rendering out.

Exit codes: 0 success, 1 the configuration has errors, 2 bad usage (including a file
that cannot be read), 3 an internal error. Diagnostics go to stderr, data to stdout.
The evaluator is imported only inside commands, so `cflc --help` stays fast.
"""

from __future__ import annotations

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
from cfglang.paths import resolves_inside

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
FORMAT_CHOICES = ("json", "yaml", "toml", "ini", "env", "properties")


class Ctx:
    def __init__(self, error_format: str, color: str, quiet: bool, verbose: int) -> None:
        self.error_format = error_format
        self.quiet = quiet
        self.verbose = verbose
        if color == "auto":
            # https://no-color.org: a non-empty NO_COLOR disables colour; an explicit
            # --color always still wins.
            self.color = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
        else:
            self.color = color == "always"

    def report(self, diagnostics: Sequence[Any]) -> None:
        from cfglang.diagnostics import render_human, render_json

        for d in diagnostics:
            if self.quiet and not d.is_error:
                continue
            if self.error_format == "json":
                click.echo(render_json(d), err=True)
            else:
                # color= is needed: click.echo strips ANSI codes when stderr is not a
                # terminal, which would make `--color always` a no-op in pipes and CI logs.
                click.echo(render_human(d, color=self.color), err=True, nl=False, color=self.color)

    use_cache = True
    inputs: dict[str, Any] = {}  # noqa: RUF012 - set per build, read on error paths
    profile = False
    identity: Sequence[str] = ()
    plaintext = "warn"

    def caching(self) -> bool:
        from cfglang import cache

        return self.use_cache and cache.enabled()

    def print_profile(self, target: str, res: Any) -> None:
        """The --profile report, on stderr so that it never mixes with output."""
        prof = res.profile
        if not self.profile or prof is None:
            return
        lines = [
            f"profile of {target}" + (" (served from the build cache)" if res.from_cache else "")
        ]
        total = sum(prof.phases.values())
        for name, secs in prof.phases.items():
            share = 100 * secs / total if total else 0.0
            lines.append(f"  {name:<28} {secs * 1000:9.1f} ms  {share:5.1f}%")
        lines.append(f"  {'total':<28} {total * 1000:9.1f} ms")
        if prof.files:
            lines.append("  parse time per file:")
            for path, secs in sorted(prof.files.items(), key=lambda kv: -kv[1])[:15]:
                how = "parsed" if path in prof.parsed else "from parse cache"
                lines.append(f"    {secs * 1000:9.1f} ms  {path}  ({how})")
        if prof.sites:
            lines.append("  slowest fields (self time):")
            for secs, site, key in prof.sites:
                lines.append(f"    {secs * 1000:9.2f} ms  {site}  {key}")
        click.echo("\n".join(lines), err=True)

    def info(self, msg: str) -> None:
        if not self.quiet:
            click.echo(msg, err=True)

    def usage_error(self, code: str, message: str) -> None:
        from cfglang.diagnostics import Diagnostic

        self.report([Diagnostic(code, message)])


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


def _parse_vars(ctx: Ctx, items: Sequence[str]) -> list[tuple[str, str]] | None:
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            ctx.usage_error("E0701", f"--var expects NAME=VALUE, got `{item}`")
            return None
        out.append((name.strip(), value))
    return out


def _check_var_files(ctx: Ctx, var_files: Sequence[str]) -> bool:
    """`--vars` files must exist, be regular files and be readable (else exit 2)."""
    for vf in var_files:
        if os.path.isdir(vf):
            ctx.usage_error("E0702", f"--vars file `{vf}` is a directory")
            return False
        if not os.path.isfile(vf):
            ctx.usage_error("E0702", f"--vars file `{vf}` does not exist")
            return False
        if not os.access(vf, os.R_OK):
            ctx.usage_error("E0702", f"--vars file `{vf}` cannot be read (permission denied)")
            return False
    return True


def _project(path: str) -> tuple[str, dict[str, Any]] | None:
    """The project root and its `cfl.toml` settings (empty when there is none)."""
    from cfglang.api import find_root

    root = find_root(path)
    cfg_path = os.path.join(root, "cfl.toml")
    if not os.path.isfile(cfg_path):
        return root, {}
    import tomllib

    with open(cfg_path, "rb") as f:
        data = tomllib.load(f)
    settings = dict(data.get("project", {}))
    if "limits" in data:  # [limits]: fields of cfglang.eval.evaluate.Limits
        settings["limits"] = data["limits"]
    return root, settings


def _limits(table: Any) -> Any:
    """The `Limits` of a cfl.toml `[limits]` table, or why it is wrong."""
    import attrs

    from cfglang.eval.evaluate import Limits

    names = [f.name for f in attrs.fields(Limits)]
    if not isinstance(table, dict):
        return "`limits` must be a table"
    for k, v in table.items():
        if k not in names:
            return f"unknown limit `{k}` (known: {', '.join(names)})"
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            return f"`limits.{k}` must be a positive integer"
    return Limits(**table)


def _targets(ctx: Ctx, paths: Sequence[str]) -> tuple[list[str], dict[str, Any]] | None:
    """Expand arguments: files stay, a directory (or nothing) means the project's targets."""
    import glob

    files: list[str] = []
    settings: dict[str, Any] = {}
    for p in paths or (".",):
        if os.path.isdir(p):
            try:
                proj = _project(os.path.join(p, "x"))
            except Exception as e:  # a malformed cfl.toml
                ctx.usage_error("E0703", f"cannot read cfl.toml: {e}")
                return None
            assert proj is not None
            root, settings = proj
            # Paths in cfl.toml are relative to the project root, not to the current
            # directory (`cflc build path/to/project` from elsewhere).
            settings["output_dir"] = os.path.relpath(
                os.path.join(root, str(settings.get("output_dir", "out")))
            )
            settings["allow_paths"] = [
                os.path.join(root, str(a)) for a in settings.get("allow_paths", [])
            ]
            if "limits" in settings:
                limits = _limits(settings["limits"])
                if isinstance(limits, str):
                    ctx.usage_error("E0703", f"cannot read cfl.toml: {limits}")
                    return None
                settings["limits"] = limits
            targets = settings.get("targets")
            if not targets:
                ctx.usage_error(
                    "E0703", f"`{p}` has no cfl.toml with `targets`; name the files to build"
                )
                return None
            for pattern in targets:
                matched = sorted(glob.glob(os.path.join(root, pattern)))
                if not matched:
                    ctx.usage_error("E0703", f"target `{pattern}` matches no file")
                    return None
                files += [os.path.relpath(m) for m in matched]
        else:
            if "@" in p and not os.path.exists(p):  # FILE@REV: a module in git at REV
                from cfglang.vcs import check_spec, split_spec

                bad = check_spec(p)
                if bad is not None:
                    ctx.report([bad])
                    return None
                if split_spec(p)[1] is not None:
                    files.append(p)
                    continue
            if not os.path.exists(p):
                ctx.usage_error("E0702", f"`{p}` does not exist")
                return None
            if not os.access(p, os.R_OK):
                ctx.usage_error("E0702", f"`{p}` cannot be read (permission denied)")
                return None
            files.append(p)
    return files, settings


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
    error_format: str,
    color: str,
    quiet: bool,
    verbose: int,
) -> None:
    """Compile FILE... (or a project directory) and emit the configuration.

    With no PATH, builds every target of the cfl.toml in the current directory.
    Encrypted secrets are decrypted with --identity (or CFL_AGE_IDENTITY[_FILE]);
    outputs that hold a secret are written with mode 0600.
    """
    ctx = Ctx(error_format, color, quiet, verbose)
    ctx.use_cache, ctx.profile = not no_cache, profile
    ctx.identity, ctx.plaintext = identity, _plaintext_mode(strict, allow_plaintext_secrets)
    _done_exit(_build(ctx, paths, fmt, output, var, var_files, allow_path, env_prefix, write=True))


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@input_options
@secret_options
@plaintext_options
@common
def check(
    paths: tuple[str, ...],
    var: tuple[str, ...],
    var_files: tuple[str, ...],
    allow_path: tuple[str, ...],
    no_cache: bool,
    profile: bool,
    identity: tuple[str, ...],
    strict: bool,
    allow_plaintext_secrets: bool,
    error_format: str,
    color: str,
    quiet: bool,
    verbose: int,
) -> None:
    """Check FILE... (or a project) like build does, writing nothing. Exit 1 on any error.

    Encrypted secrets are checked for form and type but never decrypted (--identity is
    accepted and unused); a secret written in plain text is a warning (--strict: an error).
    """
    ctx = Ctx(error_format, color, quiet, verbose)
    ctx.use_cache, ctx.profile = not no_cache, profile
    ctx.identity, ctx.plaintext = identity, _plaintext_mode(strict, allow_plaintext_secrets)
    _done_exit(_build(ctx, paths, None, None, var, var_files, allow_path, "", write=False))


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
    from cfglang.api import compile

    cli_vars = _parse_vars(ctx, var)
    if cli_vars is None:
        return EXIT_USAGE
    if not _check_var_files(ctx, var_files):
        return EXIT_USAGE
    expanded = _targets(ctx, paths)
    if expanded is None:
        return EXIT_USAGE
    files, settings = expanded
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
    status = EXIT_OK
    for f in files:
        if os.path.isdir(f):
            ctx.usage_error("E0702", f"`{f}` is a directory, not a module")
            return EXIT_USAGE
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
            emit_outputs=write,
            use_cache=ctx.caching(),
            profile=ctx.profile,
            identity=ctx.identity,
            decrypt_secrets=write,
            plaintext_secrets=ctx.plaintext,
            limits=settings.get("limits"),
        )
        ctx.report(res.diagnostics)
        ctx.print_profile(f, res)
        if any(d.code == "E0900" for d in res.diagnostics):
            return EXIT_INTERNAL
        if not res.ok:
            status = EXIT_ERRORS
        results.append((f, res))
    if status != EXIT_OK or not write:
        if status == EXIT_OK and ctx.verbose:
            ctx.info(f"ok: {len(files)} file(s) checked")
        return status
    return _write_results(ctx, results, fmt, output, env_prefix, project_build, settings)


def _write_results(
    ctx: Ctx,
    results: list[tuple[str, Any]],
    fmt: str | None,
    output: str | None,
    env_prefix: str,
    project_build: bool,
    settings: dict[str, Any],
) -> int:
    from cfglang.emit import EmitError, emit, format_for_filename

    # Render everything first: nothing is written unless every output rendered.
    planned: list[tuple[str | None, str, bool]] = []  # (target, text, holds a secret)
    set_root: str | None = None  # the directory the whole set is committed in
    for f, res in results:
        stem = os.path.splitext(os.path.basename(f))[0]
        target: str | None
        if project_build or (output and (output.endswith(("/", os.sep)) or os.path.isdir(output))):
            out_dir = set_root = output or settings.get("output_dir", "out")
            if project_build and len(results) > 1 and res.outputs:
                out_dir = os.path.join(out_dir, stem)
            if res.outputs:
                for o in res.outputs:
                    target = os.path.join(out_dir, o.name)
                    if not resolves_inside(target, set_root):
                        ctx.usage_error(
                            "E0602",
                            f"cannot write `{target}`: a symlink leads it outside "
                            f"`{set_root}`; nothing was written",
                        )
                        return EXIT_ERRORS
                    planned.append((target, o.text, o.secret))
                continue
            doc_fmt = fmt or "json"
            target = os.path.join(out_dir, f"{stem}.{doc_fmt}")
        else:
            target = output
            doc_fmt = fmt or (format_for_filename(output) if output else None) or "json"
        try:
            text = emit(res.data, doc_fmt, env_prefix=env_prefix)
        except EmitError as e:
            from cfglang.api import definition_span
            from cfglang.diagnostics import Diagnostic
            from cfglang.eval.constraints import dotted

            where = dotted(e.path) if e.path else ""
            span = definition_span(f, where, env_prefix=env_prefix, **ctx.inputs) if where else None
            ctx.report(
                [
                    Diagnostic(
                        "E0601",
                        f"cannot write {doc_fmt}: {e.message}",
                        span,
                        label=f"`{where or '(root)'}` is set here" if span else None,
                        help=None if span else f"at `{where or '(root)'}` in {f}",
                        data_path=where or None,
                    )
                ]
            )
            return EXIT_ERRORS
        from cfglang.api import _has_secret

        planned.append((target, text, _has_secret(res.data)))
    files = [(t, text, private) for t, text, private in planned if t is not None]
    if files:
        from cfglang.atomic import write_set

        root = set_root if set_root is not None else os.path.dirname(files[0][0]) or "."
        try:
            write_set(root, [(t, text, _file_mode(private)) for t, text, private in files])
        except OSError as e:
            where = f"`{e.filename}`" if e.filename else f"the outputs in `{root}`"
            ctx.usage_error("E0602", f"cannot write {where}: {e.strerror or e}")
            return EXIT_ERRORS
    for target, text, _ in planned:
        if target is None:
            sys.stdout.write(text)
        elif ctx.verbose or (not ctx.quiet and project_build):
            ctx.info(f"wrote {target}")
    sys.stdout.flush()
    return EXIT_OK


def _file_mode(private: bool) -> int:
    """0600 for an output holding a secret, else the usual mode under the umask."""
    if private:
        return 0o600
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _atomic_write(path: str, text: str, *, private: bool = False) -> None:
    """Write an output file atomically; ``private`` (a secret inside) means mode 0600,
    else the usual mode for new files under the umask."""
    from cfglang.atomic import write_atomic

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_atomic(path, text, mode=_file_mode(private))


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

    Example: cflc eval env/prod.cfl services.billing.replicas
    """
    from cfglang.api import compile
    from cfglang.values import redact

    ctx = Ctx(error_format, color, quiet, verbose)
    ctx.use_cache, ctx.profile = not no_cache, profile
    cli_vars = _parse_vars(ctx, var)
    if cli_vars is None or not _check_var_files(ctx, var_files):
        sys.exit(EXIT_USAGE)
    if os.path.isdir(file):
        ctx.usage_error("E0702", f"`{file}` is a directory, not a module")
        sys.exit(EXIT_USAGE)
    if _targets(ctx, [file]) is None:
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
    )
    ctx.report(res.diagnostics)
    ctx.print_profile(file, res)
    if any(d.code == "E0900" for d in res.diagnostics):
        sys.exit(EXIT_INTERNAL)
    if not res.ok or res.data is None:
        sys.exit(EXIT_ERRORS)
    value = redact(res.data["value"])
    if isinstance(value, dict) and fmt != "json":
        from cfglang.emit import EmitError, emit

        try:
            sys.stdout.write(emit(value, fmt))
        except EmitError as e:
            ctx.usage_error("E0601", f"cannot write {fmt}: {e.message}")
            sys.exit(EXIT_ERRORS)
    else:
        from cfglang.emit import emit

        if isinstance(value, (dict, list)):
            sys.stdout.write(emit(value, "json"))
        else:
            from cfglang.values import Duration, Size

            if isinstance(value, (Duration, Size)):
                value = value.canonical()
            import json

            click.echo(json.dumps(value, ensure_ascii=False))
    sys.exit(EXIT_OK)


class _Finished(SystemExit):
    """The exit of a build or check that has written and closed everything (see `run`)."""


def _done_exit(code: int) -> None:
    raise _Finished(code)


def run() -> None:  # pragma: no cover - console entry with last-resort protection
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
