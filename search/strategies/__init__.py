"""Test-time search strategies: best-of-N, beam search, DVTS and MCTS.

Every strategy implements ``search.protocols.Strategy``, is batched across problems (one
generate and one score call per search depth for all live prefixes of all problems), uses
one ``Aggregation`` for both pruning and the final pick, and returns exactly
``config.n`` candidates per problem. Budgets: docs/strategies.md.

Reading order: ``base`` (the skeleton every strategy shares: start and end of a run, the
batched calls), then one strategy file (its algorithm, top to bottom); tree searches also
use ``tree`` (nodes, one search depth, saving). ``search.selection`` picks the final
answer, ``config`` is the ``strategy`` config group's schema. A new strategy: see
``base.SearchStrategy``.
"""

from __future__ import annotations

from search.aggregation import Aggregation
from search.selection import Select
from search.strategies.base import Calls, Outcome, SearchStrategy
from search.strategies.beam import BeamSearch
from search.strategies.best_of_n import BestOfN
from search.strategies.config import MctsFinal, Prior, StrategyConfig, StrategyName
from search.strategies.dvts import Dvts
from search.strategies.mcts import Mcts

__all__ = [
    "BeamSearch",
    "BestOfN",
    "Calls",
    "Dvts",
    "Mcts",
    "MctsFinal",
    "Outcome",
    "Prior",
    "SearchStrategy",
    "Select",
    "StrategyConfig",
    "StrategyName",
    "build_strategy",
]


def build_strategy(config: StrategyConfig, aggregation: Aggregation | str) -> SearchStrategy:
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
