"""benchmarks/targets.py: the scoreboard reads its verdicts off the result files."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import targets  # noqa: E402
from targets import Difference, verdict  # noqa: E402

# the weights of the PRM shipped now: the tables below were "run" with it
SHIPPED = targets.weights_digest(targets.SHIPPED_PRM_DIR)
OF_SHIPPED = {"args": {"prm_sha256": SHIPPED}}


@pytest.mark.parametrize(
    ("differences", "expected"),
    [
        ([], "not run"),
        ([(0.10, 0.02), (0.06, 0.03)], "met"),
        ([(0.10, 0.02), (0.05, 0.03)], "met in the mean"),
        ([(0.01, 0.02), (-0.01, 0.02)], "level"),
        ([(0.0, 0.02), (-0.03, 0.02)], "not met"),
    ],
)
def test_verdict(differences: list[tuple[float, float]], expected: str) -> None:
    assert verdict([Difference("x", value, se) for value, se in differences]) == expected


def _entry(strategy: str, n: int, tokens: float, correct: list[int]) -> dict[str, Any]:
    return {
        "strategy": strategy,
        "aggregation": "-" if strategy == "best_of_n/majority" else "min",
        "n": n,
        "policy_tokens": tokens,
        "accuracy": sum(correct) / len(correct),
        "correct": correct,
    }


def _write(folder: Path, name: str, content: Any) -> None:
    (folder / name).write_text(json.dumps(content))


def test_tree_search_is_compared_with_the_best_of_n_runs_at_or_above_its_tokens(
    tmp_path: Path,
) -> None:
    right, wrong = [1] * 8 + [0] * 2, [1] * 5 + [0] * 5
    table = [
        _entry("best_of_n/majority", 16, 1000, wrong),
        _entry("best_of_n/prm", 16, 1000, right),
        _entry("best_of_n/weighted", 16, 1000, wrong),
        _entry("best_of_n/weighted", 24, 1500, wrong),
        _entry("best_of_n/weighted", 32, 2000, right),
        _entry("best_of_n/weighted", 64, 4000, right),
        _entry("beam", 16, 1200, right),
    ]
    _write(tmp_path, "accuracy_vs_compute_longest.json", {**OF_SHIPPED, "table": table})
    rows = {row.target: row for row in targets.search_targets("longest", tmp_path)}
    beam = rows["beam@16 (longest)"]
    # best-of-16 spent fewer tokens: not a comparison; best-of-24 and -32 are, 64 is past them
    assert "best-of-24" in beam.measured and "best-of-32" in beam.measured
    assert "best-of-16" not in beam.measured and "best-of-64" not in beam.measured
    assert beam.verdict == "level"  # above best-of-24, level with best-of-32
    assert rows["DVTS@16 (longest)"].verdict == "not run"


def test_best_of_n_margin_is_ten_points_over_majority(tmp_path: Path) -> None:
    majority = [1] * 5 + [0] * 15
    table = [
        _entry("best_of_n/majority", 16, 1000, majority),
        _entry("best_of_n/prm", 16, 1000, [1] * 7 + [0] * 13),  # +0.10
        _entry("best_of_n/weighted", 16, 1000, [1] * 6 + [0] * 14),  # +0.05
    ]
    _write(tmp_path, "accuracy_vs_compute_test.json", {**OF_SHIPPED, "table": table})
    rows = {row.target: row for row in targets.search_targets("test", tmp_path)}
    assert rows["best-of-16 argmax (test)"].verdict == "met"
    assert rows["best-of-16 weighted (test)"].verdict == "not met"
    assert rows["MCTS (test)"].verdict == "not run"
    assert rows["lookahead (test)"].verdict == "not run"


def test_missing_files_say_which_command_makes_them(tmp_path: Path) -> None:
    board = targets.scoreboard(tmp_path)
    assert board and all(row.verdict == "not run" for row in board)
    assert all("no results file; run `" in row.measured for row in board)


def test_the_rebuild_row_applies_the_parity_check_to_make_prms_prm(tmp_path: Path) -> None:
    def processbench(rebuilt_f1: float) -> dict[str, Any]:
        return {
            "prms": [
                {"name": name, "subsets": [{"subset": "arith-validation-policy", "f1": f1}]}
                for name, f1 in (("shipped", 0.885), (targets.MAKE_PRM_NAME, rebuilt_f1))
            ]
        }

    def paired(shift: float) -> list[dict[str, Any]]:
        return [
            {"strategy": strategy, "n": 16, "aggregation": "min", "old": 0.55, "new": 0.55 + shift}
            | {"problems": 200, "seeds": 2}
            for strategy in ("best_of_n/prm", "best_of_n/weighted", "beam", "dvts")
        ]

    assert targets.rebuild_target(tmp_path).verdict == "not run"
    _write(tmp_path, targets.REBUILT_VALIDATION, processbench(0.879))
    missing = targets.rebuild_target(tmp_path)  # the paired search table is missing
    assert missing.verdict == "not run" and "bf16_more_rounds.sh" in missing.measured
    paired_file = targets.REBUILT_PAIRED
    (tmp_path / paired_file).parent.mkdir(parents=True)
    (tmp_path / targets.REBUILT_BASELINE).parent.mkdir(parents=True)
    _write(tmp_path, targets.REBUILT_BASELINE, OF_SHIPPED)  # "shipped" there: the PRM shipped
    _write(tmp_path, paired_file, paired(-0.013))  # 0.6 points and 0.013 below: within both
    row = targets.rebuild_target(tmp_path)
    assert row.verdict == "met"
    assert row.measured.startswith("step F1 87.9 vs 88.5; four-row mean 0.537 vs 0.550")
    assert "on test" not in row.measured  # no test file: nothing said of test
    on_test = {
        "prms": [
            {"name": name, "subsets": [{"subset": "arith-test-policy", "f1": f1}]}
            for name, f1 in (("shipped", 0.919), (targets.MAKE_PRM_NAME, 0.859))
        ]
    }
    _write(tmp_path, targets.REBUILT_TEST, on_test)
    row = targets.rebuild_target(tmp_path)
    assert row.verdict == "met"  # the verdict is validation's; test is reported beside it
    assert "on test (reported, not judged): step F1 85.9 vs 91.9" in row.measured
    _write(tmp_path, paired_file, paired(-0.02))  # the search mean falls too far
    assert targets.rebuild_target(tmp_path).verdict == "not met"
    _write(tmp_path, paired_file, paired(0.0))
    _write(tmp_path, targets.REBUILT_VALIDATION, processbench(0.855))  # F1 3 points below
    assert targets.rebuild_target(tmp_path).verdict == "not met"
    other = processbench(0.879)
    other["prms"][1]["name"] = "rebuilt"  # not the name make_prm_bf16.sh gives it
    _write(tmp_path, targets.REBUILT_VALIDATION, other)
    unreadable = targets.rebuild_target(tmp_path)
    assert unreadable.verdict == "not run" and "'round 20'" in unreadable.measured
    # the files' "shipped" PRM was another one than the PRM shipped now: they judge nothing
    _write(tmp_path, targets.REBUILT_VALIDATION, processbench(0.879))
    _write(tmp_path, targets.REBUILT_BASELINE, {"args": {"prm_sha256": "0123456789abcdef"}})
    other_shipped = targets.rebuild_target(tmp_path)
    assert other_shipped.verdict == "stale" and "was met" in other_shipped.measured


def test_f1_pipeline_and_speed_rows_read_their_files(tmp_path: Path) -> None:
    subsets = [
        {"subset": "arith-test-policy", "num_samples": 400, "f1": 0.84},
        {"subset": "arith-test-corrupt", "num_samples": 400, "f1": 0.45},
    ]
    _write(tmp_path, "prm_processbench.json", {"prm_sha256": SHIPPED, "subsets": subsets})
    f1 = targets.f1_target(tmp_path)
    assert f1.verdict == "not met" and "84.0" in f1.measured and "45.0" in f1.measured

    stages = [
        {"stage": "sample", "seconds": 600, "detail": "25600 solutions, 1 tokens"},
        {"stage": "label mc", "seconds": 3000, "detail": "25594 of 25600 solutions labelled"},
        {"stage": "label calculator", "seconds": 5, "detail": "25594 of 25600 solutions labelled"},
        {"stage": "label consensus", "seconds": 5, "detail": "20000 of 25600 solutions labelled"},
        {"stage": "train", "seconds": 2000, "detail": "..."},
    ]
    _write(tmp_path, "prm_pipeline_make20.json", stages)
    data, timed = targets.pipeline_targets(tmp_path)
    assert data.verdict == "met" and "20000" in data.measured
    assert timed.verdict == "not met" and timed.measured.startswith("94 minutes (5610 s")

    def row(setup: str, tokens: float, solutions: float, **extra: Any) -> dict[str, Any]:
        return {
            "setup": setup,
            "rollout_tokens_per_s": tokens,
            "solutions_per_s": solutions,
            **extra,
        }

    before = row("old", 1000, 4, commit="abc1234")
    shipped = row(targets.MAKE_PRM_MC_ROW, 3000, 40)
    _write(tmp_path, "mc_code_before.json", {"rows": [before, shipped]})
    _write(tmp_path, "mc_labelling_speed.json", {"rows": [row("a", 1000, 4), row("b", 5500, 20)]})
    speed = targets.speed_target(tmp_path)
    assert "3.0x rollout tokens/s, 10.0x solutions/s" in speed.measured
    assert "5.5x" in speed.measured  # the other table's, for information...
    assert speed.verdict == "not met"  # ...the verdict is against the labeller before only
    faster = row(targets.MAKE_PRM_MC_ROW, 5000, 40)
    _write(tmp_path, "mc_code_before.json", {"rows": [before, faster]})
    assert targets.speed_target(tmp_path).verdict == "met"
    # another row of the same run past 5x: it is the one the verdict reads, and it is named
    full = row("hf / arith-policy / full", 6000, 15)
    _write(tmp_path, "mc_code_before.json", {"rows": [before, shipped, full]})
    speed = targets.speed_target(tmp_path)
    assert speed.verdict == "met"
    assert "past the target in the same run: hf / arith-policy / full 6.0x" in speed.measured
    slower = row("hf / arith-policy / full", 2000, 5)
    _write(tmp_path, "mc_code_before.json", {"rows": [before, shipped, slower]})
    speed = targets.speed_target(tmp_path)
    assert speed.verdict == "not met" and "the run's fastest" not in speed.measured  # make prm's
    quicker = row("hf / arith-policy / full", 4000, 10)  # faster than make prm's, short of 5x
    _write(tmp_path, "mc_code_before.json", {"rows": [before, shipped, quicker]})
    speed = targets.speed_target(tmp_path)
    assert speed.verdict == "not met"
    assert "the run's fastest: hf / arith-policy / full 4.0x rollout tokens/s" in speed.measured


def test_rows_over_other_problems_are_not_paired_and_get_no_verdict(tmp_path: Path) -> None:
    table = [
        _entry("best_of_n/majority", 16, 1000, [1, 0] * 5),
        _entry("best_of_n/prm", 16, 1000, [1, 0] * 10),  # merged from a run twice the size
        _entry("best_of_n/weighted", 16, 1000, [1, 0] * 5),
    ]
    _write(tmp_path, "accuracy_vs_compute_test.json", {**OF_SHIPPED, "table": table})
    (row,) = targets.search_targets("test", tmp_path)
    assert row.verdict == "not paired" and "20 and 10" in row.measured


def _shipped(tmp_path: Path, weights: bytes) -> tuple[Path, str | None, Path]:
    """A PRM folder holding ``weights``, their digest, and an empty results folder."""
    shipped, results = tmp_path / "prm", tmp_path / "results"
    shipped.mkdir()
    results.mkdir()
    (shipped / "model.safetensors").write_bytes(weights)
    return shipped, targets.weights_digest(shipped), results


def test_a_table_of_other_prm_weights_than_the_shipped_ones_is_stale(tmp_path: Path) -> None:
    shipped, digest, results = _shipped(tmp_path, b"shipped weights")
    majority = [1] * 5 + [0] * 15
    table = [
        _entry("best_of_n/majority", 16, 1000, majority),
        _entry("best_of_n/prm", 16, 1000, [1] * 9 + [0] * 11),
        _entry("best_of_n/weighted", 16, 1000, [1] * 9 + [0] * 11),
    ]
    report = {"args": {"prm_sha256": digest}, "table": table}
    _write(results, "accuracy_vs_compute_test.json", report)
    subsets = [{"subset": "arith-test-policy", "num_samples": 400, "f1": 0.9}]
    _write(results, "prm_processbench.json", {"prm_sha256": digest, "subsets": subsets})
    rows = {row.target: row for row in targets.search_targets("test", results, shipped)}
    assert rows["best-of-16 argmax (test)"].verdict == "met"
    assert targets.f1_target(results, shipped).verdict == "met"
    # a new PRM shipped: the same files judge nothing, and say whose they are and what to rerun
    (shipped / "model.safetensors").write_bytes(b"new weights")
    rows = {row.target: row for row in targets.search_targets("test", results, shipped)}
    argmax = rows["best-of-16 argmax (test)"]
    assert argmax.verdict == "stale"
    new = targets.weights_digest(shipped)
    assert f"run with PRM weights {digest}, not the shipped {new}" in argmax.measured
    assert "was met" in argmax.measured and "ship_prm.sh" in argmax.measured
    assert all(row.verdict == "stale" for row in rows.values())
    f1 = targets.f1_target(results, shipped)
    assert f1.verdict == "stale" and "ship_prm.sh" in f1.measured


def test_make_prm_rebuilds_the_shipped_prm_byte_for_byte(tmp_path: Path) -> None:
    shipped, digest, results = _shipped(tmp_path, b"round 20")
    rows = [
        {"name": "make prm", "path": "runs/x/export", "from": "weights", "digest": digest},
        {"name": "chosen", "path": "t.json", "from": "recorded", "digest": digest},
    ]
    _write(results, targets.IDENTITY, {"rows": rows, "identical": True})
    row = targets.rebuild_target(results, shipped)
    assert row.verdict == "met" and row.source == targets.IDENTITY
    assert f"the shipped weights ({digest}), byte for byte" in row.measured
    # other weights shipped since: the identity no longer answers; the parity check does
    (shipped / "model.safetensors").write_bytes(b"round 22")
    assert targets.rebuild_target(results, shipped).verdict == "not run"
    (shipped / "model.safetensors").write_bytes(b"round 20")
    _write(results, targets.IDENTITY, {"rows": rows, "identical": False})
    assert targets.rebuild_target(results, shipped).source != targets.IDENTITY


def test_the_time_row_reads_make_prms_own_run_first(tmp_path: Path) -> None:
    def stages(seconds: int) -> list[dict[str, Any]]:
        return [{"stage": "train", "seconds": seconds, "detail": "..."}]

    _write(tmp_path, "prm_pipeline_make20.json", stages(4607))
    assert targets.pipeline_targets(tmp_path)[1].measured.startswith("77 minutes")
    _write(tmp_path, "prm_pipeline_make20_e2e.json", stages(4500))
    timed = targets.pipeline_targets(tmp_path)[1]
    assert timed.measured.startswith("75 minutes") and timed.source.endswith("_e2e.json")
