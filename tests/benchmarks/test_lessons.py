"""benchmarks/lessons.py: every variant is checked before any model loads; soft labels are
accepted only from a full-mode MC run (or a consensus of one)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import lessons  # noqa: E402


def labels_dir(tmp_path: Path, name: str, labeller: Mapping[str, object]) -> Path:
    run = tmp_path / name
    run.mkdir()
    (run / "stepwise.jsonl").write_text("")
    fingerprint = {"labeller": dict(labeller), "policy": {"model": "verifier"}}
    (run / "fingerprint.json").write_text(json.dumps(fingerprint))
    return run


def test_soft_labels_need_full_mode_mc(tmp_path: Path) -> None:
    full = labels_dir(tmp_path, "mc_full", {"name": "mc", "num_rollouts": 8, "early_stop": False})
    labels_dir(tmp_path, "mc", {"name": "mc", "num_rollouts": 8, "early_stop": True})
    consensus = {"name": "consensus", "mc_records": str(full / "records.jsonl")}
    labels_dir(tmp_path, "consensus_full", consensus)
    labels_dir(tmp_path, "calculator", {"name": "calculator"})
    for variant in ("mc_full:soft", "consensus_full:soft", "mc:hard", "calculator:hard"):
        lessons.check_variant(tmp_path, variant)
    with pytest.raises(ValueError, match="early-stop MC"):
        lessons.check_variant(tmp_path, "mc:soft")
    with pytest.raises(ValueError, match="no MC labels"):
        lessons.check_variant(tmp_path, "calculator:soft")


def test_unknown_loss_and_missing_labels_are_named(tmp_path: Path) -> None:
    labels_dir(tmp_path, "mc", {"name": "mc", "num_rollouts": 8, "early_stop": True})
    with pytest.raises(ValueError, match="loss hard or soft"):
        lessons.check_variant(tmp_path, "mc:medium")
    with pytest.raises(FileNotFoundError, match="make prm"):
        lessons.check_variant(tmp_path, "judge:hard")


def test_rerender_reads_the_mc_column_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels_dir(tmp_path, "mc", {"name": "mc", "num_rollouts": 8, "early_stop": True})
    labels_dir(tmp_path, "calculator", {"name": "calculator"})
    (tmp_path / "bench.json").write_text("[]")
    monkeypatch.setattr(lessons, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(lessons, "load_subset", lambda path: [None] * 3)
    args = {"problems": 2, "n": 4, "steps": 5, "batch_size": 8, "init": "base"}
    args |= {"labels": str(tmp_path), "processbench": str(tmp_path / "bench.json")}
    scores = {"f1": 0.5, "bon_min": 0.25, "bon_prod": 0.5, "bon_last": None}
    rows = [
        {"labels": name, "mc": "stale", "loss": "hard", "train_solutions": 7, **scores}
        for name in ("mc", "calculator")
    ]
    (tmp_path / "results").mkdir()
    report = {"args": args, "rows": rows, "majority": 0.5}
    (tmp_path / "results" / "lessons.json").write_text(json.dumps(report))
    lessons.rerender()
    text = (tmp_path / "results" / "lessons.md").read_text()
    assert "| mc | early stop, right answers trusted | hard | 7 | 50.0 | 25.0 | 50.0 | - |" in text
    assert "| calculator | - | hard | 7 |" in text and "(3 samples)" in text
    assert "stale" not in (tmp_path / "results" / "lessons.json").read_text()
