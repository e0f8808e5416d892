"""Dataset loaders: every benchmark file becomes a tuple of :class:`search.types.Problem`.

A dataset is a ``_target_`` node of the ``dataset`` config group whose object satisfies
``search.protocols.ProblemSource`` (``name`` and ``load() -> LoadedProblems``). The file and
hub formats below are one class, ``DatasetConfig``; a task environment brings its own (the
arithmetic world: ``search.envs.arith.world.ArithDataset``). A new dataset is one such class
and one YAML file.

``DatasetConfig(...).load()`` (``load_problems``) reads one of:

========  ==========================================================================
name      source and fields
========  ==========================================================================
math500   jsonl: ``problem``, ``answer``, ``unique_id`` (id), ``solution`` (gold steps)
gsm8k     jsonl: ``question``, ``answer`` = rationale ending in ``#### N`` (gold = N,
          commas removed; gold steps = the rationale lines, ``<<calc>>`` notes
          removed, then ``The answer is \\boxed{N}.``); ids ``gsm8k-<row>``
aime24    jsonl: ``problem``, ``answer`` ("025" -> "25"), ``id``, ``solution``
amc23     jsonl: ``problem``, ``answer`` (a float: 27.0 -> "27"), ``id``
jsonl     any jsonl: ``question_field`` / ``answer_field`` / ``id_field`` (defaults
          ``question`` / ``answer`` / none: ids ``<file stem>-<row>``)
hub       ``datasets.load_dataset(hub_name, hub_subset, split=hub_split or split)``
          (needs the network or the HF cache), fields as for jsonl
========  ==========================================================================

The named real datasets read ``path``, or the hub when ``hub_name`` is set instead; the field
options override their default field names. Blank lines are not rows. A bad row (malformed
JSON, not an object, missing answer, empty question, no ``####`` in a GSM8K answer) raises a
``ValueError`` naming the file, the line and the fix; with ``on_bad_row="skip"`` it is skipped,
counted in :attr:`LoadedProblems.skipped` and logged, never dropped silently.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from search.answers import ANSWER_STEP
from search.inputs import InputError
from search.jsonl import JsonlError, parse_line
from search.resolve import require_hub
from search.types import LoadedProblems, Problem, split_steps

log = logging.getLogger(__name__)


class DatasetName(str, Enum):
    math500 = "math500"
    gsm8k = "gsm8k"
    aime24 = "aime24"
    amc23 = "amc23"
    jsonl = "jsonl"
    hub = "hub"


class OnBadRow(str, Enum):
    error = "error"
    skip = "skip"


_FILE_DATASETS = (DatasetName.math500, DatasetName.gsm8k, DatasetName.aime24, DatasetName.amc23)


@dataclass
class DatasetConfig:
    """A benchmark file or hub dataset (``conf/dataset/*.yaml`` with
    ``_target_: search.data.DatasetConfig``); implements ``ProblemSource``.

    ``split`` is the hub split unless ``hub_split`` is set. ``limit``
    keeps the first k problems (bad rows skipped before them do not count). Field names left
    ``None`` take the dataset's own (see the module docstring).
    """

    name: str = "jsonl"
    split: str = "test"
    path: str | None = None
    limit: int | None = None
    question_field: str | None = None
    answer_field: str | None = None
    id_field: str | None = None
    hub_name: str | None = None
    hub_subset: str | None = None
    hub_split: str | None = None
    on_bad_row: str = "error"

    def __post_init__(self) -> None:
        names = [member.value for member in DatasetName]
        if self.name not in names:
            raise ValueError(
                f"expected dataset.name in {names}, got {self.name!r}; "
                "fix: pick one, e.g. dataset.name=jsonl with dataset.path=your.jsonl"
            )
        if self.on_bad_row not in [member.value for member in OnBadRow]:
            raise ValueError(
                f"expected dataset.on_bad_row in ['error', 'skip'], got {self.on_bad_row!r}; "
                "fix: dataset.on_bad_row=skip (or error)"
            )
        if self.limit is not None and self.limit < 1:
            raise ValueError(
                f"expected dataset.limit >= 1 or null (all problems), got {self.limit}; "
                "fix: dataset.limit=1 or more, or dataset.limit=null"
            )
        name = DatasetName(self.name)
        if self.path is not None and self.hub_name is not None:
            raise ValueError(
                f"expected one source, got dataset.path={self.path!r} and dataset.hub_name="
                f"{self.hub_name!r}; fix: pass dataset.path=null to read the hub"
            )
        if name is DatasetName.jsonl and self.path is None:
            raise ValueError(
                "dataset.name=jsonl needs dataset.path; got none; "
                "fix: pass dataset.path=/path/to/problems.jsonl"
            )
        elif name is DatasetName.hub and self.hub_name is None:
            raise ValueError(
                "dataset.name=hub needs dataset.hub_name; got none; "
                "fix: pass dataset.hub_name=HuggingFaceH4/MATH-500 (for example)"
            )
        elif name in _FILE_DATASETS and self.path is None and self.hub_name is None:
            raise ValueError(
                f"dataset.name={name.value} needs dataset.path or dataset.hub_name; got "
                f"neither; fix: use the config dataset={name.value} (it reads "
                f"$PRM_SEARCH_DATA/{name.value}_test.jsonl) or pass dataset.path=..."
            )

    def load(self) -> LoadedProblems:
        """``ProblemSource.load``: the problems this config names (``load_problems``)."""
        return load_problems(self)


class BadRowError(InputError):
    """One row that cannot become a Problem; ``load_problems`` adds where it is and the fix
    (``fix``: a fix of this row's own, put before the general one)."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


@dataclass(frozen=True, slots=True)
class _Fields:
    question: str
    answer: str
    id: str | None
    solution: str | None = None


_DEFAULT_FIELDS: dict[DatasetName, _Fields] = {
    DatasetName.math500: _Fields("problem", "answer", "unique_id", "solution"),
    DatasetName.gsm8k: _Fields("question", "answer", None),
    DatasetName.aime24: _Fields("problem", "answer", "id", "solution"),
    DatasetName.amc23: _Fields("problem", "answer", "id"),
    DatasetName.jsonl: _Fields("question", "answer", None),
    DatasetName.hub: _Fields("question", "answer", None),
}
_CALCULATOR_NOTE = re.compile(r"<<[^<>]*>>")


def load_problems(config: DatasetConfig) -> LoadedProblems:
    """Read the problems ``config`` names; see the module docstring for the sources."""
    name = DatasetName(config.name)
    fields = _fields(name, config)
    problems: list[Problem] = []
    reasons: list[str] = []
    for index, where, row in _rows(config):
        if config.limit is not None and len(problems) >= config.limit:
            break
        try:
            problems.append(_to_problem(name, fields, row, index, where, config))
        except BadRowError as error:
            if config.on_bad_row == OnBadRow.error.value:
                raise BadRowError(
                    f"{where}: bad row: {error}; fix: {error.fix or 'correct the row'}; or pass "
                    "dataset.on_bad_row=skip to skip bad rows (they are counted and logged)"
                ) from None
            reasons.append(f"{where}: {error}")
    if reasons:
        log.warning(
            "skipped %d bad rows of dataset %s (first: %s)", len(reasons), name.value, reasons[0]
        )
    return LoadedProblems(tuple(problems), skipped=len(reasons), skipped_reasons=reasons)


def _fields(name: DatasetName, config: DatasetConfig) -> _Fields:
    default = _DEFAULT_FIELDS[name]
    return _Fields(
        question=config.question_field or default.question,
        answer=config.answer_field or default.answer,
        id=config.id_field or default.id,
        solution=default.solution,
    )


def _rows(config: DatasetConfig) -> Iterator[tuple[int, str, Any]]:
    """(row index, "where" for messages, the row or a BadRowError) for each row."""
    if config.path is not None:
        yield from _jsonl_rows(Path(config.path).expanduser(), DatasetName(config.name))
        return
    assert config.hub_name is not None
    yield from _hub_rows(config.hub_name, config.hub_subset, config.hub_split or config.split)


def _jsonl_rows(path: Path, name: DatasetName) -> Iterator[tuple[int, str, Any]]:
    if not path.is_file():
        raise FileNotFoundError(
            f"expected a jsonl file for dataset {name.value}, got no file at {path} "
            f"(resolved: {path.resolve()}); fix: pass dataset.path=/path/to/file.jsonl, or "
            "set PRM_SEARCH_DATA to the folder holding the benchmark files"
        )
    index = 0
    for line_number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        row: Any
        try:
            row = parse_line(path, line_number, raw)
        except JsonlError as error:  # load_problems words the fix (or skips the row)
            row = BadRowError(error.problem, fix=error.fix)
        if row is None:  # a blank line
            continue
        yield index, f"{path}:{line_number}", row
        index += 1


def _hub_rows(hub_name: str, subset: str | None, split: str) -> Iterator[tuple[int, str, Any]]:
    import datasets

    if not _local_or_cached(hub_name):  # fail in seconds, not after the library's retries
        require_hub(
            hub_name,
            "dataset",
            "fix: pass a local copy (dataset.path=/path/to/file.jsonl), or run once on a "
            "machine with network (the dataset is then cached) and set HF_HUB_OFFLINE=1",
        )
    rows = datasets.load_dataset(hub_name, subset, split=split)
    for index, row in enumerate(rows):
        yield index, f"{hub_name}[{split}] row {index}", row


def _local_or_cached(hub_name: str) -> bool:
    """Whether ``load_dataset(hub_name)`` needs no network: a local folder, or a hub dataset
    with a copy in the ``datasets`` cache (what it reads offline) or in the hub cache."""
    from datasets import config
    from datasets.naming import camelcase_to_snakecase
    from huggingface_hub import constants

    if Path(hub_name).expanduser().exists():
        return True
    *namespace, dataset = hub_name.split("/")
    folder = "___".join([*namespace, camelcase_to_snakecase(dataset)])
    hub_folder = "datasets--" + hub_name.replace("/", "--")
    return (Path(config.HF_DATASETS_CACHE) / folder).is_dir() or (
        Path(constants.HF_HUB_CACHE) / hub_folder
    ).is_dir()


def _to_problem(
    name: DatasetName, fields: _Fields, row: Any, index: int, where: str, config: DatasetConfig
) -> Problem:
    if isinstance(row, BadRowError):
        raise row
    if not isinstance(row, dict):
        raise BadRowError(f"expected a JSON object, got {type(row).__name__}")
    if fields.question not in row:
        texts = [key for key, value in row.items() if isinstance(value, str)]
        guess = next((key for key in texts if key != fields.answer), "<key>")
        raise BadRowError(
            f"expected the question in field {fields.question!r}, got keys {sorted(row)[:12]}",
            fix=f"dataset.question_field={guess} if another field holds it",
        )
    question = row[fields.question]
    if not isinstance(question, str) or not question.strip():
        got = "an empty string" if isinstance(question, str) else type(question).__name__
        raise BadRowError(
            f"expected the question in field {fields.question!r} to be non-empty text, got {got}",
            fix="a question string",
        )
    answer = _answer_text(row.get(fields.answer), fields.answer)
    gold_steps: tuple[str, ...] = ()
    if name is DatasetName.gsm8k:
        answer, gold_steps = _gsm8k_answer(answer)
    elif name is DatasetName.jsonl and GSM8K_FINAL.search(answer):
        raise BadRowError(
            f"expected a final answer in field {fields.answer!r}, got a worked solution ending "
            "in '#### N' (GSM8K format), which would be graded as the gold answer whole",
            fix="dataset=gsm8k dataset.path=<this file> reads N as the gold answer (and the "
            "rationale as gold steps)",
        )
    elif name is DatasetName.aime24 and answer.isdigit():
        answer = str(int(answer))
    solution = row.get(fields.solution) if fields.solution else None
    if isinstance(solution, str):
        gold_steps = split_steps(solution)
    used = {fields.question, fields.answer, fields.id, fields.solution}
    metadata = {  # the other fields, except copies of the question (AIME/AMC have both)
        key: value for key, value in row.items() if key not in used and value != question
    }
    metadata["source"] = where
    return Problem(
        id=_problem_id(name, fields, row, index, config),
        question=question.strip(),
        answer=answer,
        gold_steps=gold_steps,
        metadata=metadata,
    )


# a GSM8K rationale's last line: "#### N", N a number (a markdown heading is not one)
GSM8K_FINAL = re.compile(r"(^|\n)####[ \t]*-?[\d.,/]+\s*$")


def _answer_text(value: Any, field_name: str) -> str:
    if value is None:
        raise BadRowError(f"missing answer (field {field_name!r})")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadRowError(
            f"expected the answer (field {field_name!r}) to be a string or a number, "
            f"got {type(value).__name__}"
        )
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if not text:
        raise BadRowError(f"empty answer (field {field_name!r})")
    return text


def _gsm8k_answer(rationale: str) -> tuple[str, tuple[str, ...]]:
    """(gold number, gold steps) from a GSM8K rationale ending in ``#### N``."""
    body, marker, final = rationale.rpartition("####")
    value = final.strip().replace(",", "")
    if not marker or not value:
        raise BadRowError("expected the answer to end in '#### N' (GSM8K format), got none")
    lines = (_CALCULATOR_NOTE.sub("", line).strip() for line in body.splitlines())
    steps = tuple(line for line in lines if line)
    return value, (*steps, ANSWER_STEP.format(value=value))


def _problem_id(
    name: DatasetName, fields: _Fields, row: dict[str, Any], index: int, config: DatasetConfig
) -> str:
    if fields.id is None:
        if name is DatasetName.jsonl and config.path:
            return f"{Path(config.path).stem}-{index}"
        if name is DatasetName.hub and config.hub_name:
            return f"{config.hub_name.rsplit('/', 1)[-1]}-{index}"
        return f"{name.value}-{index}"
    value = row.get(fields.id)
    if value is None or str(value).strip() == "":
        raise BadRowError(f"missing id (field {fields.id!r})")
    if name in (DatasetName.aime24, DatasetName.amc23):
        return f"{name.value}-{value}"
    return str(value)
