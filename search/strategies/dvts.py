"""Diverse verifier tree search (Beeching et al. 2024, HuggingFace search-and-learn).

Symbols: N = ``strategy.n``, M = ``strategy.beam_width``, k = ``strategy.lookahead``.

Each problem's budget is split into N/M independent subtrees. At every depth each live
subtree samples M next steps of its current prefix, scores them, and greedily keeps its
single best child by aggregated PRM score (``strategy.aggregation``, the same rule as the
final pick). A subtree stops when that best child is finished (or cut by the token limit),
or after ``max_steps`` depths.

Candidates (as in search-and-learn): all M children of each subtree's last expansion, so
exactly N per problem; the chosen child of a stopped subtree is finished, its siblings are
finished only if the policy ended them too, and a subtree stopped by ``max_steps`` gives
M unfinished candidates (``finished=False``).

Budget per problem: M step generations per live subtree per depth, so at most
N * max_steps step generations (with lookahead, each child that goes on is rolled out up to
k more steps: at most N * (k + 1) * max_steps). One generate call (k + 1 with lookahead) and
one score call per depth for every live subtree of every problem.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from search.protocols import Generator, Scorer
from search.strategies.calls import Backends
from search.strategies.common import StrategyBase, build_results
from search.strategies.expansion import expand
from search.strategies.nodes import Node, SearchTree
from search.strategies.selection import predictions
from search.types import Candidate, Problem, SearchResult


@dataclass(eq=False)
class _Subtree:
    current: Node
    last_children: list[Node] = field(default_factory=list)
    live: bool = True


def _best(nodes: Sequence[Node]) -> Node:
    """The highest search score; ties go to the first sampled."""
    best = nodes[0]
    for node in nodes[1:]:
        assert node.search_score is not None and best.search_score is not None
        if node.search_score > best.search_score:
            best = node
    return best


class Dvts(StrategyBase):
    def run(
        self, problems: Sequence[Problem], generator: Generator, scorer: Scorer | None
    ) -> list[SearchResult]:
        config = self.config
        rule = self.begin(scorer)
        if not problems:
            return []
        start = time.perf_counter()
        width = config.beam_width
        backends = Backends(generator, scorer, config.batch_size, len(problems))
        trees = [SearchTree(problem) for problem in problems]
        subtrees = [[_Subtree(tree.root) for _ in range(config.n // width)] for tree in trees]

        for _ in range(config.max_steps):
            live = [
                (index, subtree)
                for index, problem_subtrees in enumerate(subtrees)
                for subtree in problem_subtrees
                if subtree.live
            ]
            if not live:
                break
            parents = [(index, subtree.current) for index, subtree in live]
            children = expand(backends, trees, parents, width, self.aggregation, config.lookahead)
            for (_, subtree), kids in zip(live, children, strict=True):
                subtree.last_children = kids
                subtree.current = _best(kids)
                subtree.live = not subtree.current.terminal

        candidates: list[tuple[Candidate, ...]] = [
            tuple(
                tree.candidate(node, self.aggregation)
                for subtree in problem_subtrees
                for node in subtree.last_children
            )
            for tree, problem_subtrees in zip(trees, subtrees, strict=True)
        ]
        assert all(len(c) == config.n for c in candidates)
        picks = [predictions(c, has_scorer=True) for c in candidates]
        tree_data: list[dict[str, Any] | None] = [
            tree.to_data() if config.save_trees else None for tree in trees
        ]
        return build_results(problems, candidates, picks, rule.value, backends, start, tree_data)
