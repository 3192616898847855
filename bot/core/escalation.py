"""Which card copies time-to-escalate measures: those in channels with reviewers of the tier.

The web inbox's row is written in the submit's own transaction, so measuring the first copy
posted would read 0 s even for a tier whose reviewers are all in Slack, where the card
arrives seconds later. A copy counts when its channel has reviewers of the tier (`slack`
for `slack:U...`); when none of the tier's channels has (a tier without reviewers listed,
or whose reviewers' platform is off), every copy counts. A request's time to escalate is
that of its slowest counted copy.
"""

from __future__ import annotations

from collections.abc import Iterable

from routing import TierSpec


def measured_channels(tier: TierSpec, channels: Iterable[str]) -> frozenset[str]:
    """Of the `channels` a tier's card goes to, those its time-to-escalate measures."""
    posted = frozenset(channels)
    platforms = {reviewer.split(":", 1)[0] for reviewer in tier.reviewers}
    return (posted & platforms) or posted
