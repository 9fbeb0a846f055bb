"""`cflc serve [PROJECT]`: the configuration server (docs/server.md)."""

from __future__ import annotations

import sys

import click


@click.command(name="serve", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("project", required=False, default=".", type=click.Path())
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
    help="Where the server keeps its revisions (default: PROJECT/.cfl-state).",
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
def command(
    project: str, host: str, port: int, state: str | None, max_body: int, compile_timeout: float
) -> None:
    """Serve a project's configurations over HTTP, validating every change.

    On first start the project's working tree becomes revision 1 (SQLite in WAL mode in
    PROJECT/.cfl-state); later starts serve the stored revisions. Prints its URL, then
    serves until Ctrl-C. Exit 1 if the project does not compile or the port is taken;
    2 on bad usage.

    \b
    Example:
      cflc serve                      # http://127.0.0.1:8420
      cflc serve examples/fleet --port 0
    """
    import os  # start-up: `cflc --help` imports this module, not the web stack

    from cfglang.server.run import is_loopback, serve

    if not os.path.isdir(project):
        click.echo(f"error: `{project}` is not a directory", err=True)
        sys.exit(2)
    if not is_loopback(host):
        click.echo(
            "error: without <state>/tokens.toml the server allows everything, so it only "
            "listens on 127.0.0.1 (add tokens to listen elsewhere)",
            err=True,
        )
        sys.exit(2)

    def echo(line: str) -> None:
        click.echo(line, err=line.startswith(("error", "  ")))

    try:
        status = serve(
            project,
            host=host,
            port=port,
            state=state,
            max_body=max_body,
            compile_timeout=compile_timeout,
            echo=echo,
        )
    except KeyboardInterrupt:
        status = 0
    sys.exit(status)
