from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from prm.label.calculator import CalculatorLabeller, evaluate, first_wrong_equation
from prm.label.consensus import ConsensusLabeller, agree, combine
from prm.label.records import LabelRecord, judged_record, unlabelled
from prm.sample import SampledSolution
from search.envs.arith.checker import check_solution
from search.types import Problem

PROBLEM = Problem(id="p0", question="Compute 4 + 3 - 2.", answer="5")
RIGHT = ("4 + 3 = 7", "7 - 2 = 5", "The answer is \\boxed{5}.")
SLIP = ("4 + 3 = 8", "8 - 2 = 6", "The answer is \\boxed{6}.")  # arithmetic error at 0
LOGIC = ("4 + 3 = 7", "7 - 3 = 4", "The answer is \\boxed{4}.")  # wrong operand at 1
WRONG_ANSWER = ("4 + 3 = 7", "7 - 2 = 5", "The answer is \\boxed{6}.")


def solution(steps: tuple[str, ...], index: int = 0) -> SampledSolution:
    return SampledSolution(PROBLEM, index, steps, True, 10, "toy")


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("4 + 3", 7),
        ("7 - 2", 5),
        ("2 + 3 * 4", 14),
        ("10 - 2 * 3 + 1", 5),
        ("5 - -3", 8),
        ("3 × 4", 12),
        ("4 +", None),
        ("4 5", None),
    ],
)
def test_evaluate(expression: str, value: int | None) -> None:
    assert evaluate(expression) == value


def test_calculator_catches_slips_and_misses_logic_errors() -> None:
    assert first_wrong_equation(RIGHT) == -1
    assert first_wrong_equation(SLIP) == 0
    assert first_wrong_equation(("x", "so 2 + 2 = 4 and 4 * 3 = 13", "3 + 1 = 4")) == 1
    # the checker sees the logic error and the wrong answer, the calculator does not
    assert check_solution(PROBLEM, LOGIC).first_error == 1 and first_wrong_equation(LOGIC) == -1
    assert check_solution(PROBLEM, WRONG_ANSWER).first_error == 2
    assert first_wrong_equation(WRONG_ANSWER) == -1
    records = CalculatorLabeller().label([solution(SLIP), solution(LOGIC, 1), solution((), 2)])
    assert records[0].first_error == 0 and records[0].labels == (False, False, False)
    assert records[1].first_error == -1
    assert records[2].first_error is None


def record(first_error: int | None, labeller: str, index: int = 0) -> LabelRecord:
    s = solution(RIGHT, index)
    if first_error is None:
        return unlabelled(s, labeller, "no_verdict")
    return judged_record(s, labeller, first_error)


def test_agreement_rules() -> None:
    assert agree(record(1, "mc"), record(1, "calculator"))
    assert agree(record(-1, "mc"), record(-1, "calculator"))
    assert not agree(record(1, "mc"), record(2, "calculator"))
    assert not agree(record(-1, "mc"), record(0, "calculator"))
    assert not agree(record(None, "mc"), record(None, "calculator"))


def test_combine_keeps_mc_labels_and_records_both_verdicts() -> None:
    mc = LabelRecord("p0", 0, "mc", 1, (True, False, False), (0.25, 0.0, 0.0))
    kept = combine(mc, record(1, "calculator"), solution(RIGHT))
    assert kept.labeller == "consensus" and kept.first_error == 1
    assert kept.soft_labels == (0.25, 0.0, 0.0)
    assert kept.components == {"mc": 1, "calculator": 1}
    dropped = combine(mc, record(-1, "calculator"), solution(RIGHT))
    assert dropped.first_error is None and dropped.reason == "disagree"
    assert dropped.components == {"mc": 1, "calculator": -1}
    missing = combine(mc, record(None, "judge"), solution(RIGHT))
    assert missing.first_error is None and missing.reason == "no judge label"
    with pytest.raises(ValueError, match="same solution"):
        combine(mc, record(1, "calculator", index=5), solution(RIGHT))


class FixedLabeller:
    """Returns scripted first errors, in order."""

    def __init__(self, name: str, first_errors: list[int | None]) -> None:
        self.name = name
        self.first_errors = first_errors
        self.seen = 0

    def usage(self) -> dict[str, Any]:
        return {"seen": self.seen}

    def label(self, solutions: Sequence[SampledSolution]) -> list[LabelRecord]:
        out = [
            record(fe, self.name, s.sample_index)
            if fe is not None
            else unlabelled(s, self.name, "no_verdict")
            for s, fe in zip(solutions, self.first_errors[self.seen :], strict=False)
        ]
        self.seen += len(solutions)
        return out


def test_consensus_labeller_retention() -> None:
    solutions = [solution(RIGHT, i) for i in range(5)]
    mc = FixedLabeller("mc", [-1, 1, 2, -1, 0])
    judge = FixedLabeller("judge", [-1, 1, -1, None, 0])
    labeller = ConsensusLabeller(mc, judge)
    out = labeller.label(solutions[:3]) + labeller.label(solutions[3:])
    assert [r.first_error for r in out] == [-1, 1, None, None, 0]
    assert [r.reason for r in out] == [None, None, "disagree", "no judge label", None]
    assert labeller.kept == 3 and labeller.seen == 5
    assert labeller.usage()["mc"] == {"seen": 5}


def test_consensus_reuses_mc_records() -> None:
    solutions = [solution(SLIP, 0), solution(LOGIC, 1)]
    mc_records = {
        (s.problem.id, s.sample_index): judged_record(s, "mc", fe)
        for s, fe in zip(solutions, [0, 1], strict=True)
    }
    labeller = ConsensusLabeller(mc_records, CalculatorLabeller())
    slip, logic = labeller.label(solutions)
    assert slip.first_error == 0  # both see the slip
    assert logic.first_error is None and logic.components == {"mc": 1, "calculator": -1}
    with pytest.raises(ValueError, match="expected MC records"):
        labeller.label([solution(RIGHT, 7)])
