"""Sweep summaries: after ``python -m search -m``, and ``python -m search.summarize DIR``."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from search.summarize import find_runs, main, summarize, to_markdown


def _metrics(directory: Path, **values: object) -> Path:
    directory.mkdir(parents=True)
    base = {
        "strategy": "beam",
        "n": 4,
        "select": "weighted",
        "aggregation": "min",
        "num_problems": 10,
        "accuracy": 0.5,
        "accuracy_by_rule": {"majority": 0.4, "weighted": 0.5},
        "pass_at_n": 0.8,
        "policy_tokens": 1000,
        "prm_tokens": None,
        "wall_s": 2.0,
    }
    path = directory / "metrics.json"
    path.write_text(json.dumps(base | values))
    return path


def test_rows_are_per_run_with_per_problem_tokens(tmp_path: Path) -> None:
    _metrics(tmp_path / "b", n=16, policy_tokens=4000)
    _metrics(tmp_path / "a")
    _metrics(tmp_path / "c", strategy="best_of_n", accuracy_by_rule={"prm": 0.3})
    summary = summarize(find_runs([tmp_path]), root=tmp_path)
    assert [(r["strategy"], r["n"]) for r in summary.rows] == [
        ("beam", 4),
        ("beam", 16),
        ("best_of_n", 4),
    ]
    assert summary.rows[1]["policy tokens/problem"] == 400.0
    assert summary.rows[0]["prm tokens/problem"] is None
    assert {"acc majority", "acc weighted", "acc prm"} <= set(summary.columns)
    table = to_markdown(summary)
    assert table.count("\n") == 4  # header, rule, 3 rows
    assert "| best_of_n | 4 | weighted | min | 10 | 0.500 | - | - | 0.300 |" in table
    # a column's numbers share their decimals (wall time 2.0 beside 29.0, not "2.000" / "29")
    _metrics(tmp_path / "d", wall_s=29.0, finished_share=0.75)
    rows = to_markdown(summarize(find_runs([tmp_path]), root=tmp_path)).splitlines()
    assert rows[0].endswith("| pass@n | finished share | policy tokens/problem | "
                            "prm tokens/problem | wall s |")  # fmt: skip
    by_run = {row.split(" | ")[0].strip("| "): row for row in rows[2:]}
    assert by_run["d"].endswith("| 0.800 | 0.750 | 100 | - | 29.0 |")
    assert by_run["a"].endswith("| 0.800 | - | 100 | - | 2.0 |")


def test_cli_needs_out_for_several_directories(tmp_path: Path) -> None:
    _metrics(tmp_path / "x" / "run")
    _metrics(tmp_path / "y", n=8)
    with pytest.raises(SystemExit):
        main([str(tmp_path / "x"), str(tmp_path / "y")])
    main([str(tmp_path / "x"), str(tmp_path / "y"), "--out", str(tmp_path / "both")])
    rows = list(csv.DictReader((tmp_path / "both" / "summary.csv").open()))
    assert [row["n"] for row in rows] == ["4", "8"]
    assert (tmp_path / "both" / "summary.png").stat().st_size > 1000


def test_missing_directory_and_no_runs_say_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="fix"):
        main([str(tmp_path / "nope")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="fix"):
        main([str(tmp_path / "empty")])


def test_a_multirun_writes_its_summary(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    overrides = ["policy=fake", "scorer=fake", "dataset.limit=3", "progress=false"]
    sweep_axes = ["strategy.n=2,4", "aggregation=min,prod", f"hydra.sweep.dir={sweep}"]
    done = subprocess.run(
        [sys.executable, "-m", "search", "-m", *overrides, *sweep_axes],
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert sorted((row["n"], row["aggregation"]) for row in rows) == [
        ("2", "min"),
        ("2", "prod"),
        ("4", "min"),
        ("4", "prod"),
    ]
    assert all(0.0 <= float(row["accuracy"]) <= 1.0 for row in rows)
    assert (sweep / "summary.md").read_text() in done.stdout + "\n"
    assert (sweep / "summary.png").exists()


def test_a_single_run_does_not_trip_the_sweep_callback(tmp_path: Path) -> None:
    overrides = ["policy=fake", "scorer=fake", "dataset.limit=2", "progress=false"]
    done = subprocess.run(
        [sys.executable, "-m", "search", *overrides, f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Callback" not in done.stderr and not (tmp_path / "run" / "summary.md").exists()
