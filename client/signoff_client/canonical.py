"""The canonical JSON every hash in Signoff is taken over, shared by the agent and the server.

An action's `action_sha256` binds a verdict to the exact action it approves; the agent
recomputes it before acting, so both sides must serialise identically. This module is that
one definition: the server imports it from here.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """Keys sorted, no spaces, UTF-8: the form every hash in Signoff is taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


__all__ = ["canonical_json", "sha256_hex"]
