"""Adaptive best-of-N: the Beta stopping rule, early stops on agreeing samples, N samples on
disagreeing ones, rounds batched across problems and charged to the problems in them."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pytest

from search.aggregation import Aggregation
from search.envs.arith.fakes import FakeGenerator, FakeScorer
from search.strategies import StrategyConfig, build_strategy
from search.strategies.adaptive import leader_probability, regularized_incomplete_beta
from search.types import (
    DEFAULT_SAMPLING,
    Continuation,
    FinishReason,
    Generation,
    Prefix,
    Problem,
    Sampling,
    SearchResult,
    Until,
)

EASY = Problem(id="easy", question="Agree?", answer="7")
HARD = Problem(id="hard", question="Disagree?", answer="7")


class VotingGenerator:
    """Whole solutions of one step: ``easy`` always answers 7; ``hard`` answers a number it
    has not given before. Records every call's problems and n."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], int, Until]] = []
        self.drawn = 0

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        self.calls.append(([p.problem.id for p in prefixes], n, until))
        out = []
        for prefix in prefixes:
            continuations = []
            for _ in range(n):
                self.drawn += 1
                answer = 7 if prefix.problem.id == "easy" else 100 + self.drawn
                step = f"The answer is \\boxed{{{answer}}}."
                continuations.append(Continuation(step, (step,), FinishReason.eos, 4))
            out.append(Generation(prompt_tokens=2, continuations=tuple(continuations)))
        return out


class ConstantScorer:
    def __init__(self, value: float) -> None:
        self.value = value

    def score(self, prefixes: Sequence[Prefix]) -> list[list[float]]:
        return [[self.value] * len(prefix.steps) for prefix in prefixes]


def _binomial_cdf(successes: int, trials: int) -> float:
    return sum(math.comb(trials, k) for k in range(successes + 1)) / 2**trials


def test_incomplete_beta_against_closed_forms() -> None:
    for x in (0.1, 0.5, 0.83):
        assert regularized_incomplete_beta(x, 3.5, 1.0) == pytest.approx(x**3.5, rel=1e-12)
        assert regularized_incomplete_beta(x, 1.0, 2.5) == pytest.approx(
            1 - (1 - x) ** 2.5, rel=1e-12
        )
        arcsine = 2 / math.pi * math.asin(math.sqrt(x))
        assert regularized_incomplete_beta(x, 0.5, 0.5) == pytest.approx(arcsine, rel=1e-10)
    assert regularized_incomplete_beta(0.0, 2.0, 3.0) == 0.0
    assert regularized_incomplete_beta(1.0, 2.0, 3.0) == 1.0
    with pytest.raises(ValueError, match="expected 0 <= x <= 1"):
        regularized_incomplete_beta(0.5, 0.0, 1.0)


def test_beta_criterion_for_whole_votes_is_a_binomial_tail() -> None:
    """P(p1 > p2 | v1, v2) = P(at most v1 heads in v1 + v2 + 1 fair flips)."""
    for v1, v2 in [(0, 0), (1, 0), (3, 0), (4, 0), (4, 1), (6, 1), (10, 3), (30, 25)]:
        expected = _binomial_cdf(v1, v1 + v2 + 1)
        assert leader_probability([v1, v2]) == pytest.approx(expected, rel=1e-10)
    # Only the two leaders count; no vote at all is a coin flip.
    assert leader_probability([4.0, 1.0, 1.0, 1.0]) == leader_probability([4.0, 1.0])
    assert leader_probability([]) == pytest.approx(0.5)
    # At C = 0.95: 3 agreeing samples are not enough, 4 are; 5 vs 1 is not, 6 vs 1 is.
    assert leader_probability([3]) < 0.95 <= leader_probability([4])
    assert leader_probability([5, 1]) < 0.95 <= leader_probability([6, 1])


def _run(
    config: StrategyConfig, problems: Sequence[Problem], scorer: ConstantScorer | None
) -> tuple[list[SearchResult], VotingGenerator]:
    generator = VotingGenerator()
    results = build_strategy(config, Aggregation.min).run(problems, generator, scorer)
    return results, generator


@pytest.mark.parametrize("select", ["majority", "weighted"])
def test_stops_early_when_samples_agree_and_runs_to_n_when_they_do_not(
    select: str, make_config: Callable[..., StrategyConfig]
) -> None:
    config = make_config("adaptive_best_of_n", n=16, samples_per_round=2, select=select)
    scorer = None if select == "majority" else ConstantScorer(0.9)
    (easy, hard), generator = _run(config, [EASY, HARD], scorer)
    # 4 agreeing votes settle it (1 - 2^-5 >= 0.95), weighted or not: 2 rounds of 2.
    assert len(easy.candidates) == 4 and easy.prediction == "7"
    assert len(hard.candidates) == 16  # every answer differs: never settled
    assert easy.usage.generate_calls == 2 and hard.usage.generate_calls == 8
    assert easy.usage.generated_tokens == 4 * 4 and hard.usage.generated_tokens == 16 * 4
    assert easy.usage.prompt_tokens == 2 * 2 and hard.usage.prompt_tokens == 8 * 2
    expected_score_calls = 0 if scorer is None else 2
    assert easy.usage.score_calls == expected_score_calls
    # One call per round for every open problem, whole solutions, n = samples_per_round.
    assert [ids for ids, _, _ in generator.calls] == [["easy", "hard"]] * 2 + [["hard"]] * 6
    assert all((n, until) == (2, Until.end) for _, n, until in generator.calls)


class SplitGenerator(VotingGenerator):
    """Every fourth sample of every problem answers 8, the others 7 (3 against 1)."""

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        self.calls.append(([p.problem.id for p in prefixes], n, until))
        out = []
        for _ in prefixes:
            continuations = []
            for _ in range(n):
                self.drawn += 1
                step = f"The answer is \\boxed{{{8 if self.drawn % 4 == 0 else 7}}}."
                continuations.append(Continuation(step, (step,), FinishReason.eos, 4))
            out.append(Generation(prompt_tokens=2, continuations=tuple(continuations)))
        return out


class AnswerScorer:
    """Scores a solution by its answer: ``table[answer]``."""

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table

    def score(self, prefixes: Sequence[Prefix]) -> list[list[float]]:
        return [[self.table[p.steps[-1].split("{")[1][0]]] * len(p.steps) for p in prefixes]


def test_weighted_vote_stops_sooner_when_the_prm_discounts_the_dissent(
    make_config: Callable[..., StrategyConfig],
) -> None:
    def spent(select: str, scorer: AnswerScorer | ConstantScorer) -> int:
        config = make_config("adaptive_best_of_n", n=32, samples_per_round=4, select=select)
        generator = SplitGenerator()
        (result,) = build_strategy(config, Aggregation.min).run([EASY], generator, scorer)
        assert result.prediction == "7"
        return len(result.candidates)

    # Majority: 3 vs 1 (0.81), 6 vs 2 (0.91), 9 vs 3 (0.95): 12 samples.
    assert spent("majority", ConstantScorer(0.9)) == 12
    # The same split weighted by scores that trust 7 and not 8: settled after 4.
    assert spent("weighted", AnswerScorer({"7": 0.9, "8": 0.05})) == 4
    # Weighted by equal scores of any scale is the majority vote: the PRM's scale alone
    # does not change how long a problem is sampled.
    assert spent("weighted", ConstantScorer(0.2)) == spent("weighted", ConstantScorer(1.0)) == 12
    assert spent("weighted", ConstantScorer(0.0)) == 12  # no score mass: counted as majority


def test_last_round_fills_up_to_n_and_confidence_one_never_stops(
    make_config: Callable[..., StrategyConfig],
) -> None:
    config = make_config("adaptive_best_of_n", n=6, samples_per_round=4, stop_confidence=1.0)
    (easy, hard), generator = _run(config, [EASY, HARD], None)
    assert len(easy.candidates) == len(hard.candidates) == 6
    assert [n for _, n, _ in generator.calls] == [4, 2]


def test_on_the_fake_policy_easy_problems_stop_early(
    problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    config = make_config("adaptive_best_of_n", n=16, samples_per_round=4)
    generator = FakeGenerator(seed=2, error_rate=0.0)
    scorer = FakeScorer()
    results = build_strategy(config, Aggregation.min).run(problems, generator, scorer)
    for result in results:
        assert len(result.candidates) == 4  # error-free: 4 identical answers settle it
        assert result.prediction == result.problem.answer
        assert set(result.predictions) == {"prm", "weighted", "majority"}
    assert generator.usage.calls == scorer.usage.calls == 1


def test_adaptive_refuses_the_prm_pick(make_config: Callable[..., StrategyConfig]) -> None:
    with pytest.raises(ValueError, match="select=majority or weighted.*fix: strategy.select="):
        make_config("adaptive_best_of_n", select="prm")
    with pytest.raises(ValueError, match="stop_confidence <= 1, got 0.4; fix"):
        make_config("adaptive_best_of_n", stop_confidence=0.4)
    with pytest.raises(ValueError, match="samples_per_round >= 1, got 0; fix"):
        make_config("adaptive_best_of_n", samples_per_round=0)
