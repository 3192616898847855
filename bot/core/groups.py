"""Reviewer groups: a tier may list a chat platform's user group (`slack:S…`) as a reviewer.

The group's members may act at that tier, like named reviewers, and get its direct
messages. Who is in a group lives on the platform (`GroupSource`, at the edge);
`ReviewerGroups` keeps the copy last read and is refreshed every minute, so deciding who
may act never waits on a network call and a platform outage keeps the last known members.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from bot.core.errors import DeliveryError

log = logging.getLogger("signoff.groups")

REFRESH_SECONDS = 60.0


class GroupSource(Protocol):
    """Where a chat platform keeps its user groups."""

    def is_group(self, identity: str) -> bool:
        """Whether a reviewer identity names a group of this platform, not a person."""
        ...

    async def members(self, group: str) -> frozenset[str]:
        """The reviewer identities (`slack:U…`) in `group` now.

        Raises DeliveryError when the platform cannot say.
        """
        ...


class ReviewerGroups:
    """The members of every group among `listed` (the tiers' reviewers), as last read."""

    def __init__(self, source: GroupSource, listed: Iterable[str]) -> None:
        self.source = source
        self.groups = tuple(dict.fromkeys(r for r in listed if source.is_group(r)))
        self._members: dict[str, frozenset[str]] = {}

    def members(self, group: str) -> frozenset[str]:
        """Who was in `group` at the last refresh (nobody before the first)."""
        return self._members.get(group, frozenset())

    def admits(self, reviewer: str, listed: Iterable[str]) -> bool:
        """Whether `reviewer` belongs to one of the groups among `listed`."""
        return any(reviewer in self.members(identity) for identity in listed)

    def expand(self, reviewers: Iterable[str]) -> tuple[str, ...]:
        """`reviewers` with each group replaced by its members, each person once."""
        found: dict[str, None] = {}
        for reviewer in reviewers:
            if reviewer in self.groups:
                found.update(dict.fromkeys(sorted(self.members(reviewer))))
            else:
                found[reviewer] = None
        return tuple(found)

    async def refresh(self) -> None:
        """Read every group again; one that cannot be read keeps its last known members."""
        for group in self.groups:
            try:
                self._members[group] = await self.source.members(group)
            except DeliveryError as exc:
                log.warning("members of %s not refreshed: %s", group, exc)
