from __future__ import annotations

import json
from pathlib import Path

import pytest

from prm.label.quality import (
    describe_mc,
    label_quality,
    markdown_table,
    mc_run,
    quality_from_records,
    soft_label_profile,
    soft_markdown,
    truth_first_error,
    write_quality,
)
from prm.label.records import LabelRecord, judged_record
from prm.sample import SampledSolution
from search.envs.arith.checker import ArithChecker, check_solution
from search.types import Problem

CHECKER = ArithChecker()
PROBLEM = Problem(id="p0", question="Compute 4 + 3 - 2.", answer="5")
CASES = {
    "right": (("4 + 3 = 7", "7 - 2 = 5", "The answer is \\boxed{5}."), True),
    "slip": (("4 + 3 = 8", "8 - 2 = 6", "The answer is \\boxed{6}."), True),
    "logic": (("4 + 3 = 7", "7 - 3 = 4", "The answer is \\boxed{4}."), True),
    "rawp": (("4 + 3 = 8", "7 - 2 = 5", "The answer is \\boxed{5}."), True),
    "incomplete": (("4 + 3 = 7",), False),
}
SOLUTIONS = [
    SampledSolution(PROBLEM, index, steps, finished, 10)
    for index, (steps, finished) in enumerate(CASES.values())
]


def test_ground_truth_of_the_cases() -> None:
    truths = [truth_first_error(check_solution(PROBLEM, s.steps), len(s.steps)) for s in SOLUTIONS]
    assert truths == [-1, 0, 1, 0, -1]
    assert check_solution(PROBLEM, SOLUTIONS[3].steps).right_answer_wrong_process


def test_a_lenient_labeller() -> None:
    quality = label_quality("lenient", SOLUTIONS, [-1, 0, -1, -1, -1], CHECKER)
    assert quality.retained == 5 and quality.retention == 1.0
    assert quality.first_error_accuracy == pytest.approx(3 / 5)
    assert quality.step_precision == 1.0  # its one flag is right
    assert quality.step_recall == pytest.approx(1 / 3)  # misses the logic error and the rawp
    assert quality.rawp == 1 and quality.rawp_passed == 1.0
    assert quality.positives_rawp_share == pytest.approx(1 / 4)


def test_a_strict_labeller_with_missing_labels() -> None:
    quality = label_quality("strict", SOLUTIONS, [2, 1, None, 0, None], CHECKER)
    assert quality.retained == 3 and quality.retention == pytest.approx(0.6)
    assert quality.first_error_accuracy == pytest.approx(1 / 3)
    assert quality.step_precision == pytest.approx(1 / 2)  # flags step 2 of a right solution
    assert quality.step_recall == pytest.approx(1 / 2)  # flags the slip one step late
    assert quality.rawp == 1 and quality.rawp_passed == 0.0
    assert quality.positives_rawp_share is None  # labels nothing fully correct


def test_quality_from_consensus_records_has_a_row_per_source(tmp_path: Path) -> None:
    mc_errors, calc_errors = [-1, 0, -1, -1, -1], [-1, 0, -1, 0, -1]
    records = []
    for solution, mc, calc in zip(SOLUTIONS, mc_errors, calc_errors, strict=True):
        base = judged_record(solution, "consensus", mc)
        records.append(
            LabelRecord(
                base.problem_id,
                base.sample_index,
                "consensus",
                mc if mc == calc else None,
                base.labels if mc == calc else (),
                base.soft_labels if mc == calc else (),
                components={"mc": mc, "calculator": calc},
            )
        )
    rows = quality_from_records(
        SOLUTIONS, list(reversed(records)), CHECKER
    )  # order does not matter
    assert [row.labeller for row in rows] == ["mc", "calculator", "consensus"]
    assert rows[0] == label_quality("mc", SOLUTIONS, mc_errors, CHECKER)
    assert rows[2].retained == 4 and rows[2].rawp == 0
    table = markdown_table(rows)
    assert table.count("\n") == 4 and "| consensus | 4/5 | 0.800 |" in table
    write_quality(tmp_path / "quality.json", rows)
    assert json.loads((tmp_path / "quality.json").read_text())[1]["labeller"] == "calculator"
    with pytest.raises(ValueError, match="record for every solution"):
        quality_from_records(SOLUTIONS, records[:2], CHECKER)


def _mc_record(solution: SampledSolution, soft: tuple[float, ...]) -> LabelRecord:
    base = judged_record(solution, "mc", next((i for i, p in enumerate(soft) if p == 0), -1))
    labels = tuple(p > 0 for p in soft)
    return LabelRecord(base.problem_id, base.sample_index, "mc", base.first_error, labels, soft)


def test_soft_profile_separates_right_steps_from_first_errors() -> None:
    # truths: right -1, slip 0, logic 1, rawp 0, incomplete -1 (test above)
    soft = [
        (1.0, 0.75, 1.0),  # right: three right steps
        (0.25, 0.0, 0.0),  # slip: first wrong step at 0.25, hard label "right": a miss
        (0.5, 0.0, 0.0),  # logic: one right step at 0.5, first wrong at 0
        (0.0, 0.125, 1.0),  # rawp: first wrong step at 0
        (0.0,),  # incomplete: one right step nobody completed
    ]
    records = [_mc_record(s, p) for s, p in zip(SOLUTIONS, soft, strict=True)]
    profile = soft_label_profile(SOLUTIONS, records[::-1], CHECKER)
    # right steps (before each true first error): 1, .75, 1 | .5 | 0; first wrong: .25, 0, 0
    assert profile.solutions == 5
    assert (profile.right_steps, profile.first_wrong_steps) == (5, 3)
    assert profile.mean_right == pytest.approx(3.25 / 5)
    assert profile.mean_first_wrong == pytest.approx(0.25 / 3)
    assert profile.right_at_zero == pytest.approx(1 / 5)
    assert profile.first_wrong_above_zero == pytest.approx(1 / 3)
    # pairs right > wrong: 1, .75, 1, .5 beat all three (12); 0 ties two zeros (1) and loses one
    assert profile.auc == pytest.approx(13 / 15)
    assert "| 5 | 5 | 3 | 0.650 | 0.083 | 0.867 | 0.200 | 0.333 |" in soft_markdown(profile)


def test_soft_profile_rejects_records_of_other_solutions() -> None:
    record = _mc_record(SOLUTIONS[0], (1.0, 1.0))  # two labels for three steps
    with pytest.raises(ValueError, match="one soft label per step"):
        soft_label_profile(SOLUTIONS[:1], [record], CHECKER)


def test_mc_run_is_read_from_the_fingerprints(tmp_path: Path) -> None:
    def run(name: str, labeller: dict[str, object]) -> Path:
        (tmp_path / name).mkdir()
        fingerprint = {"labeller": labeller, "policy": {"model": "verifier"}}
        (tmp_path / name / "fingerprint.json").write_text(json.dumps(fingerprint))
        return tmp_path / name / "records.jsonl"

    mc = run("mc", {"name": "mc", "num_rollouts": 8, "early_stop": False})
    consensus = run("consensus", {"name": "consensus", "mc_records": str(mc)})
    judge = run("calculator", {"name": "calculator"})
    inline = run("inline", {"name": "consensus", "mc_records": None, "mc": {"name": "mc"}})
    settings = mc_run(consensus)
    assert settings is not None and settings["model"] == "verifier"
    assert settings["records"] == mc and settings == mc_run(mc)
    assert describe_mc(settings) == "any of 8 rollouts right, all 8 rolled out (soft = share right)"
    assert describe_mc(settings, short=True) == "full"
    early = settings | {"early_stop": True}  # a fingerprint from before trust_right_answers
    assert describe_mc(early, short=True) == "early stop, right answers trusted"
    assert "a right answer's steps all right" in describe_mc(early)
    distrust = early | {"trust_right_answers": False}
    assert describe_mc(distrust, short=True) == "early stop, right answers rolled out"
    assert "right answer" not in describe_mc(distrust)
    assert mc_run(judge) is None
    assert mc_run(inline) == {"name": "mc", "model": "verifier", "records": None}
    with pytest.raises(FileNotFoundError, match="fingerprint.json"):
        mc_run(tmp_path / "elsewhere" / "records.jsonl")
