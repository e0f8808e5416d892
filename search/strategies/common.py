"""Turning a finished search into ``SearchResult``s, the same way for every strategy."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from search.aggregation import Aggregation
from search.protocols import Scorer
from search.strategies.calls import Backends
from search.strategies.config import Select, StrategyConfig
from search.types import Candidate, Problem, SearchResult


def build_results(
    problems: Sequence[Problem],
    candidates: Sequence[tuple[Candidate, ...]],
    picks: Sequence[dict[str, str | None]],
    rule: str,
    backends: Backends,
    start: float,
    trees: Sequence[dict[str, Any] | None] | None = None,
) -> list[SearchResult]:
    """One result per problem. ``wall_s``: the batch's wall time (from ``start``, a
    ``time.perf_counter()`` reading, to now) split evenly over its problems, since every call
    served all of them at once."""
    wall_s = (time.perf_counter() - start) / max(1, len(problems))
    tree_data = trees if trees is not None else [None] * len(problems)
    return [
        SearchResult(
            problem=problem,
            candidates=problem_candidates,
            prediction=problem_picks[rule],
            predictions=problem_picks,
            usage=backends.usage(index),
            wall_s=wall_s,
            tree=tree,
        )
        for index, (problem, problem_candidates, problem_picks, tree) in enumerate(
            zip(problems, candidates, picks, tree_data, strict=True)
        )
    ]


class StrategyBase:
    """What every strategy holds: its config and the one aggregation it prunes and picks with."""

    def __init__(self, config: StrategyConfig, aggregation: Aggregation | str) -> None:
        self.config = config
        self.aggregation = Aggregation(aggregation)

    def begin(self, scorer: Scorer | None) -> Select:
        """Check the config against this run (scorer or not); the selection rule in effect."""
        self.config.validate(has_scorer=scorer is not None)
        return self.config.selection(has_scorer=scorer is not None)
