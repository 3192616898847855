"""Words for people: what every reviewer view (Slack, Teams, web, report) says about a request.

Reviewers read titles, not rule identifiers; money, numbers and times in their locale; who
must still decide and what happens at the deadline as sentences. Channels draw these the
same way everywhere, so a card in Slack and one in Teams never disagree. Times are handed
to the caller as values with a consequence ("Rejected automatically"), because each channel
shows a time its own way (Slack's `<!date>` and Teams' `{{TIME()}}` show the reader's
own time zone; the web shows the configured one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton, format_time
from babel.numbers import format_currency, format_decimal, format_percent

from bot.core.domain import (
    STOPPED_REASON,
    ApprovalRequest,
    ReasonText,
    ReviewStatus,
    Status,
    Verdict,
    Vote,
    readable,
)
from routing import Lane, Policy, RoutingInput, TimeoutAction, render_template, rule_variables


@dataclass(frozen=True)
class Deadline:
    """What happens when no one decides in time: `consequence` "at" `at`."""

    at: datetime
    consequence: str

    def sentence(self, when: str) -> str:
        return f"{self.consequence} at {when} if no one decides"


@dataclass(frozen=True)
class Outcome:
    """How an item ended, the people who decided it and the reason they gave last."""

    icon: str
    label: str
    deciders: tuple[Vote, ...]
    note: str | None
    rationale: str | None


# Reasons that no rule carries: routing's own, and the stop button's.
_BUILT_IN: Mapping[str, tuple[str, str | None]] = {
    "low_confidence": ("The agent is unsure", "The agent is only {confidence} sure"),
    "predicted_escalation": (
        "Likely to need a person",
        "Past decisions on items like this one suggest a person should look",
    ),
    STOPPED_REASON: ("Agent stopped", "The agent was stopped, which rejected this item"),
}

_OUTCOMES: Mapping[Status, tuple[str, str]] = {
    Status.APPROVED: ("✅", "Approved"),
    Status.MODIFIED: ("✏️", "Approved with changes"),
    Status.REJECTED: ("❌", "Rejected"),
    Status.EXPIRED: ("⌛", "Expired"),
    Status.CANCELLED: ("🚫", "Cancelled by the agent"),
    Status.REVERSED: ("↩️", "Reversed"),
}

_TIMEOUT_WORDS: Mapping[TimeoutAction, str] = {
    TimeoutAction.REJECT: "Rejected automatically",
    TimeoutAction.EXPIRE: "Expires",
    TimeoutAction.APPROVE: "Approved automatically",
}

_NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}


class Wording:
    """Formats numbers, money and times in one locale and words a request's state.

    Raises ValueError on construction for an unknown locale or time zone.
    """

    def __init__(self, policy: Policy, locale: str = "en_US", timezone: str = "UTC") -> None:
        self.policy = policy
        try:
            self.locale = Locale.parse(locale)
        except UnknownLocaleError:
            raise ValueError(f"unknown locale {locale!r}") from None
        self.zone = ZoneInfo(timezone)

    # -- numbers, money, times -----------------------------------------------------------------

    def number(self, value: float) -> str:
        return str(format_decimal(value, locale=self.locale))

    def percent(self, value: float) -> str:
        return str(format_percent(value, locale=self.locale))

    def money(self, amount: float, currency: str) -> str:
        """ "$5,000.00" for a currency code; a plain number without one."""
        code = currency.strip().upper()
        if len(code) == 3 and code.isalpha():
            return str(format_currency(amount, code, locale=self.locale))
        return self.number(amount)

    def amount(self, request: ApprovalRequest) -> str | None:
        """The request's amount as money (as a reviewer's modify left it), or None."""
        if not request.amount:
            return None
        return self.money(current_amount(request), request.currency)

    def moment(self, value: datetime) -> str:
        """A date and time in the configured zone: "Mon, Dec 7, 5:00 PM"."""
        day = format_skeleton("MMMEd", value, tzinfo=self.zone, locale=self.locale)
        return f"{day}, {self.clock(value)}"

    def clock(self, value: datetime) -> str:
        """The time of day alone in the configured zone: "5:00 PM"."""
        return str(format_time(value, "short", tzinfo=self.zone, locale=self.locale))

    # -- why a person sees it ------------------------------------------------------------------

    def explain(self, reasons: Sequence[str], inp: RoutingInput) -> tuple[ReasonText, ...]:
        """The words for `reasons` of a request routed from `inp` (rule titles, sentences)."""
        variables = rule_variables(inp)
        return tuple(self._reason(code, variables) for code in reasons)

    def _reason(self, code: str, variables: Mapping[str, Any]) -> ReasonText:
        failed = code.startswith("rule_error:")
        name = code.removeprefix("rule_error:")
        rule = self.policy.rule(name)
        if failed:
            title = rule.heading if rule else readable(name)
            return ReasonText(
                code, f"{title} (could not be checked)", "The rule failed, so a person decides"
            )
        if rule is not None:
            explain = rule.explain and render_template(rule.explain, variables, self._fill)
            return ReasonText(code, rule.heading, explain or None)
        title, template = _BUILT_IN.get(code, (readable(code), None))
        explain = template and render_template(template, variables, self._fill)
        return ReasonText(code, title, explain or None)

    def _fill(self, path: str, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return str(value) if not isinstance(value, Mapping | list) else "…"
        if path == "confidence" or path == "predicted_escalation":
            return self.percent(value)
        return self.number(value)

    def reasons(self, request: ApprovalRequest) -> tuple[ReasonText, ...]:
        """Why a person sees `request`: the words stored when it was routed, else derived."""
        if request.reason_texts:
            return request.reason_texts
        if not request.reasons and request.review_status is not None:
            return (self.spot_check(request),)
        return self.explain(request.reasons, request.routing_input())

    def spot_check(self, request: ApprovalRequest) -> ReasonText:
        went = "was confident enough" if request.lane is Lane.AUTONOMOUS else "went ahead"
        return ReasonText(
            "sampled_review",
            "Spot check after the fact",
            f"The agent {went} and acted; a person checks a sample of such items",
        )

    # -- who decides, and when -----------------------------------------------------------------

    def who_decides(self, request: ApprovalRequest) -> str:
        """ "Needs 2 different people — 1 of 2 approved, by Ana" and the like."""
        needed = request.approvals_required
        approvals = request.approvals_for_current_action()
        names = ", ".join(dict.fromkeys(v.name for v in approvals))
        tier = f" from tier {request.tier} or above" if request.tier else ""
        if request.status is not Status.PENDING:
            if request.review_status is ReviewStatus.OPEN:
                return f"Needs one person{tier} to confirm or reverse it"
            return self.outcome_line(request)
        if needed == 1:
            return f"Needs one person{tier}"
        people = _NUMBER_WORDS.get(needed, str(needed))
        line = f"Needs {people} different people{tier} — {len(approvals)} of {needed} approved"
        return f"{line}, by {names}" if names else line

    def deadline(self, request: ApprovalRequest) -> Deadline | None:
        """What the deadline does to a pending item: escalate to the next tier, or end it."""
        if request.status is not Status.PENDING or request.deadline_at is None:
            return None
        following = self.policy.next_tier(request.tier) if request.tier else None
        if following is not None:
            return Deadline(request.deadline_at, f"Goes to tier {following}")
        action = self.policy.timeout_action(request.risk)
        return Deadline(request.deadline_at, _TIMEOUT_WORDS[action])

    # -- how it ended --------------------------------------------------------------------------

    def outcome(self, request: ApprovalRequest) -> Outcome:
        return outcome(request)

    def outcome_line(self, request: ApprovalRequest) -> str:
        """ "Rejected by Ana" / "Expired — no one decided before the last tier's deadline"."""
        return outcome_line(request)


def outcome(request: ApprovalRequest) -> Outcome:
    """How `request` ended: the same words in every channel (it needs no locale)."""
    if request.review_status is ReviewStatus.CONFIRMED:
        icon, label = "👍", "Confirmed"
        deciders = [v for v in request.votes if v.verdict is Verdict.CONFIRM]
    else:
        icon, label = _OUTCOMES.get(request.status, ("•", readable(request.status.value)))
        deciders = list(_deciders(request))
    note = None
    if not deciders:
        if request.ended_by_stop:
            note = "the agent was stopped, which ended this item without a verdict"
        elif request.status in (Status.EXPIRED, Status.REJECTED):
            note = "no one decided before the last tier's deadline"
    rationale = next((v.rationale for v in reversed(deciders) if v.rationale), None)
    return Outcome(icon, label, tuple(deciders), note, rationale)


def outcome_line(request: ApprovalRequest) -> str:
    """ "Rejected by Ana" / "Expired — no one decided before the last tier's deadline"."""
    found = outcome(request)
    line = found.label
    if found.deciders:
        line += " by " + ", ".join(dict.fromkeys(v.name for v in found.deciders))
    elif found.note:
        line += f" — {found.note}"
    return line


def current_amount(request: ApprovalRequest) -> float:
    """The amount the approved action would move: the agent states it beside the payload,
    so when its payload's `amount` says the same and a reviewer's modify changed that
    figure, the edited one counts (headers must not keep showing the old sum)."""
    if request.modified_action is None:
        return request.amount
    before = _number(request.action.payload.get("amount"))
    after = _number(request.modified_action.payload.get("amount"))
    if before is not None and after is not None and before == request.amount:
        return after
    return request.amount


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _deciders(request: ApprovalRequest) -> Sequence[Vote]:
    if request.status is Status.REVERSED:
        return [v for v in request.votes if v.verdict is Verdict.REVERSE]
    if request.status is Status.REJECTED:
        return [v for v in request.votes if v.verdict is Verdict.REJECT]
    if request.status in (Status.APPROVED, Status.MODIFIED):
        return request.approvals_for_current_action()
    return []


@dataclass(frozen=True)
class Change:
    """One difference between the agent's payload and a reviewer's edit, at a dotted path."""

    path: str
    old: Any
    new: Any

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "old": self.old, "new": self.new}


_ABSENT: Any = object()


def payload_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[Change, ...]:
    """What a modify changed, leaf by leaf (`invoice.lines.0.amount`), in a stable order.

    A key only on one side shows None on the other; lists compare item by item.
    """
    found: list[Change] = []
    _diff("", before, after, found)
    return tuple(found)


def _diff(path: str, old: Any, new: Any, found: list[Change]) -> None:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in [*old, *(k for k in new if k not in old)]:
            _diff(_join(path, str(key)), old.get(key, _ABSENT), new.get(key, _ABSENT), found)
        return
    if isinstance(old, list) and isinstance(new, list) and old and new:
        for index in range(max(len(old), len(new))):
            _diff(
                _join(path, str(index)),
                old[index] if index < len(old) else _ABSENT,
                new[index] if index < len(new) else _ABSENT,
                found,
            )
        return
    if old is _ABSENT or new is _ABSENT or old != new or type(old) is not type(new):
        found.append(
            Change(
                path or "(payload)",
                None if old is _ABSENT else old,
                None if new is _ABSENT else new,
            )
        )


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
