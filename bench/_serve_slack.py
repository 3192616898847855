"""`signoff serve` with its Slack channel pointed at a fake Slack, unpaced, for benchmarks.

Slack allows about one message per second per channel, and `SlackChannel` paces to that;
a benchmark of Signoff's own latency takes the pacing out (interval 0), so what it measures
is submit -> commit -> outbox -> chat.postMessage.

    python -m bench._serve_slack --config FILE --port PORT --slack-api URL
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

import uvicorn

from adapters.slack import ChannelPacer, SlackChannel, slack_client
from bot.server.app import build_services, create_app
from bot.server.config import load_config


async def serve(config_path: str, port: int, slack_api: str) -> None:
    config = load_config(config_path)
    channel = SlackChannel(
        slack_client("xoxb-bench", slack_api.rstrip("/") + "/"), pacer=ChannelPacer(interval=0)
    )
    services = await build_services(config, channels={"slack": channel})
    async with services.stack:
        app = create_app(config, services=services)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        await server.serve()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--slack-api", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=os.environ.get("SIGNOFF_LOG_LEVEL", "WARNING").upper())
    asyncio.run(serve(args.config, args.port, args.slack_api))


if __name__ == "__main__":
    main()
