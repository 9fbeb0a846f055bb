"""Inputs of an evaluation: the values set from outside, bound to the program's declarations.

An evaluation is a function of a `Program`, a `Given` and a secrets capability. `Given`
holds what the caller set (`--vars` files, Python ``vars``, `--var` strings, already in
precedence order: later sources win), each value with where it came from. `bind_inputs`
registers, for every input the entry's chain declares, a thunk that computes its value by
the language's precedence (docs/language.md §4): a given value, else the environment
variable it reads, else the newest default along the chain; then every input is computed
once, so a missing or malformed one is an error even if no expression reads it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from cfglang.diagnostics import Note
from cfglang.eval.conform import choices, fix_help, type_rule
from cfglang.eval.errors import err
from cfglang.eval.objects import from_plain
from cfglang.semantic import types as T
from cfglang.semantic.types import holds_secret
from cfglang.source import Span

if TYPE_CHECKING:
    from cfglang.eval.evaluate import Evaluator
    from cfglang.semantic.program import InputChain, Program


@attrs.frozen
class Given:
    """Input values set from outside: name -> (value, source, from text).

    ``source`` names where the value came from (``--var``, ``vars``, ``--vars FILE``) for
    messages and `cflc explain`; ``from text`` marks a `--var` string, which is coerced to
    the input's declared type rather than checked against it.
    """

    values: Mapping[str, tuple[Any, str, bool]] = attrs.field(factory=dict)

    @classmethod
    def of(
        cls,
        file_values: Mapping[str, tuple[Any, str]] = {},
        vars: Mapping[str, Any] = {},
        cli_vars: Any = (),
    ) -> Given:
        """By precedence: `--vars` files, then Python ``vars``, then `--var` strings."""
        given: dict[str, tuple[Any, str, bool]] = {}
        for k, (v, src) in file_values.items():
            given[k] = (v, f"--vars {src}", False)
        for k, v in vars.items():
            given[k] = (v, "vars", False)
        for k, s in cli_vars:
            given[k] = (s, "--var", True)
        return cls(given)


def bind_inputs(ev: Evaluator, program: Program, given: Given) -> None:
    """Register every input of ``program`` with its thunk, then compute each once."""
    for name, chain in program.inputs.items():
        ev.input_decls[name] = chain[0][1]
        ev.input_thunks[name] = _thunk(ev, name, chain, given.values)
    # Every declared input is computed up front, so a missing or malformed one is an
    # error even if no expression happens to read it.
    for name, chain in program.inputs.items():
        try:
            ev.input_value(name, chain[0][1].name_span)
        except Exception as e:
            if hasattr(e, "diag"):
                ev.diags.add(e.diag)


def _thunk(
    ev: Evaluator, name: str, chain: InputChain, given: Mapping[str, tuple[Any, str, bool]]
) -> Any:
    def thunk() -> Any:
        base_mod, base = chain[0]
        typ = ev.resolve_type(base.type, base_mod) if base.type is not None else None
        if name in given:
            raw, src, text = given[name]
            ev.input_sources[name] = (src, None)
            refuse_surrogates(name, raw, src, base.name_span)
            value = from_plain(ev, raw)
            if typ is None:
                return value
            try:
                return ev.conform(value, typ, base.name_span, None, from_text=text or "units")
            except Exception as e:
                if not hasattr(e, "diag"):
                    raise
                secret = holds_secret(typ)
                shown = f'"{raw}"' if isinstance(raw, str) else repr(raw)
                if secret:
                    shown = "<secret>"  # a mistyped secret is still a secret
                raise err(
                    "E0402",
                    f"input {name}: expected {typ.show()}, got {shown}",
                    None,
                    notes=(Note(f"`{name}` is declared here", base.name_span),),
                    help=_rule_help(name, f"set by {src}", typ, raw, secret, text),
                ) from None
        env_decl = next((d for _, d in reversed(chain) if d.env), None)
        if env_decl is not None and env_decl.env:
            ev.env_read[env_decl.env] = ev.env.get(env_decl.env)
        if env_decl is not None and env_decl.env is not None and env_decl.env in ev.env:
            raw = ev.env[env_decl.env]
            ev.input_sources[name] = (f"environment variable {env_decl.env}", env_decl.span)
            refuse_surrogates(name, raw, f"environment variable {env_decl.env}", env_decl.span)
            if typ is None:
                return raw
            try:
                return ev.conform(raw, typ, env_decl.name_span, None, from_text=True)
            except Exception as e:
                if not hasattr(e, "diag"):
                    raise
                secret = holds_secret(typ)
                shown = "<secret>" if secret else f'"{raw}"'  # never echo a secret
                raise err(
                    "E0402",
                    f"input {name}: expected {typ.show()} in environment variable "
                    f"{env_decl.env}, got {shown}",
                    env_decl.span,
                    help=_rule_help(
                        name, f"set by environment variable {env_decl.env}", typ, raw, secret, True
                    ),
                ) from None
        for mod, d in reversed(chain):
            if d.default is not None:
                what = "default" if d is base else f"new default in {mod.source.path}"
                ev.input_sources[name] = (what, d.default.span)
                v = ev.ev(d.default, ev.module_scope(mod))
                if typ is not None:
                    v = ev.conform(v, typ, d.default.span, base.name_span)
                return v
        hint = f"pass `--var {name}=VALUE`"
        if env_decl is not None:
            hint += f" or set the environment variable {env_decl.env}"
        raise err(
            "E0401",
            f"input `{name}` is not set",
            base.name_span,
            label="no default and no value given",
            help=hint,
        )

    return thunk


def _rule_help(name: str, source: str, typ: T.Type, raw: Any, secret: bool, text: bool) -> str:
    """Where the value came from, then, for a value that is not secret, the fix
    (did-you-mean, `write 20s`), then the type's rule (its refinement, its allowed values,
    the spellings of a bool): docs/errors.md, E0402."""
    fix = None if secret else fix_help(raw, typ, quoted=not text)
    if fix is not None and not text and fix.endswith(", without quotes"):
        # A data file's string is read as a duration or size (`"20s"`): its quotes are
        # not the mistake, only the spelling is.
        fix = fix.removesuffix(", without quotes")
    if fix is not None and choices(typ):
        # fix_help's did-you-mean ends in the allowed values, which the rule gives.
        fix = fix.split("? ", 1)[0] + "?" if fix.startswith("did you mean") else None
    rule = type_rule(typ)
    out = source
    if fix is not None:
        out += f"; {fix}"
    if rule is not None:
        out += f" {rule}" if out.endswith("?") else f"; {rule}"
    return out


_SURROGATE = re.compile("[\ud800-\udfff]")


def refuse_surrogates(name: str, raw: Any, src: str, span: Span) -> None:
    """A lone surrogate (from command-line bytes that are not UTF-8, or a `\\uD800` escape
    in a --vars file) is no character: no output format could write it."""
    stack = [raw]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack += [*v.keys(), *v.values()]
        elif isinstance(v, (list, tuple)):
            stack += v
        elif isinstance(v, str) and not v.isascii() and _SURROGATE.search(v):
            raise err(
                "E0402",
                f"input {name}: the value is not valid Unicode text (a lone surrogate)",
                span,
                help=f"set by {src}; pass UTF-8 text",
            )
