"""Watch mode: rebuild the targets of a project that a saved file affects.

Algorithm. `Watcher.build_all` compiles every target once, writes its outputs and
remembers, per target, the last good data and the *closure*: the absolute paths of every
file the compilation read (`cfglang.driver.compile_recorded` lists them) plus the ``--vars`` files.
Then `Watcher.run` waits for file events (watchfiles: inotify, or stat polling with
``poll=True``); events are batched (watchfiles waits until 50 ms pass without a new
event) and filtered to `.cfl` files, ``--vars`` files and `cfl.toml`, ignoring the
output directory. For a batch of changed paths `Watcher.changed` rebuilds, in the
project's order:

- every target whose last closure contains a changed path;
- every target whose last build failed, on any relevant change (a broken module may have
  had imports the compiler never saw, and a missing file may just have been created);
- every target that is new (the target globs are expanded again), and all targets when
  `cfl.toml` changed.

A rebuilt target that compiles is written through the CLI's own writer
(`cfglang.cli._write_results`, which renders everything first and then replaces each file
atomically with a temporary file and a rename), so an output is never seen half-written,
and the layout is exactly `cflc build`'s. Its semantic diff against the last good data is
reported (`cfglang.tools.diff`). A target that fails keeps its last good outputs and data
untouched; its diagnostics are printed and its closure becomes the union of the old and
the new one, so the next save of any of those files retries it.

Parsed modules are reused through the content-addressed parse cache: after a one-line
save only the saved file is parsed again. Environment variables are read once per build
and are not watched.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from cfglang.diagnostics import Diagnostic
from cfglang.tools.diff import diff, render_human

__all__ = ["Report", "Watcher", "compile_recorded", "watch_filter"]


@attrs.define
class Report:
    """What happened to one target in one round.

    ``kind`` is ``built`` (first build), ``rebuilt``, ``failed`` or ``removed``;
    ``changes`` the semantic diff against the last good data (empty on the first build);
    ``written`` the output paths replaced; ``seconds`` the compile-and-write time;
    ``withheld`` is true when the target compiled but holds secrets that were not
    decrypted (no identity), so its outputs were left as they were.
    """

    target: str
    kind: str
    changes: list[Any] = attrs.Factory(list)
    written: list[str] = attrs.Factory(list)
    diagnostics: list[Diagnostic] = attrs.Factory(list)
    seconds: float = 0.0
    withheld: bool = False

    @property
    def ok(self) -> bool:
        return self.kind in ("built", "rebuilt")


def compile_recorded(
    path: str,
    *,
    vars: Mapping[str, Any] | None = None,
    cli_vars: Sequence[tuple[str, str]] = (),
    var_files: Sequence[str] = (),
    allow_paths: Sequence[str] = (),
    env_prefix: str = "",
    emit_outputs: bool = True,
    env: Mapping[str, str] | None = None,
    root: str | None = None,
    identity: Sequence[str] = (),
    decrypt_secrets: bool = True,
    plaintext_secrets: str = "warn",
) -> tuple[Any, set[str]]:
    """Compile ``path`` (with the parse cache) and return the `Compilation` and the
    absolute paths of every file it read, ``--vars`` files included.

    It uses `cfglang.driver.compile_recorded` rather than `compile`: the build cache
    would answer without listing the files read, and the watcher needs that list.
    """
    from cfglang.driver import compile_recorded  # start-up: `cflc --help` imports no compiler

    result, files, _ = compile_recorded(
        path,
        vars=vars,
        cli_vars=cli_vars,
        var_files=var_files,
        env=env,
        allow_paths=allow_paths,
        emit_outputs=emit_outputs,
        env_prefix=env_prefix,
        use_cache=True,
        root=root,
        identity=identity,
        decrypt_secrets=decrypt_secrets,
        plaintext_secrets=plaintext_secrets,
    )
    return result, files


def watch_filter(
    extra: Iterable[str] = (), ignore: Iterable[str] = ()
) -> Callable[[Any, str], bool]:
    """A watchfiles filter: `.cfl` files, `cfl.toml` and the ``extra`` paths, outside the
    ``ignore`` directories (the output directory), never the writer's temporary files."""
    extras = {os.path.abspath(p) for p in extra}
    ignored = tuple(os.path.abspath(d).rstrip(os.sep) + os.sep for d in ignore)

    def accept(_change: Any, path: str) -> bool:
        path = os.path.abspath(path)
        if ignored and path.startswith(ignored):
            return False
        name = os.path.basename(path)
        if name.startswith(".cflc-"):
            return False
        return name.endswith(".cfl") or name == "cfl.toml" or path in extras

    return accept


@attrs.define
class _State:
    data: Any = None  # last good data (None before the first good build)
    files: frozenset[str] = frozenset()
    ok: bool = False


class Watcher:
    """Keeps the outputs of a project's targets up to date (see the module docstring).

    ``ctx`` is the CLI's `Ctx` (diagnostics and write errors are reported through it);
    ``echo`` receives the human summary lines; ``on_report`` every `Report` (for tests
    and tools). Not thread-safe: one thread runs it.
    """

    def __init__(
        self,
        directory: str,
        ctx: Any,
        *,
        cli_vars: Sequence[tuple[str, str]] = (),
        var_files: Sequence[str] = (),
        allow_paths: Sequence[str] = (),
        env_prefix: str = "",
        echo: Callable[[str], None] | None = None,
        on_report: Callable[[Report], None] | None = None,
        color: bool = False,
        identity: Sequence[str | os.PathLike[str]] = (),
        plaintext: str = "warn",
    ) -> None:
        """``identity`` are age identity files; without any (and without
        ``CFL_AGE_IDENTITY[_FILE]``) secrets are not decrypted: their changes are still
        reported (by ciphertext), but a target holding one writes nothing, since its
        outputs would hold stand-ins instead of the secrets. ``plaintext`` is the policy
        for secrets written in plain text (``warn``, ``error``, ``allow``), as `build`'s."""
        # lazy, as in `_expand`
        from cfglang.secrets.keys import identity_given

        self.identity = tuple(os.fspath(i) for i in identity)
        self.decrypt = identity_given(self.identity)
        self.plaintext = plaintext
        self.directory = directory
        self.ctx = ctx
        self.cli_vars = list(cli_vars)
        self.var_files = list(var_files)
        self.allow_paths = list(allow_paths)
        self.env_prefix = env_prefix
        self.echo = echo or (lambda line: print(line, flush=True))
        self.on_report = on_report
        self.color = color
        self.targets: list[str] = []
        self.settings: dict[str, Any] = {}
        self.states: dict[str, _State] = {}
        self.root = os.path.abspath(directory)
        # The diagnostics of the round being built, per target (`_round`); None outside one.
        self._pending: list[tuple[str, Sequence[Diagnostic]]] | None = None

    # ---- project ----------------------------------------------------------------------------

    def _expand(self) -> bool:
        # lazy: `cfglang.live` uses this module, and a library loads no click
        from cfglang.console import expand_targets

        expanded = expand_targets(self.ctx, [self.directory], announce=not self.targets)
        if expanded is None:
            return False
        self.targets, self.settings = expanded
        return True

    def output_dir(self) -> str:
        return str(self.settings.get("output_dir", "out"))

    def _out_dir(self, target: str, res: Any) -> str:
        """The directory `cflc build DIR` writes this target to (one more level, named
        after the target, when the project has several targets with named outputs)."""
        out = self.output_dir()
        if len(self.targets) > 1 and res.outputs:
            out = os.path.join(out, os.path.splitext(os.path.basename(target))[0])
        return out + os.sep

    # ---- building ---------------------------------------------------------------------------

    def build_all(self) -> list[Report]:
        """The first build of every target; returns None-free reports (empty when the
        project itself cannot be read, which has been reported)."""
        if not self._expand():
            return []
        return self._round(self.targets)

    def _round(self, targets: Iterable[str]) -> list[Report]:
        """Build ``targets``; their diagnostics are reported after the round, a mistake in a
        shared file once, naming the targets it breaks (`cfglang.console.merge_targets`)."""
        self._pending = []
        try:
            return [self._build(t) for t in targets]
        finally:
            pending, self._pending = self._pending, None
            self.ctx.report_targets(pending)

    def affected(self, changed: Iterable[str]) -> list[str]:
        """The targets a batch of changed paths requires to rebuild (module docstring)."""
        paths = {os.path.abspath(p) for p in changed}
        if any(os.path.basename(p) == "cfl.toml" for p in paths):
            return list(self.targets)
        out = []
        for t in self.targets:
            state = self.states.get(t)
            if state is None or not state.ok or paths & state.files:
                out.append(t)
        return out

    def changed(self, changed: Iterable[str]) -> list[Report]:
        """Rebuild what a batch of changed paths affects; report every target touched."""
        changed = sorted({os.path.abspath(p) for p in changed})
        before = list(self.targets)
        if not self._expand():
            return []
        reports = []
        for t in before:
            if t not in self.targets:
                self.states.pop(t, None)
                reports.append(self._emit(Report(t, "removed")))
        todo = self.affected(changed)
        if todo:
            shown = ", ".join(_rel(p) for p in changed[:3]) + (
                f" and {len(changed) - 3} more" if len(changed) > 3 else ""
            )
            self.echo(
                f"── {shown} changed: rebuilding {len(todo)} of {len(self.targets)} "
                f"target{'s' if len(self.targets) != 1 else ''}"
            )
        reports += self._round(todo)
        return reports

    def _build(self, target: str) -> Report:
        from cfglang.console import write_results  # lazy, as in `_expand`
        from cfglang.driver import has_secret  # start-up: `cflc --help` imports no compiler

        start = time.perf_counter()
        state = self.states.setdefault(target, _State())
        first = state.data is None
        allow = self.allow_paths + list(self.settings.get("allow_paths", []))
        res, files = compile_recorded(
            target,
            cli_vars=self.cli_vars,
            var_files=self.var_files,
            allow_paths=allow,
            env_prefix=self.env_prefix,
            root=self.settings.get("root"),  # the directory watched, for default targets
            identity=self.identity,
            decrypt_secrets=self.decrypt,
            plaintext_secrets=self.plaintext,
        )
        if not res.ok or res.data is None:
            state.ok = False
            state.files = state.files | frozenset(files)
            self._report(target, res.diagnostics)
            return self._emit(
                Report(
                    target,
                    "failed",
                    diagnostics=list(res.diagnostics),
                    seconds=time.perf_counter() - start,
                )
            )
        if not self.decrypt and (has_secret(res.data) or any(o.secret for o in res.outputs)):
            self.ctx.report(res.diagnostics)  # warnings
            changes = [] if first else diff(state.data, res.data)
            state.data, state.files, state.ok = res.data, frozenset(files), True
            return self._emit(
                Report(
                    target,
                    "built" if first else "rebuilt",
                    changes,
                    [],
                    list(res.diagnostics),
                    time.perf_counter() - start,
                    withheld=True,
                )
            )
        out_dir = self._out_dir(target, res)
        status = write_results(
            self.ctx, [(target, res)], None, out_dir, self.env_prefix, False, self.settings
        )
        if status != 0:  # an output could not be rendered or written (reported)
            state.ok = False
            state.files = state.files | frozenset(files)
            return self._emit(
                Report(
                    target,
                    "failed",
                    diagnostics=list(res.diagnostics),
                    seconds=time.perf_counter() - start,
                )
            )
        self._report(target, res.diagnostics)  # warnings
        written = (
            [os.path.join(out_dir, o.name) for o in res.outputs]
            if res.outputs
            else [os.path.join(out_dir, os.path.splitext(os.path.basename(target))[0] + ".json")]
        )
        changes = [] if first else diff(state.data, res.data)
        state.data, state.files, state.ok = res.data, frozenset(files), True
        return self._emit(
            Report(
                target,
                "built" if first else "rebuilt",
                changes,
                written,
                list(res.diagnostics),
                time.perf_counter() - start,
            )
        )

    def _report(self, target: str, diagnostics: Sequence[Diagnostic]) -> None:
        if self._pending is not None:
            self._pending.append((target, diagnostics))
        else:
            self.ctx.report(diagnostics)

    def _emit(self, report: Report) -> Report:
        ms = f"{report.seconds * 1000:.0f} ms"
        n = len(report.written)
        wrote = f"wrote {_rel(report.written[0])}" if n == 1 else f"wrote {n} outputs"
        if report.withheld:
            wrote = "outputs not written: they hold secrets and no identity was given (--identity)"
        if report.kind == "built":
            self.echo(f"✓ {report.target}: built, {wrote} ({ms})")
        elif report.kind == "rebuilt":
            k = len(report.changes)
            what = "no change" if k == 0 else f"{k} change{'s' if k != 1 else ''}"
            self.echo(f"✓ {report.target}: {what}, {wrote} ({ms})")
            if report.changes:
                text = render_human(report.changes, color=self.color)
                self.echo("".join("    " + line + "\n" for line in text.splitlines()).rstrip())
        elif report.kind == "failed":
            errs = sum(1 for d in report.diagnostics if d.is_error) or 1
            keep = (
                "kept the last good outputs"
                if self.states.get(report.target, _State()).data is not None
                else "nothing written"
            )
            self.echo(f"✗ {report.target}: {errs} error{'s' if errs != 1 else ''}, {keep} ({ms})")
        else:
            self.echo(f"- {report.target}: no longer a target (its outputs are left in place)")
        if self.on_report is not None:
            self.on_report(report)
        return report

    # ---- the loop ---------------------------------------------------------------------------

    def run(
        self,
        *,
        poll: bool = False,
        stop: threading.Event | None = None,
        ready: Callable[[], None] | None = None,
        poll_delay_ms: int = 300,
    ) -> int:
        """Build everything, then rebuild on every change until ``stop`` is set, Ctrl-C
        (exit status 0) or the directory disappears (status 1). ``ready`` is called once
        the watcher is listening."""
        import watchfiles  # heavy (a native extension): only when watching

        self.build_all()
        if not self.targets:
            return 1
        where = _rel(self.root) if _rel(self.root) != "." else "the project"
        n = len(self.targets)
        listening = False
        allow = self.allow_paths + list(self.settings.get("allow_paths", []))
        dirs = [self.root, *(os.path.abspath(d) for d in allow if os.path.isdir(d))]
        dirs += sorted(
            {
                os.path.dirname(os.path.abspath(v))
                for v in self.var_files
                if not os.path.abspath(v).startswith(self.root + os.sep)
            }
        )
        flt = watch_filter(self.var_files, [self.output_dir()])
        try:
            # The watcher exists once the generator has yielded (an empty batch after
            # `rust_timeout`); only then is a save certain to be seen.
            for batch in watchfiles.watch(
                *dirs,
                watch_filter=flt,
                stop_event=stop,
                force_polling=poll or None,
                yield_on_timeout=True,
                rust_timeout=200,
                poll_delay_ms=poll_delay_ms,
                debounce=1600,
                step=50,
            ):
                if not listening:
                    listening = True
                    self.echo(
                        f"watching {where} ({n} target{'s' if n != 1 else ''}); "
                        "press Ctrl-C to stop"
                    )
                    if ready is not None:
                        ready()
                if not os.path.isdir(self.root):
                    return self._gone()
                if batch:
                    self.changed(p for _, p in batch)
        except FileNotFoundError:
            return self._gone()
        except KeyboardInterrupt:
            self.echo("stopped")
            return 0
        if not os.path.isdir(self.root):
            return self._gone()
        return 0

    def _gone(self) -> int:
        self.ctx.usage_error(
            "E0702",
            f"the watched directory `{self.directory}` no longer "
            "exists; stopping (the outputs written so far are complete)",
        )
        return 1


def _rel(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def main_color(color: str) -> bool:
    """Colour for the summaries on stdout, by the same rules as diagnostics."""
    if color == "auto":
        return sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    return color == "always"
