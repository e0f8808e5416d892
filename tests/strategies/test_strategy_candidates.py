"""Every strategy returns exactly N candidates per problem, honestly marked and scored."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from search.aggregation import Aggregation, aggregate
from search.envs.arith.checker import ErrorKind, check_solution
from search.envs.arith.fakes import FakeGenerator, FakeScorer, count_words
from search.strategies import StrategyConfig, build_strategy
from search.types import Problem

TREE_STRATEGIES = ["beam", "dvts", "mcts", "particle_filtering"]
ALL_STRATEGIES = ["best_of_n", *TREE_STRATEGIES]
SIZES = [(2, 1), (4, 2), (6, 3), (8, 2), (8, 8)]  # (N, M)


@pytest.mark.parametrize("name", ALL_STRATEGIES)
@pytest.mark.parametrize(("n", "beam_width"), SIZES)
def test_exactly_n_candidates(
    name: str,
    n: int,
    beam_width: int,
    problems: list[Problem],
    make_config: Callable[..., StrategyConfig],
) -> None:
    config = make_config(name, n=n, beam_width=beam_width)
    results = build_strategy(config, Aggregation.min).run(
        problems, FakeGenerator(seed=n, error_rate=0.3), FakeScorer()
    )
    assert [r.problem for r in results] == problems
    for result in results:
        assert len(result.candidates) == n
        for candidate in result.candidates:
            assert candidate.correct is None  # the runner grades, not the strategy
            assert candidate.step_scores is not None
            assert len(candidate.step_scores) == len(candidate.steps)
            assert candidate.score == aggregate(candidate.step_scores, Aggregation.min)
            # The fakes count one token per word: a path's tokens are its steps' words.
            assert candidate.num_tokens == sum(count_words(s) for s in candidate.steps)
            if candidate.finished:
                assert candidate.steps[-1].startswith("The answer is \\boxed{")
                # The fake restates its running value: errors are in steps, not answers.
                check = check_solution(result.problem, candidate.steps)
                assert check.kind is not ErrorKind.wrong_answer
                assert candidate.answer == candidate.steps[-1].split("{")[1].split("}")[0]


@pytest.mark.parametrize("name", TREE_STRATEGIES)
def test_depth_limit_leaves_candidates_unfinished(
    name: str, problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    """Chains of 2+ operations need 3+ steps; with max_steps=2 nothing may pass as done."""
    config = make_config(name, max_steps=2, n=4, beam_width=2)
    results = build_strategy(config, Aggregation.last).run(
        problems, FakeGenerator(error_rate=0.0), FakeScorer()
    )
    for result in results:
        assert len(result.candidates) == 4
        assert not any(c.finished for c in result.candidates)
        assert all(len(c.steps) <= 2 for c in result.candidates)


@pytest.mark.parametrize("name", ALL_STRATEGIES)
def test_token_limit_leaves_candidates_unfinished(
    name: str, problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    """A generator cut by its token limit (FinishReason.length) never yields a finished one."""
    config = make_config(name, n=4, beam_width=2)
    results = build_strategy(config, Aggregation.min).run(
        problems, FakeGenerator(error_rate=0.0, max_new_tokens=3), FakeScorer()
    )
    for result in results:
        assert len(result.candidates) == 4
        assert not any(c.finished for c in result.candidates)


@pytest.mark.parametrize("name", ALL_STRATEGIES)
def test_error_free_policy_finds_the_gold_answer(
    name: str, problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    config = make_config(name, num_simulations=16)
    results = build_strategy(config, Aggregation.prod).run(
        problems, FakeGenerator(error_rate=0.0), FakeScorer()
    )
    for result in results:
        assert result.prediction == result.problem.answer
        assert result.candidates[0].finished
        assert result.candidates[0].steps == result.problem.gold_steps


def test_best_of_n_without_scorer_votes(
    problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    results = build_strategy(make_config("best_of_n", n=6), Aggregation.min).run(
        problems, FakeGenerator(seed=5, error_rate=0.3), None
    )
    for result in results:
        assert set(result.predictions) == {"majority"}
        assert result.prediction == result.predictions["majority"]
        assert all(c.score is None and c.step_scores is None for c in result.candidates)
        assert result.usage.prm_tokens == 0 and result.usage.score_calls == 0


def test_no_problems_no_calls(make_config: Callable[..., StrategyConfig]) -> None:
    for name in ALL_STRATEGIES:
        generator = FakeGenerator()
        assert (
            build_strategy(make_config(name), Aggregation.min).run([], generator, FakeScorer())
            == []
        )
        assert generator.usage.calls == 0


@pytest.mark.parametrize("name", TREE_STRATEGIES)
def test_tree_strategies_refuse_to_run_without_scorer(
    name: str, problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    with pytest.raises(ValueError, match="fix: choose scorer="):
        build_strategy(make_config(name), Aggregation.min).run(problems, FakeGenerator(), None)
