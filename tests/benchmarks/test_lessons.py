"""benchmarks/lessons.py: every variant is checked before any model loads; soft labels are
accepted only from a full-mode MC run (or a consensus of one)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_cli  # noqa: E402
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


def test_rerender_needs_no_labels_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh clone has lessons.json but not the (absolute) labels runs it names."""
    monkeypatch.setattr(lessons, "RESULTS", tmp_path)
    args = {"problems": 2, "n": 4, "steps": 5, "batch_size": 8, "init": "base"}
    args |= {"labels": str(tmp_path / "gone"), "processbench": str(tmp_path / "gone.json")}
    row = {"labels": "mc", "mc": "full", "loss": "soft", "train_solutions": 7, "f1": 0.5}
    row |= {"bon_min": 0.25, "bon_prod": 0.5, "bon_last": 0.75}
    report = {"args": args, "rows": [row], "majority": 0.5, "processbench_samples": 3}
    (tmp_path / "lessons.json").write_text(json.dumps(report))
    lessons.rerender()
    text = (tmp_path / "lessons.md").read_text()
    assert "| mc | full | soft | 7 | 50.0 | 25.0 | 50.0 | 75.0 |" in text
    del row["mc"]  # a JSON without the column cannot be re-rendered without the run
    (tmp_path / "lessons.json").write_text(json.dumps(report))
    with pytest.raises(FileNotFoundError, match=r"gone/mc/fingerprint.json.*make prm"):
        lessons.rerender()


def variants_ready(tmp_path: Path) -> Path:
    labels = tmp_path / "labels"
    labels.mkdir()
    labels_dir(labels, "mc", {"name": "mc", "num_rollouts": 8, "early_stop": True})
    return labels


def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> str:
    """main() with ``argv``, which must refuse them (exit 2) before any model builds."""
    monkeypatch.setattr(lessons, "RESULTS", Path("unused"))
    return bench_cli.refused(monkeypatch, capsys, lessons, list(argv), "build_generator")


def test_missing_processbench_is_refused_before_generation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = variants_ready(tmp_path)
    missing = tmp_path / "nope.json"
    err = run_main(
        monkeypatch,
        capsys,
        "--labels",
        str(labels),
        "--variants",
        "mc:hard",
        "--processbench",
        str(missing),
    )
    assert f"expected --processbench {missing}" in err
    assert "python benchmarks/prm_processbench.py" in err


def test_workdir_of_other_steps_is_refused_up_front(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = variants_ready(tmp_path)
    bench = tmp_path / "bench.json"
    bench.write_text("[]")
    monkeypatch.setattr(lessons, "load_subset", lambda path: [None] * 3)
    workdir = tmp_path / "work"
    data = labels / "mc" / "stepwise.jsonl"
    earlier = lessons.train_config(data, "hard", 5, 8, workdir / "mc-hard", "base")
    (workdir / "mc-hard" / "checkpoint-5").mkdir(parents=True)
    fingerprint = lessons.run_settings(asdict(earlier))
    (workdir / "mc-hard" / "fingerprint.json").write_text(json.dumps(fingerprint))
    lessons.check_workdir(earlier, "mc:hard")  # the same settings resume
    common = ["--labels", str(labels), "--variants", "mc:hard", "--init", "base"]
    common += ["--processbench", str(bench), "--workdir", str(workdir), "--batch-size", "8"]
    err = run_main(monkeypatch, capsys, *common, "--steps", "7")
    assert "under --workdir" in err and "max_steps: 5 -> 7" in err
    assert "fix: pass a new --workdir" in err and "hydra" not in err
