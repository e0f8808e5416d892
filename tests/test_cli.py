"""``python -m search`` end to end, as a user runs it (a subprocess), on the fake backends.

Each run takes a few seconds: the fake policy and PRM need no model. The commands are the
documented ones (``+strategy=beam``: the strategy group is appended to the defaults list).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from search.generators import build_generator
from search.strategies.tree import load_tree

REPO_ROOT = Path(__file__).resolve().parents[1]
FAKE = ["policy=fake", "scorer=fake", "strategy.n=4"]


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*overrides: str, cwd: Path) -> Completed:
    """``python -m search OVERRIDES`` in ``cwd`` (not the repository: the run must not
    depend on the working directory)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "search", *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Completed(done.returncode, done.stdout, done.stderr)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Completed]:
    """The default strategy (best-of-N) on 3 problems, with the progress bar on."""
    out = tmp_path_factory.mktemp("default-run")
    done = run_cli(
        *FAKE, "dataset.limit=3", f"hydra.run.dir={out}", "progress=true", cwd=out.parent
    )
    assert done.returncode == 0, done.stderr
    return out, done


def test_default_run_writes_results(default_run: tuple[Path, Completed]) -> None:
    out, _ = default_run
    records = read_jsonl(out / "results.jsonl")
    assert len(records) == 3
    assert len({r["id"] for r in records}) == 3
    for record in records:
        assert {"id", "question", "answer", "prediction", "correct", "candidates"} <= set(record)
        assert isinstance(record["correct"], bool)
        assert len(record["candidates"]) == 4  # strategy.n
        for candidate in record["candidates"]:
            expected = {"steps", "answer", "correct", "num_tokens", "step_scores", "score"}
            assert expected <= set(candidate)
            assert len(candidate["step_scores"]) == len(candidate["steps"])
            assert candidate["num_tokens"] > 0


def test_default_run_writes_self_describing_metrics(default_run: tuple[Path, Completed]) -> None:
    out, done = default_run
    metrics = json.loads((out / "metrics.json").read_text())
    keys = {"accuracy", "num_problems", "strategy", "n", "aggregation", "policy_tokens"}
    assert keys | {"prm_tokens", "wall_s"} <= set(metrics)
    assert metrics["num_problems"] == 3
    assert (metrics["strategy"], metrics["n"], metrics["aggregation"]) == ("best_of_n", 4, "min")
    assert metrics["accuracy"] == metrics["accuracy_by_rule"][metrics["select"]]
    records = read_jsonl(out / "results.jsonl")
    assert metrics["accuracy"] == pytest.approx(sum(r["correct"] for r in records) / 3)
    assert metrics["policy_tokens"] > 0 and metrics["prm_tokens"] > 0
    assert metrics["config"]["policy"]["_target_"] == "search.envs.arith.fakes.FakeGenerator"
    assert metrics["policy"] == "search.envs.arith.fakes.FakeGenerator"
    assert re.search(rf"^accuracy +{metrics['accuracy']:.3f}$", done.stdout, re.M)
    assert re.search(r"^wall s, this invocation +\d+\.\d$", done.stdout, re.M)


def test_progress_bar_shows_running_accuracy(default_run: tuple[Path, Completed]) -> None:
    out, done = default_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert "problems: 100%" in done.stderr
    assert "3/3" in done.stderr
    assert f"accuracy={metrics['accuracy']:.3f}" in done.stderr  # the final running value
    assert "accuracy=" not in done.stdout


SMALL = {  # each strategy's own knobs, made small
    "beam": ("strategy.beam_width=2",),
    "dvts": ("strategy.beam_width=2",),
    "mcts": ("strategy.num_simulations=4", "strategy.children_per_expansion=2"),
    "particle_filtering": (),
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_tree_strategies_run_and_save_trees(name: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = run_cli(
        f"+strategy={name}",
        *FAKE,
        *SMALL[name],
        "strategy.save_trees=true",
        "dataset.limit=2",
        f"hydra.run.dir={out}",
        "progress=false",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["strategy"] == name
    # "select" names the rule that made the prediction: mcts ranks by mcts_final
    assert metrics["select"] == ("most_visited" if name == "mcts" else "weighted")
    assert metrics["accuracy"] == metrics["accuracy_by_rule"][metrics["select"]]
    records = read_jsonl(out / "results.jsonl")
    assert len(records) == 2
    assert all(r["prediction"] == r["predictions"][metrics["select"]] for r in records)
    trees = sorted((out / "trees").glob("*.json"))
    assert [path.stem for path in trees] == sorted(r["id"] for r in records)
    for record in records:
        tree = load_tree(out / "trees" / f"{record['id']}.json")
        assert nx.is_arborescence(tree)
        assert tree.nodes[0]["step"] == record["question"]
        assert tree.number_of_nodes() > 1


def test_adaptive_best_of_n_reports_the_samples_it_spent(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = run_cli(
        "+strategy=adaptive_best_of_n",
        "policy=fake",
        "scorer=fake",
        "strategy.n=16",
        "dataset.limit=4",
        f"hydra.run.dir={out}",
        "progress=false",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["strategy"], metrics["select"]) == ("adaptive_best_of_n", "weighted")
    records = read_jsonl(out / "results.jsonl")
    spent = [len(r["candidates"]) for r in records]
    # Rounds of 4 (samples_per_round), one generate call each, stopped before 16 on some.
    calls = [r["usage"]["generate_calls"] for r in records]
    assert all(count == 4 * c for count, c in zip(spent, calls, strict=True))
    assert min(spent) < 16
    assert metrics["candidates_per_problem"] == sum(spent) / len(spent)


@pytest.mark.slow
def test_multirun_sweep_writes_one_dir_per_job(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    done = run_cli(
        "-m",
        "+strategy=beam",
        "policy=fake",
        "scorer=fake",
        "strategy.beam_width=2",
        "strategy.n=4,8",
        "aggregation=min,prod",
        "dataset.limit=2",
        f"hydra.sweep.dir={sweep}",
        "progress=false",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    jobs = sorted(path for path in sweep.iterdir() if path.is_dir())
    assert [path.name for path in jobs] == ["0", "1", "2", "3"]
    seen = set()
    for job in jobs:
        metrics = json.loads((job / "metrics.json").read_text())
        assert metrics["strategy"] == "beam"
        assert metrics["config"]["strategy"]["n"] == metrics["n"]
        assert metrics["config"]["aggregation"] == metrics["aggregation"]
        records = read_jsonl(job / "results.jsonl")
        assert len(records) == 2
        assert all(len(r["candidates"]) == metrics["n"] for r in records)
        seen.add((metrics["n"], metrics["aggregation"]))
    assert seen == {(4, "min"), (4, "prod"), (8, "min"), (8, "prod")}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("strategy.nn=3", "Key 'nn' not in 'StrategyConfig'"),
        ("strategy.n=abc", "Value 'abc' of type 'str' could not be converted to Integer"),
        ("aggregation=median", "Invalid value 'median', expected one of [last, min, prod, mean]"),
    ],
)
def test_bad_overrides_fail_with_hydra_message(override: str, message: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = run_cli("policy=fake", "scorer=fake", override, f"hydra.run.dir={out}", cwd=tmp_path)
    assert done.returncode != 0
    assert message in done.stderr
    assert not (out / "results.jsonl").exists()


def test_bad_beam_width_fails_before_loading_a_model(tmp_path: Path) -> None:
    # Loading this policy would fail with "expected a model checkpoint" (the control below).
    with pytest.raises(FileNotFoundError, match="expected a model checkpoint"):
        build_generator(model="/nonexistent", seed=0)
    out = tmp_path / "run"
    done = run_cli(
        "+strategy=beam",
        "strategy.n=6",
        "policy.model=/nonexistent",
        f"hydra.run.dir={out}",
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "expected strategy.n to be a multiple of strategy.beam_width" in done.stderr
    assert "fix: strategy.n=4" in done.stderr
    assert "expected a model checkpoint" not in done.stderr
    assert not (out / "results.jsonl").exists()


def test_a_prompt_longer_than_the_context_is_refused_before_the_policy_loads(
    tmp_path: Path,
) -> None:
    """The embedded policy's tokenizer and config.json measure the prompts: one that does not
    fit stops the run before any weights load (the log never says the policy is ready), and
    with on_overflow=skip the run goes on and records it as skipped."""
    problems = tmp_path / "problems.jsonl"
    rows = [
        {"id": "short", "question": "Compute 2 + 3.", "answer": "5"},
        {"id": "long", "question": "Compute " + " + ".join(["1"] * 200) + ".", "answer": "200"},
    ]
    problems.write_text("".join(json.dumps(row) + "\n" for row in rows))
    data = [f"dataset.path={problems}", "dataset=jsonl", "dataset.id_field=id", "strategy.n=2",
            "progress=false"]  # fmt: skip
    done = run_cli(*data, f"hydra.run.dir={tmp_path / 'refused'}", cwd=tmp_path)
    assert done.returncode != 0
    assert "expected every prompt to fit the policy's context, got 1 that do not (problem long" \
        in done.stderr  # fmt: skip
    assert "ready in" not in done.stderr and "indexing errors" not in done.stderr
    done = run_cli(*data, "on_overflow=skip", f"hydra.run.dir={tmp_path / 'kept'}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    records = {r["id"]: r for r in read_jsonl(tmp_path / "kept" / "results.jsonl")}
    assert "skipped" in records["long"] and records["short"]["candidates"]
