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
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from prm.label.records import LabelRecord, judged_record, unlabelled
from prm.sample import SampledSolution
from search.answers import last_boxed
from search.guards import check_generations
from search.protocols import Generator
from search.remote import ServerClient, ServerSettings
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
    """A critic behind an OpenAI-compatible chat-completions endpoint (e.g. ``vllm serve``),
    through the project's one HTTP client (``search.remote.ServerClient``): requests run
    ``max_concurrency`` at a time, are retried with backoff on 429, 5xx, timeouts and dropped
    connections (``max_retries``), and a server that is not there is one error naming its URL
    when the critic is built. ``api_key_env`` names the environment variable holding the key,
    as for the remote policy and PRM (``$OPENAI_API_KEY`` by default; when it is unset no key
    is sent, which a local vLLM server accepts). ``client`` replaces
    the client (tests)."""

    def __init__(
        self,
        model: str,
        base_url: str = "http://localhost:8000",
        api_key_env: str | None = "OPENAI_API_KEY",
        temperature: float = 0.0,
        max_tokens: int = 4096,
        max_concurrency: int = 8,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 5.0,
        max_retries: int = 4,
        client: ServerClient | None = None,
    ) -> None:
        if client is None:
            settings = ServerSettings(
                base_url=base_url,
                api_key_env=api_key_env,
                timeout_s=timeout_s,
                connect_timeout_s=connect_timeout_s,
                max_concurrency=max_concurrency,
                max_retries=max_retries,
            )
            client = ServerClient(settings)
            client.check()  # a judge that is not there: one line now, not after sampling
        self.client = client
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens

    def critique(self, prompts: Sequence[str]) -> list[Critique]:
        bodies = [
            {
                "model": self.model,
                "messages": [{"role": "user", "content": prompt}],
                "temperature": self.temperature,
                "max_tokens": self.max_tokens,
            }
            for prompt in prompts
        ]
        critiques = []
        for response in self.client.post_many("/v1/chat/completions", bodies):
            choice = response["choices"][0]
            usage = response.get("usage") or {}
            critiques.append(
                Critique(
                    text=(choice.get("message") or {}).get("content") or "",
                    truncated=choice.get("finish_reason") == "length",
                    num_tokens=int(usage.get("completion_tokens") or 0),
                )
            )
        return critiques


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
