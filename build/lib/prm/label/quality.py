"""How good are the labels? Each labeller against a task's ground truth, wherever a
``search.protocols.Checker`` exists (the arithmetic world's ``ArithChecker`` is one).

The truth of a solution is ``checker.check(problem, steps).first_error``: the index of its
first wrong step, -1 when every step is right. A solution that stops before stating an
answer (``first_error == len(steps)``) has no wrong *written* step, so its truth is -1 here,
the same as a labeller that sees nothing wrong in it.

Per labeller, over the solutions it labels (those it retains):

- ``retention``: share of solutions with a label;
- ``first_error_accuracy``: share whose first-error location (or "none") matches the truth;
- ``step_precision`` / ``step_recall`` of "this step is wrong": a step counts as flagged when
  it is the labeller's first error and as wrong when it is the truth's first error; only
  the steps up to the earlier of the two first errors are scored (what comes after a first
  error is labelled by neither in the same way);
- ``rawp``: right-answer-wrong-process solutions among the retained (the paper's worry with
  MC labels), ``rawp_passed``: the share of them labelled fully correct, and
  ``positives_rawp_share``: the share of fully-correct labels that are such solutions.

``soft_label_profile`` asks the same of MC's soft labels (the share of right rollouts after
each step): on the steps up to each solution's true first error, how far apart are the
estimates of right steps and of first wrong steps (``SoftProfile``)?
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prm.label.records import LabelRecord
from prm.sample import SampledSolution
from search.protocols import Checker
from search.types import StepCheck


@dataclass(frozen=True, slots=True)
class LabelQuality:
    labeller: str
    num_solutions: int
    retained: int
    retention: float
    first_error_accuracy: float | None
    step_precision: float | None
    step_recall: float | None
    rawp: int
    rawp_passed: float | None
    positives_rawp_share: float | None


def truth_first_error(check: StepCheck, num_steps: int) -> int:
    """The checker's first error with "stopped before the answer" read as no wrong step."""
    return -1 if check.first_error >= num_steps else check.first_error


def _ratio(numerator: float, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def label_quality(
    name: str,
    solutions: Sequence[SampledSolution],
    first_errors: Sequence[int | None],
    checker: Checker,
) -> LabelQuality:
    """Quality of one labeller's first errors (``None``: no label) against the checker."""
    checks = [checker.check(s.problem, s.steps) for s in solutions]
    retained = right = tp = fp = fn = rawp = rawp_passed = positives = positives_rawp = 0
    for solution, check, predicted in zip(solutions, checks, first_errors, strict=True):
        if predicted is None:
            continue
        retained += 1
        n = len(solution.steps)
        truth = truth_first_error(check, n)
        right += predicted == truth
        last = min(x if x >= 0 else n - 1 for x in (predicted, truth))
        for index in range(last + 1):
            flagged, wrong = index == predicted, index == truth
            tp += flagged and wrong
            fp += flagged and not wrong
            fn += wrong and not flagged
        if predicted == -1:
            positives += 1
            positives_rawp += check.right_answer_wrong_process
        if check.right_answer_wrong_process:
            rawp += 1
            rawp_passed += predicted == -1
    return LabelQuality(
        labeller=name,
        num_solutions=len(solutions),
        retained=retained,
        retention=retained / len(solutions) if solutions else 0.0,
        first_error_accuracy=_ratio(right, retained),
        step_precision=_ratio(tp, tp + fp),
        step_recall=_ratio(tp, tp + fn),
        rawp=rawp,
        rawp_passed=_ratio(rawp_passed, rawp),
        positives_rawp_share=_ratio(positives_rawp, positives),
    )


def quality_from_records(
    solutions: Sequence[SampledSolution], records: Sequence[LabelRecord], checker: Checker
) -> list[LabelQuality]:
    """One row for the records' labeller, plus one per component labeller of a consensus
    run (its MC and judge first errors are kept in ``components``)."""
    by_key = {record.key: record for record in records}
    missing = [s.key for s in solutions if s.key not in by_key]
    if missing:
        raise ValueError(
            f"expected a record for every solution, got none for {len(missing)} "
            f"(first: {missing[0]}); fix: finish the labelling run first"
        )
    ordered = [by_key[s.key] for s in solutions]
    names = list(dict.fromkeys(name for r in ordered for name in r.components))
    rows = [
        label_quality(name, solutions, [r.components.get(name) for r in ordered], checker)
        for name in names
    ]
    label = ordered[0].labeller if ordered else "none"
    rows.append(label_quality(label, solutions, [r.first_error for r in ordered], checker))
    return rows


def markdown_table(rows: Sequence[LabelQuality]) -> str:
    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = [
        "| labeller | retained | retention | first-error acc | step precision | step recall "
        "| RAWP | RAWP passed | RAWP share of positives |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.labeller} | {row.retained}/{row.num_solutions} | {cell(row.retention)} | "
            f"{cell(row.first_error_accuracy)} | {cell(row.step_precision)} | "
            f"{cell(row.step_recall)} | {row.rawp} | {cell(row.rawp_passed)} | "
            f"{cell(row.positives_rawp_share)} |"
        )
    return "\n".join(lines)


def write_quality(path: Path, rows: Sequence[LabelQuality]) -> None:
    Path(path).write_text(json.dumps([asdict(row) for row in rows], indent=2))


@dataclass(frozen=True, slots=True)
class SoftProfile:
    """MC soft labels against the truth, over the steps up to each solution's true first
    error: ``right`` steps come before it (all steps of a right solution), ``first wrong``
    steps are it. ``auc``: the chance that a random right step's soft label exceeds a random
    first wrong step's (ties count half); ``right_at_zero``: share of right steps no rollout
    completed (hard label wrong); ``first_wrong_above_zero``: share of first wrong steps some
    rollout completed (hard label right)."""

    solutions: int
    right_steps: int
    first_wrong_steps: int
    mean_right: float | None
    mean_first_wrong: float | None
    auc: float | None
    right_at_zero: float | None
    first_wrong_above_zero: float | None


def _auc(positives: Counter[float], negatives: Counter[float]) -> float | None:
    total = sum(positives.values()) * sum(negatives.values())
    if not total:
        return None
    wins = sum(
        count_p * count_n * (1.0 if p > n else 0.5 if p == n else 0.0)
        for p, count_p in positives.items()
        for n, count_n in negatives.items()
    )
    return wins / total


def soft_label_profile(
    solutions: Sequence[SampledSolution], records: Sequence[LabelRecord], checker: Checker
) -> SoftProfile:
    """How MC's soft labels (``records``, one per solution, in any order) separate right
    steps from first wrong ones; records without a label are skipped."""
    by_key = {record.key: record for record in records}
    right: Counter[float] = Counter()
    wrong: Counter[float] = Counter()
    counted = 0
    for solution in solutions:
        record = by_key.get(solution.key)
        if record is None or record.first_error is None:
            continue
        if len(record.soft_labels) != len(solution.steps):
            raise ValueError(
                f"expected one soft label per step of {solution.key}, got "
                f"{len(record.soft_labels)} for {len(solution.steps)} steps; fix: pass the MC "
                "records of these samples"
            )
        counted += 1
        check = checker.check(solution.problem, solution.steps)
        truth = truth_first_error(check, len(solution.steps))
        end = len(solution.steps) if truth == -1 else truth
        right.update(record.soft_labels[:end])
        if truth >= 0:
            wrong[record.soft_labels[truth]] += 1
    n_right, n_wrong = sum(right.values()), sum(wrong.values())
    return SoftProfile(
        solutions=counted,
        right_steps=n_right,
        first_wrong_steps=n_wrong,
        mean_right=_ratio(sum(v * c for v, c in right.items()), n_right),
        mean_first_wrong=_ratio(sum(v * c for v, c in wrong.items()), n_wrong),
        auc=_auc(right, wrong),
        right_at_zero=_ratio(right[0.0], n_right),
        first_wrong_above_zero=_ratio(n_wrong - wrong[0.0], n_wrong),
    )


def soft_markdown(profile: SoftProfile) -> str:
    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    return "\n".join(
        [
            "| solutions | right steps | first wrong steps | mean soft, right | mean soft, first "
            "wrong | AUC | right steps at 0 | first wrong steps above 0 |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {profile.solutions} | {profile.right_steps} | {profile.first_wrong_steps} | "
            f"{cell(profile.mean_right)} | {cell(profile.mean_first_wrong)} | "
            f"{cell(profile.auc)} | {cell(profile.right_at_zero)} | "
            f"{cell(profile.first_wrong_above_zero)} |",
        ]
    )


def mc_run(records: Path) -> dict[str, Any] | None:
    """The MC settings behind a ``python -m prm.label`` run's ``records.jsonl``, read from the
    ``fingerprint.json`` beside it (a consensus run's from its ``mc_records``): the MC
    labeller's config plus ``model`` (the roll-out model) and ``records`` (None for a
    consensus run that rolled out MC itself); None when the run has no MC labels (e.g. the
    calculator judge)."""
    path = Path(records).parent / "fingerprint.json"
    if not path.exists():
        raise FileNotFoundError(
            f"expected {path} (python -m prm.label writes it next to its records), got none; "
            "fix: pass the records.jsonl of a prm.label run"
        )
    settings = json.loads(path.read_text())
    labeller = settings["labeller"]
    own: Path | None = Path(records)
    if labeller.get("name") == "consensus":
        if labeller.get("mc_records") is not None:
            return mc_run(Path(labeller["mc_records"]))
        # the consensus run labelled by MC itself: its settings, no MC records of their own
        labeller, own = labeller["mc"], None
    elif labeller.get("name") != "mc":
        return None
    return {**labeller, "model": settings["policy"]["model"], "records": own}


def describe_mc(settings: dict[str, Any], short: bool = False) -> str:
    """How an MC run set its hard labels, for a caption (``short``: for a table cell)."""
    k = settings["num_rollouts"]
    if not settings["early_stop"]:
        full = f"any of {k} rollouts right, all {k} rolled out (soft = share right)"
        return "full" if short else full
    # runs from before the option always trusted right answers
    trusted = settings.get("trust_right_answers", True)
    if short:
        return f"early stop, right answers {'trusted' if trusted else 'rolled out'}"
    return f"any of up to {k} rollouts right, early stop" + (
        ", a right answer's steps all right (soft = hard)" if trusted else " (soft = hard)"
    )
