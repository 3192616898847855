"""Resume targets: how a decided request goes back to the agent."""

from adapters.resume.dispatch import PerAgentResumeTarget
from adapters.resume.webhook import WebhookResumeTarget

__all__ = ["PerAgentResumeTarget", "WebhookResumeTarget"]
