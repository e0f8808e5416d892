"""Runtime data of the engine: frozen, slotted dataclasses shared by every component.

A *step* is one paragraph of a solution; steps are separated by a blank line (``"\\n\\n"``)
and stored here without that separator.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

STEP_SEPARATOR = "\n\n"


@dataclass(frozen=True, slots=True)
class Problem:
    """One question with its gold answer (and, where known, a gold step-by-step solution)."""

    id: str
    question: str
    answer: str
    gold_steps: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class Prefix:
    """A partial (or finished) solution of ``problem``: the steps written so far."""

    problem: Problem
    steps: tuple[str, ...] = ()

    def extend(self, steps: tuple[str, ...]) -> Prefix:
        return Prefix(self.problem, self.steps + steps)


class FinishReason(str, Enum):
    """Why a continuation stopped."""

    step = "step"  # reached the end of a step (the blank line); the solution goes on
    eos = "eos"  # the policy ended the solution (end-of-sequence token)
    length = "length"  # ran into the token limit: neither a whole step nor a finished solution


class Until(str, Enum):
    """How far a generator continues a prefix."""

    step = "step"  # one step: stop at the next blank line and keep it
    end = "end"  # the whole rest of the solution


@dataclass(frozen=True, slots=True)
class Sampling:
    """Per-call sampling settings of ``Generator.generate`` (the engine's side of vLLM's
    ``SamplingParams``; the model and its configured defaults stay with the generator).

    ``temperature`` (0 is greedy), ``top_p`` and ``max_tokens`` (new tokens per
    continuation) override the generator's configured values for this call; ``None`` keeps
    them (``max_tokens=None``: the generator's limit for ``until``, one step or the rest).

    ``streams`` names the random stream of every prefix (``len(streams) == len(prefixes)``):
    continuation ``j`` of prefix ``i`` draws only from a stream derived from (the
    generator's seed, ``streams[i]``, ``j``), so what a prefix gets does not depend on the
    other prefixes of the call, on batch sizes or on the process. The engine names them
    ``"<problem id>/<request number within that problem>"``. ``None``: each prefix's stream
    is named by the prefix itself (problem id, question and steps), so an identical prefix
    gets identical continuations.

    ``abandoned``, when given, returns the indices of the prefixes whose continuations nobody
    wants any more (the search server's clients that left while the call ran). The
    transformers generator asks it every few decode steps and stops those prefixes'
    continuations where they are (cut: ``FinishReason.length``), so they cost no more tokens;
    the OpenAI-compatible server backend does not send their requests, or cancels them in
    flight (cut, no tokens counted); the others' continuations do not change (up to float
    noise from their batch's new shape, as with any batch). The vLLM
    backend hands the whole call to its engine and finishes it. It is asked from the model's
    thread or an HTTP client's, so it must be cheap and thread-safe. Not part of the
    settings' equality.
    """

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    streams: tuple[str, ...] | None = None
    abandoned: Callable[[], Collection[int]] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.temperature is not None and not self.temperature >= 0:
            raise ValueError(
                f"expected temperature >= 0, got {self.temperature}; "
                "fix: temperature=0 (greedy) or more"
            )
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(
                f"expected 0 < top_p <= 1, got {self.top_p}; fix: top_p=1.0 (no filtering)"
            )
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(
                f"expected max_tokens >= 1, got {self.max_tokens}; fix: max_tokens=1 or more"
            )


DEFAULT_SAMPLING = Sampling()  # the generator's configured settings, streams named by prefix
GREEDY = Sampling(temperature=0.0)


@dataclass(frozen=True, slots=True)
class Continuation:
    """One sampled continuation of a prefix.

    ``text`` is what the policy wrote, the stop string included; ``steps`` is that text split
    into steps (separator removed, empty paragraphs dropped).
    """

    text: str
    steps: tuple[str, ...]
    finish_reason: FinishReason
    num_tokens: int

    @property
    def finished(self) -> bool:
        return self.finish_reason is FinishReason.eos


@dataclass(frozen=True, slots=True)
class Generation:
    """The n continuations of one prefix, and the prompt's length in tokens."""

    prompt_tokens: int
    continuations: tuple[Continuation, ...]


def split_steps(text: str) -> tuple[str, ...]:
    """Split solution text into steps at blank lines, dropping empty paragraphs."""
    return tuple(part.strip() for part in text.split(STEP_SEPARATOR) if part.strip())


@dataclass(frozen=True, slots=True)
class Candidate:
    """One solution a strategy returns for a problem.

    ``finished`` is true only when the policy ended the solution itself; a candidate that ran
    out of steps or tokens is returned with ``finished=False`` and never passed off as done.
    ``num_tokens`` counts the policy tokens generated along this candidate's own path.
    ``step_scores`` (one per step) and ``score`` (their aggregate) are ``None`` without a PRM;
    ``aggregation`` names the rule that made ``score`` from them. ``finish_reason`` is why the
    candidate's last continuation stopped: ``eos`` (the policy ended it), ``length`` (the
    token limit), ``step`` (a step boundary: the search stopped there, e.g. at ``max_steps``).
    """

    steps: tuple[str, ...]
    finished: bool
    num_tokens: int
    answer: str | None = None
    correct: bool | None = None
    step_scores: tuple[float, ...] | None = None
    score: float | None = None
    finish_reason: FinishReason | None = None
    aggregation: str | None = None


@dataclass(frozen=True, slots=True)
class StepCheck:
    """A ``Checker``'s verdict on one solution. ``first_error`` is -1 when every step is
    right, else the index of the first wrong step (``len(steps)`` when the solution stops
    before its answer); ``kind`` names the error in the checker's own terms (``None`` when
    right); ``answer_correct``: the final answer matches the gold."""

    first_error: int
    kind: str | None
    answer_correct: bool

    @property
    def process_correct(self) -> bool:
        return self.first_error == -1

    @property
    def right_answer_wrong_process(self) -> bool:
        return self.answer_correct and not self.process_correct


@dataclass(frozen=True, slots=True)
class ScoreOutput:
    """Scores of a batch of prefixes with what each cost the PRM.

    ``tokens[i]``: tokens the PRM encoded for prefix ``i``; ``new_tokens[i]``: of those,
    tokens not already encoded for an earlier prefix of the same solution (what a prefix
    cache would have to compute). Both are ``None`` when the scorer does not report them.
    """

    scores: list[list[float]]
    tokens: list[int] | None = None
    new_tokens: list[int] | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Compute spent on one problem (or a whole run, summed).

    ``prm_tokens`` is ``None`` when the scorer does not report what it encoded (a custom
    scorer without a ``usage`` attribute): unknown is not zero.
    """

    prompt_tokens: int = 0  # policy prompt tokens, counted once per prefix and call
    generated_tokens: int = 0  # policy tokens sampled
    prm_tokens: int | None = 0  # tokens the PRM encoded
    prm_new_tokens: int | None = 0  # of those, tokens never encoded before for this problem
    generate_calls: int = 0
    score_calls: int = 0

    @property
    def policy_tokens(self) -> int:
        return self.prompt_tokens + self.generated_tokens

    def __add__(self, other: Usage) -> Usage:
        def add(a: int | None, b: int | None) -> int | None:
            return None if a is None or b is None else a + b

        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            generated_tokens=self.generated_tokens + other.generated_tokens,
            prm_tokens=add(self.prm_tokens, other.prm_tokens),
            prm_new_tokens=add(self.prm_new_tokens, other.prm_new_tokens),
            generate_calls=self.generate_calls + other.generate_calls,
            score_calls=self.score_calls + other.score_calls,
        )


@dataclass(frozen=True, slots=True)
class SearchResult:
    """What a strategy returns for one problem: its candidates, the pick, and the cost.

    ``prediction`` is the selected final answer (``None`` when no candidate has one);
    ``predictions`` holds the pick of every selection rule the strategy reports (for
    best-of-N: ``prm``, ``weighted``, ``majority``), keyed by rule name. ``tree`` is the
    search tree in node-link form (``networkx.node_link_data``) for tree strategies.
    """

    problem: Problem
    candidates: tuple[Candidate, ...]
    prediction: str | None
    predictions: dict[str, str | None] = field(default_factory=dict, compare=False)
    usage: Usage = field(default_factory=Usage)
    wall_s: float = 0.0
    tree: dict[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class LoadedProblems:
    """The problems read, and the bad rows skipped (always 0 with ``on_bad_row=error``)."""

    problems: tuple[Problem, ...]
    skipped: int = 0
    skipped_reasons: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        assert self.skipped == len(self.skipped_reasons)
