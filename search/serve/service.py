"""Search as a service, without HTTP: requests in, ``SearchResult``s out, batched.

``SearchService`` holds one policy, one scorer and the configured strategy. ``Batcher``
collects the requests that arrive together (within ``max_wait_s`` of the first, or while a
batch is running) and makes one strategy call per group of requests with the same search
settings, so concurrent requests share every generate and score call. The model calls run in
one worker thread, never on the event loop. When a batch fails, each of its requests is run
again alone, so one bad request fails by itself.

A request whose client has gone (``Batcher.submit``'s ``disconnected``, polled every
``disconnect_poll_s``) is dropped: from the queue if its batch has not started, and from a
running batch at its next generate or score call (``search.strategies.base.Calls``), and
within a running generate call by a backend that can stop rows (``Sampling.abandoned``): its
problems are left out of every later call, while the requests still waiting are searched as
without it (the same results, up to what a backend's numbers owe to its batch's padding),
and a batch whose clients have all gone stops there, so an abandoned search no longer holds
the model thread.

Limits on what one request may ask (``max_n``, the policy's context) are checked here and
raised as ``RequestError`` (the client's mistake, a 400) in the terms of a request body.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from search.aggregation import Aggregation
from search.generators.base import GenerationSettings
from search.protocols import ContextLimited, Generator, Scorer, Strategy
from search.seeding import derive_seed
from search.selection import Select
from search.serve.config import check_max_n
from search.strategies import SearchStopped, build_strategy
from search.strategies.config import FIELDS_READ, StrategyConfig, StrategyName
from search.trees import chosen_candidate
from search.types import STEP_SEPARATOR, Candidate, Prefix, Problem, SearchResult

log = logging.getLogger(__name__)


class RequestError(ValueError):
    """A request the server refuses (a 400), worded in the request's fields."""


class ClientGone(Exception):
    """The client of a request disconnected before its results were ready."""


class QuestionTooLong(RequestError):
    """A question whose prompt does not fit the policy's context (``problem_id`` names it)."""

    def __init__(self, problem_id: str, length: int, context: int) -> None:
        super().__init__(
            f"expected a question whose prompt fits the policy's context of {context} tokens "
            f"with room to write, got a prompt of {length} tokens; fix: a shorter question"
        )
        self.problem_id = problem_id
        self.length = length
        self.context = context


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


@dataclass(frozen=True, slots=True)
class Reply:
    """What a reply returns for one problem: ``candidate`` (at ``index`` in the result's
    candidates) and, when it is not the pick of the selection rule, ``note`` saying why."""

    candidate: Candidate | None
    index: int | None
    note: str | None = None


class SearchService:
    """One policy, one scorer, a default strategy; ``run`` searches a batch of problems.
    ``max_n``: the largest search budget a request may ask for."""

    def __init__(
        self,
        generator: Generator,
        scorer: Scorer | None,
        strategy: StrategyConfig,
        aggregation: Aggregation,
        seed: int = 0,
        max_n: int = 64,
    ) -> None:
        check_max_n(strategy.n, max_n)
        self.generator = generator
        self.scorer = scorer
        self.strategy = strategy
        self.aggregation = Aggregation(aggregation)
        self.seed = seed
        self.max_n = max_n
        self.resolve(SearchSettings())  # the configured defaults must be valid on their own

    @property
    def policy_settings(self) -> GenerationSettings | None:
        """The policy's sampling settings, when its backend exposes them."""
        settings = getattr(self.generator, "settings", None)
        return settings if isinstance(settings, GenerationSettings) else None

    def resolve(self, settings: SearchSettings) -> Resolved:
        """The request's strategy config; a ``ValueError`` (the client's mistake) names the
        field and the fix (a ``RequestError`` already in the request's terms)."""
        if settings.n is not None and settings.n > self.max_n:
            raise RequestError(
                f'expected "n" <= {self.max_n} (the server\'s max_n), got "n": {settings.n}; '
                f'fix: "n": {self.max_n} or less in the request body, or start the server '
                f"with max_n={settings.n}"
            )
        self._check_width(settings)
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

    def _check_width(self, settings: SearchSettings) -> None:
        """beam and dvts take an n that is a multiple of the server's beam_width (which a
        request cannot change): refuse another n naming the multiples it may ask for."""
        name = StrategyName(settings.strategy or self.strategy.name)
        width = self.strategy.beam_width
        n = self.strategy.n if settings.n is None else settings.n
        if "beam_width" not in FIELDS_READ[name] or n % width == 0:
            return
        got = f'"n": {n}' if settings.n is not None else f"n={n} (the server's strategy.n)"
        lower, upper = n - n % width, n - n % width + width
        valid = [f'"n": {m}' for m in (lower, upper) if width <= m <= self.max_n]
        fix = (
            " or ".join(valid) + f" in the request body (a multiple of {width}, at most "
            f"max_n={self.max_n})"
            if valid
            else f'"strategy": "best_of_n" in the request body (no multiple of {width} is '
            f"within max_n={self.max_n})"
        )
        raise RequestError(
            f'expected "n" to be a multiple of the server\'s strategy.beam_width={width} for '
            f"strategy {name.value}, got {got}; fix: {fix}"
        )

    def check_fits(self, problems: Sequence[Problem]) -> None:
        """Refuse (``QuestionTooLong``) a problem whose prompt leaves the policy no room to
        write, when the policy knows its context (``search.protocols.ContextLimited``)."""
        generator = self.generator
        if not isinstance(generator, ContextLimited) or generator.context_length is None:
            return
        context = generator.context_length
        for problem in problems:
            length = generator.prompt_length(Prefix(problem))
            if length >= context:
                raise QuestionTooLong(problem.id, length, context)

    def strategy_for(self, resolved: Resolved) -> Strategy:
        return build_strategy(resolved.config, resolved.aggregation, seed=self.seed)

    def run(
        self,
        resolved: Resolved,
        problems: Sequence[Problem],
        dropped: Callable[[], Collection[int]] | None = None,
    ) -> list[SearchResult]:
        """Search ``problems``; ``dropped``: asked between backend calls for the indices of
        the problems to leave out (``search.strategies.base.Calls``)."""
        self.check_fits(problems)  # here, in the model thread: tokenizers are not shared
        strategy = self.strategy_for(resolved)
        results = strategy.run(problems, self.generator, self.scorer, dropped=dropped)
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

    def reply(self, result: SearchResult) -> Reply:
        """The candidate a reply returns: the one behind the prediction; without a
        prediction (no finished candidate states an answer), the best candidate by
        (finished, aggregated score, earliest), with a note saying it is no answer's pick."""
        candidates = list(result.candidates)
        chosen = self.selected(result)
        if chosen is not None:
            return Reply(chosen, next(i for i, c in enumerate(candidates) if c is chosen))
        if not candidates:
            return Reply(None, None, "the search returned no candidates, so the text is empty")
        index = max(
            range(len(candidates)),
            key=lambda i: (
                candidates[i].finished,
                -1.0 if candidates[i].score is None else candidates[i].score,
                -i,
            ),
        )
        finished = sum(c.finished for c in candidates)
        return Reply(
            candidates[index],
            index,
            f"no answer was picked (prediction is null): none of the {len(candidates)} "
            f"candidates ({finished} finished) is a finished one that states an answer; the "
            f"text is candidate {index}, the best by (finished, score), not a selected answer",
        )


def solution_text(candidate: Candidate | None) -> str:
    return "" if candidate is None else STEP_SEPARATOR.join(candidate.steps)


@dataclass
class _Job:
    resolved: Resolved
    problems: list[Problem]
    future: asyncio.Future[list[SearchResult]]
    abandoned: threading.Event = field(default_factory=threading.Event)  # its client left
    started: bool = False  # its batch is running (set on the event loop)


class Batcher:
    """Groups concurrent requests into strategy calls (see the module docstring).

    ``max_batch_problems`` caps the problems of one strategy call (a request is never
    split); ``max_wait_s`` is how long the first request of a batch waits for company;
    ``disconnect_poll_s`` how often a waiting request asks whether its client is still there.
    """

    def __init__(
        self,
        service: SearchService,
        max_batch_problems: int = 64,
        max_wait_s: float = 0.01,
        disconnect_poll_s: float = 0.5,
    ) -> None:
        if max_batch_problems < 1:
            raise ValueError(f"expected max_batch_problems >= 1, got {max_batch_problems}")
        if disconnect_poll_s <= 0:
            raise ValueError(f"expected disconnect_poll_s > 0, got {disconnect_poll_s}")
        self.service = service
        self.max_batch_problems = max_batch_problems
        self.max_wait_s = max_wait_s
        self.disconnect_poll_s = disconnect_poll_s
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="search")
        self._ids = itertools.count()
        self.strategy_calls = 0  # strategy.run calls made (for tests and the load benchmark)
        self.batch_sizes: list[int] = []
        self.stopped_batches = 0  # batches stopped because all their clients left
        self.dropped_requests = 0  # requests whose client left while their batch ran on

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def new_problem(self, question: str, seed: int | None = None) -> Problem:
        """A problem for one prompt. The id names its random streams (``"<id>/<k>"``): without
        a ``seed`` it is unique for the server's lifetime (``req-N``), so a repeated request
        draws new candidates; with one it is a function of (seed, question), so the same
        request with the same seed gets the same candidates from the same server config."""
        if seed is None:
            return Problem(id=f"req-{next(self._ids)}", question=question, answer="")
        return Problem(
            id=f"seed-{seed}-{derive_seed(seed, question):016x}", question=question, answer=""
        )

    async def submit(
        self,
        resolved: Resolved,
        problems: list[Problem],
        disconnected: Callable[[], Awaitable[bool]] | None = None,
    ) -> list[SearchResult]:
        """The results of ``problems``, searched in some batch. ``disconnected``: whether the
        client has gone (e.g. Starlette's ``Request.is_disconnected``); once it has, the
        request is dropped (see the module docstring) and ``ClientGone`` raised."""
        assert self._queue is not None, "Batcher.start() was not called"
        future: asyncio.Future[list[SearchResult]] = asyncio.get_running_loop().create_future()
        job = _Job(resolved, problems, future)
        await self._queue.put(job)
        try:
            if disconnected is None:
                return await future
            while True:
                done, _ = await asyncio.wait({future}, timeout=self.disconnect_poll_s)
                if done:
                    return future.result()
                if await disconnected():
                    where = "its batch was running" if job.started else "it was queued"
                    raise ClientGone(
                        f"the client of {len(problems)} question(s) disconnected while {where}"
                    )
        except (ClientGone, asyncio.CancelledError):  # also the request cancelled (shutdown)
            job.abandoned.set()
            future.cancel()
            raise

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
        jobs = [job for job in jobs if not job.abandoned.is_set()]  # left while queued
        if not jobs:
            return
        for job in jobs:
            job.started = True
        problems = [problem for job in jobs for problem in job.problems]
        loop = asyncio.get_running_loop()

        spans = list(itertools.accumulate((len(job.problems) for job in jobs), initial=0))

        def left() -> list[int]:  # asked in the model thread: Events are thread-safe
            return [
                index
                for job, start, end in zip(jobs, spans, spans[1:], strict=False)
                if job.abandoned.is_set()
                for index in range(start, end)
            ]

        try:
            self.strategy_calls += 1
            self.batch_sizes.append(len(problems))
            results = await loop.run_in_executor(
                self._executor,
                partial(self.service.run, jobs[0].resolved, problems, dropped=left),
            )
        except SearchStopped:
            self.stopped_batches += 1
            log.info("a search of %d problems stopped: all its clients left", len(problems))
            return
        except Exception as error:
            if len(jobs) == 1:
                if isinstance(error, RequestError):  # the client's mistake, answered as a 400
                    log.info("a search request was refused: %s", error)
                else:
                    log.exception("a search request failed")
                _settle(jobs[0].future, error=error)
                return
            log.warning(
                "a batch of %d requests failed (%s); running them one by one", len(jobs), error
            )
            for job in jobs:
                job.started = False  # queued again, for a batch of its own
            for job in jobs:
                await self._run_batch([job])
            return
        self.dropped_requests += sum(job.abandoned.is_set() for job in jobs)
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
