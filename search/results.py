"""Results on disk: ``results.jsonl`` (one line per problem, appended and flushed per batch,
so a killed run resumes where it stopped) and ``metrics.json`` (self-describing summary)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

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


class ResultsFile:
    """Append-only ``results.jsonl`` with resume.

    On open, complete lines are read back; a torn last line (a run killed mid-write) is cut
    off and logged, so the file stays valid JSONL and no problem appears twice.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / RESULTS_FILE
        self.records: list[dict[str, Any]] = []
        if self.path.exists():
            self._read_back()

    def _read_back(self) -> None:
        raw = self.path.read_bytes()
        parts = raw.split(b"\n")  # JSON escapes \r and \n inside strings
        lines = [part + b"\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
        good_end = 0
        for number, line in enumerate(lines, start=1):
            last = number == len(lines)
            if last and not line.endswith(b"\n"):
                break
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                if last:
                    break
                raise ValueError(
                    f"expected one JSON object per line in {self.path}, got an unreadable "
                    f"line {number} of {len(lines)} ({error}); only the last line can be "
                    "torn by a killed run, so this file was changed by something else; "
                    "fix: delete that line (its problem will be run again) or use a new "
                    "output directory"
                ) from error
            if not isinstance(record, dict) or "id" not in record:
                raise ValueError(
                    f"expected a result record with an 'id' on line {number} of {self.path}, "
                    f"got {str(record)[:80]!r}; fix: point the run at its own output directory"
                )
            self.records.append(record)
            good_end += len(line)
        if good_end < len(raw):
            log.warning(
                "%s: dropped a torn line at byte %d (a run was killed mid-write); "
                "that problem will be run again",
                self.path,
                good_end,
            )
            with self.path.open("r+b") as handle:
                handle.truncate(good_end)

    @property
    def done_ids(self) -> set[str]:
        return {str(record["id"]) for record in self.records}

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        records = list(records)
        with self.path.open("a", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.records.extend(records)


def write_metrics(directory: Path, metrics: dict[str, Any]) -> Path:
    path = directory / METRICS_FILE
    path.write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    return path
