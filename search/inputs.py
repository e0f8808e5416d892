"""Checking what a user hands in, before any model loads.

Every reader of user files (datasets, samples, labels, stepwise data, outputs to re-rank)
reports a bad value as an ``InputError`` that names where it is (``file:line``), the key,
what was expected, what was found, and the fix. The command-line entry points print such
an error as one line and exit with status 1 (``exit_on_input_error``), instead of a
traceback ending in ``KeyError: 'labels'`` after a model has loaded.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn


class InputError(ValueError):
    """A bad input or setting, found before or instead of doing the work."""


@contextmanager
def exit_on_input_error() -> Iterator[None]:
    """At an entry point: an ``InputError``, or a check of this project that raised a
    ``ValueError`` or ``FileNotFoundError`` naming its fix (a config's own checks), becomes
    ``error: <message>`` and exit status 1; anything else keeps its traceback. The Hydra run
    directory of the failed run is removed when it holds nothing but Hydra's own files
    (``search.rundir.discard_unused_run_dir``), so bad inputs leave no empty run
    directories behind."""
    try:
        yield
    except Exception as error:
        if not is_input_problem(error, require_fix=True):
            raise
        stop_with(f"error: {error}")


def stop_with(line: str) -> NoReturn:
    """End an entry point with ``line`` on stderr and exit status 1. The run's Hydra
    directory is removed when nothing in it is worth keeping
    (``search.rundir.discard_unused_run_dir``); else ``line`` is also written to the run's
    log files (not the console again), so the log says how the run ended."""
    from search.rundir import discard_unused_run_dir

    if discard_unused_run_dir() is None:
        record = logging.LogRecord("search", logging.ERROR, __file__, 0, line, None, None)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.FileHandler):
                handler.handle(record)
    raise SystemExit(line) from None


@contextmanager
def as_input_error(what: str) -> Iterator[None]:
    """Around the reading of a user's setting or file before any model loads (a dataset): a
    missing file, an unreachable hub, or a ``ValueError`` of this project's checks (its
    message names the fix) is an ``InputError`` naming ``what``, also when wrapped by Hydra's
    ``instantiate``. Anything else (a bug, in this package or in a user's class) keeps its
    traceback."""
    try:
        with input_errors_unwrapped():
            yield
    except InputError:
        raise
    except Exception as error:
        for candidate in (error, innermost_cause(error)):
            if is_input_problem(candidate):
                raise InputError(f"{what}: {candidate}") from error
        raise


def is_input_problem(error: BaseException | None, require_fix: bool = False) -> bool:
    """An ``InputError``, a missing file, an unreachable server or a check of this project
    (a ``ValueError`` whose message names its fix); ``require_fix``: the file or server error
    must name a fix too (at an entry point, where a bare one may be a bug's)."""
    if isinstance(error, InputError):
        return True
    if isinstance(error, FileNotFoundError | ConnectionError):
        return not require_fix or "fix:" in str(error)
    return isinstance(error, ValueError) and "fix:" in str(error)


def cause_chain(error: BaseException) -> list[BaseException]:
    """``error`` and what it was raised from, in turn (``__cause__``; not ``__context__``: a
    bug raised while handling an input error is a bug)."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__
    return chain


def innermost_cause(error: BaseException) -> BaseException | None:
    """The last exception of ``error``'s ``__cause__`` chain (what Hydra's ``instantiate``
    wrapped), or ``None`` when nothing is chained."""
    chain = cause_chain(error)
    return chain[-1] if len(chain) > 1 else None


@contextmanager
def input_errors_unwrapped(what: str | None = None) -> Iterator[None]:
    """Around building a component (``instantiate``): an ``InputError`` raised inside (e.g. a
    ``max_length`` above the model's context) comes out as itself, not in Hydra's wrapper,
    so the entry point prints it as one line. With ``what`` (the component, e.g.
    ``"policy"``), any other input problem that names its fix (``is_input_problem``: a check's
    ``ValueError``, e.g. a constructor's bound, a missing file, an unreachable hub) comes out
    as an ``InputError`` naming ``what`` too. Any other
    error (a bug, in this package or in a user's class) propagates unchanged."""
    try:
        yield
    except InputError:
        raise
    except Exception as error:
        cause = innermost_cause(error)
        if isinstance(cause, InputError):
            raise cause from None
        if what is not None:
            for candidate in (error, cause):
                if is_input_problem(candidate, require_fix=True):
                    raise InputError(f"{what}: {candidate}") from error
        raise


@contextmanager
def exit_on_server_error() -> Iterator[None]:
    """At an entry point: an error caused by a model server (``search.remote.ServerError``,
    also when wrapped, e.g. by Hydra's ``instantiate``) becomes ``error: <message>`` and exit
    status 1, one line instead of a traceback (and a run directory with nothing of the run
    in it is removed, as by ``exit_on_input_error``); any other error propagates."""
    try:
        yield
    except Exception as error:
        from search.remote import server_error

        remote = server_error(error)
        if remote is None:
            raise
        stop_with(f"error: {remote}")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def require(row: Mapping[str, Any], key: str, where: str) -> Any:
    """``row[key]``, or an error naming ``where`` (e.g. ``file:line``) and the keys present."""
    if key not in row:
        raise InputError(
            f"{where}: expected key {key!r}, got keys {sorted(row)[:12]}; fix: add {key!r} "
            "to every row (or point the command at the right file)"
        )
    return row[key]


def require_str(row: Mapping[str, Any], key: str, where: str) -> str:
    value = require(row, key, where)
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise InputError(f"{where}: expected {key!r} to be a string, got {_kind(value)}")
    return str(value)


def require_int(row: Mapping[str, Any], key: str, where: str) -> int:
    value = require(row, key, where)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f"{where}: expected {key!r} to be an integer, got {_kind(value)}")
    return value


def require_bool(row: Mapping[str, Any], key: str, where: str) -> bool:
    value = require(row, key, where)
    if not isinstance(value, bool):
        raise InputError(f"{where}: expected {key!r} to be true or false, got {_kind(value)}")
    return value


def require_str_list(row: Mapping[str, Any], key: str, where: str) -> list[str]:
    """A list of strings; a bare string (which Python would split into characters) is an
    error, not a list of one-character steps."""
    value = require(row, key, where)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        got = _kind(value)
        if isinstance(value, list):
            got = "a list holding " + ", ".join(sorted({_kind(item) for item in value}))
        raise InputError(
            f"{where}: expected {key!r} to be a list of strings, got {got}; fix: one string "
            'per item, e.g. ["step one", "step two"]'
        )
    return value


class NotProbability(ValueError):
    """``probability``'s refusal; ``out_of_range``: a number, outside [0, 1] (or NaN)."""

    def __init__(self, message: str, out_of_range: bool) -> None:
        super().__init__(message)
        self.out_of_range = out_of_range


def probability(value: Any, what: str) -> float:
    """``value`` as a finite number in [0, 1] (a soft label, a score); else ``NotProbability``
    saying what ``what`` got, without a fix (each caller words its own)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NotProbability(f"expected {what} to be a number in [0, 1], got {_kind(value)}", False)
    number = float(value)
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        raise NotProbability(f"expected {what} in [0, 1], got {number}", True)
    return number


def require_probability(value: Any, what: str, where: str) -> float:
    """``probability`` of a training label, refused naming ``where``."""
    try:
        return probability(value, what)
    except NotProbability as error:
        fix = "; fix: a probability (a soft label is the fraction of right completions)"
        raise InputError(f"{where}: {error}{fix if error.out_of_range else ''}") from None


def require_probabilities(row: Mapping[str, Any], key: str, where: str) -> list[float]:
    value = require(row, key, where)
    if not isinstance(value, list):
        raise InputError(f"{where}: expected {key!r} to be a list of numbers, got {_kind(value)}")
    return [require_probability(item, f"{key}[{index}]", where) for index, item in enumerate(value)]


def check_writable_dir(directory: Path, what: str) -> None:
    """``directory`` exists or can be made, and can be written: the nearest existing
    ancestor must be a writable directory (not a regular file)."""
    directory = Path(directory).expanduser()
    ancestor = directory
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(
            f"expected {what} to be a directory, got {directory}, under the regular file "
            f"{ancestor}; fix: choose a path that is not inside a file"
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(
            f"expected {what} ({directory}) to be writable, got no write permission on "
            f"{ancestor}; fix: choose a writable path"
        )
