"""Sanity of the plumbing: with an informative PRM and an error-prone policy, PRM-guided
picks and searches beat majority voting (seeded fakes, so the numbers are fixed)."""

from __future__ import annotations

from search.aggregation import Aggregation
from search.envs.arith.fakes import FakeGenerator, FakeScorer
from search.envs.arith.world import make_split
from search.grading import answers_match
from search.strategies import StrategyConfig, StrategyName, build_strategy
from search.types import SearchResult


def _accuracy(results: list[SearchResult], rule: str) -> float:
    hits = [answers_match(r.predictions[rule], r.problem.answer) for r in results]
    return sum(hits) / len(hits)


def test_prm_guided_search_beats_majority_voting() -> None:
    problems = make_split("test", size=30)

    def run(name: StrategyName, scorer: FakeScorer) -> list[SearchResult]:
        config = StrategyConfig(name=name, n=8, beam_width=2)
        generator = FakeGenerator(seed=0, error_rate=0.5)  # ~1 in 8 solutions is right
        return build_strategy(config, Aggregation.min).run(problems, generator, scorer)

    best_of_n = run(StrategyName.best_of_n, FakeScorer(noise=0.05))
    beam = run(StrategyName.beam, FakeScorer(noise=0.05))
    dvts = run(StrategyName.dvts, FakeScorer(noise=0.05))
    particles = run(StrategyName.particle_filtering, FakeScorer(noise=0.05))
    majority = _accuracy(best_of_n, "majority")
    assert _accuracy(best_of_n, "prm") >= majority + 0.2
    assert _accuracy(beam, "prm") >= majority + 0.4
    assert _accuracy(dvts, "prm") >= majority + 0.4
    # Resampling by PRM weight leaves a population that mostly agrees on the right answer.
    assert _accuracy(particles, "majority") >= majority + 0.4
    # An uninformative PRM (same score for every step) gives best-of-N-prm no edge: it
    # picks the first candidate, which is right about as often as one sample.
    blind = run(StrategyName.best_of_n, FakeScorer(right_score=0.5, wrong_score=0.5))
    first = sum(answers_match(r.candidates[0].answer, r.problem.answer) for r in blind)
    assert _accuracy(blind, "prm") == first / len(blind) < _accuracy(best_of_n, "prm")
