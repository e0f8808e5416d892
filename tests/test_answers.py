"""Final-answer extraction: the rules of search.answers, in order, on realistic solution texts."""

from __future__ import annotations

import pytest

from search.answers import extract_answer, last_boxed

EXTRACTION_TABLE = [
    # 1. boxed: nested braces, last box wins, \fbox, brace-less form
    ("So the ratio is $\\boxed{\\frac{1}{\\sqrt{2}}}$.", "\\frac{1}{\\sqrt{2}}"),
    ("First $\\boxed{3}$, but that was wrong.\n\nSo the answer is $\\boxed{4}$.", "4"),
    (
        "The vector is $\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}$.",
        "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
    ),
    (
        "Hence $x \\in \\boxed{\\left( -\\infty, \\frac{1}{2} \\right]}$.",
        "\\left( -\\infty, \\frac{1}{2} \\right]",
    ),
    ("The answer is \\fbox{12}.", "12"),
    ("Therefore the answer is \\boxed 5.", "5"),
    ("We get $\\boxed{ 3 }$ and the answer is 7.", "3"),  # boxed wins over "the answer is"
    ("$\\boxed{\\text{(C)}}$", "\\text{(C)}"),
    # unbalanced or empty last box: truncated, no guess
    ("So we have $\\boxed{\\frac{1}{2}", None),
    ("We had \\boxed{3} before. Finally $\\boxed{\\sqrt{2", None),
    ("Put the final answer in \\boxed{}.", None),
    # 2. "the answer is" / "final answer is"
    ("7 + 5 = 12\n\nThe answer is 12.", "12"),
    ("Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac{3}{4}"),
    ("Therefore, the answer is: 3.5.", "3.5"),
    ("The answer is 2.\n\nWait, recheck.\n\nThe answer is 3.", "3"),
    ("so the answer is $x = 7$\nDone", "x = 7"),
    # 3. GSM8K "#### N"
    ("She makes 9 * 2 = $<<9*2=18>>18 every day.\n#### 18", "18"),
    ("Total is 1,450,000 dollars.\n#### 1,450,000", "1450000"),
    # 4. fallback: last number
    ("Adding them gives 12, then subtracting 5 leaves -3", "-3"),
    ("The area is 2.5 square units", "2.5"),
    ("The cost is $1,234 in total", "1234"),
    ("The points are 1,2", "2"),
    ("No numbers here at all.", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), EXTRACTION_TABLE)
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


def test_fallback_can_be_turned_off() -> None:
    text = "Adding them gives 12, then subtracting 5 leaves 7"
    assert extract_answer(text) == "7"
    assert extract_answer(text, fallback_last_number=False) is None


def test_last_boxed_balances_nested_braces() -> None:
    assert last_boxed("a \\boxed{{x}^{2}} b \\boxed{\\frac{\\pi}{2}} c") == "\\frac{\\pi}{2}"
    assert last_boxed("no box") is None
    assert last_boxed("\\boxed{unclosed {nested}") is None


def test_arith_gold_solutions_extract_their_answer() -> None:
    from search.envs.arith.world import make_split
    from search.types import STEP_SEPARATOR

    for problem in make_split("test", size=20):
        assert extract_answer(STEP_SEPARATOR.join(problem.gold_steps)) == problem.answer
