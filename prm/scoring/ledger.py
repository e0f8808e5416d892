"""Which token prefixes a scorer has already encoded: the ``new_tokens`` of ``ScoreOutput``.

Per problem, every encoded token sequence is kept in a radix tree (edges hold runs of token
ids), so ``record`` returns the tokens of a new input past its longest common prefix with
anything encoded before for that problem: what an unbounded prefix cache would still have to
compute. Memory grows with the distinct tokens encoded, like a KV cache without eviction.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from search.kv_tree import common_length


class _Node:
    __slots__ = ("children", "edge")

    def __init__(self, edge: np.ndarray) -> None:
        self.edge = edge  # token ids on the edge into this node
        self.children: dict[int, _Node] = {}


class TokenLedger:
    """Longest-common-prefix bookkeeping of encoded token sequences, per key (problem)."""

    def __init__(self) -> None:
        self._roots: dict[Hashable, _Node] = {}

    def record(self, key: Hashable, token_ids: Sequence[int]) -> int:
        """Add ``token_ids`` under ``key``; return how many of them were not encoded before
        (``len(token_ids)`` minus the longest common prefix with an earlier sequence)."""
        ids = np.asarray(token_ids, dtype=np.int64)
        node = self._roots.setdefault(key, _Node(np.empty(0, dtype=np.int64)))
        position = 0
        while position < len(ids):
            child = node.children.get(int(ids[position]))
            if child is None:
                node.children[int(ids[position])] = _Node(ids[position:].copy())
                return len(ids) - position
            matched = common_length(child.edge, ids[position:])
            if matched < len(child.edge):  # split the edge where the sequences part
                middle = _Node(child.edge[:matched])
                child.edge = child.edge[matched:]
                middle.children[int(child.edge[0])] = child
                node.children[int(ids[position])] = middle
                child = middle
            position += matched
            node = child
        return 0

    def forget(self, key: Hashable) -> None:
        """Drop what was recorded under ``key`` (e.g. when a problem is done)."""
        self._roots.pop(key, None)
