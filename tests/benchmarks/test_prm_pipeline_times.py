"""benchmarks/prm_pipeline_times.py: which run a stage table reads its sampling and labels from."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import prm_pipeline_times  # noqa: E402


def train_only(run: Path, train_data: str) -> Path:
    (run / "model").mkdir(parents=True)
    log = {"config": {"train_data": train_data}}
    (run / "model" / "training_log.json").write_text(json.dumps(log))
    return run


def test_a_training_only_run_reads_its_labels_run(tmp_path: Path) -> None:
    full = tmp_path / "prm-e2e"
    (full / "samples").mkdir(parents=True)
    assert prm_pipeline_times.labels_run(full) == full  # a full run: its own
    labels = str(full / "labels" / "consensus" / "stepwise.jsonl")
    assert prm_pipeline_times.labels_run(train_only(tmp_path / "bf16", labels)) == full
    stray = train_only(tmp_path / "other", str(tmp_path / "data.jsonl"))
    with pytest.raises(SystemExit, match=r"expected .*other/samples.*fix: --run"):
        prm_pipeline_times.labels_run(stray)
