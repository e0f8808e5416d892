"""Search trees survive a save/load round trip, one file per problem."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

from search.aggregation import Aggregation
from search.envs.arith.fakes import FakeGenerator, FakeScorer
from search.envs.arith.world import make_split
from search.strategies import StrategyConfig, StrategyName, build_strategy
from search.strategies.tree import load_tree, save_tree, tree_filename
from search.types import Problem


@pytest.mark.parametrize("name", ["beam", "dvts", "mcts"])
def test_trees_round_trip(name: str, tmp_path: Path) -> None:
    problems = make_split("test", size=3)
    config = StrategyConfig(
        name=StrategyName(name),
        n=4,
        beam_width=2,
        num_simulations=6,
        children_per_expansion=2,
        save_trees=True,
    )
    generator = FakeGenerator(seed=0, error_rate=0.3)
    results = build_strategy(config, Aggregation.min).run(problems, generator, FakeScorer())
    paths = [save_tree(result, tmp_path) for result in results]
    assert len(set(paths)) == len(problems)
    tree_tokens = 0
    for result, path in zip(results, paths, strict=True):
        assert path.name == f"{result.problem.id}.json"
        assert result.tree is not None
        original = nx.node_link_graph(result.tree, edges="links")
        loaded = load_tree(path)
        assert isinstance(loaded, nx.DiGraph)
        assert nx.is_arborescence(loaded)
        assert sorted(loaded.edges) == sorted(original.edges)
        assert dict(loaded.nodes(data=True)) == dict(original.nodes(data=True))
        assert loaded.nodes[0]["step"] == result.problem.question
        # Every candidate's path is in the tree.
        steps = {loaded.nodes[v]["step"] for v in loaded if v != 0}
        for candidate in result.candidates:
            assert set(candidate.steps) <= steps
        tree_tokens += sum(tokens for _, tokens in loaded.nodes(data="num_tokens"))
    # Every sampled continuation is a node (no lookahead here), so the trees hold exactly
    # the tokens the generator produced.
    assert tree_tokens == generator.usage.generated_tokens


def test_trees_only_when_asked() -> None:
    config = StrategyConfig(name=StrategyName.beam, n=2, beam_width=2)
    [result] = build_strategy(config, Aggregation.min).run(
        make_split("test", size=1), FakeGenerator(), FakeScorer()
    )
    assert result.tree is None
    with pytest.raises(ValueError, match=r"fix: strategy\.save_trees=true"):
        save_tree(result, Path("unused"))


def test_file_names_are_safe_and_distinct() -> None:
    names = {tree_filename(i) for i in ["a/b", "a_b", "a b", "../x", "plain-id.7"]}
    assert len(names) == 5
    assert tree_filename("plain-id.7") == "plain-id.7.json"
    for name in names:
        assert "/" not in name and " " not in name and not name.startswith(".")


def test_problem_ids_with_slashes_save_inside_the_directory(tmp_path: Path) -> None:
    problem = make_split("test", size=1)[0]
    odd = Problem(id="math/algebra/1", question=problem.question, answer=problem.answer)
    config = StrategyConfig(name=StrategyName.dvts, n=2, beam_width=2, save_trees=True)
    [result] = build_strategy(config, Aggregation.min).run([odd], FakeGenerator(), FakeScorer())
    path = save_tree(result, tmp_path)
    assert path.parent == tmp_path
    assert load_tree(path).graph["problem_id"] == "math/algebra/1"
