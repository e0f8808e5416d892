"""search.metrics: pass@k against brute force, the selection rules on hand-built problems,
k-subsets, and the min-on-final-step diagnostic."""

from __future__ import annotations

import math
import random
from itertools import combinations

import pytest

from search.metrics import (
    GradedCompletions,
    index_subsets,
    k_values,
    metrics_at_k,
    min_on_final_step_share,
    pass_at_k,
    pick,
    rule_at_k,
)
from search.selection import Select


def brute_pass_at_k(correct: list[bool], k: int) -> float:
    subsets = list(combinations(range(len(correct)), k))
    return sum(any(correct[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 8))
def test_pass_at_k_matches_brute_force(n: int) -> None:
    for c in range(n + 1):
        correct = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(correct, k), abs=1e-12)


def test_pass_at_k_edges_and_errors() -> None:
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(100, 1, 100) == 1.0
    for n, c, k in [(3, 4, 1), (3, 1, 0), (3, 1, 4), (3, -1, 1)]:
        with pytest.raises(ValueError, match="expected 0 <= c <= n"):
            pass_at_k(n, c, k)


def test_k_values() -> None:
    assert k_values(1) == [1]
    assert k_values(8) == [1, 2, 4, 8]
    assert k_values(5) == [1, 2, 4, 5]
    assert k_values(12) == [1, 2, 4, 8, 12]
    with pytest.raises(ValueError):
        k_values(0)


def test_index_subsets_exact_random_and_first_k() -> None:
    rng = random.Random(0)
    assert index_subsets(4, 4, 32, rng) == [(0, 1, 2, 3)]
    assert index_subsets(4, 2, 32, rng) == list(combinations(range(4), 2))  # 6 <= 32: all
    drawn = index_subsets(20, 3, 16, rng)
    assert len(drawn) == 16 and all(len(set(s)) == 3 and list(s) == sorted(s) for s in drawn)
    assert index_subsets(20, 3, 0, rng) == [(0, 1, 2)]
    again = index_subsets(20, 3, 16, random.Random(5))
    assert again == index_subsets(20, 3, 16, random.Random(5))


# Answers: A A B B B None, A right. Scores favour B on the best single completion but A in
# weighted sum: A = 0.9 + 0.8 = 1.7, B = 0.95 + 0.3 + 0.2 = 1.45.
HAND = GradedCompletions(
    classes=(0, 0, 2, 2, 2, -1),
    correct=(True, True, False, False, False, False),
    scores=(0.9, 0.8, 0.95, 0.3, 0.2, 0.99),
)


def test_rules_on_a_hand_built_problem() -> None:
    everything = range(6)
    assert pick(HAND, everything, Select.majority) == 2  # B has 3 votes
    assert pick(HAND, everything, Select.prm) == 2  # 0.95; the 0.99 completion has no answer
    assert pick(HAND, everything, Select.weighted) == 0  # A: 1.7 > 1.45
    assert pick(HAND, [5], Select.majority) is None
    assert pick(HAND, [0, 3], Select.majority) == 0  # tie: the class met first
    assert pick(HAND, [3, 1], Select.majority) == 1  # tie: the earliest completion's class
    assert pick(HAND, [3, 1], Select.prm) == 1  # 0.8 > 0.3
    without_scores = GradedCompletions(HAND.classes, HAND.correct)
    with pytest.raises(ValueError, match="expected scores"):
        pick(without_scores, everything, Select.prm)


def test_finished_completions_vote_first() -> None:
    graded = GradedCompletions(
        classes=(0, 1, 1), correct=(True, False, False), finished=(True, False, False)
    )
    assert pick(graded, range(3), Select.majority) == 0  # the two unfinished B do not vote
    unfinished = GradedCompletions(graded.classes, graded.correct, finished=(False,) * 3)
    assert pick(unfinished, range(3), Select.majority) is None  # none finished: no guess
    unknown = GradedCompletions(graded.classes, graded.correct)
    assert pick(unknown, range(3), Select.majority) == 1  # finishing unknown: all vote


def test_rule_at_k_is_the_exact_expectation_over_small_subsets() -> None:
    # k=2 over 6 completions: C(6, 2) = 15 <= 32, so every pair counts once. rm is right on
    # the pairs whose best-scored answered completion is an A: 0 or 1 with 3, 4, 5 or each
    # other -> 7 of 15.
    value = rule_at_k(HAND, 2, Select.prm, num_subsets=32, rng=random.Random(0))
    assert value == pytest.approx(7 / 15)
    # num_subsets=0: only the first two completions (both A).
    assert rule_at_k(HAND, 2, Select.prm, num_subsets=0, rng=random.Random(0)) == 1.0
    assert rule_at_k(HAND, 6, Select.weighted, 32, random.Random(0)) == 1.0
    assert rule_at_k(HAND, 6, Select.majority, 32, random.Random(0)) == 0.0


def test_metrics_at_k_rows() -> None:
    unscored = GradedCompletions(classes=(0, 1, 0, 3), correct=(True, False, True, False))
    rows = metrics_at_k([unscored], num_subsets=32, seed=0)
    assert [row["k"] for row in rows] == [1, 2, 4]
    assert set(rows[0]) == {"k", "pass@k", "majority@k"}
    assert rows[0]["pass@k"] == pytest.approx(0.5)
    assert rows[0]["majority@k"] == pytest.approx(0.5)  # maj@1 is the mean sample accuracy
    assert rows[-1]["majority@k"] == 1.0
    rows = metrics_at_k([HAND, HAND], num_subsets=8, seed=1)
    assert set(rows[0]) == {"k", "pass@k", "majority@k", "prm@k", "weighted@k"}
    assert rows[-1]["k"] == 6 and rows[-1]["weighted@k"] == 1.0 and rows[-1]["prm@k"] == 0.0
    assert metrics_at_k([HAND], num_subsets=8, seed=1) == metrics_at_k([HAND], 8, seed=1)


def test_min_on_final_step_share() -> None:
    scores = [[0.9, 0.2], [0.2, 0.9], [0.5, 0.5], [0.1], [0.8, 0.7, 0.6]]
    # eligible: the four with >= 2 steps; strictly lowest at the end: first and last.
    assert min_on_final_step_share(scores) == pytest.approx(2 / 4)
    assert min_on_final_step_share([[0.3]]) is None
    assert math.isclose(min_on_final_step_share([[0.9, 0.1]]) or 0, 1.0)
