"""One JSON Lines module: bad lines named by file:line, torn last lines repaired on resume."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from search.jsonl import (
    JsonlError,
    JsonlLog,
    read_jsonl,
    read_jsonl_numbered,
    read_log,
    write_jsonl,
)

ROWS = [{"id": str(i), "text": f"row {i} ü"} for i in range(4)]


def _write(path: Path, rows: list[dict[str, str]]) -> bytes:
    raw = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
    path.write_bytes(raw)
    return raw


def test_log_appends_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "log.jsonl"
    log = JsonlLog(path)
    assert log.records == []
    log.append(ROWS[:2])
    log.append([])
    log.append(ROWS[2:])
    again = JsonlLog(path)
    assert again.records == ROWS
    assert again.line_numbers == [1, 2, 3, 4]
    assert read_jsonl(path) == ROWS


def test_torn_last_line_is_cut_on_open(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    whole = _write(path, ROWS[:3])
    torn = json.dumps(ROWS[3]).encode()
    path.write_bytes(whole + torn[: len(torn) // 2])
    with pytest.raises(JsonlError, match=r"log.jsonl:4: the last line is incomplete"):
        read_jsonl(path)  # a reader refuses it and says how to repair it
    log = JsonlLog(path)  # the writer repairs it
    assert log.records == ROWS[:3]
    assert path.read_bytes() == whole
    log.append(ROWS[3:])
    assert read_jsonl(path) == ROWS


def test_complete_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(_write(path, ROWS[:2]) + json.dumps(ROWS[2]).encode())
    assert read_jsonl(path) == ROWS[:3]
    log = JsonlLog(path)
    log.append(ROWS[3:])
    assert read_jsonl(path) == ROWS
    assert JsonlLog(path).line_numbers == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (b"{not json\n", "malformed JSON"),
        (b'"just a string"\n', "expected a JSON object, got str"),
        (b"[1, 2]\n", "expected a JSON object, got list"),
        (b'{"id": "\xff\xfe"}\n', "expected UTF-8 text, got byte 0xff at column 9"),
    ],
)
def test_bad_middle_line_is_refused_naming_file_and_line(
    bad: bytes, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "log.jsonl"
    lines = _write(path, ROWS).splitlines(keepends=True)
    lines[1] = bad
    path.write_bytes(b"".join(lines))
    for read in (read_jsonl, JsonlLog):
        with pytest.raises(JsonlError, match=rf"log.jsonl:2: .*{message}") as caught:
            read(path)
        assert caught.value.line == 2 and caught.value.path == path
    assert path.read_bytes() == b"".join(lines)  # nothing was cut


def test_blank_lines_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "gaps.jsonl"
    path.write_text('{"a": 1}\n\n  \n{"a": 2}\n')
    assert read_jsonl_numbered(path) == [(1, {"a": 1}), (4, {"a": 2})]
    assert read_jsonl(tmp_path / "missing.jsonl") == []
    with pytest.raises(IsADirectoryError, match="got a directory"):
        read_jsonl(tmp_path)


def test_nan_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    with pytest.raises(ValueError, match="NaN or infinity"):
        JsonlLog(path).append([{"score": float("nan")}])
    with pytest.raises(ValueError, match="NaN or infinity"):
        write_jsonl(tmp_path / "out.jsonl", [{"score": float("inf")}])
    assert not path.exists() or read_jsonl(path) == []


def test_write_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    write_jsonl(path, ROWS)
    write_jsonl(path, ROWS[:1])
    assert read_jsonl(path) == ROWS[:1]
    assert not (tmp_path / "out.jsonl.tmp").exists()


def test_reorder_puts_records_in_order_and_leaves_an_ordered_file_alone(tmp_path: Path) -> None:
    """A log whose batches landed out of order ends in the order of the key (ties keep theirs),
    as the file an in-order run writes; the log appends after it as before."""
    path = tmp_path / "log.jsonl"
    rows = [{"id": i, "part": part} for i, part in [(2, "a"), (0, "a"), (1, "a"), (0, "b")]]
    log = JsonlLog(path)
    log.append(rows[:2])
    log.append(rows[2:])
    in_order = tmp_path / "in_order.jsonl"
    JsonlLog(in_order).append(sorted(rows, key=lambda row: row["id"]))

    assert log.reorder(lambda row: row["id"]) is True
    assert path.read_bytes() == in_order.read_bytes()  # (0, a) before (0, b): stable
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in_order.jsonl", "log.jsonl"]
    assert JsonlLog(path).records == log.records
    before = path.stat().st_ino  # a rewrite renames a new file over it: another inode
    assert log.reorder(lambda row: row["id"]) is False and path.stat().st_ino == before
    log.append([{"id": 3, "part": "a"}])
    reopened = JsonlLog(path)
    assert [row["id"] for row in reopened.records] == [0, 0, 1, 2, 3]
    assert reopened.line_numbers == [1, 2, 3, 4, 5] == log.line_numbers


def test_a_reorder_that_cannot_write_keeps_the_file_and_says_how_to_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk at the end of a run: the records stay as they finished, nothing is left
    beside them, the error names the fix (the run stops: a pipeline's next stage must not read
    them out of order), and a rerun with space puts them in order."""
    import errno

    import search.jsonl as jsonl_module

    path = tmp_path / "log.jsonl"
    log = JsonlLog(path)
    log.append([{"id": 2}, {"id": 0}])
    log.append([{"id": 1}])
    raw = path.read_bytes()
    real_dump = jsonl_module._dump

    def failing(code: int) -> Any:
        written: list[str] = []

        def dump(row: dict[str, Any]) -> str:
            if written:  # the first row goes to the copy, the second fails
                raise OSError(code, os.strerror(code))
            written.append(real_dump(row))
            return written[-1]

        return dump

    monkeypatch.setattr(jsonl_module, "_dump", failing(errno.ENOSPC))
    with pytest.raises(
        OSError,
        match=r"could not put the 3 records of .*log\.jsonl in order "
        r"\(No space left on device\).*fix: free space, then rerun",
    ) as caught:
        log.reorder(lambda row: row["id"])
    assert caught.value.errno == errno.ENOSPC
    assert path.read_bytes() == raw and [p.name for p in tmp_path.iterdir()] == ["log.jsonl"]
    assert [row["id"] for row in log.records] == [2, 0, 1]
    monkeypatch.setattr(jsonl_module, "_dump", failing(errno.EACCES))
    with pytest.raises(OSError, match="fix: remove the cause, then rerun"):
        log.reorder(lambda row: row["id"])
    monkeypatch.setattr(jsonl_module, "_dump", real_dump)
    assert JsonlLog(path).reorder(lambda row: row["id"]) is True
    assert [row["id"] for row in JsonlLog(path).records] == [0, 1, 2]


def test_read_log_leaves_out_a_torn_line_without_cutting_it(tmp_path: Path) -> None:
    """What a resume would read, for a reader beside the writer: the file stays as it is."""
    path = tmp_path / "log.jsonl"
    raw = b'{"id": 1}\n{"id": 2}\n{"id": 3, "par'
    path.write_bytes(raw)
    assert read_log(path) == [{"id": 1}, {"id": 2}]
    assert path.read_bytes() == raw
    assert read_log(tmp_path / "missing.jsonl") == []
    path.write_bytes(b'{"id": 1}\nnot json\n{"id": 3}\n')
    with pytest.raises(JsonlError, match="log.jsonl:2"):
        read_log(path)
