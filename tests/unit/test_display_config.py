"""The `display:` section and rule explanations: bad values are refused naming the key."""

from __future__ import annotations

import pytest

from bot.core.errors import ConfigError
from bot.server.config import parse_config


def test_the_display_defaults_and_a_german_policy() -> None:
    assert parse_config({}, env={}).settings.display.locale == "en_US"
    german = parse_config({"display": {"locale": "de_DE", "timezone": "Europe/Berlin"}}, env={})
    assert german.settings.wording(german.policy).money(950.5, "EUR") == "950,50\xa0€"


@pytest.mark.parametrize(
    ("section", "where", "problem"),
    [
        ({"display": {"locale": "xx_NOPE"}}, "display.locale", "not a locale Babel knows"),
        ({"display": {"timezone": "Mars/Olympus"}}, "display.timezone", "not an IANA time zone"),
        (
            {
                "routing": {
                    "rules": [{"name": "big", "when": "amount > 1.0", "explain": "{amonut}"}]
                }
            },
            "routing.rules[0].explain",
            "names no request variable",
        ),
        (
            {"tiers": [{"name": "junior", "sla": "1h", "notify": "pager"}]},
            "tiers[0].notify",
            "",
        ),
    ],
)
def test_a_bad_value_names_its_key(section: dict[str, object], where: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(section, env={})
    assert where in str(refused.value) and problem in str(refused.value)
