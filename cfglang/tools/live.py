"""Live configuration: a compiled module that follows its source files (observer pattern).

`live(path)` compiles the module once (raising `ConfigError` if that fails) and starts one
background thread that waits for file events on the project (watchfiles; stat polling with
``poll=True``). Algorithm of one reload, all of it under one lock so reloads never overlap:

1. A batch of changed paths arrives; it matters if it holds a file of the last closure
   (every file the last compilation read, as in `cfglang.tools.watch`) or, after a failed
   compilation, any `.cfl` file. Otherwise nothing happens.
2. The module is compiled again (the parse cache means only edited files are parsed).
   On errors the current snapshot stays, and every ``on_error`` callback receives a
   `ConfigError` carrying the diagnostics. Stop.
3. The new data is diffed against the current snapshot's (`cfglang.tools.diff.diff`). No
   difference: nothing happens, no new revision. Otherwise a new immutable `Snapshot` with
   revision + 1 replaces ``current`` in a single reference assignment, *before* any
   callback runs.
4. Each subscription whose prefix is affected gets one `Update(path, old, new, revision)`,
   in subscription order. A prefix is affected when a change lies at or below it, or when a
   change above it makes the subtree at the prefix different (compared as emitted values).
   A callback that raises is logged (logger ``cfglang.live``) and the others still run.

Hence the guarantees documented in docs/live.md: revisions increase by one per applied
change; every callback for revision n returns before any for revision n + 1 starts; a
callback sees only whole snapshots (``old`` and ``new`` are taken from two complete
snapshots, and ``current`` is already the revision being delivered, or a later one).
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, Sequence, ValuesView
from typing import Any, NamedTuple

import attrs

from cfglang import datapath
from cfglang.config import Config, ConfigError, _wrap
from cfglang.project import find_root
from cfglang.tools.diff import diff
from cfglang.tools.watch import compile_recorded, watch_filter

__all__ = ["LiveConfig", "Snapshot", "Subscription", "Update", "live"]

log = logging.getLogger("cfglang.live")  # the documented logger name (docs/live.md)

_MISSING: Any = object()


class Update(NamedTuple):
    """What a subscriber receives: the subscribed ``path``, the subtree's ``old`` and
    ``new`` values (read-only: objects are `Config`, lists tuples, durations timedelta;
    None where the path does not exist) and the ``revision`` that holds ``new``."""

    path: str
    old: Any
    new: Any
    revision: int


@attrs.frozen
class Snapshot:
    """One complete, immutable configuration: ``revision`` (1 for the first compilation)
    and ``config`` (a read-only `Config`). ``get("services.billing.db")`` reads a subtree.

    It reads like its `Config` too: ``current["db"]["host"]``, ``current.db.host``,
    ``len``, iteration over the top-level keys, ``keys()``/``items()``/``values()`` and
    ``to_dict()``. A top-level field named like an attribute of the snapshot itself
    (``revision``, ``config``, ``data``, ``get``, ...) is read with ``current["revision"]``.
    """

    revision: int
    config: Config
    data: Mapping[str, Any] = attrs.field(repr=False)

    def get(self, path: str, default: Any = None) -> Any:
        value = _lookup(self.data, parse_path(path))
        return default if value is _MISSING else _wrap(value)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and _lookup(self.data, parse_path(path)) is not _MISSING

    # ---- read like `Config` ------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self.config[key]

    def __getattr__(self, key: str) -> Any:
        # Only called when normal lookup fails. The slots themselves are excluded, or an
        # unset slot (during construction, copy or unpickling) would recurse.
        if key.startswith("_") or key in ("revision", "config", "data"):
            raise AttributeError(key)
        try:
            return self.config[key]
        except KeyError:
            raise AttributeError(f"the configuration has no field `{key}`") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.config)

    def __len__(self) -> int:
        return len(self.config)

    def __bool__(self) -> bool:
        return True  # a snapshot exists even when its configuration is empty

    def keys(self) -> KeysView[str]:
        return self.config.keys()

    def items(self) -> ItemsView[str, Any]:
        return self.config.items()

    def values(self) -> ValuesView[Any]:
        return self.config.values()

    def to_dict(self) -> dict[str, Any]:
        """The plain data, as `Config.to_dict`."""
        return self.config.to_dict()


@attrs.define(eq=False)
class Subscription:
    """A registered callback; ``cancel()`` stops further calls (one already running ends)."""

    prefix: tuple[str | int, ...]
    path: str
    callback: Callable[..., Any]
    spread: bool
    _owner: LiveConfig | None

    def cancel(self) -> None:
        owner, self._owner = self._owner, None
        if owner is not None:
            owner._remove(self)


def parse_path(path: str) -> tuple[str | int, ...]:
    """``services.billing.db`` / ``tags[0]`` / ``labels["app/name"]`` into key parts;
    the empty string is the whole configuration (`cfglang.datapath.parse`)."""
    return datapath.parse(path)


def _lookup(data: Any, parts: Sequence[str | int]) -> Any:
    for p in parts:
        if isinstance(p, str) and isinstance(data, Mapping) and p in data:
            data = data[p]
        elif isinstance(p, int) and isinstance(data, list) and 0 <= p < len(data):
            data = data[p]
        else:
            return _MISSING
    return data


def _takes_four(cb: Callable[..., Any]) -> bool:
    """Callbacks may take one `Update` or its four fields as separate arguments."""
    try:
        params = list(inspect.signature(cb).parameters.values())
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 4


class LiveConfig:
    """A configuration that follows its files. Create it with `live`; see the module
    docstring for the reload algorithm and docs/live.md for the guarantees.

    Thread-safe: ``current``, ``subscribe``, ``on_error``, ``cancel`` and ``close`` may be
    called from any thread, including from inside a callback.
    """

    def __init__(
        self,
        path: str,
        *,
        vars: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        allow_paths: Sequence[str] = (),
        var_files: Sequence[str] = (),
        poll: bool = False,
        poll_delay_ms: int = 300,
        watch: bool = True,
        identity: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    ) -> None:
        # lazy: a configuration without secrets reads no identity settings
        from cfglang.secrets.keys import identity_given

        self.path = os.fspath(path)
        self._identity: tuple[str, ...] = (
            ()
            if identity is None
            else (os.fspath(identity),)
            if isinstance(identity, (str, os.PathLike))
            else tuple(os.fspath(i) for i in identity)
        )
        # Decrypt only with an identity (given, or in the environment); without one a
        # secret is a `Secret` whose `.value` is a stand-in, compared by its ciphertext.
        self._decrypt = identity_given(self._identity, env)
        self._vars = dict(vars or {})
        self._env = env
        self._allow = list(allow_paths)
        self._var_files = list(var_files)
        self._lock = threading.Lock()  # guards subscriptions and error callbacks
        self._reload_lock = threading.RLock()  # one reload (compile, swap, deliver) at a time
        self._subs: list[Subscription] = []
        self._errors: list[Callable[[ConfigError], Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._delivering = threading.local()  # set while this thread runs callbacks
        result, files = self._compile()
        if not result.ok or result.data is None:
            raise ConfigError(result.diagnostics)
        self._files = files
        self._failed = False
        self._current = Snapshot(1, Config(result.data), result.data)
        if watch:
            self._start(poll, poll_delay_ms)

    # ---- public ------------------------------------------------------------------------------

    @property
    def current(self) -> Snapshot:
        """The last good snapshot (a new one replaces it atomically; it never mutates)."""
        return self._current

    @property
    def revision(self) -> int:
        return self._current.revision

    def subscribe(self, prefix: str, callback: Callable[..., Any]) -> Subscription:
        """Call ``callback`` whenever the subtree at ``prefix`` changes (``""``: any change).

        The callback gets one `Update`, or, if it takes four positional parameters,
        ``(path, old, new, revision)``. It runs on the watcher thread; the next revision
        waits for it, so hand long work to your own thread.
        """
        sub = Subscription(parse_path(prefix), prefix, callback, _takes_four(callback), self)
        with self._lock:
            self._subs.append(sub)
        return sub

    def on_error(self, callback: Callable[[ConfigError], Any]) -> Callable[[], None]:
        """Call ``callback(ConfigError)`` when an edit does not compile (``current`` keeps
        the last good snapshot). Returns a function that unregisters it."""
        with self._lock:
            self._errors.append(callback)

        def cancel() -> None:
            with self._lock:
                if callback in self._errors:
                    self._errors.remove(callback)

        return cancel

    def reload(self) -> bool:
        """Compile now (as a file event would) and deliver any change; True if a new
        revision was applied. Useful with ``watch=False`` or after changing environment
        variables, which are not watched. Not allowed inside a callback (the revision being
        delivered would be overtaken by the next one): raises `RuntimeError` there."""
        if getattr(self._delivering, "active", False):
            raise RuntimeError("LiveConfig.reload() cannot be called from inside a callback")
        return self._reload(None)

    def close(self) -> None:
        """Stop watching; no callback is called after `close` returns (except one already
        running on another thread when `close` is called from inside a callback)."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=30)
        with self._reload_lock:  # wait for a reload in progress on another thread
            pass

    def __enter__(self) -> LiveConfig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals ---------------------------------------------------------------------------

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def _compile(self) -> tuple[Any, set[str]]:
        return compile_recorded(
            self.path,
            vars=self._vars,
            var_files=self._var_files,
            allow_paths=self._allow,
            emit_outputs=False,
            env=self._env,
            identity=self._identity,
            decrypt_secrets=self._decrypt,
        )

    def _start(self, poll: bool, poll_delay_ms: int) -> None:
        root = find_root(self.path)
        dirs = [root, *(os.path.abspath(d) for d in self._allow if os.path.isdir(d))]
        dirs += sorted({os.path.dirname(os.path.abspath(v)) for v in self._var_files})
        ready = threading.Event()

        def loop() -> None:
            import watchfiles  # heavy (a native extension): only when watching

            flt = watch_filter(self._var_files)
            try:
                # The first yield (an empty batch after `rust_timeout`) shows the watcher
                # is in place: from then on no save can be missed.
                for batch in watchfiles.watch(
                    *dirs,
                    watch_filter=flt,
                    stop_event=self._stop,
                    force_polling=poll or None,
                    poll_delay_ms=poll_delay_ms,
                    yield_on_timeout=True,
                    rust_timeout=200,
                    debounce=1600,
                    step=50,
                    raise_interrupt=False,
                ):
                    ready.set()
                    if self._stop.is_set():
                        break
                    if batch:
                        self._reload({os.path.abspath(p) for _, p in batch})
            except Exception as e:  # the watched directory vanished, or a watcher error
                if not self._stop.is_set():
                    log.error("cfglang.tools.live stopped watching %s: %s", self.path, e)
            finally:
                ready.set()

        self._thread = threading.Thread(target=loop, name=f"cfglang-live:{self.path}", daemon=True)
        self._thread.start()
        ready.wait(timeout=30)

    def _reload(self, changed: set[str] | None) -> bool:
        with self._reload_lock:
            if self._stop.is_set() and changed is not None:
                return False
            if changed is not None and not self._failed and not (changed & self._files):
                return False
            result, files = self._compile()
            if not result.ok or result.data is None:
                self._failed = True
                self._files = self._files | files
                error = ConfigError(result.diagnostics)
                with self._lock:
                    handlers = list(self._errors)
                if not handlers:
                    log.warning(
                        "%s does not compile; keeping revision %d:\n%s",
                        self.path,
                        self._current.revision,
                        error,
                    )
                for h in handlers:
                    try:
                        h(error)
                    except Exception:
                        log.exception("an on_error callback of %s failed", self.path)
                return False
            self._failed = False
            self._files = files
            old = self._current
            changes = diff(old.data, result.data)
            if not changes:
                return False
            new = Snapshot(old.revision + 1, Config(result.data), result.data)
            self._current = new  # one reference assignment: readers see old or new, whole
            with self._lock:
                subs = list(self._subs)
            self._delivering.active = True
            try:
                self._deliver(subs, changes, old, new)
            finally:
                self._delivering.active = False
            return True

    def _deliver(
        self, subs: Sequence[Subscription], changes: Sequence[Any], old: Snapshot, new: Snapshot
    ) -> None:
        for sub in subs:
            if sub._owner is None:
                continue  # cancelled while this revision was being delivered
            update = _update_for(sub, changes, old, new)
            if update is None:
                continue
            try:
                if sub.spread:
                    sub.callback(*update)
                else:
                    sub.callback(update)
            except Exception:
                log.exception(
                    "a subscriber of %s (prefix `%s`) failed at revision %d",
                    self.path,
                    sub.path,
                    new.revision,
                )


def _update_for(
    sub: Subscription, changes: Sequence[Any], old: Snapshot, new: Snapshot
) -> Update | None:
    """The update for one subscription, or None when its subtree did not change."""
    p = sub.prefix
    n = len(p)
    below = above = False
    for c in changes:
        if c.path[:n] == p:
            below = True
            break
        if p[: len(c.path)] == c.path:
            above = True
    a, b = _lookup(old.data, p), _lookup(new.data, p)
    if not below:
        if not above:
            return None
        # A change above the prefix (a parent replaced or removed): compare the subtrees.
        if a is _MISSING and b is _MISSING:
            return None
        if a is not _MISSING and b is not _MISSING and not diff(a, b):
            return None
    return Update(
        sub.path,
        None if a is _MISSING else _wrap(a),
        None if b is _MISSING else _wrap(b),
        new.revision,
    )


def live(
    path: str | os.PathLike[str],
    *,
    vars: Mapping[str, Any] | None = None,
    poll: bool = False,
    env: Mapping[str, str] | None = None,
    allow_paths: Sequence[str] = (),
    var_files: Sequence[str] = (),
    watch: bool = True,
    identity: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
) -> LiveConfig:
    """Compile ``path`` and keep it up to date as its files change; see `LiveConfig`.

    Raises `ConfigError` if the first compilation fails. ``poll=True`` polls modification
    times (network file systems, some containers) instead of OS file events;
    ``watch=False`` starts no thread: call `LiveConfig.reload` yourself.
    ``identity`` names age identity files (as `cfglang.load`); without one (nor
    ``CFL_AGE_IDENTITY[_FILE]`` in ``env``, or the environment) secrets are not
    decrypted: they read as `Secret`s holding a stand-in, and a changed ciphertext is a
    change delivered to subscribers.
    """
    return LiveConfig(
        os.fspath(path),
        vars=vars,
        env=env,
        allow_paths=allow_paths,
        var_files=var_files,
        poll=poll,
        watch=watch,
        identity=identity,
    )
