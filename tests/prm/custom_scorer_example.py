"""A PRM of your own, as README ("Plugging in a custom PRM") shows: any class with ``score``.

Copy this file next to a ``scorer/length_penalty.yaml`` in your config directory and run
``python -m search --config-dir YOUR_DIR scorer=length_penalty``.
"""

from __future__ import annotations

from collections.abc import Sequence

from search.types import Prefix


class LengthPenaltyScorer:
    """Scores each step 1 for a short step, falling linearly to ``floor`` at ``max_chars``."""

    def __init__(self, max_chars: int = 200, floor: float = 0.05) -> None:
        self.max_chars = max_chars
        self.floor = floor

    def score(self, prefixes: Sequence[Prefix]) -> list[list[float]]:
        return [
            [max(self.floor, 1.0 - len(step) / self.max_chars) for step in prefix.steps]
            for prefix in prefixes
        ]
