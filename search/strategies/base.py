"""The one skeleton every strategy shares: the start and the end of a run, and the batched,
checked, accounted calls into the generator and the scorer.

A strategy file holds only its algorithm (``SearchStrategy.search``); everything around it
is here, once. See ``SearchStrategy`` for how to add a strategy.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from search.aggregation import Aggregation, aggregate
from search.answers import extract_answer
from search.guards import call_scorer, check_generations
from search.protocols import Generator, Scorer
from search.selection import predictions
from search.strategies.config import StrategyConfig
from search.types import (
    DEFAULT_SAMPLING,
    STEP_SEPARATOR,
    Candidate,
    Continuation,
    FinishReason,
    Generation,
    Prefix,
    Problem,
    Sampling,
    SearchResult,
    Until,
    Usage,
)

if TYPE_CHECKING:
    from search.strategies.tree import SearchTree


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a strategy's algorithm found for one problem.

    ``candidates``: exactly ``config.n`` of them (adaptive best-of-N: the samples it drew).
    ``tree``: the search tree, saved with the result when ``strategy.save_trees`` is on.
    ``picks``: answers of rules of the strategy's own (e.g. MCTS's ``most_visited``), added
    to the prm / weighted / majority picks.
    """

    candidates: tuple[Candidate, ...]
    tree: SearchTree | None = None
    picks: dict[str, str | None] = field(default_factory=dict)


class SearchStrategy(ABC):
    """Base of every strategy: holds its config and the one aggregation it prunes and picks
    with, and runs the shared start and end of a search around the algorithm.

    ``run`` (shared, not overridden):

    1. start: check the config against this run (``config.validate``: a scorer or not);
       no problems, no work;
    2. open ``Calls`` (every generate and score call goes through it: chunked to
       ``config.batch_size``, output-checked, and charged to the problems it served) and
       start the clock;
    3. ``search(problems, calls)``: the algorithm, one ``Outcome`` per problem, in order;
    4. end: for each problem the picks of every selection rule (``search.selection.predictions``)
       plus the outcome's own, the prediction of ``prediction_rule()``, the usage, the
       batch's wall time split evenly, and the tree when ``config.save_trees``.

    A new strategy is one file: subclass this, implement ``search`` top to bottom (call
    ``calls.generate`` / ``calls.score`` for all live prefixes of all problems at once;
    build candidates with ``self.candidate`` or ``SearchTree.candidate``), add its name to
    ``StrategyName`` and one ``case`` to ``build_strategy``, and a ``conf/strategy/*.yaml``.
    Tree searches share ``search.strategies.tree`` (``SearchTree``, ``expand``).
    """

    def __init__(self, config: StrategyConfig, aggregation: Aggregation | str) -> None:
        self.config = config
        self.aggregation = Aggregation(aggregation)

    def run(
        self,
        problems: Sequence[Problem],
        generator: Generator,
        scorer: Scorer | None,
        *,
        dropped: Callable[[], Collection[int]] | None = None,
    ) -> list[SearchResult]:
        """``search.protocols.Strategy``: one result per problem, in order (``dropped``: see
        ``Calls``)."""
        has_scorer = scorer is not None
        self.config.validate(has_scorer=has_scorer)
        if not problems:
            return []
        start = time.perf_counter()
        calls = Calls(generator, scorer, self.config.batch_size, len(problems), dropped=dropped)
        outcomes = self.search(problems, calls)
        if len(outcomes) != len(problems):
            raise RuntimeError(
                f"{type(self).__name__}.search returned {len(outcomes)} outcomes for "
                f"{len(problems)} problems; expected one per problem"
            )
        wall_s = (time.perf_counter() - start) / len(problems)
        rule = self.prediction_rule(has_scorer)
        results = []
        for index, (problem, outcome) in enumerate(zip(problems, outcomes, strict=True)):
            picks = predictions(outcome.candidates, has_scorer) | outcome.picks
            save = outcome.tree is not None and self.config.save_trees  # trees: tree strategies
            results.append(
                SearchResult(
                    problem=problem,
                    candidates=outcome.candidates,
                    prediction=picks[rule],
                    predictions=picks,
                    usage=calls.usage(index),
                    wall_s=wall_s,
                    tree=outcome.tree.to_data() if save and outcome.tree else None,
                )
            )
        return results

    @abstractmethod
    def search(self, problems: Sequence[Problem], calls: Calls) -> list[Outcome]:
        """The algorithm: one ``Outcome`` per problem, in order, each with ``config.n``
        candidates."""

    def prediction_rule(self, has_scorer: bool) -> str:
        """The key of ``SearchResult.predictions`` whose answer is the prediction."""
        return self.config.selection(has_scorer=has_scorer).value

    def candidate(
        self,
        steps: tuple[str, ...],
        finish_reason: FinishReason | None,
        num_tokens: int,
        step_scores: tuple[float, ...] | None,
    ) -> Candidate:
        return make_candidate(steps, finish_reason, num_tokens, step_scores, self.aggregation)


def make_candidate(
    steps: tuple[str, ...],
    finish_reason: FinishReason | None,
    num_tokens: int,
    step_scores: tuple[float, ...] | None,
    aggregation: Aggregation,
) -> Candidate:
    """A candidate with its answer (``extract_answer`` of the joined steps) and its
    aggregated score (``None`` without step scores); finished when the policy ended it."""
    answer = extract_answer(STEP_SEPARATOR.join(steps)) if steps else None
    score = None if step_scores is None else aggregate(step_scores, aggregation)
    return Candidate(
        steps=steps,
        finished=finish_reason is FinishReason.eos,
        num_tokens=num_tokens,
        answer=answer,
        step_scores=step_scores,
        score=score,
        finish_reason=finish_reason,
        aggregation=None if score is None else aggregation.value,
    )


# -- calls into the backends ------------------------------------------------------------------
class SearchStopped(Exception):
    """A search ended early because its ``dropped`` callable dropped every problem (no
    results)."""


@dataclass
class _Tally:
    prompt_tokens: int = 0
    generated_tokens: int = 0
    prm_tokens: int | None = 0
    prm_new_tokens: int | None = 0
    generate_calls: int = 0
    score_calls: int = 0
    requests: int = 0  # prefixes sent to the generator so far (names their streams)

    def usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens,
            generated_tokens=self.generated_tokens,
            prm_tokens=self.prm_tokens,
            prm_new_tokens=self.prm_new_tokens,
            generate_calls=self.generate_calls,
            score_calls=self.score_calls,
        )


class Calls:
    """A strategy's only way into the generator and the scorer, for ``num_problems``
    problems: ``owners[i]`` is the index (in the strategy's ``problems``) of the problem that
    ``prefixes[i]`` belongs to.

    Prefixes are split into calls of at most ``batch_size`` (one call unless that is
    exceeded), every output is checked (``search.guards``), and each problem is charged
    for what its own prefixes cost:

    - prompt / generated tokens from ``Generation.prompt_tokens`` / ``Continuation.num_tokens``;
    - PRM tokens from ``ScoreOutput.tokens`` / ``new_tokens`` (``None`` from the first call
      whose scorer does not report them: unknown is not zero);
    - ``generate_calls`` / ``score_calls``: the strategy's generate / score requests in which
      the problem had prefixes (one a search depth), counted once each however the request
      was split into backend calls (by ``batch_size`` or by continuation count), so that a
      problem's record does not depend on which problems shared its batch.

    It also names every prefix's random stream (``Sampling.streams``): ``"<problem id>/<k>"``
    for the problem's k-th prefix sent to the generator. A strategy's requests for one
    problem depend only on that problem's own search, so a problem draws the same numbers
    whatever other problems share its batch, and a resumed or re-batched run repeats it.

    ``dropped``, when given, is asked before every backend call for the indices of the
    problems whose results nobody wants any more (the search server's clients that left:
    ``search.serve.service.Batcher``). Their prefixes are left out of the call: each gets
    empty continuations cut at no tokens (``FinishReason.length``, so its node is terminal
    and unfinished) and a score of 0 per step, so their searches cost no more backend work
    (MCTS and adaptive best-of-N may go on for some rounds of bookkeeping until their
    budget is spent) and their results are meaningless (the caller drops them). The other
    problems are asked for what they would have been asked without the drop, as their
    random streams are their own (so with a backend whose outputs do not depend on what
    shares its batch, they get the same results). Once every problem is dropped the search
    ends there with ``SearchStopped``, so an abandoned search stops within one call's time.
    A generate call also hands the backend ``Sampling.abandoned``: a backend that can (the
    transformers generator) stops a dropped problem's rows within the call too, so one long
    call (best-of-N's only one) does not finish the samples of a client that has left.
    """

    def __init__(
        self,
        generator: Generator,
        scorer: Scorer | None,
        batch_size: int,
        num_problems: int,
        dropped: Callable[[], Collection[int]] | None = None,
    ) -> None:
        self.generator = generator
        self.scorer = scorer
        self.batch_size = batch_size
        self.dropped = dropped
        self._tallies = [_Tally() for _ in range(num_problems)]

    def _kept(self, members: Sequence[int], owners: Sequence[int]) -> list[int]:
        """The positions among ``members`` whose problems are not dropped (``SearchStopped``
        when no problem is left at all)."""
        if self.dropped is None:
            return list(members)
        dropped = set(self.dropped())
        if dropped.issuperset(range(len(self._tallies))):
            raise SearchStopped("every problem of the search was dropped before its next call")
        return [i for i in members if owners[i] not in dropped]

    def _abandoned(self, owners: list[int]) -> Callable[[], list[int]] | None:
        """For a backend call whose prefixes belong to ``owners``: the positions of those
        whose problems have been dropped since it began (``Sampling.abandoned``), or ``None``
        when nothing is ever dropped."""
        dropped = self.dropped
        if dropped is None:
            return None

        def abandoned() -> list[int]:
            gone = set(dropped())
            return [position for position, owner in enumerate(owners) if owner in gone]

        return abandoned

    def usage(self, problem_index: int) -> Usage:
        return self._tallies[problem_index].usage()

    def _chunks(self, count: int) -> list[range]:
        return [
            range(start, min(start + self.batch_size, count))
            for start in range(0, count, self.batch_size)
        ]

    def generate(
        self,
        owners: Sequence[int],
        prefixes: Sequence[Prefix],
        n: int | Sequence[int],
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        """``n`` continuations of every prefix, in order (``sampling.streams`` is set here).

        ``n`` may differ per prefix (a sequence, one count per prefix): the backend's
        ``generate`` takes one count per call, so each chunk makes one call per distinct
        count (prefixes with the same count together, in their order)."""
        counts = [n] * len(prefixes) if isinstance(n, int) else list(n)
        if len(counts) != len(prefixes):
            raise ValueError(
                f"expected one continuation count per prefix, got {len(counts)} counts for "
                f"{len(prefixes)} prefixes"
            )
        streams: list[str] = []
        for owner, prefix in zip(owners, prefixes, strict=True):
            tally = self._tallies[owner]
            streams.append(f"{prefix.problem.id}/{tally.requests}")
            tally.requests += 1
        for owner in set(owners):
            self._tallies[owner].generate_calls += 1
        out: list[Generation | None] = [None] * len(prefixes)
        for chunk in self._chunks(len(prefixes)):
            for count in sorted({counts[i] for i in chunk}):
                members = [i for i in chunk if counts[i] == count]
                kept = self._kept(members, owners)
                for i in set(members).difference(kept):  # a dropped problem: cut, no tokens
                    out[i] = Generation(0, (_CUT,) * count)
                if not kept:
                    continue
                members = kept
                batch = [prefixes[i] for i in members]
                call = replace(
                    sampling,
                    streams=tuple(streams[i] for i in members),
                    abandoned=self._abandoned([owners[i] for i in members]),
                )
                generations = self.generator.generate(batch, count, until, call)
                check_generations(self.generator, batch, count, generations)
                for i, generation in zip(members, generations, strict=True):
                    tally = self._tallies[owners[i]]
                    tally.prompt_tokens += generation.prompt_tokens
                    tally.generated_tokens += sum(c.num_tokens for c in generation.continuations)
                    out[i] = generation
        assert all(generation is not None for generation in out), "every prefix was generated"
        return [generation for generation in out if generation is not None]

    def score(self, owners: Sequence[int], prefixes: Sequence[Prefix]) -> list[list[float]]:
        """One score per step of every prefix (through ``search.guards.call_scorer``)."""
        if self.scorer is None:
            raise ValueError("expected a scorer, got None; fix: configure scorer=...")
        for owner in set(owners):
            self._tallies[owner].score_calls += 1
        out: list[list[float]] = [[0.0] * len(prefix.steps) for prefix in prefixes]  # dropped
        for chunk in self._chunks(len(prefixes)):
            kept = self._kept(chunk, owners)
            if not kept:
                continue
            scored = call_scorer(self.scorer, [prefixes[i] for i in kept])
            for position, i in enumerate(kept):
                tally = self._tallies[owners[i]]
                tally.prm_tokens = _add(tally.prm_tokens, scored.tokens, position)
                tally.prm_new_tokens = _add(tally.prm_new_tokens, scored.new_tokens, position)
                out[i] = scored.scores[position]
        return out


_CUT = Continuation(text="", steps=(), finish_reason=FinishReason.length, num_tokens=0)
"""What a dropped problem's prefix is given instead of a generation (see ``Calls``)."""


def _add(total: int | None, counts: list[int] | None, position: int) -> int | None:
    if total is None or counts is None:
        return None
    return total + counts[position]
