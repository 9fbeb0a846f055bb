"""`cflc history FILE [PATH]`: how a target's compiled value changed across git commits
(see cfglang/tools/history.py)."""

from __future__ import annotations

import json
import os
import sys

import click

from cfglang.commands._options import (
    allow_path_option,
    diagnostic_options,
    quiet_option,
    verbose_option,
)
from cfglang.console import EXIT_OK, EXIT_USAGE, Ctx, parse_vars


@click.command(name="history", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("file", type=click.Path())
@click.argument("path", required=False)
@click.option(
    "--since",
    metavar="DATE",
    help="Only commits more recent than DATE "
    '(anything `git log --since` takes: 2024-01-01, "2 weeks ago").',
)
@click.option(
    "-n", "--max-count", type=click.IntRange(min=1), metavar="N", help="Show at most N changes."
)
@click.option(
    "--rev",
    default="HEAD",
    show_default=True,
    metavar="REV",
    help="Walk history from REV instead of HEAD.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print {target, path, head, branch, entries: [{commit, author, email, date, "
    "subject, status, changes, errors}], diagnostics} as JSON.",
)
@click.option(
    "--var",
    "var",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set an input at every revision (repeatable).",
)
@allow_path_option
@click.option("--no-cache", is_flag=True, help="Do not use the parse cache.")
@diagnostic_options
@quiet_option()
@verbose_option("Say how many commits were walked and compiled.")
def command(
    file: str,
    path: str | None,
    since: str | None,
    max_count: int | None,
    rev: str,
    as_json: bool,
    var: tuple[str, ...],
    allow_path: tuple[str, ...],
    no_cache: bool,
    error_format: str,
    color: str,
    quiet: bool,
    verbose: int,
) -> None:
    """Show the commits that changed the compiled value of FILE (or of PATH in it).

    Walks the commits reachable from HEAD (first parents, newest first) that touched
    any file FILE imports or extends at that revision, compiles each, and prints
    those where the compiled value changed: commit, date, author, subject and the
    semantic diff. A revision that does not compile is shown as such.

    \b
    Examples:
      cflc history env/prod.cfl
      cflc history env/prod.cfl services.billing.replicas --since 2024-01-01
      cflc history env/prod.cfl --max-count 5 --json
    """
    sys.exit(
        _run(
            file,
            path,
            since,
            max_count,
            rev,
            as_json,
            var,
            allow_path,
            no_cache,
            error_format,
            color,
            quiet,
            verbose,
        )
    )


def _run(
    file: str,
    path: str | None,
    since: str | None,
    max_count: int | None,
    rev: str,
    as_json: bool,
    var: tuple[str, ...],
    allow_path: tuple[str, ...],
    no_cache: bool,
    error_format: str,
    color: str,
    quiet: bool,
    verbose: int,
) -> int:
    # start-up: `cflc history --help` imports this module, not the compiler
    from cfglang.tools.history import history
    from cfglang.vcs import GitError

    ctx = Ctx(error_format, color, quiet, verbose)
    ctx.use_cache = not no_cache
    cli_vars = parse_vars(ctx, var)
    if cli_vars is None:
        return EXIT_USAGE
    if os.path.isdir(file):
        ctx.usage_error("E0702", f"`{file}` is a directory, not a module")
        return EXIT_USAGE
    if not os.path.exists(file):
        ctx.usage_error("E0702", f"`{file}` does not exist")
        return EXIT_USAGE
    try:
        h = history(
            file,
            path,
            since=since,
            max_count=max_count,
            rev=rev,
            cli_vars=cli_vars,
            allow_paths=allow_path,
            use_cache=ctx.caching(),
        )
    except GitError as e:
        ctx.report([e.diagnostic])
        return EXIT_USAGE
    except ValueError as e:
        ctx.usage_error("E0701", str(e))
        return EXIT_USAGE
    ctx.report(h.diagnostics)
    if as_json:
        click.echo(json.dumps(h.to_json(), ensure_ascii=False, indent=2))
    else:
        if color == "auto":
            use_color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        else:
            use_color = color == "always"
        sys.stdout.write(h.render(color=use_color))
        sys.stdout.flush()
        if not h.entries and not quiet:
            ctx.info("no commit changed the compiled value" + (f" at `{path}`" if path else ""))
    if verbose:
        ctx.info(f"{h.walked} commit(s) walked, {h.compiled} revision(s) compiled")
    return EXIT_OK
