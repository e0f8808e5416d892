"""The engine loop (``search.run.run_search``): resume, torn lines, killed runs, accounting.

Everything runs on the fake backends (``search.envs.arith.fakes``), so no model is needed; the fakes
keep their own usage counters, which the runner's metrics must match exactly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from search.aggregation import Aggregation
from search.envs.arith.fakes import FakeGenerator, FakeScorer
from search.envs.arith.world import make_split
from search.protocols import Generator, Scorer
from search.results import METRICS_FILE, RESULTS_FILE
from search.run import run_search
from search.strategies import StrategyConfig, StrategyName, build_strategy
from search.types import (
    DEFAULT_SAMPLING,
    Generation,
    Prefix,
    Problem,
    Sampling,
    SearchResult,
    Until,
)

BATCH = 4


class RecordingGenerator(FakeGenerator):
    """The fake policy, remembering which problems it was asked to continue."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.problem_ids: list[str] = []

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        self.problem_ids.extend(prefix.problem.id for prefix in prefixes)
        return super().generate(prefixes, n, until, sampling)


class ScoreOnly:
    """A user's PRM that implements only ``Scorer.score`` (no usage report)."""

    def __init__(self) -> None:
        self.inner = FakeScorer()

    def score(self, prefixes: Sequence[Prefix]) -> list[list[float]]:
        return self.inner.score(prefixes)


class FailsOnCall:
    """A strategy that works until its ``fail_on``-th batch, then raises (a killed run)."""

    def __init__(self, inner: Any, fail_on: int) -> None:
        self.inner = inner
        self.fail_on = fail_on
        self.calls = 0

    def run(
        self, problems: Sequence[Problem], generator: Generator, scorer: Scorer | None
    ) -> list[SearchResult]:
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("killed")
        return self.inner.run(problems, generator, scorer)


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    return make_split("test", size=14)


def strategy(name: str = "best_of_n") -> Any:
    config = StrategyConfig(
        name=StrategyName(name), n=4, beam_width=2, num_simulations=4, children_per_expansion=2
    )
    return build_strategy(config, Aggregation.min)


def read_records(directory: Path) -> list[dict[str, Any]]:
    lines = (directory / RESULTS_FILE).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def run(
    problems: Sequence[Problem],
    directory: Path,
    generator: Generator | None = None,
    scorer: Any = "fake",
    search: Any = None,
) -> dict[str, Any]:
    return run_search(
        problems,
        generator or RecordingGenerator(),
        FakeScorer() if scorer == "fake" else scorer,
        search or strategy(),
        directory,
        describe={"strategy": "test"},
        batch_problems=BATCH,
    )


def test_resume_skips_done_problems_and_covers_all(problems: list[Problem], tmp_path: Path) -> None:
    first = RecordingGenerator()
    metrics = run(problems[:10], tmp_path, first)
    assert first.usage.calls == 3  # batches of 4, 4, 2: one generate call each (best-of-N)
    assert metrics["generate_calls_this_invocation"] == 3
    assert metrics["num_problems"] == 10
    before = (tmp_path / RESULTS_FILE).read_bytes()

    second = RecordingGenerator()
    metrics = run(problems, tmp_path, second)
    assert second.usage.calls == 1  # only the 4 new problems, one batch
    assert metrics["generate_calls_this_invocation"] == 1
    assert set(second.problem_ids) == {p.id for p in problems[10:]}

    after = (tmp_path / RESULTS_FILE).read_bytes()
    assert after.startswith(before)  # the first run's lines are kept byte for byte
    records = read_records(tmp_path)
    assert [r["id"] for r in records] == [p.id for p in problems]
    assert metrics["num_problems"] == 14
    assert metrics["accuracy"] == pytest.approx(sum(r["correct"] for r in records) / 14)
    assert metrics["policy_tokens"] == sum(r["usage"]["policy_tokens"] for r in records)
    assert metrics["strategy"] == "test"
    assert json.loads((tmp_path / METRICS_FILE).read_text()) == metrics

    third = RecordingGenerator()
    metrics = run(problems, tmp_path, third)  # all done: nothing is generated
    assert third.usage.calls == 0
    assert metrics["num_problems"] == 14
    assert (tmp_path / RESULTS_FILE).read_bytes() == after


def test_metrics_cover_only_the_problems_asked_for(
    problems: list[Problem], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run(problems[:10], tmp_path)
    with caplog.at_level("WARNING", logger="search.run"):
        metrics = run(problems[:6], tmp_path)
    assert "covers the 6 problems asked for" in caplog.text
    assert "also holds 4 other problems" in caplog.text
    assert metrics["num_problems"] == 6
    records = read_records(tmp_path)[:6]
    assert metrics["accuracy"] == pytest.approx(sum(r["correct"] for r in records) / 6)


def test_torn_last_line_is_cut_and_rerun(problems: list[Problem], tmp_path: Path) -> None:
    run(problems[:10], tmp_path)
    reference = tmp_path / "reference"
    run(problems[:11], reference)
    torn = (reference / RESULTS_FILE).read_bytes().splitlines(keepends=True)[10]
    assert json.loads(torn)["id"] == problems[10].id
    with (tmp_path / RESULTS_FILE).open("ab") as handle:
        handle.write(torn[: len(torn) // 2])  # killed half way through the 11th line

    generator = RecordingGenerator()
    metrics = run(problems[:11], tmp_path, generator)
    assert set(generator.problem_ids) == {problems[10].id}
    records = read_records(tmp_path)  # every line parses: the torn half is gone
    assert [r["id"] for r in records] == [p.id for p in problems[:11]]
    assert metrics["num_problems"] == 11


def test_unreadable_middle_line_is_an_error_not_a_truncation(
    problems: list[Problem], tmp_path: Path
) -> None:
    run(problems[:4], tmp_path)
    path = tmp_path / RESULTS_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = b"{not json\n"
    path.write_bytes(b"".join(lines))
    with pytest.raises(ValueError, match=r"results.jsonl:2: .*malformed JSON"):
        run(problems[:4], tmp_path)
    assert path.read_bytes() == b"".join(lines)  # nothing was cut


def test_killed_run_keeps_finished_batches(problems: list[Problem], tmp_path: Path) -> None:
    failing = FailsOnCall(strategy(), fail_on=2)
    with pytest.raises(RuntimeError, match="killed"):
        run(problems[:10], tmp_path, search=failing)
    records = read_records(tmp_path)
    assert [r["id"] for r in records] == [p.id for p in problems[:BATCH]]
    assert not (tmp_path / METRICS_FILE).exists()

    generator = RecordingGenerator()
    metrics = run(problems[:10], tmp_path, generator)
    assert set(generator.problem_ids) == {p.id for p in problems[BATCH:10]}
    assert [r["id"] for r in read_records(tmp_path)] == [p.id for p in problems[:10]]
    assert metrics["num_problems"] == 10


@pytest.mark.parametrize("name", ["best_of_n", "beam", "mcts"])
def test_metrics_match_the_backends_own_counters(
    name: str, problems: list[Problem], tmp_path: Path
) -> None:
    generator = RecordingGenerator()
    scorer = FakeScorer(noise=0.05)
    metrics = run(problems[:6], tmp_path, generator, scorer, strategy(name))
    assert metrics["policy_prompt_tokens"] == generator.usage.tokens
    assert metrics["policy_generated_tokens"] == generator.usage.generated_tokens
    assert metrics["policy_tokens"] == generator.usage.tokens + generator.usage.generated_tokens
    assert metrics["prm_tokens"] == scorer.usage.tokens
    assert metrics["prm_new_tokens"] == scorer.usage.new_tokens
    assert metrics["generate_calls_this_invocation"] == generator.usage.calls
    assert metrics["score_calls_this_invocation"] == scorer.usage.calls
    assert generator.usage.calls >= 2  # two batches of problems
    assert scorer.usage.tokens > 0


def test_scorer_without_usage_gives_unknown_prm_tokens(
    problems: list[Problem], tmp_path: Path
) -> None:
    scorer = ScoreOnly()
    generator = RecordingGenerator()
    metrics = run(problems[:5], tmp_path, generator, scorer, strategy("beam"))
    on_disk = json.loads((tmp_path / METRICS_FILE).read_text())
    assert "prm_tokens" in on_disk
    assert on_disk["prm_tokens"] is None  # unknown, not 0
    assert on_disk["prm_new_tokens"] is None
    assert metrics["prm_tokens"] is None
    assert scorer.inner.usage.tokens > 0  # the PRM did run
    assert on_disk["score_calls_this_invocation"] == scorer.inner.usage.calls
    assert on_disk["policy_tokens"] == generator.usage.tokens + generator.usage.generated_tokens
    assert all(r["usage"]["prm_tokens"] is None for r in read_records(tmp_path))


def test_resumed_unknown_prm_tokens_stay_unknown(problems: list[Problem], tmp_path: Path) -> None:
    run(problems[:4], tmp_path, scorer=ScoreOnly())
    metrics = run(problems[:8], tmp_path)  # now with a scorer that reports usage
    assert metrics["prm_tokens"] is None


def test_no_scorer_spends_no_prm_tokens(problems: list[Problem], tmp_path: Path) -> None:
    metrics = run(problems[:4], tmp_path, scorer=None)
    assert metrics["prm_tokens"] == 0
    assert metrics["score_calls_this_invocation"] == 0
    assert set(metrics["accuracy_by_rule"]) == {"majority"}


def test_bad_arguments_fail_before_any_work(problems: list[Problem], tmp_path: Path) -> None:
    generator = RecordingGenerator()
    with pytest.raises(ValueError, match="at least one problem"):
        run([], tmp_path / "empty", generator)
    with pytest.raises(ValueError, match="unique problem ids"):
        run([problems[0], problems[0]], tmp_path / "dupes", generator)
    assert generator.usage.calls == 0


def _without_wall_time(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in record.items() if k != "wall_s"} for record in records]


@pytest.mark.parametrize(
    "name", ["best_of_n", "beam", "dvts", "mcts", "particle_filtering", "adaptive_best_of_n"]
)
def test_resumed_and_rebatched_runs_equal_the_uninterrupted_run(
    name: str, problems: list[Problem], tmp_path: Path
) -> None:
    """Same seed and config, same results: killed after its first batch and resumed by a
    fresh process (new generator and scorer objects), or run with other batch sizes, a run
    writes the same records as one uninterrupted run, record for record."""

    def search() -> Any:
        return strategy(name)

    def go(directory: Path, batch_problems: int, search_: Any = None) -> dict[str, Any]:
        return run_search(
            problems[:10],
            FakeGenerator(seed=3, error_rate=0.4),
            FakeScorer(noise=0.05),
            search_ or search(),
            directory,
            describe={},
            batch_problems=batch_problems,
        )

    whole = go(tmp_path / "whole", 64)
    reference = _without_wall_time(read_records(tmp_path / "whole"))

    with pytest.raises(RuntimeError, match="killed"):
        go(tmp_path / "resumed", BATCH, FailsOnCall(search(), fail_on=2))
    assert len(read_records(tmp_path / "resumed")) == BATCH
    resumed = go(tmp_path / "resumed", BATCH)
    assert _without_wall_time(read_records(tmp_path / "resumed")) == reference
    assert resumed["accuracy"] == whole["accuracy"]

    go(tmp_path / "one_by_one", 1)
    assert _without_wall_time(read_records(tmp_path / "one_by_one")) == reference


def test_hf_policy_predictions_do_not_depend_on_batching(
    tiny_policy_dir: Path, problems: list[Problem], tmp_path: Path
) -> None:
    """The transformers backend, sampling at temperature 1: batch_problems=4 with a small
    generator batch and batch_problems=64 with a large one give the same candidates."""
    from search.generators.hf import HFGenerator

    def go(directory: Path, batch_problems: int, batch_size: int) -> list[dict[str, Any]]:
        generator = HFGenerator(
            str(tiny_policy_dir), temperature=1.0, max_tokens=24, batch_size=batch_size, seed=5
        )
        run_search(
            problems[:8],
            generator,
            None,
            build_strategy(StrategyConfig(n=3, select=None), Aggregation.min),
            directory,
            describe={},
            batch_problems=batch_problems,
        )
        return _without_wall_time(read_records(directory))

    small = go(tmp_path / "small", 4, 5)
    large = go(tmp_path / "large", 64, 256)
    assert [r["predictions"] for r in small] == [r["predictions"] for r in large]
    assert small == large
    assert len({c["num_tokens"] for r in small for c in r["candidates"]}) > 1  # really sampled


def test_embedded_models_give_the_same_picks_whatever_the_batching(
    problems: list[Problem], tmp_path: Path
) -> None:
    """The shipped policy and PRM (transformers, temperature 1), beam search with
    batch_problems=2 against 8: the same samples, picks and token counts, and step scores
    equal to 1e-5 (not bit for bit: a prefix scored in another batch meets other padding
    and other cached prefixes; README, "Resuming and reproducibility")."""
    from prm.scoring import build_scorer
    from search.generators import build_generator

    def go(directory: Path, batch_problems: int) -> list[dict[str, Any]]:
        policy = build_generator("checkpoints/arith-policy", seed=3, max_tokens=160)
        scorer = build_scorer(
            "checkpoints/arith-prm",
            prompt_template="Question: {question}\nAnswer:\n",
            on_overflow="truncate_question",
        )
        run_search(
            problems[:8],
            policy,
            scorer,
            build_strategy(
                StrategyConfig(name=StrategyName.beam, n=4, beam_width=2), Aggregation.min
            ),
            directory,
            describe={},
            batch_problems=batch_problems,
        )
        return _without_wall_time(read_records(directory))

    def scores(records: list[dict[str, Any]]) -> list[float]:
        return [x for r in records for c in r["candidates"] for x in c["step_scores"]]

    def rest(records: list[dict[str, Any]]) -> list[Any]:
        return [
            (r["predictions"], [(c["steps"], c["num_tokens"]) for c in r["candidates"]])
            for r in records
        ]

    small, large = go(tmp_path / "small", 2), go(tmp_path / "large", 8)
    assert rest(small) == rest(large)
    assert scores(small) == pytest.approx(scores(large), abs=1e-5)
    assert len(set(scores(small))) > 8  # really scored


def test_an_unfinished_candidate_is_never_graded_right() -> None:
    """Neither the candidate (nor pass@N) nor any rule's pick is credited with an answer
    read off a solution the policy did not end, even when the answer is the gold one."""
    from search.run import grade
    from search.types import Candidate

    problem = Problem(id="p", question="Compute 2 + 2.", answer="4")
    cut = Candidate(steps=("2 + 2 = 4", "\\boxed{4}"), finished=False, num_tokens=9, answer="4")
    wrong = Candidate(steps=("\\boxed{5}",), finished=True, num_tokens=3, answer="5")
    result = SearchResult(
        problem, (cut, wrong), prediction="4", predictions={"mine": "4", "majority": "5"}
    )
    graded, correct = grade(result, timeout_s=5.0)
    assert [c.correct for c in graded.candidates] == [False, False]
    assert correct == {"mine": False, "majority": False, "selected": False}
    right = Candidate(steps=("\\boxed{4}",), finished=True, num_tokens=3, answer="4")
    graded, correct = grade(SearchResult(problem, (cut, right), prediction="4"), 5.0)
    assert [c.correct for c in graded.candidates] == [False, True]
    assert correct["selected"]


def test_a_prompt_longer_than_the_context_is_refused_or_recorded_as_skipped(
    tiny_policy_dir: Path, problems: list[Problem], tmp_path: Path
) -> None:
    """The tiny policy has 256 positions: a 400-word question is an error by default, and
    with on_overflow=skip it is recorded as skipped, not graded; a prompt that fits but
    leaves little room stops at the end of the context (finish reason length)."""
    from search.generators.base import PromptTooLong
    from search.generators.hf import HFGenerator
    from search.run import OnOverflow

    generator = HFGenerator(str(tiny_policy_dir), temperature=0.0, max_tokens=40)
    long = Problem(id="long", question="Compute " + " + ".join(["1"] * 200) + ".", answer="200")
    batch = [problems[0], long]
    search = build_strategy(StrategyConfig(n=2), Aggregation.min)
    with pytest.raises(PromptTooLong, match="problem long"):
        run_search(batch, generator, None, search, tmp_path / "error", describe={})
    assert not (tmp_path / "error" / RESULTS_FILE).exists()  # refused before any search
    metrics = run_search(
        batch, generator, None, search, tmp_path / "skip", describe={}, on_overflow=OnOverflow.skip
    )
    records = read_records(tmp_path / "skip")
    # set aside before the search, written first, then put in problem order at the end
    assert [r["id"] for r in records] == [problems[0].id, "long"]
    assert "context is 256" in records[1]["skipped"] and "correct" not in records[1]
    assert metrics["skipped_problems"] == 1 and metrics["num_problems"] == 1
    terms = 1
    while True:  # a question that leaves the policy 5 to 30 positions
        question = "Compute " + " + ".join(["1"] * terms) + "."
        tight = Problem(id="tight", question=question, answer="0")
        room = 256 - generator.prompt_length(Prefix(tight))
        if room <= 30:
            break
        terms += 1
    assert 0 < room <= 30
    (generation,) = generator.generate([Prefix(tight)], 1, Until.end)
    assert generation.continuations[0].num_tokens <= room
