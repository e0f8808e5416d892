"""benchmarks/accuracy_vs_compute.py with the arithmetic world's fake policy and PRM: standard
errors over (problem, seed), best-of-N charged the PRM tokens of its own candidates, the
summary computed from the rows, the files per split, and README's blocks for them."""

from __future__ import annotations

import itertools
import json
import math
import re
import statistics
import sys
from pathlib import Path
from typing import Any

import pytest

from search.aggregation import Aggregation
from search.envs.arith.fakes import FakeGenerator, FakeScorer, count_words
from search.envs.arith.world import make_split
from search.selection import Select
from search.strategies.config import StrategyName
from search.types import Candidate, Prefix, Problem, SearchResult, Usage

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import accuracy_vs_compute as avc  # noqa: E402
import render_readme  # noqa: E402
from bench_cli import refused  # noqa: E402


def row(strategy: str, seed: int, correct: list[int], **extra: Any) -> dict[str, Any]:
    return {
        "strategy": strategy,
        "aggregation": "min",
        "n": 4,
        "lookahead": 0,
        "seed": seed,
        "candidates": 4.0,
        "policy_tokens": 100.0 + seed,
        "prm_tokens": 50.0,
        "prm_tokens_from": "engine",
        "correct": correct,
        "accuracy": statistics.mean(correct),
        **extra,
    }


def test_standard_error_is_over_problems_and_seeds_not_seed_to_seed() -> None:
    assert avc.standard_error([1, 0, 1, 0]) == pytest.approx(math.sqrt(1 / 3) / 2)
    assert avc.standard_error([1]) == 0.0
    # two seeds with the same accuracy: no seed-to-seed spread, but 4 coin flips' worth of SE
    (entry,) = avc.summarise([row("beam", 0, [1, 0]), row("beam", 1, [0, 1])])
    assert entry["accuracy"] == 0.5
    assert entry["accuracy_se"] == pytest.approx(math.sqrt(1 / 3) / 2)
    assert (entry["problems"], entry["seeds"]) == (2, 2)
    assert entry["correct"] == [1, 0, 0, 1]  # seed order
    assert entry["policy_tokens"] == 100.5 and entry["total_tokens"] == 150.5


def test_unknown_prm_tokens_stay_unknown() -> None:
    (entry,) = avc.summarise([row("beam", 0, [1], prm_tokens=None), row("beam", 1, [0])])
    assert entry["prm_tokens"] is None and entry["total_tokens"] is None
    assert "unknown" in avc.markdown_table([entry])


def test_paired_difference_and_its_error() -> None:
    difference, se = avc.paired_difference([1, 1, 0, 1], [0, 1, 0, 0])
    assert difference == 0.5
    assert se == pytest.approx(statistics.stdev([1, 0, 0, 1]) / 2)
    with pytest.raises(ValueError, match="same"):
        avc.paired_difference([1], [1, 0])


def test_best_of_n_budgets_are_powers_of_two_and_half_octaves() -> None:
    assert avc.best_of_n_budgets(64) == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]
    assert avc.best_of_n_budgets(4) == [1, 2, 3, 4]
    assert avc.best_of_n_budgets(20) == [1, 2, 3, 4, 6, 8, 12, 16, 20]
    assert avc.best_of_n_budgets(1) == [1]
    # each budget is within 1.5x of the one below it: a near-equal budget for any tree run
    ns = avc.best_of_n_budgets(64)
    assert all(b <= 1.5 * a for a, b in itertools.pairwise(ns[1:]))


def test_a_tree_run_is_read_against_the_smallest_richer_best_of_n_and_the_next() -> None:
    table = avc.summarise(
        [
            row("dvts", 0, [1, 1, 0, 0], n=16, policy_tokens=130.0),
            row("best_of_n/weighted", 0, [1, 0, 0, 0], n=16, policy_tokens=100.0),
            row("best_of_n/weighted", 0, [1, 1, 0, 0], n=24, policy_tokens=145.0),
            row("best_of_n/weighted", 0, [1, 1, 1, 0], n=32, policy_tokens=190.0),
        ]
    )
    text = avc.summary(table, 16, "min", 0)
    assert "best-of-24 weighted (the smallest N with at least its policy tokens) 0.500" in text
    assert "dvts − best-of-24: difference +0.000" in text
    assert "best-of-32 weighted (the next N up) 0.750" in text
    assert "dvts − best-of-32: difference -0.250" in text


def fake_sweep(problems: list[Problem], seed: int, lookahead: int = 1) -> list[dict[str, Any]]:
    runs = avc.search_runs(
        ["beam", "dvts", "mcts", "adaptive_best_of_n"], [2, 4], [Aggregation.min], lookahead
    )
    return avc.sweep(
        problems,
        FakeGenerator(seed=seed, error_rate=0.3),
        FakeScorer(seed=seed, noise=0.2),
        seed,
        max_n=4,
        runs=runs,
        aggregations=[Aggregation.min],
        beam_width=2,
    )


def test_best_of_n_is_charged_the_prm_tokens_of_its_own_candidates() -> None:
    problems = make_split("test", size=3)
    recording = avc.RecordingScorer(FakeScorer(seed=0))
    from search.strategies import build_strategy
    from search.strategies.config import StrategyConfig

    config = StrategyConfig(name=StrategyName.best_of_n, n=4)
    results = build_strategy(config, Aggregation.min).run(
        problems, FakeGenerator(seed=0, error_rate=0.3), recording
    )
    for result in results:
        # the fake PRM counts the question's and every step's words plus one tag per step
        own = [
            count_words(result.problem.question) + sum(count_words(s) + 1 for s in c.steps)
            for c in result.candidates
        ]
        assert avc.prm_tokens_of_first(result, 4, recording.tokens) == (
            float(result.usage.prm_tokens or 0),
            "per-candidate",
        )
        assert float(sum(own)) == result.usage.prm_tokens
        assert avc.prm_tokens_of_first(result, 1, recording.tokens) == (
            float(own[0]),
            "per-candidate",
        )
        # nothing recorded for it: a share of the run's tokens, and said so
        assert avc.prm_tokens_of_first(result, 1, {}) == (
            (result.usage.prm_tokens or 0) / 4,
            "proportional",
        )
    unknown = SearchResult(
        problem=problems[0],
        candidates=(Candidate(steps=("1 + 1 = 2",), finished=True, num_tokens=5),),
        prediction=None,
        usage=Usage(prm_tokens=None),
    )
    assert avc.prm_tokens_of_first(unknown, 1, {}) == (None, "unknown")


def test_sweep_rows_ceiling_and_summary() -> None:
    problems = make_split("test", size=6)
    rows = fake_sweep(problems, 0) + fake_sweep(problems, 1)
    table = avc.summarise(rows)
    labels = {e["strategy"] for e in table}
    assert labels >= {
        avc.PASS,
        "best_of_n/prm",
        "best_of_n/weighted",
        "best_of_n/majority",
        "beam",
        "beam/lookahead=1",
        "dvts",
        "mcts",
        "adaptive_best_of_n/majority",
        "adaptive_best_of_n/weighted",
    }
    for entry in table:
        assert (entry["problems"], entry["seeds"]) == (6, 2)
        assert len(entry["correct"]) == 12
        if entry["strategy"].startswith("best_of_n/"):
            ceiling = avc.find(table, avc.PASS, entry["n"], "min")
            assert ceiling is not None and entry["accuracy"] <= ceiling["accuracy"]
        if entry["strategy"] in ("best_of_n/prm", "best_of_n/weighted", avc.PASS):
            assert entry["prm_tokens_from"] == "per-candidate"
        if entry["strategy"].endswith("/majority"):  # a vote reads no PRM scores
            assert entry["aggregation"] == "-"
            assert entry["prm_tokens"] == 0
        else:
            assert entry["prm_tokens"] > 0
    prm = {e["n"]: e["prm_tokens"] for e in table if e["strategy"] == "best_of_n/prm"}
    assert sorted(prm) == [1, 2, 3, 4]
    assert prm[1] < prm[2] < prm[3] < prm[4]

    text = avc.summary(table, 4, "min", 1)
    assert "not run" not in text
    argmax = avc.find(table, "best_of_n/prm", 4, "min")
    majority = avc.find(table, "best_of_n/majority", 4, "min")
    assert argmax is not None and majority is not None
    difference, se = avc.paired_difference(argmax["correct"], majority["correct"])
    assert f"argmax − majority: difference {difference:+.3f} ± {se:.3f}" in text
    for line in ("- beam@4:", "- dvts@4:", "- mcts@2:", "- mcts@4:", "with lookahead=1"):
        assert line in text
    # beam against best-of-N at the smallest N that spends at least its policy tokens
    beam = avc.find(table, "beam", 4, "min")
    assert beam is not None
    richer = [
        e["n"]
        for e in table
        if e["strategy"] == "best_of_n/weighted" and e["policy_tokens"] >= beam["policy_tokens"]
    ]
    if richer:
        assert f"best-of-{min(richer)} weighted (the smallest N with at least" in text
        if len(richer) > 1:
            assert f"best-of-{sorted(richer)[1]} weighted (the next N up)" in text
    else:
        assert "no best-of-N run spent as many policy tokens" in text
    assert "best-of-8" in avc.summary(table, 8, "min", 1) and "not run" in avc.summary(
        table, 8, "min", 1
    )


def test_search_runs_every_budget_and_lookahead_where_asked() -> None:
    runs = avc.search_runs(["beam", "mcts"], [4, 8, 16, 32], [Aggregation.min], 2, [16])
    assert [(r.label, r.n) for r in runs if r.strategy is StrategyName.mcts] == [
        ("mcts", n) for n in (4, 8, 16, 32)
    ]
    assert [(r.label, r.n) for r in runs if r.lookahead] == [("beam/lookahead=2", 16)]
    assert len(avc.search_runs(["beam"], [4, 8], [Aggregation.min], 0)) == 2
    adaptive = avc.search_runs(["adaptive_best_of_n"], [4], [Aggregation.min], 0)
    assert [(r.label, r.uses_scorer) for r in adaptive] == [
        ("adaptive_best_of_n/majority", False),
        ("adaptive_best_of_n/weighted", True),
    ]


def test_beam_and_dvts_run_once_per_pruning_rule_and_are_compared() -> None:
    runs = avc.search_runs(
        ["beam", "dvts", "mcts"], [16], [Aggregation.min], 0, prunes=[Select.weighted, Select.prm]
    )
    assert [r.label for r in runs] == [
        "beam",
        "beam/prune=prm",
        "dvts",
        "dvts/prune=prm",
        "mcts",
    ]
    table = avc.summarise(
        [
            row("beam", 0, [1, 1, 1, 0], n=16, policy_tokens=10.0),
            row("beam/prune=prm", 0, [1, 0, 1, 0], n=16, policy_tokens=12.0),
        ]
    )
    text = avc.summary(table, 16, "min", 0)
    assert "- beam@16 pruned by the weighted vote of identical steps 0.750" in text
    assert "weighted − own score: difference +0.250 ± 0.250" in text


def longest_meta() -> dict[str, Any]:
    """The run metadata ``avc.write`` takes, for a run on the longest split."""
    return {
        "split": "longest",
        "max_n": 4,
        "summary_n": 4,
        "aggregation": "min",
        "lookahead": 0,
        "lookahead_sampling": avc.lookahead_sampling(),
        "wall_s": 1.0,
    }


def test_write_makes_files_per_split_and_readme_shows_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problems = make_split("longest", size=3)
    rows = fake_sweep(problems, 0, lookahead=0)
    meta = longest_meta()
    text = avc.write(tmp_path, rows, meta, {"problems": 3})
    for suffix in (".json", ".md", ".png"):
        assert (tmp_path / f"accuracy_vs_compute_longest{suffix}").exists()
    report = json.loads((tmp_path / "accuracy_vs_compute_longest.json").read_text())
    assert report["split"] == "longest" and len(report["rows"]) == len(rows)
    assert "3 problems × 1 seeds" in text and "| strategy |" in text
    assert "greedy (strategy.lookahead_temperature=0.0)" in text
    assert "beam with lookahead against none: not run" in text

    monkeypatch.setattr(render_readme, "RESULTS", tmp_path)
    rendered = render_readme.render()
    assert "accuracy ± SE" in rendered
    assert "(benchmarks/results/accuracy_vs_compute_longest.png)" in rendered
    assert "### Accuracy versus compute: test split" in rendered  # not run here: said so
    test_block = rendered.split("### Accuracy versus compute: test split")[1].split("###")[0]
    assert "_Not run yet._" in test_block


def test_a_table_of_another_prm_names_it_and_the_merge_keeps_it(tmp_path: Path) -> None:
    problems = make_split("longest", size=3)
    rows, meta = fake_sweep(problems, 0, lookahead=0), longest_meta()
    shipped = avc.write(tmp_path, rows, meta, {"problems": 3, "prm": avc.SHIPPED_PRM})
    assert "PRM `" not in shipped  # the shipped PRM's tables read as they always did
    other = tmp_path / "other"
    other.mkdir()
    text = avc.write(other, rows, meta, {"problems": 3, "prm": "runs/new/export"})
    assert text.startswith("PRM `runs/new/export`, not the shipped one. Arithmetic `longest`")
    merged = avc.merge([other / "accuracy_vs_compute_longest.json"], tmp_path / "merged")
    assert merged.startswith("PRM `runs/new/export`, not the shipped one.")


def test_recording_scorer_passes_scores_through() -> None:
    problem = make_split("test", size=1)[0]
    inner = FakeScorer(seed=0)
    prefixes = [Prefix(problem, problem.gold_steps), Prefix(problem, problem.gold_steps[:1])]
    recording = avc.RecordingScorer(inner)
    assert recording.score(prefixes) == inner.score(prefixes)
    assert set(recording.tokens) == {(problem.id, p.steps) for p in prefixes}


def test_tree_search_is_also_compared_with_best_of_n_at_its_policy_budget() -> None:
    def entry(strategy: str, n: int, policy: float) -> dict[str, Any]:
        return row(strategy, 0, [1, 0, 1, 1], n=n, policy_tokens=policy)

    bon = [
        entry(name, n, 100.0 * n)
        for n in (4, 8)
        for name in ("best_of_n/prm", "best_of_n/weighted", "best_of_n/majority")
    ]
    table = avc.summarise([*bon, entry("beam", 4, 650.0), entry("dvts", 4, 900.0)])
    text = avc.summary(table, 4, "min", 0)
    assert "- beam@4: 0.750 ± 0.250 at 650 policy" in text
    assert "best-of-8 weighted (the smallest N with at least its policy tokens)" in text
    dvts = next(line for line in text.splitlines() if line.startswith("- dvts@4"))
    assert "no best-of-N run spent as many policy tokens" in dvts


def test_merge_keeps_repeated_rows_once_and_recomputes_the_tables(tmp_path: Path) -> None:
    problems = make_split("longest", size=3)
    meta = longest_meta()
    seed0, seed1 = fake_sweep(problems, 0, lookahead=0), fake_sweep(problems, 1, lookahead=0)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    avc.write(tmp_path / "a", seed0, meta, {"problems": 3, "seeds": [0]})
    avc.write(tmp_path / "b", seed0 + seed1, meta, {"problems": 3, "seeds": [0, 1]})  # 0 in both
    text = avc.merge(
        [tmp_path / name / "accuracy_vs_compute_longest.json" for name in ("a", "b")],
        tmp_path / "merged",
    )
    merged = json.loads((tmp_path / "merged" / "accuracy_vs_compute_longest.json").read_text())
    assert len(merged["rows"]) == len(seed0) + len(seed1)  # seed 0's rows kept once
    assert {entry["seeds"] for entry in merged["table"]} == {2}
    assert "3 problems × 2 seeds" in text and merged["wall_s"] == 2.0
    assert merged["args"]["seeds"] == [0, 1]  # what the union ran, not the first file's


def test_a_merge_is_a_table_of_its_largest_best_of_n_run(tmp_path: Path) -> None:
    """A piece that ran best-of-1 only (tree strategies beside a run of best-of-4) listed
    first: the merged table reads best-of-N off the run of 4, its caption and args say so."""
    problems = make_split("longest", size=3)
    rows = fake_sweep(problems, 0, lookahead=0)
    small, large = tmp_path / "small", tmp_path / "large"
    for path in (small, large):
        path.mkdir()
    ones = [
        row
        for row in rows
        if not row["strategy"].startswith(("best_of_n", "pass")) or row["n"] == 1
    ]
    avc.write(small, ones, {**longest_meta(), "max_n": 1}, {"problems": 2, "max_n": 1})
    avc.write(large, rows, longest_meta(), {"problems": 3, "max_n": 4})
    files = [path / "accuracy_vs_compute_longest.json" for path in (small, large)]
    text = avc.merge(files, tmp_path / "merged")
    merged = json.loads((tmp_path / "merged" / "accuracy_vs_compute_longest.json").read_text())
    assert merged["max_n"] == 4 and merged["args"]["max_n"] == 4
    assert merged["args"]["problems"] == 3
    assert "first N of 4 samples" in text


def test_merge_keeps_the_lookahead_summary_whichever_file_comes_first(tmp_path: Path) -> None:
    """A file without lookahead rows (e.g. one strategy rerun) listed first must not drop the
    lookahead summary line of a file that has them; two lookaheads are refused."""
    problems = make_split("longest", size=3)
    plain, ahead = tmp_path / "plain", tmp_path / "ahead"
    for path in (plain, ahead):
        path.mkdir()
    avc.write(plain, fake_sweep(problems, 0, lookahead=0), longest_meta(), {"problems": 3})
    avc.write(
        ahead,
        fake_sweep(problems, 0, lookahead=1),
        {**longest_meta(), "lookahead": 1},
        {"problems": 3, "lookahead": 1},
    )
    files = [path / "accuracy_vs_compute_longest.json" for path in (plain, ahead)]
    text = avc.merge(files, tmp_path / "merged")
    assert "with lookahead=1:" in text and "beam with lookahead against none" not in text
    two = tmp_path / "two"
    two.mkdir()
    avc.write(
        two,
        fake_sweep(problems, 1, lookahead=2),
        {**longest_meta(), "lookahead": 2},
        {"problems": 3, "lookahead": 2},
    )
    with pytest.raises(ValueError, match=r"one lookahead, got \[1, 2\]"):
        avc.merge([*files, two / "accuracy_vs_compute_longest.json"], tmp_path / "merged2")


def test_merge_refuses_a_repeated_row_with_other_grades_unless_told(tmp_path: Path) -> None:
    """A rerun of one strategy merged with the table it reran: its rows replace the old ones
    only with ``replace`` and only listed first; the provenance keeps every run file."""
    problems = make_split("longest", size=3)
    rows = fake_sweep(problems, 0, lookahead=0)
    changed = [
        dict(r, correct=[1 - c for c in r["correct"]]) if r["strategy"] == "dvts" else r
        for r in rows
    ]
    for name, table in (("old", rows), ("rerun", changed)):
        (tmp_path / name).mkdir()
        avc.write(tmp_path / name, table, longest_meta(), {"problems": 3})
    old, rerun = (tmp_path / n / "accuracy_vs_compute_longest.json" for n in ("old", "rerun"))
    with pytest.raises(ValueError, match=r"same grades, got 2 that differ \(dvts min n=2"):
        avc.merge([rerun, old], tmp_path / "merged")
    avc.merge([rerun, old], tmp_path / "merged", replace=True)
    merged = json.loads((tmp_path / "merged" / "accuracy_vs_compute_longest.json").read_text())
    dvts = [r for r in merged["rows"] if r["strategy"] == "dvts"]
    assert dvts and all(r in changed for r in dvts)  # the rerun's rows, listed first
    assert merged["args"]["merged"] == [str(rerun), str(old)]
    # merging into a merge keeps the run files behind it, not the merged file's own name
    again = tmp_path / "merged" / "accuracy_vs_compute_longest.json"
    avc.merge([again], tmp_path / "again")
    again_args = json.loads((tmp_path / "again" / "accuracy_vs_compute_longest.json").read_text())
    assert again_args["args"]["merged"] == [str(rerun), str(old)]


def test_a_row_over_fewer_problems_agrees_when_its_grades_are_the_first_ones(
    tmp_path: Path,
) -> None:
    """A run on the split's first 2 problems (its size-2 split) beside one on 3: a shared row
    whose grades are the first ones of the longer row merges into the longer row; one whose
    grades are not is refused as differing."""
    problems = make_split("longest", size=3)
    rows = fake_sweep(problems, 0, lookahead=0)
    prefix = [dict(r, correct=r["correct"][:2]) for r in rows]
    for name, table, size in (("short", prefix, 2), ("long", rows, 3)):
        (tmp_path / name).mkdir()
        avc.write(tmp_path / name, table, longest_meta(), {"problems": size})
    short, long = (tmp_path / n / "accuracy_vs_compute_longest.json" for n in ("short", "long"))
    for order in ([short, long], [long, short]):  # whichever comes first
        avc.merge(order, tmp_path / "merged")
        merged = json.loads((tmp_path / "merged" / "accuracy_vs_compute_longest.json").read_text())
        assert sorted(len(r["correct"]) for r in merged["rows"]) == [3] * len(rows)
    flipped = [dict(r, correct=[1 - r["correct"][0], r["correct"][1]]) for r in rows]
    (tmp_path / "flipped").mkdir()
    avc.write(tmp_path / "flipped", flipped[:1], longest_meta(), {"problems": 2})
    wrong = tmp_path / "flipped" / "accuracy_vs_compute_longest.json"
    with pytest.raises(ValueError, match="same grades, got 1 that differ"):
        avc.merge([wrong, long], tmp_path / "refused")


def test_merge_refuses_runs_of_another_prm(tmp_path: Path) -> None:
    problems = make_split("longest", size=3)
    meta = longest_meta()
    for name, prm in (("a", avc.SHIPPED_PRM), ("b", "runs/new/export")):
        (tmp_path / name).mkdir()
        rows = fake_sweep(problems, 0 if name == "a" else 1, lookahead=0)
        avc.write(tmp_path / name, rows, meta, {"problems": 3, "prm": prm})
    with pytest.raises(ValueError, match="expected results of one prm.*fix: merge"):
        avc.merge(
            [tmp_path / name / "accuracy_vs_compute_longest.json" for name in ("a", "b")],
            tmp_path / "merged",
        )
    assert not (tmp_path / "merged").exists()  # nothing written


def test_merge_tells_models_by_their_weights_where_files_recorded_them(tmp_path: Path) -> None:
    prm = tmp_path / "prm"
    prm.mkdir()
    (prm / "model.safetensors").write_bytes(b"weights one")
    first = avc.weights_digest(str(prm))
    assert first is not None and len(first) == 16
    assert avc.weights_digest(str(tmp_path / "absent")) is None  # a hub name: no digest
    problems = make_split("longest", size=3)

    def result(name: str, seed: int, args: dict[str, Any]) -> Path:
        (tmp_path / name).mkdir()
        rows = fake_sweep(problems, seed, lookahead=0)
        avc.write(tmp_path / name, rows, longest_meta(), {"problems": 3, **args})
        return tmp_path / name / "accuracy_vs_compute_longest.json"

    same = result("a", 0, {"prm": str(prm), "prm_sha256": first})
    (prm / "model.safetensors").write_bytes(b"weights two")  # a new PRM shipped at that path
    moved = result("b", 1, {"prm": str(prm), "prm_sha256": avc.weights_digest(str(prm))})
    with pytest.raises(ValueError, match="expected results of one prm"):
        avc.merge([same, moved], tmp_path / "merged")
    spelled = result("c", 1, {"prm": f"{tmp_path}/./prm", "prm_sha256": first})
    avc.merge([same, spelled], tmp_path / "merged")  # one PRM under two spellings
    assert "each run with the PRM" not in avc.paired_markdown(same, moved, [])
    assert first in avc.paired_markdown(same, moved, [])  # the weights tell them apart
    wide = result("d", 1, {"prm": str(prm), "prm_sha256": first, "beam_width": 8})
    with pytest.raises(ValueError, match="one beam width"):
        avc.merge([same, wide], tmp_path / "merged-wide")


def test_compare_names_rows_whose_grades_moved(tmp_path: Path) -> None:
    problems = make_split("longest", size=3)
    meta = longest_meta()
    old = fake_sweep(problems, 0, lookahead=0)
    moved = dict(old[-1], correct=[1 - c for c in old[-1]["correct"]])
    new = [*old[:-1], moved, *fake_sweep(problems, 1, lookahead=0)]  # seed 1: not in old
    for name, rows in (("old", old), ("new", new)):
        (tmp_path / name).mkdir()
        avc.write(tmp_path / name, rows, meta, {"problems": 3})
    paths = [tmp_path / name / "accuracy_vs_compute_longest.json" for name in ("old", "new")]
    text = avc.compare(*paths)
    lines = text.splitlines()
    assert len(lines) == len(old) + 1  # seed 1's rows are in one file only
    assert sum("same grades" in line for line in lines[:-1]) == len(old) - 1
    assert "3 problems differ" in lines[len(old) - 1]
    assert lines[-1] == f"{len(old) - 1} of {len(old)} rows in common have the same grades"
    block = avc.recheck_markdown(*paths, avc.row_checks(*paths))
    assert block.count("\n- ") == 1 and "3 problems differ" in block  # only the moved row
    assert block.count("seed=0") == len(old) + 1  # listed once more among the rows compared
    other = dict(meta, split="test")
    (tmp_path / "test").mkdir()
    avc.write(tmp_path / "test", old, other, {"problems": 3})
    with pytest.raises(ValueError, match="one split"):
        avc.compare(paths[0], tmp_path / "test" / "accuracy_vs_compute_test.json")


def test_paired_compares_the_same_runs_of_two_files_over_common_seeds(tmp_path: Path) -> None:
    def report(name: str, rows: list[dict[str, Any]], prm: str) -> Path:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"split": "test", "args": {"prm": prm}, "rows": rows}))
        return path

    old = report(
        "old",
        [row("beam", 0, [1, 0, 0, 1]), row("beam", 1, [0, 0, 1, 1]), row("dvts", 0, [1, 1, 1, 1])],
        avc.SHIPPED_PRM,
    )
    new = report(
        "new",
        [row("beam", 0, [1, 1, 0, 1]), row("beam", 1, [1, 1, 1, 1]), row("mcts", 0, [0, 0, 0, 0])],
        "runs/new/export",
    )
    (entry,) = avc.paired_entries(old, new)  # dvts and mcts are in one file only
    problems = make_split("longest", size=3)
    sweep = [r for r in fake_sweep(problems, 0) if r["lookahead"]]
    assert sweep and {
        e["strategy"]
        for e in avc.paired_entries(
            report("ahead", sweep, avc.SHIPPED_PRM), report("ahead2", sweep, avc.SHIPPED_PRM)
        )
    } == {"beam/lookahead=1"}  # named once, as in the tables
    assert (entry["strategy"], entry["n"], entry["problems"], entry["seeds"]) == ("beam", 4, 4, 2)
    assert (entry["old"], entry["new"]) == (0.5, 0.875)
    differences = [0, 1, 0, 0, 1, 1, 0, 0]
    assert entry["difference"] == pytest.approx(0.375)
    assert entry["standard_error"] == pytest.approx(
        statistics.stdev(differences) / math.sqrt(len(differences))
    )
    text = avc.paired_markdown(old, new, [entry])
    assert "(PRM `checkpoints/arith-prm`)" in text and "(PRM `runs/new/export`)" in text
    assert "| beam | min | 4 | 4 × 2 | 0.500 | 0.875 | +0.375 ± 0.183 |" in text

    votes = report("votes", [row("best_of_n/majority", 0, [1, 0, 0, 1])], avc.SHIPPED_PRM)
    moved = report("moved", [row("best_of_n/majority", 0, [1, 1, 0, 1])], "runs/new/export")
    with pytest.raises(ValueError, match="reads no PRM score.*same policy, problems and seeds"):
        avc.paired_entries(votes, moved)  # a majority vote that moved: not the same samples
    seed_two = report("seed_two", [row("beam", 2, [1, 1, 1, 1])], "x")
    with pytest.raises(ValueError, match="same budgets and seeds"):
        avc.paired_entries(old, seed_two)
    other_split = tmp_path / "longest.json"
    other_split.write_text(json.dumps({"split": "longest", "args": {}, "rows": []}))
    with pytest.raises(ValueError, match="same split"):
        avc.paired_entries(old, other_split)


def test_require_prm_refuses_a_table_of_other_weights(tmp_path: Path) -> None:
    prm = tmp_path / "prm"
    prm.mkdir()
    (prm / "model.safetensors").write_bytes(b"weights one")
    table = tmp_path / "table.json"
    table.write_text(json.dumps({"args": {"prm_sha256": avc.weights_digest(str(prm))}}))
    avc.require_prm(table, str(prm))  # run with these weights: accepted
    (prm / "model.safetensors").write_bytes(b"weights two")  # another PRM shipped since
    with pytest.raises(ValueError, match=r"expected .*table.json run with the PRM.*fix: rerun"):
        avc.require_prm(table, str(prm))
    table.write_text(json.dumps({"args": {}}))  # a file from before digests were recorded
    with pytest.raises(ValueError, match="got PRM weights None"):
        avc.require_prm(table, str(prm))
    with pytest.raises(ValueError, match="expected a local PRM directory with weights at"):
        avc.require_prm(table, str(tmp_path / "absent"))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--problems", "0"], r"expected --problems >= 1, got 0"),
        (["--seeds", "0", "0"], r"expected distinct --seeds, got \[0, 0\]"),
        (["--max-n", "0"], r"expected --max-n >= 1, got 0"),
        (["--search-ns", "4", "0"], r"expected --search-ns >= 1, got \[4, 0\]"),
        (["--splits", "train"], r"expected --splits among .*got 'train'"),
        (["--merge", "a.json", "--compare", "a", "b"], r"one of --paired, --compare and --merge"),
    ],
)
def test_bad_sweep_flags_are_refused_before_any_model_loads(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    assert re.search(
        message, refused(monkeypatch, capsys, avc, flags, "build_scorer", "build_policy")
    )
