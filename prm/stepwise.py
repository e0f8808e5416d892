"""The stepwise-supervision dataset every PRM labeller writes and the trainer reads.

One example is one solution: TRL's stepwise-supervision columns (``prompt``: the question,
``completions``: the steps, ``labels``: one boolean per step, true when the step is right)
plus ``soft_labels`` (the MC estimate in [0, 1], or 0/1 for hard labellers) and provenance
(``labeller``, ``policy``, ``problem_id``, ``sample_index``, ``answer``: the gold answer,
``first_error``: index of the first step labelled wrong, -1 when none is).

On disk it is JSON Lines, one example a line; ``load_stepwise_dataset`` turns a file into a
``datasets.Dataset``. Converters bring public PRM data into the same format:

- PRM800K (arXiv 2305.20050), phase-2 rows: ``question.problem``, and ``label.steps[i]`` with
  ``completions[j].rating`` in {-1, 0, 1}, ``chosen_completion`` and ``human_completion``;
- Math-Shepherd (arXiv 2312.08935) rows: ``input`` with a ``ки`` tag after every step and
  ``label``, the same text with ``+`` / ``-`` in place of each tag.

    python -m prm.stepwise prm800k phase2_train.jsonl runs/prm/prm800k.jsonl
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from prm.first_error import first_error_of
from search.inputs import (
    InputError,
    require,
    require_probabilities,
    require_str,
    require_str_list,
)
from search.jsonl import read_jsonl, read_jsonl_numbered, write_jsonl

log = logging.getLogger(__name__)

MATH_SHEPHERD_TAG = "ки"
_SHEPHERD_STEP_ONE = re.compile(r"Step 1\s*:")


# -- the example ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StepwiseExample:
    """One labelled solution (see the module docstring for the columns)."""

    prompt: str
    completions: tuple[str, ...]
    labels: tuple[bool, ...]
    soft_labels: tuple[float, ...]
    labeller: str = ""
    policy: str = ""
    problem_id: str = ""
    sample_index: int = 0
    answer: str = ""

    def __post_init__(self) -> None:
        sizes = (len(self.completions), len(self.labels), len(self.soft_labels))
        if len(set(sizes)) != 1 or not self.completions:
            raise ValueError(
                "expected as many labels and soft_labels as completions (at least one), got "
                f"{sizes[0]} completions, {sizes[1]} labels, {sizes[2]} soft_labels "
                f"for problem {self.problem_id!r}"
            )

    @property
    def first_error(self) -> int:
        return first_error_of(self.labels)

    def to_record(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "completions": list(self.completions),
            "labels": list(self.labels),
            "soft_labels": list(self.soft_labels),
            "first_error": self.first_error,
            "labeller": self.labeller,
            "policy": self.policy,
            "problem_id": self.problem_id,
            "sample_index": self.sample_index,
            "answer": self.answer,
        }

    @classmethod
    def from_record(cls, row: dict[str, Any]) -> StepwiseExample:
        labels = tuple(bool(x) for x in row["labels"])
        soft = row.get("soft_labels")
        return cls(
            prompt=str(row["prompt"]),
            completions=tuple(str(x) for x in row["completions"]),
            labels=labels,
            soft_labels=tuple(float(x) for x in soft) if soft else tuple(map(float, labels)),
            labeller=str(row.get("labeller", "")),
            policy=str(row.get("policy", "")),
            problem_id=str(row.get("problem_id", "")),
            sample_index=int(row.get("sample_index", 0)),
            answer=str(row.get("answer", "")),
        )


def write_stepwise(path: Path, examples: Iterable[StepwiseExample]) -> None:
    write_jsonl(path, (example.to_record() for example in examples))


def read_stepwise(path: Path, needs_soft_labels: bool = False) -> list[StepwiseExample]:
    """Every example of a stepwise file, each line checked (``file:line`` in any error): a
    non-empty list of string ``completions``, one boolean label and one soft label in
    [0, 1] (finite) per completion. An empty file is an error, not an empty dataset. A row
    without ``soft_labels`` gets its hard labels as 0/1; ``needs_soft_labels`` (a reader that
    trains on them, ``prm.train loss=soft``) logs how many rows that was."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"expected a stepwise dataset (JSON Lines) at {path}, got no file; fix: run "
            "`python -m prm.label` first or pass the path of its stepwise.jsonl"
        )
    refuse_processbench_file(path)
    rows = list(read_jsonl_numbered(path))
    examples = [checked_example(row, f"{path}:{n}") for n, row in rows]
    if not examples:
        raise InputError(f"{path}: expected stepwise examples, got an empty file")
    hard_only = sum(row.get("soft_labels") is None for _, row in rows)
    if hard_only and needs_soft_labels:
        log.warning(
            "%s: %d of %d examples have no soft_labels; their hard labels stand in as 0/1 "
            "targets of loss=soft",
            path,
            hard_only,
            len(rows),
        )
    return examples


PROCESSBENCH_KEYS = frozenset({"problem", "steps", "label"})


def processbench_error(where: str) -> InputError:
    return InputError(
        f"{where}: expected stepwise rows (prompt, completions, labels), got ProcessBench rows "
        "(problem, steps, label: the index of the first wrong step), an evaluation set; fix: "
        "evaluate a PRM on it with `python -m prm.processbench`, and train on stepwise data: "
        "`python -m prm.label` writes it, and `python -m prm.stepwise {prm800k,math_shepherd} "
        "IN OUT` converts public PRM data"
    )


def refuse_processbench_file(path: Path) -> None:
    """A ProcessBench ``.json`` file (one JSON array of problem/steps/label objects) passed
    as training data: say what it is, rather than how to turn it into JSON Lines."""
    if path.suffix != ".json":
        return
    import json

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return  # not one JSON document: the JSON Lines reader says what is wrong
    if (
        isinstance(document, list)
        and document
        and isinstance(document[0], dict)
        and "prompt" not in document[0]
        and set(document[0]) >= PROCESSBENCH_KEYS
    ):
        raise processbench_error(str(path))


def checked_example(row: dict[str, Any], where: str) -> StepwiseExample:
    """A ``StepwiseExample`` from one row, or an ``InputError`` naming ``where`` and the key."""
    if "prompt" not in row and set(row) >= PROCESSBENCH_KEYS:
        raise processbench_error(where)
    prompt = require_str(row, "prompt", where)
    completions = require_str_list(row, "completions", where)
    labels = require(row, "labels", where)
    if isinstance(labels, list) and all(type(x) is int and x in (0, 1) for x in labels):
        labels = [bool(x) for x in labels]  # 0/1, as many TRL-style files write them
    if not isinstance(labels, list) or not all(isinstance(x, bool) for x in labels):
        raise InputError(
            f"{where}: expected 'labels' to be a list of true/false (or 0/1), one per "
            f"completion, got {labels!r:.60}; fix: true for a right step, false for a wrong one"
        )
    given_soft = row.get("soft_labels") is not None
    soft = (
        require_probabilities(row, "soft_labels", where)
        if given_soft
        else [float(x) for x in labels]
    )
    if not completions or not len(completions) == len(labels) == len(soft):
        counts = f"{len(completions)} completions, {len(labels)} labels"
        if given_soft:
            counts += f", {len(soft)} soft_labels"
        raise InputError(
            f"{where}: expected one label per completion (and one soft label, when given), "
            f"at least one step, got {counts}; fix: one entry per step in each list"
        )
    return StepwiseExample.from_record(
        row | {"prompt": prompt, "labels": labels, "soft_labels": soft}
    )


def load_stepwise_dataset(path: Path) -> Any:
    """The file as a ``datasets.Dataset`` with the columns of ``StepwiseExample.to_record``."""
    from datasets import Dataset

    return Dataset.from_list([example.to_record() for example in read_stepwise(path)])


# -- converters -----------------------------------------------------------------------------
def from_prm800k(row: dict[str, Any], neutral_is_positive: bool = True) -> StepwiseExample | None:
    """One PRM800K phase-2 row as the path its labeller followed.

    At each step the chosen completion is taken (its rating -1/0/1 is the label; rating 0,
    "neutral", counts as right when ``neutral_is_positive``); a step with a human-written
    completion is right. Where the labeller stopped (no chosen completion), the first
    completion rated -1 ends the example as its wrong step. Returns ``None`` for a row with
    no rated step.
    """
    try:
        question = row["question"]["problem"]
        steps = row["label"]["steps"]
    except (KeyError, TypeError) as error:
        raise ValueError(
            "expected a PRM800K phase-2 row with question.problem and label.steps, got keys "
            f"{sorted(row)}; fix: pass rows of phase1/phase2_*.jsonl"
        ) from error

    def is_right(rating: int | None) -> bool:
        return rating == 1 or (rating == 0 and neutral_is_positive)

    texts: list[str] = []
    labels: list[bool] = []
    for step in steps:
        completions = step.get("completions") or []
        chosen = step.get("chosen_completion")
        human = step.get("human_completion")
        if chosen is not None:
            picked = completions[chosen]
            texts.append(picked["text"])
            labels.append(is_right(picked.get("rating")))
        elif human is not None:
            texts.append(human["text"] if isinstance(human, dict) else str(human))
            labels.append(True)
        else:
            wrong = next((c for c in completions if c.get("rating") == -1), None)
            if wrong is not None:
                texts.append(wrong["text"])
                labels.append(False)
            break
        if not labels[-1]:
            break
    if not texts:
        return None
    answer = row["question"].get("ground_truth_answer") or ""
    return StepwiseExample(
        prompt=question,
        completions=tuple(texts),
        labels=tuple(labels),
        soft_labels=tuple(float(x) for x in labels),
        labeller="prm800k",
        policy="gpt-4",
        problem_id=str(row["question"].get("unique_id", "")),
        answer=str(answer),
    )


def from_math_shepherd(row: dict[str, Any]) -> StepwiseExample:
    """One Math-Shepherd row: the question is the text before ``Step 1:``; every ``ки`` ends
    a step and the character at the same place in ``label`` (``+`` or ``-``) labels it."""
    text, marked = row.get("input"), row.get("label")
    if not isinstance(text, str) or not isinstance(marked, str):
        raise ValueError(
            f"expected a Math-Shepherd row with string fields input and label, got keys "
            f"{sorted(row)}; fix: pass rows of peiyi9979/Math-Shepherd"
        )
    # "ки" is two characters, "+"/"-" one: walk both strings segment by segment.
    segments = text.split(MATH_SHEPHERD_TAG)
    steps_with_question, labels, cursor = [], [], 0
    for segment in segments[:-1]:
        if marked[cursor : cursor + len(segment)] != segment:
            raise ValueError(
                f"expected label to repeat input with +/- in place of each {MATH_SHEPHERD_TAG}, "
                f"got a mismatch near {segment[:40]!r}"
            )
        cursor += len(segment)
        sign = marked[cursor : cursor + 1]
        if sign not in ("+", "-"):
            raise ValueError(f"expected '+' or '-' after a step in label, got {sign!r}")
        labels.append(sign == "+")
        steps_with_question.append(segment)
        cursor += 1
    if not labels:
        raise ValueError(f"expected at least one {MATH_SHEPHERD_TAG} step tag in input, got none")
    head = _SHEPHERD_STEP_ONE.search(steps_with_question[0])
    if head is None:
        raise ValueError(
            f"expected the first step to start with 'Step 1:', got {steps_with_question[0][:80]!r}"
        )
    question = steps_with_question[0][: head.start()].strip()
    steps = [steps_with_question[0][head.start() :], *steps_with_question[1:]]
    return StepwiseExample(
        prompt=question,
        completions=tuple(step.strip() for step in steps),
        labels=tuple(labels),
        soft_labels=tuple(float(x) for x in labels),
        labeller="math-shepherd",
        policy=str(row.get("task", "")),
    )


class SourceFormat(str, Enum):
    prm800k = "prm800k"
    math_shepherd = "math_shepherd"


def convert_jsonl(source: Path, output: Path, fmt: SourceFormat) -> tuple[int, int]:
    """Convert a file of PRM800K or Math-Shepherd rows; returns (written, skipped)."""
    if not Path(source).is_file():
        raise InputError(
            f"expected a JSON Lines file of {fmt.value} rows, got no file at {source}; fix: "
            "pass the path of the downloaded file"
        )
    examples: list[StepwiseExample] = []
    skipped = 0
    for row in read_jsonl(source):
        example = from_prm800k(row) if fmt is SourceFormat.prm800k else from_math_shepherd(row)
        if example is None:
            skipped += 1
        else:
            examples.append(example)
    write_stepwise(output, examples)
    return len(examples), skipped


def main() -> None:
    """argparse, not Hydra: a file converter (format, source, output), no config groups."""
    import argparse

    parser = argparse.ArgumentParser(description="Convert public PRM data to stepwise JSONL.")
    parser.add_argument("format", choices=[f.value for f in SourceFormat])
    parser.add_argument("source", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        written, skipped = convert_jsonl(args.source, args.output, SourceFormat(args.format))
    except InputError as error:  # one line, and no empty output file
        parser.exit(1, f"error: {error}\n")
    log.info(
        "wrote %d examples to %s (%d rows without a rated step)", written, args.output, skipped
    )


if __name__ == "__main__":
    main()
