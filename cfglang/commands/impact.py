"""`cflc impact [--rev REV] [TARGET...]`: which targets a change affects, and how
(see cfglang/tools/impact.py)."""

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
from cfglang.console import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, Ctx, expand_targets, parse_vars


@click.command(name="impact", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("targets", nargs=-1, type=click.Path())
@click.option(
    "--rev",
    default="HEAD",
    show_default=True,
    metavar="REV",
    help="Compare the working tree with REV (a branch, tag, hash, HEAD~3, origin/main).",
)
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit 1 when any target changes, 0 when none does (for CI gates).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print {rev, commit, changed, targets: [{target, status, changes, errors}]}.",
)
@click.option(
    "--var",
    "var",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set an input of every target, on both sides (repeatable).",
)
@allow_path_option
@click.option("--no-cache", is_flag=True, help="Do not use the parse cache.")
@diagnostic_options
@quiet_option()
@verbose_option("Print more.")
def command(
    targets: tuple[str, ...],
    rev: str,
    exit_code: bool,
    as_json: bool,
    var: tuple[str, ...],
    allow_path: tuple[str, ...],
    no_cache: bool,
    error_format: str,
    color: str,
    quiet: bool,
    verbose: int,
) -> None:
    """Show which targets the working-tree changes (or the changes since REV) affect.

    Each target (the project's cfl.toml targets, or TARGET... / a project
    directory) is compiled in the working tree and at REV, and the semantic diff
    is printed per target; targets whose value does not change are listed as
    unchanged. A target whose files are identical at REV is not compiled twice.

    \b
    Exit status: 0, or with --exit-code 1 when anything changes; 1 when a target
    does not compile in the working tree; 2 on bad usage (no repository, unknown REV).

    \b
    Examples:
      cflc impact                       # uncommitted changes
      cflc impact --rev origin/main --exit-code   # what this branch changes
      cflc impact env/prod.cfl --json
    """
    sys.exit(
        _run(
            targets,
            rev,
            exit_code,
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
    targets: tuple[str, ...],
    rev: str,
    exit_code: bool,
    as_json: bool,
    var: tuple[str, ...],
    allow_path: tuple[str, ...],
    no_cache: bool,
    error_format: str,
    color: str,
    quiet: bool,
    verbose: int,
) -> int:
    # start-up: `cflc impact --help` imports this module, not the compiler
    from cfglang.tools.impact import impact
    from cfglang.vcs import GitError, find_repo

    ctx = Ctx(error_format, color, quiet, verbose)
    ctx.use_cache = not no_cache
    cli_vars = parse_vars(ctx, var)
    if cli_vars is None:
        return EXIT_USAGE
    try:
        find_repo(targets[0] if targets else ".")
    except GitError as e:
        ctx.report([e.diagnostic])
        return EXIT_USAGE
    expanded = expand_targets(ctx, list(targets))
    if expanded is None:
        return EXIT_USAGE
    files, settings = expanded
    for f in files:
        if "@" in f and not os.path.exists(f):
            ctx.usage_error(
                "E0701", f"`{f}`: impact compares the working tree with --rev; give plain files"
            )
            return EXIT_USAGE
    allow = list(allow_path) + list(settings.get("allow_paths", []))
    try:
        result = impact(
            files, rev=rev, cli_vars=cli_vars, allow_paths=allow, use_cache=ctx.caching()
        )
    except GitError as e:
        ctx.report([e.diagnostic])
        return EXIT_USAGE
    # A mistake in a shared file is reported once, naming the targets it breaks.
    ctx.report_targets([(t.target, t.errors) for t in result.targets])
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        if color == "auto":
            use_color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        else:
            use_color = color == "always"
        sys.stdout.write(result.render(color=use_color))
        sys.stdout.flush()
    if any(t.status == "broken" for t in result.targets):
        return EXIT_ERRORS
    return EXIT_ERRORS if exit_code and result.changed else EXIT_OK
