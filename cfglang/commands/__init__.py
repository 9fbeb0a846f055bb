"""Sub-commands of `cflc` beyond build/check/eval, one module each.

Every module here defines ``command`` (a `click.Command`) and imports nothing but click
(and the standard library) at module level, so `cflc --help` stays fast: the work is done
by functions in `cfglang.api` and the feature modules, imported inside the command.
Modules are discovered, so adding a command never edits a shared file.
"""

from __future__ import annotations

import importlib
import pkgutil

import click


def register(group: click.Group) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        command = getattr(module, "command", None)
        if isinstance(command, click.Command):
            group.add_command(command)
