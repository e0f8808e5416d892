"""Ground-truth step checker of the arithmetic world.

Given a problem and a candidate solution it returns the index of the first wrong step (-1
when every step is right) and the kind of error, exactly what human step labels give the
paper (arXiv 2501.07301, ProcessBench). Step ``i`` of the gold chain must read
``v_i OP operand_i = v_{i+1}`` with the true running value ``v_i``; the step after the chain
must be ``The answer is \\boxed{v}.``. Kinds of error:

- ``arithmetic``: the step has the right operands and operation but a wrong result;
- ``logic``: right arithmetic on the wrong operand or operation, a wrong left-hand value,
  a skipped or duplicated step, or an answer stated too early or too late;
- ``malformed``: the step cannot be read as an operation or an answer;
- ``wrong_answer``: the answer step states a value other than the chain's result;
- ``incomplete``: the solution stops before stating an answer (first_error = len(steps)).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import Enum

from search.envs.arith.world import OPS, apply
from search.types import Problem, StepCheck

_SYMBOL_TO_OP = {symbol: name for name, symbol in OPS.items()}
_QUESTION = re.compile(r"^Compute (-?\d+(?: [-+*] \d+)+)\.$")
_STEP = re.compile(r"^\s*(-?\d+) ([-+*]) (-?\d+) = (-?\d+)\s*$")
_ANSWER = re.compile(r"^\s*The answer is \\boxed\{(-?\d+)\}\.\s*$")


class ErrorKind(str, Enum):
    arithmetic = "arithmetic"
    logic = "logic"
    malformed = "malformed"
    wrong_answer = "wrong_answer"
    incomplete = "incomplete"


def parse_question(question: str) -> tuple[int, list[tuple[str, int]]]:
    match = _QUESTION.match(question.strip())
    if not match:
        raise ValueError(
            f"expected an arithmetic-world question like 'Compute 7 + 5 - 3.', got {question!r}"
        )
    tokens = match.group(1).split(" ")
    start = int(tokens[0])
    chain = [(_SYMBOL_TO_OP[tokens[i]], int(tokens[i + 1])) for i in range(1, len(tokens), 2)]
    return start, chain


def _final_answer(steps: tuple[str, ...] | list[str]) -> int | None:
    for step in reversed(steps):
        match = _ANSWER.match(step)
        if match:
            return int(match.group(1))
    return None


def check_solution(problem: Problem, steps: tuple[str, ...] | list[str]) -> StepCheck:
    start, chain = parse_question(problem.question)
    values = [start]
    for op, operand in chain:
        values.append(apply(op, values[-1], operand))
    answer = _final_answer(steps)
    answer_correct = answer is not None and str(answer) == problem.answer.strip()

    def fail(index: int, kind: ErrorKind) -> StepCheck:
        return StepCheck(first_error=index, kind=kind, answer_correct=answer_correct)

    for index, step in enumerate(steps):
        if index == len(chain):  # the answer step
            stated = _ANSWER.match(step)
            if stated is None:
                kind = ErrorKind.logic if _STEP.match(step) else ErrorKind.malformed
                return fail(index, kind)
            if int(stated.group(1)) != values[-1]:
                return fail(index, ErrorKind.wrong_answer)
            if index + 1 < len(steps):
                return fail(index + 1, ErrorKind.logic)  # writes on after the answer
            return StepCheck(first_error=-1, kind=None, answer_correct=answer_correct)
        if index > len(chain):
            return fail(index, ErrorKind.logic)
        parsed = _STEP.match(step)
        if parsed is None:
            kind = ErrorKind.logic if _ANSWER.match(step) else ErrorKind.malformed
            return fail(index, kind)  # an answer stated before the chain is done: logic
        left, symbol, right, result = (
            int(parsed.group(1)),
            parsed.group(2),
            int(parsed.group(3)),
            int(parsed.group(4)),
        )
        op = _SYMBOL_TO_OP[symbol]
        expected_op, expected_operand = chain[index]
        if (left, op, right) == (values[index], expected_op, expected_operand):
            if result != values[index + 1]:
                return fail(index, ErrorKind.arithmetic)
            continue
        # Wrong operand, operation or left-hand value (a skipped or repeated step is one of
        # these). If the stated arithmetic is itself wrong too, it is still a logic error:
        # the step would be wrong even with a perfect calculator.
        return fail(index, ErrorKind.logic)
    return fail(len(steps), ErrorKind.incomplete)


class ArithChecker:
    """``search.protocols.Checker`` for the arithmetic world (``check_solution``)."""

    def check(self, problem: Problem, steps: Sequence[str]) -> StepCheck:
        return check_solution(problem, tuple(steps))
