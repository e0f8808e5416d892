"""TokenLedger: tokens past the longest common prefix with anything encoded before."""

from __future__ import annotations

import random

from prm.scoring import TokenLedger


def _naive_new_tokens(history: list[list[int]], ids: list[int]) -> int:
    def common(a: list[int], b: list[int]) -> int:
        length = 0
        while length < min(len(a), len(b)) and a[length] == b[length]:
            length += 1
        return length

    return len(ids) - max((common(seen, ids) for seen in history), default=0)


def test_growing_prefixes_cost_only_their_new_tokens() -> None:
    ledger = TokenLedger()
    assert ledger.record("p", [1, 2, 3]) == 3
    assert ledger.record("p", [1, 2, 3, 4, 5]) == 2
    assert ledger.record("p", [1, 2, 3, 4, 5]) == 0  # re-scoring the same input
    assert ledger.record("p", [1, 2, 3]) == 0  # a prefix of something encoded
    assert ledger.record("p", [1, 2, 9, 9]) == 2  # branches after the shared [1, 2]
    assert ledger.record("p", [1, 2, 9, 9, 7]) == 1
    assert ledger.record("q", [1, 2, 3]) == 3  # per problem
    ledger.forget("p")
    assert ledger.record("p", [1, 2]) == 2


def test_matches_a_brute_force_longest_common_prefix() -> None:
    rng = random.Random(0)
    ledger = TokenLedger()
    history: dict[str, list[list[int]]] = {"a": [], "b": []}
    for _ in range(400):
        key = rng.choice(["a", "b"])
        seen = history[key]
        if seen and rng.random() < 0.8:  # extend or branch off an earlier sequence
            base = rng.choice(seen)
            ids = base[: rng.randint(0, len(base))] + [rng.randint(0, 3) for _ in range(5)]
        else:
            ids = [rng.randint(0, 3) for _ in range(rng.randint(0, 12))]
        assert ledger.record(key, ids) == _naive_new_tokens(seen, ids)
        seen.append(ids)
