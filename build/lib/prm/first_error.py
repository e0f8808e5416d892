"""The first wrong step of a solution: from labels, from a PRM's step scores, and how well
predictions find it (ProcessBench, arXiv 2412.06559). One home for the PRM trainer's
validation, ProcessBench and label quality.

Index convention everywhere: the 0-based index of the first wrong step, -1 when every step
is right.
"""

from __future__ import annotations

from collections.abc import Sequence


def first_error_of(labels: Sequence[bool]) -> int:
    """Index of the first false label, -1 when every label is true."""
    return next((index for index, label in enumerate(labels) if not label), -1)


def predicted_first_error(step_scores: Sequence[float], threshold: float = 0.5) -> int:
    """Index of the first step scoring below ``threshold`` (not at it); -1 when none does."""
    return next((i for i, score in enumerate(step_scores) if score < threshold), -1)


def harmonic_mean(a: float | None, b: float | None) -> float | None:
    """ProcessBench's F1 of two accuracies; ``None`` when either is unknown."""
    if a is None or b is None:
        return None
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def share(hits: Sequence[bool]) -> float | None:
    """The share of true values; ``None`` for no values."""
    return sum(hits) / len(hits) if hits else None


def processbench_f1(predicted: Sequence[int], gold: Sequence[int]) -> dict[str, float | None]:
    """ProcessBench: accuracy on erroneous samples (exact first-error index), on correct ones
    (predicted none), and their harmonic mean (``None`` when a side has no samples)."""
    pairs = list(zip(predicted, gold, strict=True))
    error_accuracy = share([p == g for p, g in pairs if g != -1])
    correct_accuracy = share([p == -1 for p, g in pairs if g == -1])
    return {
        "error_accuracy": error_accuracy,
        "correct_accuracy": correct_accuracy,
        "f1": harmonic_mean(error_accuracy, correct_accuracy),
    }
