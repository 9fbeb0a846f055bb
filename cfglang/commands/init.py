"""`cflc init [DIR]`: write a small working project."""

from __future__ import annotations

import os
import sys

import click

from cfglang.commands._options import diagnostic_options, quiet_option
from cfglang.console import EXIT_ERRORS, EXIT_OK, EXIT_USAGE, Ctx
from cfglang.tools.init import existing, write_project


@click.command(name="init")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@diagnostic_options
@quiet_option()
def command(directory: str, force: bool, error_format: str, color: str, quiet: bool) -> None:
    """Create a small CFL project in DIRECTORY (default: the current directory).

    \b
    Writes cfl.toml, schemas/service.cfl, base.cfl, env/dev.cfl, env/prod.cfl and
    README.md; `cflc check` and `cflc build` accept it as it is. Existing files are
    never overwritten unless --force is given.
    """
    sys.exit(_init(directory, force, error_format, color, quiet))


def _init(directory: str, force: bool, error_format: str, color: str, quiet: bool) -> int:
    ctx = Ctx(error_format, color, quiet, 0)
    if os.path.exists(directory) and not os.path.isdir(directory):
        ctx.usage_error("E0701", f"`{directory}` exists and is not a directory")
        return EXIT_USAGE
    clash = existing(directory)
    if clash and not force:
        # only when files clash: attrs and the renderer are not needed otherwise
        from cfglang.diagnostics import Diagnostic

        ctx.report(
            [
                Diagnostic(
                    "E0602",
                    f"`{directory}` already has {', '.join(clash)}; nothing was written",
                    help="pass --force to overwrite them, or choose another directory",
                )
            ]
        )
        return EXIT_ERRORS
    try:
        written = write_project(directory, force=True)
    except OSError as e:
        ctx.usage_error("E0602", f"cannot write into `{directory}`: {e.strerror}")
        return EXIT_ERRORS
    ctx.info(
        "\n".join(
            [f"created {os.path.join(directory, w)}" for w in written]
            + [
                (f"next: cd {directory} && " if directory != "." else "next: ")
                + "DB_PASSWORD=... cflc build   (production's database password has no default)"
            ]
        )
    )
    return EXIT_OK
