"""``+launcher=ray``: problems sharded over a local 2-worker Ray cluster (CPU) give the same
results as one process with the same seed, stream into one results.jsonl, and resume; small
runs are cut into a batch per worker; a worker's failure (a model server's, a bad setting's,
a bug's) and a missing cluster are reported in one line. Slow: Ray and its worker processes
start in about 20 s here."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from search.aggregation import Aggregation
from search.config import SearchConfig, register_configs
from search.envs.arith.fakes import FakeGenerator, FakeScorer
from search.envs.arith.world import make_split
from search.inputs import InputError, exit_on_input_error, exit_on_server_error
from search.launchers.ray import (
    RayLauncherConfig,
    SearchWorker,
    map_on_ray,
    run_search_on_ray,
    shard_batch_size,
)
from search.remote import ServerUnavailable
from search.run import run_search
from search.strategies import StrategyConfig, build_strategy
from search.types import DEFAULT_SAMPLING, Generation, Prefix, Sampling, Until

REPO_ROOT = Path(__file__).resolve().parents[1]
POLICY = {"_target_": "search.envs.arith.fakes.FakeGenerator", "error_rate": 0.3}
SCORER = {"_target_": "search.envs.arith.fakes.FakeScorer", "seed": 0, "noise": 0.05}
PROBLEMS = make_split("test", size=10)
SERVER_DOWN = (
    "could not reach the model server at http://127.0.0.1:8001/v1/completions (ConnectError: "
    "All connection attempts failed) after 5 attempt(s); fix: start the server"
)


class FailingGenerator(FakeGenerator):
    """A policy that fails as ``failure`` says: ``server`` (a model server gone, wrapped as
    a caller would wrap it), ``input`` (a bad setting), ``bug`` (a plain bug), or
    ``server_at_start`` (no server when the worker builds it, wrapped by Hydra)."""

    def __init__(self, failure: str, **kwargs: Any) -> None:
        if failure == "server_at_start":
            raise ServerUnavailable(SERVER_DOWN)
        super().__init__(**kwargs)
        self.failure = failure

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        if self.failure == "server":
            try:
                raise ServerUnavailable(SERVER_DOWN)
            except ServerUnavailable as error:
                raise RuntimeError("generation failed") from error
        if self.failure == "input":
            raise InputError("expected max_tokens >= 1, got 0; fix: policy.max_tokens=512")
        raise KeyError("steps")  # a bug


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


PYTHONPATH = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "tests")])  # FailingGenerator


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"env_vars": {"PYTHONPATH": PYTHONPATH, "OMP_NUM_THREADS": "1"}},
    )
    yield
    ray.shutdown()


def run_on_ray(
    output_dir: Path,
    strategy: StrategyConfig,
    problems: Any = PROBLEMS,
    launcher: RayLauncherConfig | None = None,
    policy: dict[str, Any] = POLICY,
) -> dict:
    return run_search_on_ray(
        problems,
        policy,
        SCORER,
        strategy,
        Aggregation.min,
        seed=7,
        output_dir=output_dir,
        describe={},
        launcher=launcher or RayLauncherConfig(num_workers=2, batch_problems=3),
        batch_problems=64,
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
    assert list(a) == list(b) == [p.id for p in PROBLEMS]  # the file in problem order, too
    assert all(same_search(a[key], b[key]) for key in a)
    assert sharded["accuracy"] == single["accuracy"]
    assert sharded["policy_tokens"] == single["policy_tokens"]
    assert sharded["launcher"] == {"name": "ray", "num_workers": 2, "batch_problems": 3}


@pytest.mark.slow
def test_a_ray_run_resumes_where_it_stopped(local_ray: None, tmp_path: Path) -> None:
    strategy = StrategyConfig(n=4)
    run_on_ray(tmp_path, strategy, PROBLEMS[:6])  # a run stopped after 6 problems
    path = tmp_path / "results.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:4]) + lines[4][:20])  # killed while writing line 5
    metrics = run_on_ray(tmp_path, strategy)
    resumed = read(tmp_path)
    assert list(resumed) == [p.id for p in PROBLEMS]
    assert metrics["num_problems"] == len(PROBLEMS)
    run_single(tmp_path / "single", strategy)
    single = read(tmp_path / "single")
    assert all(same_search(resumed[key], single[key]) for key in resumed)


@pytest.mark.slow
def test_a_ray_run_resumes_a_run_that_set_a_problem_aside(local_ray: None, tmp_path: Path) -> None:
    """A local on_overflow=skip run's record of a problem set aside (no 'correct'), resumed on
    Ray: counted apart, not searched again, and the file ends in problem order."""
    first = PROBLEMS[0]
    aside = {"id": first.id, "question": first.question, "answer": first.answer,
             "skipped": "prompt of 300 tokens; the policy's context is 256"}  # fmt: skip
    (tmp_path / "results.jsonl").write_text(json.dumps(aside) + "\n")
    metrics = run_on_ray(tmp_path, StrategyConfig(n=4))
    resumed = read(tmp_path)
    assert list(resumed) == [p.id for p in PROBLEMS] and resumed[first.id] == aside
    assert metrics["skipped_problems"] == 1 and metrics["num_problems"] == len(PROBLEMS) - 1


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
        return (path / "samples.jsonl").read_text().splitlines()

    # the same file, byte for byte: chunks that finished out of order are put back in order
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
        return (path / "records.jsonl").read_text().splitlines()  # in order, as sampling's

    assert rows(tmp_path / "ray") == rows(tmp_path / "local") and len(rows(tmp_path / "ray")) == 8
    assert sharded["usage"] == local["usage"] and sharded["labeller"] == "mc"


def test_batches_are_cut_so_that_every_worker_gets_one() -> None:
    two = RayLauncherConfig(num_workers=2)
    assert shard_batch_size(20, two, batch_problems=64) == 10  # not 1 batch of 20 for 2
    assert shard_batch_size(200, two, batch_problems=64) == 64  # enough: the run's size
    assert shard_batch_size(7, RayLauncherConfig(num_workers=3), batch_problems=64) == 3
    assert shard_batch_size(1, two, batch_problems=64) == 1
    assert shard_batch_size(20, RayLauncherConfig(batch_problems=16), batch_problems=64) == 16


def test_no_ray_cluster_at_the_address_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    ray = pytest.importorskip("ray")

    def no_cluster(**kwargs: Any) -> None:
        raise ConnectionError(
            "Could not find any running Ray instance. Please specify the one to connect to by "
            "setting `--address` flag or `RAY_ADDRESS` environment variable."
        )

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_cluster)
    launcher = RayLauncherConfig(address="auto")
    with pytest.raises(InputError) as raised:
        list(map_on_ray(launcher, SearchWorker, (), [PROBLEMS[:1]]))
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("expected a running Ray cluster at launcher.address=auto, got none")
    assert message.endswith("fix: run `ray start --head` on the head node first, or drop "
                            "launcher.address for a local Ray on this machine")  # fmt: skip


def test_an_address_where_nothing_listens_is_one_line_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HOST:PORT with nothing listening: refused within seconds, before ray.init (which
    would retry for minutes)."""
    import time

    from remote.fake_server import free_port

    ray = pytest.importorskip("ray")

    def never(**kwargs: Any) -> None:
        raise AssertionError("ray.init was called for an address that takes no connection")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", never)
    port = free_port()  # free a moment ago: nothing listens there
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        start = time.perf_counter()
        with pytest.raises(InputError, match=rf"nothing answers at 127\.0\.0\.1:{port}"):
            list(map_on_ray(RayLauncherConfig(address=address), SearchWorker, (), [PROBLEMS[:1]]))
        assert time.perf_counter() - start < 10


def test_gpus_this_machine_lacks_are_refused_before_ray_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A local Ray told of GPUs that are not there would hand workers device ids that do not
    exist (they run on CPU without a word): refused, naming the fix, before ray.init."""
    from search.launchers import ray as ray_launcher

    ray = pytest.importorskip("ray")
    started: list[dict[str, Any]] = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: started.append(kwargs))
    monkeypatch.setattr(ray_launcher, "_local_gpus", lambda: 1)
    launcher = RayLauncherConfig(num_workers=3, gpus_per_worker=1)
    with pytest.raises(InputError, match=r"expected 3 GPU\(s\) on this machine .* got 1; fix: "):
        list(map_on_ray(launcher, SearchWorker, (), [PROBLEMS[:1]] * 3))
    assert not started
    assert ray_launcher._start_ray(launcher, workers=1)  # one task left: one worker starts
    assert started[-1]["num_gpus"] == 1  # the machine's own count, not the request


@pytest.mark.slow
def test_a_small_run_gets_a_batch_per_worker(
    local_ray: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    strategy = StrategyConfig(n=4)
    metrics = run_on_ray(tmp_path / "ray", strategy, launcher=RayLauncherConfig(num_workers=2))
    assert metrics["launcher"] == {"name": "ray", "num_workers": 2, "batch_problems": 5}
    run_single(tmp_path / "single", strategy)
    a, b = read(tmp_path / "ray"), read(tmp_path / "single")
    assert sorted(a) == sorted(b) and all(same_search(a[key], b[key]) for key in a)
    with caplog.at_level(logging.WARNING, logger="search.launchers.ray"):
        few = run_on_ray(tmp_path / "few", strategy, PROBLEMS[:2], RayLauncherConfig(num_workers=3))
    assert few["launcher"] == {"name": "ray", "num_workers": 2, "batch_problems": 1}
    assert "starting 2 of launcher.num_workers=3 Ray workers: only 2 batch(es)" in caplog.text


@pytest.mark.slow
@pytest.mark.parametrize(
    ("failure", "cause"),
    [
        ("server", SERVER_DOWN),
        ("server_at_start", SERVER_DOWN),
        ("input", "expected max_tokens >= 1, got 0; fix: policy.max_tokens=512"),
    ],
)
def test_a_failing_worker_is_reported_in_one_line(
    local_ray: None, tmp_path: Path, caplog: pytest.LogCaptureFixture, failure: str, cause: str
) -> None:
    policy = {"_target_": "test_ray_launcher.FailingGenerator", "failure": failure}
    run_log = logging.FileHandler(tmp_path / "search.log")  # as Hydra's job log
    logging.getLogger().addHandler(run_log)
    try:
        with (
            caplog.at_level(logging.ERROR, logger="search.launchers"),
            pytest.raises(SystemExit) as stopped,
            exit_on_server_error(),
            exit_on_input_error(),
        ):
            run_on_ray(tmp_path, StrategyConfig(n=4), policy=policy)
    finally:
        logging.getLogger().removeHandler(run_log)
        run_log.close()
    message = str(stopped.value)
    assert "\n" not in message
    hint = "no problem had finished; re-run the same command to start again"  # every one fails
    assert message.startswith("error: Ray worker ")
    assert f" (SearchWorker) failed: {cause}; {hint}" in message
    assert message in (tmp_path / "search.log").read_text()  # in the run's log too...
    assert message.removeprefix("error: ") not in caplog.text  # ...but printed once
    assert "Traceback" not in caplog.text


@pytest.mark.slow
def test_a_bug_in_a_worker_keeps_its_traceback_in_the_log(
    local_ray: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    policy = {"_target_": "test_ray_launcher.FailingGenerator", "failure": "bug"}
    with (
        caplog.at_level(logging.ERROR, logger="search.launchers"),
        pytest.raises(RuntimeError) as raised,
        exit_on_server_error(),
        exit_on_input_error(),
    ):
        run_on_ray(tmp_path, StrategyConfig(n=4), policy=policy)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("Ray worker ")
    assert " (SearchWorker) failed: KeyError: 'steps'; no problem had finished; " in message
    assert "Traceback" in caplog.text and 'raise KeyError("steps")  # a bug' in caplog.text
