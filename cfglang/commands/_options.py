"""Options shared by `cflc` commands, defined once (imports only click)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


def diagnostic_options(f: Any) -> Any:
    """`--error-format human|json` and `--color auto|always|never`."""
    f = click.option(
        "--color",
        type=click.Choice(["auto", "always", "never"]),
        default="auto",
        show_default=True,
        help="Colour output and diagnostics (NO_COLOR is honoured).",
    )(f)
    f = click.option(
        "--error-format",
        type=click.Choice(["human", "json"]),
        default="human",
        show_default=True,
        help="How to print diagnostics.",
    )(f)
    return f


allow_path_option = click.option(
    "--allow-path",
    multiple=True,
    metavar="DIR",
    help="Allow imports from DIR outside the project root.",
)


def quiet_option(help: str = "Print only errors.") -> Callable[[Any], Any]:
    return click.option("-q", "--quiet", is_flag=True, help=help)


def verbose_option(help: str = "Print more about what is done.") -> Callable[[Any], Any]:
    return click.option("-v", "--verbose", count=True, help=help)


def identity_option(f: Any) -> Any:
    """`--identity FILE` (repeatable), the same on every command that can decrypt."""
    return click.option(
        "--identity",
        "identity",
        multiple=True,
        metavar="FILE",
        type=click.Path(exists=True, dir_okay=False),
        help="age identity file to decrypt secrets with (repeatable; default: "
        "CFL_AGE_IDENTITY or CFL_AGE_IDENTITY_FILE; without any, secrets are not "
        "decrypted and compare by their ciphertext).",
    )(f)
