"""Structured config of ``python -m search.serve`` (the schema behind ``conf/serve.yaml``):
the same policy, scorer, strategy and aggregation groups as ``python -m search``, plus where
to listen and how to batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from search.aggregation import Aggregation
from search.strategies.config import StrategyConfig


@dataclass
class ServeConfig:
    """``policy`` and ``scorer`` are ``_target_`` nodes as in ``python -m search``.
    ``max_batch_problems``: most problems in one strategy call (and most questions in one
    request); ``max_wait_ms``: how long the first request of a batch waits for others to
    join it; ``disconnect_poll_ms``: how often a waiting request asks whether its client is
    still there (a client that left is dropped from the queue or from its running batch);
    ``max_n``: the largest search budget ``n`` a request may ask for (a larger one is a
    400), at least ``strategy.n``."""

    seed: int = 0
    aggregation: Aggregation = Aggregation.min
    host: str = "127.0.0.1"
    port: int = 8000
    model_name: str = "prm-search"
    max_batch_problems: int = 64
    max_wait_ms: float = 10.0
    disconnect_poll_ms: float = 500.0
    max_n: int = 64
    log_level: str = "info"
    policy: Any = None
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    scorer: Any = None

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"expected 0 < port < 65536, got {self.port}; fix: e.g. port=8000")
        if self.max_batch_problems < 1 or self.max_wait_ms < 0:
            raise ValueError(
                "expected max_batch_problems >= 1 and max_wait_ms >= 0, got "
                f"{self.max_batch_problems} and {self.max_wait_ms}; "
                "fix: e.g. max_batch_problems=64 max_wait_ms=10"
            )
        if not self.disconnect_poll_ms > 0:
            raise ValueError(
                f"expected disconnect_poll_ms > 0, got {self.disconnect_poll_ms}; "
                "fix: e.g. disconnect_poll_ms=500"
            )
        check_max_n(getattr(self.strategy, "n", 1), self.max_n)


def check_max_n(n: int, max_n: int) -> None:
    """The server's own budget ``n`` (``strategy.n``) must be one a request may ask for."""
    if max_n < 1 or n > max_n:
        raise ValueError(
            f"expected 1 <= strategy.n <= max_n, got strategy.n={n}, max_n={max_n}; "
            f"fix: max_n={max(n, 64)} (the largest n a request may ask for), or a smaller "
            "strategy.n"
        )


def register_configs() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="serve_schema", node=ServeConfig)
