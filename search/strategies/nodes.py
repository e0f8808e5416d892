"""The search tree of one problem, as beam, DVTS and MCTS grow it.

A node is one generation event: the step(s) one continuation added to its parent's prefix.
The root is the question (no steps). Nodes are mutable bookkeeping of a running search; what
leaves a strategy is frozen (``Candidate``) or plain data (``networkx.node_link_data``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from search.aggregation import Aggregation, aggregate
from search.answers import extract_answer
from search.types import STEP_SEPARATOR, Candidate, Continuation, FinishReason, Prefix, Problem


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


def make_candidate(
    steps: tuple[str, ...],
    finished: bool,
    num_tokens: int,
    step_scores: tuple[float, ...] | None,
    aggregation: Aggregation,
) -> Candidate:
    """A candidate with its answer (``extract_answer`` of the joined steps) and its
    aggregated score (``None`` without step scores)."""
    answer = extract_answer(STEP_SEPARATOR.join(steps)) if steps else None
    score = None if step_scores is None else aggregate(step_scores, aggregation)
    return Candidate(
        steps=steps,
        finished=finished,
        num_tokens=num_tokens,
        answer=answer,
        step_scores=step_scores,
        score=score,
    )


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
            node.steps, node.finished, node.path_tokens, node.step_scores, aggregation
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
