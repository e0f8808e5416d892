"""The arithmetic reasoning world: the embedded default task.

A problem is a chain of integer operations applied to a start value, for example
``Compute 7 + 5 - 3 + 8.``; its gold solution applies them one per step, each step
on its own paragraph (steps are separated by a blank line, ``"\\n\\n"``)::

    7 + 5 = 12

    12 - 3 = 9

    9 + 8 = 17

    The answer is \\boxed{17}.

The final step always states the answer in exactly that form: ``The answer is \\boxed{N}.``
Splits are fixed by seed, so ``split="test"`` is the same list of problems on every machine.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field, replace
from enum import Enum

from search.answers import ANSWER_STEP
from search.protocols import Checker
from search.types import LoadedProblems, Problem

OPS: dict[str, str] = {"add": "+", "sub": "-", "mul": "*"}


class Split(str, Enum):
    train = "train"
    validation = "validation"
    test = "test"
    hard = "hard"  # longer chains than any training problem: held-out generalisation
    longest = "longest"  # only chains of the longest training length (4 operations)


@dataclass(frozen=True)
class WorldConfig:
    """Knobs of the generator. ``operations`` is a subset of ``("add", "sub", "mul")``."""

    min_steps: int = 2
    max_steps: int = 4
    min_operand: int = 1
    max_operand: int = 9
    operations: tuple[str, ...] = ("add", "sub")
    allow_negative: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.min_steps <= self.max_steps:
            raise ValueError(
                f"expected 1 <= min_steps <= max_steps, got {self.min_steps}, {self.max_steps}; "
                "fix: e.g. min_steps=2 max_steps=4"
            )
        if not 0 <= self.min_operand <= self.max_operand:
            raise ValueError(
                "expected 0 <= min_operand <= max_operand, "
                f"got {self.min_operand}, {self.max_operand}; fix: e.g. min_operand=0 max_operand=9"
            )
        unknown = set(self.operations) - set(OPS)
        if not self.operations or unknown:
            raise ValueError(
                f"expected operations from {sorted(OPS)}, got {list(self.operations)}; "
                "fix: name at least one of add, sub, mul"
            )


# Seeds and sizes of the fixed splits. The hard split uses longer chains, the longest split
# only the longest chains of the others.
SPLIT_SEEDS: dict[Split, int] = {
    Split.train: 1_000,
    Split.validation: 2_000,
    Split.test: 3_000,
    Split.hard: 4_000,
    Split.longest: 5_000,
}
SPLIT_SIZES: dict[Split, int] = {
    Split.train: 200_000,
    Split.validation: 500,
    Split.test: 500,
    Split.hard: 500,
    Split.longest: 500,
}


@dataclass(frozen=True)
class Chain:
    """A problem as data: ``start`` then ``ops[i]`` applied with ``operands[i]``."""

    start: int
    ops: tuple[str, ...]
    operands: tuple[int, ...]
    values: tuple[int, ...] = field(default=())  # running values after each op

    @property
    def answer(self) -> int:
        return self.values[-1]

    def question(self) -> str:
        parts = [str(self.start)]
        for op, operand in zip(self.ops, self.operands, strict=True):
            parts += [OPS[op], str(operand)]
        return "Compute " + " ".join(parts) + "."

    def gold_steps(self) -> tuple[str, ...]:
        steps: list[str] = []
        previous = self.start
        for op, operand, value in zip(self.ops, self.operands, self.values, strict=True):
            steps.append(f"{previous} {OPS[op]} {operand} = {value}")
            previous = value
        steps.append(ANSWER_STEP.format(value=self.answer))
        return tuple(steps)


def apply(op: str, left: int, right: int) -> int:
    if op == "add":
        return left + right
    if op == "sub":
        return left - right
    if op == "mul":
        return left * right
    raise ValueError(f"expected an operation in {sorted(OPS)}, got {op!r}")


def sample_chain(rng: random.Random, config: WorldConfig) -> Chain:
    num_steps = rng.randint(config.min_steps, config.max_steps)
    value = rng.randint(config.min_operand, config.max_operand)
    start = value
    ops: list[str] = []
    operands: list[int] = []
    values: list[int] = []
    for _ in range(num_steps):
        op = rng.choice(config.operations)
        operand = rng.randint(config.min_operand, config.max_operand)
        if op == "sub" and not config.allow_negative and value - operand < 0:
            # Keep the chain non-negative: a smaller operand if one fits, else add instead.
            if value >= config.min_operand:
                operand = rng.randint(config.min_operand, min(value, config.max_operand))
            else:
                op = "add"
        value = apply(op, value, operand)
        ops.append(op)
        operands.append(operand)
        values.append(value)
    return Chain(start=start, ops=tuple(ops), operands=tuple(operands), values=tuple(values))


def chain_to_problem(chain: Chain, problem_id: str) -> Problem:
    return Problem(
        id=problem_id,
        question=chain.question(),
        answer=str(chain.answer),
        gold_steps=chain.gold_steps(),
    )


def split_config(split: Split, base: WorldConfig | None = None) -> WorldConfig:
    """The world config of a split. ``hard``: chains 1-2 operations longer than the rest
    (5-6 with the defaults), where the shipped policy never writes a right solution (a right
    answer there is a coincidence of wrong steps); ``longest``: only chains of the longest
    length of the rest (4), which it solves now and then, so search has something to find."""
    base = base or WorldConfig()
    if split is Split.hard:
        return replace(base, min_steps=base.max_steps + 1, max_steps=base.max_steps + 2)
    if split is Split.longest:
        return replace(base, min_steps=base.max_steps)
    return base


@functools.lru_cache(maxsize=8)
def split_questions(split: Split, config: WorldConfig | None = None) -> frozenset[str]:
    """The questions of the whole of ``split`` (remembered: the train split takes seconds)."""
    return frozenset(p.question for p in make_split(split, config=config))


def make_split(
    split: Split | str, size: int | None = None, config: WorldConfig | None = None
) -> list[Problem]:
    """The fixed problems of ``split``: same seed, same list, on every machine.

    Test, validation and hard problems never appear in the train split (their questions are
    removed from it), so held-out accuracy is not memorisation. The longest split is drawn
    the other way round (its problems are none of train, validation and test), since its
    chains are of a length the train split has, and removing them from train would change
    the split the shipped models were trained on.
    """
    split = Split(split)
    count = SPLIT_SIZES[split] if size is None else size
    world = split_config(split, config)
    rng = random.Random(SPLIT_SEEDS[split])
    held_out: set[str] = set()
    if split is Split.train:
        for other in (Split.validation, Split.test, Split.hard):
            held_out |= {p.question for p in make_split(other, config=config)}
    if split is Split.longest:
        for other in (Split.train, Split.validation, Split.test):
            held_out |= split_questions(other, config)
    problems: list[Problem] = []
    while len(problems) < count:
        chain = sample_chain(rng, world)
        if chain.question() in held_out:
            continue
        problems.append(chain_to_problem(chain, f"arith-{split.value}-{len(problems)}"))
    return problems


@dataclass
class ArithDataset:
    """The arithmetic world as a dataset (``conf/dataset/arith.yaml``): the first ``limit``
    problems of a fixed split (all of it when ``None``). Implements
    ``search.protocols.ProblemSource``."""

    split: Split = Split.test
    limit: int | None = None
    name: str = "arith"

    def __post_init__(self) -> None:
        splits = [member.value for member in Split]
        if self.split not in splits:
            raise ValueError(
                f"expected dataset.split in {splits} for arith, got {self.split!r}; "
                "fix: dataset.split=test"
            )
        self.split = Split(self.split)
        if self.limit is not None and self.limit < 1:
            raise ValueError(
                f"expected dataset.limit >= 1 or null (all problems), got {self.limit}; "
                "fix: dataset.limit=1 or more, or dataset.limit=null"
            )

    def load(self) -> LoadedProblems:
        return LoadedProblems(tuple(make_split(self.split, size=self.limit)))

    @property
    def checker(self) -> Checker:
        """The world's ground truth (``search.protocols.Checker``): per-node verdicts in
        saved search trees."""
        from search.envs.arith.checker import ArithChecker

        return ArithChecker()
