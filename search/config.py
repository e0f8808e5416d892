"""Structured config of ``python -m search`` (the schema behind ``conf/config.yaml``).

Every group is backed by a dataclass registered in Hydra's ConfigStore, so a typo or a wrong
type fails at the command line with Hydra's own message. Cross-field rules are checked by
``validate`` before any model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from search.aggregation import Aggregation
from search.data import DatasetConfig
from search.generators import PolicyConfig
from search.strategies.config import StrategyConfig


@dataclass
class SearchConfig:
    """Top level. ``scorer`` is a ``_target_`` node (any class satisfying ``Scorer``) or null.

    ``batch_problems``: problems per engine batch; results are appended and flushed after
    each batch, so a killed run loses at most one batch.
    """

    seed: int = 0
    aggregation: Aggregation = Aggregation.min
    batch_problems: int = 64
    grading_timeout_s: float = 5.0
    progress: bool = True
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    scorer: Any = None


def register_configs() -> None:
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(name="search_schema", node=SearchConfig)


def validate(config: SearchConfig) -> None:
    """Cross-field checks that need more than one group; raises ValueError naming the fix."""
    if config.batch_problems < 1:
        raise ValueError(
            f"expected batch_problems >= 1, got {config.batch_problems}; fix: batch_problems=64"
        )
    config.strategy.validate(has_scorer=config.scorer is not None)
