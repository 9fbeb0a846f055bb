"""Who a gradual rollout delivers to: one rule for the server (`cfglang.server.core`) and
for clients that read the store directly (`cfglang.connect("etcd://…")`)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any


def bucket(client_id: str) -> float:
    """A stable place in 0..100 for a client id (the first 8 bytes of its SHA-256)."""
    h = int.from_bytes(hashlib.sha256(client_id.encode("utf-8")).digest()[:8], "big")
    return h / 2**64 * 100


def selects(rollout: Mapping[str, Any], client_id: str | None, labels: Mapping[str, str]) -> bool:
    """Whether ``rollout`` delivers its revision to a client: every label of the selector
    equal, or the client id's bucket below the percentage (no id: never)."""
    selector = rollout.get("selector")
    if isinstance(selector, dict):
        return all(labels.get(k) == v for k, v in selector.items())
    percent = rollout.get("percent")
    if isinstance(percent, (int, float)) and client_id:
        return bucket(client_id) < percent
    return False


def held_at(
    rollout: Mapping[str, Any] | None, client_id: str | None, labels: Mapping[str, str]
) -> int | None:
    """The stable revision an active ``rollout`` holds a client at, or None (no rollout,
    or the client is in it)."""
    if rollout is None or rollout.get("state") != "active":
        return None
    if selects(rollout, client_id, labels):
        return None
    return int(rollout["stable"])
