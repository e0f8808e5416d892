"""Best-of-N: sample N whole solutions, score them, pick one (arXiv 2501.07301, Sec. 2).

Budget per problem: N full-solution generations (one generate call, ``Until.end``, for all
problems) and N scored solutions (one score call). ``max_steps`` does not apply: the
generator's token limit bounds a solution, and one it cuts is returned with
``finished=False``. Picks: ``prm``, ``weighted`` and ``majority`` (see ``selection``); the
result's ``prediction`` is the one named by ``strategy.select``.
"""

from __future__ import annotations

from collections.abc import Sequence

from search.strategies.base import Calls, Outcome, SearchStrategy
from search.types import Prefix, Problem, Until


class BestOfN(SearchStrategy):
    def search(self, problems: Sequence[Problem], calls: Calls) -> list[Outcome]:
        n = self.config.n
        owners = list(range(len(problems)))
        generations = calls.generate(owners, [Prefix(p) for p in problems], n, Until.end)
        continuations = [c for generation in generations for c in generation.continuations]
        owner_of = [i // n for i in range(len(continuations))]
        step_scores: list[tuple[float, ...] | None] = [None] * len(continuations)
        if calls.scorer is not None:
            solutions = [
                Prefix(problems[owner], c.steps)
                for owner, c in zip(owner_of, continuations, strict=True)
            ]
            step_scores = [tuple(s) for s in calls.score(owner_of, solutions)]

        outcomes = []
        for index in range(len(problems)):
            window = slice(index * n, (index + 1) * n)
            candidates = tuple(
                self.candidate(c.steps, c.finish_reason, c.num_tokens, scores)
                for c, scores in zip(continuations[window], step_scores[window], strict=True)
            )
            outcomes.append(Outcome(candidates))
        return outcomes
