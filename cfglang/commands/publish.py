"""`cflc publish [TARGET…] --server URL`: upload the working tree's changes (docs/server.md)."""

from __future__ import annotations

import sys

import click


@click.command(name="publish", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("targets", nargs=-1)
@click.option(
    "--server", required=True, metavar="URL", help="The server, e.g. http://127.0.0.1:8420."
)
@click.option(
    "--token",
    envvar="CFL_TOKEN",
    default=None,
    metavar="TOKEN",
    help="Bearer token (default: $CFL_TOKEN).",
)
@click.option(
    "--project",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False, exists=True),
    help="The working tree to publish.",
)
@click.option("--dry-run", is_flag=True, help="Print what would be sent; send nothing.")
def command(
    targets: tuple[str, ...], server: str, token: str | None, project: str, dry_run: bool
) -> None:
    """Publish the working tree's changed sources to a server as one revision.

    The changes go as one write against the server's current revision (If-Match), so a
    change made on the server meanwhile is refused, not overwritten. With TARGETs (such as
    env/prod) only the files they read are sent. Prints each changed target's semantic diff
    and the new revision. Exit 1 if the server refuses the change (its diagnostics are
    printed) or cannot be reached; 2 on bad usage.

    \b
    Example:
      cflc publish --server http://127.0.0.1:8420
      cflc publish env/prod --server https://cfg.internal --dry-run
    """
    import os  # start-up: `cflc --help` imports this module, not the client

    from cfglang.project import find_root
    from cfglang.server.publish import publish

    root = find_root(os.path.abspath(project))
    status = publish(
        root,
        server,
        targets=targets,
        token=token,
        dry_run=dry_run,
        echo=click.echo,
        err=lambda line: click.echo(line, err=True),
    )
    sys.exit(status)
