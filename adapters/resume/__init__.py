"""Resume targets: how a decided request goes back to the agent."""

from adapters.resume.webhook import WebhookResumeTarget

__all__ = ["WebhookResumeTarget"]
