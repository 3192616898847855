"""The invoice example: SIGNOFF_PORT and INVOICE_AGENT_PORT move every port it uses."""

from __future__ import annotations

import pytest
import yaml

from bot.server.config import parse_config
from examples.invoice_agent import __main__ as example


def test_the_defaults_are_8000_and_9000(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SIGNOFF_PORT", "INVOICE_AGENT_PORT", "SIGNOFF_URL"):
        monkeypatch.delenv(name, raising=False)
    assert example.signoff_url() == "http://127.0.0.1:8000"
    assert example.agent_port() == 9000
    assert example.signoff_config() == example.CONFIG.read_text()


def test_two_variables_move_every_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIGNOFF_URL", raising=False)
    monkeypatch.setenv("SIGNOFF_PORT", "8123")
    monkeypatch.setenv("INVOICE_AGENT_PORT", "9123")
    text = example.signoff_config()
    env = {"SIGNOFF_PORT": "8123", "INVOICE_AGENT_WEBHOOK_SECRET": "whsec_eA=="}
    config = parse_config(yaml.safe_load(text), env)
    # Signoff listens where the agent calls it, and calls back where the agent listens.
    assert config.settings.port == 8123
    assert config.settings.public_url == "http://127.0.0.1:8123"
    assert example.signoff_url() == "http://127.0.0.1:8123"
    agent = config.settings.agent_specs()["invoice-agent"]
    assert agent.callback_url == "http://127.0.0.1:9123/resume"
    assert example.agent_port() == 9123
    assert "9000" not in text and "8000" not in text


def test_a_port_that_is_not_a_number_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOICE_AGENT_PORT", "ninety")
    with pytest.raises(SystemExit, match="INVOICE_AGENT_PORT must be a port number"):
        example.agent_port()
