"""The strategies' only way into the generator and the scorer: chunked, checked, accounted.

A strategy hands over every live prefix of every problem at once; ``Backends`` splits them
into calls of at most ``batch_size`` prefixes (one call unless that is exceeded) and charges
each problem for what its own prefixes cost:

- prompt / generated tokens from ``Generation.prompt_tokens`` / ``Continuation.num_tokens``;
- PRM tokens from ``ScoreOutput.tokens`` / ``new_tokens`` (``None`` from the first call
  whose scorer does not report them: unknown is not zero);
- ``generate_calls`` / ``score_calls``: the backend calls in which the problem had prefixes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from search.protocols import Generator, Scorer
from search.scoring import call_scorer
from search.types import Generation, Prefix, Until, Usage


@dataclass
class _Tally:
    prompt_tokens: int = 0
    generated_tokens: int = 0
    prm_tokens: int | None = 0
    prm_new_tokens: int | None = 0
    generate_calls: int = 0
    score_calls: int = 0

    def usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens,
            generated_tokens=self.generated_tokens,
            prm_tokens=self.prm_tokens,
            prm_new_tokens=self.prm_new_tokens,
            generate_calls=self.generate_calls,
            score_calls=self.score_calls,
        )


class Backends:
    """Batched calls for ``num_problems`` problems; ``owners[i]`` is the index (in the
    strategy's ``problems``) of the problem that ``prefixes[i]`` belongs to."""

    def __init__(
        self, generator: Generator, scorer: Scorer | None, batch_size: int, num_problems: int
    ) -> None:
        self.generator = generator
        self.scorer = scorer
        self.batch_size = batch_size
        self._tallies = [_Tally() for _ in range(num_problems)]

    def usage(self, problem_index: int) -> Usage:
        return self._tallies[problem_index].usage()

    def _chunks(self, count: int) -> list[range]:
        return [
            range(start, min(start + self.batch_size, count))
            for start in range(0, count, self.batch_size)
        ]

    def generate(
        self, owners: Sequence[int], prefixes: Sequence[Prefix], n: int, until: Until
    ) -> list[Generation]:
        """``n`` continuations of every prefix, in order."""
        out: list[Generation] = []
        for chunk in self._chunks(len(prefixes)):
            batch = [prefixes[i] for i in chunk]
            generations = self.generator.generate(batch, n, until)
            name = type(self.generator).__name__
            if len(generations) != len(batch):
                raise ValueError(
                    f"{name}.generate returned {len(generations)} generations for "
                    f"{len(batch)} prefixes; expected one per prefix"
                )
            for generation in generations:
                if len(generation.continuations) != n:
                    raise ValueError(
                        f"{name}.generate returned {len(generation.continuations)} "
                        f"continuations of a prefix; expected n={n}"
                    )
            for owner in {owners[i] for i in chunk}:
                self._tallies[owner].generate_calls += 1
            for i, generation in zip(chunk, generations, strict=True):
                tally = self._tallies[owners[i]]
                tally.prompt_tokens += generation.prompt_tokens
                tally.generated_tokens += sum(c.num_tokens for c in generation.continuations)
            out.extend(generations)
        return out

    def score(self, owners: Sequence[int], prefixes: Sequence[Prefix]) -> list[list[float]]:
        """One score per step of every prefix (through ``search.scoring.call_scorer``)."""
        if self.scorer is None:
            raise ValueError("expected a scorer, got None; fix: configure scorer=...")
        out: list[list[float]] = []
        for chunk in self._chunks(len(prefixes)):
            scored = call_scorer(self.scorer, [prefixes[i] for i in chunk])
            for owner in {owners[i] for i in chunk}:
                self._tallies[owner].score_calls += 1
            for position, i in enumerate(chunk):
                tally = self._tallies[owners[i]]
                tally.prm_tokens = _add(tally.prm_tokens, scored.tokens, position)
                tally.prm_new_tokens = _add(tally.prm_new_tokens, scored.new_tokens, position)
            out.extend(scored.scores)
        return out


def _add(total: int | None, counts: list[int] | None, position: int) -> int | None:
    if total is None or counts is None:
        return None
    return total + counts[position]
