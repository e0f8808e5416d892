"""Stage 1 of the PRM data pipeline: the policy writes K solutions per training problem.

Any dataset and any policy: problems ``start .. start + count - 1`` of the ``dataset`` group
(default: the arithmetic world's train split, which never holds a validation, test or hard
question), sampled by the ``policy`` group. Each problem is sampled ``num_samples`` times to
the end (``Until.end``), ``chunk_problems`` problems per generate call, and every solution
is split into steps at blank lines.

    python -m prm.sample                                  # conf/prm_sample.yaml
    python -m prm.sample count=400 num_samples=8 output_dir=runs/prm/samples
    python -m prm.sample dataset=math500 dataset.path=train.jsonl policy=qwen25_math_7b_instruct
    python -m prm.sample +launcher=ray launcher.num_workers=4      # chunks over Ray workers

Writes to ``output_dir``: ``samples.jsonl`` (one solution a line: ``problem_id``,
``question``, ``answer`` (gold), ``sample_index``, ``steps``, ``finished``, ``num_tokens``,
``policy``) and ``metrics.json``. A rerun skips the problems already in ``samples.jsonl``, so
a killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.answers import extract_answer
from search.grading import answers_match
from search.guards import check_generations
from search.inputs import (
    InputError,
    exit_on_input_error,
    exit_on_server_error,
    require_bool,
    require_int,
    require_str,
    require_str_list,
)
from search.jsonl import JsonlLog, read_jsonl_numbered
from search.launchers.ray import RayLauncherConfig
from search.prompting import join_steps
from search.protocols import Generator, ProblemSource
from search.resolve import CONF_DIR
from search.rundir import RunLock
from search.types import Prefix, Problem, Sampling, Until

log = logging.getLogger(__name__)
SAMPLES_FILE = "samples.jsonl"


@dataclass(frozen=True, slots=True)
class SampledSolution:
    """One solution the policy wrote for ``problem`` (its ``sample_index``-th sample).

    ``finished`` is true when the policy ended the solution itself (eos); ``num_tokens`` is
    the number of tokens it sampled.
    """

    problem: Problem
    sample_index: int
    steps: tuple[str, ...]
    finished: bool
    num_tokens: int
    policy: str = ""

    @property
    def key(self) -> tuple[str, int]:
        return (self.problem.id, self.sample_index)

    @property
    def prefix(self) -> Prefix:
        return Prefix(self.problem, self.steps)

    @property
    def text(self) -> str:
        return join_steps(self.steps)

    def to_record(self) -> dict[str, Any]:
        return {
            "problem_id": self.problem.id,
            "question": self.problem.question,
            "answer": self.problem.answer,
            "sample_index": self.sample_index,
            "steps": list(self.steps),
            "finished": self.finished,
            "num_tokens": self.num_tokens,
            "policy": self.policy,
        }

    @classmethod
    def from_record(cls, row: dict[str, Any]) -> SampledSolution:
        return cls(
            problem=Problem(
                id=str(row["problem_id"]), question=row["question"], answer=str(row["answer"])
            ),
            sample_index=int(row["sample_index"]),
            steps=tuple(row["steps"]),
            finished=bool(row["finished"]),
            num_tokens=int(row["num_tokens"]),
            policy=str(row.get("policy", "")),
        )


def read_samples(path: Path) -> list[SampledSolution]:
    """Every solution of a samples file, each line checked (``file:line`` and the key in any
    error: ``steps`` must be a list of strings, not one string); an empty file, or one
    (problem, sample) twice, is an error."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"expected sampled solutions at {path}, got no file; fix: run "
            "`python -m prm.sample` first or pass samples=PATH"
        )
    solutions: list[SampledSolution] = []
    seen: dict[tuple[str, int], str] = {}
    for number, row in read_jsonl_numbered(path):
        where = f"{path}:{number}"
        solution = checked_solution(row, where)
        if solution.key in seen:
            raise InputError(
                f"{where}: expected each (problem_id, sample_index) once, got {solution.key} "
                f"again (first at {seen[solution.key]}); fix: remove the repeated line"
            )
        seen[solution.key] = where
        solutions.append(solution)
    if not solutions:
        raise InputError(f"{path}: expected sampled solutions, got an empty file")
    return solutions


def checked_solution(row: dict[str, Any], where: str) -> SampledSolution:
    """A ``SampledSolution`` from one samples line, or an ``InputError`` naming the key."""
    for key in ("problem_id", "question", "answer"):
        require_str(row, key, where)
    require_int(row, "sample_index", where)
    require_str_list(row, "steps", where)
    require_bool(row, "finished", where)
    require_int(row, "num_tokens", where)
    return SampledSolution.from_record(row)


def select_problems(source: ProblemSource, start: int, count: int) -> list[Problem]:
    """Problems ``start .. start + count - 1`` of a dataset (fewer when it ends before)."""
    if start < 0 or count < 1:
        raise ValueError(f"expected start >= 0 and count >= 1, got start={start} count={count}")
    loaded = source.load()
    if loaded.skipped:
        log.warning("skipped %d bad rows: %s", loaded.skipped, loaded.skipped_reasons[:5])
    problems = list(loaded.problems[start : start + count])
    if not problems:
        raise ValueError(
            f"expected problems from index {start} of dataset {source.name}, got none (it has "
            f"{len(loaded.problems)}); fix: a smaller start, or a larger dataset.limit"
        )
    if len(problems) < count:
        log.warning("dataset %s ends after %d of %d problems", source.name, len(problems), count)
    return problems


def sample_solutions(
    problems: Sequence[Problem], generator: Generator, num_samples: int, policy: str = ""
) -> tuple[list[SampledSolution], int]:
    """``num_samples`` solutions of every problem in one generate call; returns them and the
    prompt tokens the policy read."""
    prefixes = [Prefix(problem) for problem in problems]
    # each problem's stream is named by its id: its samples do not depend on the chunking
    streams = Sampling(streams=tuple(f"sample/{problem.id}" for problem in problems))
    generations = generator.generate(prefixes, n=num_samples, until=Until.end, sampling=streams)
    check_generations(generator, prefixes, num_samples, generations)
    solutions: list[SampledSolution] = []
    prompt_tokens = 0
    for problem, generation in zip(problems, generations, strict=True):
        prompt_tokens += generation.prompt_tokens
        for index, continuation in enumerate(generation.continuations):
            solutions.append(
                SampledSolution(
                    problem=problem,
                    sample_index=index,
                    steps=continuation.steps,
                    finished=continuation.finished,
                    num_tokens=continuation.num_tokens,
                    policy=policy,
                )
            )
    return solutions, prompt_tokens


class SampleWorker:
    """One shard of the sampling stage on Ray (``search.launchers.ray.map_on_ray``): its own
    policy, built from the run's ``policy`` node with the run's seed."""

    def __init__(
        self, policy_node: dict[str, Any], seed: int, num_samples: int, policy: str
    ) -> None:
        from hydra.utils import instantiate

        self.generator = instantiate(policy_node, seed=seed)
        self.num_samples = num_samples
        self.policy = policy

    def run(self, chunk: list[Problem]) -> tuple[list[dict[str, Any]], int]:
        """(``samples.jsonl`` records, prompt tokens read) of one chunk of problems."""
        solutions, read = sample_solutions(chunk, self.generator, self.num_samples, self.policy)
        return [s.to_record() for s in solutions], read


def summarise_samples(solutions: Sequence[SampledSolution]) -> dict[str, Any]:
    """Counts and answer accuracy of a samples file (graded against the gold answers)."""
    correct = sum(
        s.finished and answers_match(extract_answer(s.text), s.problem.answer) for s in solutions
    )
    count = max(1, len(solutions))
    return {
        "num_problems": len({s.problem.id for s in solutions}),
        "num_solutions": len(solutions),
        "finished_share": sum(s.finished for s in solutions) / count,
        "answer_accuracy": correct / count,
        "mean_steps": sum(len(s.steps) for s in solutions) / count,
        "generated_tokens": sum(s.num_tokens for s in solutions),
    }


def run_sampling(
    problems: Sequence[Problem],
    generator: Generator | None,
    output_dir: Path,
    num_samples: int,
    chunk_problems: int,
    policy: str = "",
    progress: bool = False,
    describe: dict[str, Any] | None = None,
    launcher: RayLauncherConfig | None = None,
    policy_node: dict[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Sample every problem not yet in ``output_dir/samples.jsonl``, a chunk per generate call,
    appending as it goes; then write ``metrics.json`` over the whole file (with ``describe``
    merged in).

    With a ``launcher`` the chunks go to Ray workers that each build ``policy_node`` with
    ``seed`` (``generator`` is not used); the driver appends their solutions as they arrive.
    A problem's samples come from streams named by its id, so they are the same either way.
    """
    if num_samples < 1 or chunk_problems < 1:
        raise ValueError(
            f"expected num_samples >= 1 and chunk_problems >= 1, got {num_samples} and "
            f"{chunk_problems}"
        )
    with RunLock(Path(output_dir)):
        return _sample_locked(
            problems,
            generator,
            Path(output_dir),
            num_samples,
            chunk_problems,
            policy,
            progress,
            describe,
            launcher,
            policy_node,
            seed,
        )


def _sample_locked(
    problems: Sequence[Problem],
    generator: Generator | None,
    output_dir: Path,
    num_samples: int,
    chunk_problems: int,
    policy: str,
    progress: bool,
    describe: dict[str, Any] | None,
    launcher: RayLauncherConfig | None,
    policy_node: dict[str, Any] | None,
    seed: int,
) -> dict[str, Any]:
    samples = JsonlLog(output_dir / SAMPLES_FILE)
    done = {row["problem_id"] for row in samples.records}
    todo = [problem for problem in problems if problem.id not in done]
    if done:
        log.info("resuming: %d problems already sampled, %d to go", len(done), len(todo))
    chunks = [todo[i : i + chunk_problems] for i in range(0, len(todo), chunk_problems)]
    start = time.perf_counter()
    prompt_tokens = 0
    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(chunks), desc="sampling", unit="chunk")
    for records, read in _sampled_chunks(
        chunks, generator, num_samples, policy, launcher, policy_node, seed, samples.path
    ):
        prompt_tokens += read
        samples.append(records)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    # chunks finish in any order on Ray workers: the file ends as one process writes it
    position = {problem.id: index for index, problem in enumerate(problems)}
    samples.reorder(lambda row: position.get(row["problem_id"], len(position)))
    wanted = {problem.id for problem in problems}
    written = [
        s
        for s in (SampledSolution.from_record(r) for r in samples.records)
        if s.problem.id in wanted
    ]
    metrics = (
        summarise_samples(written)
        | {
            "policy": policy,
            "num_samples": num_samples,
            "prompt_tokens_this_run": prompt_tokens,
            "wall_s_this_run": time.perf_counter() - start,
        }
        | (describe or {})
    )
    (Path(output_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def _sampled_chunks(
    chunks: list[list[Problem]],
    generator: Generator | None,
    num_samples: int,
    policy: str,
    launcher: RayLauncherConfig | None,
    policy_node: dict[str, Any] | None,
    seed: int,
    path: Path,
) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """(records, prompt tokens) of every chunk: here, or on Ray workers as they finish."""
    if launcher is None:
        if generator is None and chunks:
            raise ValueError("expected a generator (or a launcher and a policy node), got none")
        for chunk in chunks:
            assert generator is not None
            solutions, read = sample_solutions(chunk, generator, num_samples, policy)
            yield [s.to_record() for s in solutions], read
        return
    from search.launchers.ray import map_on_ray

    if policy_node is None:
        raise ValueError("expected the policy's config node to build it on Ray workers, got none")
    hint = f"the problems sampled so far are in {path}; re-run the same command to resume"
    args = (policy_node, seed, num_samples, policy)
    for _, _, (records, read) in map_on_ray(launcher, SampleWorker, args, chunks, hint):
        yield records, read


# -- entry point ----------------------------------------------------------------------------
@dataclass
class SampleConfig:
    """``conf/prm_sample.yaml``. ``dataset`` and ``policy`` are the engine's groups
    (``conf/dataset``, ``conf/policy``): ``_target_`` nodes; the policy is built with the
    run's seed. A dataset with ``limit: null`` is read only up to ``start + count``."""

    output_dir: str = "runs/prm/samples"
    start: int = 0
    count: int = 200
    num_samples: int = 8
    chunk_problems: int = 64
    seed: int = 0
    progress: bool = True
    dataset: Any = None
    policy: Any = None
    launcher: RayLauncherConfig | None = None  # +launcher=ray: chunks over Ray workers

    def __post_init__(self) -> None:
        for key in ("count", "num_samples", "chunk_problems"):
            if getattr(self, key) < 1:
                raise ValueError(
                    f"expected {key} >= 1, got {getattr(self, key)}; fix: {key}=1 or more"
                )
        if self.start < 0:
            raise ValueError(f"expected start >= 0, got {self.start}; fix: start=0")


def sample_from_config(raw: Any) -> None:
    """The body of ``python -m prm.sample``: checks before the policy loads, then samples."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from search.components import build_component, check_component, component_name
    from search.inputs import as_input_error
    from search.progress import quiet_library_bars
    from search.rundir import RunLock, check_fingerprint, fingerprint, schema_defaults

    config: SampleConfig = OmegaConf.to_object(raw)  # type: ignore[assignment]
    quiet_library_bars(config.progress)
    if "limit" in raw.dataset and raw.dataset.limit is None:
        raw.dataset.limit = config.start + config.count  # read no further than needed
    settings: Any = OmegaConf.to_container(raw, resolve=True, enum_to_str=True)
    check_component("dataset", settings.get("dataset"))
    check_component("policy", settings.get("policy"), seed=config.seed)
    with as_input_error("dataset"):
        problems = select_problems(instantiate(raw.dataset), config.start, config.count)
    output_dir = Path(config.output_dir)
    with RunLock(output_dir):  # one writer; settings checked before the policy loads
        written = JsonlLog(output_dir / SAMPLES_FILE).records
        check_fingerprint(
            output_dir, fingerprint(settings), bool(written), defaults=schema_defaults(raw)
        )
        launcher = config.launcher  # +launcher=ray: the workers build the policy
        done = {row["problem_id"] for row in written}
        finished = all(problem.id in done for problem in problems)  # no policy needed
        no_policy = launcher or finished
        generator = None if no_policy else build_component("policy", raw.policy, seed=config.seed)
        metrics = run_sampling(
            problems,
            generator,
            output_dir,
            num_samples=config.num_samples,
            chunk_problems=config.chunk_problems,
            policy=component_name(raw.policy) or "",
            progress=config.progress,
            describe={"config": settings},
            launcher=launcher,
            policy_node=settings["policy"],
            seed=config.seed,
        )
    print(json.dumps({k: v for k, v in metrics.items() if k != "config"}, indent=2))
    print(f"samples: {output_dir / SAMPLES_FILE}")


def main() -> None:
    import hydra
    from hydra.core.config_store import ConfigStore
    from omegaconf import DictConfig

    ConfigStore.instance().store(name="prm_sample_schema", node=SampleConfig)

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="prm_sample")
    def run(raw: DictConfig) -> None:
        with exit_on_server_error(), exit_on_input_error():
            sample_from_config(raw)

    run()


if __name__ == "__main__":
    main()
