"""Runnable examples of agents that ask Signoff before they act."""
