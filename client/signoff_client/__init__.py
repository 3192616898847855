"""Signoff's agent SDK: ask before acting, wait for the verdict, verify the resume webhook.

Install it alone (`pip install ./client`, distribution `signoff-client`); it needs httpx,
pydantic and standardwebhooks, never the server. Framework integrations live in their own
modules behind extras: `signoff_client.langgraph` (`signoff-client[langgraph]`) and
`signoff_client.hitl` (no extra).

Importing the package is cheap: the client, its pydantic models and httpx load on first use
of a name (PEP 562), so a process that imports `signoff_client` only to verify a webhook or
type-check pays for what it touches.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from signoff_client.errors import SignoffError

if TYPE_CHECKING:
    from signoff_client._client import (
        Action,
        AgentState,
        AsyncSignoffClient,
        AuthenticationError,
        ConflictError,
        InvalidRequest,
        RequestDetail,
        RequestNotFound,
        ResumeData,
        ResumeEvent,
        RoutingAnswer,
        ServiceUnavailable,
        SignoffAPIError,
        SignoffClient,
        Vote,
        WebhookVerificationError,
        derive_idempotency_key,
        verify_webhook,
    )
    from signoff_client.submission import Submission

_LAZY = frozenset(
    {
        "Action",
        "AgentState",
        "AsyncSignoffClient",
        "AuthenticationError",
        "ConflictError",
        "InvalidRequest",
        "RequestDetail",
        "RequestNotFound",
        "ResumeData",
        "ResumeEvent",
        "RoutingAnswer",
        "ServiceUnavailable",
        "SignoffAPIError",
        "SignoffClient",
        "Vote",
        "WebhookVerificationError",
        "derive_idempotency_key",
        "verify_webhook",
    }
)


def __getattr__(name: str) -> Any:
    if name in _LAZY or name == "Submission":
        module = "signoff_client.submission" if name == "Submission" else "signoff_client._client"
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'signoff_client' has no attribute {name!r}")


__all__ = [
    "Action",
    "AgentState",
    "AsyncSignoffClient",
    "AuthenticationError",
    "ConflictError",
    "InvalidRequest",
    "RequestDetail",
    "RequestNotFound",
    "ResumeData",
    "ResumeEvent",
    "RoutingAnswer",
    "ServiceUnavailable",
    "SignoffAPIError",
    "SignoffClient",
    "SignoffError",
    "Submission",
    "Vote",
    "WebhookVerificationError",
    "derive_idempotency_key",
    "verify_webhook",
]
