"""Monte Carlo step labels (Math-Shepherd, arXiv 2312.08935; arXiv 2501.07301, section 2.1).

For the prefix ending at step ``i`` of a solution, the policy completes the solution
``num_rollouts`` times (the paper's K, 8 by default). The soft label of step ``i`` is the
fraction of completions whose final answer matches the gold answer; its hard label is
``soft > threshold`` (threshold 0, the paper's "hard estimation": right when any completion
reaches the answer). The last step of a solution the policy finished is graded directly: its
completion is the solution itself. A completion that runs out of tokens counts as wrong.

All prefixes of all solutions in one ``label`` call go to the policy in a single generate
call; identical prefixes (samples of one problem often share their first steps) are rolled
out once when ``dedupe_prefixes`` is on, in both modes. Each rolled-out prefix draws from its
own random stream (``search.types.Sampling.streams``): named by the prefix itself (problem and
steps) with de-duplication, by (solution, step) without it, and in early-stop rounds also by
the rollouts it has had so far; so labels do not depend on chunking, resume or which
solutions share a call, and requests with the same prefix and stream, whose completions would
be the same, are generated once (``_rollout``).

``early_stop=true`` computes the same kind of hard label (any completion right) for far fewer
rollouts, in rounds of ``rollouts_per_round`` completions of every pending prefix of a chunk
(one generate call per round):

- with ``trust_right_answers`` (the default), a finished solution with the right answer
  needs no rollout: it is itself a right completion of each of its prefixes, so every step
  is labelled right. That is a right completion the full mode does not count (it rolls out
  every prefix afresh), and the one that passes every right-answer-wrong-process solution:
  a wrong step the solution's own later slip compensated is labelled right. With
  ``trust_right_answers=false`` such a solution's prefixes are rolled out like any other's,
  so its labels are distributed as the full mode's hard labels (README, "PRM training data:
  label quality");
- otherwise a solution's prefixes are visited in order; a prefix stops at its first right
  completion (labelled right, and the next prefix is visited) or after ``num_rollouts``
  wrong ones (labelled wrong: the first error). Steps after the first error are labelled wrong
  without rollouts (a prefix that cannot reach the answer stays wrong when extended), which is
  what training on labels up to the first error uses anyway.

In this mode ``soft_labels`` are the hard labels (0/1), not MC estimates: use the full mode for
soft-label training. ``usage()`` counts the rollouts actually spent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prm.first_error import first_error_of
from prm.label.records import LabelRecord, unlabelled
from prm.sample import SampledSolution
from search.answers import extract_answer
from search.grading import answers_match
from search.guards import check_generations
from search.prompting import join_steps
from search.protocols import Generator
from search.types import Continuation, Prefix, Sampling, Until

log = logging.getLogger(__name__)


@dataclass
class MCConfig:
    """``conf/labeller/mc.yaml``."""

    name: str = "mc"
    num_rollouts: int = 8
    threshold: float = 0.0
    dedupe_prefixes: bool = True
    grading_timeout_s: float = 5.0
    early_stop: bool = False  # hard labels only: stop a prefix at its first right rollout
    rollouts_per_round: int = 2  # with early_stop: completions per pending prefix per round
    trust_right_answers: bool = True  # with early_stop: a right finished solution is all right

    def __post_init__(self) -> None:
        if self.num_rollouts < 1:
            raise ValueError(
                f"expected num_rollouts >= 1, got {self.num_rollouts}; fix: e.g. "
                "labeller.num_rollouts=8"
            )
        if self.early_stop and self.threshold != 0.0:
            raise ValueError(
                f"expected threshold 0 with early_stop (a prefix stops at its first right "
                f"completion), got {self.threshold}; fix: labeller.early_stop=false"
            )
        if self.rollouts_per_round < 1 or self.num_rollouts % self.rollouts_per_round:
            raise ValueError(
                f"expected rollouts_per_round >= 1 dividing num_rollouts, got "
                f"{self.rollouts_per_round} and {self.num_rollouts}; fix: e.g. "
                "labeller.rollouts_per_round=2 with num_rollouts=8"
            )
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(
                f"expected 0 <= threshold < 1 (hard label = fraction correct > threshold), "
                f"got {self.threshold}; fix: labeller.threshold=0.0 (any right rollout)"
            )


@dataclass
class RolloutUsage:
    generate_calls: int = 0
    prefixes: int = 0  # prefixes that needed rollouts
    prefixes_rolled_out: int = 0  # requests generated: after de-duplication, per round
    rollouts: int = 0
    prompt_tokens: int = 0
    rollout_tokens: int = 0  # tokens the policy sampled


class MCLabeller:
    """Monte Carlo labeller; implements ``prm.label.records.Labeller``."""

    def __init__(self, generator: Generator, config: MCConfig | None = None) -> None:
        self.generator = generator
        self.config = config or MCConfig()
        self.name = self.config.name
        self._usage = RolloutUsage()
        self._graded: dict[tuple[str | None, str], bool] = {}

    def usage(self) -> dict[str, Any]:
        return dict(vars(self._usage))

    def _is_correct(self, text: str, gold: str) -> bool:
        prediction = extract_answer(text)
        key = (prediction, gold)
        if key not in self._graded:
            self._graded[key] = answers_match(
                prediction, gold, timeout_s=self.config.grading_timeout_s
            )
        return self._graded[key]

    def _rollout_correct(self, prefix: Prefix, continuation: Continuation) -> bool:
        if not continuation.finished:
            return False
        return self._is_correct(
            join_steps(prefix.steps + continuation.steps), prefix.problem.answer
        )

    def soft_labels(self, solutions: Sequence[SampledSolution]) -> list[tuple[float, ...]]:
        """Fraction of correct completions after every step of every solution."""
        prefixes: list[Prefix] = []
        streams: list[str] = []
        slots: list[list[int | float]] = []  # per step: index into prefixes, or a direct grade
        for solution in solutions:
            row: list[int | float] = []
            for end in range(1, len(solution.steps) + 1):
                if end == len(solution.steps) and solution.finished:
                    row.append(float(self._is_correct(solution.text, solution.problem.answer)))
                    continue
                self._usage.prefixes += 1
                row.append(len(prefixes))
                prefixes.append(Prefix(solution.problem, solution.steps[:end]))
                streams.append(self._stream(solution, end))
            slots.append(row)
        fractions = self._rollout(prefixes, tuple(streams))
        return [
            tuple(slot if isinstance(slot, float) else fractions[slot] for slot in row)
            for row in slots
        ]

    def _stream(self, solution: SampledSolution, end: int, spent: int | None = None) -> str:
        """The random stream of the rollouts of ``solution``'s prefix of ``end`` steps (and,
        in early-stop rounds, after ``spent`` rollouts): named by the prefix itself with
        ``dedupe_prefixes``, so that solutions sharing it share its rollouts, else by the
        solution and the step."""
        problem = solution.problem
        if self.config.dedupe_prefixes:  # texts may hold "/": a separator they cannot hold
            name, separator = ["mc", problem.id, problem.question, *solution.steps[:end]], "\x1f"
        else:
            name, separator = ["mc", problem.id, str(solution.sample_index), str(end)], "/"
        return separator.join(name if spent is None else [*name, str(spent)])

    def early_stop_labels(self, solutions: Sequence[SampledSolution]) -> list[tuple[float, ...]]:
        """Hard labels (0/1 per step) with as few rollouts as the rule above allows."""
        labels: list[list[float]] = [[] for _ in solutions]
        spent: list[int] = [0] * len(solutions)  # rollouts spent on the current prefix
        pending: list[int] = []
        for index, solution in enumerate(solutions):
            if (
                self.config.trust_right_answers
                and solution.finished
                and self._is_correct(solution.text, solution.problem.answer)
            ):
                labels[index] = [1.0] * len(solution.steps)
            elif solution.steps:
                pending.append(index)
        while pending:
            pending = [i for i in pending if not self._settle_last_step(solutions[i], labels[i])]
            if not pending:
                break
            prefixes = [
                Prefix(solutions[i].problem, solutions[i].steps[: len(labels[i]) + 1])
                for i in pending
            ]
            k = self.config.rollouts_per_round
            streams = tuple(
                self._stream(solutions[i], len(labels[i]) + 1, spent[i]) for i in pending
            )
            rights = self._rollout(prefixes, streams, k)
            still = []
            for index, right in zip(pending, rights, strict=True):
                solution, row = solutions[index], labels[index]
                spent[index] += k
                self._usage.prefixes += int(spent[index] == k)  # a prefix's first round
                if right > 0:
                    row.append(1.0)
                    spent[index] = 0
                    still.append(index)
                elif spent[index] >= self.config.num_rollouts:
                    row.extend([0.0] * (len(solution.steps) - len(row)))
                else:
                    still.append(index)
            pending = still
        return [tuple(row) for row in labels]

    def _settle_last_step(self, solution: SampledSolution, row: list[float]) -> bool:
        """Label the final step directly when every earlier one is right; True when done."""
        if len(row) == len(solution.steps):
            return True
        if len(row) == len(solution.steps) - 1 and solution.finished:
            row.append(float(self._is_correct(solution.text, solution.problem.answer)))
            return True
        return False

    def _rollout(
        self, prefixes: list[Prefix], streams: tuple[str, ...], k: int | None = None
    ) -> list[float]:
        """Fraction of ``k`` completions of each prefix that reach the gold answer, each
        prefix completed from its stream in ``streams``. Requests with the same prefix and
        stream are generated once: their completions would be the same."""
        if not prefixes:
            return []
        k = k or self.config.num_rollouts
        first: dict[tuple[str, Prefix], int] = {}
        unique: list[int] = []  # request index of each distinct request
        of_request: list[int] = []  # request index -> position in `unique`
        for index, (prefix, stream) in enumerate(zip(prefixes, streams, strict=True)):
            key = (stream, prefix)
            if key not in first:
                first[key] = len(unique)
                unique.append(index)
            of_request.append(first[key])
        asked = [prefixes[i] for i in unique]
        generations = self.generator.generate(
            asked,
            n=k,
            until=Until.end,
            sampling=Sampling(streams=tuple(streams[i] for i in unique)),
        )
        check_generations(self.generator, asked, k, generations)
        usage = self._usage
        usage.generate_calls += 1
        usage.prefixes_rolled_out += len(asked)
        fractions = []
        for prefix, generation in zip(asked, generations, strict=True):
            usage.rollouts += k
            usage.prompt_tokens += generation.prompt_tokens
            usage.rollout_tokens += sum(c.num_tokens for c in generation.continuations)
            right = sum(self._rollout_correct(prefix, c) for c in generation.continuations)
            fractions.append(right / k)
        return [fractions[position] for position in of_request]

    def label(self, solutions: Sequence[SampledSolution]) -> list[LabelRecord]:
        if self.config.early_stop:
            soft = self.early_stop_labels(solutions)
        else:
            soft = self.soft_labels(solutions)
        records = []
        for solution, fractions in zip(solutions, soft, strict=True):
            if not fractions:
                records.append(unlabelled(solution, self.name, "empty solution"))
                continue
            labels = tuple(value > self.config.threshold for value in fractions)
            records.append(
                LabelRecord(
                    problem_id=solution.problem.id,
                    sample_index=solution.sample_index,
                    labeller=self.name,
                    first_error=first_error_of(labels),
                    labels=labels,
                    soft_labels=fractions,
                )
            )
        return records
