"""Starting a server: the state directory, the first import, uvicorn on a bound socket.

`serve` is what `cflc serve` runs. The socket is bound before uvicorn starts (port 0 picks
a free one), so the printed URL is the one that answers, and a test or supervisor can read
it from the first line of standard output.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from cfglang.project import find_root

if TYPE_CHECKING:
    from cfglang.server.store import Store

STATE_DIR = ".cfl-state"  # under the project root; hidden, so never imported as a source


def default_state(root: str) -> str:
    return os.path.join(root, STATE_DIR)


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")


def open_store(spec: str | None, state_dir: str) -> Store:
    """The store ``--store`` names: ``sqlite`` (the default: ``<state>/server.db``) or
    ``etcd://host:port[,host:port…][/prefix]``; `ValueError` for anything else,
    `StoreUnavailable` when it cannot be opened."""
    if spec is None or spec == "sqlite":
        from cfglang.server.sqlite import SQLiteStore  # only when serving from SQLite

        return SQLiteStore(state_dir)
    if spec.startswith("etcd://"):
        from cfglang.server.etcd import EtcdStore  # only when serving from etcd

        return EtcdStore.from_url(spec)
    raise ValueError(f"unknown store `{spec}` (sqlite, or etcd://host:port[,host:port…])")


def serve(
    project: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8420,
    state: str | None = None,
    store_spec: str | None = None,
    max_body: int = 1024 * 1024,
    compile_timeout: float = 30.0,
    echo: Callable[[str], None] = print,
) -> int:
    """Serve ``project`` until interrupted; the exit status."""
    import uvicorn  # only when serving: `cflc --help` never loads the web stack

    from cfglang.server.app import make_app, token_auth
    from cfglang.server.core import Refused, Service
    from cfglang.server.store import StoreUnavailable
    from cfglang.server.tokens import TokenError, Tokens

    root = find_root(os.path.abspath(project))
    state_dir = os.path.abspath(state) if state else default_state(root)
    try:
        tokens = Tokens(state_dir)
    except TokenError as e:
        echo(f"error: {e}")
        return 1
    if not tokens.enabled and not is_loopback(host):
        echo(
            f"error: without {state_dir}/tokens.toml the server allows everything, so it "
            "only listens on 127.0.0.1 (`cflc serve token add` makes one)"
        )
        return 2
    try:
        store = open_store(store_spec, state_dir)
    except ValueError as e:
        echo(f"error: --store: {e}")
        return 2
    except StoreUnavailable as e:
        echo(f"error: {e}")
        return 1
    try:
        service = Service(store, state_dir, compile_timeout=compile_timeout)
        imported = asyncio.run(service.import_tree(root))
    except StoreUnavailable as e:
        echo(f"error: the store is unavailable: {e}")
        store.close()
        return 1
    except Refused as e:
        echo(f"error: cannot import {root}: {e.message}")
        for d in e.details or []:
            where = f"{d.get('file')}:{d.get('line')}:{d.get('column')}: " if d.get("file") else ""
            echo(f"  {where}{d.get('code')}: {d.get('message')}")
        return 1
    # The import ran on a loop of its own; the server's loop makes its own primitives.
    service._lock = None
    service._changed = None
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY on accepted connections only
    # for sockets whose proto says TCP, and without it every keep-alive response waited
    # ~40 ms (Nagle's algorithm against the client's delayed ACK).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # Listening before the URL is printed: a client that connects at once waits in
        # the backlog until uvicorn accepts (after its lifespan start-up), not refused.
        sock.listen(2048)
    except OSError as e:
        echo(f"error: cannot listen on {host}:{port}: {e.strerror}")
        return 1
    bound = sock.getsockname()[1]
    background = []
    where = f"state in {state_dir}"
    from cfglang.server.etcd import EtcdStore, follow  # only when serving: as above

    if isinstance(store, EtcdStore):
        etcd = store
        # Revisions and rollouts stored through the other servers on the cluster.
        background.append(lambda: follow(service, etcd))
        where = f"store {store_spec}; tokens in {state_dir}"
    app = make_app(service, max_body=max_body, auth=token_auth(tokens), background=background)
    shown = f"[{host}]" if ":" in host else host
    how = f"imported as revision {imported}" if imported else f"revision {service.head}"
    how += "; tokens required" if tokens.enabled else "; no tokens: open to this machine"
    echo(f"serving {root} at http://{shown}:{bound} ({how}; {where})")
    sys.stdout.flush()
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on" if background else "off", access_log=False
    )
    server = uvicorn.Server(config)
    if threading.current_thread() is threading.main_thread():
        # uvicorn shuts down gracefully on SIGTERM, then raises it again with the handler
        # it found: make that the same as Ctrl-C, so a supervisor's stop exits 0.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.run(sockets=[sock])
    finally:
        service.close()
        store.close()
    return 0
