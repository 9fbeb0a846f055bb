"""Materialisation: an evaluated value made plain data, checked as a whole object.

`materialize` walks an evaluated object in document order and produces plain data
(`dict`, `list`, scalars), skipping hidden and absent fields. On the way it enforces what
can only be checked on a whole object: closed schemas (unknown fields, with a
suggestion), required fields, and `check` invariants (run by `cfglang.eval.constraints`).
It also bounds the output (`SizeBudget`: shared values count each time they are
written, but are built once) and can record where each field of the data was defined.
It is the last step of an evaluation and the only one that forces every field, so it
lives apart from the evaluator, which computes fields only on demand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cfglang.diagnostics import Note, did_you_mean
from cfglang.eval.constraints import dotted, run_check
from cfglang.eval.objects import HIDDEN, Def, Obj
from cfglang.eval.values import ABSENT, BOTTOM
from cfglang.limits import MAX_NESTING
from cfglang.semantic import types as T
from cfglang.source import Span
from cfglang.values import Secret

if TYPE_CHECKING:
    from cfglang.eval.evaluate import Evaluator, Limits

# Where each field of the data was defined: for each plain dict (by id), the defining span
# of each of its keys, in the dict's order (a tuple: a dict per object of the data cost
# ~25 MB at S = 10,000).
SpanTable = dict[int, tuple[Span | None, ...]]


class SizeBudget:
    """What is left of `Limits.max_output_values`/`max_output_bytes` while materialising.

    Shared values are counted each time they are written (that is what an emitter
    writes), but built once: `memo` maps a list or object (by id) to its plain data, its
    size and the depth it was built at, and a later occurrence at that depth or shallower
    reuses the same data after paying its size. So sharing that doubles at each of 60
    levels costs 60 walks and stops at the budget, instead of 2^60 steps.
    """

    __slots__ = (
        "bytes",
        "keeping",
        "max_bytes",
        "max_depth",
        "max_values",
        "memo",
        "secret",
        "spans",
        "values",
    )

    def __init__(
        self,
        limits: Limits,
        spans: SpanTable | None = None,
        keeping: Keeping | None = None,
    ) -> None:
        # With ``spans``, each object's plain dict (by id) gets its fields' defining spans
        # (the top of each definition stack): the provenance that outlives the evaluation.
        self.spans = spans
        self.values = 0
        self.bytes = 0
        self.max_values = limits.max_output_values
        self.max_bytes = limits.max_output_bytes
        # How long a data path may be: the syntax's nesting limit bounds values too, so
        # that every emitter writes whatever is evaluated (`cfglang.limits`). Read once
        # per value materialised, so worked out here, once.
        self.max_depth = min(limits.max_depth, MAX_NESTING + 1)
        self.memo: dict[int, tuple[Any, Any, int, int, int]] = {}
        self.keeping = keeping
        self.secret = False  # whether the data holds a secret (the build asks)

    def add(self, values: int, nbytes: int) -> None:
        self.values += values
        self.bytes += nbytes
        if self.values > self.max_values or self.bytes > self.max_bytes:
            raise _TooLarge()


class Kept:
    """The plain data of the input-independent fields of one object of the document,
    from an earlier evaluation of the same program: ``fields`` maps a key that no input
    can change (`cfglang.semantic.dependence`) to its data (a template, copied for each
    use) and what it cost the budget; ``children`` holds the same for the fields that
    are objects holding input-dependent fields, but are the same object in every
    evaluation."""

    __slots__ = ("children", "fields", "leaves")

    def __init__(self) -> None:
        self.fields: dict[str, tuple[Any, int, int, Span | None]] = {}
        self.children: dict[str, Kept] = {}
        # The kept fields whose value is a plain scalar: their checked value is their
        # data, so the object's field memo can hold them before anything reads them.
        self.leaves: dict[str, Any] = {}


class Keeping:
    """Kept data in one materialisation: used (``fill`` false) or recorded (``fill``
    true, into a new tree that the program keeps only if the evaluation reported
    nothing). ``spans`` holds the provenance of the templates' dicts (by id)."""

    __slots__ = ("dirty", "fill", "root", "spans", "unstable")

    def __init__(
        self,
        dirty: frozenset[str],
        unstable: frozenset[str],
        kept: tuple[Kept, SpanTable] | None,
    ) -> None:
        self.dirty = dirty
        self.unstable = unstable
        self.fill = kept is None
        self.root, self.spans = kept if kept is not None else (Kept(), {})


_NOTHING_KEPT = Kept()  # the node of an object materialised without keeping


class _Unkeepable(Exception):
    """A value that must not outlive its evaluation (a secret)."""


def _copy(
    data: Any,
    src: SpanTable | None,
    dst: SpanTable | None,
) -> Any:
    """A copy of plain ``data`` (its dicts and lists; scalars are immutable), with the
    provenance of each dict carried from ``src`` to ``dst``. Raises `_Unkeepable` on a
    secret."""
    cls = data.__class__
    if cls is dict:
        out = {k: v if v.__class__ in _LEAVES else _copy(v, src, dst) for k, v in data.items()}
        if src is not None and dst is not None:
            at = src.get(id(data))
            if at is not None:
                dst[id(out)] = at
        return out
    if cls is list:
        return [v if v.__class__ in _LEAVES else _copy(v, src, dst) for v in data]
    if isinstance(data, Secret):
        raise _Unkeepable()
    return data


class _TooLarge(Exception):
    """Unwinds materialisation when the output budget is spent; the outermost field
    passed on the way out becomes the site of the error."""

    def __init__(self) -> None:
        super().__init__("output too large")
        self.span: Span | None = None
        self.path: tuple[str | int, ...] = ()


def materialize(
    ev: Evaluator,
    value: Any,
    path: tuple[str | int, ...] = (),
    *,
    budget: SizeBudget | None = None,
    site: Span | None = None,
    spans: SpanTable | None = None,
    keeping: Keeping | None = None,
) -> Any:
    """Plain data for a value; BOTTOM where an error was reported.

    ``budget`` is shared by values emitted together (a build's named outputs); ``site``
    is where a value too large to emit is reported (else at the top-level field holding
    it). Plain data may share sub-dicts and lists: treat it as read-only. ``spans``
    collects where each field of the data was defined (see `SizeBudget`). With
    ``keeping`` (the document of a reused program), the data of fields no input can
    change is taken from the previous evaluation, or recorded for the next.
    """
    b = budget if budget is not None else SizeBudget(ev.limits, spans, keeping)
    kept = b.keeping.root if b.keeping is not None else None
    try:
        return _materialize(ev, value, path, b, site, kept)
    except _TooLarge as e:
        limits = ev.limits
        what = (
            f"{limits.max_output_values} values"
            if b.values > b.max_values
            else f"{limits.max_output_bytes} bytes"
        )
        ev.diags.error(
            "E0502",
            "value is too large to emit",
            site if site is not None else e.span,
            label=f"more than {what} when written out",
            help="shared values count each time they are written; see Limits in the "
            "language reference to raise the limit",
            data_path=dotted(e.path) if e.path else None,
        )
        return BOTTOM


def _materialize(
    ev: Evaluator,
    value: Any,
    path: tuple[str | int, ...],
    budget: SizeBudget,
    where: Span | None = None,
    kept: Kept | None = None,
) -> Any:
    """``where`` is where the field holding ``value`` is set (a list has no site);
    ``kept``, the kept data of this object (`Kept`)."""
    limit = budget.max_depth
    if len(path) > limit:
        site = value.site if isinstance(value, Obj) and value.site is not None else where
        ev.diags.error(
            "E0502",
            f"value is nested more than {limit - 1} levels deep",
            site,
            label="nested this deep by `let`s, templates or references",
            help="every output format must be able to write the value; flatten it",
            data_path=dotted(path[:8]) + "...",
        )
        return BOTTOM
    cls = value.__class__
    if cls is not Obj and cls is not tuple:
        if cls not in _LEAVES and isinstance(value, Secret):
            budget.secret = True
        return value
    memo = budget.memo.get(id(value))
    if memo is not None and len(path) <= memo[4]:
        budget.add(memo[2], memo[3])
        return memo[1]
    values0, bytes0 = budget.values, budget.bytes
    out: Any
    if cls is Obj:
        out = _object(ev, value, path, budget, kept)
    elif len(path) >= limit:  # items would be too deep: report it
        out = [_materialize(ev, x, (*path, i), budget, where) for i, x in enumerate(value)]
    else:
        out = []
        nbytes = 0
        for i, x in enumerate(value):
            c = x.__class__
            if c in _LEAVES:
                if c is str:
                    nbytes += len(x)
                out.append(x)
            else:
                out.append(_materialize(ev, x, (*path, i), budget, where))
        budget.add(len(value), nbytes)
    budget.memo[id(value)] = (
        value,
        out,
        budget.values - values0,
        budget.bytes - bytes0,
        len(path),
    )
    return out


# Values that are their own plain data (checked by exact class: the hot path of every build).
_LEAVES = frozenset({str, int, float, bool, type(None)})


def _object(
    ev: Evaluator,
    obj: Obj,
    path: tuple[str | int, ...],
    budget: SizeBudget,
    kept: Kept | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    defs = obj.defs()
    schema = obj.schema
    fields = schema.fields if schema is not None else None
    # A misspelt key is one mistake: its unknown-field error already names the field it
    # meant, so that field is not also reported missing. Keys of one or two letters are
    # "near" anything, so they are too weak a sign of a typo to hide an error.
    meant: set[str | None] | None = None  # worked out only when a field is missing
    values = obj._values
    # Leaves are stored directly, unless they are too deep, which materialize reports.
    leaves = _LEAVES if len(path) < budget.max_depth else frozenset()
    # The defining span of each key of ``out``, in order, when collecting provenance.
    found: list[Span | None] | None = [] if budget.spans is not None else None
    # ``node``: this object's kept data when keeping (else an empty node, never written).
    keeping = budget.keeping if kept is not None else None
    node = kept if kept is not None else _NOTHING_KEPT
    fill = keeping is not None and keeping.fill
    kept_spans = keeping.spans if keeping is not None else None
    if keeping is not None and not fill and node.leaves:
        # What the fields an input reaches read of this object's kept fields (a
        # substitution reading `name`) comes from the memo, as if evaluated.
        for k, leaf in node.leaves.items():
            if k not in values:
                values[k] = leaf
    for key, stack in defs.items():
        clean = keeping is not None and key not in keeping.dirty
        if clean and not fill:
            # Kept by an evaluation of this same object that reported nothing: the key
            # is visible and known there, and so here (the object is the same).
            hit = node.fields.get(key)
            if hit is not None:
                data = hit[0]
                if data.__class__ is dict or data.__class__ is list:
                    data = _copy(data, kept_spans, budget.spans)
                out[key] = data
                if found is not None:
                    found.append(hit[3])
                budget.add(hit[1], hit[2])
                continue
        hidden = False
        for d in stack:
            if d.flags & HIDDEN:
                hidden = True
                break
        if hidden:
            continue
        if fields is not None and key not in fields:
            assert schema is not None
            site = next((d for d in stack if d.layer_no >= 0), None)
            if site is not None:
                best = did_you_mean(key, fields)
                ev.diags.error(
                    "E0202",
                    f"`{schema.name}` has no field `{key}`",
                    site.key_span,
                    label="unknown field",
                    help=f"did you mean `{best}`?" if best else None,
                    notes=(Note(f"`{schema.name}` is defined here", schema.decl.name_span),),
                    data_path=dotted((*path, key)),
                )
            continue
        if key in values:
            v = values[key]
        elif stack:
            v = ev.field_value(obj, key, stack)
        else:
            v = ABSENT
        if v is ABSENT:
            if meant is None:
                meant = (
                    {did_you_mean(k, fields) for k in defs if k not in fields and len(k) > 2}
                    if fields is not None
                    else set()
                )
            if key not in meant:
                _missing(ev, obj, key, stack, path)
            continue
        defined = _defined_at(stack) if found is not None and stack else None
        if v is BOTTOM or v.__class__ in leaves:
            out[key] = v
            if found is not None:
                found.append(defined)
            cost = len(key) + len(v) if v.__class__ is str else len(key)
            budget.add(1, cost)
            if clean and fill and v is not BOTTOM:
                node.fields[key] = (v, 1, cost, defined)
                node.leaves[key] = v
            continue
        below = None
        if keeping is not None and not clean and key not in keeping.unstable and v.__class__ is Obj:
            # Not kept as a whole (an input reaches some field of it), but the same
            # object in every evaluation: its other fields can be.
            if fill:
                below = node.children[key] = Kept()
            else:
                below = node.children.get(key)
        values0, bytes0 = budget.values, budget.bytes
        try:
            where = stack[-1].key_span if stack else obj.site
            out[key] = _materialize(ev, v, (*path, key), budget, where, below)
            if found is not None:
                found.append(defined)
            budget.add(1, len(key))
        except _TooLarge as e:
            e.span, e.path = stack[-1].value_span, (*path, key)
            raise
        if clean and fill and budget.spans is not None:  # only with provenance to keep
            try:
                template = _copy(out[key], budget.spans, kept_spans)
            except _Unkeepable:
                continue
            node.fields[key] = (
                template,
                budget.values - values0,
                budget.bytes - bytes0,
                defined,
            )
    if found is not None and budget.spans is not None:
        budget.spans[id(out)] = tuple(found)
    if not obj._checked:
        obj._checked = True
        for stmt, scope in obj.checks():
            run_check(ev, obj, stmt, scope, path)
    return out


def _defined_at(stack: list[Def]) -> Span:
    """Where a field's value is defined: the top of its stack, past bare declarations."""
    top = stack[-1]
    if top.op == "decl":
        top = next((d for d in reversed(stack) if d.op != "decl"), top)
    return top.stmt.span


def _missing(
    ev: Evaluator, obj: Obj, key: str, stack: list[Def], path: tuple[str | int, ...]
) -> None:
    types = obj.field_type(key)
    if not types or any(T.is_optional(t) for t, _ in types):
        return
    unset = next((d for d in reversed(stack) if d.op == "unset"), None)
    decl_span = types[0][1]
    if unset is not None:
        ev.diags.error(
            "E0306",
            f"`{key}` is required and cannot be unset",
            unset.span,
            notes=(Note("required here", decl_span),),
            data_path=dotted((*path, key)),
        )
        return
    ev.diags.error(
        "E0303",
        f"missing required field `{key}`",
        obj.site,
        label=f"`{key}` is never set in this object",
        notes=(Note(f"`{key}` is declared here without a default", decl_span),),
        help=f"set `{key} = ...`",
        data_path=dotted((*path, key)),
    )
