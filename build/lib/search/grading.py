"""Answer equivalence: ``0.5 == \\frac{1}{2}``, ``3 == 3.0``, ``x = 3 == 3``, intervals, sets.

:func:`answers_match` first compares normalised strings (cheap, catches most agreeing answers),
then asks math-verify (``parse`` + ``verify``, sympy underneath). It never raises: parse or
verify errors and timeouts count as "not equal" and are logged at debug level.

Threads. math-verify bounds its work with ``signal.alarm``, which only works in the main thread
(elsewhere it raises ``ValueError``). In the main thread we pass ``timeout_s`` on; in any other
thread we call it with the timeout disabled (``parsing_timeout=None``, ``timeout_seconds=None``)
and rely on :func:`_is_risky`, a cheap guard applied in every thread (so the verdict does not
depend on the calling thread): answers known to stall sympy (long strings, power towers,
3+-digit exponents of symbolic expressions) are compared as normalised strings only. The
warning math-verify logs once about its disabled timeout is filtered out for that reason.
Parses are cached (``lru_cache``, keyed by answer text and timeout), which makes voting over
many samples with repeated answers cheap.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

MAX_VERIFY_CHARS = 200  # longer answers are compared as strings only

_SPACING = re.compile(r"\\[!,;: ]|\\(?:q?quad)\b|~")
_LEFT_RIGHT = re.compile(r"\\(?:left|right)\b")
_DEGREES = re.compile(r"\^\s*\{?\\circ\}?|°")
_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
_FRAC = re.compile(r"\\[dt]frac\b")
_POWER_TOWER = re.compile(r"(?:\^|\*\*)\s*\{?[\w.\\-]*(?:\^|\*\*)")
_HUGE_EXPONENT = re.compile(r"(?:\^|\*\*)\s*\{?\s*-?\d{4,}")
_BIG_EXPONENT = re.compile(r"(?:\^|\*\*)\s*\{?\s*-?\d{3,}")
_LATEX_COMMAND = re.compile(r"\\[a-zA-Z]+")


def normalise(answer: str) -> str:
    """A canonical string for the fast path: equal strings here mean equal answers.

    Only rewrites that cannot change the value: outer ``$`` and a final period, spacing
    commands, ``\\left``/``\\right``, ``\\dfrac``/``\\tfrac`` -> ``\\frac``, degree signs,
    ``\\text{X}`` -> ``X``, and all whitespace.
    """
    text = answer.strip()
    if len(text) >= 2 and text.startswith("$") and text.endswith("$"):
        text = text.strip("$")
    text = _SPACING.sub("", text)
    text = _LEFT_RIGHT.sub("", text)
    text = _FRAC.sub(r"\\frac", text)
    text = _DEGREES.sub("", text)
    text = _TEXT.sub(r"\1", text)
    text = "".join(text.split())
    return text.rstrip(".")


def _is_risky(answer: str) -> bool:
    """True for answers that can stall sympy for many seconds (see the module docstring)."""
    if (
        len(answer) > MAX_VERIFY_CHARS
        or _POWER_TOWER.search(answer)
        or _HUGE_EXPONENT.search(answer)
    ):
        return True
    has_symbol = re.search(r"[a-zA-Z]", _LATEX_COMMAND.sub("", answer)) is not None
    return has_symbol and _BIG_EXPONENT.search(answer) is not None


class _DropTimeoutDisabledWarning(logging.Filter):
    """math-verify warns once that a disabled timeout is the caller's job; here it is ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


@lru_cache(maxsize=1)
def _quiet_math_verify() -> None:
    for name in ("math_verify.parser", "math_verify.grader"):
        logging.getLogger(name).addFilter(_DropTimeoutDisabledWarning())


def _alarm_timeout(timeout_s: float) -> int | None:
    """math-verify's timeout argument: whole seconds in the main thread, else disabled."""
    if timeout_s <= 0 or threading.current_thread() is not threading.main_thread():
        _quiet_math_verify()
        return None
    return max(1, math.ceil(timeout_s))


@lru_cache(maxsize=8192)
def _parse_cached(answer: str, timeout: int | None) -> tuple[Any, ...]:
    from math_verify import parse
    from math_verify.errors import TimeoutException

    text = answer.strip()
    if len(text) >= 2 and text.startswith("$") and text.endswith("$"):
        text = text.strip("$")
    try:
        return tuple(parse(f"${text}$", parsing_timeout=timeout))  # type: ignore[arg-type]
    except (Exception, TimeoutException):
        log.debug("math-verify could not parse %r", answer, exc_info=True)
        return ()


def _parse(answer: str, timeout_s: float) -> tuple[Any, ...]:
    return _parse_cached(answer, _alarm_timeout(timeout_s))


def _verify(gold: tuple[Any, ...], prediction: tuple[Any, ...], timeout_s: float) -> bool:
    from math_verify import verify
    from math_verify.errors import TimeoutException

    try:
        return bool(verify(list(gold), list(prediction), timeout_seconds=_alarm_timeout(timeout_s)))
    except (Exception, TimeoutException):
        log.debug("math-verify could not compare %r with %r", gold, prediction, exc_info=True)
        return False


def answers_match(prediction: str | None, gold: str, timeout_s: float = 5.0) -> bool:
    """True when ``prediction`` is mathematically equivalent to ``gold``.

    ``gold`` is the reference (math-verify is not symmetric: ``gold="x=5"`` accepts ``5``).
    ``timeout_s`` bounds each math-verify parse and comparison, in the main thread only.
    Never raises; ``None``, empty and unparsable predictions are simply not equal.
    """
    if prediction is None:
        return False
    try:
        expected, got = normalise(gold), normalise(prediction)
        if not expected or not got:
            return False
        if expected == got:
            return True
        if _is_risky(gold) or _is_risky(prediction):
            log.debug("compared as strings only (risky for sympy): %r vs %r", prediction, gold)
            return False
        parsed_gold = _parse(gold, timeout_s)
        parsed_prediction = _parse(prediction, timeout_s)
        if not parsed_gold or not parsed_prediction:
            return False
        return _verify(parsed_gold, parsed_prediction, timeout_s)
    except Exception:
        log.debug("answers_match failed on %r vs %r", prediction, gold, exc_info=True)
        return False


def group_equivalent(answers: Sequence[str | None], timeout_s: float = 5.0) -> list[int]:
    """For each answer, the index of its equivalence class's representative.

    ``None`` and empty answers get -1 (no answer is in no class).

    The representative is the first answer of its class, so ``out[i] <= i`` and
    ``out[out[i]] == out[i]``. Answers with equal :func:`normalise` strings are grouped
    without math-verify; each remaining distinct answer is compared (as prediction) against
    the representatives found so far (as gold), first match wins. Used by majority and
    weighted voting: ``group_equivalent(["1/2", "0.5", None, "3"]) == [0, 0, -1, 3]``.
    """
    out: list[int] = []
    by_key: dict[str, int] = {}
    representatives: list[int] = []
    for index, answer in enumerate(answers):
        if answer is None or not normalise(answer):
            out.append(-1)
            continue
        key = normalise(answer)
        if key in by_key:
            out.append(by_key[key])
            continue
        representative = next(
            (
                rep
                for rep in representatives
                if answers_match(answer, answers[rep] or "", timeout_s=timeout_s)
            ),
            index,
        )
        if representative == index:
            representatives.append(index)
        by_key[key] = representative
        out.append(representative)
    return out
