"""Structured config of ``python -m search`` (the schema behind ``conf/config.yaml``).

Every group is backed by a dataclass registered in Hydra's ConfigStore, so a typo or a wrong
type fails at the command line with Hydra's own message. Cross-field rules are checked by
``validate`` before any model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from search.aggregation import Aggregation
from search.inputs import InputError
from search.launchers.ray import RayLauncherConfig
from search.run import OnOverflow
from search.strategies.config import StrategyConfig


@dataclass
class SearchConfig:
    """Top level. The components are ``_target_`` nodes: ``dataset`` builds a
    ``ProblemSource``, ``policy`` a ``Generator`` (its constructor takes ``seed``), ``scorer``
    a ``Scorer`` (or is null).

    ``batch_problems``: problems per engine batch; results are appended and flushed after
    each batch, so a killed run loses at most one batch. ``on_overflow``: a problem whose
    prompt does not fit the policy's context is an error (``error``) or is recorded as
    skipped and left out of the accuracy (``skip``).
    """

    seed: int = 0
    on_overflow: OnOverflow = OnOverflow.error
    aggregation: Aggregation = Aggregation.min
    batch_problems: int = 64
    grading_timeout_s: float = 5.0
    progress: bool = True
    dataset: Any = None
    policy: Any = None
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    scorer: Any = None
    launcher: RayLauncherConfig | None = None


def register_configs() -> None:
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(name="search_schema", node=SearchConfig)


def validate(config: SearchConfig) -> None:
    """Cross-field checks that need more than one group; raises InputError naming the fix."""
    if config.batch_problems < 1:
        raise InputError(
            f"expected batch_problems >= 1, got {config.batch_problems}; fix: batch_problems=64"
        )
    if config.dataset is None:
        raise InputError(
            "expected a dataset (a _target_ node building a ProblemSource), got dataset=null; "
            "fix: dataset=arith or another file of conf/dataset"
        )
    if config.policy is None:
        raise InputError(
            "expected a policy (a _target_ node building a Generator), got policy=null; "
            "fix: policy=arith_tiny or another file of conf/policy"
        )
    config.strategy.validate(has_scorer=config.scorer is not None)
