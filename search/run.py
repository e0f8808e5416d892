"""The engine loop: problems in batches through a strategy, graded, appended to
``results.jsonl``, summarised in ``metrics.json``. Usable from Python without Hydra::

    from search.run import run_search
    metrics = run_search(problems, generator, scorer, strategy, Path("out"), describe={})
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Any

from search.generators.base import PromptTooLong
from search.grading import answers_match
from search.guards import call_scorer
from search.inputs import InputError
from search.progress import Progress
from search.protocols import Checker, ContextLimited, Generator, Scorer, Strategy
from search.results import ResultsFile, is_set_aside, result_to_record, write_metrics
from search.rundir import RunLock
from search.types import (
    DEFAULT_SAMPLING,
    Generation,
    Prefix,
    Problem,
    Sampling,
    ScoreOutput,
    SearchResult,
    Until,
)

log = logging.getLogger(__name__)


class OnOverflow(str, Enum):
    """What a run does with a problem whose prompt does not fit the policy's context."""

    error = "error"  # refuse the run, naming the problem
    skip = "skip"  # record it as skipped (not a wrong answer) and go on


def refuse_overflows(overflows: Sequence[dict[str, Any]]) -> None:
    """``on_overflow=error``: any problem ``set_aside_overflows`` set aside stops the run."""
    if overflows:
        raise PromptTooLong(
            f"expected every prompt to fit the policy's context, got {len(overflows)} that do "
            f"not (problem {overflows[0]['id']}: {overflows[0]['skipped']}); fix: "
            "on_overflow=skip records them as skipped, or use a policy with a longer context"
        )


def set_aside_overflows(
    problems: Sequence[Problem], generator: Generator | ContextLimited
) -> tuple[list[Problem], list[dict[str, Any]]]:
    """(problems whose prompt fits the policy's context, records of the others as skipped)."""
    if not isinstance(generator, ContextLimited) or generator.context_length is None:
        return list(problems), []
    context = generator.context_length
    fits, skipped = [], []
    for problem in problems:
        length = generator.prompt_length(Prefix(problem))
        if length < context:
            fits.append(problem)
            continue
        skipped.append(
            {
                "id": problem.id,
                "question": problem.question,
                "answer": problem.answer,
                "skipped": f"prompt of {length} tokens; the policy's context is {context}",
            }
        )
    return fits, skipped


class CallCounter:
    """Wraps a generator and a scorer to count the engine's calls into them."""

    def __init__(self) -> None:
        self.generate_calls = 0
        self.score_calls = 0


class CountingGenerator:
    def __init__(
        self, inner: Generator, counter: CallCounter, progress: Progress | None = None
    ) -> None:
        self.inner = inner
        self.counter = counter
        self.progress = progress

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        self.counter.generate_calls += 1
        out = self.inner.generate(prefixes, n, until, sampling)
        if self.progress is not None:
            tokens = sum(c.num_tokens for g in out for c in g.continuations)
            self.progress.on_generate(tokens)
        return out


class CountingScorer:
    """Counts calls; forwards through ``call_scorer`` so usage stays unknown (``None``) for a
    scorer that does not report it."""

    def __init__(
        self, inner: Scorer, counter: CallCounter, progress: Progress | None = None
    ) -> None:
        self.inner = inner
        self.counter = counter
        self.progress = progress

    def score(self, prefixes: Sequence[Prefix]) -> list[list[float]]:
        return self.score_with_usage(prefixes).scores

    def score_with_usage(self, prefixes: Sequence[Prefix]) -> ScoreOutput:
        self.counter.score_calls += 1
        out = call_scorer(self.inner, prefixes)
        if self.progress is not None:
            self.progress.on_score()
        return out


def grade(result: SearchResult, timeout_s: float) -> tuple[SearchResult, dict[str, bool]]:
    """Mark every candidate and every selection rule's pick right or wrong.

    A candidate the policy did not finish is wrong whatever answer can be read off it; a
    pick is right only when it matches the gold answer and a finished candidate states it
    (so no rule, and no strategy's own pick, is credited with an unfinished guess)."""
    gold = result.problem.answer
    candidates = tuple(
        replace(c, correct=c.finished and answers_match(c.answer, gold, timeout_s=timeout_s))
        for c in result.candidates
    )
    supported = any(c.correct for c in candidates)
    correct = {
        rule: supported and answers_match(pick, gold, timeout_s=timeout_s)
        for rule, pick in result.predictions.items()
    }
    correct["selected"] = supported and answers_match(result.prediction, gold, timeout_s=timeout_s)
    return replace(result, candidates=candidates), correct


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy of the selected pick and of every rule, pass@N, mean single-sample accuracy,
    and the compute spent, over all records of a run (resumed ones included)."""
    skipped = sum(1 for record in records if is_set_aside(record))
    records = [record for record in records if not is_set_aside(record)]
    count = len(records)
    if count == 0:
        return {"num_problems": 0, "accuracy": None, "skipped_problems": skipped}

    def mean(values: list[float]) -> float | None:
        # None, not NaN, for an empty list: NaN is not valid JSON in metrics.json
        return sum(values) / len(values) if values else None

    rules = sorted({rule for record in records for rule in record["correct_by_rule"]})
    prm_tokens = [record["usage"]["prm_tokens"] for record in records]
    prm_new = [record["usage"]["prm_new_tokens"] for record in records]
    return {
        "num_problems": count,
        "skipped_problems": skipped,  # prompt longer than the policy's context (not graded)
        "accuracy": mean([float(record["correct"]) for record in records]),
        "accuracy_by_rule": {
            rule: mean(
                [float(r["correct_by_rule"][rule]) for r in records if rule in r["correct_by_rule"]]
            )
            for rule in rules
        },
        "pass_at_n": mean(
            [float(any(c["correct"] for c in record["candidates"])) for record in records]
        ),
        "mean_sample_accuracy": mean(
            [
                sum(bool(c["correct"]) for c in record["candidates"]) / len(record["candidates"])
                for record in records
                if record["candidates"]
            ]
        ),
        # candidates a strategy returned: N for most, the samples drawn for adaptive ones
        "candidates_per_problem": mean([float(len(record["candidates"])) for record in records]),
        "finished_share": mean(
            [float(c["finished"]) for record in records for c in record["candidates"]]
        ),
        "policy_tokens": sum(record["usage"]["policy_tokens"] for record in records),
        "policy_prompt_tokens": sum(record["usage"]["prompt_tokens"] for record in records),
        "policy_generated_tokens": sum(record["usage"]["generated_tokens"] for record in records),
        "prm_tokens": None if None in prm_tokens else sum(prm_tokens),
        "prm_new_tokens": None if None in prm_new else sum(prm_new),
        "wall_s": sum(record["wall_s"] for record in records),
    }


def run_batch(
    batch: Sequence[Problem],
    strategy: Strategy,
    generator: Generator,
    scorer: Scorer | None,
    output_dir: Path,
    grading_timeout_s: float,
    checker: Checker | None = None,
) -> list[dict[str, Any]]:
    """Search and grade one batch of problems: one ``results.jsonl`` record per problem, in
    order; search trees (when the strategy keeps them) go to ``output_dir/trees``, each node
    with the grader's and ``checker``'s verdicts and the chosen path (``search.trees``)."""
    outcomes = strategy.run(batch, generator, scorer)
    if len(outcomes) != len(batch):
        raise RuntimeError(f"strategy returned {len(outcomes)} results for {len(batch)} problems")
    records = []
    for problem, outcome in zip(batch, outcomes, strict=True):
        if outcome.problem.id != problem.id:
            raise RuntimeError(
                f"strategy returned results out of order: {outcome.problem.id} for {problem.id}"
            )
        graded, correct = grade(outcome, grading_timeout_s)
        records.append(result_to_record(graded, correct))
        if graded.tree is not None:
            from search.strategies.tree import save_tree
            from search.trees import annotate, chosen_candidate

            chosen = chosen_candidate(graded.candidates, graded.prediction)
            annotate(graded.tree, problem, chosen, checker, grading_timeout_s)
            save_tree(graded, output_dir / "trees")
    return records


def run_search(
    problems: Sequence[Problem],
    generator: Generator,
    scorer: Scorer | None,
    strategy: Strategy,
    output_dir: Path,
    describe: dict[str, Any],
    batch_problems: int = 64,
    grading_timeout_s: float = 5.0,
    progress: bool = False,
    checker: Checker | None = None,
    on_overflow: OnOverflow | str = OnOverflow.error,
) -> dict[str, Any]:
    """Run ``strategy`` over ``problems`` in batches, resuming from ``output_dir``.

    Problems already in ``output_dir/results.jsonl`` are skipped; each batch's records are
    appended and flushed as soon as it is graded, so a killed run loses at most one batch.
    ``describe`` (strategy, n, aggregation, models, config...) is copied into metrics.json so
    that every run's metrics say what produced them; the metrics cover all of ``problems``
    (resumed ones included), the ``*_this_invocation`` counts only this call's work.
    The directory is locked for the run (``search.rundir.RunLock``): a second run into it is
    refused; a recorded problem whose question or answer changed is refused too. Before
    any search, a problem whose prompt does not fit the policy's context (a
    ``ContextLimited`` generator) is refused (``on_overflow=error``) or recorded with a
    ``skipped`` reason and left out of the accuracy (``skip``).
    """
    if batch_problems < 1:
        raise ValueError(f"expected batch_problems >= 1, got {batch_problems}")
    if not problems:
        raise ValueError(
            "expected at least one problem, got none; fix: check dataset.path, "
            "dataset.limit and the skipped rows logged by the loader"
        )
    check_unique_ids(problems)
    with RunLock(output_dir):
        return _run_locked(
            problems,
            generator,
            scorer,
            strategy,
            output_dir,
            describe,
            batch_problems,
            grading_timeout_s,
            progress,
            checker,
            OnOverflow(on_overflow),
        )


def check_unique_ids(problems: Sequence[Problem]) -> None:
    counts = Counter(problem.id for problem in problems)
    repeated = sorted(problem_id for problem_id, count in counts.items() if count > 1)
    if repeated:
        raise InputError(
            f"expected unique problem ids, got {len(repeated)} repeated: {repeated[:10]}; "
            "resume keys results by id; fix: give those rows distinct ids (dataset.id_field)"
        )


def open_results(
    output_dir: Path, problems: Sequence[Problem]
) -> tuple[ResultsFile, set[str], list[Problem]]:
    """The run's results file, the ids of ``problems`` already in it, and the problems still
    to search (in order); refuses a file written for other problems under the same ids."""
    wanted = {problem.id for problem in problems}
    results = ResultsFile(output_dir)
    check_same_problems(results.records, problems)
    done = results.done_ids & wanted
    todo = [problem for problem in problems if problem.id not in done]
    if done:
        log.info(
            "resuming: %d problems already in %s, %d to go", len(done), results.path, len(todo)
        )
    return results, done, todo


def check_same_problems(records: Sequence[dict[str, Any]], problems: Sequence[Problem]) -> None:
    """Refuse to resume when a recorded problem's question or gold answer changed."""
    by_id = {problem.id: problem for problem in problems}
    for record in records:
        problem = by_id.get(str(record["id"]))
        if problem is None:
            continue
        if (record.get("question"), record.get("answer")) != (problem.question, problem.answer):
            raise InputError(
                f"expected problem {problem.id} to be the one recorded in results.jsonl, got "
                "another question or gold answer under the same id (the dataset changed); "
                "fix: a new output directory (hydra.run.dir=...) for the new dataset"
            )


def _run_locked(
    problems: Sequence[Problem],
    generator: Generator,
    scorer: Scorer | None,
    strategy: Strategy,
    output_dir: Path,
    describe: dict[str, Any],
    batch_problems: int,
    grading_timeout_s: float,
    progress: bool,
    checker: Checker | None,
    on_overflow: OnOverflow,
) -> dict[str, Any]:
    results, done, todo = open_results(output_dir, problems)
    todo, overflows = set_aside_overflows(todo, generator)
    if on_overflow is OnOverflow.error:
        refuse_overflows(overflows)
    if overflows:
        log.warning("skipped %d problems whose prompt does not fit the policy", len(overflows))
        results.append(overflows)
    counter = CallCounter()
    # the bar's running accuracy is over this run's problems, resumed ones included
    num_correct = sum(bool(r.get("correct")) for r in results.records if str(r["id"]) in done)
    bar = Progress(len(problems), len(done), num_correct, enabled=progress)
    counted = CountingGenerator(generator, counter, bar)
    counted_scorer = None if scorer is None else CountingScorer(scorer, counter, bar)
    start = time.perf_counter()
    try:
        for begin in range(0, len(todo), batch_problems):
            batch = todo[begin : begin + batch_problems]
            bar.on_batch()
            records = run_batch(
                batch, strategy, counted, counted_scorer, output_dir, grading_timeout_s, checker
            )
            results.append(records)
            for record in records:
                bar.on_problem(bool(record["correct"]))
    finally:
        bar.close()
    results.put_in_order([problem.id for problem in problems])
    wanted = {problem.id for problem in problems}
    others = len({str(r["id"]) for r in results.records} - wanted)
    if others:  # e.g. a rerun with a smaller dataset.limit
        log.warning(
            "metrics.json covers the %d problems asked for; %s also holds %d other problems "
            "from an earlier run (kept, not counted); fix: the earlier dataset.limit to count "
            "them, or a new hydra.run.dir",
            len(wanted),
            results.path,
            others,
        )
    metrics = summarise([r for r in results.records if str(r["id"]) in wanted])
    metrics.update(describe)
    metrics["generate_calls_this_invocation"] = counter.generate_calls
    metrics["score_calls_this_invocation"] = counter.score_calls
    metrics["invocation_wall_s"] = time.perf_counter() - start
    write_metrics(output_dir, metrics)
    return metrics
