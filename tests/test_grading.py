"""Answer equivalence (search.grading): the fast path, math-verify, threads, grouping.

MATH500_TABLE pairs real MATH-500 gold answers (field ``answer`` of
shared/data/math500_test.jsonl) with an equivalent and a non-equivalent rewrite.
Left out as unsupported: ``\\begin{pmatrix}...`` vs the same vector as a tuple ``(a, b, c)``
(math-verify's strict mode keeps matrices and tuples apart).
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from search.grading import answers_match, group_equivalent, normalise

DATA_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"

# (gold as in MATH-500, an equivalent answer, a non-equivalent answer)
MATH500_TABLE: list[tuple[str, str, str]] = [
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\pi/2)", "(3, \\pi)"),
    ("p - q", "-q + p", "q - p"),
    ("\\frac{14}{3}", "14/3", "\\frac{3}{14}"),
    ("\\text{Evelyn}", "Evelyn", "\\text{Bob}"),
    ("90^\\circ", "90", "45^\\circ"),
    ("3\\sqrt{13}", "\\sqrt{117}", "13\\sqrt{3}"),
    ("\\frac{3}{56}", "\\dfrac{3}{56}", "\\frac{3}{65}"),
    ("\\sqrt{51}", "51^{1/2}", "\\sqrt{15}"),
    ("6 - 5i", "-5i + 6", "6 + 5i"),
    ("-50", "-50.0", "50"),
    ("\\pi", "\\pi", "3.14"),
    ("x=5", "5", "x=6"),
    ("1,-2", "-2, 1", "1"),
    ("-2 + 7i", "7i - 2", "-2 - 7i"),
    ("11\\sqrt2", "11\\sqrt{2}", "11\\sqrt{3}"),
    ("\\frac{243}{625}", "0.3888", "\\frac{243}{624}"),
    ("3, 5, 7", "7, 5, 3", "3, 5"),
    ("70 \\sqrt{2}", "\\sqrt{9800}", "70"),
    ("1.25", "\\frac{5}{4}", "1.2"),
    ("x^5 - x^4 + x^3 - x^2 + x - 1", "(x-1)(x^4+x^2+1)", "x^5 - x^4 + x^3 - x^2 + x + 1"),
    ("-\\frac{\\pi}{6}", "-\\pi/6", "\\frac{\\pi}{6}"),
    ("0.15", "\\frac{3}{20}", "0.015"),
    ("(6,31,-1)", "\\left(6, 31, -1\\right)", "(6,-1,31)"),
    ("\\frac{35}{64}", "0.546875", "\\frac{35}{46}"),
    ("x^3+3x-6", "3x + x^3 - 6", "x^3+3x+6"),
    ("\\frac{3\\sqrt{3}}{4}", "\\frac{3}{4}\\sqrt{3}", "\\frac{3\\sqrt{2}}{4}"),
    ("\\cot x", "\\frac{\\cos x}{\\sin x}", "\\tan x"),
    ("(-2,1)", "\\left(-2, 1\\right)", "(1,-2)"),
    ("1 \\pm \\sqrt{19}", "1+\\sqrt{19}, 1-\\sqrt{19}", "1+\\sqrt{19}"),
    (
        "\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}",
        "\\begin{pmatrix} -\\frac{1}{3} \\\\ \\frac{2}{3} \\\\ \\frac{5}{3} \\end{pmatrix}",
        "\\begin{pmatrix} 1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}",
    ),
    ("145^\\circ", "145", "135^\\circ"),
    ("(a+5)(b+2)", "ab + 2a + 5b + 10", "(a+2)(b+5)"),
    ("(3,4]", "(3, 4]", "[3,4]"),
    ("\\frac43", "\\frac{4}{3}", "\\frac{3}{4}"),
    ("\\text{even}", "even", "\\text{odd}"),
    ("1+274i", "274i+1", "1-274i"),
    ("\\frac{3840}{289}", "\\frac{7680}{578}", "\\frac{3840}{288}"),
    ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}", "\\sqrt{3}"),
    ("(15,-29)", "(15, -29)", "(-29,15)"),
    ("2\\sqrt{113}", "\\sqrt{452}", "\\sqrt{113}"),
    ("3.21", "\\frac{321}{100}", "3.12"),
    ("\\dfrac{17}{50}", "0.34", "\\frac{17}{5}"),
    ("-\\sqrt{3}", "-3^{1/2}", "\\sqrt{3}"),
    ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}", "\\frac{270}{9}"),
    (".0000672", "6.72 \\times 10^{-5}", "0.000672"),
    ("5x - 7y + 11z + 4 = 0", "-5x + 7y - 11z - 4 = 0", "5x - 7y + 11z - 4 = 0"),
    ("(2,\\infty)", "(2, \\infty)", "[2,\\infty)"),
    ("10,\\!080", "10080", "10800"),
    ("\\left( \\frac{3}{2}, -13 \\right)", "(1.5, -13)", "(-13, 1.5)"),
    ("11,\\! 111,\\! 111,\\! 100", "11111111100", "11111111000"),
    ("\\text{(C)}", "C", "\\text{(D)}"),
    ("288 \\pi", "288\\pi", "144\\pi"),
    ("\\frac{1997}{2}", "998.5", "\\frac{1997}{3}"),
    ("\\$32,\\!348", "32348", "32438"),
    ("-13x+3", "3 - 13x", "13x+3"),
    ("864 \\mbox{ inches}^2", "864", "846"),
    ("1\\frac{4}{5}", "\\frac{9}{5}", "\\frac{4}{5}"),
    ("18+2\\pi", "2\\pi + 18", "18+\\pi"),
    ("3 \\pm 2 \\sqrt{2}", "3+2\\sqrt{2}, 3-2\\sqrt{2}", "3+2\\sqrt{2}"),
    (
        "\\left(\\frac{3}{5},\\frac{8}{3}\\right]",
        "(0.6, \\frac{8}{3}]",
        "\\left[\\frac{3}{5},\\frac{8}{3}\\right]",
    ),
    (
        "\\begin{pmatrix} -18 \\\\ -49 \\\\ 96 \\end{pmatrix}",
        "\\begin{pmatrix}-18\\\\-49\\\\96\\end{pmatrix}",
        "\\begin{pmatrix} -18 \\\\ 49 \\\\ 96 \\end{pmatrix}",
    ),
    ("5.4 \\text{ cents}", "5.4", "54"),
    ("\\frac9{19}", "\\frac{9}{19}", "\\frac{19}{9}"),
    ("(-\\infty, 0]", "(-\\infty, 0]", "(-\\infty, 0)"),
    ("1+2\\sqrt{3}", "2\\sqrt{3}+1", "1+\\sqrt{3}"),
    ("(5,\\infty)", "(5, \\infty)", "(-\\infty, 5)"),
    ("\\frac{11+9a}{20}", "\\frac{11}{20} + \\frac{9a}{20}", "\\frac{11+9a}{2}"),
    ("2k", "k+k", "k"),
    ("55^\\circ", "55", "35^\\circ"),
    ("58,500", "58500", "5850"),
    ("6r^2-4r-24", "2(3r^2-2r-12)", "6r^2+4r-24"),
    ("(-\\sqrt{3}, \\sqrt{3})", "\\left(-\\sqrt3, \\sqrt3\\right)", "[-\\sqrt{3}, \\sqrt{3}]"),
    ("(1,-16,-4,43)", "(1, -16, -4, 43)", "(1,-16,4,43)"),
    ("(0,9) \\cup (9,36)", "(0, 9) \\cup (9, 36)", "(0,36)"),
    ("\\frac{20000}{\\pi}", "20000/\\pi", "20000\\pi"),
    ("x \\in [-2,7]", "[-2,7]", "[-2,7)"),
    ("15x - 80", "5(3x-16)", "15x + 80"),
    ("\\frac 34", "0.75", "\\frac 43"),
    ("326.5", "\\frac{653}{2}", "326"),
    ("1 - 12i", "-12i + 1", "1 + 12i"),
    (
        "\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}",
        "\\begin{pmatrix} 0.2 \\\\ -3.6 \\end{pmatrix}",
        "\\begin{pmatrix} 1/5 \\\\ 18/5 \\end{pmatrix}",
    ),
    ("5r^5", "5 r^{5}", "5r^4"),
    ("\\{1\\pm\\sqrt{5},-2\\}", "-2, 1+\\sqrt{5}, 1-\\sqrt{5}", "1+\\sqrt{5}, 1-\\sqrt{5}"),
    ("3R^2", "3 R^2", "3R"),
    (
        "\\left[ \\frac{\\pi^2}{8}, \\frac{5 \\pi^2}{4} \\right]",
        "[\\pi^2/8, 5\\pi^2/4]",
        "(\\pi^2/8, 5\\pi^2/4)",
    ),
    ("(-\\infty, 2) \\cup (3, \\infty)", "(-\\infty,2)\\cup(3,\\infty)", "(2,3)"),
    ("y = 2x + 3", "2x + 3", "y = 3x + 2"),
    ("-2,1", "1, -2", "-2"),
    ("\\$18.90", "18.90", "18.09"),
    ("8 \\pi", "8\\pi", "8"),
    ("15\\mbox{ cm}^2", "15", "25"),
    ("137 \\frac{1}{2}", "137.5", "\\frac{137}{2}"),
    ("\\$36", "36", "63"),
    ("y = -2x", "-2x", "y = 2x"),
    ("(2,12) \\cup (12,102)", "(2, 12) \\cup (12, 102)", "(2,102)"),
    ("8n^2 + 4n + 1", "4n(2n+1) + 1", "8n^2 + 4n"),
    ("52_8", "52_{8}", "42_8"),
    ("2516_8", "2516_{8}", "2561_8"),
    ("\\text{east}", "east", "\\text{west}"),
    ("\\text{Navin}", "Navin", "\\text{Lukas}"),
    ("\\text{ellipse}", "ellipse", "\\text{parabola}"),
    ("\\sqrt{5}", "5^{1/2}", "5"),
    ("13535", "13,535", "13553"),
    ("2220", "2220.0", "2202"),
    ("0", "0.0", "1"),
    ("-1", "-1.0", "1"),
]


@pytest.mark.parametrize(("gold", "equivalent", "different"), MATH500_TABLE)
def test_math500_golds_match_rewrites(gold: str, equivalent: str, different: str) -> None:
    assert answers_match(gold, gold)
    assert answers_match(equivalent, gold)
    assert not answers_match(different, gold)


def test_table_golds_are_real_math500_answers() -> None:
    path = DATA_DIR / "math500_test.jsonl"
    if not path.is_file():
        pytest.skip(f"MATH-500 not found at {path}")
    golds = {json.loads(line)["answer"] for line in path.read_text().splitlines() if line}
    assert len(MATH500_TABLE) >= 50
    assert [gold for gold, _, _ in MATH500_TABLE if gold not in golds] == []
    assert len({gold for gold, _, _ in MATH500_TABLE}) == len(MATH500_TABLE)


@pytest.mark.parametrize(
    ("prediction", "gold", "expected"),
    [
        ("0.5", "\\frac{1}{2}", True),
        ("\\frac{1}{2}", "0.5", True),
        ("3.0", "3", True),
        ("3", "3.0", True),
        ("\\dfrac{3}{4}", "\\frac{3}{4}", True),
        ("\\tfrac34", "0.75", True),
        ("x = 3", "3", True),
        ("3", "x=3", True),
        ("$5$", "5", True),
        ("5.", "5", True),
        ("[1, 2)", "[1,2)", True),
        ("[1, 2]", "[1,2)", False),
        ("2", "3", False),
        ("1/3", "0.333", False),  # math-verify rounds to 6 places, 0.333 is not 1/3
        ("", "3", False),
        (None, "3", False),
        ("3", "", False),
    ],
)
def test_answers_match_basics(prediction: str | None, gold: str, expected: bool) -> None:
    assert answers_match(prediction, gold) is expected


@pytest.mark.parametrize(
    "weird",
    ["\\frac{1}{0}", "\\sqrt{", "}}}{{", "$", "$$", "\\boxed{", "\\\\", "%", "a" * 5000, "\x00"],
)
def test_answers_match_never_raises(weird: str) -> None:
    assert answers_match(weird, "5") is False
    assert answers_match("5", weird) is False


@pytest.mark.parametrize("risky", ["(x+1)^{1000}", "10^{10^{10^{10}}}", "9**9**9**9", "x" * 300])
def test_inputs_that_stall_sympy_are_compared_as_strings(risky: str) -> None:
    start = time.perf_counter()
    assert not answers_match(risky, "5")
    assert not answers_match("5", risky)
    assert answers_match(risky, risky)  # the string fast path still sees equal answers
    assert time.perf_counter() - start < 0.5


def test_normalise_removes_only_presentation() -> None:
    assert normalise("$\\left( 3, \\dfrac{\\pi}{2} \\right)$") == "(3,\\frac{\\pi}{2})"
    assert normalise("10,\\!080") == "10,080"
    assert normalise("90^\\circ") == "90"
    assert normalise("\\text{Evelyn}") == "Evelyn"
    assert normalise("x^2") != normalise("x^3")


def test_answers_match_is_the_same_off_the_main_thread() -> None:
    rows = MATH500_TABLE[:24]
    cases = [(pred, gold) for gold, same, other in rows for pred in (same, other)]
    on_main = [answers_match(pred, gold) for pred, gold in cases]
    seen_threads: set[str] = set()

    def check(case: tuple[str, str]) -> bool:
        seen_threads.add(threading.current_thread().name)
        return answers_match(*case)

    with ThreadPoolExecutor(max_workers=2) as pool:
        off_main = list(pool.map(check, cases))
    assert threading.main_thread().name not in seen_threads
    assert off_main == on_main
    assert on_main == [index % 2 == 0 for index in range(len(cases))]


def test_group_equivalent_classes() -> None:
    answers = ["\\frac{1}{2}", "0.5", None, "3", "1/2", "3.0", "", "x = 3", "4", "0.5"]
    assert group_equivalent(answers) == [0, 0, -1, 3, 0, 3, -1, 3, 8, 0]


def test_group_equivalent_representatives_come_first() -> None:
    answers = ["7", None, "(1,2]", "7.0", "(1, 2]", "[1,2]", "\\sqrt{4}", "2"]
    groups = group_equivalent(answers)
    assert groups == [0, -1, 2, 0, 2, 5, 6, 6]
    for index, representative in enumerate(groups):
        assert representative <= index
        if representative >= 0:
            assert groups[representative] == representative


def test_group_equivalent_exact_duplicates_skip_math_verify(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import search.grading as grading

    calls: list[tuple[str, str]] = []
    real = grading.answers_match

    def counting(prediction: str | None, gold: str, timeout_s: float = 5.0) -> bool:
        calls.append((str(prediction), gold))
        return real(prediction, gold, timeout_s)

    monkeypatch.setattr(grading, "answers_match", counting)
    answers = ["12", "12", " 12 ", "$12$", "13", "13", "12"]
    assert grading.group_equivalent(answers) == [0, 0, 0, 0, 4, 4, 0]
    assert calls == [("13", "12")]  # one comparison: the two distinct strings
    assert group_equivalent([]) == []
