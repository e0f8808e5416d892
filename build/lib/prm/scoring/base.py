"""What every step-tag PRM backend shares: encoding, the score call, and token accounting.

A backend only turns encoded inputs into the two logits that matter at each tag
(``_tag_logits``); this class renders, checks shapes, reads probabilities and keeps the
books. It implements ``search.protocols.Scorer`` and ``score_with_usage``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from prm.scoring.encoding import EncodedPrefix, PrefixEncoder
from prm.scoring.format import PRMFormat
from prm.scoring.ledger import TokenLedger
from search.protocols import TokenCounter
from search.types import Prefix, ScoreOutput


def positive_probability(pair_logits: np.ndarray) -> list[float]:
    """Softmax over ``(n_tags, 2)`` logits ordered (positive, negative), in float64: the
    probability of the positive column. For a 2-label head this is the softmax of the head;
    for label tokens it is ``p(good) / (p(good) + p(bad))``."""
    logits = np.asarray(pair_logits, dtype=np.float64)
    assert logits.ndim == 2 and logits.shape[1] == 2, logits.shape
    return (1.0 / (1.0 + np.exp(logits[:, 1] - logits[:, 0]))).tolist()


class StepTagScorer(ABC):
    """A PRM read at step-tag tokens; subclasses provide the model call.

    ``usage`` keeps running totals; ``score_with_usage`` reports per prefix the tokens encoded
    and, of those, the tokens not encoded before for the same problem (``TokenLedger``).
    A prefix without steps costs nothing and gets ``[]``.
    """

    def __init__(self, encoder: PrefixEncoder) -> None:
        self.encoder = encoder
        self.usage = TokenCounter()
        self.ledger = TokenLedger()

    @property
    def format(self) -> PRMFormat:
        return self.encoder.fmt

    def score(self, prefixes: Sequence[Prefix]) -> list[list[float]]:
        """One probability in [0, 1] per step: ``len(out[i]) == len(prefixes[i].steps)``."""
        return self.score_with_usage(prefixes).scores

    def score_with_usage(self, prefixes: Sequence[Prefix]) -> ScoreOutput:
        todo = [index for index, prefix in enumerate(prefixes) if prefix.steps]
        encoded = self.encoder.encode([prefixes[index] for index in todo])
        logits = self._tag_logits(encoded) if encoded else []
        scores: list[list[float]] = [[] for _ in prefixes]
        tokens = [0] * len(prefixes)
        new_tokens = [0] * len(prefixes)
        for index, item, pair_logits in zip(todo, encoded, logits, strict=True):
            if pair_logits.shape != (len(item.tag_positions), 2):
                raise RuntimeError(
                    f"{type(self).__name__} returned logits of shape {pair_logits.shape} for "
                    f"{len(item.tag_positions)} step tags; expected (num_tags, 2)"
                )
            scores[index] = positive_probability(pair_logits)
            problem = prefixes[index].problem
            tokens[index] = len(item.token_ids)
            new_tokens[index] = self.ledger.record((problem.id, problem.question), item.token_ids)
        self.usage.calls += 1
        self.usage.tokens += sum(tokens)
        self.usage.new_tokens += sum(new_tokens)
        return ScoreOutput(scores=scores, tokens=tokens, new_tokens=new_tokens)

    @abstractmethod
    def _tag_logits(self, encoded: Sequence[EncodedPrefix]) -> list[np.ndarray]:
        """For every input, a ``(len(tag_positions), 2)`` array of logits at its tags,
        columns ordered (positive label or good token, negative label or bad token)."""
