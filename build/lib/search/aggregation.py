"""How step scores become one solution score. The same rule serves pruning during search
and the final pick, so no place in the engine may use another."""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import Enum


class Aggregation(str, Enum):
    last = "last"  # the score of the final step (outcome-like)
    min = "min"  # the weakest step (the paper's choice for Qwen2.5-Math-PRM)
    prod = "prod"  # product of step scores: the probability that every step is right
    mean = "mean"


def aggregate(step_scores: Sequence[float], how: Aggregation | str) -> float:
    """Combine the step scores of one solution. An empty solution scores 0."""
    how = Aggregation(how)
    if not step_scores:
        return 0.0
    if how is Aggregation.last:
        return float(step_scores[-1])
    if how is Aggregation.min:
        return float(min(step_scores))
    if how is Aggregation.prod:
        return float(math.prod(step_scores))
    return float(sum(step_scores) / len(step_scores))
