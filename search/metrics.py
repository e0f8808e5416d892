"""Metrics of n graded (and optionally scored) completions of one problem: pass@k,
majority@k, prm@k and weighted@k, plus a PRM diagnostic of arXiv 2501.07301. Pure functions, no I/O.

- ``pass@k``: the unbiased estimator of Chen et al. 2021 (arXiv 2107.03374) from ``n``
  samples of which ``c`` are correct: ``1 - C(n - c, k) / C(n, k)``.
- ``majority@k`` (maj@k): the most frequent answer class among k completions is right.
- ``prm@k`` (rm@k): the completion with the best score among k is right (best-of-k by the
  reward).
- ``weighted@k``: the answer class with the largest sum of scores among k is right.

The rules are the engine's own (``search.selection``, one ``Select`` enum and one
``pick_index``): the pool is the finished completions that state an answer (all completions
with an answer when finishing is unknown; none, so no pick, when no completion with an
answer is finished: an unfinished one is wrong); ties go to the earliest
completion, or to the class whose first member in the pool comes first. A pool without
answers counts as wrong.

Subsets for k < n (``index_subsets``): every k-subset when there are at most
``num_subsets`` of them (the exact expectation), else ``num_subsets`` random k-subsets drawn
with a local RNG seeded by (seed, problem index, k); ``num_subsets=0`` means "the first k
completions" instead, for pass@k too (a right answer among the first k). At k = n the
single subset is all completions.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from search.selection import Select, pick_index


@dataclass(frozen=True, slots=True)
class GradedCompletions:
    """The n completions of one problem, graded.

    ``classes[i]``: index of the first completion equivalent to completion i's answer
    (``search.grading.group_equivalent``), -1 when it states no answer. ``correct[i]``: its
    answer matches the gold (and, when ``finished`` is known, it is finished: an unfinished
    completion is wrong). ``scores[i]``: one (aggregated) score, ``None`` without a
    reward model. ``finished[i]``: the policy ended it itself, ``None`` when unknown.
    """

    classes: tuple[int, ...]
    correct: tuple[bool, ...]
    scores: tuple[float, ...] | None = None
    finished: tuple[bool, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.classes)
        for name in ("correct", "scores", "finished"):
            values = getattr(self, name)
            if values is not None and len(values) != n:
                raise ValueError(f"expected {n} {name} (one per completion), got {len(values)}")

    @property
    def n(self) -> int:
        return len(self.classes)

    @property
    def num_correct(self) -> int:
        return sum(self.correct)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n (c of
    them correct) is correct: ``1 - C(n - c, k) / C(n, k)``, as a stable product."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"expected 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def k_values(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself when it is not a power of 2."""
    if n < 1:
        raise ValueError(f"expected at least one completion, got n={n}")
    out = [1 << e for e in range(n.bit_length()) if 1 << e <= n]
    return out if out[-1] == n else [*out, n]


def index_subsets(n: int, k: int, num_subsets: int, rng: random.Random) -> list[tuple[int, ...]]:
    """The k-subsets of ``range(n)`` a metric@k averages over (see the module docstring);
    indices inside a subset are sorted, so ties still go to the earlier completion."""
    if not 1 <= k <= n or num_subsets < 0:
        raise ValueError(
            f"expected 1 <= k <= n and num_subsets >= 0, got {n=}, {k=}, {num_subsets=}"
        )
    if k == n:
        return [tuple(range(n))]
    if num_subsets == 0:
        return [tuple(range(k))]
    if math.comb(n, k) <= num_subsets:
        return list(combinations(range(n), k))
    return [tuple(sorted(rng.sample(range(n), k))) for _ in range(num_subsets)]


def pick(graded: GradedCompletions, indices: Sequence[int], rule: Select) -> int | None:
    """Index of the completion whose answer ``rule`` selects from ``indices``; ``None`` when
    none of them states an answer (``search.selection.pick_index``)."""
    if rule is not Select.majority and graded.scores is None:
        raise ValueError(f"expected scores for {rule.value}@k, got none")
    return pick_index(graded.classes, rule, graded.scores, graded.finished, indices)


def rule_at_k(
    graded: GradedCompletions, k: int, rule: Select, num_subsets: int, rng: random.Random
) -> float:
    """Share of the k-subsets on which ``rule`` picks a correct answer."""
    subsets = index_subsets(graded.n, k, num_subsets, rng)
    hits = 0
    for subset in subsets:
        chosen = pick(graded, subset, rule)
        hits += chosen is not None and graded.correct[chosen]
    return hits / len(subsets)


def metrics_at_k(
    problems: Sequence[GradedCompletions], num_subsets: int = 32, seed: int = 0
) -> list[dict[str, float | int]]:
    """One row per k (``k_values`` of the smallest n): the mean over problems of pass@k,
    majority@k and, when every problem has scores, prm@k and weighted@k."""
    if not problems:
        return []
    ks = k_values(min(p.n for p in problems))
    scored = all(p.scores is not None for p in problems)
    rules = [Select.majority, Select.prm, Select.weighted] if scored else [Select.majority]
    rows: list[dict[str, float | int]] = []
    for k in ks:
        row: dict[str, float | int] = {"k": k}
        if num_subsets == 0:  # the first k completions, as for the rules below
            row["pass@k"] = _mean([float(any(p.correct[:k])) for p in problems])
        else:
            row["pass@k"] = _mean([pass_at_k(p.n, p.num_correct, k) for p in problems])
        for rule in rules:
            values = [
                rule_at_k(p, k, rule, num_subsets, random.Random(f"{seed}:{index}:{k}"))
                for index, p in enumerate(problems)
            ]
            row[f"{rule.value}@k"] = _mean(values)
        rows.append(row)
    return rows


def min_on_final_step_share(step_scores: Sequence[Sequence[float]]) -> float | None:
    """Share of solutions whose lowest step score is on the final step (strictly below every
    earlier step), over solutions with at least 2 steps; ``None`` when there are none.

    arXiv 2501.07301 (Sec. 3) reads a high share as a PRM drifting towards an outcome
    model: it judges the final answer and ignores the process.
    """
    eligible = [scores for scores in step_scores if len(scores) >= 2]
    if not eligible:
        return None
    on_final = sum(scores[-1] < min(scores[:-1]) for scores in eligible)
    return on_final / len(eligible)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)
