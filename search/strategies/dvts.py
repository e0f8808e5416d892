"""Diverse verifier tree search (Beeching et al. 2024, HuggingFace search-and-learn).

Symbols: N = ``strategy.n``, M = ``strategy.beam_width``, k = ``strategy.lookahead``.

Each problem's budget is split into N/M independent subtrees. At every depth each live
subtree samples M next steps of its current prefix, scores them, and greedily keeps its
single best child (``strategy.prune``: ``prm``, by its own aggregated PRM score,
``strategy.aggregation``, the same rule as the final pick; ``weighted``, by the summed
scores of the identical children among the M, see ``tree.prune_keys``). A subtree stops
when that best child is finished (or cut by the token limit), or after ``max_steps``
depths.

Candidates (as in search-and-learn): all M children of each subtree's last expansion, so
exactly N per problem; the chosen child of a stopped subtree is finished, its siblings are
finished only if the policy ended them too, and a subtree stopped by ``max_steps`` gives
M unfinished candidates (``finished=False``).

Subtrees of one problem whose current prefixes have the same steps (all of them at the
root, and often below it: a step the policy keeps writing is every subtree's best) are one
prompt sampled M times per copy, each copy taking its M continuations in turn: the same
draws in distribution as one prompt per subtree, and the prompt's tokens counted once (as
beam search does for its identical kept beams). The subtrees stay independent: each keeps
the best of its own M children.

Budget per problem: M step generations per live subtree per depth, so at most
N * max_steps step generations (with lookahead, each child that goes on is rolled out up to
k more steps: at most N * (k + 1) * max_steps). One score call per depth for every live
subtree of every problem, and one generate call per distinct number of copies among the
live subtrees' prefixes, plus k with lookahead (one ``n=1`` call per lookahead step for all
the children that go on). A saved tree (``strategy.save_trees``) shows each copy's M
children under that subtree's own node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from search.selection import Select
from search.strategies.base import Calls, Outcome, SearchStrategy
from search.strategies.tree import Node, SearchTree, expand, prune_keys
from search.types import Problem, Sampling


@dataclass(eq=False)
class _Subtree:
    current: Node
    last_children: list[Node] = field(default_factory=list)
    live: bool = True


def _best(nodes: Sequence[Node], rule: Select) -> Node:
    """The highest pruning key (``tree.prune_keys``); ties go to the first sampled."""
    keys = prune_keys(nodes, rule)
    return nodes[max(range(len(nodes)), key=lambda i: (keys[i], -i))]


def check_held(chosen: Sequence[Node], children: Sequence[list[Node]], by: str) -> None:
    """Refuse picks that no subtree picking them holds among its own children: such a node,
    finished, would stop its subtrees and be in none of their candidates."""
    held = {
        id(node)
        for node, kids in zip(chosen, children, strict=True)
        if any(node is kid for kid in kids)
    }
    if any(id(node) not in held for node in chosen):
        raise ValueError(
            "expected every chosen node among the children of a subtree that chose it (a "
            "subtree's children are its candidates if it stops there), got one held by none "
            f"of them from {by}.choose; fix: swap it into the list of a subtree that chose it "
            "(lists of subtrees at one prefix may be rearranged in place)"
        )


class Dvts(SearchStrategy):
    def choose(
        self, parents: Sequence[tuple[int, Node]], children: Sequence[list[Node]]
    ) -> list[Node]:
        """The node each live subtree goes on from, given its ``(problem index, current
        node)`` and its scored children at this depth: its own best child
        (``strategy.prune``). Subtrees stay independent; a subclass may pick otherwise (e.g.
        ``benchmarks/dvts_picks.py`` measures picks shared between subtrees at one prefix).
        A subtree's own list in ``children`` is its candidates if it stops, so every picked
        node must be in the list of a subtree that picked it (``check_held``): a subclass
        that picks across subtrees at one prefix swaps children between their lists in place
        (their children are alike: one prefix, one prompt)."""
        return [_best(kids, self.config.prune) for kids in children]

    def search(self, problems: Sequence[Problem], calls: Calls) -> list[Outcome]:
        config = self.config
        width = config.beam_width
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
            children = expand(
                calls,
                trees,
                [(index, subtree.current) for index, subtree in live],
                width,
                self.aggregation,
                config.lookahead,
                Sampling(temperature=config.lookahead_temperature),
                share_prompts=True,  # subtrees of a problem at one prefix: one prompt
            )
            chosen = self.choose([(index, subtree.current) for index, subtree in live], children)
            check_held(chosen, children, type(self).__name__)
            for (_, subtree), kids, node in zip(live, children, chosen, strict=True):
                subtree.last_children = kids
                subtree.current = node
                subtree.live = not node.terminal

        outcomes = []
        for tree, problem_subtrees in zip(trees, subtrees, strict=True):
            candidates = tuple(
                tree.candidate(node, self.aggregation)
                for subtree in problem_subtrees
                for node in subtree.last_children
            )
            assert len(candidates) == config.n
            outcomes.append(Outcome(candidates, tree))
        return outcomes
