"""benchmarks/dvts_picks.py: the three ways DVTS subtrees pick the node they go on from."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import dvts_picks  # noqa: E402

from search.envs.arith.fakes import FakeGenerator, FakeScorer  # noqa: E402
from search.envs.arith.world import make_split  # noqa: E402
from search.strategies.dvts import Dvts  # noqa: E402
from search.strategies.tree import Node, SearchTree  # noqa: E402
from search.types import Continuation, FinishReason  # noqa: E402


def recorded(pick: str, seed: int = 0) -> tuple[Any, list[list[Node]]]:
    """The strategy of ``pick`` and, per depth, the nodes its subtrees went on from."""
    strategy = dvts_picks.dvts(pick, seed)
    chosen_per_depth: list[list[Node]] = []
    original = strategy.choose

    def spy(parents: Any, children: Any) -> list[Node]:
        chosen = original(parents, children)
        chosen_per_depth.append(chosen)
        return chosen

    strategy.choose = spy  # type: ignore[method-assign]
    return strategy, chosen_per_depth


def run(pick: str) -> tuple[list[Any], list[list[Node]]]:
    strategy, chosen = recorded(pick)
    problems = make_split("test", size=4)
    # a noisy PRM and a policy that errs often: children of one prefix differ and tie rarely
    results = strategy.run(
        problems, FakeGenerator(seed=3, error_rate=0.4), FakeScorer(seed=3, noise=0.05)
    )
    return results, chosen


def test_own_is_the_engines_dvts() -> None:
    strategy = dvts_picks.dvts("own", 0)
    assert type(strategy) is Dvts and strategy.config.n == 16 and strategy.config.beam_width == 4


def test_shared_picks_send_subtrees_at_one_prefix_on_together() -> None:
    _, chosen = run("shared")
    root_depth = chosen[0]  # all 4 subtrees of a problem start at its root: one prefix
    for problem in range(4):
        picks = root_depth[4 * problem : 4 * problem + 4]
        assert len({node.steps for node in picks}) == 1


def test_distinct_picks_keep_subtrees_at_one_prefix_apart() -> None:
    results, chosen = run("distinct")
    root_depth = chosen[0]
    spread = [
        len({node.steps for node in root_depth[4 * problem : 4 * problem + 4]})
        for problem in range(4)
    ]
    own_results, own_chosen = run("own")
    own_spread = [
        len({node.steps for node in own_chosen[0][4 * problem : 4 * problem + 4]})
        for problem in range(4)
    ]
    # the distinct picks take as many different first steps as the pooled 16 children hold
    # (up to 4), so never fewer than the independent picks, and more on at least one problem
    assert all(d >= o for d, o in zip(spread, own_spread, strict=True))
    assert sum(spread) > sum(own_spread)
    assert all(len(r.candidates) == 16 for r in results + own_results)


def nodes(count: int) -> list[Node]:
    """``count`` children of one root (alike for ``deal``: one prefix)."""
    tree = SearchTree(make_split("test", size=1)[0])
    return [
        tree.add(tree.root, Continuation(f"s{i}", (f"s{i}",), FinishReason.step, 1))
        for i in range(count)
    ]


def test_deal_swaps_each_pick_into_a_list_of_a_subtree_that_picked_it() -> None:
    a, b, c, d, e, f = nodes(6)
    children = [[a, b], [c, d], [e, f]]
    # crossed picks: subtree 0 picks c (in list 1), subtree 1 picks a (in list 0)
    dvts_picks.deal([0, 1, 2], [c, a, e], children)
    assert children == [[b, c], [a, d], [e, f]]  # b and a swapped for c and a's places
    assert sorted(id(n) for lst in children for n in lst) == sorted(map(id, (a, b, c, d, e, f)))
    assert [len(lst) for lst in children] == [2, 2, 2]
    # a shared pick held by one of its choosers: nothing moves
    children = [[a, b], [c, d]]
    dvts_picks.deal([0, 1], [c, c], children)
    assert children == [[a, b], [c, d]]
    # a pick shared by subtrees that do not hold it (its holder picked another): swapped into
    # the first chooser's list for a child nobody picked
    children = [[a, b], [c, d], [e, f]]
    dvts_picks.deal([0, 1, 2], [e, e, a], children)
    assert children == [[b, e], [c, d], [a, f]]  # e to subtree 0 for b, then a back to 2


def test_pooled_picks_keep_every_finished_pick_among_its_problems_candidates() -> None:
    """A subtree that stops on a finished child picked from the pool has it (by identity)
    among its own children, so among its problem's candidates."""
    for pick in ("distinct", "shared"):
        strategy = dvts_picks.dvts(pick, 0)
        stops: list[tuple[Node, list[Node]]] = []
        original = strategy.choose

        def spy(
            parents: Any, children: Any, _choose: Any = original, _stops: Any = stops
        ) -> list[Node]:
            chosen = _choose(parents, children)
            for node, kids in zip(chosen, children, strict=True):
                if node.finished:
                    _stops.append((node, kids))
            return chosen

        strategy.choose = spy  # type: ignore[method-assign]
        strategy.run(
            make_split("test", size=4),
            FakeGenerator(seed=3, error_rate=0.4),
            FakeScorer(seed=3, noise=0.05),
        )
        assert stops
        held = {id(node) for node, kids in stops if any(node is kid for kid in kids)}
        assert all(id(node) in held for node, _ in stops)


def test_spread_counts_distinct_texts_first_steps_and_answers() -> None:
    results, _ = run("own")
    stats = dvts_picks.spread(results)
    assert 1.0 <= stats["distinct_first_steps"] <= stats["distinct_candidates"] <= 16.0
    assert 1.0 <= stats["distinct_answers"] <= stats["distinct_candidates"]


def test_markdown_pairs_every_row_with_own() -> None:
    def row(name: str, correct: list[int]) -> dict[str, Any]:
        return {
            "row": name,
            "seeds": [0],
            "correct": correct,
            "passed": [1, 1, 1, 1],
            "policy_tokens": 100.0,
            "distinct_candidates": 3.0,
            "distinct_first_steps": 1.5,
            "distinct_answers": 2.0,
            "wall_s": 1.0,
        }

    text = dvts_picks.markdown(
        [row("dvts/own", [1, 0, 1, 0]), row("dvts/shared", [1, 1, 1, 0])], "validation", 4
    )
    assert "| dvts/own | 0.500 ± 0.289 | - |" in text
    assert "| dvts/shared | 0.750 ± 0.250 | +0.250 ± 0.250 |" in text
