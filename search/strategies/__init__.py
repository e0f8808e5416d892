"""Test-time search strategies: best-of-N, beam search, DVTS, MCTS, particle filtering and
adaptive best-of-N.

Every strategy implements ``search.protocols.Strategy``, is batched across problems (one
generate and one score call per search depth for all live prefixes of all problems), uses
one ``Aggregation`` for both pruning and the final pick, and returns exactly
``config.n`` candidates per problem (adaptive best-of-N: the samples it drew, at most
``config.n``). Budgets: docs/strategies.md.

Reading order: ``base`` (the skeleton every strategy shares: start and end of a run, the
batched calls), then one strategy file (its algorithm, top to bottom); tree searches also
use ``tree`` (nodes, one search depth, saving). ``search.selection`` picks the final
answer, ``config`` is the ``strategy`` config group's schema. A new strategy: see
``base.SearchStrategy``.
"""

from __future__ import annotations

from search.aggregation import Aggregation
from search.selection import Select
from search.strategies.adaptive import AdaptiveBestOfN
from search.strategies.base import Calls, Outcome, SearchStopped, SearchStrategy
from search.strategies.beam import BeamSearch
from search.strategies.best_of_n import BestOfN
from search.strategies.config import MctsFinal, Prior, StrategyConfig, StrategyName
from search.strategies.dvts import Dvts
from search.strategies.mcts import Mcts
from search.strategies.particle_filtering import ParticleFilter

__all__ = [
    "AdaptiveBestOfN",
    "BeamSearch",
    "BestOfN",
    "Calls",
    "Dvts",
    "Mcts",
    "MctsFinal",
    "Outcome",
    "ParticleFilter",
    "Prior",
    "SearchStopped",
    "SearchStrategy",
    "Select",
    "StrategyConfig",
    "StrategyName",
    "build_strategy",
]


def build_strategy(
    config: StrategyConfig, aggregation: Aggregation | str, seed: int = 0
) -> SearchStrategy:
    """The strategy named by ``config.name``, pruning and picking with ``aggregation``;
    ``seed`` keys the strategy's own randomness (particle filtering's resampling)."""
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
        case StrategyName.particle_filtering:
            return ParticleFilter(config, aggregation, seed)
        case StrategyName.adaptive_best_of_n:
            return AdaptiveBestOfN(config, aggregation)
