"""``python -m search.envs.arith.export``: the arithmetic world as a ProcessBench-format file.

    python -m search.envs.arith.export                               # corrupted gold, test split
    python -m search.envs.arith.export source=policy policy=arith_tiny count=200
    python -m prm.processbench scorer=arith_prm subsets=[runs/processbench/arith_test_corrupt.json]

Every record has ProcessBench's fields (``id``, ``generator``, ``problem``, ``steps``,
``label``: index of the first wrong step or -1, ``final_answer_correct``) and two more:
``error_kind`` (``search.envs.arith.checker.ErrorKind`` value, ``null`` when correct) and
``corruption`` (what was done to the gold solution, ``null`` for policy samples and
untouched gold). Labels are the TRUE ones of ``check_solution``, never the corruption's
intent.

Sources (``source=``):

- ``corrupt`` (default; no model): a ``correct_share`` of the problems keep their gold
  solution, the others get one corruption drawn from ``corruptions`` with a seeded RNG;
  see :class:`Corruption`. ``slip_recovered`` and ``skipped_step`` keep the final answer
  right: the "right answer, wrong process" solutions the paper warns MC labels miss.
- ``policy``: ``samples_per_problem`` solutions per problem from a ``Generator``
  (the ``policy`` group, a ``_target_`` node); per problem the RNG asks for a correct solution
  with probability ``correct_share`` and the first sample of that kind is kept (else the
  first sample). Solutions the policy did not finish (token limit) or that stop before an
  answer are dropped and counted.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from search.answers import ANSWER_STEP
from search.components import component_name
from search.envs.arith.checker import ErrorKind, check_solution, parse_question
from search.envs.arith.world import OPS, Split, apply, make_split
from search.protocols import Generator
from search.resolve import CONF_DIR
from search.types import Prefix, Problem, Until

log = logging.getLogger("search.envs.arith.export")


class Source(str, Enum):
    corrupt = "corrupt"
    policy = "policy"


class Corruption(str, Enum):
    """Ways to break a gold solution at a random operation step ``i``."""

    arithmetic_slip = "arithmetic_slip"  # step i's result off by 1-3; later steps build on it
    slip_recovered = "slip_recovered"  # step i's result off; step i+1 goes on from the truth
    wrong_operand = "wrong_operand"  # step i uses another operand (1-9), right arithmetic
    wrong_operation = "wrong_operation"  # step i uses another operation, right arithmetic
    skipped_step = "skipped_step"  # step i left out; the rest of the gold kept as written
    wrong_answer = "wrong_answer"  # the answer step states another value


@dataclass
class ExportConfig:
    """Top level of ``conf/arith_export.yaml``; see the module docstring."""

    source: Source = Source.corrupt
    split: Split = Split.test
    count: int = 400
    correct_share: float = 0.5
    corruptions: list[Corruption] = field(default_factory=lambda: list(Corruption))
    samples_per_problem: int = 4
    batch_problems: int = 64
    seed: int = 0
    output: str | None = None  # null: runs/processbench/arith_<split>_<source>.json
    policy: Any = None  # a conf/policy node (``_target_``), used by source=policy only

    def __post_init__(self) -> None:
        if not 0.0 <= self.correct_share <= 1.0:
            raise ValueError(
                f"expected 0 <= correct_share <= 1, got {self.correct_share}; "
                "fix: e.g. correct_share=0.5"
            )
        for name in ("count", "samples_per_problem", "batch_problems"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"expected {name} >= 1, got {getattr(self, name)}; fix: {name}=1 or more"
                )
        if not self.corruptions:
            raise ValueError(
                "expected at least one corruption, got none; fix: corruptions="
                f"[{','.join(c.value for c in Corruption)}]"
            )


def _values(problem: Problem) -> tuple[list[int], list[tuple[str, int]]]:
    start, chain = parse_question(problem.question)
    values = [start]
    for op, operand in chain:
        values.append(apply(op, values[-1], operand))
    return values, chain


def _write(
    start: int, chain: Sequence[tuple[str, int]], slip: dict[int, int] | None = None
) -> list[str]:
    """Operation steps applying ``chain`` from ``start``; ``slip[i]`` is added to step i's
    stated result, and later steps build on the stated result."""
    steps, value = [], start
    for index, (op, operand) in enumerate(chain):
        result = apply(op, value, operand) + (slip or {}).get(index, 0)
        steps.append(f"{value} {OPS[op]} {operand} = {result}")
        value = result
    return steps


def _answer(steps: list[str], start: int) -> str:
    value = int(steps[-1].rsplit("=", 1)[1]) if steps else start
    return ANSWER_STEP.format(value=value)


def corrupt_solution(
    problem: Problem, corruption: Corruption, rng: random.Random
) -> tuple[str, ...]:
    """The gold solution of ``problem`` with ``corruption`` applied at a random step."""
    values, chain = _values(problem)
    start = values[0]
    index = rng.randrange(len(chain))
    delta = rng.choice([-3, -2, -1, 1, 2, 3])
    if corruption is Corruption.arithmetic_slip:
        steps = _write(start, chain, slip={index: delta})
        return (*steps, _answer(steps, start))
    if corruption is Corruption.slip_recovered:
        steps = _write(start, chain)
        op, operand = chain[index]
        steps[index] = f"{values[index]} {OPS[op]} {operand} = {values[index + 1] + delta}"
        return (*steps, _answer(_write(start, chain), start))
    if corruption in (Corruption.wrong_operand, Corruption.wrong_operation):
        op, operand = chain[index]
        if corruption is Corruption.wrong_operand:
            operand = rng.choice([o for o in range(1, 10) if o != operand])
        else:
            op = rng.choice([name for name in OPS if name != op])
        changed = [*chain[:index], (op, operand), *chain[index + 1 :]]
        steps = _write(start, changed)
        return (*steps, _answer(steps, start))
    if corruption is Corruption.skipped_step:
        gold = _write(start, chain)
        steps = gold[:index] + gold[index + 1 :]
        return (*steps, ANSWER_STEP.format(value=values[-1]))
    steps = _write(start, chain)
    return (*steps, ANSWER_STEP.format(value=values[-1] + delta))


def to_record(
    problem: Problem, steps: Sequence[str], generator: str, corruption: Corruption | None
) -> dict[str, Any] | None:
    """One ProcessBench record with the checker's labels; ``None`` when the solution stops
    before stating an answer (ProcessBench has no label for that)."""
    check = check_solution(problem, tuple(steps))
    if check.kind is ErrorKind.incomplete or not steps:
        return None
    return {
        "id": problem.id,
        "generator": generator,
        "problem": problem.question,
        "steps": list(steps),
        "label": check.first_error,
        "final_answer_correct": check.answer_correct,
        "error_kind": None if check.kind is None else ErrorKind(check.kind).value,
        "corruption": None if corruption is None else corruption.value,
    }


def corrupted_records(
    problems: Sequence[Problem],
    correct_share: float = 0.5,
    corruptions: Sequence[Corruption] = tuple(Corruption),
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One record per problem: exactly ``round(correct_share * len(problems))`` untouched
    gold solutions (chosen at random), the others corrupted until the checker finds an
    error (a corruption can, rarely, leave a correct solution)."""
    rng = random.Random(seed)
    keep = set(rng.sample(range(len(problems)), round(correct_share * len(problems))))
    records: list[dict[str, Any]] = []
    for index, problem in enumerate(problems):
        if index in keep:
            record = to_record(problem, problem.gold_steps, "gold", None)
        else:
            for _ in range(100):
                corruption = Corruption(rng.choice(list(corruptions)))
                steps = corrupt_solution(problem, corruption, rng)
                record = to_record(problem, steps, "corrupt", corruption)
                if record is not None and record["label"] != -1:
                    break
            else:
                raise RuntimeError(f"could not corrupt {problem.id} with {list(corruptions)}")
        assert record is not None
        records.append(record)
    return records


def policy_records(
    problems: Sequence[Problem],
    generator: Generator,
    generator_name: str,
    correct_share: float = 0.5,
    samples_per_problem: int = 4,
    batch_problems: int = 64,
    seed: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """One record per problem with a complete sample (see the module docstring), and the
    number of samples dropped: unfinished (token limit) or stopping before an answer."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    dropped = 0
    for start in range(0, len(problems), batch_problems):
        batch = problems[start : start + batch_problems]
        generations = generator.generate(
            [Prefix(problem) for problem in batch], samples_per_problem, Until.end
        )
        for problem, generation in zip(batch, generations, strict=True):
            want_correct = rng.random() < correct_share
            candidates = []
            for continuation in generation.continuations:
                record = None
                if continuation.finished:  # cut by the token limit: not a whole solution
                    record = to_record(problem, continuation.steps, generator_name, None)
                if record is None:
                    dropped += 1
                else:
                    candidates.append(record)
            matching = [r for r in candidates if (r["label"] == -1) == want_correct]
            if matching or candidates:
                records.append((matching or candidates)[0])
    return records, dropped


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts of a set of records: correct share, error kinds, right-answer-wrong-process."""
    return {
        "num_samples": len(records),
        "correct_share": (
            sum(r["label"] == -1 for r in records) / len(records) if records else None
        ),
        "error_kinds": dict(Counter(r["error_kind"] for r in records if r["error_kind"])),
        "corruptions": dict(Counter(r["corruption"] for r in records if r["corruption"])),
        "right_answer_wrong_process": sum(
            r["final_answer_correct"] and r["label"] != -1 for r in records
        ),
    }


def default_output(config: ExportConfig) -> str:
    split, source = Split(config.split).value, Source(config.source).value
    return f"runs/processbench/arith_{split}_{source}.json"


def export_processbench(
    config: ExportConfig, generator: Generator | None = None
) -> tuple[Path, dict[str, Any]]:
    """Write the ProcessBench-format file ``config.output``; return it and its summary.

    ``source=policy`` uses ``generator`` when given, else builds one from ``config.policy``.
    """
    problems = make_split(config.split, size=config.count)
    source = Source(config.source)
    dropped = 0
    if source is Source.corrupt:
        records = corrupted_records(problems, config.correct_share, config.corruptions, config.seed)
    else:
        if generator is None:
            if config.policy is None:
                raise ValueError(
                    "expected a policy for source=policy, got policy=null; fix: policy=arith_tiny"
                )
            from hydra.utils import instantiate

            generator = instantiate(config.policy, seed=config.seed)
        records, dropped = policy_records(
            problems,
            generator,
            generator_name=component_name(config.policy) or type(generator).__name__,
            correct_share=config.correct_share,
            samples_per_problem=config.samples_per_problem,
            batch_problems=config.batch_problems,
            seed=config.seed,
        )
    output = Path(config.output or default_output(config)).expanduser()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(records, indent=1) + "\n")
    summary = summarise(records) | {"source": source.value, "dropped_incomplete": dropped}
    return output, summary


def register_configs() -> None:
    ConfigStore.instance().store(name="arith_export_schema", node=ExportConfig)


register_configs()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="arith_export")
def main(raw: DictConfig) -> None:
    config: ExportConfig = OmegaConf.to_object(raw)  # type: ignore[assignment]
    output, summary = export_processbench(config)
    print(json.dumps(summary, indent=2))
    print(f"ProcessBench file: {output}")


if __name__ == "__main__":
    main()
