"""Parsing the text after `/signoff` (pure)."""

from __future__ import annotations

from dataclasses import dataclass

USAGE = (
    "*Signoff commands*\n"
    "• `/signoff pending` — what waits for your verdict\n"
    "• `/signoff stop <agent> <reason>` — stop an agent: all its requests are rejected\n"
    "• `/signoff start <agent>` — let a stopped agent ask again\n"
    "Stop and start are for reviewers of the top tier."
)


@dataclass(frozen=True)
class Command:
    """`verb` is pending | stop | start | help; `problem` says what was wrong with the text."""

    verb: str
    agent: str = ""
    reason: str = ""
    problem: str | None = None


def parse_command(text: str) -> Command:
    words = text.strip().split(maxsplit=2)
    if not words:
        return Command("help")
    verb = words[0].lower()
    if verb in ("pending", "list", "inbox"):
        return Command("pending")
    if verb in ("stop", "start"):
        if len(words) < 2:
            return Command("help", problem=f"`/signoff {verb}` needs the agent's id.")
        reason = words[2].strip() if len(words) > 2 else ""
        if verb == "stop" and not reason:
            return Command(
                "help", problem="`/signoff stop` needs a reason, e.g. `/signoff stop bot1 loops`."
            )
        return Command(verb, agent=words[1], reason=reason)
    if verb == "help":
        return Command("help")
    return Command("help", problem=f"Unknown command `{verb}`.")
