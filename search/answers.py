"""Final-answer extraction from solution text.

Rules, in order; the first rule that applies decides:

1. ``\\boxed{...}`` (or ``\\fbox{...}``): the content of the *last* box, nested braces
   balanced, so ``\\boxed{\\frac{1}{\\sqrt{2}}}`` gives ``\\frac{1}{\\sqrt{2}}``. The
   brace-less form ``\\boxed 5`` gives ``5``. If the last box is never closed (a solution cut
   off mid-answer) or is empty, the answer is ``None``: the text was truncated where it
   stated its answer, so no later rule guesses one.
2. "The answer is X" / "The final answer is X" (case-insensitive, an optional colon): the last
   such X, up to the end of its sentence or line, with surrounding ``$`` and a final period
   removed.
3. GSM8K's ``#### N``: the last N, thousands separators removed (``#### 1,234`` -> ``1234``).
4. Fallback (``fallback_last_number=True``, the default): the last number in the text
   (``-3``, ``2.5``, ``1,234`` -> ``1234``). Pass ``False`` to get ``None`` instead.

Answers are returned as written (LaTeX kept); equivalence is :mod:`search.grading`'s job.
"""

from __future__ import annotations

import re

# the final step a gold solution is written with (the arithmetic world's, GSM8K's gold steps):
# rule 1 reads it back
ANSWER_STEP = "The answer is \\boxed{{{value}}}."

_BOX_COMMANDS = ("\\boxed", "\\fbox")
# "answer is" at a word boundary, then the answer up to the end of the sentence or line. A
# period ends the answer only when followed by whitespace or the end, so 3.5 stays whole.
_ANSWER_IS = re.compile(
    r"\b(?:final\s+answer|answer)\s+is\s*:?\s*(?P<answer>.+?)\s*(?:\.(?=\s|$)|\n|$)",
    re.IGNORECASE,
)
_HASHES = re.compile(r"####\s*(?P<answer>[^\n]*?)\s*$", re.MULTILINE)
# Thousands separators only in groups of three, so "1,2" is two numbers, not 12.
_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` in ``text``.

    ``None`` when there is no box, when the last box is never closed, or when it is empty.
    ``\\boxed 5`` (no braces) gives the single token after the space.
    """
    start, command = max((text.rfind(name), name) for name in _BOX_COMMANDS)
    if start < 0:
        return None
    rest = text[start + len(command) :]
    if not rest.startswith("{"):
        if rest[:1] == " ":
            token = rest.strip().split(maxsplit=1)
            content = token[0].rstrip(".,;$") if token else ""
            return content or None
        return None
    depth = 0
    for index, char in enumerate(rest):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return rest[1:index].strip() or None
    return None


def _has_box(text: str) -> bool:
    return any(name in text for name in _BOX_COMMANDS)


def _clean(answer: str) -> str:
    answer = answer.strip()
    if len(answer) >= 2 and answer.startswith("$") and answer.endswith("$"):
        answer = answer.strip("$").strip()
    return answer.rstrip(".").strip()


def extract_answer(text: str, fallback_last_number: bool = True) -> str | None:
    """The final answer stated in ``text``, by the rules in the module docstring.

    ``None`` when no rule applies, or when the last ``\\boxed`` is unfinished.
    """
    if _has_box(text):
        return last_boxed(text)
    stated = [_clean(match.group("answer")) for match in _ANSWER_IS.finditer(text)]
    stated = [answer for answer in stated if answer]
    if stated:
        return stated[-1]
    hashes = [match.group("answer") for match in _HASHES.finditer(text)]
    hashes = [answer.replace(",", "").strip() for answer in hashes if answer.strip()]
    if hashes:
        return hashes[-1]
    if fallback_last_number:
        numbers = _NUMBER.findall(text)
        if numbers:
            return str(numbers[-1]).replace(",", "")
    return None
