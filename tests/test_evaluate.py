"""``python -m search.evaluate``: reading both line formats, bad lines, metrics on hand-built
lines, aggregation changing prm@k, agreement with the engine's own picks, the CLI end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from search.aggregation import Aggregation
from search.envs.arith.fakes import FakeGenerator, FakeScorer
from search.envs.arith.world import make_split
from search.evaluate import (
    BadLineError,
    CompletionSet,
    EvaluateConfig,
    InputFormat,
    evaluate_sets,
    read_completion_sets,
    run_evaluation,
)
from search.inputs import InputError
from search.run import run_search
from search.strategies import StrategyConfig, build_strategy


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


# Gold 2. Completions: right, wrong (3), right ("answer is"), wrong (3), right (####).
LINE_ONE = {
    "problem": "1 + 1?",
    "answer": "2",
    "completions": ["so \\boxed{2}", "\\boxed{3}", "The answer is 2.", "\\boxed{3}", "#### 2"],
    "scores": [[0.9, 0.8], 0.1, [0.5, 0.9, 0.7], 0.95, 0.3],
}
# Gold 1/2. Completions: 0.5 (right), 1/3, \frac12 (right, same class as 0.5), none, 2.
LINE_TWO = {
    "problem": "half?",
    "answer": "\\frac{1}{2}",
    "completions": ["\\boxed{0.5}", "\\boxed{1/3}", "\\boxed{\\frac12}", "no idea", "\\boxed{2}"],
    "scores": [0.2, 0.9, 0.3, 0.8, 0.1],
}


def at_k(report: dict[str, Any], k: int) -> dict[str, float]:
    return next(row for row in report["metrics"] if row["k"] == k)


def test_hand_built_lines(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "hand.jsonl", [LINE_ONE, LINE_TWO])
    loaded = read_completion_sets(path, aggregation="min")
    assert loaded.skipped == 0 and len(loaded.sets) == 2
    assert loaded.sets[0].scores == (0.8, 0.1, 0.5, 0.95, 0.3)  # min of the step lists
    report = evaluate_sets(loaded.sets, num_subsets=32, seed=0)
    assert [row["k"] for row in report["metrics"]] == [1, 2, 4, 5]
    assert [p["num_correct"] for p in report["per_problem"]] == [3, 2]
    assert at_k(report, 1)["pass@k"] == pytest.approx((3 / 5 + 2 / 5) / 2)
    assert at_k(report, 2)["pass@k"] == pytest.approx((1 - 1 / 10 + 1 - 3 / 10) / 2)
    full = at_k(report, 5)
    assert full["pass@k"] == 1.0
    assert full["majority@k"] == 1.0  # 2 beats 3 (3 to 2); 0.5 ~ \frac12 beats the singletons
    assert full["prm@k"] == 0.0  # best scores: 0.95 on "3", 0.9 on "1/3" (0.8 has no answer)
    assert full["weighted@k"] == 0.5  # 2: 1.6 > 3: 1.05; but 1/3 (0.9) > 1/2 (0.5)
    # Step scores given for two completions: [0.9, 0.8] ends on its minimum, the other not.
    assert report["diagnostics"]["min_on_final_step_share"] == 0.5
    assert report["diagnostics"]["num_with_step_scores"] == 2


def test_aggregation_changes_rm_at_k(tmp_path: Path) -> None:
    # The right completion dips early and ends high; the wrong one is flat at 0.6.
    row = {
        "problem": "p",
        "answer": "7",
        "completions": ["x\n\n\\boxed{7}", "y\n\n\\boxed{8}"],
        "scores": [[0.2, 0.9], [0.6, 0.6]],
    }
    path = write_jsonl(tmp_path / "agg.jsonl", [row])
    expected = {"min": 0.0, "last": 1.0, "prod": 0.0, "mean": 0.0}  # mean: 0.55 < 0.6
    for how, value in expected.items():
        sets = read_completion_sets(path, aggregation=how).sets
        report = evaluate_sets(sets)
        assert at_k(report, 2)["prm@k"] == value, how
        assert at_k(report, 2)["majority@k"] == 1.0  # tie 1-1: the earliest class, the right one


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "malformed JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"problem": "p", "completions": ["a"]}), "field 'answer'"),
        (json.dumps({"problem": "p", "answer": "1", "completions": []}), "non-empty list"),
        (
            json.dumps({"problem": "p", "answer": "1", "completions": ["a"], "scores": [0.1, 0.2]}),
            "list of 1 entries",
        ),
        (
            json.dumps({"problem": "p", "answer": "1", "completions": ["a"], "scores": [1.5]}),
            r"in \[0, 1\]",
        ),
    ],
)
def test_bad_line_names_file_and_line(tmp_path: Path, bad: str, message: str) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [LINE_ONE, "", bad, LINE_TWO])
    with pytest.raises(BadLineError, match=rf"bad.jsonl:3: bad line.*{message}.*on_bad_row=skip"):
        read_completion_sets(path)
    loaded = read_completion_sets(path, on_bad_row="skip")
    assert len(loaded.sets) == 2 and loaded.skipped == 1
    assert loaded.skipped_reasons[0].startswith(f"{path}:3:")


def test_scores_on_some_lines_only_is_an_error(tmp_path: Path) -> None:
    unscored = {k: v for k, v in LINE_TWO.items() if k != "scores"}
    path = write_jsonl(tmp_path / "mixed.jsonl", [LINE_ONE, unscored])
    with pytest.raises(ValueError, match="1 of 2 lines with scores"):
        read_completion_sets(path)
    report = evaluate_sets(read_completion_sets(write_jsonl(tmp_path / "u.jsonl", [unscored])).sets)
    assert set(report["metrics"][0]) == {"k", "pass@k", "majority@k"}
    assert report["diagnostics"]["min_on_final_step_share"] is None


@pytest.fixture(scope="module")
def engine_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A best-of-8 run of the engine on the fakes, with noisy step scores."""
    out = tmp_path_factory.mktemp("engine")
    strategy = build_strategy(StrategyConfig(n=8), Aggregation.min)
    metrics = run_search(
        make_split("test", size=12),
        FakeGenerator(seed=1, error_rate=0.3),
        FakeScorer(seed=1, noise=0.3),
        strategy,
        out,
        describe={},
    )
    return out / "results.jsonl", metrics


def test_engine_format_matches_the_engines_own_picks(
    engine_run: tuple[Path, dict[str, Any]],
) -> None:
    path, metrics = engine_run
    loaded = read_completion_sets(path, InputFormat.engine, Aggregation.min)
    assert len(loaded.sets) == 12 and all(len(s.completions) == 8 for s in loaded.sets)
    report = evaluate_sets(loaded.sets)
    full = at_k(report, 8)
    by_rule = metrics["accuracy_by_rule"]
    assert full["majority@k"] == pytest.approx(by_rule["majority"])
    assert full["prm@k"] == pytest.approx(by_rule["prm"])
    assert full["weighted@k"] == pytest.approx(by_rule["weighted"])
    assert full["pass@k"] == pytest.approx(metrics["pass_at_n"])
    assert at_k(report, 1)["pass@k"] == pytest.approx(metrics["mean_sample_accuracy"])


def test_cli_end_to_end(
    engine_run: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import search.evaluate as entry

    path, _ = engine_run
    output = tmp_path / "report.json"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "search.evaluate",
            f"path={path}",
            "aggregation=last",  # format=auto, the default, finds the engine's format
            f"output={output}",
            f"hydra.run.dir={tmp_path / 'hydra'}",
        ],
    )
    entry.main()
    printed = capsys.readouterr().out
    assert "| k | pass@k | majority@k | prm@k | weighted@k |" in printed
    assert "| 8 |" in printed and str(output) in printed
    report = json.loads(output.read_text())
    share = report["diagnostics"]["min_on_final_step_share"]
    assert f"share of solutions whose minimum step score is on the final step: {share:.3f}" in (
        printed
    )  # a share, not a score
    assert report["aggregation"] == "last" and report["format"] == "engine"
    assert report["num_problems"] == 12 and [r["k"] for r in report["metrics"]] == [1, 2, 4, 8]
    expected = evaluate_sets(read_completion_sets(path, "engine", "last").sets)
    assert report["metrics"] == expected["metrics"]


def test_default_output_is_next_to_the_input(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "hand.jsonl", [LINE_ONE])
    report, output = run_evaluation(EvaluateConfig(path=str(path), num_subsets=0))
    assert output == tmp_path / "hand.eval.json"
    assert json.loads(output.read_text())["metrics"] == report["metrics"]
    assert report["subsets"] == "first k"


def test_config_rejects_negative_subsets() -> None:
    with pytest.raises(ValueError, match="num_subsets >= 0"):
        EvaluateConfig(path="x", num_subsets=-1)


def test_completion_set_is_frozen() -> None:
    item = CompletionSet("p", "1", ("\\boxed{1}",))
    with pytest.raises(AttributeError):
        item.gold = "2"  # type: ignore[misc]


def test_auto_format_reads_each_file_in_its_own_format(
    engine_run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, _ = engine_run
    auto = read_completion_sets(path, InputFormat.auto, Aggregation.min)
    assert auto.input_format is InputFormat.engine
    assert auto.sets == read_completion_sets(path, InputFormat.engine, Aggregation.min).sets
    hand = write_jsonl(tmp_path / "hand.jsonl", [LINE_ONE])
    loaded = read_completion_sets(hand)  # auto is the default
    assert loaded.input_format is InputFormat.completions
    assert loaded.sets == read_completion_sets(hand, InputFormat.completions).sets
    report, _ = run_evaluation(EvaluateConfig(path=str(hand), num_subsets=0))
    assert report["format"] == "completions"


def test_an_engine_file_read_as_completions_says_format_engine(
    engine_run: tuple[Path, dict[str, Any]],
) -> None:
    path, _ = engine_run
    for skip in ("error", "skip"):  # skipping bad lines would skip every line: not offered
        with pytest.raises(ValueError, match="fix: pass format=engine"):
            read_completion_sets(path, InputFormat.completions, on_bad_row=skip)


def test_unfinished_completions_are_graded_wrong(tmp_path: Path) -> None:
    """An unfinished completion is wrong whatever number it holds (as in the engine), for
    pass@k and the sample accuracy as for every selection rule."""
    line = {
        "problem": "1 + 1?",
        "answer": "2",
        "completions": ["\\boxed{2}", "so far 2", "\\boxed{3}"],
        "finished": [False, False, True],
    }
    report = evaluate_sets(read_completion_sets(write_jsonl(tmp_path / "u.jsonl", [line])).sets)
    assert at_k(report, 3)["pass@k"] == 0.0 and at_k(report, 3)["majority@k"] == 0.0
    assert report["diagnostics"]["sample_accuracy"] == 0.0
    line["finished"] = [True, False, True]
    report = evaluate_sets(read_completion_sets(write_jsonl(tmp_path / "f.jsonl", [line])).sets)
    assert at_k(report, 3)["pass@k"] == 1.0
    assert report["diagnostics"]["sample_accuracy"] == pytest.approx(1 / 3)


def test_engine_format_matches_a_truncated_engine_run(tmp_path: Path) -> None:
    """Candidates cut at the token limit hold numbers a fallback would read as answers: the
    evaluation's pass@n and sample accuracy still equal the engine's own."""
    strategy = build_strategy(StrategyConfig(n=8), Aggregation.min)
    metrics = run_search(
        make_split("test", size=12),
        FakeGenerator(seed=1, error_rate=0.3, max_new_tokens=12),
        FakeScorer(seed=1, noise=0.3),
        strategy,
        tmp_path,
        describe={},
    )
    rows = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    unfinished = [c for row in rows for c in row["candidates"] if not c["finished"]]
    assert unfinished  # the limit cut some candidates
    report = evaluate_sets(read_completion_sets(tmp_path / "results.jsonl").sets)
    full = at_k(report, 8)
    assert full["pass@k"] == pytest.approx(metrics["pass_at_n"])
    assert report["diagnostics"]["sample_accuracy"] == pytest.approx(
        metrics["mean_sample_accuracy"]
    )
    assert full["majority@k"] == pytest.approx(metrics["accuracy_by_rule"]["majority"])


def test_first_k_mode_reads_pass_at_k_on_the_first_k(tmp_path: Path) -> None:
    line = {"problem": "1 + 1?", "answer": "2", "completions": ["\\boxed{3}", "\\boxed{2}"]}
    report, _ = run_evaluation(
        EvaluateConfig(path=str(write_jsonl(tmp_path / "k.jsonl", [line])), num_subsets=0)
    )
    assert at_k(report, 1)["pass@k"] == 0.0 == at_k(report, 1)["majority@k"]
    assert at_k(report, 2)["pass@k"] == 1.0


def test_a_nan_in_a_completions_line_is_refused_as_the_dataset_loader_refuses_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "completions.jsonl"
    path.write_text('{"problem": "q", "answer": NaN, "completions": ["\\\\boxed{1}"]}\n')
    with pytest.raises(BadLineError, match=r"completions\.jsonl:1: .*got NaN \(not a JSON"):
        read_completion_sets(path)


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        ([1.7], r"the score of completion 0 in \[0, 1\], got 1\.7 \(apply a sigmoid to logits\)"),
        ([[0.5, "x"]], r"the score of step 1 of completion 0 to be a number in \[0, 1\], got"),
    ],
)
def test_a_score_that_is_no_probability_names_the_completion(
    tmp_path: Path, scores: list[Any], message: str
) -> None:
    path = tmp_path / "completions.jsonl"
    row = {"problem": "q", "answer": "1", "completions": ["\\boxed{1}"], "scores": scores}
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(BadLineError, match=message):
        read_completion_sets(path)


def test_a_run_directory_or_a_json_document_is_refused_naming_the_file_to_pass(
    tmp_path: Path,
) -> None:
    (tmp_path / "results.jsonl").write_text("")
    with pytest.raises(InputError, match=rf"got the directory .*fix: path={tmp_path}/results"):
        read_completion_sets(tmp_path)
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"accuracy": 0.5}, indent=2))
    with pytest.raises(BadLineError, match=r"metrics\.json:1: .*spread over lines .*jq -c"):
        read_completion_sets(metrics)


def test_a_runs_skipped_problems_are_counted_not_graded_and_not_bad_lines(
    engine_run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """python -m search on_overflow=skip writes a record without candidates: format=auto
    still reads the file as the engine's (even when that record comes first), and the
    record is counted apart, not graded and not a bad line."""
    path, _ = engine_run
    skipped = {"id": "long-1", "question": "Q?", "answer": "1", "skipped": "prompt of 9 tokens"}
    lines = path.read_text().splitlines()
    mixed = write_jsonl(tmp_path / "results.jsonl", [skipped, *lines])
    report, _ = run_evaluation(EvaluateConfig(path=str(mixed)))
    assert report["format"] == "engine" and report["num_problems"] == 12
    assert report["not_graded_problems"] == 1 and report["skipped_rows"] == 0


def test_a_problem_twice_is_refused_naming_both_lines(
    engine_run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, _ = engine_run
    lines = path.read_text().splitlines()
    twice = write_jsonl(tmp_path / "cat.jsonl", lines + lines)
    expected = r"cat.jsonl:13: expected each problem once, got .* again \(first at line 1\)"
    with pytest.raises(InputError, match=expected + ".*fix: evaluate each run's file on its own"):
        read_completion_sets(twice)
    with pytest.raises(InputError, match="expected each problem once"):
        read_completion_sets(write_jsonl(tmp_path / "c.jsonl", [LINE_ONE, LINE_TWO, LINE_ONE]))


def test_reranking_a_tree_search_with_another_aggregation_says_what_it_picks_among(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from search.evaluate import source_run

    run = tmp_path / "run"
    run.mkdir()
    results = write_jsonl(run / "results.jsonl", [])
    (run / "fingerprint.json").write_text(
        json.dumps({"aggregation": "min", "strategy": {"name": "beam"}})
    )
    with caplog.at_level("WARNING", logger="search.evaluate"):
        assert source_run(results, Aggregation.min) == {"strategy": "beam", "aggregation": "min"}
        assert not caplog.text
        source_run(results, Aggregation.prod)
    assert "beam pruned these candidates by aggregation=min; re-ranked with prod" in caplog.text
    assert source_run(write_jsonl(tmp_path / "other.jsonl", []), Aggregation.prod) is None
