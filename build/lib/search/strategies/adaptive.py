"""Adaptive best-of-N: sample in rounds, stop a problem once its vote is settled
(Adaptive-Consistency, Aggarwal et al. 2023, arXiv 2305.11860).

Symbols: N = ``strategy.n`` (the most samples per problem), k = ``strategy.samples_per_round``,
C = ``strategy.stop_confidence`` (the paper's C_thresh, 0.95 there).

1. A round: every problem still open samples min(k, N - drawn) whole solutions (one generate
   call, ``Until.end``, for all open problems; they stay in step, so the count is the same
   for all) and, with a scorer, the new solutions are scored (one score call).
2. The vote of ``strategy.select`` is taken over the solutions drawn so far, with the pool
   of the final pick (``search.selection.vote_totals``: finished solutions with an answer).
   ``majority``: one vote per solution. ``weighted``: each answer's share of the summed
   aggregated PRM scores, times the number of voting solutions, so the PRM decides how the
   evidence splits but not how much of it there is (the stopping rule does not depend on
   the PRM's scale; all scores 0: counted as majority). Let v1 >= v2 be the totals of the
   two leading answers (v2 = 0 with one answer, both 0 with none).
3. Stopping rule, the paper's Beta criterion: with the two leaders' shares p1, p2 and a
   uniform prior, p1 / (p1 + p2) ~ Beta(v1 + 1, v2 + 1); the problem stops when
   P(p1 > p2) = 1 - I_0.5(v1 + 1, v2 + 1) >= C (I: the regularised incomplete beta
   function; for whole-number totals, the chance of at most v1 heads in v1 + v2 + 1 fair coin
   flips). At C = 0.95 a unanimous majority vote stops after 4 samples (1 - 2^-5 = 0.97);
   with one dissenting sample it takes 6 against 1 (0.965). A weighted vote settles as fast
   on unanimous samples and faster when the PRM discounts the dissenters.
4. Repeat until every problem has stopped or drawn N.

Candidates: the solutions actually drawn, in order (between min(k, N) and N per problem, not
always N); ``usage`` charges each problem only its own rounds. Picks: ``prm``, ``weighted``
and ``majority`` over those candidates, as for best-of-N; ``prediction`` is the ``select``
vote's pick, the one the stopping rule watched.

Budget per problem: at most N whole solutions and N scored solutions, in at most
ceil(N / k) rounds of one generate and one score call each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from search.selection import Select, vote_totals
from search.strategies.base import Calls, Outcome, SearchStrategy
from search.types import Candidate, Prefix, Problem, Until


def regularized_incomplete_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b) for 0 <= x <= 1 and a, b > 0, by the continued fraction of the incomplete
    beta function (modified Lentz), switched to 1 - I_(1-x)(b, a) where that converges
    faster."""
    if not 0.0 <= x <= 1.0 or a <= 0 or b <= 0:
        raise ValueError(f"expected 0 <= x <= 1 and a, b > 0, got x={x}, a={a}, b={b}")
    if x in (0.0, 1.0):
        return x
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - regularized_incomplete_beta(1.0 - x, b, a)
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return math.exp(log_front) * fraction / a


def leader_probability(totals: Sequence[float]) -> float:
    """P(p1 > p2) under Beta(v1 + 1, v2 + 1), v1 >= v2 the two largest of ``totals``."""
    top = [*sorted(totals, reverse=True), 0.0, 0.0]
    return 1.0 - regularized_incomplete_beta(0.5, top[0] + 1.0, top[1] + 1.0)


class AdaptiveBestOfN(SearchStrategy):
    def search(self, problems: Sequence[Problem], calls: Calls) -> list[Outcome]:
        config = self.config
        vote = config.selection(has_scorer=calls.scorer is not None)
        drawn: list[list[Candidate]] = [[] for _ in problems]
        open_problems = list(range(len(problems)))

        while open_problems:
            count = min(config.samples_per_round, config.n - len(drawn[open_problems[0]]))
            prefixes = [Prefix(problems[index]) for index in open_problems]
            generations = calls.generate(open_problems, prefixes, count, Until.end)
            owners = [index for index in open_problems for _ in range(count)]
            continuations = [c for g in generations for c in g.continuations]
            step_scores: list[tuple[float, ...] | None] = [None] * len(continuations)
            if calls.scorer is not None:
                solutions = [
                    Prefix(problems[owner], c.steps)
                    for owner, c in zip(owners, continuations, strict=True)
                ]
                step_scores = [tuple(s) for s in calls.score(owners, solutions)]
            for owner, c, scores in zip(owners, continuations, step_scores, strict=True):
                drawn[owner].append(self.candidate(c.steps, c.finish_reason, c.num_tokens, scores))
            open_problems = [
                index
                for index in open_problems
                if len(drawn[index]) < config.n and not self._settled(drawn[index], vote)
            ]

        return [Outcome(tuple(samples)) for samples in drawn]

    def _settled(self, samples: Sequence[Candidate], rule: Select) -> bool:
        votes = vote_totals(samples, Select.majority)
        if rule is Select.weighted:
            scores = vote_totals(samples, Select.weighted)
            mass = sum(scores)
            if mass > 0:
                votes = [score * sum(votes) / mass for score in scores]
        return leader_probability(votes) >= self.config.stop_confidence
