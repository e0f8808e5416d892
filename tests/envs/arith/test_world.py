from __future__ import annotations

import hashlib

import pytest

from search.answers import ANSWER_STEP
from search.envs.arith.checker import ErrorKind, check_solution, parse_question
from search.envs.arith.world import (
    Split,
    WorldConfig,
    apply,
    make_split,
    sample_chain,
)


def test_splits_are_fixed_by_seed_and_disjoint() -> None:
    first = make_split(Split.test)
    again = make_split("test")
    assert [p.question for p in first] == [p.question for p in again]
    assert len(first) == 500
    train = {p.question for p in make_split(Split.train, size=20_000)}
    for split in (Split.validation, Split.test, Split.hard, Split.longest):
        assert not train & {p.question for p in make_split(split)}


def test_gold_solution_shape_and_answer_form() -> None:
    for problem in make_split(Split.test, size=50):
        start, chain = parse_question(problem.question)
        assert len(problem.gold_steps) == len(chain) + 1
        assert problem.gold_steps[-1] == ANSWER_STEP.format(value=problem.answer)
        value = start
        for (op, operand), step in zip(chain, problem.gold_steps, strict=False):
            value = apply(op, value, operand)
            assert step.endswith(f"= {value}")
        assert str(value) == problem.answer
        assert all("\n\n" not in step for step in problem.gold_steps)


def test_hard_split_has_longer_chains() -> None:
    normal = max(len(parse_question(p.question)[1]) for p in make_split(Split.test))
    hard = min(len(parse_question(p.question)[1]) for p in make_split(Split.hard))
    assert hard > normal


def test_longest_split_has_only_the_longest_chains_and_none_of_the_other_splits() -> None:
    train = make_split(Split.train)
    lengths = {len(parse_question(p.question)[1]) for p in train[:2_000]}
    longest = make_split(Split.longest)
    assert {len(parse_question(p.question)[1]) for p in longest} == {max(lengths)}
    assert len(longest) == 500 and longest[0].id == "arith-longest-0"
    assert [p.question for p in make_split("longest", size=20)] == [
        p.question for p in longest[:20]
    ]
    questions = {p.question for p in longest}
    for other in (train, make_split(Split.validation), make_split(Split.test)):
        assert not questions & {p.question for p in other}
    # the train split the shipped models learnt from is unchanged (its digest when they were)
    digest = hashlib.sha256("\n".join(p.question for p in train).encode()).hexdigest()
    assert digest == "a53eda6749a37ff8bdafd5fea33ceff758048a67c546ce9947e8391a7afb7763"


def test_knobs_operations_and_ranges() -> None:
    import random

    config = WorldConfig(
        min_steps=3, max_steps=3, min_operand=10, max_operand=12, operations=("mul",)
    )
    chain = sample_chain(random.Random(0), config)
    assert chain.ops == ("mul", "mul", "mul")
    assert all(10 <= x <= 12 for x in chain.operands)
    with pytest.raises(ValueError, match="operations"):
        WorldConfig(operations=("pow",))
    with pytest.raises(ValueError, match="min_steps"):
        WorldConfig(min_steps=3, max_steps=2)


def test_non_negative_by_default() -> None:
    for problem in make_split(Split.validation):
        assert int(problem.answer) >= 0


@pytest.fixture
def problem():  # type: ignore[no-untyped-def]
    from search.types import Problem

    return Problem(id="p", question="Compute 7 + 5 - 3 + 8.", answer="17")


@pytest.mark.parametrize(
    ("steps", "first_error", "kind", "answer_correct"),
    [
        (["7 + 5 = 12", "12 - 3 = 9", "9 + 8 = 17", "The answer is \\boxed{17}."], -1, None, True),
        (
            ["7 + 5 = 13", "13 - 3 = 10", "10 + 8 = 18", "The answer is \\boxed{18}."],
            0,
            ErrorKind.arithmetic,
            False,
        ),
        # right arithmetic on the wrong operand
        (
            ["7 + 5 = 12", "12 - 8 = 4", "4 + 8 = 12", "The answer is \\boxed{12}."],
            1,
            ErrorKind.logic,
            False,
        ),
        # wrong operation
        (["7 + 5 = 12", "12 + 3 = 15", "The answer is \\boxed{15}."], 1, ErrorKind.logic, False),
        # skipped step
        (["7 + 5 = 12", "12 + 8 = 20", "The answer is \\boxed{20}."], 1, ErrorKind.logic, False),
        # duplicated step
        (["7 + 5 = 12", "12 + 5 = 17", "17 - 3 = 14"], 1, ErrorKind.logic, False),
        # answer stated too early
        (["7 + 5 = 12", "The answer is \\boxed{12}."], 1, ErrorKind.logic, False),
        # unreadable step
        (["7 + 5 = 12", "blah"], 1, ErrorKind.malformed, False),
        # wrong value in the answer step
        (
            ["7 + 5 = 12", "12 - 3 = 9", "9 + 8 = 17", "The answer is \\boxed{16}."],
            3,
            ErrorKind.wrong_answer,
            False,
        ),
        # stops before the answer
        (["7 + 5 = 12", "12 - 3 = 9"], 2, ErrorKind.incomplete, False),
        # right final answer, wrong process: two slips that cancel out
        (
            ["7 + 5 = 13", "13 - 3 = 9", "9 + 8 = 17", "The answer is \\boxed{17}."],
            0,
            ErrorKind.arithmetic,
            True,
        ),
    ],
)
def test_checker(problem, steps, first_error, kind, answer_correct) -> None:  # type: ignore[no-untyped-def]
    check = check_solution(problem, steps)
    assert check.first_error == first_error
    assert check.kind == kind
    assert check.answer_correct == answer_correct
    assert check.right_answer_wrong_process == (answer_correct and first_error != -1)


def test_checker_rejects_foreign_questions() -> None:
    from search.types import Problem

    with pytest.raises(ValueError, match="arithmetic-world question"):
        check_solution(Problem(id="x", question="What is 2+2?", answer="4"), ["4"])
