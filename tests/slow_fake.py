"""A fake policy that takes its time, so a test can kill a run half way (``kill -9``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from search.envs.arith.fakes import FakeGenerator
from search.types import DEFAULT_SAMPLING, Generation, Prefix, Sampling, Until


class SlowFakeGenerator(FakeGenerator):
    """``FakeGenerator`` sleeping ``delay_s`` before every generate call; ``questions``: the
    questions of each call, in order."""

    def __init__(self, delay_s: float = 0.3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delay_s = delay_s
        self.questions: list[set[str]] = []

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        self.questions.append({prefix.problem.question for prefix in prefixes})
        time.sleep(self.delay_s)
        return super().generate(prefixes, n, until, sampling)
