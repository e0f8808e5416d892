"""``python -m search.evaluate``: grade and re-rank completions that any system produced.

    python -m search.evaluate path=samples.jsonl                       # pass@k, majority@k
    python -m search.evaluate path=scored.jsonl aggregation=prod       # + prm@k, weighted@k
    python -m search.evaluate path=outputs/search/RUN/results.jsonl aggregation=last

Input formats (``format=``; ``auto``, the default, reads the first line that is a JSON object
and takes ``engine`` when it has ``question`` and ``candidates`` (or ``skipped``: a problem the
run set aside, counted as ``not_graded_problems``) but no ``completions``, else
``completions``; the report's ``format`` says which). A problem twice (the same ``id``, or
without ids the same line) is refused: concatenated runs would count it twice.

- ``completions`` (default): one problem a line, ``problem`` (text), ``answer`` (gold),
  ``completions`` (list of solution texts), optional ``scores`` (one per completion: a
  float, or a list of step scores combined with ``aggregation``), optional ``finished``
  (one bool per completion). Scores are probabilities in [0, 1].
- ``engine``: the ``results.jsonl`` of ``python -m search``: ``question``, ``answer``,
  ``candidates[].steps`` (joined with a blank line), ``candidates[].step_scores`` (or
  ``score``), ``candidates[].finished``; an engine run re-ranked with another aggregation.

Each completion's answer is read with ``search.answers.extract_answer`` and graded with
``search.grading.answers_match``; answer classes come from ``group_equivalent``. Metrics
(``search.metrics``): for k = 1, 2, 4, ... and n, pass@k (unbiased estimator), majority@k and,
when every line has scores, prm@k and weighted@k, each averaged over ``num_subsets`` seeded
random k-subsets (all of them when there are fewer; ``num_subsets=0``: the first k).

Prints a markdown table and writes JSON to ``output`` (default ``FILE.eval.json`` next to
the input). A bad line raises an error naming the file and line; ``on_bad_row=skip`` skips
it, counts it in the JSON and logs it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from search.aggregation import Aggregation, aggregate
from search.answers import extract_answer
from search.data import OnBadRow
from search.grading import answers_match, group_equivalent
from search.inputs import (
    InputError,
    NotProbability,
    check_writable_dir,
    exit_on_input_error,
    probability,
)
from search.jsonl import JsonlError, parse_line
from search.metrics import GradedCompletions, metrics_at_k, min_on_final_step_share
from search.resolve import CONF_DIR
from search.results import is_set_aside
from search.types import STEP_SEPARATOR

log = logging.getLogger("search.evaluate")


class InputFormat(str, Enum):
    auto = "auto"  # decided by the file's first JSON object
    completions = "completions"
    engine = "engine"


@dataclass
class EvaluateConfig:
    """Top level of ``conf/evaluate.yaml``; see the module docstring."""

    path: str = MISSING
    format: InputFormat = InputFormat.auto
    aggregation: Aggregation = Aggregation.min
    output: str | None = None  # null: FILE.eval.json next to the input
    num_subsets: int = 32
    seed: int = 0
    on_bad_row: OnBadRow = OnBadRow.error
    fallback_last_number: bool = True  # extract_answer's last-number fallback
    grading_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.num_subsets < 0:
            raise ValueError(
                f"expected num_subsets >= 0, got {self.num_subsets}; fix: num_subsets=32 "
                "(random k-subsets) or num_subsets=0 (the first k completions)"
            )


@dataclass(frozen=True, slots=True)
class CompletionSet:
    """One input line: a problem, its gold answer and n completions.

    ``scores``: one aggregated score per completion (``None`` without scores);
    ``step_scores``: the step scores of each completion, where the line gave them.
    """

    problem: str
    gold: str
    completions: tuple[str, ...]
    scores: tuple[float, ...] | None = None
    step_scores: tuple[tuple[float, ...] | None, ...] | None = None
    finished: tuple[bool, ...] | None = None


@dataclass(frozen=True, slots=True)
class LoadedSets:
    """The lines read, the format they were read in (never ``auto``), and the bad lines
    skipped (always 0 with ``on_bad_row=error``)."""

    sets: tuple[CompletionSet, ...]
    input_format: InputFormat = InputFormat.completions
    skipped: int = 0
    skipped_reasons: list[str] = field(default_factory=list)
    not_graded: int = 0  # engine records of problems the run skipped (on_overflow=skip)


class BadLineError(InputError):
    """A line that cannot be evaluated; ``read_completion_sets`` adds where it is."""


def read_completion_sets(
    path: Path,
    input_format: InputFormat | str = InputFormat.auto,
    aggregation: Aggregation | str = Aggregation.min,
    on_bad_row: OnBadRow | str = OnBadRow.error,
) -> LoadedSets:
    """Read every non-blank line of ``path`` as a :class:`CompletionSet`; ``auto`` takes the
    format of the first line that is a JSON object (see the module docstring)."""
    input_format = InputFormat(input_format)
    aggregation = Aggregation(aggregation)
    on_bad_row = OnBadRow(on_bad_row)
    if path.is_dir():
        results = path / "results.jsonl"
        hint = f"path={results}" if results.is_file() else "path=/path/to/file.jsonl"
        raise InputError(
            f"expected a jsonl file of completions, got the directory {path}; fix: {hint}"
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"expected a jsonl file of completions, got no file at {path} (resolved: "
            f"{path.resolve()}); fix: pass path=/path/to/file.jsonl"
        )
    sets: list[CompletionSet] = []
    reasons: list[str] = []
    not_graded = 0
    first_line: dict[str, int] = {}  # each problem's first line: a second is refused
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        where = f"{path}:{number}"
        try:
            row = parse_line(path, number, raw)
            if row is None:  # a blank line
                continue
            if input_format is InputFormat.auto:
                engine = _looks_like_engine(row)
                input_format = InputFormat.engine if engine else InputFormat.completions
                log.debug("%s: read as format=%s (format=auto)", path, input_format.value)
            if input_format is InputFormat.completions and _looks_like_engine(row):
                raise EngineFileError(
                    f"{where}: expected the completions format (problem, answer, "
                    "completions), got a results.jsonl line of python -m search (question, "
                    "candidates); fix: pass format=engine"
                )
            engine = input_format is InputFormat.engine
            if engine and is_set_aside(row):
                not_graded += 1  # python -m search on_overflow=skip: no candidates to grade
                continue
            parse = _parse_engine if engine else _parse_completions
            item = parse(row, aggregation)
            # a problem is its id; a completions line without one, the whole line (two
            # problems may share a question text, a line repeated is a file repeated)
            key = str(row["id"]) if "id" in row else json.dumps(row, sort_keys=True)
            if key in first_line:
                raise InputError(
                    f"{where}: expected each problem once, got {item.problem!r:.80} again "
                    f"(first at line {first_line[key]}): concatenated runs would be counted "
                    "twice; fix: evaluate each run's file on its own"
                )
            first_line[key] = number
            sets.append(item)
        except (BadLineError, JsonlError) as error:
            message = str(error)
            fix = "correct the line"
            if isinstance(error, JsonlError):
                message, fix = error.problem, error.fix or fix
            if on_bad_row is OnBadRow.error:
                raise BadLineError(
                    f"{where}: bad line ({input_format.value} format): {message}; fix: {fix}; "
                    "or pass on_bad_row=skip to skip bad lines (they are counted and logged)"
                ) from None
            reasons.append(f"{where}: {message}")
    if reasons:
        log.warning("skipped %d bad lines of %s (first: %s)", len(reasons), path, reasons[0])
    scored = sum(s.scores is not None for s in sets)
    if 0 < scored < len(sets):
        raise ValueError(
            f"{path}: expected scores on every line or on none, got {scored} of {len(sets)} "
            "lines with scores; fix: score every line, or drop the scores"
        )
    if input_format is InputFormat.auto:  # no line was a JSON object
        input_format = InputFormat.completions
    if not_graded:
        log.warning(
            "%d records of %s are problems the run skipped (on_overflow=skip): not graded",
            not_graded,
            path,
        )
    return LoadedSets(
        tuple(sets),
        input_format,
        skipped=len(reasons),
        skipped_reasons=reasons,
        not_graded=not_graded,
    )


def _text(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(int(value)) if float(value).is_integer() else str(value)
    if not isinstance(value, str) or not value.strip():
        raise BadLineError(f"expected a non-empty string in field {key!r}, got {value!r}")
    return value


def _probability(value: Any, what: str) -> float:
    try:
        return probability(value, f"the score of {what}")
    except NotProbability as error:
        hint = " (apply a sigmoid to logits)" if error.out_of_range else ""
        raise BadLineError(f"{error}{hint}") from None


def _scores(
    values: Sequence[Any], aggregation: Aggregation
) -> tuple[tuple[float, ...], tuple[tuple[float, ...] | None, ...]]:
    """(aggregated score, step scores or None) of each completion."""
    scores: list[float] = []
    steps: list[tuple[float, ...] | None] = []
    for index, value in enumerate(values):
        if isinstance(value, list):
            step_scores = tuple(
                _probability(v, f"step {j} of completion {index}") for j, v in enumerate(value)
            )
            scores.append(aggregate(step_scores, aggregation))
            steps.append(step_scores)
        else:
            scores.append(_probability(value, f"completion {index}"))
            steps.append(None)
    return tuple(scores), tuple(steps)


def _bools(values: Any, count: int, key: str) -> tuple[bool, ...]:
    if not isinstance(values, list) or len(values) != count:
        raise BadLineError(f"expected {key!r} to be a list of {count} booleans, got {values!r}")
    if not all(isinstance(v, bool) for v in values):
        raise BadLineError(f"expected {key!r} to hold booleans, got {values!r}")
    return tuple(values)


class EngineFileError(InputError):
    """An engine ``results.jsonl`` read as completions: the whole file, not a bad line."""


def _looks_like_engine(row: dict[str, Any]) -> bool:
    """A results.jsonl record of python -m search: graded, or skipped (``skipped``)."""
    engine_only = "candidates" in row or "skipped" in row
    return engine_only and "completions" not in row and "question" in row


def _parse_completions(row: dict[str, Any], aggregation: Aggregation) -> CompletionSet:
    problem, gold = _text(row, "problem"), _text(row, "answer")
    completions = row.get("completions")
    if (
        not isinstance(completions, list)
        or not completions
        or not all(isinstance(c, str) for c in completions)
    ):
        raise BadLineError(
            f"expected 'completions' to be a non-empty list of strings, got {completions!r:.80}"
        )
    scores = step_scores = finished = None
    if row.get("scores") is not None:
        if not isinstance(row["scores"], list) or len(row["scores"]) != len(completions):
            raise BadLineError(
                f"expected 'scores' to be a list of {len(completions)} entries (one per "
                f"completion: a float or a list of step scores), got {row['scores']!r:.80}"
            )
        scores, step_scores = _scores(row["scores"], aggregation)
    if row.get("finished") is not None:
        finished = _bools(row["finished"], len(completions), "finished")
    return CompletionSet(problem, gold, tuple(completions), scores, step_scores, finished)


def _parse_engine(row: dict[str, Any], aggregation: Aggregation) -> CompletionSet:
    problem, gold = _text(row, "question"), _text(row, "answer")
    candidates = row.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        raise BadLineError(f"expected 'candidates' to be a non-empty list, got {candidates!r:.80}")
    texts: list[str] = []
    raw_scores: list[Any] = []
    finished: list[bool] = []
    for index, candidate in enumerate(candidates):
        steps = candidate.get("steps") if isinstance(candidate, dict) else None
        if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
            raise BadLineError(f"expected candidates[{index}].steps to be a list of strings")
        texts.append(STEP_SEPARATOR.join(steps))
        step_scores = candidate.get("step_scores")
        raw_scores.append(step_scores if step_scores is not None else candidate.get("score"))
        finished.append(bool(candidate.get("finished", True)))
    present = [value is not None for value in raw_scores]
    scores = step_score_lists = None
    if all(present):
        scores, step_score_lists = _scores(raw_scores, aggregation)
    elif any(present):
        raise BadLineError("expected step_scores on every candidate or on none, got a mix")
    return CompletionSet(problem, gold, tuple(texts), scores, step_score_lists, tuple(finished))


def grade_set(
    item: CompletionSet, fallback_last_number: bool = True, timeout_s: float = 5.0
) -> GradedCompletions:
    """Extract, grade and group the answers of one line's completions. A completion marked
    unfinished (``finished`` false: the policy did not end it) is graded wrong whatever
    number it holds, as the engine grades it, so pass@k and the sample accuracy count only
    finished answers."""
    answers = [extract_answer(text, fallback_last_number) for text in item.completions]
    finished = item.finished or (True,) * len(answers)
    return GradedCompletions(
        classes=tuple(group_equivalent(answers, timeout_s=timeout_s)),
        correct=tuple(
            done and answers_match(a, item.gold, timeout_s=timeout_s)
            for a, done in zip(answers, finished, strict=True)
        ),
        scores=item.scores,
        finished=item.finished,
    )


def evaluate_sets(
    sets: Sequence[CompletionSet],
    num_subsets: int = 32,
    seed: int = 0,
    fallback_last_number: bool = True,
    timeout_s: float = 5.0,
) -> dict[str, Any]:
    """Metrics at every k, the diagnostics, and per-problem counts (JSON-ready)."""
    graded = [grade_set(s, fallback_last_number, timeout_s) for s in sets]
    counts = [g.n for g in graded]
    if counts and min(counts) != max(counts):
        log.warning(
            "lines have %d to %d completions; k goes up to %d",
            min(counts),
            max(counts),
            min(counts),
        )
    step_scores = [scores for s in sets for scores in (s.step_scores or ()) if scores is not None]
    return {
        "num_problems": len(sets),
        "num_completions": {"min": min(counts, default=0), "max": max(counts, default=0)},
        "scored": bool(sets) and all(s.scores is not None for s in sets),
        "metrics": metrics_at_k(graded, num_subsets=num_subsets, seed=seed),
        "diagnostics": {
            "min_on_final_step_share": min_on_final_step_share(step_scores),
            "num_with_step_scores": len(step_scores),
            "sample_accuracy": (
                sum(g.num_correct for g in graded) / sum(counts) if counts else None
            ),
        },
        "per_problem": [
            {"index": i, "n": g.n, "num_correct": g.num_correct} for i, g in enumerate(graded)
        ],
    }


def markdown_table(rows: Sequence[dict[str, float | int]]) -> str:
    """The metrics rows of ``evaluate_sets`` as a markdown table, one line per k."""
    if not rows:
        return "(no problems)"
    columns = [key for key in rows[0] if key != "k"]
    lines = [
        "| k | " + " | ".join(columns) + " |",
        "|---:|" + "---:|" * len(columns),
    ]
    for row in rows:
        lines.append(f"| {row['k']} | " + " | ".join(f"{row[c]:.3f}" for c in columns) + " |")
    return "\n".join(lines)


def default_output(path: Path) -> Path:
    """``FILE.eval.json`` next to ``FILE.jsonl``."""
    return path.with_name(path.stem + ".eval.json")


TREE_STRATEGIES = ("beam", "dvts", "mcts", "particle_filtering")


def source_run(path: Path, aggregation: Aggregation) -> dict[str, Any] | None:
    """The strategy and aggregation of the ``python -m search`` run whose ``results.jsonl``
    ``path`` is (its ``fingerprint.json``), or ``None`` for another file. Re-ranking a tree
    search's candidates with another aggregation than the one that pruned them is said in
    the log: it picks among the candidates that aggregation kept, not what a search with
    the new one would have kept."""
    fingerprint = path.parent / "fingerprint.json"
    if path.name != "results.jsonl" or not fingerprint.is_file():
        return None
    try:
        config = json.loads(fingerprint.read_text())
    except ValueError:
        return None
    if not isinstance(config, dict):
        return None
    strategy = config.get("strategy")
    name = strategy.get("name") if isinstance(strategy, dict) else None
    searched = config.get("aggregation")
    if name in TREE_STRATEGIES and searched is not None and searched != aggregation.value:
        log.warning(
            "%s: %s pruned these candidates by aggregation=%s; re-ranked with %s, the pick is "
            "among what %s kept, not what a %s search with %s would have kept (rerun "
            "python -m search aggregation=%s for that)",
            path,
            name,
            searched,
            aggregation.value,
            searched,
            name,
            aggregation.value,
            aggregation.value,
        )
    return {"strategy": name, "aggregation": searched}


def run_evaluation(config: EvaluateConfig) -> tuple[dict[str, Any], Path]:
    """Read, grade and score ``config.path``; write the JSON report; return it and its path."""
    path = Path(config.path).expanduser()
    output = Path(config.output).expanduser() if config.output else default_output(path)
    check_writable_dir(output.parent, "the output's folder")
    loaded = read_completion_sets(path, config.format, config.aggregation, config.on_bad_row)
    if not loaded.sets:
        raise InputError(
            f"{path}: expected at least one line to evaluate, got none (skipped "
            f"{loaded.skipped} bad lines, {loaded.not_graded} problems the run skipped); fix: "
            "point path= at a file with graded lines"
        )
    report = {
        "input": str(path),
        "format": loaded.input_format.value,
        "aggregation": Aggregation(config.aggregation).value,
        "num_subsets": config.num_subsets,
        "subsets": "first k"
        if config.num_subsets == 0
        else (f"{config.num_subsets} seeded random k-subsets (all, when fewer)"),
        "seed": config.seed,
        "skipped_rows": loaded.skipped,
        "skipped_reasons": loaded.skipped_reasons[:20],
        "not_graded_problems": loaded.not_graded,
        "source_run": source_run(path, Aggregation(config.aggregation)),
    } | evaluate_sets(
        loaded.sets,
        num_subsets=config.num_subsets,
        seed=config.seed,
        fallback_last_number=config.fallback_last_number,
        timeout_s=config.grading_timeout_s,
    )
    if output.exists():  # e.g. the same run re-ranked with another aggregation
        log.warning("replacing %s, an earlier report (output=PATH keeps both)", output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return report, output


def register_configs() -> None:
    ConfigStore.instance().store(name="evaluate_schema", node=EvaluateConfig)


register_configs()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")
def main(raw: DictConfig) -> None:
    with exit_on_input_error():
        config: EvaluateConfig = OmegaConf.to_object(raw)  # type: ignore[assignment]
        report, output = run_evaluation(config)
    print(markdown_table(report["metrics"]))
    share = report["diagnostics"]["min_on_final_step_share"]
    if share is not None:
        print(f"share of solutions whose minimum step score is on the final step: {share:.3f}")
    if report["skipped_rows"]:
        print(f"skipped bad lines: {report['skipped_rows']}")
    if report["not_graded_problems"]:
        print(f"problems the run skipped (not graded): {report['not_graded_problems']}")
    print(f"report: {output}")


if __name__ == "__main__":
    main()
