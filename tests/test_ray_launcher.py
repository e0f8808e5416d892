"""``+launcher=ray``: problems sharded over a local 2-worker Ray cluster (CPU) give the same
results as one process with the same seed, stream into one results.jsonl, and resume. Slow:
Ray and its worker processes start in about 20 s here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from search.aggregation import Aggregation
from search.config import SearchConfig, register_configs
from search.envs.arith.fakes import FakeGenerator, FakeScorer
from search.envs.arith.world import make_split
from search.launchers.ray import RayLauncherConfig, run_search_on_ray
from search.run import run_search
from search.strategies import StrategyConfig, build_strategy

REPO_ROOT = Path(__file__).resolve().parents[1]
POLICY = {"_target_": "search.envs.arith.fakes.FakeGenerator", "error_rate": 0.3}
SCORER = {"_target_": "search.envs.arith.fakes.FakeScorer", "seed": 0, "noise": 0.05}
PROBLEMS = make_split("test", size=10)


def read(path: Path) -> dict[str, dict[str, Any]]:
    lines = (path / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    by_id = {record["id"]: record for record in records}
    assert len(by_id) == len(records)  # no problem twice
    return by_id


def same_search(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("prediction", "predictions", "candidates", "usage")
    return all(a[key] == b[key] for key in keys)


def test_launcher_config_composes_and_is_checked() -> None:
    register_configs()
    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        raw = compose(config_name="config", overrides=["+launcher=ray", "launcher.num_workers=3"])
        config = OmegaConf.to_object(raw)
        assert isinstance(config, SearchConfig)
        assert config.launcher == RayLauncherConfig(num_workers=3)
        assert OmegaConf.to_object(compose(config_name="config")).launcher is None  # type: ignore[union-attr]
        with pytest.raises(Exception, match="num_workers >= 1"):
            OmegaConf.to_object(
                compose(config_name="config", overrides=["+launcher=ray", "launcher.num_workers=0"])
            )


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}},
    )
    yield
    ray.shutdown()


def run_on_ray(output_dir: Path, strategy: StrategyConfig, problems: Any = PROBLEMS) -> dict:
    return run_search_on_ray(
        problems,
        POLICY,
        SCORER,
        strategy,
        Aggregation.min,
        seed=7,
        output_dir=output_dir,
        describe={},
        launcher=RayLauncherConfig(num_workers=2, batch_problems=3),
    )


def run_single(output_dir: Path, strategy: StrategyConfig) -> dict:
    generator = FakeGenerator(seed=7, error_rate=0.3)
    scorer = FakeScorer(seed=0, noise=0.05)
    search = build_strategy(strategy, Aggregation.min, seed=7)
    return run_search(
        PROBLEMS, generator, scorer, search, output_dir, describe={}, batch_problems=4
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "strategy",
    [StrategyConfig(n=4), StrategyConfig(name="beam", n=4, beam_width=2)],
    ids=["best_of_n", "beam"],
)
def test_two_ray_workers_give_the_single_process_results(
    local_ray: None, tmp_path: Path, strategy: StrategyConfig
) -> None:
    sharded = run_on_ray(tmp_path / "ray", strategy)
    single = run_single(tmp_path / "single", strategy)
    a, b = read(tmp_path / "ray"), read(tmp_path / "single")
    assert sorted(a) == sorted(b) == sorted(p.id for p in PROBLEMS)
    assert all(same_search(a[key], b[key]) for key in a)
    assert sharded["accuracy"] == single["accuracy"]
    assert sharded["policy_tokens"] == single["policy_tokens"]
    assert sharded["launcher"] == {"name": "ray", "num_workers": 2}


@pytest.mark.slow
def test_a_ray_run_resumes_where_it_stopped(local_ray: None, tmp_path: Path) -> None:
    strategy = StrategyConfig(n=4)
    run_on_ray(tmp_path, strategy, PROBLEMS[:6])  # a run stopped after 6 problems
    path = tmp_path / "results.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:4]) + lines[4][:20])  # killed while writing line 5
    metrics = run_on_ray(tmp_path, strategy)
    resumed = read(tmp_path)
    assert sorted(resumed) == sorted(p.id for p in PROBLEMS)
    assert metrics["num_problems"] == len(PROBLEMS)
    run_single(tmp_path / "single", strategy)
    single = read(tmp_path / "single")
    assert all(same_search(resumed[key], single[key]) for key in resumed)


@pytest.mark.slow
def test_python_m_search_with_the_ray_launcher(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "search", "+launcher=ray", "launcher.num_workers=2",
         "policy=fake", "scorer=fake", "dataset.limit=6", "batch_problems=2", "strategy.n=4",
         "progress=false", f"hydra.run.dir={tmp_path}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["num_problems"] == 6 and metrics["launcher"]["num_workers"] == 2
    assert len(read(tmp_path)) == 6


@pytest.mark.slow
def test_prm_sampling_on_ray_writes_the_single_process_samples(
    local_ray: None, tmp_path: Path
) -> None:
    from prm.sample import run_sampling

    problems = make_split("train", size=9)
    local = run_sampling(
        problems, FakeGenerator(seed=7, error_rate=0.3), tmp_path / "local", 3, chunk_problems=4
    )
    sharded = run_sampling(
        problems,
        None,
        tmp_path / "ray",
        3,
        chunk_problems=2,
        launcher=RayLauncherConfig(num_workers=2),
        policy_node=POLICY,
        seed=7,
    )

    def rows(path: Path) -> list[str]:
        return sorted((path / "samples.jsonl").read_text().splitlines())

    assert rows(tmp_path / "ray") == rows(tmp_path / "local") and len(rows(tmp_path / "ray")) == 27
    assert sharded["answer_accuracy"] == local["answer_accuracy"]


@pytest.mark.slow
def test_mc_labelling_on_ray_writes_the_single_process_labels(
    local_ray: None, tmp_path: Path
) -> None:
    from prm.label.__main__ import LabelConfig, run_labelling
    from prm.label.mc import MCConfig, MCLabeller
    from prm.sample import read_samples, run_sampling

    generator = FakeGenerator(seed=7, error_rate=0.3)
    run_sampling(make_split("train", size=4), generator, tmp_path / "samples", 2, chunk_problems=4)
    solutions = read_samples(tmp_path / "samples" / "samples.jsonl")
    mc = MCConfig(num_rollouts=4)
    _, local = run_labelling(solutions, MCLabeller(generator, mc), tmp_path / "local", 3)
    config = LabelConfig(labeller=mc, policy=POLICY, seed=7, chunk_solutions=3)
    launcher = RayLauncherConfig(num_workers=2)
    _, sharded = run_labelling(
        solutions, None, tmp_path / "ray", 3, launcher=launcher, config=config
    )

    def rows(path: Path) -> list[str]:
        return sorted((path / "records.jsonl").read_text().splitlines())

    assert rows(tmp_path / "ray") == rows(tmp_path / "local") and len(rows(tmp_path / "ray")) == 8
    assert sharded["usage"] == local["usage"] and sharded["labeller"] == "mc"
