"""Best-of-N: sample N whole solutions, score them, pick one (arXiv 2501.07301, Sec. 2).

Budget per problem: N full-solution generations (one generate call, ``Until.end``, for all
problems) and N scored solutions (one score call). ``max_steps`` does not apply: the
generator's token limit bounds a solution, and one it cuts is returned with
``finished=False``. Picks: ``prm``, ``weighted`` and ``majority`` (see ``selection``); the
result's ``prediction`` is the one named by ``strategy.select``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from search.protocols import Generator, Scorer
from search.strategies.calls import Backends
from search.strategies.common import StrategyBase, build_results
from search.strategies.nodes import make_candidate
from search.strategies.selection import predictions
from search.types import Candidate, Prefix, Problem, SearchResult, Until


class BestOfN(StrategyBase):
    def run(
        self, problems: Sequence[Problem], generator: Generator, scorer: Scorer | None
    ) -> list[SearchResult]:
        config = self.config
        rule = self.begin(scorer)
        if not problems:
            return []
        start = time.perf_counter()
        n = config.n
        backends = Backends(generator, scorer, config.batch_size, len(problems))
        owners = list(range(len(problems)))
        generations = backends.generate(owners, [Prefix(p) for p in problems], n, Until.end)
        continuations = [c for generation in generations for c in generation.continuations]
        owner_of = [i // n for i in range(len(continuations))]
        step_scores: list[tuple[float, ...] | None] = [None] * len(continuations)
        if scorer is not None:
            solutions = [
                Prefix(problems[owner], c.steps)
                for owner, c in zip(owner_of, continuations, strict=True)
            ]
            step_scores = [tuple(s) for s in backends.score(owner_of, solutions)]

        candidates: list[tuple[Candidate, ...]] = []
        for index in range(len(problems)):
            window = slice(index * n, (index + 1) * n)
            candidates.append(
                tuple(
                    make_candidate(c.steps, c.finished, c.num_tokens, scores, self.aggregation)
                    for c, scores in zip(continuations[window], step_scores[window], strict=True)
                )
            )
        picks = [predictions(c, has_scorer=scorer is not None) for c in candidates]
        return build_results(problems, candidates, picks, rule.value, backends, start)
