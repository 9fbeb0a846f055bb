"""`cflc publish [TARGET…] --server URL`: upload the working tree's changes (docs/server.md)."""

from __future__ import annotations

import sys

import click


@click.command(name="publish", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("targets", nargs=-1)
@click.option("--server", metavar="URL", help="The server, e.g. http://127.0.0.1:8420.")
@click.option(
    "--store",
    metavar="STORE",
    help="Or the store itself, with no server in between: etcd://host:port[,host:port...].",
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
@click.option(
    "--rollout-selector",
    "selector",
    metavar="NAME=VALUE[,...]",
    help="Deliver the new revision only to clients with these labels, in the same write.",
)
@click.option(
    "--rollout-percent",
    "percent",
    type=click.FloatRange(0, 100),
    metavar="P",
    help="Deliver the new revision only to P% of clients (by client id), in the same write.",
)
def command(
    targets: tuple[str, ...],
    server: str | None,
    store: str | None,
    token: str | None,
    project: str,
    dry_run: bool,
    selector: str | None,
    percent: float | None,
) -> None:
    """Publish the working tree's changed sources to a server as one revision.

    The changes go as one write against the server's current revision (If-Match), so a
    change made on the server meanwhile is refused, not overwritten. With TARGETs (such as
    env/prod) only the files they read are sent. Prints each changed target's semantic diff
    and the new revision. Exit 1 if the server refuses the change (its diagnostics are
    printed) or cannot be reached; 2 on bad usage.

    With --store instead of --server the change is compiled, checked and committed here,
    exactly as a server would (for CI pipelines with no server in between).

    With --rollout-selector or --rollout-percent the revision starts a gradual rollout of
    every target it changes, stored with it: the other clients never see it until the
    rollout is promoted (POST .../rollouts/current/promote). Needs an admin token.

    \b
    Example:
      cflc publish --server http://127.0.0.1:8420
      cflc publish env/prod --server https://cfg.internal --dry-run
      cflc publish --store etcd://10.0.0.1:2379,10.0.0.2:2379
      cflc publish --server http://127.0.0.1:8420 --rollout-selector zone=a
    """
    import os  # start-up: `cflc --help` imports this module, not the client

    from cfglang.project import find_root
    from cfglang.server.publish import publish, publish_store

    if (server is None) == (store is None):
        click.echo("error: give one of --server URL and --store STORE", err=True)
        sys.exit(2)
    if selector is not None and percent is not None:
        click.echo("error: give one of --rollout-selector and --rollout-percent", err=True)
        sys.exit(2)
    rollout: dict[str, object] | None = None
    if percent is not None:
        rollout = {"percent": percent}
    elif selector is not None:
        pairs = [item.partition("=") for item in selector.split(",") if item.strip()]
        if not pairs or any(not k.strip() or not sep for k, sep, _ in pairs):
            click.echo("error: --rollout-selector must be NAME=VALUE[,NAME=VALUE...]", err=True)
            sys.exit(2)
        rollout = {"selector": {k.strip(): v.strip() for k, _, v in pairs}}
    root = find_root(os.path.abspath(project))
    if store is not None:
        sys.exit(
            publish_store(
                root,
                store,
                targets=targets,
                dry_run=dry_run,
                rollout=rollout,
                echo=click.echo,
                err=lambda line: click.echo(line, err=True),
            )
        )
    assert server is not None
    status = publish(
        root,
        server,
        targets=targets,
        token=token,
        dry_run=dry_run,
        rollout=rollout,
        echo=click.echo,
        err=lambda line: click.echo(line, err=True),
    )
    sys.exit(status)
