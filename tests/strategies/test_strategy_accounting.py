"""Batching across problems, chunking, and usage that adds up to what the backends counted."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import networkx as nx
import pytest

from search.aggregation import Aggregation
from search.envs.arith.fakes import FakeGenerator, FakeScorer
from search.guards import call_scorer
from search.strategies import SearchStopped, StrategyConfig, build_strategy
from search.types import (
    DEFAULT_SAMPLING,
    Generation,
    Prefix,
    Problem,
    Sampling,
    ScoreOutput,
    SearchResult,
    Until,
)

TREE_STRATEGIES = ["beam", "dvts", "mcts"]
ALL_STRATEGIES = ["best_of_n", *TREE_STRATEGIES, "particle_filtering", "adaptive_best_of_n"]


class RecordingGenerator:
    """Forwards to a FakeGenerator and records the problems and n of every call;
    ``during(sampling)``, when given, runs inside every call before it is forwarded."""

    def __init__(
        self, inner: FakeGenerator, during: Callable[[Sampling], None] | None = None
    ) -> None:
        self.inner = inner
        self.during = during
        self.calls: list[tuple[list[str], int, Until]] = []
        self.samplings: list[Sampling] = []

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        self.calls.append(([p.problem.id for p in prefixes], n, until))
        self.samplings.append(sampling)
        if self.during is not None:
            self.during(sampling)
        return self.inner.generate(prefixes, n, until, sampling)


class RecordingScorer:
    def __init__(self, inner: FakeScorer) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []

    def score(self, prefixes: Sequence[Prefix]) -> list[list[float]]:
        return self.score_with_usage(prefixes).scores

    def score_with_usage(self, prefixes: Sequence[Prefix]) -> ScoreOutput:
        self.calls.append([p.problem.id for p in prefixes])
        return call_scorer(self.inner, prefixes)


class ScoresOnly:
    """A custom PRM that reports no usage (only ``score``)."""

    def __init__(self) -> None:
        self.inner = FakeScorer()

    def score(self, prefixes: Sequence[Prefix]) -> list[list[float]]:
        return self.inner.score(prefixes)


def _run(
    config: StrategyConfig, problems: list[Problem], batch_size: int = 256
) -> tuple[list[SearchResult], RecordingGenerator, RecordingScorer]:
    config.batch_size = batch_size
    generator = RecordingGenerator(FakeGenerator(seed=7, error_rate=0.3))
    scorer = RecordingScorer(FakeScorer(noise=0.05))
    results = build_strategy(config, Aggregation.min).run(problems, generator, scorer)
    return results, generator, scorer


def _max_depth(result: SearchResult) -> int:
    assert result.tree is not None
    graph = nx.node_link_graph(result.tree, edges="links")
    return max(depth for _, depth in graph.nodes(data="depth"))


def test_best_of_n_is_one_generate_and_one_score_call(
    problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    results, generator, scorer = _run(make_config("best_of_n", n=5), problems)
    assert len(generator.calls) == 1 and len(scorer.calls) == 1
    ids, n, until = generator.calls[0]
    assert (ids, n, until) == ([p.id for p in problems], 5, Until.end)
    assert len(scorer.calls[0]) == 5 * len(problems)
    assert all(r.usage.generate_calls == 1 and r.usage.score_calls == 1 for r in results)


@pytest.mark.parametrize("name", ["beam", "dvts"])
def test_one_generate_and_one_score_call_per_depth(
    name: str, problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    """One generate call per depth and distinct number of copies among the prefixes sent
    (identical kept beams, or subtrees at the same prefix, are one prefix sampled M times per
    copy), so between one and N/M per depth, each asking a multiple of M."""
    config = make_config(name, n=4, beam_width=2, save_trees=True)
    results, generator, scorer = _run(config, problems)
    depths = max(_max_depth(r) for r in results)
    assert len(scorer.calls) == depths
    assert depths <= len(generator.calls) == generator.inner.usage.calls <= depths * 2
    assert all(n % 2 == 0 for _, n, _ in generator.calls)
    # Every problem was in the first call, and each problem's own count is the calls it was
    # in, so the calls were shared: far fewer than the per-problem counts added up.
    assert sorted(set(generator.calls[0][0])) == sorted(p.id for p in problems)
    assert max(r.usage.score_calls for r in results) == depths
    assert sum(r.usage.score_calls for r in results) >= len(problems) * 3 > depths
    for result in results:
        assert result.usage.score_calls == _max_depth(result)
        assert _max_depth(result) <= result.usage.generate_calls <= 2 * _max_depth(result)


def test_mcts_one_round_one_call(
    problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    config = make_config("mcts", num_simulations=6, extra_simulations=0, children_per_expansion=2)
    results, generator, scorer = _run(config, problems)
    assert 1 <= len(generator.calls) == len(scorer.calls) <= 6
    assert sorted(generator.calls[0][0]) == sorted(p.id for p in problems)
    assert all(n == 2 and until is Until.step for _, n, until in generator.calls)
    assert max(r.usage.generate_calls for r in results) == len(generator.calls)


@pytest.mark.parametrize("name", ALL_STRATEGIES)
def test_chunking_by_batch_size_changes_calls_not_results(
    name: str, problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    whole, whole_generator, _ = _run(make_config(name), problems)
    chunked, chunked_generator, chunked_scorer = _run(make_config(name), problems, batch_size=3)
    assert [r.candidates for r in chunked] == [r.candidates for r in whole]
    # a problem's usage, calls included, is its own search's: not how requests were cut
    assert [r.usage for r in chunked] == [r.usage for r in whole]
    assert all(len(ids) <= 3 for ids, _, _ in chunked_generator.calls)
    assert all(len(ids) <= 3 for ids in chunked_scorer.calls)
    assert len(chunked_generator.calls) > len(whole_generator.calls)

    # the same prefixes, each asking the same number of continuations, only cut into chunks
    # (a chunk makes one call per distinct count among its prefixes)
    def requests(calls: list[tuple[list[str], int, Until]]) -> list[tuple[str, int]]:
        return sorted((id_, n) for ids, n, _ in calls for id_ in ids)

    assert requests(chunked_generator.calls) == requests(whole_generator.calls)


@pytest.mark.parametrize(
    ("name", "lookahead"), [(name, 0) for name in ALL_STRATEGIES] + [("beam", 2), ("dvts", 2)]
)
def test_usage_adds_up_to_the_backends_counts(
    name: str,
    lookahead: int,
    problems: list[Problem],
    make_config: Callable[..., StrategyConfig],
) -> None:
    results, generator, scorer = _run(make_config(name, lookahead=lookahead), problems)
    generated = generator.inner.usage
    scored = scorer.inner.usage
    assert sum(r.usage.prompt_tokens for r in results) == generated.tokens
    assert sum(r.usage.generated_tokens for r in results) == generated.generated_tokens
    assert sum(r.usage.prm_tokens or 0 for r in results) == scored.tokens
    assert sum(r.usage.prm_new_tokens or 0 for r in results) == scored.new_tokens
    assert 0 < scored.new_tokens <= scored.tokens
    assert all(r.usage.prm_tokens is not None for r in results)
    wall = {r.wall_s for r in results}
    assert len(wall) == 1 and wall.pop() > 0  # the batch's time, split evenly


def test_lookahead_spends_extra_generate_calls_not_kept_steps(
    problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    config = make_config("beam", n=4, beam_width=2, lookahead=2, save_trees=True)
    results, generator, scorer = _run(config, problems)
    assert all(len(r.candidates) == 4 for r in results)
    # Per depth: the step itself plus up to two rollout steps, then one score call.
    depths = max(_max_depth(r) for r in results)
    assert len(scorer.calls) == depths
    assert depths < len(generator.calls) <= 3 * depths
    assert [n for _, n, _ in generator.calls].count(1) == len(generator.calls) - depths
    # Rollout tokens are paid for but are not on any candidate's path.
    for result in results:
        assert result.tree is not None
        tree_tokens = sum(node["num_tokens"] for node in result.tree["nodes"])
        assert result.usage.generated_tokens > tree_tokens


@pytest.mark.parametrize("name", ALL_STRATEGIES)
def test_scorer_without_usage_gives_unknown_prm_tokens(
    name: str, problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    results = build_strategy(make_config(name), Aggregation.min).run(
        problems, FakeGenerator(), ScoresOnly()
    )
    assert all(r.usage.prm_tokens is None and r.usage.prm_new_tokens is None for r in results)
    assert all(r.usage.score_calls >= 1 for r in results)


@pytest.mark.parametrize("name", ["beam", "dvts"])
def test_lookahead_rollouts_are_greedy_unless_told_otherwise(
    name: str, problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    """Snell et al.: the k rollout steps are greedy whatever the policy's temperature; the
    expansions themselves sample at the policy's own settings (no override)."""
    for temperature in (None, 0.7):
        config = make_config(name, n=4, beam_width=2, lookahead=1)
        if temperature is not None:
            config.lookahead_temperature = temperature
        _, generator, _ = _run(config, problems)
        expansions = [
            s for (_, n, _), s in zip(generator.calls, generator.samplings, strict=True) if n > 1
        ]
        rollouts = [
            s for (_, n, _), s in zip(generator.calls, generator.samplings, strict=True) if n == 1
        ]
        assert expansions and rollouts
        assert all(s.temperature is None for s in expansions)
        assert all(s.temperature == (temperature or 0.0) for s in rollouts)


@pytest.mark.parametrize("name", ALL_STRATEGIES)
def test_a_problems_result_does_not_depend_on_its_batch(
    name: str, problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    """Each problem's random streams are named by its id and its own request count, so a
    problem searched alone or with others (in any order) gets the same candidates."""
    config = make_config(name, n=4, beam_width=2, lookahead=1 if name in ("beam", "dvts") else 0)
    config.lookahead_temperature = 1.0  # sampled rollouts draw from the streams too
    together, generator, _ = _run(config, problems)
    assert all(
        s.streams is not None and len(s.streams) == len(ids)
        for (ids, _, _), s in zip(generator.calls, generator.samplings, strict=True)
    )
    backwards, _, _ = _run(config, problems[::-1])
    alone = [_run(config, [problem])[0][0] for problem in problems[:2]]
    assert [r.candidates for r in backwards[::-1]] == [r.candidates for r in together]
    assert [r.candidates for r in alone] == [r.candidates for r in together[:2]]
    assert [r.prediction for r in alone] == [r.prediction for r in together[:2]]
    assert [r.usage for r in alone] == [r.usage for r in together[:2]]


def test_calls_generate_takes_one_count_per_prefix(problems: list[Problem]) -> None:
    """Counts that differ per prefix: one backend call per distinct count, outputs in the
    order asked, each prefix with its own count and its own stream, usage charged per owner."""
    from search.strategies.base import Calls

    generator = RecordingGenerator(FakeGenerator(seed=7, error_rate=0.3))
    calls = Calls(generator, None, batch_size=256, num_problems=2)
    prefixes = [Prefix(problems[0]), Prefix(problems[1]), Prefix(problems[0])]
    out = calls.generate([0, 1, 0], prefixes, [3, 1, 3], Until.step)
    assert [len(g.continuations) for g in out] == [3, 1, 3]
    assert sorted(n for _, n, _ in generator.calls) == [1, 3]
    assert calls.usage(0).generate_calls == 1 and calls.usage(1).generate_calls == 1
    assert calls.usage(0).generated_tokens == sum(
        c.num_tokens for g in (out[0], out[2]) for c in g.continuations
    )
    with pytest.raises(ValueError, match="one continuation count per prefix"):
        calls.generate([0], prefixes[:1], [1, 2], Until.step)


@pytest.mark.parametrize("name", ALL_STRATEGIES)
def test_dropping_every_problem_ends_the_search_before_the_next_backend_call(
    name: str, problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    _, whole_generator, whole_scorer = _run(make_config(name), problems)
    whole = len(whole_generator.calls) + len(whole_scorer.calls)
    assert whole >= 2
    generator = RecordingGenerator(FakeGenerator(seed=7, error_rate=0.3))
    scorer = RecordingScorer(FakeScorer(noise=0.05))

    def after_one_call() -> range:
        return range(len(problems) if len(generator.calls) + len(scorer.calls) >= 1 else 0)

    strategy = build_strategy(make_config(name), Aggregation.min)
    with pytest.raises(SearchStopped):
        strategy.run(problems, generator, scorer, dropped=after_one_call)
    assert len(generator.calls) + len(scorer.calls) == 1
    # a drop that never comes changes nothing
    kept = RecordingGenerator(FakeGenerator(seed=7, error_rate=0.3))
    results = build_strategy(make_config(name), Aggregation.min).run(
        problems, kept, RecordingScorer(FakeScorer(noise=0.05)), dropped=lambda: ()
    )
    assert kept.calls == whole_generator.calls and len(results) == len(problems)


@pytest.mark.parametrize("batch_size", [256, 3])  # 3: calls in chunks, dropped and kept mixed
@pytest.mark.parametrize("name", ALL_STRATEGIES)
def test_a_dropped_problem_leaves_every_later_call_and_the_others_keep_their_results(
    name: str,
    batch_size: int,
    problems: list[Problem],
    make_config: Callable[..., StrategyConfig],
) -> None:
    """Problem 1 dropped after the first backend call: no later generate or score call holds
    any of its prefixes, and the other problems get the same results as without the drop."""
    config = make_config(name, max_steps=6, batch_size=batch_size)
    whole, _, _ = _run(config, problems, batch_size)
    generator = RecordingGenerator(FakeGenerator(seed=7, error_rate=0.3))
    scorer = RecordingScorer(FakeScorer(noise=0.05))
    first: list[int] = []

    def drop_problem_1() -> tuple[int, ...]:
        if not first and generator.calls + scorer.calls:
            first.append(len(generator.calls) + len(scorer.calls))
        return (1,) if first else ()

    results = build_strategy(config, Aggregation.min).run(
        problems, generator, scorer, dropped=drop_problem_1
    )
    dropped_id = problems[1].id
    later = [ids for ids, _, _ in generator.calls[1:]] + scorer.calls  # the first is a generate
    assert all(dropped_id not in ids for ids in later)
    assert first == [1]
    others = [0, 2, 3]
    assert [results[i].candidates for i in others] == [whole[i].candidates for i in others]
    assert [results[i].prediction for i in others] == [whole[i].prediction for i in others]
    assert [results[i].usage for i in others] == [whole[i].usage for i in others]
    # the dropped problem still gets its result's shape, and nothing after the drop is charged
    assert len(results[1].candidates) == len(whole[1].candidates) or name == "adaptive_best_of_n"
    assert results[1].usage.generated_tokens <= whole[1].usage.generated_tokens


def test_a_generate_call_can_ask_which_of_its_prefixes_were_dropped_while_it_ran(
    problems: list[Problem],
) -> None:
    """``Sampling.abandoned`` names the positions, in the backend call, of the prefixes whose
    problems were dropped after the call began (a backend that samples token by token stops
    them); without ``dropped`` there is nothing to ask."""
    from search.strategies.base import Calls

    dropped: set[int] = set()
    asked: list[list[int]] = []

    def leave_while_running(sampling: Sampling) -> None:
        assert sampling.abandoned is not None
        asked.append(list(sampling.abandoned()))
        dropped.add(2)  # problem 2's client leaves while the call runs
        asked.append(list(sampling.abandoned()))

    generator = RecordingGenerator(FakeGenerator(seed=7), during=leave_while_running)
    calls = Calls(generator, None, 256, len(problems), lambda: dropped)
    owners = [0, 2, 3, 2]
    calls.generate(owners, [Prefix(problems[i]) for i in owners], 2, Until.step)
    assert asked == [[], [1, 3]]  # the positions of problem 2's prefixes in the call
    asked.clear()
    owners = [3, 2, 0]
    out = calls.generate(owners, [Prefix(problems[i]) for i in owners], 1, Until.step)
    assert asked == [[], []]  # dropped before the call: not in it (and cut, no tokens)
    assert out[1].continuations[0].num_tokens == 0
    plain = RecordingGenerator(FakeGenerator(seed=7))
    Calls(plain, None, 256, len(problems)).generate([0], [Prefix(problems[0])], 1, Until.step)
    assert plain.samplings[0].abandoned is None
