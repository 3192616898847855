"""Deterministic sampling, so that replaying a request routes it the same way."""

from __future__ import annotations

import hashlib

_SPACE = 2**64


def sampled(request_id: str, rate: float) -> bool:
    """Whether ``request_id`` falls inside a sample of the given rate.

    The first 8 bytes of SHA-256(request_id) read as a fraction of 2**64 are compared with
    ``rate``: a rate of 0 samples nothing, 1 samples everything, and the answer for one id
    never changes.

    Raises:
        ValueError: ``rate`` is not between 0 and 1.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"sample rate {rate!r} is not between 0 and 1")
    digest = hashlib.sha256(request_id.encode("utf-8")).digest()
    # Compared as int against rate * 2**64 rather than dividing: (2**64 - 1) / 2**64
    # rounds to 1.0 as a float, which would let a rate of 1 miss an id.
    return int.from_bytes(digest[:8], "big") < rate * _SPACE
