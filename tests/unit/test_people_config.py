"""The `people:` section and reviewer identities in the config (issue 14 sections 2 and 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.core.errors import ConfigError
from bot.server.cli import main
from bot.server.config import parse_config

TIERS = [{"name": "only", "sla": "1h", "reviewers": ["web:max", "slack:U0DDD"]}]


def config(**sections: Any) -> Any:
    return parse_config({"tiers": TIERS, **sections}, env={})


def problem(**sections: Any) -> ConfigError:
    with pytest.raises(ConfigError) as raised:
        config(**sections)
    return raised.value


def test_people_map_identities_to_one_person() -> None:
    loaded = config(
        people=[{"id": "ops-lead", "name": "Ops lead", "identities": ["web:max", "slack:U0DDD"]}]
    )
    directory = loaded.settings.directory()
    assert directory.person_of("slack:U0DDD") == "ops-lead"
    assert directory.person_of("web:max") == "ops-lead"
    assert directory.person_of("web:alice") == "web:alice"  # unlisted: a person of its own
    assert directory.same("web:max", "slack:U0DDD") and not directory.same("web:max", None)


def test_an_identity_under_two_people_names_its_key_path() -> None:
    error = problem(
        people=[
            {"id": "a", "identities": ["web:max"]},
            {"id": "b", "identities": ["slack:U0DDD", "web:max"]},
        ]
    )
    assert error.path == "people[1].identities[1]"
    assert "people[0].identities[0]" in error.problem


def test_an_identity_listed_twice_and_a_person_id_twice_are_errors() -> None:
    assert (
        problem(people=[{"id": "a", "identities": ["web:max", "web:max"]}]).path
        == "people[0].identities[1]"
    )
    twice = problem(people=[{"id": "a", "identities": ["web:x"]}, {"id": "a", "identities": []}])
    assert twice.path.startswith("people[1]")


@pytest.mark.parametrize(
    ("sections", "path"),
    [
        ({"people": [{"id": "a", "identities": ["U0DDD"]}]}, "people[0].identities"),
        ({"people": [{"id": "a", "identities": ["email:x@y"]}]}, "people[0].identities"),
        ({"people": [{"id": "a", "identities": ["web:<!channel>"]}]}, "people[0].identities"),
        ({"people": [{"id": "a", "identities": ["slack:U0A\n"]}]}, "people[0].identities"),
        (
            {"agents": [{"id": "b", "key_sha256": "0" * 64, "owner": "U0OWNER"}]},
            "agents[0].owner",
        ),
        (
            {"tiers": [{"name": "t", "sla": "1h", "reviewers": ["web:max", "max"]}]},
            "tiers[0].reviewers[1]",
        ),
    ],
)
def test_identities_must_be_platform_colon_id(sections: dict[str, Any], path: str) -> None:
    error = problem(**sections)
    assert error.path == path
    assert "platform" in error.problem or "letters, digits" in error.problem


def test_policy_check_exits_2_naming_the_key_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "signoff.yaml"
    path.write_text(
        "tiers: [{name: only, sla: 1h, reviewers: [web:max]}]\n"
        "people:\n"
        "  - {id: a, identities: [web:max]}\n"
        "  - {id: b, identities: [web:max]}\n"
    )
    assert main(["policy", "check", str(path)]) == 2
    assert "people[1].identities[0]" in capsys.readouterr().err
