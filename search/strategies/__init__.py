"""Test-time search strategies: best-of-N, beam search, DVTS and MCTS.

Every strategy implements ``search.protocols.Strategy``, is batched across problems (one
generate and one score call per search depth for all live prefixes of all problems), uses
one ``Aggregation`` for both pruning and the final pick, and returns exactly
``config.n`` candidates per problem. Budgets: docs/strategies.md.
"""

from __future__ import annotations

from search.aggregation import Aggregation
from search.protocols import Strategy
from search.strategies.beam import BeamSearch
from search.strategies.best_of_n import BestOfN
from search.strategies.config import MctsFinal, Prior, Select, StrategyConfig, StrategyName
from search.strategies.dvts import Dvts
from search.strategies.mcts import Mcts

__all__ = [
    "BeamSearch",
    "BestOfN",
    "Dvts",
    "Mcts",
    "MctsFinal",
    "Prior",
    "Select",
    "StrategyConfig",
    "StrategyName",
    "build_strategy",
]


def build_strategy(config: StrategyConfig, aggregation: Aggregation | str) -> Strategy:
    """The strategy named by ``config.name``, pruning and picking with ``aggregation``."""
    aggregation = Aggregation(aggregation)
    match StrategyName(config.name):
        case StrategyName.best_of_n:
            return BestOfN(config, aggregation)
        case StrategyName.beam:
            return BeamSearch(config, aggregation)
        case StrategyName.dvts:
            return Dvts(config, aggregation)
        case StrategyName.mcts:
            return Mcts(config, aggregation)
