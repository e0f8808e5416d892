"""Problems sharded over a Ray cluster: ``python -m search +launcher=ray launcher.num_workers=K``
(and ``python -m prm.sample +launcher=ray``: ``map_on_ray`` hands out any stage's chunks).

Each of the ``num_workers`` Ray actors builds its own policy and PRM from the run's config
(``_target_`` nodes: a local model, or a client of a remote server) and searches and grades
the batches of problems it is handed. The driver (the ``python -m search`` process) is the
only writer of the run's one ``results.jsonl``: it hands the next batch to whichever worker
finishes first and appends that worker's records as they arrive, so results stream in and a
killed run resumes as in a single process (finished problems are skipped). Trees, when kept,
are written by the workers into the run directory, which must then be shared.

Predictions equal a single-process run with the same seed because every random draw is keyed
by (seed, problem id, ...), never by process or batch (``search.seeding``); which worker runs
a problem does not matter.

``address=null`` starts a local Ray instance with ``num_workers x cpus_per_worker`` CPUs;
``address=auto`` (or ``ray://HOST:10001``) joins an existing cluster, whose nodes must have
this package and the models' files. ``gpus_per_worker`` reserves GPUs for each worker's
local models (0 for server clients and CPU runs).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from search.aggregation import Aggregation
from search.progress import Progress
from search.results import write_metrics
from search.strategies.config import StrategyConfig
from search.types import Problem

log = logging.getLogger(__name__)
T = TypeVar("T")
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RayLauncherConfig:
    """``conf/launcher/ray.yaml`` (added with ``+launcher=ray``).

    ``batch_problems``: problems per task handed to a worker (``null``: the run's
    ``batch_problems``); smaller batches spread the work more evenly over the workers.
    """

    num_workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    address: str | None = None
    batch_problems: int | None = None

    def __post_init__(self) -> None:
        if self.num_workers < 1:
            raise ValueError(
                f"expected launcher.num_workers >= 1, got {self.num_workers}; "
                "fix: launcher.num_workers=2"
            )
        if self.cpus_per_worker <= 0 or self.gpus_per_worker < 0:
            raise ValueError(
                "expected launcher.cpus_per_worker > 0 and launcher.gpus_per_worker >= 0, got "
                f"{self.cpus_per_worker} and {self.gpus_per_worker}; fix: e.g. "
                "launcher.cpus_per_worker=1 launcher.gpus_per_worker=0"
            )
        if self.batch_problems is not None and self.batch_problems < 1:
            raise ValueError(
                f"expected launcher.batch_problems >= 1, got {self.batch_problems}; fix: "
                "launcher.batch_problems=1 or more, or null (the run's batch_problems)"
            )


class SearchWorker:
    """One shard's engine: its own policy and PRM, the run's strategy (a Ray actor)."""

    def __init__(
        self,
        policy: Mapping[str, Any],
        scorer: Mapping[str, Any] | None,
        strategy: StrategyConfig,
        aggregation: Aggregation,
        seed: int,
        output_dir: str,
        grading_timeout_s: float,
        checker: Any = None,
    ) -> None:
        from hydra.utils import instantiate

        from search.run import CallCounter, CountingGenerator, CountingScorer
        from search.strategies import build_strategy

        self.counter = CallCounter()
        self.generator = CountingGenerator(instantiate(dict(policy), seed=seed), self.counter)
        built = None if scorer is None else instantiate(dict(scorer))
        self.scorer = None if built is None else CountingScorer(built, self.counter)
        self.strategy = build_strategy(strategy, aggregation, seed=seed)
        self.output_dir = Path(output_dir)
        self.grading_timeout_s = grading_timeout_s
        self.checker = checker

    def run(self, batch: list[Problem]) -> tuple[list[dict[str, Any]], int, int]:
        """(records, generate calls so far, score calls so far)."""
        from search.run import run_batch

        records = run_batch(
            batch,
            self.strategy,
            self.generator,
            self.scorer,
            self.output_dir,
            self.grading_timeout_s,
            self.checker,
        )
        return records, self.counter.generate_calls, self.counter.score_calls


def _start_ray(config: RayLauncherConfig) -> bool:
    """Connect to (or start) Ray; True when this call started it (and must shut it down)."""
    import ray

    if ray.is_initialized():
        return False
    path = os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")) if p)
    runtime_env = {"env_vars": {"PYTHONPATH": path}}
    if config.address is None:
        cpus = config.num_workers * config.cpus_per_worker
        ray.init(
            num_cpus=max(1, int(cpus + 0.999)),
            num_gpus=int(config.num_workers * config.gpus_per_worker + 0.999) or None,
            include_dashboard=False,
            runtime_env=runtime_env,
            logging_level=logging.WARNING,
        )
    else:
        ray.init(address=config.address, runtime_env=runtime_env, logging_level=logging.WARNING)
    return True


def map_on_ray(
    launcher: RayLauncherConfig,
    worker_class: type,
    worker_args: tuple[Any, ...],
    tasks: Sequence[T],
    resume_hint: str = "",
) -> Iterator[tuple[int, T, Any]]:
    """Run ``worker_class(*worker_args).run(task)`` for every task on up to ``num_workers``
    Ray actors, each handed its next task as it finishes the last; yields
    ``(worker index, task, result)`` in the order they complete. Ray is started (and shut
    down at the end) unless already running. A failing task raises ``RuntimeError``;
    ``resume_hint`` says where the finished work is saved."""
    import ray

    if not tasks:
        return
    queue = deque(tasks)
    started = _start_ray(launcher)
    workers: list[Any] = []
    try:
        actor: Any = ray.remote(worker_class).options(
            num_cpus=launcher.cpus_per_worker, num_gpus=launcher.gpus_per_worker
        )
        workers = [actor.remote(*worker_args) for _ in range(min(launcher.num_workers, len(queue)))]
        pending: dict[Any, tuple[int, T]] = {}
        for index, worker in enumerate(workers):
            task = queue.popleft()
            pending[worker.run.remote(task)] = (index, task)
        while pending:
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            index, task = pending.pop(ready)
            try:
                result = ray.get(ready)
            except ray.exceptions.RayError as error:
                raise RuntimeError(
                    f"Ray worker {index} ({worker_class.__name__}) failed: {error}; {resume_hint}"
                ) from error
            if queue:
                next_task = queue.popleft()
                pending[workers[index].run.remote(next_task)] = (index, next_task)
            yield index, task, result
    finally:
        for worker in workers:
            ray.kill(worker)
        if started:
            ray.shutdown()


def run_search_on_ray(
    problems: Sequence[Problem],
    policy: Mapping[str, Any],
    scorer: Mapping[str, Any] | None,
    strategy: StrategyConfig,
    aggregation: Aggregation,
    seed: int,
    output_dir: Path,
    describe: dict[str, Any],
    launcher: RayLauncherConfig,
    batch_problems: int = 64,
    grading_timeout_s: float = 5.0,
    progress: bool = False,
    checker: Any = None,
) -> dict[str, Any]:
    """``search.run.run_search`` with the batches spread over Ray workers; the same files
    (``results.jsonl`` streamed by the driver, ``metrics.json``), the same lock on the run
    directory and the same resume."""
    from search.run import check_unique_ids
    from search.rundir import RunLock

    if not problems:
        raise ValueError("expected at least one problem, got none; fix: check the dataset")
    check_unique_ids(problems)
    with RunLock(output_dir):
        return _run_locked(
            problems,
            policy,
            scorer,
            strategy,
            aggregation,
            seed,
            output_dir,
            describe,
            launcher,
            batch_problems,
            grading_timeout_s,
            progress,
            checker,
        )


def _run_locked(
    problems: Sequence[Problem],
    policy: Mapping[str, Any],
    scorer: Mapping[str, Any] | None,
    strategy: StrategyConfig,
    aggregation: Aggregation,
    seed: int,
    output_dir: Path,
    describe: dict[str, Any],
    launcher: RayLauncherConfig,
    batch_problems: int,
    grading_timeout_s: float,
    progress: bool,
    checker: Any,
) -> dict[str, Any]:
    from search.run import open_results, summarise

    results, done, todo = open_results(output_dir, problems)
    size = launcher.batch_problems or batch_problems
    batches = [todo[begin : begin + size] for begin in range(0, len(todo), size)]
    start = time.perf_counter()
    calls: dict[int, tuple[int, int]] = {}
    num_correct = sum(bool(r["correct"]) for r in results.records if str(r["id"]) in done)
    bar = Progress(len(problems), len(done), num_correct, enabled=progress)
    worker_args = (
        dict(policy),
        None if scorer is None else dict(scorer),
        strategy,
        aggregation,
        seed,
        str(output_dir.resolve()),
        grading_timeout_s,
        checker,
    )
    hint = f"finished problems are saved in {results.path}; re-run the same command to resume"
    try:
        for index, _, (records, generate_calls, score_calls) in map_on_ray(
            launcher, SearchWorker, worker_args, batches, hint
        ):
            results.append(records)
            calls[index] = (generate_calls, score_calls)
            for record in records:
                bar.on_problem(bool(record["correct"]))
    finally:
        bar.close()
    wanted = {problem.id for problem in problems}
    metrics = summarise([r for r in results.records if str(r["id"]) in wanted])
    metrics.update(describe)
    metrics["generate_calls_this_invocation"] = sum(g for g, _ in calls.values())
    metrics["score_calls_this_invocation"] = sum(s for _, s in calls.values())
    metrics["invocation_wall_s"] = time.perf_counter() - start
    metrics["launcher"] = {
        "name": "ray",
        "num_workers": min(launcher.num_workers, max(1, len(batches))),
    }
    write_metrics(output_dir, metrics)
    return metrics
