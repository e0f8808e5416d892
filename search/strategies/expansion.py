"""One search depth of a tree strategy: expand nodes of many problems and score the children.

``expand`` makes one generate call (``Until.step``, ``width`` continuations per node) and one
score call for all the children of all the given nodes, whatever problems they belong to.
With ``lookahead`` k > 0 (Snell et al. 2024, arXiv 2408.03314) every child that can go on is
first rolled out k more steps (one extra generate call per lookahead step, ``n=1``); the
PRM scores the rolled-out prefix, pruning ranks by that (``Node.search_score``), and the
rollout is then dropped. The child keeps the scores of its own steps, read from the
rolled-out prefix's scores (a causal PRM gives the same as scoring the child alone). The
rollouts are sampled by the same generator: the ``Generator`` protocol carries no sampling
parameters, so for greedy rollouts give the strategy a generator with temperature 0.
"""

from __future__ import annotations

from collections.abc import Sequence

from search.aggregation import Aggregation, aggregate
from search.strategies.calls import Backends
from search.strategies.nodes import Node, SearchTree
from search.types import FinishReason, Prefix, Until


def expand(
    backends: Backends,
    trees: Sequence[SearchTree],
    parents: Sequence[tuple[int, Node]],
    width: int,
    aggregation: Aggregation,
    lookahead: int = 0,
) -> list[list[Node]]:
    """``width`` scored children of every ``(problem_index, node)`` in ``parents``."""
    if not parents:
        return []
    owners = [index for index, _ in parents]
    prefixes = [trees[index].prefix(node) for index, node in parents]
    generations = backends.generate(owners, prefixes, width, Until.step)
    children: list[list[Node]] = []
    flat: list[tuple[int, Node]] = []
    for (index, node), generation in zip(parents, generations, strict=True):
        kids = [trees[index].add(node, c) for c in generation.continuations]
        children.append(kids)
        flat.extend((index, kid) for kid in kids)

    rolled = [kid.steps for _, kid in flat]
    live = [position for position, (_, kid) in enumerate(flat) if not kid.terminal]
    for _ in range(lookahead):
        if not live:
            break
        rollouts = backends.generate(
            [flat[p][0] for p in live],
            [Prefix(trees[flat[p][0]].problem, rolled[p]) for p in live],
            1,
            Until.step,
        )
        still_live = []
        for position, generation in zip(live, rollouts, strict=True):
            continuation = generation.continuations[0]
            rolled[position] = rolled[position] + continuation.steps
            if continuation.finish_reason is FinishReason.step:
                still_live.append(position)
        live = still_live

    scores = backends.score(
        [index for index, _ in flat],
        [
            Prefix(trees[index].problem, steps)
            for (index, _), steps in zip(flat, rolled, strict=True)
        ],
    )
    for (_, kid), steps, step_scores in zip(flat, rolled, scores, strict=True):
        own = step_scores[: len(kid.steps)]
        search_score = aggregate(step_scores, aggregation) if len(steps) > len(kid.steps) else None
        kid.set_scores(own, aggregation, search_score)
    return children
