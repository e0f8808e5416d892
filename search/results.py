"""Results on disk: ``results.jsonl`` (one line per problem, appended and flushed per batch,
so a killed run resumes where it stopped) and ``metrics.json`` (self-describing summary)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from search.jsonl import JsonlError, JsonlLog, read_log
from search.types import SearchResult

log = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
METRICS_FILE = "metrics.json"


def result_to_record(result: SearchResult, correct: dict[str, bool]) -> dict[str, Any]:
    """One ``results.jsonl`` line. ``correct`` holds the grade of every selection rule."""
    problem = result.problem
    return {
        "id": problem.id,
        "question": problem.question,
        "answer": problem.answer,
        "prediction": result.prediction,
        "correct": correct.get("selected", False),
        "predictions": result.predictions,
        "correct_by_rule": {k: v for k, v in correct.items() if k != "selected"},
        "candidates": [
            {
                "steps": list(c.steps),
                "answer": c.answer,
                "correct": c.correct,
                "finished": c.finished,
                "num_tokens": c.num_tokens,
                "finish_reason": None if c.finish_reason is None else c.finish_reason.value,
                "step_scores": None if c.step_scores is None else list(c.step_scores),
                "score": c.score,
                "aggregation": c.aggregation,
            }
            for c in result.candidates
        ],
        "usage": {**asdict(result.usage), "policy_tokens": result.usage.policy_tokens},
        "wall_s": result.wall_s,
    }


def is_set_aside(record: dict[str, Any]) -> bool:
    """Whether a results.jsonl record is a problem the run set aside, not searched: its prompt
    was too long for the policy's context (``on_overflow=skip``, ``search.run``), so it has a
    ``skipped`` reason and no candidates."""
    return bool(record.get("skipped")) and "candidates" not in record


def saved_problems(results: Path) -> tuple[int, int]:
    """The problems ``results`` holds whole lines of: searched, and set aside
    (``is_set_aside``). A torn last line (a run stopped while writing it) is neither: the
    run redoes it. A file with a bad line counts none (a resume would refuse it)."""
    try:
        records = read_log(results)
    except JsonlError:
        return 0, 0
    aside = sum(is_set_aside(record) for record in records)
    return len(records) - aside, aside


class ResultsFile:
    """Append-only ``results.jsonl`` with resume (a ``search.jsonl.JsonlLog``): a torn last
    line is cut off and its problem runs again; any other bad line is refused."""

    def __init__(self, directory: Path) -> None:
        self.log = JsonlLog(directory / RESULTS_FILE)
        self.path = self.log.path
        for number, record in zip(self.log.line_numbers, self.log.records, strict=True):
            if "id" not in record:
                raise ValueError(
                    f"{self.path}:{number}: expected a result record with an 'id', got keys "
                    f"{sorted(record)[:8]}; fix: point the run at its own output directory"
                )

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.log.records

    @property
    def done_ids(self) -> set[str]:
        return {str(record["id"]) for record in self.records}

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        self.log.append(records)

    def put_in_order(self, ids: Sequence[str]) -> bool:
        """Order the records as ``ids`` (the run's problems), those of other problems (an
        earlier run's) after them: a run ends with one file whether its batches finished in
        order, out of order (Ray workers), were resumed, or set problems aside first."""
        position = {problem_id: index for index, problem_id in enumerate(ids)}
        return self.log.reorder(lambda record: position.get(str(record["id"]), len(position)))


def write_metrics(directory: Path, metrics: dict[str, Any]) -> Path:
    path = directory / METRICS_FILE
    path.write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    return path
