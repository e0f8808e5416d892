"""Particle filtering: the weight mapping, resampling that follows the weights, one generate
and one score call per round, and a population that moves towards what the PRM favours."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence

import networkx as nx
import pytest

from search.aggregation import Aggregation
from search.envs.arith.checker import check_solution
from search.envs.arith.fakes import FakeGenerator, FakeScorer
from search.envs.arith.world import make_split
from search.guards import call_scorer
from search.strategies import StrategyConfig, build_strategy
from search.strategies.particle_filtering import (
    effective_sample_size,
    log_weight_increment,
    multinomial_resample,
    normalised_weights,
)
from search.types import (
    DEFAULT_SAMPLING,
    Continuation,
    FinishReason,
    Generation,
    Prefix,
    Problem,
    Sampling,
    ScoreOutput,
    SearchResult,
    Until,
)


class Recording:
    """A FakeGenerator and a FakeScorer that record the prefixes of every call."""

    def __init__(self, seed: int = 3, error_rate: float = 0.3) -> None:
        self.generator = FakeGenerator(seed=seed, error_rate=error_rate)
        self.scorer = FakeScorer(noise=0.05)
        self.generate_calls: list[tuple[list[Prefix], int, Until]] = []
        self.score_calls: list[list[Prefix]] = []

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        self.generate_calls.append((list(prefixes), n, until))
        return self.generator.generate(prefixes, n, until, sampling)

    def score(self, prefixes: Sequence[Prefix]) -> list[list[float]]:
        return self.score_with_usage(prefixes).scores

    def score_with_usage(self, prefixes: Sequence[Prefix]) -> ScoreOutput:
        self.score_calls.append(list(prefixes))
        return call_scorer(self.scorer, prefixes)


def _run(
    config: StrategyConfig, problems: Sequence[Problem], backends: Recording, seed: int = 0
) -> list[SearchResult]:
    strategy = build_strategy(config, Aggregation.min, seed=seed)
    return strategy.run(problems, backends, backends)


def _right_so_far(result: SearchResult) -> float:
    """Share of the candidates with no wrong step (per the arithmetic checker)."""
    right = [check_solution(result.problem, c.steps).first_error == -1 for c in result.candidates]
    return sum(right) / len(right)


def test_log_weight_is_the_logit_of_the_score_over_the_temperature() -> None:
    assert log_weight_increment(0.5, 1.0) == 0.0
    assert log_weight_increment(0.9, 1.0) == pytest.approx(math.log(9.0))
    assert log_weight_increment(0.9, 2.0) == pytest.approx(math.log(9.0) / 2)
    assert log_weight_increment(0.1, 1.0) == pytest.approx(-math.log(9.0))
    # Scores of exactly 0 or 1 are clipped, so no particle gets an infinite weight.
    assert log_weight_increment(1.0, 1.0) == pytest.approx(math.log((1 - 1e-6) / 1e-6))
    assert log_weight_increment(0.0, 1.0) == pytest.approx(-log_weight_increment(1.0, 1.0))
    # logit-softmax of two particles is the odds ratio: 0.9 vs 0.5 -> 9 : 1.
    weights = normalised_weights([log_weight_increment(s, 1.0) for s in (0.9, 0.5)])
    assert weights == pytest.approx([0.9, 0.1])


def test_effective_sample_size() -> None:
    assert effective_sample_size(normalised_weights([0.3] * 8)) == pytest.approx(8.0)
    assert effective_sample_size(normalised_weights([0.0, -800.0, -800.0])) == pytest.approx(1.0)
    assert effective_sample_size([0.5, 0.5, 0.0, 0.0]) == pytest.approx(2.0)


def test_multinomial_resampling_follows_the_weights() -> None:
    """40,000 seeded draws: every index's share is within 4 standard errors of its weight,
    and Pearson's chi-square stays under the 0.1% critical value of 3 degrees of freedom."""
    weights = [0.5, 0.3, 0.15, 0.05]
    draws = 40_000
    counts = Counter(multinomial_resample(weights, draws, random.Random(11)))
    assert set(counts) == {0, 1, 2, 3}
    for index, weight in enumerate(weights):
        error = math.sqrt(weight * (1 - weight) / draws)
        assert abs(counts[index] / draws - weight) < 4 * error
    chi_square = sum((counts[i] - draws * w) ** 2 / (draws * w) for i, w in enumerate(weights))
    assert chi_square < 16.27
    # A zero weight is never drawn; the output is sorted (population order).
    drawn = multinomial_resample([0.0, 1.0, 0.0], 50, random.Random(0))
    assert drawn == [1] * 50
    many = multinomial_resample(weights, 20, random.Random(1))
    assert many == sorted(many)


@pytest.mark.parametrize("n", [1, 3, 8])
def test_exactly_n_particles_come_back(
    n: int, problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    results = _run(make_config("particle_filtering", n=n), problems, Recording())
    for result in results:
        assert len(result.candidates) == n
        assert all(c.finished for c in result.candidates)  # the fake always ends in time
        assert set(result.predictions) == {"prm", "weighted", "majority"}
        assert result.prediction == result.predictions["weighted"]


def test_one_generate_and_one_score_call_per_round(
    problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    backends = Recording()
    results = _run(make_config("particle_filtering", n=4, save_trees=True), problems, backends)
    rounds = max(max(len(c.steps) for c in r.candidates) for r in results)
    assert len(backends.generate_calls) == len(backends.score_calls) == rounds
    # Round 1: N particles of every problem in one call, one step each (n=1).
    first, n, until = backends.generate_calls[0]
    assert (n, until) == (1, Until.step)
    assert Counter(p.problem.id for p in first) == {p.id: 4 for p in problems}
    assert all(call[1:] == (1, Until.step) for call in backends.generate_calls)
    # Every call scores exactly the prefixes its round grew, and nothing finished is redone.
    for (grown, _, _), scored in zip(backends.generate_calls, backends.score_calls, strict=True):
        assert len(scored) == len(grown)
        assert all(len(s.steps) == len(g.steps) + 1 for s, g in zip(scored, grown, strict=True))
    assert len(backends.generate_calls[-1][0]) < len(first)  # finished particles rest
    for result in results:
        assert result.usage.generate_calls == result.usage.score_calls
        assert result.usage.generate_calls == max(len(c.steps) for c in result.candidates)


def test_resampling_moves_particles_towards_what_the_prm_favours(
    make_config: Callable[..., StrategyConfig],
) -> None:
    """With a policy that errs often and a PRM that sees the errors, resampling every round
    leaves far more error-free particles than independent sampling (ess_threshold=0)."""
    problems = make_split("test", size=20)

    def share(ess_threshold: float, temperature: float = 1.0) -> float:
        config = make_config(
            "particle_filtering",
            n=8,
            ess_threshold=ess_threshold,
            weight_temperature=temperature,
        )
        results = _run(config, problems, Recording(seed=5, error_rate=0.4))
        return sum(_right_so_far(r) for r in results) / len(results)

    independent = share(0.0)
    resampled = share(1.0)
    assert resampled >= independent + 0.3
    # A very high temperature flattens the weights: back towards independent sampling.
    assert share(1.0, temperature=1000.0) < resampled - 0.2


def test_without_resampling_the_particles_are_independent_samples(
    problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    config = make_config("particle_filtering", n=6, ess_threshold=0.0, save_trees=True)
    for result in _run(config, problems, Recording()):
        assert result.tree is not None
        graph = nx.node_link_graph(result.tree, edges="links")
        # Each particle is its own chain from the root: 6 branches, none shared.
        assert graph.out_degree(0) == 6
        assert all(graph.out_degree(node) <= 1 for node in graph.nodes if node != 0)


def test_resampling_duplicates_particles_and_saves_the_genealogy(
    problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    config = make_config("particle_filtering", n=8, save_trees=True)
    results = _run(config, problems, Recording(error_rate=0.5))
    shared = 0
    for result in results:
        assert result.tree is not None
        graph = nx.node_link_graph(result.tree, edges="links")
        assert nx.is_tree(graph)
        # A node with two or more children was copied by resampling and grown twice.
        shared += sum(1 for node in graph.nodes if node != 0 and graph.out_degree(node) > 1)
        # visits: particles holding the node after each round; the leaves hold all N at the
        # end, and a node's visits include the rounds it was held after it finished.
        held = [graph.nodes[node]["visits"] for node in graph.nodes if graph.out_degree(node) == 0]
        assert sum(held) >= 8
    assert shared > 0


def test_the_seed_keys_resampling(
    problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    # At weight_temperature 1 the fake PRM's weights are so peaked that resampling keeps
    # copies of one particle whatever the seed; flatter weights let the draws matter. (The
    # policy's own randomness is keyed by problem and request, not by the resampling seed.)
    config = make_config("particle_filtering", n=8, weight_temperature=3.0)
    first = _run(config, problems, Recording(error_rate=0.5), seed=0)
    again = _run(config, problems, Recording(error_rate=0.5), seed=0)
    other = _run(config, problems, Recording(error_rate=0.5), seed=1)
    assert [r.candidates for r in first] == [r.candidates for r in again]
    assert [r.candidates for r in first] != [r.candidates for r in other]


def test_particle_filtering_config_ranges() -> None:
    with pytest.raises(ValueError, match=r"weight_temperature > 0, got 0.0; fix"):
        StrategyConfig(name="particle_filtering", weight_temperature=0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"ess_threshold <= 1, got 1.5; fix"):
        StrategyConfig(name="particle_filtering", ess_threshold=1.5)  # type: ignore[arg-type]
    config = StrategyConfig(name="particle_filtering")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fix: choose scorer="):
        config.validate(has_scorer=False)


class UniqueSteps:
    """A policy whose every step is new (``s<counter>``), answering after three steps, and a
    PRM that likes steps with an even counter; records the prefixes of every generate call."""

    def __init__(self) -> None:
        self.count = 0
        self.generate_calls: list[list[Prefix]] = []

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        self.generate_calls.append(list(prefixes))
        out = []
        for prefix in prefixes:
            continuations = []
            for _ in range(n):
                self.count += 1
                last = len(prefix.steps) == 2
                step = f"s{self.count} \\boxed{{{self.count % 3}}}" if last else f"s{self.count}"
                reason = FinishReason.eos if last else FinishReason.step
                continuations.append(Continuation(step, (step,), reason, 1))
            out.append(Generation(prompt_tokens=1, continuations=tuple(continuations)))
        return out

    def score(self, prefixes: Sequence[Prefix]) -> list[list[float]]:
        return [
            [0.8 if int(step.split()[0][1:]) % 2 == 0 else 0.3 for step in prefix.steps]
            for prefix in prefixes
        ]


def test_particle_gibbs_keeps_a_reference_and_redraws_the_rest(
    make_config: Callable[..., StrategyConfig],
) -> None:
    problems = [Problem(id=f"p{i}", question=f"Question {i}?", answer="1") for i in range(3)]
    backends = UniqueSteps()
    config = make_config("particle_filtering", n=4, gibbs_iterations=2, save_trees=True)
    results = build_strategy(config, Aggregation.min).run(problems, backends, backends)
    # Two sweeps of three rounds, each starting from the question: N particles per problem
    # in the first, N - 1 free ones in the second (the reference replays without a call).
    calls = backends.generate_calls
    assert len(calls) == 6
    assert [Counter(p.problem.id for p in call) for call in calls] == [
        {p.id: 4 for p in problems}
    ] * 3 + [{p.id: 3 for p in problems}] * 3
    assert all(not p.steps for p in calls[0] + calls[3])
    copied = 0
    for result in results:
        assert len(result.candidates) == 4
        assert all(c.finished for c in result.candidates)
        assert result.tree is not None
        graph = nx.node_link_graph(result.tree, edges="links")
        second_sweep = min(sorted(graph.successors(0))[4:])  # node ids grow with time
        paths = _paths(graph)
        # The reference (the last candidate) is a whole path grown in the first sweep; a
        # free particle ends on a node of the second sweep, or on the reference's own path
        # when resampling copied the reference (every step is unique: paths identify nodes).
        ends = [
            next(node for node, steps in paths.items() if steps == c.steps)
            for c in result.candidates
        ]
        reference_path = nx.ancestors(graph, ends[-1]) | {ends[-1]}
        assert ends[-1] < second_sweep
        assert all(end >= second_sweep or end in reference_path for end in ends[:-1])
        grown_again = [end for end in ends[:-1] if end >= second_sweep]
        copied += len(ends) - 1 - len(grown_again)
        # Every node was generated once: the tree holds all the policy tokens spent.
        tokens = sum(graph.nodes[node]["num_tokens"] for node in graph.nodes)
        assert result.usage.generated_tokens == tokens == 3 * (4 + 3)
    assert copied > 0  # resampling did pick the reference's prefix for free particles


def _paths(graph: nx.DiGraph) -> dict[int, tuple[str, ...]]:
    """Each node's steps from the root (the fake writes one step per node)."""
    paths: dict[int, tuple[str, ...]] = {0: ()}
    for node in nx.topological_sort(graph):
        for child in graph.successors(node):
            paths[child] = (*paths[node], graph.nodes[child]["step"])
    return paths


def test_particle_gibbs_needs_a_free_particle() -> None:
    with pytest.raises(ValueError, match=r"n >= 2 for particle Gibbs.*fix"):
        StrategyConfig(name="particle_filtering", n=1, gibbs_iterations=2)  # type: ignore[arg-type]
