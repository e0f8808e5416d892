"""LLM-as-a-judge step labels (arXiv 2501.07301, section 3 and appendix C).

The judge reads the problem and the solution as numbered paragraphs, reviews them in order,
stops at the first wrong one and ends with its verdict in ``\\boxed{}``: the index of the
first wrong paragraph (0-based), or -1 when all are right. Steps before that index are
labelled right, the step at it wrong.

A critique that is cut off (the judge ran out of tokens), has no ``\\boxed{}`` verdict, or
whose verdict is not an index of the solution gives *no label*: the solution is left out and
the reason counted, never guessed.

Critics (``Critic``: a batch of prompts in, a batch of critiques out):

- ``GeneratorCritic``: any ``search.protocols.Generator``; the judge prompt is rendered as
  the question of an empty ``Prefix`` and continued to the end (``Until.end``), so the
  generator's own chat template and sampling settings apply;
- ``OpenAICritic``: an OpenAI-compatible chat endpoint (vLLM ``serve``, TGI, the OpenAI API),
  for large judges such as Qwen2.5-72B-Instruct.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from prm.label.records import LabelRecord, judged_record, unlabelled
from prm.sample import SampledSolution
from search.answers import last_boxed
from search.guards import check_generations
from search.protocols import Generator
from search.types import FinishReason, Prefix, Problem, Until

log = logging.getLogger(__name__)

JUDGE_TEMPLATE = """\
You are checking a student's solution to a math problem, one paragraph at a time.

Problem:
{question}

The solution is split into paragraphs numbered from 0, each wrapped in \
<paragraph_i> ... </paragraph_i> tags:

{paragraphs}

Go through the paragraphs in order. For each one, explain briefly whether its reasoning and \
its calculations are correct, given the problem and the paragraphs before it. As soon as you \
find a paragraph that contains an error, stop: do not review the paragraphs after it.

Finish with your verdict in \\boxed{{}}: the number of the first paragraph that contains an \
error, or \\boxed{{-1}} if every paragraph is correct."""

_INDEX = re.compile(r"^\s*\$?\s*(-?\d+)\s*\$?\s*$")


def render_judge_prompt(question: str, steps: Sequence[str]) -> str:
    paragraphs = "\n\n".join(
        f"<paragraph_{index}>\n{step}\n</paragraph_{index}>" for index, step in enumerate(steps)
    )
    return JUDGE_TEMPLATE.format(question=question, paragraphs=paragraphs)


class UnparsableVerdict(ValueError):
    """A critique that gives no usable verdict; ``reason`` is one of ``truncated``,
    ``no_verdict``, ``not_an_index``, ``out_of_range``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def parse_verdict(text: str, num_steps: int, truncated: bool = False) -> int | None:
    """The first wrong step a critique names, or ``None`` when it finds every step right.

    Raises ``UnparsableVerdict`` for a truncated critique, one without a complete
    ``\\boxed{}``, or one whose verdict is not -1 or an index below ``num_steps``.
    """
    if truncated:
        raise UnparsableVerdict("truncated", "the critique ran out of tokens")
    boxed = last_boxed(text)
    if boxed is None:
        raise UnparsableVerdict("no_verdict", f"no complete \\boxed{{}} in {text[-80:]!r}")
    match = _INDEX.match(boxed)
    if match is None:
        raise UnparsableVerdict("not_an_index", f"verdict {boxed!r} is not an integer")
    index = int(match.group(1))
    if index == -1:
        return None
    if not 0 <= index < num_steps:
        raise UnparsableVerdict(
            "out_of_range", f"verdict {index} for a solution of {num_steps} paragraphs"
        )
    return index


@dataclass(frozen=True, slots=True)
class Critique:
    text: str
    truncated: bool
    num_tokens: int = 0


class Critic(Protocol):
    def critique(self, prompts: Sequence[str]) -> list[Critique]:
        """One critique per prompt, in order."""
        ...


class GeneratorCritic:
    """A critic on any ``Generator``: each prompt is the question of an empty prefix."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    def critique(self, prompts: Sequence[str]) -> list[Critique]:
        prefixes = [
            Prefix(Problem(id=f"judge-{index}", question=prompt, answer=""))
            for index, prompt in enumerate(prompts)
        ]
        generations = self.generator.generate(prefixes, n=1, until=Until.end)
        check_generations(self.generator, prefixes, 1, generations)
        out = []
        for generation in generations:
            continuation = generation.continuations[0]
            out.append(
                Critique(
                    text=continuation.text,
                    truncated=continuation.finish_reason is FinishReason.length,
                    num_tokens=continuation.num_tokens,
                )
            )
        return out


class OpenAICritic:
    """A critic behind an OpenAI-compatible chat-completions endpoint.

    ``api_key``: the key itself, or ``None`` to read ``$OPENAI_API_KEY`` (a local vLLM server
    accepts any value; ``"EMPTY"`` is used when neither is set). Requests run
    ``max_concurrency`` at a time. ``client`` replaces the ``openai.OpenAI`` client (tests).
    """

    def __init__(
        self,
        model: str,
        base_url: str = "http://localhost:8000/v1",
        api_key: str | None = None,
        temperature: float = 0.0,
        max_tokens: int = 4096,
        max_concurrency: int = 8,
        timeout_s: float = 600.0,
        client: Any = None,
    ) -> None:
        if client is None:
            try:
                import openai
            except ImportError:
                raise ImportError(
                    "expected the openai client for the LLM judge, got no module 'openai'; "
                    "fix: pip install 'prm-search[judge]' (or pip install openai)"
                ) from None

            client = openai.OpenAI(
                base_url=base_url,
                api_key=api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY",
                timeout=timeout_s,
            )
        self.client = client
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_concurrency = max_concurrency

    def _one(self, prompt: str) -> Critique:
        response = self.client.chat.completions.create(
            model=self.model,
            messages=[{"role": "user", "content": prompt}],
            temperature=self.temperature,
            max_tokens=self.max_tokens,
        )
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        return Critique(
            text=choice.message.content or "",
            truncated=choice.finish_reason == "length",
            num_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        )

    def critique(self, prompts: Sequence[str]) -> list[Critique]:
        with ThreadPoolExecutor(max_workers=max(1, self.max_concurrency)) as pool:
            return list(pool.map(self._one, prompts))


@dataclass
class JudgeConfig:
    """``conf/labeller/judge.yaml`` (endpoint) and ``judge_local.yaml`` (a local generator).

    ``critic`` is a ``_target_`` node building a ``Critic``.
    """

    name: str = "judge"
    critic: dict[str, Any] = field(default_factory=dict)


class JudgeLabeller:
    """LLM-as-a-judge labeller; implements ``prm.label.records.Labeller``."""

    def __init__(self, critic: Critic, name: str = "judge") -> None:
        self.critic = critic
        self.name = name
        self.critiques = 0
        self.critique_tokens = 0
        self.no_label: dict[str, int] = {}

    def usage(self) -> dict[str, Any]:
        return {
            "critiques": self.critiques,
            "critique_tokens": self.critique_tokens,
            "no_label": dict(self.no_label),
        }

    def label(self, solutions: Sequence[SampledSolution]) -> list[LabelRecord]:
        todo = [s for s in solutions if s.steps]
        prompts = [render_judge_prompt(s.problem.question, s.steps) for s in todo]
        critiques = self.critic.critique(prompts) if prompts else []
        if len(critiques) != len(prompts):
            raise ValueError(
                f"expected one critique per prompt ({len(prompts)}), got {len(critiques)} "
                f"from {type(self.critic).__name__}"
            )
        self.critiques += len(critiques)
        self.critique_tokens += sum(c.num_tokens for c in critiques)
        verdicts: dict[tuple[str, int], LabelRecord] = {}
        for solution, critique in zip(todo, critiques, strict=True):
            try:
                wrong = parse_verdict(critique.text, len(solution.steps), critique.truncated)
            except UnparsableVerdict as error:
                self.no_label[error.reason] = self.no_label.get(error.reason, 0) + 1
                verdicts[solution.key] = unlabelled(solution, self.name, error.reason)
                continue
            first_error = -1 if wrong is None else wrong
            verdicts[solution.key] = judged_record(solution, self.name, first_error)
        return [
            verdicts.get(s.key) or unlabelled(s, self.name, "empty solution") for s in solutions
        ]
