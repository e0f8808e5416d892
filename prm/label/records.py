"""What a labeller says about one solution, and the protocol every labeller implements.

A ``LabelRecord`` keeps a label for every step of the solution (nothing is dropped here);
``to_stepwise`` turns it into a training example, dropping the steps after the first wrong
one unless asked to keep them. ``records.jsonl`` rows also keep ``steps_sha`` (``steps_digest``
of the solution's steps), so a record read back can be matched to the solution it labels;
rows written before it was kept have none.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from prm.first_error import first_error_of
from prm.sample import SampledSolution
from prm.stepwise import StepwiseExample
from search.inputs import InputError


@dataclass(frozen=True, slots=True)
class LabelRecord:
    """Labels of one solution (``problem_id``, ``sample_index``) by ``labeller``.

    ``first_error``: index of the first wrong step, -1 when every step is right, ``None``
    when the labeller gives no label (a malformed critique, a consensus disagreement);
    ``reason`` then says why. ``labels``/``soft_labels`` hold one value per step (empty
    without a label). ``components``: for consensus, each source labeller's first error.
    ``steps_sha``: ``steps_digest`` of the labelled steps (set when the record is written;
    ``None`` in records of older runs).
    """

    problem_id: str
    sample_index: int
    labeller: str
    first_error: int | None
    labels: tuple[bool, ...] = ()
    soft_labels: tuple[float, ...] = ()
    reason: str | None = None
    components: dict[str, int | None] = field(default_factory=dict, compare=False)
    steps_sha: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.first_error is None:
            return
        if len(self.labels) != len(self.soft_labels) or not self.labels:
            raise ValueError(
                f"expected one label and one soft label per step, got {len(self.labels)} and "
                f"{len(self.soft_labels)} for {self.key}"
            )
        if first_error_of(self.labels) != self.first_error:
            raise ValueError(
                f"expected first_error {self.first_error} to be the first false label of "
                f"{self.labels} for {self.key}"
            )

    @property
    def key(self) -> tuple[str, int]:
        return (self.problem_id, self.sample_index)

    @staticmethod
    def key_of(row: dict[str, Any]) -> tuple[str, int]:
        """``from_record(row).key`` without building (and checking) the whole record."""
        return (str(row["problem_id"]), int(row["sample_index"]))

    @property
    def labelled(self) -> bool:
        return self.first_error is not None

    def to_record(self) -> dict[str, Any]:
        return {
            "problem_id": self.problem_id,
            "sample_index": self.sample_index,
            "labeller": self.labeller,
            "first_error": self.first_error,
            "labels": list(self.labels),
            "soft_labels": list(self.soft_labels),
            "reason": self.reason,
            "components": dict(self.components),
            "steps_sha": self.steps_sha,
        }

    @classmethod
    def from_record(cls, row: dict[str, Any]) -> LabelRecord:
        first = row.get("first_error")
        problem_id, sample_index = cls.key_of(row)
        return cls(
            problem_id=problem_id,
            sample_index=sample_index,
            labeller=str(row["labeller"]),
            first_error=None if first is None else int(first),
            labels=tuple(bool(x) for x in row.get("labels", ())),
            soft_labels=tuple(float(x) for x in row.get("soft_labels", ())),
            reason=row.get("reason"),
            components={
                k: (None if v is None else int(v)) for k, v in (row.get("components") or {}).items()
            },
            steps_sha=None if row.get("steps_sha") is None else str(row["steps_sha"]),
        )


def steps_digest(steps: Sequence[str]) -> str:
    """A short hash (16 hex digits) of a solution's steps, in order."""
    return hashlib.sha256(json.dumps(list(steps)).encode()).hexdigest()[:16]


def check_same_steps(
    records: Sequence[LabelRecord], solutions: Sequence[SampledSolution], where: str, fix: str
) -> None:
    """Every record that keeps ``steps_sha`` and is keyed to one of ``solutions`` labels that
    solution's steps; else an ``InputError`` naming ``where``, the key and ``fix``."""
    by_key = {solution.key: solution for solution in solutions}
    for record in records:
        solution = by_key.get(record.key)
        if solution is None or record.steps_sha is None:
            continue
        expected = steps_digest(solution.steps)
        if record.steps_sha != expected:
            raise InputError(
                f"{where}: expected the record of {record.key} to label the steps in the "
                f"samples (steps_sha {expected}), got steps_sha {record.steps_sha}; {fix}"
            )


def stamped(record: LabelRecord, solution: SampledSolution) -> LabelRecord:
    """``record`` with the digest of the steps it labels, as ``records.jsonl`` keeps it."""
    if record.key != solution.key:
        raise ValueError(f"expected a record of {solution.key}, got one of {record.key}")
    return replace(record, steps_sha=steps_digest(solution.steps))


def hard_labels(num_steps: int, first_error: int) -> tuple[bool, ...]:
    """Right before ``first_error``, wrong from it on (all right when it is -1)."""
    if first_error == -1:
        return (True,) * num_steps
    if not 0 <= first_error < num_steps:
        raise ValueError(
            f"expected first_error in [-1, {num_steps - 1}] for {num_steps} steps, "
            f"got {first_error}"
        )
    return (True,) * first_error + (False,) * (num_steps - first_error)


def judged_record(solution: SampledSolution, labeller: str, first_error: int) -> LabelRecord:
    """A record from a judge's verdict: hard labels, soft labels 0/1."""
    labels = hard_labels(len(solution.steps), first_error)
    return LabelRecord(
        problem_id=solution.problem.id,
        sample_index=solution.sample_index,
        labeller=labeller,
        first_error=first_error,
        labels=labels,
        soft_labels=tuple(float(x) for x in labels),
    )


def unlabelled(
    solution: SampledSolution,
    labeller: str,
    reason: str,
    components: dict[str, int | None] | None = None,
) -> LabelRecord:
    return LabelRecord(
        problem_id=solution.problem.id,
        sample_index=solution.sample_index,
        labeller=labeller,
        first_error=None,
        reason=reason,
        components=components or {},
    )


def to_stepwise(
    solution: SampledSolution, record: LabelRecord, keep_after_first_error: bool = False
) -> StepwiseExample | None:
    """The training example of a labelled solution (``None`` without a label). Steps after
    the first wrong one are dropped unless ``keep_after_first_error``."""
    if record.key != solution.key:
        raise ValueError(f"expected a record of {solution.key}, got one of {record.key}")
    if record.first_error is None:
        return None
    if len(record.labels) != len(solution.steps):
        raise InputError(
            f"expected {len(solution.steps)} labels for {solution.key}, got "
            f"{len(record.labels)}; fix: label again from the same samples file"
        )
    end = len(solution.steps)
    if record.first_error >= 0 and not keep_after_first_error:
        end = record.first_error + 1
    return StepwiseExample(
        prompt=solution.problem.question,
        completions=solution.steps[:end],
        labels=record.labels[:end],
        soft_labels=record.soft_labels[:end],
        labeller=record.labeller,
        policy=solution.policy,
        problem_id=solution.problem.id,
        sample_index=solution.sample_index,
        answer=solution.problem.answer,
    )


class Labeller(Protocol):
    """Labels a batch of solutions: one record per solution, in order."""

    name: str

    def label(self, solutions: Sequence[SampledSolution]) -> list[LabelRecord]: ...

    def usage(self) -> dict[str, Any]:
        """What labelling has cost so far (rollout tokens, critique tokens, counts)."""
        ...
