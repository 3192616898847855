"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_slack import FakeSlack


@pytest.fixture(scope="module")
def slack_server() -> Iterator[FakeSlack]:
    """One fake Slack per test module (it also plays the agent's webhook endpoint)."""
    with FakeSlack() as slack:
        yield slack


@pytest.fixture
def slack(slack_server: FakeSlack) -> FakeSlack:
    """The module's fake Slack, emptied of what earlier tests recorded."""
    slack_server.reset()
    return slack_server
