"""Search as a service, without HTTP: requests in, ``SearchResult``s out, batched.

``SearchService`` holds one policy, one scorer and the configured strategy. ``Batcher``
collects the requests that arrive together (within ``max_wait_s`` of the first, or while a
batch is running) and makes one strategy call per group of requests with the same search
settings, so concurrent requests share every generate and score call. The model calls run in
one worker thread, never on the event loop. When a batch fails, each of its requests is run
again alone, so one bad request fails by itself.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from search.aggregation import Aggregation
from search.protocols import Generator, Scorer, Strategy
from search.selection import Select
from search.strategies import build_strategy
from search.strategies.config import StrategyConfig, StrategyName
from search.trees import chosen_candidate
from search.types import STEP_SEPARATOR, Candidate, Problem, SearchResult

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SearchSettings:
    """What a request may override; ``None`` keeps the server's configured value."""

    strategy: StrategyName | None = None
    n: int | None = None
    aggregation: Aggregation | None = None
    select: Select | None = None


@dataclass(frozen=True, slots=True)
class Resolved:
    """The strategy config and aggregation one request runs with (hashable: a batch key)."""

    config: StrategyConfig = field(hash=False, compare=False)
    aggregation: Aggregation
    key: tuple[Any, ...]


class SearchService:
    """One policy, one scorer, a default strategy; ``run`` searches a batch of problems."""

    def __init__(
        self,
        generator: Generator,
        scorer: Scorer | None,
        strategy: StrategyConfig,
        aggregation: Aggregation,
        seed: int = 0,
    ) -> None:
        self.generator = generator
        self.scorer = scorer
        self.strategy = strategy
        self.aggregation = Aggregation(aggregation)
        self.seed = seed
        self.resolve(SearchSettings())  # the configured defaults must be valid on their own

    def resolve(self, settings: SearchSettings) -> Resolved:
        """The request's strategy config; a ``ValueError`` (the client's mistake) names the
        field and the fix."""
        changes: dict[str, Any] = {}
        if settings.strategy is not None:
            changes["name"] = StrategyName(settings.strategy)
        if settings.n is not None:
            changes["n"] = settings.n
        if settings.select is not None:
            changes["select"] = Select(settings.select)
        config = replace(self.strategy, **changes)  # __post_init__ checks the fields
        config.validate(has_scorer=self.scorer is not None)
        aggregation = Aggregation(settings.aggregation or self.aggregation)
        key = (config.name, config.n, config.select, aggregation)
        return Resolved(config=config, aggregation=aggregation, key=key)

    def strategy_for(self, resolved: Resolved) -> Strategy:
        return build_strategy(resolved.config, resolved.aggregation, seed=self.seed)

    def run(self, resolved: Resolved, problems: Sequence[Problem]) -> list[SearchResult]:
        results = self.strategy_for(resolved).run(problems, self.generator, self.scorer)
        if [r.problem.id for r in results] != [p.id for p in problems]:
            raise RuntimeError("expected one result per problem, in order")
        return results

    def rule(self, resolved: Resolved) -> str:
        """The selection rule whose pick is the answer (``mcts_final`` for mcts)."""
        config = resolved.config
        if config.name is StrategyName.mcts:
            return config.mcts_final.value
        return config.selection(has_scorer=self.scorer is not None).value

    def selected(self, result: SearchResult) -> Candidate | None:
        """The candidate behind the prediction (``search.trees.chosen_candidate``)."""
        return chosen_candidate(result.candidates, result.prediction)


def solution_text(candidate: Candidate | None) -> str:
    return "" if candidate is None else STEP_SEPARATOR.join(candidate.steps)


@dataclass
class _Job:
    resolved: Resolved
    problems: list[Problem]
    future: asyncio.Future[list[SearchResult]]


class Batcher:
    """Groups concurrent requests into strategy calls (see the module docstring).

    ``max_batch_problems`` caps the problems of one strategy call (a request is never
    split); ``max_wait_s`` is how long the first request of a batch waits for company.
    """

    def __init__(
        self, service: SearchService, max_batch_problems: int = 64, max_wait_s: float = 0.01
    ) -> None:
        if max_batch_problems < 1:
            raise ValueError(f"expected max_batch_problems >= 1, got {max_batch_problems}")
        self.service = service
        self.max_batch_problems = max_batch_problems
        self.max_wait_s = max_wait_s
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="search")
        self._ids = itertools.count()
        self.strategy_calls = 0  # strategy.run calls made (for tests and the load benchmark)
        self.batch_sizes: list[int] = []

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def new_problem(self, question: str) -> Problem:
        """A problem for one prompt; the id is unique for the server's lifetime (the engine
        keys its per-problem state by id)."""
        return Problem(id=f"req-{next(self._ids)}", question=question, answer="")

    async def submit(self, resolved: Resolved, problems: list[Problem]) -> list[SearchResult]:
        assert self._queue is not None, "Batcher.start() was not called"
        future: asyncio.Future[list[SearchResult]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(resolved, problems, future))
        return await future

    async def _loop(self) -> None:
        assert self._queue is not None
        while True:
            jobs = [await self._queue.get()]
            deadline = time.monotonic() + self.max_wait_s
            while True:
                timeout = deadline - time.monotonic()
                try:
                    job = (
                        self._queue.get_nowait()
                        if timeout <= 0
                        else await asyncio.wait_for(self._queue.get(), timeout)
                    )
                except (asyncio.QueueEmpty, asyncio.TimeoutError):
                    break
                jobs.append(job)
            await self._run_jobs(jobs)

    async def _run_jobs(self, jobs: list[_Job]) -> None:
        groups: dict[tuple[Any, ...], list[_Job]] = {}
        for job in jobs:
            if not job.future.cancelled():
                groups.setdefault(job.resolved.key, []).append(job)
        for group in groups.values():
            for batch in self._split(group):
                await self._run_batch(batch)

    def _split(self, jobs: list[_Job]) -> list[list[_Job]]:
        batches: list[list[_Job]] = [[]]
        size = 0
        for job in jobs:
            if batches[-1] and size + len(job.problems) > self.max_batch_problems:
                batches.append([])
                size = 0
            batches[-1].append(job)
            size += len(job.problems)
        return batches

    async def _run_batch(self, jobs: list[_Job]) -> None:
        problems = [problem for job in jobs for problem in job.problems]
        loop = asyncio.get_running_loop()
        try:
            self.strategy_calls += 1
            self.batch_sizes.append(len(problems))
            results = await loop.run_in_executor(
                self._executor, self.service.run, jobs[0].resolved, problems
            )
        except Exception as error:
            if len(jobs) == 1:
                log.exception("a search request failed")
                _settle(jobs[0].future, error=error)
                return
            log.warning(
                "a batch of %d requests failed (%s); running them one by one", len(jobs), error
            )
            for job in jobs:
                await self._run_batch([job])
            return
        start = 0
        for job in jobs:
            _settle(job.future, results=results[start : start + len(job.problems)])
            start += len(job.problems)


def _settle(
    future: asyncio.Future[list[SearchResult]],
    results: list[SearchResult] | None = None,
    error: BaseException | None = None,
) -> None:
    if future.done():  # the client went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(results or [])
