from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from prm.label.calculator import CalculatorLabeller, evaluate, first_wrong_equation
from prm.label.consensus import ConsensusLabeller, agree, combine
from prm.label.records import LabelRecord, judged_record, steps_digest, unlabelled
from prm.sample import SampledSolution, read_samples, run_sampling
from search.envs.arith.checker import check_solution
from search.envs.arith.fakes import FakeGenerator
from search.envs.arith.world import make_split
from search.jsonl import read_jsonl, write_jsonl
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


# Reused MC records (labeller.mc_records), checked against the samples before any labelling.
def run_label(monkeypatch: pytest.MonkeyPatch, *overrides: str) -> None:
    import prm.label.__main__ as entry

    monkeypatch.setattr(sys, "argv", ["prm.label", "progress=false", *overrides])
    entry.main()


def write_samples(path: Path, solutions: Sequence[SampledSolution]) -> Path:
    write_jsonl(path, (s.to_record() for s in solutions))
    return path


def refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, samples: Path, mc: Path) -> str:
    """The one-line error of a consensus run reusing ``mc`` on ``samples``; nothing written."""
    out = tmp_path / "consensus"
    with pytest.raises(SystemExit) as exit:
        run_label(
            monkeypatch,
            "labeller=consensus",
            f"labeller.mc_records={mc}",
            f"samples={samples}",
            f"output_dir={out}",
        )
    assert not (out / "records.jsonl").exists() and not (out / "stepwise.jsonl").exists()
    message = str(exit.value.code)
    assert message.startswith("error: ") and "fix: " in message
    return message


@pytest.fixture
def mc_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(samples, the records.jsonl of a labeller=mc run on them, by the fake policy)."""
    generator = FakeGenerator(seed=3, error_rate=0.3)
    run_sampling(make_split("train", size=2), generator, tmp_path / "s", 2, chunk_problems=2)
    samples = tmp_path / "s" / "samples.jsonl"
    mc_dir = tmp_path / "mc"
    run_label(
        monkeypatch,
        "labeller=mc",
        "labeller.num_rollouts=2",
        "policy=fake",
        f"samples={samples}",
        f"output_dir={mc_dir}",
    )
    return samples, mc_dir / "records.jsonl"


def test_mc_records_keep_a_digest_of_the_steps_they_label(mc_run: tuple[Path, Path]) -> None:
    samples, mc = mc_run
    by_key = {s.key: s for s in read_samples(samples)}
    records = [LabelRecord.from_record(row) for row in read_jsonl(mc)]
    assert len(records) == len(by_key) == 4
    assert all(r.steps_sha == steps_digest(by_key[r.key].steps) for r in records)
    assert steps_digest(RIGHT) != steps_digest(SLIP) and len(steps_digest(RIGHT)) == 16


def test_consensus_refuses_mc_records_of_other_steps(
    mc_run: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples, mc = mc_run
    # same keys, same number of steps, other steps: another samples file
    other = [
        replace(s, steps=("Let me see. " + s.steps[0], *s.steps[1:])) for s in read_samples(samples)
    ]
    message = refused(monkeypatch, tmp_path, write_samples(tmp_path / "other.jsonl", other), mc)
    assert str(mc) in message and str(other[0].key) in message
    assert f"expected the record of {other[0].key} to label the steps" in message
    assert f"(steps_sha {steps_digest(other[0].steps)}), got steps_sha" in message
    assert "labeller=mc samples=SAME_FILE" in message


def test_consensus_refuses_records_of_a_judge(
    mc_run: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples, _ = mc_run
    calculator = tmp_path / "calculator"
    run_label(monkeypatch, "labeller=calculator", f"samples={samples}", f"output_dir={calculator}")
    mc = calculator / "records.jsonl"
    message = refused(monkeypatch, tmp_path, samples, mc)
    assert f"{mc}:1: expected records of an MC labeller (labeller 'mc')" in message
    assert "got labeller 'calculator'" in message
    # an MC run under another name is accepted once labeller.mc.name says so
    rows = [row | {"labeller": "mc_k16"} for row in read_jsonl(mc_run[1])]
    write_jsonl(tmp_path / "mc_k16.jsonl", rows)
    assert "'mc_k16'" in refused(monkeypatch, tmp_path, samples, tmp_path / "mc_k16.jsonl")
    run_label(
        monkeypatch,
        "labeller=consensus",
        "labeller.mc.name=mc_k16",
        f"labeller.mc_records={tmp_path / 'mc_k16.jsonl'}",
        f"samples={samples}",
        f"output_dir={tmp_path / 'renamed'}",
    )
    assert len(read_jsonl(tmp_path / "renamed" / "records.jsonl")) == 4


def test_consensus_checks_old_records_by_step_count(
    mc_run: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    samples, mc = mc_run
    old = tmp_path / "old.jsonl"  # records written before steps_sha was kept
    write_jsonl(old, ({k: v for k, v in row.items() if k != "steps_sha"} for row in read_jsonl(mc)))
    solutions = read_samples(samples)
    longer = [replace(s, steps=(*s.steps, "Done.")) for s in solutions]
    message = refused(monkeypatch, tmp_path, write_samples(tmp_path / "longer.jsonl", longer), old)
    n = len(solutions[0].steps)
    assert f"{old}: expected {n + 1} labels for {solutions[0].key}" in message
    assert f"got {n} (MC records of another samples file)" in message
    run_label(
        monkeypatch,
        "labeller=consensus",
        f"labeller.mc_records={old}",
        f"samples={samples}",
        f"output_dir={tmp_path / 'ok'}",
    )
    assert "4 of 4 MC records keep no steps_sha" in capsys.readouterr().out  # logged
    assert len(read_jsonl(tmp_path / "ok" / "records.jsonl")) == 4


def test_consensus_refuses_missing_mc_records(
    mc_run: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples, mc = mc_run
    partial = tmp_path / "partial.jsonl"
    write_jsonl(partial, read_jsonl(mc)[:3])
    missing = read_samples(samples)[3].key
    message = refused(monkeypatch, tmp_path, samples, partial)
    assert f"{partial}: expected MC records of every solution to label, got none for " in message
    assert str(missing) in message
    empty = tmp_path / "none.jsonl"
    assert f"{empty}: expected MC records, got none" in refused(
        monkeypatch, tmp_path, samples, empty
    )


def test_a_resumed_run_refuses_samples_rewritten_with_other_steps(
    mc_run: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resuming reads the run's own records by key: a samples file rewritten at the same path
    with other steps would mix labels of old steps into stepwise.jsonl."""
    samples, mc = mc_run
    args = ("labeller=mc", "labeller.num_rollouts=2", "policy=fake", f"output_dir={mc.parent}")
    before = mc.read_bytes()
    solutions = read_samples(samples)
    write_samples(
        samples,
        [
            replace(solutions[0], steps=("Hm. " + solutions[0].steps[0], *solutions[0].steps[1:])),
            *solutions[1:],
        ],
    )
    with pytest.raises(SystemExit) as exit:
        run_label(monkeypatch, *args, f"samples={samples}")
    message = str(exit.value.code)
    assert message.startswith(f"error: {mc}: expected the record of {solutions[0].key}")
    assert "fix: the samples file this run started with, or a new output_dir" in message
    assert mc.read_bytes() == before  # nothing appended
    write_samples(samples, solutions)  # the original samples: the run resumes as before
    run_label(monkeypatch, *args, f"samples={samples}")
    assert mc.read_bytes() == before
