"""Picking the final answer from a problem's candidates.

Rules (``Select``): ``prm`` (the candidate with the highest aggregated score), ``weighted``
(the answer class with the largest sum of aggregated scores) and ``majority`` (the most
frequent answer class). Answer classes come from ``search.grading.group_equivalent``
(math-verify equivalence); a class is reported by its first member's answer. Ties go to the
earliest candidate (or class).

Pool: the finished candidates that state an answer; only when none is finished do the
unfinished ones (cut by ``max_steps`` or the token limit) vote, since an answer read off an
unfinished solution is a guess at best.
"""

from __future__ import annotations

from collections.abc import Sequence

from search.grading import group_equivalent
from search.strategies.config import Select
from search.types import Candidate


def voting_pool(candidates: Sequence[Candidate]) -> list[Candidate]:
    with_answer = [c for c in candidates if c.answer is not None]
    finished = [c for c in with_answer if c.finished]
    return finished or with_answer


def pick(candidates: Sequence[Candidate], rule: Select) -> str | None:
    """The answer ``rule`` selects; ``None`` when no candidate states an answer."""
    pool = voting_pool(candidates)
    if not pool:
        return None
    if rule is Select.prm:
        best = max(range(len(pool)), key=lambda i: (_score(pool[i]), -i))
        return pool[best].answer
    classes = group_equivalent([c.answer for c in pool])
    totals: dict[int, float] = {}
    for candidate, representative in zip(pool, classes, strict=True):
        weight = 1.0 if rule is Select.majority else _score(candidate)
        totals[representative] = totals.get(representative, 0.0) + weight
    winner = max(totals, key=lambda rep: (totals[rep], -rep))
    return pool[winner].answer


def predictions(candidates: Sequence[Candidate], has_scorer: bool) -> dict[str, str | None]:
    """The pick of every rule that applies: all three with a scorer, else majority only."""
    rules = list(Select) if has_scorer else [Select.majority]
    return {rule.value: pick(candidates, rule) for rule in rules}


def _score(candidate: Candidate) -> float:
    if candidate.score is None:
        raise ValueError(
            "expected scored candidates for prm/weighted selection, got a candidate without "
            "a score; fix: configure a scorer or strategy.select=majority"
        )
    return candidate.score
