"""Microsoft 365 Agents Playground, Microsoft's local Teams emulator, as a test subprocess.

The npm package `@microsoft/m365agentsplayground` (installed into `.node/` by
`scripts/ensure-playground`, which `make test` runs) serves, on one port:

- a mocked Bot Connector at `/_connector` (`POST /v3/conversations`, `POST` and `PUT
  /v3/conversations/{id}/activities[/{id}]`) that keeps Teams' rules, e.g. a `PUT` holding
  both text and a card is refused with `400 BadSyntax` ("Activity resulted into multiple
  skype activities");
- its own conversation API, which the web client uses and tests may call too:
  `POST /_conversation/v1/invoke` (a click on a card: it sends the bot a real-shaped
  `adaptiveCard/action` invoke from a configured user and answers with the bot's invoke
  response) and `POST /_conversation/v1/conversations/{id}/messages` (a user writes);
- the web client at `/`, which draws Adaptive Cards with the Teams renderer.

It runs offline: `TEAMSAPPTESTER_BROWSER=none` (no browser is opened) and
`--disable-telemetry`. With `--enable-events-recording` every call both ways is appended
to `M365_AGENTS_PLAYGROUND_RECORDING_FILE` as pretty JSON records separated by `---`
lines, each with `direction` ("User Application -> Microsoft 365 Agents Playground" for
the bot's calls to the connector), `activityName`, `request` and `response.statusCode`.
The teams, channels, users and chats it knows come from the YAML file named by
`M365_AGENTS_PLAYGROUND_CONFIG_PATH` (exactly five users besides the current one, one
channel besides General, whose id is the team's).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "@microsoft/m365agentsplayground"
CLI = ROOT / ".node" / "node_modules" / PACKAGE / "cli.js"
ENSURE = ROOT / "scripts" / "ensure-playground"
FROM_BOT = "User Application -> Microsoft 365 Agents Playground"
TO_BOT = "Microsoft 365 Agents Playground -> User Application"


def node() -> str | None:
    """The `node` executable, or None when Node.js is not installed."""
    return shutil.which("node")


def ensure_installed() -> Path:
    """The Playground's CLI, installed from npm first if it is missing."""
    if not CLI.exists():
        subprocess.run([str(ENSURE)], check=False, timeout=300)
    if not CLI.exists():
        raise AssertionError(f"{PACKAGE} is not installed at {CLI}; run {ENSURE}")
    return CLI


@dataclass(frozen=True)
class Event:
    """One recorded call between the bot ("User Application") and the Playground."""

    direction: str
    name: str
    conversation_id: str | None
    status: int
    method: str
    url: str
    body: Any
    response: Any
    user_agent: str = ""

    @property
    def from_bot(self) -> bool:
        return self.direction == FROM_BOT

    @property
    def activity(self) -> dict[str, Any]:
        """The activity the call carried (`createConversation` wraps it in `activity`)."""
        body = self.body if isinstance(self.body, dict) else {}
        inner = body.get("activity")
        return inner if isinstance(inner, dict) else body

    @property
    def card(self) -> dict[str, Any] | None:
        for attachment in self.activity.get("attachments") or []:
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
                content: dict[str, Any] = attachment["content"]
                return content
        return None


@dataclass
class Playground:
    url: str
    recording: Path
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @property
    def connector(self) -> str:
        return f"{self.url}/_connector/"

    def events(self) -> list[Event]:
        """Every call recorded so far, oldest first."""
        if not self.recording.exists():
            return []
        found = []
        for chunk in self.recording.read_text(encoding="utf-8").split("\n---\n"):
            if not chunk.strip():
                continue
            try:
                item = json.loads(chunk)
            except json.JSONDecodeError:  # the record being written right now
                continue
            request = item.get("request") or {}
            response = item.get("response") or {}
            found.append(
                Event(
                    direction=str(item.get("direction", "")),
                    name=str(item.get("activityName", "")),
                    conversation_id=item.get("conversationId"),
                    status=int(response.get("statusCode") or 0),
                    method=str(request.get("method", "")),
                    url=str(request.get("url", "")),
                    body=request.get("body"),
                    response=response.get("body"),
                    user_agent=str((request.get("headers") or {}).get("user-agent", "")),
                )
            )
        return found

    def bot_calls(self) -> list[Event]:
        """The calls Signoff made to the connector."""
        return [e for e in self.events() if e.from_bot]

    def wait_for(self, what: str, match: Callable[[Event], bool], timeout: float = 20.0) -> Event:
        """The first recorded bot call that `match`es, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.bot_calls():
                if match(event):
                    return event
            if time.monotonic() > deadline:
                seen = [(e.name, e.method, e.status, e.url) for e in self.bot_calls()]
                raise AssertionError(f"no connector call for {what} in {timeout} s; saw {seen}")
            time.sleep(0.1)

    def invoke(
        self,
        user_id: str,
        conversation_id: str,
        message_id: str,
        verb: str,
        data: dict[str, Any],
    ) -> dict[str, Any]:
        """Click `verb` on a card as `user_id`, the way the web client does; the bot's answer."""
        body = {
            "name": "adaptiveCard/action",
            "value": {"action": {"type": "Action.Execute", "verb": verb, "data": data}},
            "from": {"id": user_id},
            "conversation": {"id": conversation_id},
            "replyToId": message_id,
        }
        response = httpx.post(f"{self.url}/_conversation/v1/invoke", json=body, timeout=30)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def say(self, user_id: str, conversation_id: str, text: str) -> None:
        """Write `text` in a chat as `user_id`, the way the web client's compose box does."""
        response = httpx.post(
            f"{self.url}/_conversation/v1/conversations/{conversation_id}/messages",
            json={"from": {"id": user_id}, "text": text, "textFormat": "plain"},
            timeout=30,
        )
        assert response.status_code == 200, response.text


@contextmanager
def playground(cwd: Path, *, port: int, app_endpoint: str, config: Path) -> Iterator[Playground]:
    """Start the Playground offline against `app_endpoint`; stop it afterwards."""
    cli = ensure_installed()
    executable = node()
    assert executable is not None
    recording = cwd / "events_recording.txt"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")},
        "TEAMSAPPTESTER_BROWSER": "none",
        "M365_AGENTS_PLAYGROUND_CONFIG_PATH": str(config),
        "M365_AGENTS_PLAYGROUND_RECORDING_FILE": str(recording),
        "M365_AGENTS_PLAYGROUND_LOGFILE": str(cwd / "playground.log"),
    }
    url = f"http://127.0.0.1:{port}"
    args = [
        executable,
        str(cli),
        "start",
        "--app-endpoint",
        app_endpoint,
        "--channel-id",
        "msteams",
        "--port",
        str(port),
        "--service-url",
        f"{url}/_connector",
        "--enable-events-recording",
        "--disable-telemetry",
    ]
    process = subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    found = Playground(url, recording, process)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            found.lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any(f"Listening on {port}" in line for line in found.lines):
            if process.poll() is not None:
                raise AssertionError(f"the Playground exited {process.returncode}: {found.lines}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the Playground did not start: {found.lines}")
            time.sleep(0.05)
        yield found
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()
