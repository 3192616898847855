"""An OpenAI Agents SDK agent whose payments Signoff approves, paused across processes."""
