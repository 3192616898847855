"""The one exception base of the agent SDK."""

from __future__ import annotations


class SignoffError(Exception):
    """Base of every error the agent SDK raises."""


__all__ = ["SignoffError"]
