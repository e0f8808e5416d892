"""Step-level Monte Carlo tree search with PUCT and a PRM as the value function.

A node is a step (its path from the root is a prefix). One simulation of one problem:

1. Selection: from the root, follow the child maximising
   ``Q(c) + c_puct * P(c) * sqrt(N(parent)) / (1 + N(c))`` down to a leaf. ``Q(c)`` is the
   mean backed-up value, or before ``c`` is visited its own value; ``P(c)`` is the prior
   (``strategy.prior``: uniform, or the children's scores normalised).
2. Expansion and evaluation: sample ``children_per_expansion`` next steps of the leaf; the
   value of each new child is the aggregated PRM score of its path (``strategy.aggregation``).
   A leaf that cannot be continued (finished, cut by the token limit, or ``max_steps`` deep)
   is not expanded; its own value is used.
3. Backup: every node on the path from the root to the leaf gets one visit and the value
   (the mean of the new children's values, or the terminal leaf's value).

So after S simulations the root has S visits and every node's visits equal the simulations
that ended at it plus its children's visits.

Simulations are batched across problems: one round is one simulation of every problem, with
one generate call and one score call for all the leaves that need expanding (none when
every problem selected a terminal leaf). ``num_simulations`` rounds; then a problem whose
tree holds no finished path yet (the policy never ended a solution) keeps searching, one
round at a time, for at most ``extra_simulations`` more rounds, until it has one.

Candidates: the finished nodes (solutions the policy ended), ranked by ``mcts_final``
(``most_visited``: visits, then value; ``best_value``: value, then visits), the top N. When
fewer than N finished, the unfinished nodes fill up (leaves before inner nodes, best value
first) with ``finished=False`` (graded wrong whatever they say); when the whole tree has
fewer than N non-root nodes, the ranked list repeats. ``prediction`` is the top finished
node's answer (``None`` when none finished); ``predictions`` also holds the other ranking
and the prm / weighted / majority picks over the finished candidates.

Budget per problem: at most ``(num_simulations + extra_simulations) *
children_per_expansion`` step generations and as many scored prefixes; at most
``num_simulations + extra_simulations`` generate and score calls (the extra ones only while
no path has finished).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from search.strategies.base import Calls, Outcome, SearchStrategy
from search.strategies.config import MctsFinal, Prior
from search.strategies.tree import Node, SearchTree, expand
from search.types import Problem

_RANKINGS: dict[MctsFinal, Callable[[Node], tuple[float, float]]] = {
    MctsFinal.most_visited: lambda node: (node.visits, node.value),
    MctsFinal.best_value: lambda node: (node.value, node.visits),
}


def _ranked(nodes: Sequence[Node], final: MctsFinal) -> list[Node]:
    key = _RANKINGS[final]
    return sorted(nodes, key=lambda node: tuple(-part for part in key(node)))


def _backup(path: Sequence[Node], value: float) -> None:
    for node in path:
        node.visits += 1
        node.value_sum += value


def _set_priors(children: Sequence[Node], prior: Prior) -> None:
    scores = [child.score or 0.0 for child in children]
    total = sum(scores)
    for child, score in zip(children, scores, strict=True):
        if prior is Prior.score and total > 0:
            child.prior = score / total
        else:
            child.prior = 1.0 / len(children)


class Mcts(SearchStrategy):
    def search(self, problems: Sequence[Problem], calls: Calls) -> list[Outcome]:
        config = self.config
        trees = [SearchTree(problem) for problem in problems]

        everyone = list(range(len(problems)))
        for _ in range(config.num_simulations):
            self._simulate(calls, trees, everyone)
        for _ in range(config.extra_simulations):
            unfinished = [i for i in everyone if not any(n.finished for n in trees[i].nodes)]
            if not unfinished:
                break
            self._simulate(calls, trees, unfinished)

        outcomes = []
        for tree in trees:
            candidates = tuple(
                tree.candidate(node, self.aggregation) for node in self._candidates(tree)
            )
            pool = [node for node in tree.nodes if node.finished]  # never an unfinished guess
            picks: dict[str, str | None] = {}
            for final in MctsFinal:
                top = _ranked(pool, final)[0] if pool else None
                picks[final.value] = (
                    None if top is None else tree.candidate(top, self.aggregation).answer
                )
            outcomes.append(Outcome(candidates, tree, picks))
        return outcomes

    def _simulate(self, calls: Calls, trees: Sequence[SearchTree], indices: list[int]) -> None:
        """One simulation of each problem in ``indices``: one generate and one score call."""
        config = self.config
        to_expand: list[tuple[int, list[Node]]] = []
        for index in indices:
            path = self._select(trees[index].root)
            leaf = path[-1]
            if leaf.terminal or leaf.depth >= config.max_steps:
                _backup(path, leaf.value)
            else:
                to_expand.append((index, path))
        children = expand(
            calls,
            trees,
            [(index, path[-1]) for index, path in to_expand],
            config.children_per_expansion,
            self.aggregation,
        )
        for (_, path), kids in zip(to_expand, children, strict=True):
            _set_priors(kids, config.prior)
            _backup(path, sum(kid.value for kid in kids) / len(kids))

    def prediction_rule(self, has_scorer: bool) -> str:
        """MCTS predicts the top of its own ranking (``strategy.mcts_final``)."""
        return self.config.mcts_final.value

    def _select(self, root: Node) -> list[Node]:
        """The path from the root to the leaf PUCT selects."""
        path = [root]
        node = root
        while node.children:
            explore = self.config.c_puct * math.sqrt(node.visits)
            node = max(
                node.children,
                key=lambda child: child.value + explore * child.prior / (1 + child.visits),
            )
            path.append(node)
        return path

    def _candidates(self, tree: SearchTree) -> list[Node]:
        """Exactly N nodes: finished ones ranked by ``mcts_final``, then unfinished ones."""
        n = self.config.n
        finished = _ranked([node for node in tree.nodes if node.finished], self.config.mcts_final)
        unfinished = sorted(
            (node for node in tree.nodes[1:] if not node.finished),
            key=lambda node: (bool(node.children), -node.value),
        )
        ranked = finished + unfinished
        assert ranked, "the first simulation always expands the root"
        return [ranked[position % len(ranked)] for position in range(n)]
