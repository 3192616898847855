"""The one error routing raises for a policy that cannot work."""

from __future__ import annotations


class PolicyError(ValueError):
    """A policy that validates field by field but cannot work as a whole.

    ``path`` names the config key (``routing.rules[1].when``), ``problem`` says what is
    wrong with it; ``str()`` is ``"<path>: <problem>"``.
    """

    def __init__(self, path: str, problem: str) -> None:
        # Both go to args so the exception survives pickling (e.g. across processes).
        super().__init__(path, problem)
        self.path = path
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"
