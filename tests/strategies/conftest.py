"""Fixtures of the strategy tests: a few arithmetic-world problems and a config factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from search.envs.arith.world import make_split
from search.strategies import StrategyConfig
from search.types import Problem


@pytest.fixture(scope="session")
def problems() -> list[Problem]:
    """Four fixed test-split problems (chains of 2 to 4 operations)."""
    return make_split("test", size=4)


@pytest.fixture
def make_config() -> Callable[..., StrategyConfig]:
    """A small config of ``name`` (fast on 2 cores), with overrides."""

    def build(name: str, **overrides: Any) -> StrategyConfig:
        small: dict[str, Any] = {
            "name": name,
            "n": 4,
            "beam_width": 2,
            "num_simulations": 8,
            "children_per_expansion": 2,
        }
        return StrategyConfig(**{**small, **overrides})

    return build
