"""benchmarks/label_quality.py: MC runs side by side, the judge's row once, each MC run's
rollouts per solution read from its usage log."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_cli  # noqa: E402
import label_quality  # noqa: E402

from prm.label.quality import LabelQuality  # noqa: E402


def quality(labeller: str, accuracy: float) -> LabelQuality:
    return LabelQuality(labeller, 4, 4, 1.0, accuracy, 1.0, 0.5, 1, 0.0, 0.0)


def test_runs_side_by_side(tmp_path: Path) -> None:
    usage = [{"solutions": 2, "rollouts": 10}, {"solutions": 2, "rollouts": 4}]
    (tmp_path / "usage.jsonl").write_text("".join(json.dumps(u) + "\n" for u in usage))
    full = {"num_rollouts": 8, "early_stop": False, "records": tmp_path / "records.jsonl"}
    early = {"num_rollouts": 8, "early_stop": True, "records": tmp_path / "none" / "r.jsonl"}
    rows = [quality("mc", 0.5), quality("calculator", 0.9), quality("consensus", 1.0)]
    lines = label_quality.table([(early, rows), (full, rows)]).splitlines()
    assert len(lines) == 2 + 5  # header, rule; mc, judge, consensus; mc, consensus
    assert sum("| calculator |" in line for line in lines) == 1
    assert lines[2].startswith("| early stop, right answers trusted | - | mc |")
    assert lines[5].startswith("| full | 3.50 | mc |")  # 14 rollouts over 4 solutions
    assert lines[6].startswith("| full | - | consensus |")


def refused(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """main() with ``argv`` must exit 2 before reading any sample: its message."""
    monkeypatch.setattr(label_quality, "RESULTS", Path("unused"))
    return bench_cli.refused(monkeypatch, capsys, label_quality, list(argv), "read_samples")


def test_missing_runs_name_the_command_that_makes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    samples, records = tmp_path / "samples.jsonl", tmp_path / "consensus" / "records.jsonl"
    argv = ["--samples", str(samples), "--consensus", str(records)]
    err = refused(monkeypatch, capsys, *argv)
    assert f"expected --samples {samples}" in err and "`make prm`" in err
    samples.write_text("")
    err = refused(monkeypatch, capsys, *argv)
    assert f"expected --consensus {records}" in err
    assert "`make prm`" in err and "`bash benchmarks/label_mc_modes.sh`" in err
    records.parent.mkdir()
    records.write_text("")
    err = refused(monkeypatch, capsys, *argv)
    assert "consensus/fingerprint.json" in err and "`make prm`" in err
    assert "pass the records.jsonl" not in err


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_limit_below_one_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], limit: str
) -> None:
    err = refused(monkeypatch, capsys, "--limit", limit)
    assert f"expected --limit >= 1 (or no --limit: every sample), got {limit}" in err
