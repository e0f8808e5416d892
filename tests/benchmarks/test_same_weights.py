"""benchmarks/same_weights.py: do model directories and result files name the same weights?"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import same_weights  # noqa: E402


def _model(folder: Path, weights: bytes) -> Path:
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def _run(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> int:
    monkeypatch.setattr(sys, "argv", ["same_weights.py", *argv])
    try:
        same_weights.main()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_a_rebuild_matches_the_weights_a_result_file_was_run_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rebuilt = _model(tmp_path / "rebuilt", b"round 20")
    other = _model(tmp_path / "other", b"round 18")
    table = tmp_path / "table.json"
    digest = same_weights.weights_digest(rebuilt)
    table.write_text(json.dumps({"args": {"prm_sha256": digest}}))
    out = tmp_path / "out"
    argv = ["--name", "id", "--results-dir", str(out), "--model", f"make prm={rebuilt}"]
    assert _run(monkeypatch, [*argv, "--recorded", f"chosen={table}"]) == 0
    report = json.loads((out / "id.json").read_text())
    assert report["identical"] and [row["from"] for row in report["rows"]] == [
        "weights",
        "recorded",
    ]
    assert "byte for byte" in (out / "id.md").read_text()
    # other weights: the file says so and the exit status stops a shipping script
    assert _run(monkeypatch, [*argv, "--model", f"other={other}"]) == 1
    assert not json.loads((out / "id.json").read_text())["identical"]
    assert "expected the same weights everywhere, got make prm" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "expected at least two"),
        (["--model", "no-equals-sign"], "expected --model NAME=PATH"),
        (["--model", "x={absent}"], "expected a digest for every entry"),
        (["--recorded", "x={absent}"], "expected a result file at"),
    ],
)
def test_bad_entries_are_refused_with_the_fix(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    model = _model(tmp_path / "m", b"w")
    absent = str(tmp_path / "absent")
    extra = [value.format(absent=absent) for value in extra]
    argv = ["--name", "id", "--results-dir", str(tmp_path / "out"), "--model", f"m={model}"]
    assert _run(monkeypatch, [*argv, *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written
