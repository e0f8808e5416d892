"""A radix tree of token prefixes a transformers model has already run, with their KV states.

Each edge holds a run of token ids, the per-layer key/value states the model computed for
those tokens (``(kv_heads, len, head_dim)`` per layer) and, for a PRM, the two logits the
scorer reads at every tag token among them. A token's key/value states and a tag's logits
depend only on the tokens up to it (causal attention), so an input that shares a prefix with
anything run before needs only its remaining tokens run, on top of the gathered states. Used
by the PRM scorer (``prm.scoring.hf_backend``) and the policy (``search.generators.hf``).

Memory is bounded by ``max_tokens``: ``evict`` drops least-recently-used leaves until the tree
holds at most that many tokens (called between score calls, never inside one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(eq=False)
class _Node:
    edge: np.ndarray  # token ids on the edge into this node
    kv: list[tuple[Any, Any]]  # per layer (keys, values), each (kv_heads, len(edge), head_dim)
    tag_logits: dict[int, np.ndarray]  # offset in the edge -> the 2 logits read at that tag
    parent: _Node | None
    children: dict[int, _Node] = field(default_factory=dict)
    last_used: int = 0

    def split(self, at: int) -> _Node:
        """Cut the edge after ``at`` tokens; return the new upper node (this one keeps the rest)."""
        assert 0 < at < len(self.edge)
        upper = _Node(
            edge=self.edge[:at],
            kv=[(k[:, :at], v[:, :at]) for k, v in self.kv],
            tag_logits={o: row for o, row in self.tag_logits.items() if o < at},
            parent=self.parent,
            last_used=self.last_used,
        )
        assert self.parent is not None
        self.parent.children[int(self.edge[0])] = upper
        self.edge = self.edge[at:]
        self.kv = [(k[:, at:], v[:, at:]) for k, v in self.kv]
        self.tag_logits = {o - at: row for o, row in self.tag_logits.items() if o >= at}
        self.parent = upper
        upper.children[int(self.edge[0])] = self
        return upper


@dataclass(frozen=True, slots=True)
class Match:
    """The longest prefix of an input found in the tree: ``length`` tokens along ``path``
    (each node with the number of its edge tokens used)."""

    length: int
    path: tuple[tuple[_Node, int], ...]


def common_length(left: Sequence[int] | np.ndarray, right: Sequence[int] | np.ndarray) -> int:
    """How many leading tokens ``left`` and ``right`` share (one rule for every token tree:
    this one, the PRM's token ledger and its prefix waves)."""
    left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    width = min(len(left), len(right))
    mismatch = np.flatnonzero(left[:width] != right[:width])
    return int(mismatch[0]) if len(mismatch) else width


class KVTree:
    """Token prefixes with their KV states and tag logits (see the module docstring)."""

    def __init__(self, max_tokens: int) -> None:
        if max_tokens < 1:
            raise ValueError(f"expected max_tokens >= 1, got {max_tokens}")
        self.max_tokens = max_tokens
        self.num_tokens = 0
        self._root = _Node(edge=np.empty(0, dtype=np.int64), kv=[], tag_logits={}, parent=None)
        self._clock = 0

    def match(self, token_ids: Sequence[int] | np.ndarray) -> Match:
        """The longest prefix of ``token_ids`` in the tree (marks its nodes as used)."""
        ids = np.asarray(token_ids, dtype=np.int64)
        self._clock += 1
        node, position, path = self._root, 0, []
        while position < len(ids):
            child = node.children.get(int(ids[position]))
            if child is None:
                break
            used = common_length(child.edge, ids[position:])
            child.last_used = self._clock
            path.append((child, used))
            position += used
            if used < len(child.edge):
                break
            node = child
        return Match(position, tuple(path))

    @staticmethod
    def gather(match: Match) -> list[tuple[Any, Any]]:
        """Per layer, the keys and values of the matched tokens: ``(kv_heads, length, dim)``."""
        import torch

        if not match.path:
            return []
        num_layers = len(match.path[0][0].kv)
        return [
            (
                torch.cat([node.kv[layer][0][:, :used] for node, used in match.path], dim=1),
                torch.cat([node.kv[layer][1][:, :used] for node, used in match.path], dim=1),
            )
            for layer in range(num_layers)
        ]

    def tag_logits(self, token_ids: Sequence[int], positions: Sequence[int]) -> np.ndarray:
        """The stored logits at ``positions`` of an input already in the tree: ``(n, 2)``."""
        match = self.match(token_ids)
        if match.length < len(token_ids):
            raise KeyError(f"input of {len(token_ids)} tokens has only {match.length} in the tree")
        at: dict[int, np.ndarray] = {}
        start = 0
        for node, used in match.path:
            for offset, row in node.tag_logits.items():
                if offset < used:
                    at[start + offset] = row
            start += used
        return np.stack([at[p] for p in positions]) if positions else np.empty((0, 2))

    def insert(
        self,
        token_ids: Sequence[int],
        start: int,
        kv: list[tuple[Any, Any]],
        tag_logits: dict[int, np.ndarray],
    ) -> None:
        """Add ``token_ids`` whose tokens from ``start`` on were just run: ``kv`` holds their
        per-layer states ``(kv_heads, len(token_ids) - start, dim)``, ``tag_logits`` the
        logits at tag positions (absolute) among them. Tokens already in the tree are kept."""
        ids = np.asarray(token_ids, dtype=np.int64)
        match = self.match(ids)
        if match.length < start:
            raise ValueError(
                f"expected the first {start} tokens of the input in the tree, got {match.length}"
            )
        if match.length == len(ids):
            return
        node = self._root
        if match.path:
            last, used = match.path[-1]
            node = last.split(used) if used < len(last.edge) else last
        cut = match.length - start
        leaf = _Node(
            edge=ids[match.length :].copy(),
            kv=[(k[:, cut:].clone(), v[:, cut:].clone()) for k, v in kv],
            tag_logits={
                p - match.length: row for p, row in tag_logits.items() if p >= match.length
            },
            parent=node,
            last_used=self._clock,
        )
        node.children[int(ids[match.length])] = leaf
        self.num_tokens += len(leaf.edge)

    def evict(self) -> int:
        """Drop least-recently-used leaves until at most ``max_tokens`` remain; return how many
        tokens were dropped."""
        if self.num_tokens <= self.max_tokens:
            return 0
        dropped = 0
        leaves = [node for node in self._nodes() if not node.children]
        leaves.sort(key=lambda node: node.last_used)
        while self.num_tokens > self.max_tokens and leaves:
            leaf = leaves.pop(0)
            parent = leaf.parent
            assert parent is not None
            del parent.children[int(leaf.edge[0])]
            self.num_tokens -= len(leaf.edge)
            dropped += len(leaf.edge)
            if parent is not self._root and not parent.children:
                index = next(
                    (i for i, node in enumerate(leaves) if node.last_used > parent.last_used),
                    len(leaves),
                )
                leaves.insert(index, parent)
        return dropped

    def clear(self) -> None:
        self._root.children.clear()
        self.num_tokens = 0

    def _nodes(self) -> list[_Node]:
        out, stack = [], list(self._root.children.values())
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(node.children.values())
        return out
