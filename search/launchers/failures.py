"""A Ray worker's failure, reported to the user as one line.

Ray hands the driver a worker's exception wrapped in a ``RayTaskError`` whose text is the
worker's whole traceback, and without the exception's ``__cause__`` chain (lost on the way),
so the driver could no longer tell a model server's error wrapped by Hydra's ``instantiate``
from a bug. The worker therefore sorts its own failure (``describe_failure``) before sending
it: a model server's error (``search.remote.ServerError``) or a bad input or setting (an
``InputError``, or a check of this project naming its fix) keeps its one-line message, and
anything else is a bug whose traceback is kept. The driver (``raise_failure``) logs the line
(and a bug's traceback) to the run's log and raises it as a ``ServerError``, an
``InputError`` or a ``RuntimeError``, which the entry points print as ``error: <line>``
(a bug keeps its traceback): ``Ray worker N (SearchWorker) failed: <cause>; <resume hint>``.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from enum import Enum
from typing import NoReturn

from search.inputs import InputError, cause_chain, is_input_problem
from search.remote import ServerError, server_error

log = logging.getLogger(__name__)
MAX_MESSAGE_CHARS = 2000


class FailureKind(Enum):
    server = "server"  # a model server's error: one line
    input = "input"  # a bad input or setting, whose message names the fix: one line
    bug = "bug"  # anything else: its traceback is kept


@dataclass(frozen=True)
class WorkerFailure:
    """What went wrong in a worker, sent to the driver as a value (picklable): ``message``
    the cause in one line, ``traceback`` the worker's traceback, chained causes included."""

    kind: FailureKind
    message: str
    traceback: str


def one_line(text: str) -> str:
    """``text`` with its line breaks and runs of spaces made single spaces (cut if long)."""
    line = " ".join(text.split())
    return line if len(line) <= MAX_MESSAGE_CHARS else line[: MAX_MESSAGE_CHARS - 3] + "..."


def describe_failure(error: BaseException) -> WorkerFailure:
    """Sort ``error`` (raised in a worker, its chain intact) into a ``WorkerFailure``."""
    text = "".join(traceback.format_exception(error))
    remote = server_error(error)
    if remote is not None:
        return WorkerFailure(FailureKind.server, one_line(str(remote)), text)
    for candidate in cause_chain(error):
        if is_input_problem(candidate, require_fix=True):
            return WorkerFailure(FailureKind.input, one_line(str(candidate)), text)
    return WorkerFailure(FailureKind.bug, one_line(f"{type(error).__name__}: {error}"), text)


def raise_failure(failure: WorkerFailure, worker: str, hint: str) -> NoReturn:
    """Raise ``Ray worker N (Class) failed: <cause>; <hint>`` (``worker`` names the
    worker): a ``ServerError`` or an ``InputError`` (printed as one line by the entry points,
    which also write it to the run's log), or for a bug a ``RuntimeError``, the worker's
    traceback logged above it."""
    line = f"{worker} failed: {failure.message}" + (f"; {hint}" if hint else "")
    if failure.kind is FailureKind.bug:
        log.error("%s\n%s's traceback:\n%s", line, worker, failure.traceback.rstrip())
        raise RuntimeError(line)
    # the entry point prints the line and writes it to the run's log (search.inputs.stop_with)
    log.debug("%s's traceback:\n%s", worker, failure.traceback.rstrip())
    if failure.kind is FailureKind.server:
        raise ServerError(line)
    raise InputError(line)
