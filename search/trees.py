"""Saving and loading search trees (``SearchResult.tree``, set with ``strategy.save_trees``).

A tree is stored as ``networkx.node_link_data(graph, edges="links")``: node ids are ints,
edges go parent -> child, node 0 is the root (its ``step`` is the question), and every node
has ``step``, ``depth``, ``num_tokens``, ``finished``, ``finish_reason``, ``step_scores``,
``score``, ``search_score``, ``visits``, ``value`` and ``prior``. One JSON file per problem.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import networkx as nx

from search.types import SearchResult

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
            "tree=None; fix: strategy.save_trees=true with strategy=beam, dvts or mcts"
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
