"""From a prefix to the PRM's token ids and the positions of its step tags.

The whole rendered text is tokenised in one call (as the public PRMs' cards do), so both
backends see identical ids. ``max_length`` (``resolve_max_length``) defaults to the model's
context and may not exceed it. Inputs longer than ``max_length`` follow ``on_overflow``:

- ``error``: refuse, naming the lengths and the fix;
- ``truncate_question``: drop question tokens from the left (oldest first) until the input
  fits; the steps and their tags are never cut. If the steps alone do not fit, it refuses.

A refused input raises ``InputTooLong`` (an ``InputError``: entry points print it as one
line), which carries the lengths so an entry point can add its own fix.

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
from search.inputs import InputError
from search.types import Prefix


class OverflowPolicy(str, Enum):
    """What to do with an input longer than the PRM's ``max_length``."""

    truncate_question = "truncate_question"
    error = "error"


class InputTooLong(InputError):
    """A PRM input longer than ``max_length`` that ``on_overflow`` could not make fit."""

    def __init__(
        self,
        message: str,
        *,
        problem_id: str,
        num_tokens: int,
        max_length: int,
        question_dropped: bool,
        full_tokens: int | None = None,
    ) -> None:
        super().__init__(message)
        self.problem_id = problem_id
        self.num_tokens = num_tokens  # the input's tokens (without the question, if dropped)
        self.max_length = max_length
        self.question_dropped = question_dropped  # on_overflow=truncate_question was tried
        # the input's tokens with its question (= num_tokens when no question was dropped)
        self.full_tokens = num_tokens if full_tokens is None else full_tokens


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and 0 < value < 10_000_000 else None


def resolve_max_length(max_length: int | None, config: Any, tokenizer: Any) -> int:
    """The PRM's ``max_length``: ``max_length`` as given, checked against the model's context
    (``config.max_position_embeddings``); ``None``: that context, else the tokenizer's limit.
    A ``max_length`` above the context is refused: the positions past it were never trained
    and the scores there mean nothing."""
    context = _positive_int(getattr(config, "max_position_embeddings", None))
    if max_length is None:
        limit = context or _positive_int(getattr(tokenizer, "model_max_length", None))
        if limit is None:
            raise InputError(
                "expected the PRM's config to give max_position_embeddings, got none; fix: set "
                "scorer.max_length"
            )
        return limit
    return check_max_length(max_length, context, "max_position_embeddings")


def check_max_length(
    max_length: int, context: int | None, source: str, setting: str = "scorer.max_length"
) -> int:
    """``max_length``, refused when above the model's ``context`` (read from ``source``);
    ``setting`` names the key to fix (``max_length`` for ``prm.train``)."""
    if context is not None and max_length > context:
        null = " or null (the model's context)" if setting.startswith("scorer.") else ""
        raise InputError(
            f"expected {setting} <= the model's context ({source}={context}), got "
            f"max_length={max_length}; fix: {setting}={context}{null}; inputs longer than "
            "that need a PRM with a longer context"
        )
    return max_length


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
        # this encoder measures every input against max_length and applies on_overflow
        # itself: transformers' own "will result in indexing errors" warning, about inputs
        # this encoder truncates or refuses, would only alarm (its flag for "said already")
        warned = getattr(tokenizer, "deprecation_warnings", None)
        if isinstance(warned, dict):
            warned["sequence-length-is-longer-than-the-specified-maximum"] = True

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
                raise InputTooLong(
                    f"expected a PRM input of at most max_length={self.max_length} tokens, got "
                    f"{len(ids)} for problem {prefix.problem.id!r} ({len(prefix.steps)} steps); "
                    "fix: set on_overflow=truncate_question, raise max_length (up to the "
                    "model's context), or cap the policy's solution length",
                    problem_id=prefix.problem.id,
                    num_tokens=len(ids),
                    max_length=self.max_length,
                    question_dropped=False,
                )
            ids, truncated = self._truncate_question(
                prefix, rendered, head, len(ids) - self.max_length
            )
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
        self, prefix: Prefix, rendered: RenderedText, head: list[int], overflow: int
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
            without_question = len(head) + len(ids) - len(question)
            raise InputTooLong(
                f"expected the steps to fit max_length={self.max_length} once the question is "
                f"dropped, got {without_question} tokens without the question for problem "
                f"{prefix.problem.id!r}; fix: raise max_length (up to the model's context) or "
                "cap the policy's solution length",
                problem_id=prefix.problem.id,
                num_tokens=without_question,
                max_length=self.max_length,
                question_dropped=True,
                full_tokens=len(head) + len(ids),
            )
        dropped = set(question[:overflow])
        kept = [token for index, token in enumerate(ids) if index not in dropped]
        return head + kept, overflow
