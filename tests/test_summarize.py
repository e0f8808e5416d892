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


def test_missing_directory_and_no_runs_say_the_fix_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([str(tmp_path / "nope")])
    assert capsys.readouterr().err.startswith("error: expected a run or sweep directory")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        main([str(tmp_path / "empty")])
    err = capsys.readouterr().err
    assert err.startswith("error: expected at least one metrics.json") and "fix" in err
    assert "Traceback" not in err


def _fingerprint(metrics: Path, **changes: object) -> None:
    settings = {
        "aggregation": "min",
        "dataset": {"_target_": "search.envs.arith.world.ArithDataset", "split": "test"},
        "seed": 0,
        "strategy": {"name": "beam", "n": 4, "beam_width": 4, "select": None},
    }
    for key, value in changes.items():  # "strategy.beam_width": 2
        node = settings
        *parents, leaf = key.split(".")
        for parent in parents:
            node = node[parent]  # type: ignore[assignment]
        node[leaf] = value  # type: ignore[index]
    (metrics.parent / "fingerprint.json").write_text(json.dumps(settings))


def test_settings_the_runs_differ_in_are_columns_and_split_the_curves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A sweep over beam_width and two datasets: each swept key is a column, and runs on
    two datasets are said to differ (no curve joins them); keys the fixed columns show (n)
    and keys all runs share are not repeated."""
    for run, (split, width, n) in enumerate(
        [("test", 2, 4), ("test", 4, 4), ("longest", 2, 4), ("test", 2, 8)]
    ):
        path = _metrics(tmp_path / str(run), n=n)
        _fingerprint(path, **{"dataset.split": split, "strategy.beam_width": width,
                              "strategy.n": n})  # fmt: skip
    with caplog.at_level("WARNING", logger="search.summarize"):
        summary = summarize(find_runs([tmp_path]), root=tmp_path)
    assert summary.varied == ("dataset.split", "strategy.beam_width")
    assert summary.columns[5:7] == ("dataset.split", "strategy.beam_width")
    assert [(r["dataset.split"], r["strategy.beam_width"], r["n"]) for r in summary.rows] == [
        ("longest", 2, 4),
        ("test", 2, 4),
        ("test", 2, 8),
        ("test", 4, 4),
    ]
    assert "the runs differ in dataset.split" in caplog.text


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
