"""benchmarks/prm_headroom.py: the checker as a PRM, and DVTS's step picks by where they start."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import prm_headroom  # noqa: E402

from search.envs.arith.fakes import FakeGenerator, FakeScorer  # noqa: E402
from search.envs.arith.world import make_split  # noqa: E402
from search.types import Candidate, FinishReason, Problem  # noqa: E402

PROBLEM = Problem(id="p", question="Compute 6 - 4 + 9 + 8.", answer="19")
GOLD = ("6 - 4 = 2", "2 + 9 = 11", "11 + 8 = 19", "The answer is \\boxed{19}.")


def candidate(steps: tuple[str, ...], finished: bool = True) -> Candidate:
    return Candidate(
        steps=steps,
        answer="19",
        finished=finished,
        num_tokens=10,
        finish_reason=FinishReason.eos if finished else FinishReason.length,
    )


def test_right_so_far_reads_prefixes_and_solutions() -> None:
    assert prm_headroom.right_so_far(PROBLEM, GOLD[:2])
    assert prm_headroom.right_so_far(PROBLEM, GOLD)
    assert not prm_headroom.right_so_far(PROBLEM, ("6 - 4 = 2", "2 + 9 = 12"))


def test_right_process_needs_every_step_right_and_a_finished_candidate() -> None:
    assert prm_headroom.right_process(PROBLEM, candidate(GOLD))
    assert not prm_headroom.right_process(PROBLEM, candidate(GOLD, finished=False))
    # a right answer through two errors that cancel: right answer, wrong process
    lucky = ("6 - 4 = 3", "3 + 9 = 11", "11 + 8 = 19", "The answer is \\boxed{19}.")
    assert not prm_headroom.right_process(PROBLEM, candidate(lucky))


def test_bucket_is_the_true_running_value_the_step_starts_from() -> None:
    # running values 6, 2, 11, 19; then the answer step
    assert [prm_headroom.bucket(PROBLEM, depth) for depth in range(5)] == [
        "0-9",
        "0-9",
        "10-19",
        "answer step",
        "answer step",
    ]
    big = Problem(id="q", question="Compute 9 + 9 + 9 + 1.", answer="28")
    assert [prm_headroom.bucket(big, depth) for depth in range(4)] == [
        "0-9",
        "10-19",
        "20+",
        "answer step",
    ]


def test_the_checker_picks_a_right_process_whenever_best_of_n_has_one() -> None:
    problems = make_split("validation", size=6)
    rows = prm_headroom.best_of_n_rows(
        problems,
        FakeGenerator(seed=1, error_rate=0.4),
        FakeScorer(right_score=1.0, wrong_score=0.01),
        seed=1,
    )
    by_rule = {row["row"]: row for row in rows}
    argmax = by_rule["best_of_16/prm"]
    # the fake policy's lucky answers aside, argmax lands on every right process there is
    assert all(
        correct >= process
        for correct, process in zip(argmax["correct"], argmax["process_passed"], strict=True)
    )
    assert sum(argmax["process_passed"]) > 0
    assert {row["seed"] for row in rows} == {1}


def test_dvts_records_every_subtree_pick_and_counts_mixed_sets() -> None:
    problems = make_split("validation", size=4)
    row, counts = prm_headroom.dvts_row(
        problems, FakeGenerator(seed=2, error_rate=0.4), FakeScorer(seed=2, noise=0.05), seed=2
    )
    assert len(row["correct"]) == 4
    keys = ("sets", "all right", "none right", "mixed", "mixed, picked right")
    keys += ("mixed, right step scored highest",)
    total = {key: sum(count[key] for count in counts.values()) for key in keys}
    assert total["sets"] == total["all right"] + total["none right"] + total["mixed"]
    assert total["mixed"] > 0
    # the fake PRM scores wrong steps 0.1 and right ones 0.9 (noise 0.05): it always picks right
    assert total["mixed, picked right"] == total["mixed"]
    assert total["mixed, right step scored highest"] == total["mixed"]


def test_markdown_pairs_the_checker_with_the_shipped_prm() -> None:
    def row(scorer: str, correct: list[int], name: str = "dvts@16") -> dict[str, object]:
        return {
            "row": name,
            "scorer": scorer,
            "seeds": [0],
            "correct": correct,
            "passed": [1, 1],
            "process_passed": [1, 0],
            "policy_tokens": 100.0,
        }

    picks: dict[str, dict[str, int]] = {name: {} for name in prm_headroom.BUCKETS}
    picks["0-9"] = {"sets": 4, "mixed": 2, "mixed, picked right": 1, "all right": 2}
    picks["0-9"]["mixed, right step scored highest"] = 2
    rows = [
        row("shipped PRM", [0, 0], "best_of_24/weighted"),
        row("checker", [0, 1], "best_of_24/weighted"),
        row("shipped PRM", [0, 1]),
        row("checker", [1, 1]),
    ]
    text = prm_headroom.markdown(rows, picks, "validation", 2, 0.01)
    assert "| dvts@16 | checker | 1.000 ± 0.000 | +0.500 ± 0.500 |" in text
    assert "- shipped PRM: +0.500 ± 0.500 against best-of-24" in text  # no best-of-32 row here
    assert "- checker: +0.500 ± 0.500 against best-of-24" in text
    assert "| 0-9 | 4 | 0.500 | 0.000 | 2 (0.500) | 0.500 | 1.000 |" in text
    assert "| 20+ | 0 | - | - | 0 (-) | - | - |" in text
