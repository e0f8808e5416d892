"""The scorer guard: a custom PRM's output of the wrong type, shape or range is reported
naming the scorer, not as a TypeError deep in a strategy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from search.guards import call_scorer
from search.types import Prefix, Problem

PREFIXES = [Prefix(Problem("p", "Compute 1 + 1.", "2"), ("1 + 1 = 2", "\\boxed{2}"))]


class Returns:
    def __init__(self, value: Any) -> None:
        self.value = value

    def score(self, prefixes: Sequence[Prefix]) -> Any:
        return self.value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, r"Returns\.score returned NoneType; expected a list"),
        ("0.9", r"Returns\.score returned str; expected a list"),
        ([None], r"Returns\.score returned NoneType for prefix 0"),
        ([["0.9", "0.8"]], r"Returns\.score returned str '0\.9' for prefix 0"),
        ([[True, 0.5]], r"Returns\.score returned bool True for prefix 0"),
        ([[0.9]], r"Returns\.score returned 1 scores for prefix 0 with 2 steps"),
        ([[0.9, float("nan")]], r"Returns\.score returned nan for prefix 0"),
        ([[0.9, 1.5]], r"Returns\.score returned 1\.5 for prefix 0"),
        ([], r"Returns\.score returned 0 score lists for 1 prefixes"),
    ],
)
def test_a_custom_scorers_bad_output_is_named(value: Any, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        call_scorer(Returns(value), PREFIXES)


def test_good_output_passes() -> None:
    assert call_scorer(Returns([[0.9, 1]]), PREFIXES).scores == [[0.9, 1]]
