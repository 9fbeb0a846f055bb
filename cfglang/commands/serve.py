"""`cflc serve [PROJECT]`: the configuration server (docs/server.md); `cflc serve token …`
manages its access tokens."""

from __future__ import annotations

import sys

import click

# Options of `serve` itself that take a value: what `ServeGroup` skips to find PROJECT.
_VALUED = ("--host", "--port", "--state", "--store", "--max-body", "--compile-timeout")


class ServeGroup(click.Group):
    """`cflc serve [PROJECT] [OPTIONS]` serves; `cflc serve token …` is a sub-command. A
    plain group would take PROJECT for a sub-command's name, so PROJECT is taken out of
    the arguments first unless it names one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rest = list(args)
        i = 0
        while i < len(rest):
            a = rest[i]
            if a == "--":
                break
            if a.startswith("-"):
                i += 2 if a in _VALUED else 1
                continue
            if a not in self.commands:
                ctx.meta["cfl_project"] = rest.pop(i)
            break
        return super().parse_args(ctx, rest)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[PROJECT] [OPTIONS] | token COMMAND [ARGS]...")


@click.group(
    name="serve",
    cls=ServeGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8420,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: a free one).",
)
@click.option(
    "--state",
    metavar="DIR",
    default=None,
    help="Where the server keeps its revisions and tokens (default: PROJECT/.cfl-state).",
)
@click.option(
    "--store",
    "store_spec",
    metavar="STORE",
    default=None,
    help="Where revisions are stored: sqlite (default: <state>/server.db) or "
    "etcd://host:port[,host:port...][/prefix][?cacert=CA&user=NAME] (an etcd cluster "
    "several servers share; TLS with cacert, cert and key; the user's password in "
    "$CFL_ETCD_PASSWORD).",
)
@click.option(
    "--max-body",
    default=1024 * 1024,
    show_default=True,
    type=click.IntRange(1),
    help="Largest request body accepted, in bytes (larger: 413).",
)
@click.option(
    "--compile-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0.1),
    help="Wall-clock limit in seconds for compiling one change (longer: 422).",
)
@click.pass_context
def command(
    ctx: click.Context,
    host: str,
    port: int,
    state: str | None,
    store_spec: str | None,
    max_body: int,
    compile_timeout: float,
) -> None:
    """Serve a project's configurations over HTTP, validating every change.

    On first start the project's working tree becomes revision 1 (SQLite in WAL mode
    in PROJECT/.cfl-state); later starts serve the stored revisions. Prints its URL,
    then serves until Ctrl-C. Without <state>/tokens.toml everything is allowed and
    only 127.0.0.1 is listened on. Exit 1 if the project does not compile or the port
    is taken; 2 on bad usage.

    \b
    Example:
      cflc serve                      # http://127.0.0.1:8420
      cflc serve examples/fleet --port 0
      cflc serve --store etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379
      cflc serve token add ci --role editor --scope 'target:env/*'
    """
    if ctx.invoked_subcommand is not None:
        return
    import os  # start-up: `cflc --help` imports this module, not the web stack

    from cfglang.server.run import serve

    project = str(ctx.meta.get("cfl_project", "."))
    if not os.path.isdir(project):
        click.echo(f"error: `{project}` is not a directory", err=True)
        sys.exit(2)

    def echo(line: str) -> None:
        click.echo(line, err=line.startswith(("error", "  ")))

    try:
        status = serve(
            project,
            host=host,
            port=port,
            state=state,
            store_spec=store_spec,
            max_body=max_body,
            compile_timeout=compile_timeout,
            echo=echo,
        )
    except KeyboardInterrupt:
        status = 0
    sys.exit(status)


def _state(ctx: click.Context, state: str | None, project: str) -> str:
    import os  # start-up: as above

    from cfglang.server.run import default_state

    parent = ctx.parent.params.get("state") if ctx.parent is not None else None
    chosen = state or parent
    if chosen:
        return os.path.abspath(chosen)
    from cfglang.project import find_root  # start-up: as above

    return default_state(find_root(os.path.abspath(project)))


_state_option = click.option(
    "--state", "token_state", metavar="DIR", default=None, help="The server's state directory."
)
_project_option = click.option(
    "--project",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="The project (its state directory is PROJECT/.cfl-state).",
)


@command.group(name="token")
def token() -> None:
    """Manage the server's access tokens (<state>/tokens.toml, hashed)."""


@token.command(name="add")
@click.argument("name")
@click.option(
    "--role", type=click.Choice(["reader", "editor", "admin"]), required=True, help="The role."
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    metavar="SCOPE",
    help="`target:PATTERN` or `path:PREFIX` (repeatable; default: everything).",
)
@click.option("--expires-in", metavar="DURATION", default=None, help="e.g. 30d or 12h.")
@_state_option
@_project_option
@click.pass_context
def token_add(
    ctx: click.Context,
    name: str,
    role: str,
    scopes: tuple[str, ...],
    expires_in: str | None,
    token_state: str | None,
    project: str,
) -> None:
    """Add a token and print it (the only time it is shown)."""
    from cfglang.server.tokens import TokenError, add  # start-up: as above
    from cfglang.values import parse_duration

    seconds = None
    if expires_in is not None:
        try:
            seconds = parse_duration(expires_in).millis / 1000
        except ValueError:
            click.echo(f"error: --expires-in `{expires_in}` is not a duration", err=True)
            sys.exit(2)
    try:
        secret = add(_state(ctx, token_state, project), name, role, scopes, seconds)
    except TokenError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    click.echo(secret)


@token.command(name="list")
@_state_option
@_project_option
@click.pass_context
def token_list(ctx: click.Context, token_state: str | None, project: str) -> None:
    """List the tokens (names, roles, scopes; never the tokens)."""
    from cfglang.server.tokens import TokenError, read  # start-up: as above

    try:
        tokens = read(_state(ctx, token_state, project)) or []
    except TokenError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    for t in tokens:
        click.echo(f"{t.name}\t{t.role}\t{','.join(t.scopes) or '*'}")


@token.command(name="revoke")
@click.argument("name")
@_state_option
@_project_option
@click.pass_context
def token_revoke(ctx: click.Context, name: str, token_state: str | None, project: str) -> None:
    """Revoke a token (it fails from the next request on)."""
    from cfglang.server.tokens import TokenError, revoke  # start-up: as above

    try:
        revoke(_state(ctx, token_state, project), name)
    except TokenError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
