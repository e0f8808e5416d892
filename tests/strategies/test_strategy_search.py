"""What each search does: one aggregation for pruning and picking, DVTS subtrees, MCTS
visit counts, beam ranking."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import networkx as nx
import pytest

from search.aggregation import Aggregation
from search.envs.arith.fakes import FakeGenerator, FakeScorer
from search.strategies import MctsFinal, Prior, StrategyConfig, build_strategy
from search.strategies.tree import Node, SearchTree, same_prefix_groups
from search.types import (
    DEFAULT_SAMPLING,
    STEP_SEPARATOR,
    Continuation,
    FinishReason,
    Generation,
    Prefix,
    Problem,
    Sampling,
    Until,
)

SCRIPTED = Problem(id="scripted", question="Which path?", answer="2")


class ScriptedGenerator:
    """Continuation j of a prefix is ``options[last step][j % len]``; a step with a
    ``\\boxed`` answer ends the solution."""

    def __init__(self, options: dict[str, list[str]]) -> None:
        self.options = options

    def _step(self, last: str, j: int) -> str:
        choices = self.options[last]
        return choices[j % len(choices)]

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        out = []
        for prefix in prefixes:
            continuations = []
            for j in range(n):
                steps: list[str] = []
                last = prefix.steps[-1] if prefix.steps else ""
                while True:
                    last = self._step(last, j)
                    steps.append(last)
                    if "boxed" in last or until is Until.step:
                        break
                ended = "boxed" in last
                text = STEP_SEPARATOR.join(steps) + ("" if ended else STEP_SEPARATOR)
                reason = FinishReason.eos if ended else FinishReason.step
                continuations.append(Continuation(text, tuple(steps), reason, len(steps)))
            out.append(Generation(prompt_tokens=1, continuations=tuple(continuations)))
        return out


class TableScorer:
    """Each step scores its entry in ``table``, whatever came before it."""

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table

    def score(self, prefixes: Sequence[Prefix]) -> list[list[float]]:
        return [[self.table[step] for step in prefix.steps] for prefix in prefixes]


# Path X scores [0.2, 0.95, ...] and path Y [0.6, 0.7, ...]: "last" prefers X, "min" Y.
OPTIONS = {
    "": ["x1", "y1", "z1", "z1"],
    "x1": ["x2"],
    "y1": ["y2"],
    "z1": ["z2"],
    "x2": ["x \\boxed{1}"],
    "y2": ["y \\boxed{2}"],
    "z2": ["z \\boxed{3}"],
}
TABLE = {
    "x1": 0.2,
    "x2": 0.95,
    "y1": 0.6,
    "y2": 0.7,
    "z1": 0.1,
    "z2": 0.1,
    "x \\boxed{1}": 0.99,
    "y \\boxed{2}": 0.99,
    "z \\boxed{3}": 0.99,
}


@pytest.mark.parametrize(("aggregation", "answer"), [("last", "1"), ("min", "2")])
def test_beam_prunes_and_picks_with_the_configured_aggregation(
    aggregation: str, answer: str
) -> None:
    """Depth 1 has X and Y prefixes; only 2 of 4 survive. The survivors (and so every
    candidate) follow the path the aggregation prefers."""
    config = StrategyConfig(name="beam", n=4, beam_width=2)  # type: ignore[arg-type]
    [result] = build_strategy(config, aggregation).run(
        [SCRIPTED], ScriptedGenerator(OPTIONS), TableScorer(TABLE)
    )
    assert [c.answer for c in result.candidates] == [answer] * 4
    assert result.prediction == answer


@pytest.mark.parametrize(("aggregation", "answer"), [("last", "1"), ("min", "2")])
def test_best_of_n_prm_pick_uses_the_configured_aggregation(aggregation: str, answer: str) -> None:
    config = StrategyConfig(name="best_of_n", n=4, select="prm")  # type: ignore[arg-type]
    [result] = build_strategy(config, aggregation).run(
        [SCRIPTED], ScriptedGenerator(OPTIONS), TableScorer(TABLE)
    )
    assert sorted(c.answer or "" for c in result.candidates) == ["1", "2", "3", "3"]
    assert result.predictions["prm"] == answer
    assert result.predictions["majority"] == "3"  # the most frequent, whatever the PRM says
    assert result.prediction == answer  # select=prm


@pytest.mark.parametrize(
    ("aggregation", "weighted", "other_rule", "other"),
    [
        # min: X 0.2, Y 0.6, Z 0.1 + 0.1 -> 2 by weight, where counting votes gives 3
        ("min", "2", "majority", "3"),
        # mean: X 0.713, Y 0.763, Z 0.397 + 0.397 -> 3 by summed weight, where the best
        # single candidate (prm) is Y's 2
        ("mean", "3", "prm", "2"),
    ],
)
def test_weighted_pick_sums_scores_per_answer(
    aggregation: str, weighted: str, other_rule: str, other: str
) -> None:
    config = StrategyConfig(name="best_of_n", n=4, select="weighted")  # type: ignore[arg-type]
    [result] = build_strategy(config, aggregation).run(
        [SCRIPTED], ScriptedGenerator(OPTIONS), TableScorer(TABLE)
    )
    assert result.prediction == result.predictions["weighted"] == weighted
    assert result.predictions[other_rule] == other


def test_dvts_candidates_are_the_last_expansion_of_each_subtree(
    problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    config = make_config("dvts", n=6, beam_width=3)
    results = build_strategy(config, Aggregation.min).run(
        problems, FakeGenerator(seed=3, error_rate=0.4), FakeScorer(noise=0.05)
    )
    for result in results:
        blocks = [result.candidates[i : i + 3] for i in range(0, 6, 3)]
        for block in blocks:
            # Siblings: same parent prefix, one new step each.
            parents = {c.steps[:-1] for c in block}
            assert len(parents) == 1
            # The subtree stopped because its best child (by the aggregated score) finished.
            best = max(block, key=lambda c: c.score or 0.0)
            assert best.finished


def test_dvts_subtrees_search_independently(
    problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    """Subtrees share only the root; below it each subtree expands its own node per depth,
    M children each, also where subtrees stand at one prefix and share its prompt."""
    config = make_config("dvts", n=8, beam_width=2, save_trees=True)
    [result] = build_strategy(config, Aggregation.min).run(
        problems[:1], FakeGenerator(seed=0, error_rate=0.5), FakeScorer()
    )
    assert result.tree is not None
    graph = nx.node_link_graph(result.tree, edges="links")
    assert graph.out_degree(0) == 8  # 4 subtrees x M=2 first steps
    expanded = [v for v in graph if v != 0 and graph.out_degree(v)]
    assert all(graph.out_degree(v) == 2 for v in expanded)
    depths = [graph.nodes[v]["depth"] for v in expanded]
    assert max(depths.count(depth) for depth in set(depths)) <= 4
    assert len(expanded) > 4  # the subtrees went deeper than one expansion


def test_dvts_copies_at_one_prefix_take_their_own_continuations() -> None:
    """Both subtrees stand at "a" after depth 1, so depth 2 sends "a" once with 2 x M = 4
    continuations: the first subtree gets b and c (keeps b, 0.6), the second d and e (keeps
    the finished e, 0.9, though e would also beat b). Giving every copy the first M, or
    letting a copy rank the whole group, gives other candidates."""
    options = {
        "": ["a"],
        "a": ["b", "c", "d \\boxed{2}", "e \\boxed{3}"],
        "b": ["f \\boxed{2}"],
        "c": ["g"],
    }
    table = {"a": 1.0, "b": 0.6, "c": 0.1, "d \\boxed{2}": 0.2, "e \\boxed{3}": 0.9}
    table["f \\boxed{2}"] = 0.8
    generator = CountingGenerator(options)
    config = StrategyConfig(name="dvts", n=4, beam_width=2)  # type: ignore[arg-type]
    [result] = build_strategy(config, "min").run([SCRIPTED], generator, TableScorer(table))
    assert generator.calls == [(1, 4), (1, 4), (1, 2)]  # the last: the first subtree alone
    assert [c.steps for c in result.candidates] == [
        ("a", "b", "f \\boxed{2}"),
        ("a", "b", "f \\boxed{2}"),
        ("a", "d \\boxed{2}"),
        ("a", "e \\boxed{3}"),
    ]


def test_dvts_refuses_a_pick_no_subtree_picking_it_holds(
    problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    """A subtree's own children are its candidates if it stops: a ``choose`` that sends
    subtrees on from a node none of them holds is refused (a finished one would be lost);
    one that sends them all on from a node one of them holds is not."""
    from search.strategies.dvts import Dvts

    class Borrowing(Dvts):
        def choose(
            self, parents: Sequence[tuple[int, Node]], children: Sequence[list[Node]]
        ) -> list[Node]:
            # all but the first subtree take the first subtree's first child; it takes another
            return [children[0][1], *(children[0][0] for _ in children[1:])]

    class Sharing(Dvts):
        def choose(
            self, parents: Sequence[tuple[int, Node]], children: Sequence[list[Node]]
        ) -> list[Node]:
            return [children[0][0] for _ in children]  # held by the first, which picks it

    config = make_config("dvts", n=4, beam_width=2)
    with pytest.raises(ValueError, match="expected every chosen node among the children of a"):
        Borrowing(config, Aggregation.min).run(problems[:1], FakeGenerator(seed=0), FakeScorer())
    [result] = Sharing(config, Aggregation.min).run(
        problems[:1], FakeGenerator(seed=0), FakeScorer()
    )
    assert len(result.candidates) == 4


def test_same_prefix_groups_are_per_problem_in_first_seen_order() -> None:
    first, other = SearchTree(SCRIPTED), SearchTree(SCRIPTED)

    def node(tree: SearchTree, *steps: str) -> Node:
        step = Continuation("", steps, FinishReason.step, 1)
        return tree.add(tree.root, step)

    a, b = node(first, "s1"), node(first, "s2")
    a_again, a_elsewhere = node(first, "s1"), node(other, "s1")
    parents = [(0, a), (1, a_elsewhere), (0, b), (0, a_again), (0, first.root)]
    assert same_prefix_groups(parents) == [[0, 3], [1], [2], [4]]
    assert same_prefix_groups([]) == []


@pytest.mark.parametrize("prior", list(Prior))
@pytest.mark.parametrize("simulations", [1, 5, 12])
def test_mcts_visits_add_up(
    prior: Prior,
    simulations: int,
    problems: list[Problem],
    make_config: Callable[..., StrategyConfig],
) -> None:
    """Root visits = simulations; every node's visits = simulations that ended at it plus
    its children's visits, so the excesses add up to the simulations again."""
    config = make_config(  # n=2: one simulation of 2 children can hold that many paths
        "mcts", n=2, num_simulations=simulations, extra_simulations=0, prior=prior, save_trees=True
    )
    results = build_strategy(config, Aggregation.min).run(
        problems, FakeGenerator(seed=1, error_rate=0.3), FakeScorer(noise=0.1)
    )
    for result in results:
        assert result.tree is not None
        graph = nx.node_link_graph(result.tree, edges="links")
        assert nx.is_arborescence(graph)
        visits = dict(graph.nodes(data="visits"))
        assert visits[0] == simulations
        excess = [visits[v] - sum(visits[c] for c in graph.successors(v)) for v in graph]
        assert min(excess) >= 0
        assert sum(excess) == simulations
        for node in graph:
            children = list(graph.successors(node))
            if children:
                priors = [graph.nodes[c]["prior"] for c in children]
                assert sum(priors) == pytest.approx(1.0)
                if prior is Prior.uniform:
                    assert priors == pytest.approx([1 / len(children)] * len(children))


@pytest.mark.parametrize("final", list(MctsFinal))
def test_mcts_ranks_finished_paths_by_the_final_rule(
    final: MctsFinal, problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    config = make_config("mcts", n=6, num_simulations=24, mcts_final=final, save_trees=True)
    results = build_strategy(config, Aggregation.min).run(
        problems, FakeGenerator(seed=2, error_rate=0.3), FakeScorer(noise=0.1)
    )
    for result in results:
        assert result.prediction == result.predictions[final.value]
        assert result.tree is not None
        graph = nx.node_link_graph(result.tree, edges="links")
        done = [graph.nodes[v] for v in graph if graph.nodes[v]["finished"]]
        if final is MctsFinal.most_visited:
            keys = [(d["visits"], d["value"]) for d in done]
        else:
            keys = [(d["value"], d["visits"]) for d in done]
        finished = [c for c in result.candidates if c.finished]
        assert len(finished) == min(len(done), 6)
        # The first candidate is a top-ranked finished path.
        if done:
            top = max(keys)
            tops = [d for d, key in zip(done, keys, strict=True) if key == top]
            assert result.candidates[0].steps[-1] in {d["step"] for d in tops}


def test_beam_returns_finished_candidates_best_first(
    problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    config = make_config("beam", n=8, beam_width=2)
    results = build_strategy(config, Aggregation.mean).run(
        problems, FakeGenerator(seed=4, error_rate=0.4), FakeScorer(noise=0.1)
    )
    for result in results:
        scores = [c.score or 0.0 for c in result.candidates if c.finished]
        assert scores == sorted(scores, reverse=True)
        assert result.candidates[0].finished


def test_mcts_searches_on_until_a_path_finishes_and_never_picks_an_unfinished_one(
    problems: list[Problem], make_config: Callable[..., StrategyConfig]
) -> None:
    """Too few simulations to reach the end of a solution: with extra rounds MCTS goes on
    (only for the problems without a finished path) until one finishes; without them, the
    prediction is None rather than an answer read off an unfinished path."""
    short = make_config("mcts", n=4, num_simulations=2, extra_simulations=0, save_trees=True)
    generator, scorer = FakeGenerator(seed=1, error_rate=0.3), FakeScorer(noise=0.1)
    stuck = build_strategy(short, Aggregation.min).run(problems, generator, scorer)
    assert all(not any(c.finished for c in r.candidates) for r in stuck)
    assert all(r.prediction is None and r.predictions["majority"] is None for r in stuck)
    longer = make_config("mcts", n=4, num_simulations=2, extra_simulations=40, save_trees=True)
    found = build_strategy(longer, Aggregation.min).run(problems, generator, scorer)
    for result in found:
        assert result.candidates[0].finished and result.prediction is not None
        assert result.tree is not None
        graph = nx.node_link_graph(result.tree, edges="links")
        # stopped right after the round that finished a path: fewer than all 42 rounds
        assert 2 < graph.nodes[0]["visits"] < 42


# One slip the PRM likes (a1: 0.9) against a step the policy wrote three times (b1: 0.5 each).
VOTE_OPTIONS = {
    "": ["a1", "b1", "b1", "b1"],
    "a1": ["a \\boxed{1}"],
    "b1": ["b \\boxed{2}"],
}
VOTE_TABLE = {"a1": 0.9, "b1": 0.5, "a \\boxed{1}": 0.9, "b \\boxed{2}": 0.9}


@pytest.mark.parametrize(
    ("name", "prune", "answer"),
    [
        ("beam", "prm", "1"),
        ("beam", "weighted", "2"),
        ("dvts", "prm", "1"),
        ("dvts", "weighted", "2"),
    ],
)
def test_prune_by_own_score_or_by_the_vote_of_identical_steps(
    name: str, prune: str, answer: str
) -> None:
    """One beam (N=4, M=4) or one subtree survives depth 1: ``prm`` keeps the single best
    score (0.9), ``weighted`` the step written three times (3 x 0.5 = 1.5)."""
    config = StrategyConfig(name=name, n=4, beam_width=4, prune=prune)  # type: ignore[arg-type]
    [result] = build_strategy(config, "min").run(
        [SCRIPTED], ScriptedGenerator(VOTE_OPTIONS), TableScorer(VOTE_TABLE)
    )
    assert [c.answer for c in result.candidates] == [answer] * 4


def test_prune_keys_pool_identical_steps_only() -> None:
    from search.selection import Select
    from search.strategies.tree import prune_keys

    tree = SearchTree(SCRIPTED)
    kids = [
        tree.add(tree.root, Continuation(step, (step,), FinishReason.step, 1))
        for step in ("a", "b", "a", "c")
    ]
    for kid, score in zip(kids, (0.25, 0.5, 0.5, 0.125), strict=True):
        kid.set_scores([score], Aggregation.min)
    assert prune_keys(kids, Select.prm) == [0.25, 0.5, 0.5, 0.125]
    assert prune_keys(kids, Select.weighted) == [0.75, 0.5, 0.75, 0.125]
    with pytest.raises(ValueError, match="prune=weighted"):
        prune_keys(kids, Select.majority)


def test_prune_majority_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"expected strategy.prune=prm or weighted.*fix"):
        StrategyConfig(name="beam", prune="majority")  # type: ignore[arg-type]


class CountingGenerator(ScriptedGenerator):
    """Records (number of prefixes, n) of every call."""

    def __init__(self, options: dict[str, list[str]]) -> None:
        super().__init__(options)
        self.calls: list[tuple[int, int]] = []

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        self.calls.append((len(prefixes), n))
        return super().generate(prefixes, n, until, sampling)


@pytest.mark.parametrize("prune", ["prm", "weighted"])
@pytest.mark.parametrize("name", ["beam", "dvts"])
def test_identical_prefixes_are_one_prompt_sampled_for_every_copy(name: str, prune: str) -> None:
    """Every first step is the same: beam's N/M = 2 kept beams are copies, and DVTS's 2
    subtrees stand at one prefix, so depth 2 sends it once with 2 x M continuations (the same
    draws as M per copy, one prompt); a DVTS subtree still keeps the best of its own M."""
    options = {"": ["s1"], "s1": ["s \\boxed{2}"]}
    generator = CountingGenerator(options)
    config = StrategyConfig(  # type: ignore[arg-type]
        name=name, n=4, beam_width=2, prune=prune, save_trees=True
    )
    [result] = build_strategy(config, "min").run(
        [SCRIPTED], generator, TableScorer({"s1": 0.5, "s \\boxed{2}": 0.9})
    )
    assert generator.calls == [(1, 4), (1, 4)]
    assert result.usage.prompt_tokens == 2  # one prompt per call (ScriptedGenerator: 1 each)
    assert [c.answer for c in result.candidates] == ["2"] * 4
    assert result.tree is not None
    graph = nx.node_link_graph(result.tree, edges="links")
    # the root's N first steps; each of the 2 copies of "s1" gets its own M under its node
    assert sorted(d for _, d in graph.out_degree()) == [0] * 6 + [2, 2, 4]
