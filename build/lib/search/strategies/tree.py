"""The search tree of one problem as beam, DVTS and MCTS grow it: nodes, one search depth
(``expand``), and the tree saved to and loaded from disk.

A node is one generation event: the step(s) one continuation added to its parent's prefix.
The root is the question (no steps). Nodes are mutable bookkeeping of a running search; what
leaves a strategy is frozen (``Candidate``) or plain data (``networkx.node_link_data``).

``expand`` makes one generate call (``Until.step``, ``width`` continuations per node; one per
distinct count when the nodes ask different counts) and one score call for all the children
of all the given nodes, whatever problems they belong to.
With ``lookahead`` k > 0 (Snell et al. 2024, arXiv 2408.03314) every child that can go on is
first rolled out k more steps (one extra generate call per lookahead step, ``n=1``); the
PRM scores the rolled-out prefix, pruning ranks by that (``Node.search_score``), and the
rollout is then dropped. The child keeps the scores of its own steps, read from the
rolled-out prefix's scores (a causal PRM gives the same as scoring the child alone). The
rollouts are sampled by the same generator with ``rollout`` as their per-call settings:
greedy (temperature 0) by default, as in Snell et al. and search-and-learn.

A saved tree (``SearchResult.tree``, with ``strategy.save_trees``) is
``networkx.node_link_data(graph, edges="links")``: node ids are ints, edges go parent ->
child, node 0 is the root (its ``step`` is the question), and every node has ``step``,
``depth``, ``num_tokens``, ``finished``, ``finish_reason``, ``step_scores``, ``score``,
``search_score``, ``visits``, ``value`` and ``prior``. One JSON file per problem.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from search.aggregation import Aggregation, aggregate
from search.selection import Select
from search.strategies.base import Calls, make_candidate
from search.types import (
    GREEDY,
    STEP_SEPARATOR,
    Candidate,
    Continuation,
    FinishReason,
    Prefix,
    Problem,
    Sampling,
    SearchResult,
    Until,
)


@dataclass(eq=False)
class Node:
    """``steps`` is the whole path from the root; ``num_tokens`` the policy tokens of this
    node's own continuation, ``path_tokens`` those of the whole path. ``step_scores`` are
    the PRM's scores of ``steps`` and ``score`` their aggregate; ``search_score`` is what
    pruning ranks by (``score``, or the score of a lookahead rollout). ``visits`` and
    ``value_sum`` are MCTS statistics."""

    id: int
    parent: Node | None
    steps: tuple[str, ...]
    new_steps: tuple[str, ...]
    num_tokens: int
    path_tokens: int
    finish_reason: FinishReason | None
    step_scores: tuple[float, ...] | None = None
    score: float | None = None
    search_score: float | None = None
    visits: int = 0
    value_sum: float = 0.0
    prior: float = 1.0
    children: list[Node] = field(default_factory=list)

    @property
    def depth(self) -> int:
        return 0 if self.parent is None else self.parent.depth + 1

    @property
    def finished(self) -> bool:
        return self.finish_reason is FinishReason.eos

    @property
    def terminal(self) -> bool:
        """Cannot be continued: the policy ended it, or it ran into the token limit."""
        return self.finish_reason in (FinishReason.eos, FinishReason.length)

    @property
    def value(self) -> float:
        """Mean backed-up value; before any visit, the node's own aggregated score."""
        if self.visits:
            return self.value_sum / self.visits
        return 0.0 if self.score is None else self.score

    def set_scores(
        self, scores: Sequence[float], aggregation: Aggregation, search_score: float | None = None
    ) -> None:
        self.step_scores = tuple(scores)
        self.score = aggregate(self.step_scores, aggregation)
        self.search_score = self.score if search_score is None else search_score


class SearchTree:
    """All nodes grown for one problem, root first."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.root = Node(
            id=0,
            parent=None,
            steps=(),
            new_steps=(),
            num_tokens=0,
            path_tokens=0,
            finish_reason=None,
        )
        self.nodes: list[Node] = [self.root]

    def add(self, parent: Node, continuation: Continuation) -> Node:
        node = Node(
            id=len(self.nodes),
            parent=parent,
            steps=parent.steps + continuation.steps,
            new_steps=continuation.steps,
            num_tokens=continuation.num_tokens,
            path_tokens=parent.path_tokens + continuation.num_tokens,
            finish_reason=continuation.finish_reason,
        )
        parent.children.append(node)
        self.nodes.append(node)
        return node

    def prefix(self, node: Node) -> Prefix:
        return Prefix(self.problem, node.steps)

    def candidate(self, node: Node, aggregation: Aggregation) -> Candidate:
        return make_candidate(
            node.steps, node.finish_reason, node.path_tokens, node.step_scores, aggregation
        )

    def to_graph(self) -> nx.DiGraph:
        """The tree as a ``networkx.DiGraph``: node ids are ints, edges parent -> child; the
        root's ``step`` is the question."""
        graph = nx.DiGraph(problem_id=self.problem.id, question=self.problem.question)
        for node in self.nodes:
            attributes: dict[str, Any] = {
                "step": self.problem.question
                if node.parent is None
                else STEP_SEPARATOR.join(node.new_steps),
                "depth": node.depth,
                "num_tokens": node.num_tokens,
                "finished": node.finished,
                "finish_reason": None if node.finish_reason is None else node.finish_reason.value,
                "step_scores": None if node.step_scores is None else list(node.step_scores),
                "score": node.score,
                "search_score": node.search_score,
                "visits": node.visits,
                "value": node.value,
                "prior": node.prior,
            }
            graph.add_node(node.id, **attributes)
            if node.parent is not None:
                graph.add_edge(node.parent.id, node.id)
        return graph

    def to_data(self) -> dict[str, Any]:
        """``networkx.node_link_data(graph, edges="links")``: JSON-ready."""
        data: dict[str, Any] = nx.node_link_data(self.to_graph(), edges="links")
        return data


# -- one search depth -----------------------------------------------------------------------
def expand(
    calls: Calls,
    trees: Sequence[SearchTree],
    parents: Sequence[tuple[int, Node]],
    width: int | Sequence[int],
    aggregation: Aggregation,
    lookahead: int = 0,
    rollout: Sampling = GREEDY,
    share_prompts: bool = False,
) -> list[list[Node]]:
    """``width`` scored children of every ``(problem_index, node)`` in ``parents`` (one
    count for all, or one per parent), each parent's in the order sampled, under that parent.

    ``share_prompts``: parents of one problem with the same steps (``same_prefix_groups``,
    e.g. identical kept beams, or DVTS subtrees at one prefix) are sent as one prompt asking
    all their continuations, handed out in order, each parent's own count: the same
    distribution as one prompt per parent, one prompt's tokens."""
    if not parents:
        return []
    counts = [width] * len(parents) if isinstance(width, int) else list(width)
    if share_prompts:
        groups = same_prefix_groups(parents)
    else:
        groups = [[position] for position in range(len(parents))]
    sent = [parents[group[0]] for group in groups]
    generations = calls.generate(
        [index for index, _ in sent],
        [trees[index].prefix(node) for index, node in sent],
        [sum(counts[position] for position in group) for group in groups],
        Until.step,
    )
    children: list[list[Node]] = [[] for _ in parents]
    flat: list[tuple[int, Node]] = []
    for group, generation in zip(groups, generations, strict=True):
        continuations = iter(generation.continuations)
        for position in group:
            index, node = parents[position]
            kids = [trees[index].add(node, next(continuations)) for _ in range(counts[position])]
            children[position] = kids
            flat.extend((index, kid) for kid in kids)

    rolled = [kid.steps for _, kid in flat]
    live = [position for position, (_, kid) in enumerate(flat) if not kid.terminal]
    for _ in range(lookahead):
        if not live:
            break
        rollouts = calls.generate(
            [flat[p][0] for p in live],
            [Prefix(trees[flat[p][0]].problem, rolled[p]) for p in live],
            1,
            Until.step,
            rollout,
        )
        still_live = []
        for position, generation in zip(live, rollouts, strict=True):
            continuation = generation.continuations[0]
            rolled[position] = rolled[position] + continuation.steps
            if continuation.finish_reason is FinishReason.step:
                still_live.append(position)
        live = still_live

    scores = calls.score(
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


def same_prefix_groups(parents: Sequence[tuple[int, Node]]) -> list[list[int]]:
    """Positions in ``parents`` grouped by (problem, steps), in first-seen order: nodes of one
    problem with the same steps are one prefix, which ``expand(share_prompts=True)`` sends
    once for all of them."""
    groups: dict[tuple[int, tuple[str, ...]], list[int]] = {}
    for position, (index, node) in enumerate(parents):
        groups.setdefault((index, node.steps), []).append(position)
    return list(groups.values())


# -- pruning ---------------------------------------------------------------------------------
def prune_keys(nodes: Sequence[Node], rule: Select) -> list[float]:
    """What beam search and DVTS rank ``nodes`` by (the children of one problem's depth, or of
    one subtree): ``prm``, each node's own search score; ``weighted``, the sum of the search
    scores of the nodes among ``nodes`` with the same steps (identical siblings pool their
    votes: the PRM-weighted vote of the final pick, applied to each step)."""
    scores = [node.search_score for node in nodes]
    if any(score is None for score in scores):
        raise ValueError("expected every node to be scored before pruning, got an unscored one")
    if rule is Select.prm:
        return [float(score) for score in scores if score is not None]
    if rule is not Select.weighted:
        raise ValueError(
            f"expected pruning by prm or weighted, got {rule.value!r}; fix: strategy.prune=weighted"
        )
    totals: dict[tuple[str, ...], float] = {}
    for node, score in zip(nodes, scores, strict=True):
        assert score is not None
        totals[node.steps] = totals.get(node.steps, 0.0) + score
    return [totals[node.steps] for node in nodes]


# -- saving and loading --------------------------------------------------------------------
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def tree_filename(problem_id: str) -> str:
    """A file name for ``problem_id``: unsafe characters become ``_``, and a short hash of
    the id is added when that changed anything, so distinct ids never share a file."""
    safe = _UNSAFE.sub("_", problem_id).strip(".") or "problem"
    if safe != problem_id:
        safe += "-" + hashlib.sha1(problem_id.encode()).hexdigest()[:8]
    return safe + ".json"


def save_tree(result: SearchResult, directory: Path) -> Path:
    """Write ``result.tree`` to ``directory/<problem id>.json`` and return the path."""
    if result.tree is None:
        raise ValueError(
            f"expected a result with a search tree for problem {result.problem.id!r}, got "
            "tree=None; fix: strategy.save_trees=true with strategy=beam, dvts, mcts or "
            "particle_filtering"
        )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / tree_filename(result.problem.id)
    path.write_text(json.dumps(result.tree), encoding="utf-8")
    return path


def load_tree(path: Path) -> nx.DiGraph:
    """The tree written by ``save_tree`` as a ``networkx.DiGraph``."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    graph = nx.node_link_graph(data, directed=True, multigraph=False, edges="links")
    if not isinstance(graph, nx.DiGraph):
        raise ValueError(f"expected a directed search tree in {path}, got {type(graph).__name__}")
    return graph
