"""The terminal session shared by `cflc`, its commands and the watch tools.

`Ctx` renders diagnostics (human or JSON, colour rules) and messages to stderr; the rest
are the steps every building command shares: `--var` and `--vars` checking, expanding
arguments into project targets (`cfl.toml` via `cfglang.project`), and writing results
(all rendered first, then committed as one set). It imports nothing heavy at module level:
`cflc --help` loads it, so the compiler is imported inside the functions that need it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from cfglang.paths import resolves_inside

EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class Ctx:
    def __init__(self, error_format: str, color: str, quiet: bool, verbose: int) -> None:
        self.error_format = error_format
        self.quiet = quiet
        self.verbose = verbose
        if color == "auto":
            # https://no-color.org: a non-empty NO_COLOR disables colour; an explicit
            # --color always still wins.
            self.color = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
        else:
            self.color = color == "always"

    def report(self, diagnostics: Sequence[Any]) -> None:
        from cfglang.diagnostics import render_human, render_json  # start-up: see the docstring

        for d in diagnostics:
            if self.quiet and not d.is_error:
                continue
            if self.error_format == "json":
                click.echo(render_json(d), err=True)
            else:
                # color= is needed: click.echo strips ANSI codes when stderr is not a
                # terminal, which would make `--color always` a no-op in pipes and CI logs.
                click.echo(render_human(d, color=self.color), err=True, nl=False, color=self.color)

    def report_targets(self, per_target: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Report the diagnostics of several targets once per mistake (`merge_targets`),
        warnings as errors when `warnings_as_errors` is set."""
        merged = merge_targets(per_target)
        self.report(promote_warnings(merged) if self.warnings_as_errors else merged)

    def failed(self, diagnostics: Sequence[Any]) -> bool:
        """Whether these diagnostics fail the command: an error, or with
        `warnings_as_errors` any diagnostic at all."""
        return any(d.is_error or self.warnings_as_errors for d in diagnostics)

    # `--warnings-as-errors` (or `[check] warnings_as_errors` in cfl.toml): any warning
    # fails `build` and `check` and is reported as an error.
    warnings_as_errors = False
    use_cache = True
    inputs: dict[str, Any] = {}  # noqa: RUF012 - set per build, read on error paths
    profile = False
    identity: Sequence[str] = ()
    plaintext = "warn"

    def caching(self) -> bool:
        from cfglang import cache  # start-up: see the docstring

        return self.use_cache and cache.enabled()

    def print_profile(self, target: str, res: Any) -> None:
        """The --profile report, on stderr so that it never mixes with output."""
        prof = res.profile
        if not self.profile or prof is None:
            return
        lines = [
            f"profile of {target}" + (" (served from the build cache)" if res.from_cache else "")
        ]
        total = sum(prof.phases.values())
        for name, secs in prof.phases.items():
            share = 100 * secs / total if total else 0.0
            lines.append(f"  {name:<28} {secs * 1000:9.1f} ms  {share:5.1f}%")
        lines.append(f"  {'total':<28} {total * 1000:9.1f} ms")
        if prof.files:
            lines.append("  parse time per file:")
            for path, secs in sorted(prof.files.items(), key=lambda kv: -kv[1])[:15]:
                how = "parsed" if path in prof.parsed else "from parse cache"
                lines.append(f"    {secs * 1000:9.1f} ms  {path}  ({how})")
        if prof.sites:
            lines.append("  slowest fields (self time):")
            for secs, site, key in prof.sites:
                lines.append(f"    {secs * 1000:9.2f} ms  {site}  {key}")
        click.echo("\n".join(lines), err=True)

    def info(self, msg: str) -> None:
        if not self.quiet:
            click.echo(msg, err=True)

    def usage_error(self, code: str, message: str) -> None:
        from cfglang.diagnostics import Diagnostic  # start-up: see the docstring

        self.report([Diagnostic(code, message)])


def merge_targets(per_target: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
    """The diagnostics of the targets of one command, one per mistake.

    A mistake in a file that several targets share is found once per target; it is the
    same mistake when code, span and message are equal, and is then reported once with
    ``targets`` naming every target it breaks (the first target's notes are kept). With
    more than one target, every diagnostic names its targets, even a diagnostic of one.
    Order: as first found (target order, then each target's own order).
    """
    import attrs  # start-up: see the docstring of the module

    if len(per_target) < 2:
        return [d for _, diags in per_target for d in diags]
    found: dict[tuple[object, ...], tuple[Any, list[str]]] = {}
    for target, diags in per_target:
        name = target.replace(os.sep, "/")
        for d in diags:
            key = (d.code, d.span.key() if d.span is not None else None, d.message)
            names = found.setdefault(key, (d, []))[1]
            if name not in names:
                names.append(name)
    return [attrs.evolve(d, targets=tuple(names)) for d, names in found.values()]


def promote_warnings(diagnostics: Sequence[Any]) -> list[Any]:
    """Every warning as an error, with a note saying why (`--warnings-as-errors`)."""
    import attrs  # start-up, as above

    from cfglang.diagnostics import Note  # start-up, as above

    why = Note("warnings are errors here (`--warnings-as-errors` or `[check]` in cfl.toml)")
    return [
        d if d.is_error else attrs.evolve(d, severity="error", notes=(*d.notes, why))
        for d in diagnostics
    ]


def parse_vars(ctx: Ctx, items: Sequence[str]) -> list[tuple[str, str]] | None:
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            ctx.usage_error("E0701", f"--var expects NAME=VALUE, got `{item}`")
            return None
        out.append((name.strip(), value))
    return out


def check_var_files(ctx: Ctx, var_files: Sequence[str]) -> bool:
    """`--vars` files must exist, be regular files and be readable (else exit 2)."""
    for vf in var_files:
        if os.path.isdir(vf):
            ctx.usage_error("E0702", f"--vars file `{vf}` is a directory")
            return False
        if not os.path.isfile(vf):
            ctx.usage_error("E0702", f"--vars file `{vf}` does not exist")
            return False
        if not os.access(vf, os.R_OK):
            ctx.usage_error("E0702", f"--vars file `{vf}` cannot be read (permission denied)")
            return False
    return True


def _limits(table: Any, path: str) -> Any:
    """The `Limits` of a cfl.toml `[limits]` table (the file at ``path``), or the
    `ProjectError` saying, at the key, why it is wrong."""
    import attrs  # start-up: `cflc --help` imports this module, not the evaluator

    from cfglang.eval.evaluate import Limits
    from cfglang.project import check_limits

    bad = check_limits(table, [f.name for f in attrs.fields(Limits)], path)
    return bad if bad is not None else Limits(**table)


def expand_targets(
    ctx: Ctx, paths: Sequence[str], *, read_config: bool = False, announce: bool = True
) -> tuple[list[str], dict[str, Any]] | None:
    """Expand arguments: files stay, a directory (or nothing) means the project's targets:
    `targets` in `cfl.toml`, else the root's entry files (`cfglang.project.entry_files`).

    ``read_config`` (`build`, `check`): the `cfl.toml` of a file argument is read too,
    strictly, for its `[check]` table (``settings["warnings_as_errors"]``). ``announce``:
    say which default targets were found (`watch` says it once, not every round).
    """
    import glob  # start-up, as above

    from cfglang.project import ProjectError, load  # start-up, as above

    files: list[str] = []
    settings: dict[str, Any] = {}
    strict = False
    for p in paths or (".",):
        if os.path.isdir(p):
            try:
                proj = load(p)
            except ProjectError as e:
                ctx.report([e.diagnostic()])
                return None
            strict = strict or proj.warnings_as_errors
            root, settings = proj.root, dict(proj.settings)
            # Paths in cfl.toml are relative to the project root, not to the current
            # directory (`cflc build path/to/project` from elsewhere).
            settings["output_dir"] = os.path.relpath(
                os.path.join(root, str(settings.get("output_dir", "out")))
            )
            settings["allow_paths"] = [
                os.path.join(root, str(a)) for a in settings.get("allow_paths", [])
            ]
            if "limits" in settings:
                limits = _limits(settings["limits"], os.path.join(root, "cfl.toml"))
                if isinstance(limits, ProjectError):
                    ctx.report([limits.diagnostic()])
                    return None
                settings["limits"] = limits
            patterns = settings.get("targets")
            if not patterns:
                entries = default_targets(ctx, p, proj, announce=announce)
                if entries is None:
                    return None
                files += entries
                # The root their imports are sandboxed to: without cfl.toml and git, the
                # directory built, not each entry's own (`env/prod.cfl` extends
                # `../base.cfl`).
                settings["root"] = proj.root
                continue
            for pattern in patterns:
                matched = sorted(glob.glob(os.path.join(root, pattern)))
                if not matched:
                    ctx.usage_error("E0703", f"target `{pattern}` matches no file")
                    return None
                files += [os.path.relpath(m) for m in matched]
        else:
            if "@" in p and not os.path.exists(p):  # FILE@REV: a module in git at REV
                from cfglang.vcs import check_spec, split_spec  # only for FILE@REV (start-up)

                bad = check_spec(p)
                if bad is not None:
                    ctx.report([bad])
                    return None
                if split_spec(p)[1] is not None:
                    files.append(p)
                    continue
            if not os.path.exists(p):
                ctx.usage_error("E0702", f"`{p}` does not exist")
                return None
            if not os.access(p, os.R_OK):
                ctx.usage_error("E0702", f"`{p}` cannot be read (permission denied)")
                return None
            if read_config:
                try:
                    strict = strict or load(p).warnings_as_errors
                except ProjectError as e:
                    ctx.report([e.diagnostic()])
                    return None
            files.append(p)
    settings["warnings_as_errors"] = strict
    return files, settings


def default_targets(
    ctx: Ctx, directory: str, proj: Any, *, announce: bool = True
) -> list[str] | None:
    """The targets of ``directory`` when `cfl.toml` names none: the entry files of the
    project ``proj`` inside ``directory``, relative to the current directory. They are said
    on stderr (unless `-q` or JSON diagnostics); none is an error (E0704, None)."""
    from cfglang.project import entry_files  # start-up, as above

    inside = None if os.path.samefile(directory, proj.root) else directory
    found = [os.path.relpath(f) for f in entry_files(proj.root, inside)]
    why = "cfl.toml has no `targets`" if proj.has_config else "no cfl.toml"
    if not found:
        ctx.report(
            [
                _diagnostic(
                    "E0704",
                    f"no targets in `{directory}`: {why}, and no .cfl file there is an "
                    "entry file (one that no other file imports or extends)",
                    help="name the files to build, or set `targets` in cfl.toml",
                )
            ]
        )
        return None
    if announce and ctx.error_format != "json":
        shown = ", ".join(f.replace(os.sep, "/") for f in found)
        ctx.info(
            f"targets ({why}: the entry files, which no other file imports or extends): {shown}"
        )
    return found


def _diagnostic(code: str, message: str, **kw: Any) -> Any:
    from cfglang.diagnostics import Diagnostic  # start-up, as above

    return Diagnostic(code, message, **kw)


def write_results(
    ctx: Ctx,
    results: list[tuple[str, Any]],
    fmt: str | None,
    output: str | None,
    env_prefix: str,
    project_build: bool,
    settings: dict[str, Any],
    *,
    dry_run: bool = False,
) -> int:
    """Render every output of ``results``, then write them as one set (or print the
    document). ``dry_run`` (`cflc check`) renders and reports exactly as a build does
    but stops before writing or printing anything: one path, so the two cannot drift."""
    # start-up: see the docstring (the compile that made `results` loaded these)
    from cfglang.driver import has_secret
    from cfglang.emit import EmitError, emit, format_for_filename

    # Render everything first: nothing is written unless every output rendered.
    planned: list[tuple[str | None, str, bool]] = []  # (target, text, holds a secret)
    set_root: str | None = None  # the directory the whole set is committed in
    for f, res in results:
        stem = os.path.splitext(os.path.basename(f))[0]
        target: str | None
        if project_build or (output and (output.endswith(("/", os.sep)) or os.path.isdir(output))):
            out_dir = set_root = output or settings.get("output_dir", "out")
            if project_build and len(results) > 1 and res.outputs:
                out_dir = os.path.join(out_dir, stem)
            if res.outputs:
                for o in res.outputs:
                    target = os.path.join(out_dir, o.name)
                    if not resolves_inside(target, set_root):
                        ctx.usage_error(
                            "E0602",
                            f"cannot write `{target}`: a symlink leads it outside "
                            f"`{set_root}`; nothing was written",
                        )
                        return EXIT_ERRORS
                    planned.append((target, o.text, o.secret))
                continue
            doc_fmt = fmt or "json"
            target = os.path.join(out_dir, f"{stem}.{doc_fmt}")
        else:
            target = output
            doc_fmt = fmt or (format_for_filename(output) if output else None) or "json"
        try:
            text = emit(res.data, doc_fmt, env_prefix=env_prefix)
        except EmitError as e:
            # A build served from the cache never loads the evaluator: load it
            # only when an output cannot be written.
            from cfglang.diagnostics import Diagnostic
            from cfglang.driver import definition_span
            from cfglang.eval.constraints import dotted

            where = dotted(e.path) if e.path else ""
            span = (
                definition_span(f, where, env_prefix=env_prefix, result=res, **ctx.inputs)
                if where
                else None
            )
            ctx.report(
                [
                    Diagnostic(
                        "E0601",
                        f"cannot write {doc_fmt}: {e.message}",
                        span,
                        label=f"`{where or '(root)'}` is set here" if span else None,
                        help=None if span else f"at `{where or '(root)'}` in {f}",
                        data_path=where or None,
                    )
                ]
            )
            return EXIT_ERRORS
        # Whether a file needs mode 0600: one more walk over the data, so only for a file
        # (standard output has no mode).
        if target is None:
            planned.append((target, text, False))
        else:
            planned.append((target, text, has_secret(res.data)))
    if dry_run:
        return EXIT_OK
    files = [(t, text, private) for t, text, private in planned if t is not None]
    if files:
        # Output to stdout (a build served from the cache, say) loads no tempfile,
        # shutil and the rest: only when writing files.
        from cfglang.atomic import write_set

        root = set_root if set_root is not None else os.path.dirname(files[0][0]) or "."
        try:
            write_set(root, [(t, text, file_mode(private)) for t, text, private in files])
        except OSError as e:
            where = f"`{e.filename}`" if e.filename else f"the outputs in `{root}`"
            ctx.usage_error("E0602", f"cannot write {where}: {e.strerror or e}")
            return EXIT_ERRORS
    for target, text, _ in planned:
        if target is None:
            sys.stdout.write(text)
        elif ctx.verbose or (not ctx.quiet and project_build):
            ctx.info(f"wrote {target}")
    sys.stdout.flush()
    return EXIT_OK


def file_mode(private: bool) -> int:
    """0600 for an output holding a secret, else the usual mode under the umask."""
    if private:
        return 0o600
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str, text: str, *, private: bool = False) -> None:
    """Write an output file atomically; ``private`` (a secret inside) means mode 0600,
    else the usual mode for new files under the umask."""
    from cfglang.atomic import write_atomic  # start-up: see the docstring

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_atomic(path, text, mode=file_mode(private))
