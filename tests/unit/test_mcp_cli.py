"""`signoff mcp ...` before any connection: options, the --config file, the environment,
and the message when the MCP SDK is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bot.server.cli import main
from signoff_client.mcp import McpSetupError, build_parser
from signoff_client.mcp._cli import gateway_settings
from signoff_client.mcp._settings import signoff_access, upstream_environment


def gateway(*args: str) -> tuple[object, object]:
    return gateway_settings(build_parser().parse_args(["gateway", "--agent", "a", *args]))


def test_a_missing_mcp_sdk_exits_2_saying_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SIGNOFF_API_KEY", "sk_x")
    sdk_users = ("mcp.", "signoff_client.mcp._approvals", "signoff_client.mcp._gateway")
    for module in [m for m in sys.modules if m.startswith(sdk_users)]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "mcp", None)  # what `import mcp` meets when absent
    assert main(["mcp", "serve", "--agent", "a"]) == 2
    assert "install signoff[mcp]" in capsys.readouterr().err
    assert main(["mcp", "gateway", "--upstream", "srv", "--agent", "a"]) == 2
    assert "install signoff[mcp]" in capsys.readouterr().err


def test_the_key_must_be_in_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SIGNOFF_API_KEY", raising=False)
    assert main(["mcp", "serve", "--agent", "a"]) == 2
    assert "SIGNOFF_API_KEY is not set" in capsys.readouterr().err
    access = signoff_access({"SIGNOFF_API_KEY": "sk_1"})
    assert (access.url, access.api_key) == ("http://127.0.0.1:8000", "sk_1")
    with pytest.raises(McpSetupError, match="SIGNOFF_URL must be an http"):
        signoff_access({"SIGNOFF_API_KEY": "sk_1", "SIGNOFF_URL": "ftp://x"})


def test_the_upstream_environment_has_no_signoff_variables() -> None:
    env = {"PATH": "/bin", "SIGNOFF_API_KEY": "sk", "signoff_url": "u", "TOKEN": "t"}
    assert upstream_environment(env) == {"PATH": "/bin", "TOKEN": "t"}


def test_exactly_one_upstream(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(McpSetupError, match="exactly one"):
        gateway()
    with pytest.raises(SystemExit):
        build_parser().parse_args(
            ["gateway", "--agent", "a", "--upstream", "x", "--upstream-url", "http://h/mcp"]
        )
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(McpSetupError, match="must be an http"):
        gateway("--upstream-url", "file:///etc/passwd")


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--confidence", "1.5", "between 0 and 1"),
        ("--confidence", "nan", "between 0 and 1"),
        ("--wait-timeout", "soon", "not a duration"),
        ("--wait-timeout", "0s", "must be positive"),
    ],
)
def test_bad_flags_name_the_flag(
    flag: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["gateway", "--agent", "a", "--upstream", "x", flag, value])
    err = capsys.readouterr().err
    assert flag in err and message in err


def test_config_file_with_flags_winning(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "upstream: python -m srv\nconfidence: 0.7\nwait_timeout: 10m\n"
        "tools:\n  read: {confidence: 1.0}\n",
        encoding="utf-8",
    )
    upstream, options = gateway("--config", str(path))
    assert upstream.command == "python -m srv"  # type: ignore[attr-defined]
    assert options.wait_timeout == 600  # type: ignore[attr-defined]
    assert options.confidence_for("read") == 1.0  # type: ignore[attr-defined]
    assert options.confidence_for("write") == 0.7  # type: ignore[attr-defined]
    upstream, options = gateway(
        "--config", str(path), "--upstream-url", "http://127.0.0.1:1/mcp", "--confidence", "0.2"
    )
    assert upstream.command is None and upstream.url == "http://127.0.0.1:1/mcp"  # type: ignore[attr-defined]
    assert options.confidence_for("write") == 0.2  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("upstream: x\nretries: 3\n", "unknown key 'retries'"),
        ("- a\n", "top level must be a mapping"),
        ("upstream: x\nconfidence: high\n", "confidence: not a number"),
        ("upstream: x\ntools: {pay: {confidence: 2}}\n", "tools.pay.confidence"),
        ("upstream: x\ntools: {pay: {approve: true}}\n", "tools.pay: only confidence"),
        ("upstream: [x\n", "not YAML"),
    ],
)
def test_config_file_errors_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(McpSetupError, match=message) as caught:
        gateway("--config", str(path))
    assert str(path) in str(caught.value)
    with pytest.raises(McpSetupError, match="No such file"):
        gateway("--config", str(tmp_path / "absent.yaml"))
