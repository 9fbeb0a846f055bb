"""Options every `cflc` command that reports errors shares (imports only click)."""

from __future__ import annotations

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
