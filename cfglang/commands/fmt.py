"""`cflc fmt`: rewrite .cfl files in the canonical style (the engine is `cfglang.tools.fmt`)."""

from __future__ import annotations

import os
import sys

import click

from cfglang.commands._options import diagnostic_options, quiet_option
from cfglang.console import atomic_write

EXIT_OK, EXIT_CHANGED, EXIT_USAGE = 0, 1, 2


def _expand(paths: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Files to format (directories give their ``*.cfl``, recursively, sorted) and the
    arguments that name nothing."""
    files: list[str] = []
    missing: list[str] = []
    for p in paths:
        if p == "-":
            files.append(p)
        elif os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                # Hidden directories are tool state (.git, caches), not sources.
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                files += [
                    os.path.normpath(os.path.join(root, n))
                    for n in sorted(names)
                    if n.endswith(".cfl")
                ]
        elif os.path.isfile(p):
            files.append(p)
        else:
            missing.append(p)
    return files, missing


def _diff(old: str, new: str, name: str) -> list[str]:
    import difflib  # only for --diff

    out = []
    for line in difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=name, tofile=name
    ):
        # As diff(1) does, so that the output stays a patch `patch` can apply.
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return out


@click.command(name="fmt")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; list the files that would change and exit 1 if any would.",
)
@click.option("--diff", is_flag=True, help="Write nothing; print a unified diff of the changes.")
@diagnostic_options
@quiet_option("Do not report reformatted files.")
def command(
    paths: tuple[str, ...], check: bool, diff: bool, error_format: str, color: str, quiet: bool
) -> None:
    """Format PATH... in the canonical CFL style (see docs/style.md).

    A directory means every *.cfl file below it; `-` reads standard input and writes the
    formatted text to standard output. Files are rewritten in place unless --check or
    --diff is given. A file with a syntax error is reported and left untouched.

    \b
    Exit codes: 0 ok (or, with --check, nothing would change), 1 a file would change
    (--check) or has a syntax error, 2 usage error (a PATH that does not exist).
    """
    # start-up: `cflc fmt --help` imports this module, not the compiler
    from cfglang.diagnostics import Diagnostic, render_human, render_json
    from cfglang.tools.fmt import FormatError, format_source

    use_color = (
        sys.stderr.isatty() and not os.environ.get("NO_COLOR")
        if color == "auto"
        else color == "always"
    )

    def report(diag: Diagnostic) -> None:
        if error_format == "json":
            click.echo(render_json(diag), err=True)
            return
        click.echo(render_human(diag, color=use_color), err=True, nl=False, color=use_color)

    files, missing = _expand(paths)
    for p in missing:
        report(Diagnostic("E0702", f"`{p}` does not exist"))
    if missing:
        sys.exit(EXIT_USAGE)
    status = EXIT_OK
    for path in files:
        try:
            if path == "-":
                original = sys.stdin.read()
            else:
                with open(path, encoding="utf-8", newline="") as f:
                    original = f.read()
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) else "it is not UTF-8 text"
            report(Diagnostic("E0702", f"`{path}` cannot be read: {reason}"))
            status = EXIT_USAGE
            continue
        shown = "<stdin>" if path == "-" else path
        try:
            formatted = format_source(original, shown)
        except FormatError as e:
            for d in e.diagnostics:
                report(d)
            status = max(status, EXIT_CHANGED)
            continue
        changed = formatted != original
        if diff and changed:
            sys.stdout.writelines(_diff(original, formatted, shown))
        if check:
            if changed:
                status = max(status, EXIT_CHANGED)
                if not diff:
                    click.echo(shown)
            continue
        if diff:
            continue
        if path == "-":
            sys.stdout.write(formatted)
        elif changed:
            atomic_write(path, formatted)
            if not quiet:
                click.echo(f"reformatted {path}", err=True)
    sys.stdout.flush()
    sys.exit(status)
