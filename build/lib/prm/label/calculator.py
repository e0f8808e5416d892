"""A calculator judge: re-computes every equation ``a op b [op c ...] = r`` a step writes.

The first step with a wrong equation is the first error. It catches arithmetic slips but is
blind to logic errors (the wrong operand, a skipped operation, a wrong final answer), so on
the arithmetic world it behaves like an imperfect LLM judge whose mistakes we can measure
against ``search.envs.arith.checker``. Needs no model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prm.label.records import LabelRecord, judged_record, unlabelled
from prm.sample import SampledSolution

_EQUATION = re.compile(r"(-?\d+(?:\s*[-+*×]\s*-?\d+)+)\s*=\s*(-?\d+)")
_TOKEN = re.compile(r"\d+|[-+*×]")


def evaluate(expression: str) -> int | None:
    """Value of integers joined by + - * (usual precedence); ``None`` when malformed."""
    tokens = _TOKEN.findall(expression)
    terms: list[int] = []  # additive terms, products folded in
    sign, pending_mul = 1, False
    expect_number = True
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if expect_number:
            negative = token == "-"
            if negative:
                index += 1
                if index == len(tokens) or not tokens[index].isdigit():
                    return None
                token = tokens[index]
            if not token.isdigit():
                return None
            value = -int(token) if negative else int(token)
            if pending_mul:
                terms[-1] *= value
            else:
                terms.append(sign * value)
            expect_number = False
        else:
            if token.isdigit():
                return None
            pending_mul = token in "*×"
            sign = -1 if token == "-" else 1
            expect_number = True
        index += 1
    return None if expect_number or not terms else sum(terms)


def first_wrong_equation(steps: Sequence[str]) -> int:
    """Index of the first step with an equation whose result is wrong, -1 when none is."""
    for index, step in enumerate(steps):
        for match in _EQUATION.finditer(step):
            value = evaluate(match.group(1))
            if value is not None and value != int(match.group(2)):
                return index
    return -1


@dataclass
class CalculatorConfig:
    """``conf/labeller/calculator.yaml``."""

    name: str = "calculator"


class CalculatorLabeller:
    """Implements ``prm.label.records.Labeller``."""

    def __init__(self, name: str = "calculator") -> None:
        self.name = name

    def usage(self) -> dict[str, Any]:
        return {}

    def label(self, solutions: Sequence[SampledSolution]) -> list[LabelRecord]:
        return [
            judged_record(s, self.name, first_wrong_equation(s.steps))
            if s.steps
            else unlabelled(s, self.name, "empty solution")
            for s in solutions
        ]
