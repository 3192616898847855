"""People, not accounts: one human may sign in to Slack, Teams and the web inbox.

Every rule that counts or excludes reviewers (one vote per person per action, distinct
approvers for `approvals`, the requester and owner blocks) asks `person_of`, so a second
account of the same human is the same reviewer. An identity no `people:` entry lists is a
person of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

PLATFORMS = ("slack", "teams", "web")
# `platform:id`: a known platform, then an id of the characters Slack and Teams ids, web
# logins and e-mail addresses use. Identities are echoed into mrkdwn, Adaptive Cards and
# HTML (refusals name them), so markup characters have no place in them.
_IDENTITY = re.compile(r"(slack|teams|web):[A-Za-z0-9][A-Za-z0-9._@+\-]{0,199}")


def identity_problem(value: str) -> str | None:
    """Why `value` is not a reviewer identity (`platform:id`), or None when it is one."""
    if _IDENTITY.fullmatch(value):
        return None
    platform, sep, rest = value.partition(":")
    if not sep or not rest:
        return f"{value!r} is not platform:id (platform one of {', '.join(PLATFORMS)})"
    if platform not in PLATFORMS:
        return f"{value!r} names unknown platform {platform!r} (use {', '.join(PLATFORMS)})"
    return (
        f"{value!r} has an id that is not 1 to 200 letters, digits and . _ @ + - "
        "(starting with a letter or digit)"
    )


def check_identity(value: str) -> str:
    """Raise ValueError unless `value` is `platform:id` with a known platform."""
    problem = identity_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    identities: tuple[str, ...]


@dataclass(frozen=True)
class People:
    """Who is who: the configured people and the identities each of them signs in with."""

    people: tuple[Person, ...] = ()
    _by_identity: Mapping[str, Person] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, Person] = {}
        for person in self.people:
            for identity in person.identities:
                index[identity] = person
        object.__setattr__(self, "_by_identity", index)

    @classmethod
    def of(cls, people: Iterable[Person]) -> People:
        return cls(tuple(people))

    def person_of(self, identity: str) -> str:
        """The person id behind `identity`; the identity itself when no entry lists it."""
        person = self._by_identity.get(identity)
        return person.id if person is not None else identity

    def name_of(self, person: str) -> str | None:
        """The configured name of a person id, if it is one."""
        for entry in self.people:
            if entry.id == person:
                return entry.name
        return None

    def same(self, first: str | None, second: str | None) -> bool:
        """Whether two identities belong to the same person."""
        if not first or not second:
            return False
        return self.person_of(first) == self.person_of(second)
