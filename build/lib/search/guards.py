"""The engine's checks on what a backend returns, applied on every call: one guard for
generators (``check_generations``) and one for scorers (``call_scorer``).

A scorer only has to implement ``Scorer.score``. One that also implements
``score_with_usage`` (``search.protocols.ReportsUsage``; every scorer in this repo does)
reports the tokens it encoded for each prefix; for one that does not, the engine records PRM
tokens as unknown (``None``), not 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from search.protocols import Generator, ReportsUsage, Scorer
from search.types import Generation, Prefix, ScoreOutput


def check_generations(
    generator: Generator, prefixes: Sequence[Prefix], n: int, generations: Sequence[Generation]
) -> None:
    """Check what ``generator.generate(prefixes, n, ...)`` returned: one ``Generation`` per
    prefix, ``n`` continuations each."""
    name = type(generator).__name__
    if len(generations) != len(prefixes):
        raise ValueError(
            f"{name}.generate returned {len(generations)} generations for {len(prefixes)} "
            "prefixes; expected one per prefix"
        )
    for index, generation in enumerate(generations):
        if len(generation.continuations) != n:
            raise ValueError(
                f"{name}.generate returned {len(generation.continuations)} continuations of "
                f"prefix {index}; expected {n} continuations (n={n})"
            )


def call_scorer(scorer: Scorer, prefixes: Sequence[Prefix]) -> ScoreOutput:
    """Score ``prefixes`` and check the output: one score in [0, 1] per step."""
    if not prefixes:
        return ScoreOutput(scores=[], tokens=[], new_tokens=[])
    if isinstance(scorer, ReportsUsage):
        out = scorer.score_with_usage(prefixes)
    else:
        out = ScoreOutput(scores=scorer.score(prefixes))
    name = type(scorer).__name__
    if not isinstance(out.scores, Sequence) or isinstance(out.scores, str):
        raise TypeError(
            f"{name}.score returned {type(out.scores).__name__}; expected a list with one list "
            "of floats per prefix"
        )
    if len(out.scores) != len(prefixes):
        raise ValueError(
            f"{name}.score returned {len(out.scores)} score lists for {len(prefixes)} "
            "prefixes; expected one list per prefix"
        )
    for index, (prefix, scores) in enumerate(zip(prefixes, out.scores, strict=True)):
        if not isinstance(scores, Sequence) or isinstance(scores, str):
            raise TypeError(
                f"{name}.score returned {type(scores).__name__} for prefix {index}; expected "
                "a list of floats, one per step; fix: return lists (a numpy array: .tolist())"
            )
        bad = [v for v in scores if isinstance(v, bool) or not isinstance(v, int | float)]
        if bad:
            raise TypeError(
                f"{name}.score returned {type(bad[0]).__name__} {bad[0]!r:.40} for prefix "
                f"{index}; expected floats in [0, 1]; fix: return Python floats (numpy: "
                ".tolist())"
            )
        if len(scores) != len(prefix.steps):
            raise ValueError(
                f"{name}.score returned {len(scores)} scores for prefix {index} with "
                f"{len(prefix.steps)} steps; expected len(out[i]) == len(prefixes[i].steps)"
            )
        for value in scores:
            if not (0.0 <= value <= 1.0) or math.isnan(value):
                raise ValueError(
                    f"{name}.score returned {value!r} for prefix {index}; expected a "
                    "probability in [0, 1] (apply a sigmoid or softmax to logits)"
                )
    for label, counts in (("tokens", out.tokens), ("new_tokens", out.new_tokens)):
        if counts is not None and len(counts) != len(prefixes):
            raise ValueError(
                f"{name}.score_with_usage returned {len(counts)} {label} for "
                f"{len(prefixes)} prefixes; expected one count per prefix"
            )
    return out
