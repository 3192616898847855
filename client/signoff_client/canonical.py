"""The canonical JSON every hash in Signoff is taken over, shared by the agent and the server.

An action's `action_sha256` binds a verdict to the exact action it approves; the agent
recomputes it before acting, so both sides must serialise identically. This module is that
one definition: the server imports it from here.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_DEEP_LIMIT = 20_000


def tolerating_depth(call: Callable[[], T]) -> T:
    """Run a JSON encode or decode that may nest deeper than the interpreter's recursion
    limit allows from where it runs: on RecursionError it runs once more under a raised
    limit. New inputs are limited to 32 levels, but values stored before that limit (a
    reviewer's modify 900 levels deep) must still hash and read."""
    try:
        return call()
    except RecursionError:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, _DEEP_LIMIT))
        try:
            return call()
        finally:
            sys.setrecursionlimit(limit)


def canonical_json(value: Any) -> str:
    """Keys sorted, no spaces, UTF-8: the form every hash in Signoff is taken over."""
    return tolerating_depth(
        lambda: json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    )


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


__all__ = ["canonical_json", "sha256_hex", "tolerating_depth"]
