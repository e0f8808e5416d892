"""Step-level beam search with a PRM (Snell et al. 2024, arXiv 2408.03314, Sec. 5.1).

Symbols: N = ``strategy.n``, M = ``strategy.beam_width``, k = ``strategy.lookahead``.

1. Sample N first steps of each problem.
2. Score every new prefix; set the finished ones (the policy ended the solution) aside as
   candidates, and the ones cut by the token limit as dead ends.
3. Keep the N/M best of the rest (``strategy.prune``: ``prm`` ranks each child by its own
   aggregated PRM score, ``strategy.aggregation``, the same rule as the final pick;
   ``weighted`` by the summed scores of the identical children of its depth, so a step
   the policy wrote several times pools their votes, see ``tree.prune_keys``); sample M
   next steps of each; go to 2. Kept beams with the same steps are one prefix sampled
   M times per copy (the same draws, one prompt).
4. Stop when N candidates have finished, no beam is left, or after ``max_steps`` depths.
   The result is the N best finished candidates by aggregated score; when fewer than N
   finished, the best unfinished prefixes (dead ends and the last depth's beams) fill up to
   exactly N, with ``finished=False``. (Every depth keeps finished + unfinished >= N, so
   there are always enough.)

Budget per problem: at most N step generations per depth (exactly N at the first; M times
min(N/M, live beams) after), so at most N * max_steps step generations in all; with
lookahead, each child that goes on is rolled out up to k more steps (at most
N * (k + 1) * max_steps step generations). One score call per depth for every live beam of
every problem, and one generate call per distinct number of copies among the kept beams
(one when no two kept beams are the same), plus k with lookahead (one ``n=1`` call per
lookahead step for all the children that go on).
"""

from __future__ import annotations

from collections.abc import Sequence

from search.strategies.base import Calls, Outcome, SearchStrategy
from search.strategies.tree import Node, SearchTree, expand, prune_keys
from search.types import Problem, Sampling


def _best_first(nodes: Sequence[Node]) -> list[Node]:
    """Highest aggregated score first; ties keep creation order."""

    def key(node: Node) -> float:
        assert node.score is not None, "every expanded node is scored"
        return -node.score

    return sorted(nodes, key=key)


class BeamSearch(SearchStrategy):
    def search(self, problems: Sequence[Problem], calls: Calls) -> list[Outcome]:
        config = self.config
        n, width = config.n, config.beam_width
        keep = n // width
        trees = [SearchTree(problem) for problem in problems]
        finished: list[list[Node]] = [[] for _ in problems]
        dead_ends: list[list[Node]] = [[] for _ in problems]
        last_beams: list[list[Node]] = [[] for _ in problems]
        # the root as N/M copies: M children each, N first steps
        frontier: list[list[Node]] = [[tree.root] * keep for tree in trees]

        for _ in range(config.max_steps):
            live = [
                (index, beam)
                for index in range(len(problems))
                if len(finished[index]) < n
                for beam in frontier[index]
            ]
            if not live:
                break
            children = expand(
                calls,
                trees,
                live,
                width,
                self.aggregation,
                config.lookahead,
                Sampling(temperature=config.lookahead_temperature),
                share_prompts=True,  # kept beams with the same steps: one prompt
            )
            new: dict[int, list[Node]] = {}
            for (index, _), kids in zip(live, children, strict=True):
                new.setdefault(index, []).extend(kids)
            for index, kids in new.items():
                kids.sort(key=lambda kid: kid.id)  # the order sampled, shared prompts' included
                finished[index].extend(kid for kid in kids if kid.finished)
                dead_ends[index].extend(kid for kid in kids if kid.terminal and not kid.finished)
                beams = [kid for kid in kids if not kid.terminal]
                last_beams[index] = beams
                keys = prune_keys(beams, config.prune)
                order = sorted(range(len(beams)), key=lambda i: -keys[i])  # ties: first sampled
                frontier[index] = [beams[i] for i in order[:keep]]

        outcomes = []
        for index, tree in enumerate(trees):
            chosen = _best_first(finished[index])[:n]
            if len(chosen) < n:
                chosen += _best_first(dead_ends[index] + last_beams[index])[: n - len(chosen)]
            assert len(chosen) == n, "finished + unfinished >= N at every depth"
            candidates = tuple(tree.candidate(node, self.aggregation) for node in chosen)
            outcomes.append(Outcome(candidates, tree))
        return outcomes
