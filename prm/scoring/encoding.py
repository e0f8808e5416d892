"""From a prefix to the PRM's token ids and the positions of its step tags.

The whole rendered text is tokenised in one call (as the public PRMs' cards do), so both
backends see identical ids. Inputs longer than ``max_length`` follow ``on_overflow``:

- ``error``: refuse, naming the lengths and the fix;
- ``truncate_question``: drop question tokens from the left (oldest first) until the input
  fits; the steps and their tags are never cut. If the steps alone do not fit, it refuses.

After encoding, the number of tag tokens must equal the number of steps; anything else
(the question or template containing the tag, the tag merging with its neighbours in
tokenisation) is an error, never a silently misaligned score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from prm.scoring.format import PRMFormat, RenderedText, TokenIds, render_text, resolve_token_ids
from search.types import Prefix


class OverflowPolicy(str, Enum):
    """What to do with an input longer than the PRM's ``max_length``."""

    truncate_question = "truncate_question"
    error = "error"


@dataclass(frozen=True, slots=True)
class EncodedPrefix:
    """The PRM input of one prefix: ``len(tag_positions) == len(prefix.steps)``."""

    token_ids: tuple[int, ...]
    tag_positions: tuple[int, ...]
    truncated_tokens: int = 0  # question tokens dropped to fit max_length


class PrefixEncoder:
    """Renders and tokenises prefixes for one PRM format and tokenizer."""

    def __init__(
        self,
        tokenizer: Any,
        fmt: PRMFormat,
        max_length: int,
        on_overflow: OverflowPolicy | str = OverflowPolicy.error,
    ) -> None:
        if max_length < 1:
            raise ValueError(f"expected max_length >= 1, got {max_length}")
        try:
            self.on_overflow = OverflowPolicy(on_overflow)
        except ValueError:
            choices = ", ".join(policy.value for policy in OverflowPolicy)
            raise ValueError(
                f"expected on_overflow in {{{choices}}}, got {on_overflow!r}"
            ) from None
        self.tokenizer = tokenizer
        self.fmt = fmt
        self.max_length = max_length
        self.token_ids: TokenIds = resolve_token_ids(tokenizer, fmt)

    def encode(self, prefixes: Sequence[Prefix]) -> list[EncodedPrefix]:
        """One encoded input per prefix, in order."""
        return [self.encode_one(prefix) for prefix in prefixes]

    def encode_one(self, prefix: Prefix) -> EncodedPrefix:
        rendered = render_text(self.fmt, self.tokenizer, prefix.problem.question, prefix.steps)
        head = [] if self.token_ids.bos is None else [self.token_ids.bos]
        ids = head + list(self.tokenizer.encode(rendered.text, add_special_tokens=False))
        truncated = 0
        if len(ids) > self.max_length:
            if self.on_overflow is OverflowPolicy.error:
                raise ValueError(
                    f"expected a PRM input of at most max_length={self.max_length} tokens, got "
                    f"{len(ids)} for problem {prefix.problem.id!r} ({len(prefix.steps)} steps); "
                    "fix: set on_overflow=truncate_question, raise max_length (up to the "
                    "model's context), or cap the policy's solution length"
                )
            ids, truncated = self._truncate_question(rendered, head, len(ids) - self.max_length)
        tag = self.token_ids.step_tag
        positions = tuple(index for index, token in enumerate(ids) if token == tag)
        if len(positions) != len(prefix.steps):
            raise ValueError(
                f"expected one step tag {self.fmt.step_tag!r} (id {tag}) per step, got "
                f"{len(positions)} tags for {len(prefix.steps)} steps of problem "
                f"{prefix.problem.id!r}; the question or template contains the tag, or the tag "
                "merged with neighbouring text in tokenisation; fix: remove the tag text from "
                "the question/template, or pick a step_template that keeps the tag apart"
            )
        return EncodedPrefix(tuple(ids), positions, truncated)

    def _truncate_question(
        self, rendered: RenderedText, head: list[int], overflow: int
    ) -> tuple[list[int], int]:
        """Drop the first ``overflow`` question tokens; the rest of the ids are unchanged."""
        if not getattr(self.tokenizer, "is_fast", False):
            raise ValueError(
                "expected a fast tokenizer (character offsets) for on_overflow="
                "truncate_question, got a slow one; fix: load the tokenizer with use_fast=True "
                "or set on_overflow=error"
            )
        if rendered.question_start < 0:
            raise ValueError(
                "expected to find the question verbatim in the rendered PRM input to truncate "
                "it, got none (the chat template rewrote it); fix: set on_overflow=error"
            )
        encoding = self.tokenizer(
            rendered.text, add_special_tokens=False, return_offsets_mapping=True
        )
        ids = list(encoding["input_ids"])
        question = [
            index
            for index, (start, end) in enumerate(encoding["offset_mapping"])
            if rendered.question_start <= start and end <= rendered.question_end and end > start
        ]
        if overflow > len(question):
            raise ValueError(
                f"expected the steps to fit max_length={self.max_length} once the question is "
                f"dropped, got {len(head) + len(ids) - len(question)} tokens without the "
                "question; fix: raise max_length or cap the policy's solution length"
            )
        dropped = set(question[:overflow])
        kept = [token for index, token in enumerate(ids) if index not in dropped]
        return head + kept, overflow
