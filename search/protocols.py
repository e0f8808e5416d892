"""The seams of the engine. Every backend and strategy is batch-first.

The engine never knows which model is behind a ``Generator`` or a ``Scorer``; a user plugs
in their own class by satisfying these protocols (see README, "Plugging in a custom PRM").
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from search.types import (
    DEFAULT_SAMPLING,
    Generation,
    LoadedProblems,
    Prefix,
    Problem,
    Sampling,
    ScoreOutput,
    SearchResult,
    StepCheck,
    Until,
)


@dataclass
class TokenCounter:
    """Running totals a backend keeps of what it actually processed."""

    calls: int = 0
    tokens: int = 0  # tokens encoded (prompt/prefix tokens the model ran over)
    new_tokens: int = 0  # of those, tokens not seen before (the rest could be prefix-cached)
    generated_tokens: int = 0  # tokens sampled (generators only)


@runtime_checkable
class Generator(Protocol):
    """Samples continuations of many partial solutions at once."""

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        """``n`` continuations of every prefix: ``len(out) == len(prefixes)`` and
        ``len(out[i].continuations) == n``. ``until=Until.step`` stops each continuation at
        the end of its next step (the blank line is kept in ``text``); ``Until.end`` lets it
        run to the end of the solution. ``sampling`` overrides the generator's temperature,
        top_p and token limit for this call and names each prefix's random stream:
        continuation ``j`` of prefix ``i`` is a function of (the generator's seed,
        ``sampling.streams[i]``, ``j``) and the prefix alone, whatever else is in the call."""
        ...


@runtime_checkable
class ContextLimited(Protocol):
    """A generator that knows its model's context (``None``: unbounded) and can count a
    prompt's tokens, so a run can set aside problems whose prompt does not fit."""

    context_length: int | None

    def prompt_length(self, prefix: Prefix) -> int: ...


@runtime_checkable
class Scorer(Protocol):
    """A process reward model: one probability of correctness per step."""

    def score(self, prefixes: Sequence[Prefix]) -> list[list[float]]:
        """One score in [0, 1] per step: ``len(out[i]) == len(prefixes[i].steps)``."""
        ...


@runtime_checkable
class ReportsUsage(Protocol):
    """Optional for a scorer: scores plus the tokens it encoded for each prefix (every scorer
    in this repo has it; without it the engine records PRM tokens as unknown, not 0)."""

    def score_with_usage(self, prefixes: Sequence[Prefix]) -> ScoreOutput: ...


@runtime_checkable
class ProblemSource(Protocol):
    """A dataset (the ``dataset`` config group, a ``_target_`` node): its ``name`` for
    provenance and its problems."""

    name: str

    def load(self) -> LoadedProblems:
        """The problems, with the bad rows skipped (when the source skips any)."""
        ...


@runtime_checkable
class Checker(Protocol):
    """The ground truth of a task environment: where a solution first goes wrong. Wherever
    one exists, label quality is measured against it (``prm.label.quality``)."""

    def check(self, problem: Problem, steps: Sequence[str]) -> StepCheck:
        """``first_error``: the index of the first wrong step, -1 when all are right
        (``len(steps)`` when the solution stops before its answer)."""
        ...


class Strategy(Protocol):
    """A test-time search method, batched across problems."""

    def run(
        self,
        problems: Sequence[Problem],
        generator: Generator,
        scorer: Scorer | None,
        *,
        dropped: Callable[[], Collection[int]] | None = None,
    ) -> list[SearchResult]:
        """One result per problem, in order; each with exactly the strategy's budget of
        candidates. ``dropped``, when given, is asked between backend calls for the indices
        of problems whose results are no longer wanted: their searches end at no further
        backend cost (their results are then meaningless), and once every problem is dropped
        the run raises ``search.strategies.base.SearchStopped`` instead of finishing
        (``search.strategies.base.Calls``)."""
        ...
