"""A fake policy and a fake PRM: an end-to-end search without any model.

Both are built for the embedded arithmetic world (``search.envs.arith``) and fall back to generic
text for other problems. They are deterministic from their seed (local ``random.Random``)
and keep their own ``usage`` counters, so tests can check the engine's accounting against
what the backends really processed.

Token convention (both fakes): one token per whitespace-separated word. Generated tokens
count the words of the continuation text (no eos token); prompt tokens count the words of
the plain-template prompt (``search.prompting.render_prompt``); the fake PRM counts the words
of the question and of every step plus one step-tag token per step.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from search.answers import ANSWER_STEP, extract_answer
from search.envs.arith.checker import check_solution, parse_question
from search.envs.arith.world import OPS, apply
from search.generators.base import continuation_seed, stream_names
from search.grading import answers_match
from search.prompting import render_prompt
from search.protocols import TokenCounter
from search.types import (
    DEFAULT_SAMPLING,
    STEP_SEPARATOR,
    Continuation,
    FinishReason,
    Generation,
    Prefix,
    Problem,
    Sampling,
    ScoreOutput,
    Until,
    split_steps,
)

_STEP = re.compile(r"^\s*(-?\d+) ([-+*]) (-?\d+) = (-?\d+)\s*$")
_WORD = re.compile(r"\S+\s*")


def count_words(text: str) -> int:
    """The fakes' token count: whitespace-separated words."""
    return len(text.split())


class PrefixCache:
    """Which step prefixes of each problem a backend has already encoded.

    Encoding a prefix encodes all of its own prefixes too (a KV cache would hold them), so
    ``add`` records every ancestor. ``longest`` returns the length of the longest cached
    prefix of ``steps``, or -1 when not even the question was encoded.
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], set[tuple[str, ...]]] = {}

    def longest(self, problem: Problem, steps: tuple[str, ...]) -> int:
        seen = self._seen.get((problem.id, problem.question), set())
        for length in range(len(steps), -1, -1):
            if steps[:length] in seen:
                return length
        return -1

    def add(self, problem: Problem, steps: tuple[str, ...]) -> None:
        seen = self._seen.setdefault((problem.id, problem.question), set())
        seen.update(steps[:length] for length in range(len(steps) + 1))


def _arith_chain(problem: Problem) -> tuple[int, list[tuple[str, int]]] | None:
    try:
        return parse_question(problem.question)
    except ValueError:
        return None


def _running_value(start: int, steps: Sequence[str]) -> int:
    """The value the policy believes it holds: the result of its last operation step."""
    for step in reversed(steps):
        match = _STEP.match(step)
        if match:
            return int(match.group(4))
    return start


class FakeGenerator:
    """A seeded stand-in for the policy (implements ``search.protocols.Generator``).

    On arithmetic-world problems it writes one operation per step (``"7 + 5 = 12"``),
    continuing from the value its prefix last stated, so an error carries into the answer.
    Each operation step is wrong with probability ``error_rate``: half of the errors state a
    wrong result (an arithmetic error), half use a wrong operand (a logic error). After the
    chain it writes ``The answer is \\boxed{N}.`` and ends the solution (eos). On other
    problems it writes ``generic_steps`` filler steps, then an answer that is
    ``problem.answer`` with probability ``1 - error_rate`` and a wrong number otherwise.

    ``max_new_tokens`` (words, see the module docstring) cuts a continuation with
    ``FinishReason.length``, as a real generator's token limit would. ``usage`` counts
    calls, prompt tokens (``tokens``; ``new_tokens`` the part not in an earlier prompt of the
    same problem) and ``generated_tokens``. Continuation ``j`` of a prefix draws from its own
    ``random.Random`` seeded by (seed, the prefix's stream, ``j``), as the real backends do;
    ``sampling.temperature=0`` makes no errors (the greedy policy is right), and
    ``sampling.max_tokens`` overrides ``max_new_tokens``.
    """

    def __init__(
        self,
        seed: int = 0,
        error_rate: float = 0.2,
        max_new_tokens: int | None = None,
        generic_steps: int = 3,
    ) -> None:
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(
                f"expected 0 <= error_rate <= 1, got {error_rate}; fix: policy.error_rate=0.2"
            )
        if max_new_tokens is not None and max_new_tokens < 1:
            raise ValueError(
                f"expected max_new_tokens >= 1 or None, got {max_new_tokens}; "
                "fix: policy.max_new_tokens=null"
            )
        self.error_rate = error_rate
        self.max_new_tokens = max_new_tokens
        self.generic_steps = generic_steps
        self.usage = TokenCounter()
        self.seed = seed
        self._prompts = PrefixCache()

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        until = Until(until)
        streams = stream_names(prefixes, sampling)
        error_rate = 0.0 if sampling.temperature == 0 else self.error_rate
        limit = self.max_new_tokens if sampling.max_tokens is None else sampling.max_tokens
        self.usage.calls += 1
        out: list[Generation] = []
        for prefix, stream in zip(prefixes, streams, strict=True):
            prompt_tokens = self._prompt_tokens(prefix.problem, prefix.steps)
            cached = self._prompts.longest(prefix.problem, prefix.steps)
            reused = (
                self._prompt_tokens(prefix.problem, prefix.steps[:cached]) if cached >= 0 else 0
            )
            self._prompts.add(prefix.problem, prefix.steps)
            self.usage.tokens += prompt_tokens
            self.usage.new_tokens += prompt_tokens - reused
            continuations = tuple(
                self._continue(
                    prefix,
                    until,
                    random.Random(continuation_seed(self.seed, stream, j)),
                    error_rate,
                    limit,
                )
                for j in range(n)
            )
            self.usage.generated_tokens += sum(c.num_tokens for c in continuations)
            out.append(Generation(prompt_tokens=prompt_tokens, continuations=continuations))
        return out

    @staticmethod
    def _prompt_tokens(problem: Problem, steps: tuple[str, ...]) -> int:
        return count_words(render_prompt(problem.question, steps))

    def _continue(
        self,
        prefix: Prefix,
        until: Until,
        rng: random.Random,
        error_rate: float,
        limit: int | None,
    ) -> Continuation:
        steps = list(prefix.steps)
        written: list[str] = []
        ended = False
        while not ended:
            step, ended = self._next_step(prefix.problem, steps, rng, error_rate)
            steps.append(step)
            written.append(step)
            if until is Until.step:
                break
        text = STEP_SEPARATOR.join(written) + ("" if ended else STEP_SEPARATOR)
        reason = FinishReason.eos if ended else FinishReason.step
        words = _WORD.findall(text)
        if limit is not None and len(words) > limit:
            text = "".join(words[:limit])
            words = words[:limit]
            reason = FinishReason.length
        return Continuation(
            text=text, steps=split_steps(text), finish_reason=reason, num_tokens=len(words)
        )

    def _next_step(
        self, problem: Problem, steps: list[str], rng: random.Random, error_rate: float
    ) -> tuple[str, bool]:
        """The next step after ``steps`` and whether it ends the solution."""
        chain = _arith_chain(problem)
        if chain is None:
            return self._next_generic_step(problem, len(steps), rng, error_rate)
        start, operations = chain
        value = _running_value(start, steps)
        if len(steps) >= len(operations):
            return ANSWER_STEP.format(value=value), True
        op, operand = operations[len(steps)]
        result = apply(op, value, operand)
        if rng.random() < error_rate:
            if rng.random() < 0.5:
                result += rng.choice([-3, -2, -1, 1, 2, 3])
            else:
                operand += rng.choice([-2, -1, 1, 2])
                result = apply(op, value, operand)
        return f"{value} {OPS[op]} {operand} = {result}", False

    def _next_generic_step(
        self, problem: Problem, index: int, rng: random.Random, error_rate: float
    ) -> tuple[str, bool]:
        if index < self.generic_steps:
            return f"Step {index + 1}: we work on the problem.", False
        answer = problem.answer
        if rng.random() < error_rate:
            stripped = answer.strip()
            is_int = stripped.lstrip("-").isdigit()
            answer = str(int(stripped) + rng.randint(1, 9)) if is_int else "0"
            if answer == problem.answer:
                answer = str(rng.randint(1000, 9999))
        return ANSWER_STEP.format(value=answer), True


class FakeScorer:
    """A seeded stand-in for a PRM (implements ``Scorer`` and ``score_with_usage``).

    On arithmetic-world problems a step scores ``right_score`` while the solution is right
    so far (per ``search.envs.arith.checker``) and ``wrong_score`` from the first error on; on
    other problems every step scores ``right_score`` except a final answer that does not
    match ``problem.answer``. ``noise`` adds a uniform perturbation in ``[-noise, noise]``
    that is a fixed function of (seed, question, steps so far), so re-scoring a prefix gives
    the same scores, as a real PRM would.

    ``usage.tokens`` counts what it encoded (see the module docstring); ``new_tokens`` only
    the tokens past the longest prefix of the same solution encoded before (per problem).
    """

    def __init__(
        self,
        seed: int = 0,
        right_score: float = 0.9,
        wrong_score: float = 0.1,
        noise: float = 0.0,
    ) -> None:
        for name, value in (("right_score", right_score), ("wrong_score", wrong_score)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"expected 0 <= {name} <= 1, got {value}")
        self.seed = seed
        self.right_score = right_score
        self.wrong_score = wrong_score
        self.noise = noise
        self.usage = TokenCounter()
        self._cache = PrefixCache()

    def score(self, prefixes: Sequence[Prefix]) -> list[list[float]]:
        return self.score_with_usage(prefixes).scores

    def score_with_usage(self, prefixes: Sequence[Prefix]) -> ScoreOutput:
        self.usage.calls += 1
        scores: list[list[float]] = []
        tokens: list[int] = []
        new_tokens: list[int] = []
        for prefix in prefixes:
            scores.append(self._score_steps(prefix.problem, prefix.steps))
            total = self._tokens(prefix.problem, prefix.steps)
            cached = self._cache.longest(prefix.problem, prefix.steps)
            reused = self._tokens(prefix.problem, prefix.steps[:cached]) if cached >= 0 else 0
            self._cache.add(prefix.problem, prefix.steps)
            tokens.append(total)
            new_tokens.append(total - reused)
        self.usage.tokens += sum(tokens)
        self.usage.new_tokens += sum(new_tokens)
        return ScoreOutput(scores=scores, tokens=tokens, new_tokens=new_tokens)

    @staticmethod
    def _tokens(problem: Problem, steps: tuple[str, ...]) -> int:
        return count_words(problem.question) + sum(count_words(step) + 1 for step in steps)

    def _score_steps(self, problem: Problem, steps: tuple[str, ...]) -> list[float]:
        if _arith_chain(problem) is not None:
            first_error = check_solution(problem, steps).first_error
            right = [first_error == -1 or index < first_error for index in range(len(steps))]
        else:
            right = [True] * len(steps)
            if steps and "\\boxed" in steps[-1]:
                right[-1] = answers_match(extract_answer(steps[-1]), problem.answer)
        scores = []
        for index, is_right in enumerate(right):
            value = self.right_score if is_right else self.wrong_score
            if self.noise:
                key = f"{self.seed}|{problem.question}|" + STEP_SEPARATOR.join(steps[: index + 1])
                value += random.Random(key).uniform(-self.noise, self.noise)
            scores.append(min(1.0, max(0.0, value)))
        return scores
