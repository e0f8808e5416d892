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
this package and the models' files (no cluster there: one line saying so). ``gpus_per_worker``
reserves GPUs for each worker's local models (0 for server clients and CPU runs).

A worker's failure stops the run with one line, ``Ray worker N (SearchWorker) failed: <cause>;
<resume hint>``, also written to the run's log: a model server's error or a bad setting as the
single-process run prints it, a bug with the worker's traceback in the log
(``search.launchers.failures``).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from search.aggregation import Aggregation
from search.progress import Progress
from search.results import is_set_aside, write_metrics
from search.strategies.config import StrategyConfig
from search.types import Problem

if TYPE_CHECKING:  # the failure handling (and its httpx) loads only when Ray runs
    from search.launchers.failures import WorkerFailure

log = logging.getLogger(__name__)
T = TypeVar("T")
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RayLauncherConfig:
    """``conf/launcher/ray.yaml`` (added with ``+launcher=ray``).

    ``batch_problems``: problems per task handed to a worker (``null``: the run's
    ``batch_problems``, made smaller when needed so that every worker gets a batch:
    ``shard_batch_size``); smaller batches spread the work more evenly over the workers.
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


def _start_ray(config: RayLauncherConfig, workers: int | None = None) -> bool:
    """Connect to (or start) Ray; True when this call started it (and must shut it down).
    No cluster at ``config.address`` is an ``InputError`` (one line at the entry point).
    ``workers``: how many will start (default ``num_workers``), for the GPUs they need."""
    import ray

    from search.inputs import InputError
    from search.launchers.failures import one_line

    if ray.is_initialized():
        return False
    path = os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")) if p)
    runtime_env = {"env_vars": {"PYTHONPATH": path}}
    starting = config.num_workers if workers is None else min(workers, config.num_workers)
    gpus = int(starting * config.gpus_per_worker + 0.999)
    if config.address is None:
        # this machine's GPUs as torch sees them: Ray told to have more would hand workers
        # device ids that do not exist, and they would run on CPU without a word
        present = _local_gpus() if gpus else 0
        if gpus > present:
            raise InputError(
                f"expected {gpus} GPU(s) on this machine for {starting} worker(s) "
                f"(launcher.num_workers={config.num_workers}) x launcher.gpus_per_worker="
                f"{config.gpus_per_worker}, "
                f"got {present}; fix: fewer workers (launcher.num_workers), "
                "launcher.gpus_per_worker=0 for CPU workers, or a cluster (launcher.address)"
            )
        cpus = config.num_workers * config.cpus_per_worker
        ray.init(
            num_cpus=max(1, int(cpus + 0.999)),
            num_gpus=present or None,
            include_dashboard=False,
            runtime_env=runtime_env,
            logging_level=logging.WARNING,
        )
        return True
    missing = (
        f"expected a running Ray cluster at launcher.address={config.address}, got none "
        "({}); fix: run `ray start --head` on the head node first, or drop launcher.address "
        "for a local Ray on this machine"
    )
    unreachable = _unreachable(config.address)
    if unreachable is not None:  # Ray itself would retry for minutes before saying so
        raise InputError(missing.format(unreachable))
    try:
        ray.init(address=config.address, runtime_env=runtime_env, logging_level=logging.WARNING)
    except ConnectionError as error:
        raise InputError(missing.format(one_line(str(error)))) from None
    available = ray.cluster_resources().get("GPU", 0)
    if gpus > available:  # an autoscaling cluster may add them; a fixed one waits forever
        log.warning(
            "the Ray cluster at %s has %s GPU(s) now, and %d workers x %s GPU(s) ask for %d: "
            "the workers wait until the cluster has them",
            config.address,
            available,
            starting,
            config.gpus_per_worker,
            gpus,
        )
    return True


def _local_gpus() -> int:
    """CUDA devices on this machine (0 without torch's CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _unreachable(address: str, timeout_s: float = 3.0) -> str | None:
    """Why ``HOST:PORT`` (or ``ray://HOST:PORT``) takes no TCP connection within
    ``timeout_s``; ``None`` when it does, or for ``auto`` (found by Ray from this node)."""
    import socket

    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # [::1]:6379
    if not host or not port.isdigit():
        return None
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return None
    except OSError as error:
        return f"nothing answers at {host}:{port}: {error}"


def _stop_ray() -> None:
    import ray

    ray.shutdown()


class Shard:
    """The Ray actor around one worker: builds ``worker_class(*worker_args)`` and runs its
    tasks, returning ``(result, None)`` or ``(None, failure)``. A failure (in the build or
    a task) is sorted here, where its cause chain is intact, and sent as a value
    (``search.launchers.failures``), so the driver reports it as one line."""

    def __init__(self, worker_class: type, worker_args: tuple[Any, ...]) -> None:
        from search.launchers.failures import describe_failure

        self.worker: Any = None
        self.failure: WorkerFailure | None = None
        try:
            self.worker = worker_class(*worker_args)
        except Exception as error:
            self.failure = describe_failure(error)

    def run(self, task: Any) -> tuple[Any, WorkerFailure | None]:
        from search.launchers.failures import describe_failure

        if self.failure is not None:
            return None, self.failure
        try:
            return self.worker.run(task), None
        except Exception as error:
            return None, describe_failure(error)


def _failure_of(error: Exception) -> WorkerFailure:
    """A failure Ray reported itself: a task's exception that the ``Shard`` did not catch
    (``RayTaskError``: its ``cause``, unwrapped) or a worker process that died (killed, out
    of memory): kept with Ray's text as the traceback."""
    import ray

    from search.launchers.failures import FailureKind, WorkerFailure, describe_failure, one_line

    if isinstance(error, ray.exceptions.RayTaskError) and isinstance(error.cause, Exception):
        failure = describe_failure(error.cause)
        return WorkerFailure(failure.kind, failure.message, str(error))
    first = (str(error).strip().splitlines() or [""])[0]
    return WorkerFailure(FailureKind.bug, one_line(f"{type(error).__name__}: {first}"), str(error))


def map_on_ray(
    launcher: RayLauncherConfig,
    worker_class: type,
    worker_args: tuple[Any, ...],
    tasks: Sequence[T],
    resume_hint: str | Callable[[], str] = "",
    tasks_name: str = "tasks",
) -> Iterator[tuple[int, T, Any]]:
    """Run ``worker_class(*worker_args).run(task)`` for every task on up to ``num_workers``
    Ray actors (``Shard``), each handed its next task as it finishes the last; yields
    ``(worker index, task, result)`` in the order they complete. Fewer tasks than workers
    start only one worker per task (a warning names ``tasks_name``). Ray is started (and
    shut down at the end) unless already running. A failure (a worker's build or task)
    raises ``Ray worker N (Class) failed: <cause>; <resume_hint>`` as a ``ServerError``,
    an ``InputError`` or, for a bug, a ``RuntimeError`` with the worker's traceback logged
    (``search.launchers.failures.raise_failure``); ``resume_hint`` says where the finished
    work is saved (a callable: asked when a failure happens, to say what is saved by then)."""
    import ray

    from search.launchers.failures import raise_failure

    if not tasks:
        return
    queue = deque(tasks)
    count = min(launcher.num_workers, len(queue))
    if count < launcher.num_workers:
        log.warning(
            "starting %d of launcher.num_workers=%d Ray workers: only %d %s to hand out",
            count,
            launcher.num_workers,
            len(queue),
            tasks_name,
        )
    started = _start_ray(launcher, count)
    workers: list[Any] = []
    try:
        actor: Any = ray.remote(Shard).options(
            num_cpus=launcher.cpus_per_worker, num_gpus=launcher.gpus_per_worker
        )
        workers = [actor.remote(worker_class, worker_args) for _ in range(count)]
        pending: dict[Any, tuple[int, T]] = {}
        for index, worker in enumerate(workers):
            task = queue.popleft()
            pending[worker.run.remote(task)] = (index, task)
        while pending:
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            index, task = pending.pop(ready)
            try:
                result, failure = ray.get(ready)
            except ray.exceptions.RayError as error:
                failure = _failure_of(error)
            if failure is not None:
                hint = resume_hint() if callable(resume_hint) else resume_hint
                raise_failure(failure, f"Ray worker {index} ({worker_class.__name__})", hint)
            if queue:
                next_task = queue.popleft()
                pending[workers[index].run.remote(next_task)] = (index, next_task)
            yield index, task, result
    finally:
        if started:
            ray.shutdown()  # its actors with it
        else:
            for worker in workers:
                ray.kill(worker)


def shard_batch_size(problems: int, launcher: RayLauncherConfig, batch_problems: int) -> int:
    """Problems per batch for ``problems`` problems: ``launcher.batch_problems`` when set,
    else the run's ``batch_problems`` cut to ``ceil(problems / num_workers)`` so that every
    worker gets a batch (20 problems on 2 workers: 2 batches of 10, not 1 of 64). The
    records do not depend on the batching (every draw is keyed by seed and problem)."""
    if launcher.batch_problems is not None:
        return launcher.batch_problems
    return max(1, min(batch_problems, math.ceil(problems / launcher.num_workers)))


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
    size = shard_batch_size(len(todo), launcher, batch_problems)
    batches = [todo[begin : begin + size] for begin in range(0, len(todo), size)]
    start = time.perf_counter()
    calls: dict[int, tuple[int, int]] = {}
    num_correct = sum(bool(r.get("correct")) for r in results.records if str(r["id"]) in done)
    started = bool(batches) and _start_ray(launcher, len(batches))  # before any bar
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
    # problems searched and in results.jsonl, this invocation's included (a local run's
    # on_overflow=skip records, resumed here, are not searched ones)
    saved = [sum(not is_set_aside(r) for r in results.records if str(r["id"]) in done)]

    def hint() -> str:
        if not saved[0]:
            return "no problem had finished; re-run the same command to start again"
        return (
            f"{saved[0]} finished problems are saved in {results.path}; re-run the same "
            "command to resume"
        )

    try:
        if batches:
            log.info(
                "%d problems in %d batches of up to %d for %d Ray workers",
                len(todo),
                len(batches),
                size,
                min(launcher.num_workers, len(batches)),
            )
        tasks_name = f"batch(es) of up to {size} problems"
        for index, _, (records, generate_calls, score_calls) in map_on_ray(
            launcher, SearchWorker, worker_args, batches, hint, tasks_name
        ):
            results.append(records)
            saved[0] += len(records)
            calls[index] = (generate_calls, score_calls)
            for record in records:
                bar.on_problem(bool(record["correct"]))
    finally:
        bar.close()
        if started:
            _stop_ray()
    results.put_in_order([problem.id for problem in problems])  # batches finish in any order
    wanted = {problem.id for problem in problems}
    metrics = summarise([r for r in results.records if str(r["id"]) in wanted])
    metrics.update(describe)
    metrics["generate_calls_this_invocation"] = sum(g for g, _ in calls.values())
    metrics["score_calls_this_invocation"] = sum(s for _, s in calls.values())
    metrics["invocation_wall_s"] = time.perf_counter() - start
    metrics["launcher"] = {
        "name": "ray",
        "num_workers": min(launcher.num_workers, max(1, len(batches))),
        "batch_problems": size,
    }
    write_metrics(output_dir, metrics)
    return metrics
