"""JSON Lines on disk: one home for reading inputs, resumable append-only logs and rewrites.

Every line is one JSON object. Whatever reads a file names the file and line of any bad line
(non-UTF-8 bytes, malformed JSON, not an object), so a corrupt input never surfaces as a bare
``UnicodeDecodeError`` or ``KeyError`` later.

Runs that write as they go (``results.jsonl``, ``samples.jsonl``, ``records.jsonl``) use
``JsonlLog``: each batch is appended, flushed and fsynced, so a killed run loses at most the
batch it was writing. The only damage a kill can do is a torn last line (no newline, not
parseable); reopening the log cuts it off and logs it, and the record is produced again. A bad
line anywhere else was not made by a kill, so it is refused, naming the file and the line.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.inputs import InputError

log = logging.getLogger(__name__)


class JsonlError(InputError):
    """A bad line of a JSON Lines file; ``str`` starts with ``path:line``. ``problem`` and
    ``fix`` are the message's two parts (for a reader that words its own fix around them)."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        problem, _, fix = message.partition("; fix: ")
        self.problem = problem
        self.fix = fix or None


class _NotJson(ValueError):
    pass


def _no_constant(name: str) -> Any:
    """``json.loads`` accepts NaN and Infinity, which JSON does not: refuse them."""
    raise _NotJson(name)


def parse_line(path: Path, number: int, line: bytes) -> dict[str, Any] | None:
    """The object on line ``number`` of ``path`` (``None`` for a blank line)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        bad = line[error.start : error.start + 1]
        raise JsonlError(
            path,
            number,
            f"expected UTF-8 text, got byte 0x{bad.hex()} at column {error.start + 1}; "
            "fix: re-save the file as UTF-8",
        ) from None
    if not text.strip():
        return None
    try:
        row = json.loads(text, parse_constant=_no_constant)
    except _NotJson as error:
        raise JsonlError(
            path, number, f"expected JSON, got {error} (not a JSON number); fix: a number or null"
        ) from None
    except json.JSONDecodeError as error:
        if number == 1 and text.strip() == "{" and Path(path).suffix == ".json":
            raise JsonlError(
                path,
                number,
                "expected JSON Lines (one JSON object per line), got a JSON document spread "
                "over lines (a .json file?); fix: one object per line, e.g. "
                f"`jq -c . {path} > {_lines_name(Path(path))}`",
            ) from None
        if number == 1 and text.lstrip().startswith("["):
            raise JsonlError(
                path,
                number,
                "expected JSON Lines (one JSON object per line), got a file that opens a JSON "
                "array (a .json file?); fix: write one object per line, e.g. "
                f"`jq -c '.[]' {path} > {_lines_name(Path(path))}`",
            ) from None
        raise JsonlError(
            path,
            number,
            f"expected one JSON object per line, got malformed JSON ({error.msg} at column "
            f"{error.colno}); fix: repair or delete that line",
        ) from None
    if not isinstance(row, dict):
        raise JsonlError(
            path,
            number,
            f"expected a JSON object, got {type(row).__name__} {text.strip()[:60]!r}; "
            "fix: one object per line",
        )
    return row


@dataclass(frozen=True, slots=True)
class _Parsed:
    rows: list[tuple[int, dict[str, Any]]]  # (line number, object)
    good_end: int  # bytes up to the end of the last good line
    torn_line: int | None  # number of a torn last line (no newline, not parseable)
    needs_newline: bool  # the last line parsed but has no newline


def _parse(path: Path, raw: bytes) -> _Parsed:
    parts = raw.split(b"\n")  # JSON escapes newlines inside strings
    rows: list[tuple[int, dict[str, Any]]] = []
    offset = 0
    for number, line in enumerate(parts[:-1], start=1):
        row = parse_line(path, number, line)
        if row is not None:
            rows.append((number, row))
        offset += len(line) + 1
    tail, number = parts[-1], len(parts)
    if not tail.strip():
        return _Parsed(rows, len(raw), None, False)
    try:
        row = parse_line(path, number, tail)
    except JsonlError:
        return _Parsed(rows, offset, number, False)
    assert row is not None
    rows.append((number, row))
    return _Parsed(rows, len(raw), None, True)


def read_log(path: Path) -> list[dict[str, Any]]:
    """The records a ``JsonlLog`` on ``path`` would resume from (a torn last line left out),
    read without repairing the file: for a reader beside the run that writes it (its Ctrl-C
    line). A missing file has none; any other bad line raises ``JsonlError``."""
    path = Path(path)
    if not path.exists():
        return []
    return [row for _, row in _parse(path, path.read_bytes()).rows]


def read_jsonl_numbered(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of every non-blank line; a missing file has none. A torn
    last line (a killed run's) is refused: rerunning the stage that wrote it repairs it."""
    path = Path(path)
    if not path.exists():
        return []
    if path.is_dir():
        raise IsADirectoryError(f"expected a JSON Lines file at {path}, got a directory")
    parsed = _parse(path, path.read_bytes())
    if parsed.torn_line is not None:
        raise JsonlError(
            path,
            parsed.torn_line,
            "the last line is incomplete (a run killed while writing it); fix: rerun the "
            "command that writes this file (it cuts the line off and redoes it) or delete "
            "that line",
        )
    return parsed.rows


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every object of a JSON Lines file; a missing file reads as none."""
    return [row for _, row in read_jsonl_numbered(path)]


def _dump(row: dict[str, Any]) -> str:
    try:  # allow_nan=False: NaN is not JSON, and the next reader would refuse the file
        return json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError as error:
        raise ValueError(
            f"expected finite numbers in a record, got NaN or infinity ({error}) in "
            f"{str(row)[:200]}"
        ) from None


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Replace ``path`` with ``rows`` atomically (written aside, then renamed). A write that
    fails (a full disk) leaves ``path`` as it was and no copy beside it, and raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(_dump(row))
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class JsonlLog:
    """An append-only JSON Lines file that a killed run resumes from.

    Opening it reads back every record (``records``, ``line_numbers``); a torn last line is
    cut off (logged), a complete last line missing its newline gets one, any other bad line
    is refused naming ``file:line``. ``append`` writes one batch, flushes and fsyncs it.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: list[dict[str, Any]] = []
        self.line_numbers: list[int] = []
        self._num_lines = 0
        if not self.path.exists():
            return
        raw = self.path.read_bytes()
        parsed = _parse(self.path, raw)
        self.line_numbers = [number for number, _ in parsed.rows]
        self.records = [row for _, row in parsed.rows]
        self._num_lines = raw[: parsed.good_end].count(b"\n") + int(parsed.needs_newline)
        if parsed.torn_line is not None:
            log.warning(
                "%s:%d: cut off a torn last line (a run was killed while writing it); "
                "its record will be produced again",
                self.path,
                parsed.torn_line,
            )
            with self.path.open("r+b") as handle:
                handle.truncate(parsed.good_end)
        elif parsed.needs_newline:
            with self.path.open("ab") as handle:
                handle.write(b"\n")

    def append(self, rows: Iterable[dict[str, Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        text = "".join(_dump(row) for row in rows)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        self.line_numbers.extend(range(self._num_lines + 1, self._num_lines + 1 + len(rows)))
        self._num_lines += len(rows)
        self.records.extend(rows)

    def reorder(self, key: Callable[[dict[str, Any]], Any]) -> bool:
        """Put the records in the order of ``key`` (stable: ties keep their order), so that a
        run whose batches finished out of order (on Ray workers) ends with the file a run in
        one process writes. The file is replaced whole (``write_jsonl``: a copy written and
        fsynced beside it, then renamed over it): a kill leaves the old order or the new one,
        never half of each, and a write that fails (a full disk) leaves the old order and
        raises, saying so and how to finish. Returns whether the order changed (an ordered
        file is not rewritten)."""
        order = sorted(range(len(self.records)), key=lambda i: key(self.records[i]))
        if order == list(range(len(order))):
            return False
        records = [self.records[i] for i in order]
        try:
            write_jsonl(self.path, records)
        except OSError as error:  # e.g. a full disk: every record is there, out of order
            full = error.errno in (errno.ENOSPC, errno.EDQUOT)
            raise OSError(
                error.errno,
                f"could not put the {len(records)} records of {self.path} in order "
                f"({error.strerror or error}); they are all in it, in the order they finished; "
                f"fix: {'free space' if full else 'remove the cause'}, then rerun the same "
                "command with the same output directory (it resumes with nothing left to do "
                "and puts them in order)",
            ) from error
        log.info(
            "%s: its %d records put in order (written as they finished)", self.path, len(records)
        )
        self.records = records
        self.line_numbers = list(range(1, len(records) + 1))
        self._num_lines = len(records)
        return True


def _lines_name(path: Path) -> Path:
    """Where a JSON Lines copy of ``path`` may go: the current directory (never beside
    ``path``, which may be shared, read-only data), under a name of its own: never ``path``
    (a shell would empty it before reading it)."""
    return Path(path.stem + ".lines.jsonl")  # not a name a file of yours is likely to have
