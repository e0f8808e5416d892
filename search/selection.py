"""Picking the final answer from a problem's candidates: one rule set for the engine's picks
(``SearchResult.predictions``) and for ``search.evaluate``'s maj/rm/weighted@k.

Rules (``Select``): ``prm`` (the candidate with the highest aggregated score), ``weighted``
(the answer class with the largest sum of aggregated scores) and ``majority`` (the most
frequent answer class, self-consistency). Answer classes come from
``search.grading.group_equivalent`` (math-verify equivalence); a class is reported by its
first member. Ties go to the earliest candidate (or class).

Pool: the finished candidates that state an answer (all that state one when finishing is
unknown, e.g. another system's outputs). An unfinished candidate never votes, even when none
finished: an answer read off a solution the policy did not end is a guess, and is graded
wrong; so a problem without a finished candidate gets no pick (``None``).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from search.grading import group_equivalent
from search.types import Candidate


class Select(str, Enum):
    """How the final answer is picked from the candidates."""

    prm = "prm"  # the candidate with the highest aggregated PRM score
    weighted = "weighted"  # the answer class with the largest sum of aggregated scores
    majority = "majority"  # the most frequent answer class (self-consistency)


def pick_index(
    classes: Sequence[int],
    rule: Select,
    scores: Sequence[float | None] | None = None,
    finished: Sequence[bool] | None = None,
    indices: Sequence[int] | None = None,
) -> int | None:
    """Index of the candidate whose answer ``rule`` picks among ``indices`` (default: all).

    ``classes[i]``: the index of the first candidate with an answer equivalent to candidate
    i's, -1 when it states none. ``scores[i]``: its aggregated score (needed by ``prm`` and
    ``weighted``). ``finished[i]``: the policy ended it (``None``: unknown, all vote).
    """
    pool = _pool(classes, finished, indices)
    if not pool:
        return None
    if rule is Select.prm:
        return max(pool, key=lambda i: (_score(scores, i, rule), -i))
    totals = _class_totals(classes, rule, scores, pool)
    winner = max(totals, key=lambda first: (totals[first], -first))
    return winner


def vote_totals(candidates: Sequence[Candidate], rule: Select) -> list[float]:
    """The votes of each answer class among the candidates that vote (the pool of ``pick``):
    one per member (``majority``) or the sum of the members' aggregated scores
    (``weighted``), in the order the classes first appear. Empty when no candidate states an
    answer."""
    if rule is Select.prm:
        raise ValueError("expected a vote (majority or weighted), got select=prm")
    classes = group_equivalent([c.answer for c in candidates])
    pool = _pool(classes, [c.finished for c in candidates], None)
    scores = [c.score for c in candidates]
    return list(_class_totals(classes, rule, scores, pool).values())


def _pool(
    classes: Sequence[int], finished: Sequence[bool] | None, indices: Sequence[int] | None
) -> list[int]:
    chosen = range(len(classes)) if indices is None else indices
    pool = [i for i in chosen if classes[i] >= 0]
    if finished is not None:
        pool = [i for i in pool if finished[i]]
    return pool


def _class_totals(
    classes: Sequence[int],
    rule: Select,
    scores: Sequence[float | None] | None,
    pool: Sequence[int],
) -> dict[int, float]:
    """Votes per answer class, keyed by the class's first member in ``pool``."""
    first_member: dict[int, int] = {}
    totals: dict[int, float] = {}
    for i in pool:
        first = first_member.setdefault(classes[i], i)
        weight = 1.0 if rule is Select.majority else _score(scores, i, rule)
        totals[first] = totals.get(first, 0.0) + weight
    return totals


def pick(candidates: Sequence[Candidate], rule: Select) -> str | None:
    """The answer ``rule`` selects among the finished candidates that state one; ``None``
    when there is none (no candidate states an answer, or none of those is finished)."""
    chosen = pick_index(
        group_equivalent([c.answer for c in candidates]),
        rule,
        scores=[c.score for c in candidates],
        finished=[c.finished for c in candidates],
    )
    return None if chosen is None else candidates[chosen].answer


def predictions(candidates: Sequence[Candidate], has_scorer: bool) -> dict[str, str | None]:
    """The pick of every rule that applies: all three with a scorer, else majority only."""
    rules = list(Select) if has_scorer else [Select.majority]
    return {rule.value: pick(candidates, rule) for rule in rules}


def _score(scores: Sequence[float | None] | None, index: int, rule: Select) -> float:
    value = None if scores is None else scores[index]
    if value is None:
        raise ValueError(
            f"expected scored candidates for {rule.value} selection, got a candidate without "
            "a score; fix: configure a scorer or strategy.select=majority"
        )
    return value
