"""What every generator backend shares: sampling settings, prompt rendering, and turning
raw sampled text into a ``Continuation``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from search.inputs import InputError
from search.prompting import DEFAULT_SYSTEM_PROMPT, render_prompt
from search.seeding import derive_seed
from search.types import (
    STEP_SEPARATOR,
    Continuation,
    FinishReason,
    Prefix,
    Sampling,
    Until,
    split_steps,
)


@dataclass(frozen=True, slots=True)
class CallSettings:
    """What one generate call samples with: the generator's settings under the call's
    ``Sampling`` overrides. ``max_tokens`` is the limit of one continuation."""

    temperature: float
    top_p: float
    max_tokens: int


@dataclass(frozen=True, slots=True)
class GenerationSettings:
    """Per-request sampling parameters (the engine's, not the model's).

    ``max_step_tokens`` caps one step (``Until.step``); ``max_tokens`` caps the rest of a
    solution (``Until.end``). ``temperature=0`` is greedy.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    max_step_tokens: int = 64
    max_tokens: int = 512

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(
                f"expected temperature >= 0, got {self.temperature}; fix: policy.temperature=1.0 "
                "(0 is greedy)"
            )
        if not 0 < self.top_p <= 1:
            raise ValueError(f"expected 0 < top_p <= 1, got {self.top_p}; fix: policy.top_p=1.0")
        if self.max_step_tokens < 1 or self.max_tokens < 1:
            raise ValueError(
                "expected max_step_tokens >= 1 and max_tokens >= 1, got "
                f"{self.max_step_tokens} and {self.max_tokens}; fix: policy.max_step_tokens=64 and "
                "policy.max_tokens=512"
            )

    def limit(self, until: Until) -> int:
        """New tokens allowed for one continuation."""
        return self.max_step_tokens if until is Until.step else self.max_tokens

    def for_call(self, sampling: Sampling, until: Until) -> CallSettings:
        """These settings with the call's overrides applied."""
        return CallSettings(
            temperature=self.temperature if sampling.temperature is None else sampling.temperature,
            top_p=self.top_p if sampling.top_p is None else sampling.top_p,
            max_tokens=self.limit(until) if sampling.max_tokens is None else sampling.max_tokens,
        )


def stream_names(prefixes: Sequence[Prefix], sampling: Sampling) -> list[str]:
    """The random stream of every prefix: ``sampling.streams``, or one named by the prefix
    itself (problem id, question and steps) when the caller names none."""
    if sampling.streams is None:
        return ["\x1f".join((p.problem.id, p.problem.question, *p.steps)) for p in prefixes]
    if len(sampling.streams) != len(prefixes):
        raise ValueError(
            f"expected one sampling stream per prefix ({len(prefixes)}), got "
            f"{len(sampling.streams)}; fix: pass Sampling(streams=...) of the prefixes' length"
        )
    return list(sampling.streams)


def continuation_seed(seed: int, stream: str, index: int) -> int:
    """The seed of continuation ``index`` of the prefix whose stream is ``stream``."""
    return derive_seed(seed, stream, index)


def request_seed(seed: int, stream: str) -> int:
    """One seed for all continuations of a prefix (vLLM seeds each request, not each of its
    ``n`` outputs; it gives output ``j`` the seed plus ``j``, so the top bits stay clear)."""
    return derive_seed(seed, stream) >> 2


class PromptRenderer:
    """Renders a prefix into prompt token ids: the chat template when the tokenizer has one
    (``use_chat_template=None``), else ``search.prompting.PLAIN_TEMPLATE``."""

    def __init__(
        self,
        tokenizer: Any,
        use_chat_template: bool | None = None,
        system_prompt: str | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.use_chat_template = use_chat_template
        self.system_prompt = DEFAULT_SYSTEM_PROMPT if system_prompt is None else system_prompt

    def text(self, prefix: Prefix) -> str:
        return render_prompt(
            prefix.problem.question,
            prefix.steps,
            tokenizer=self.tokenizer,
            system_prompt=self.system_prompt,
            use_chat_template=self.use_chat_template,
        )

    def encode(self, prefix: Prefix) -> list[int]:
        ids = self.tokenizer(self.text(prefix), add_special_tokens=False)["input_ids"]
        return list(ids)

    def eos_ids(self, extra: int | list[int] | None = None) -> frozenset[int]:
        """End-of-solution token ids: the tokenizer's eos plus the model's generation-config
        eos (instruct models end a turn with e.g. ``<|im_end|>``)."""
        ids: set[int] = set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        if isinstance(extra, int):
            ids.add(extra)
        elif extra:
            ids.update(int(x) for x in extra)
        if not ids:
            raise ValueError(
                "expected the tokenizer or the model's generation config to name an eos token, "
                "got none; fix: set eos_token in the tokenizer config"
            )
        return frozenset(ids)

    @staticmethod
    def ends_step(text: str) -> bool:
        return STEP_SEPARATOR in text


def make_continuation(
    text: str, reason: FinishReason, num_tokens: int, until: Until
) -> Continuation:
    """A ``Continuation`` from sampled text: in step mode the text is cut just after the first
    blank line (a token may run past it); the blank line is kept."""
    if until is Until.step and reason is FinishReason.step:
        cut = text.find(STEP_SEPARATOR)
        if cut >= 0:
            text = text[: cut + len(STEP_SEPARATOR)]
    return Continuation(
        text=text, steps=split_steps(text), finish_reason=reason, num_tokens=num_tokens
    )


class PromptTooLong(InputError):
    """A prompt that leaves the policy no room to write (it would write garbage)."""


def check_prompt_lengths(prefixes: Sequence[Prefix], lengths: Sequence[int], context: int) -> None:
    """Refuse prompts of ``context`` tokens or more (the model's positions end there)."""
    over = [(p.problem.id, n) for p, n in zip(prefixes, lengths, strict=True) if n >= context]
    if over:
        problem_id, length = over[0]
        raise PromptTooLong(
            f"expected prompts shorter than the policy's context of {context} tokens, got "
            f"{length} tokens for problem {problem_id}"
            + (f" (and {len(over) - 1} more)" if len(over) > 1 else "")
            + "; fix: on_overflow=skip records such problems as skipped, or use a policy with "
            "a longer context"
        )
