"""One writer per run directory (a lock a killed run cannot leave held), and a fingerprint
that refuses to mix records made with other settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from search.rundir import (
    FINGERPRINT_FILE,
    LOCK_FILE,
    RunDirError,
    RunLock,
    check_fingerprint,
    differences,
    fingerprint,
    schema_defaults,
)

HOLD = """
import sys, time
from pathlib import Path
from search.rundir import RunLock
with RunLock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


def hold_lock(directory: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(directory)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_a_second_writer_is_refused_and_a_killed_ones_lock_is_taken_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    holder = hold_lock(tmp_path)
    try:
        refused = pytest.raises(RunDirError, match=rf"pid {holder.pid} on .*fix: wait for it")
        with refused, RunLock(tmp_path):
            pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # kill -9: no clean-up runs
        holder.wait()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == holder.pid  # left behind
    with RunLock(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert "stale lock" in caplog.text and str(holder.pid) in caplog.text
    assert (tmp_path / LOCK_FILE).read_text() == ""  # a clean exit leaves no holder


def test_the_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    lock = tmp_path / LOCK_FILE
    with RunLock(tmp_path):
        with RunLock(tmp_path):
            pass
        assert json.loads(lock.read_text())["pid"] == os.getpid()  # the inner exit keeps it
    assert lock.read_text() == ""  # released after the outer exit: another process may take it
    holder = hold_lock(tmp_path)
    try:
        assert json.loads(lock.read_text())["pid"] == holder.pid
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()


def test_fingerprint_drops_what_does_not_change_records() -> None:
    config = {
        "seed": 0,
        "batch_problems": 4,
        "progress": True,
        "dataset": {"name": "arith", "limit": 40},
        "strategy": {"n": 4, "batch_size": 256, "save_trees": False},
        "policy": {"model": "m", "temperature": 1.0, "hf": {"batch_size": 8, "device": "cpu"}},
    }
    assert fingerprint(config) == {
        "seed": 0,
        "dataset": {"name": "arith"},
        "strategy": {"n": 4},
        "policy": {"model": "m", "temperature": 1.0, "hf": {}},
    }
    served = {
        "model": "m",
        "base_url": "http://127.0.0.1:8001",
        "timeout_s": 300,
        "max_concurrency": 64,
        "split_n": False,
        "prompt_format": "token_ids",
    }
    restarted = {**served, "base_url": "http://localhost:9001", "timeout_s": 600}
    restarted |= {"max_concurrency": 8, "split_n": True}
    assert (
        fingerprint({"policy": served})
        == fingerprint({"policy": restarted})
        == {
            "policy": {"model": "m", "prompt_format": "token_ids"}  # how it is reached: not in
        }
    )
    # cache sizes decide speed, not records (README: the same generations with or without
    # prompt reuse), for the policy's and the scorer's backends alike
    cached = {"model": "m", "hf": {"prefix_cache_tokens": 65536}, "vllm": {"kv_cache_space_gib": 4}}
    uncached = {"model": "m", "hf": {"prefix_cache_tokens": 0}, "vllm": {"kv_cache_space_gib": 1}}
    assert fingerprint({"scorer": cached}) == fingerprint({"scorer": uncached})
    # prompts read once by their rows, or copied to each: the same tokens (tested), so a run
    # begun before the option existed resumes with it either way
    shared = {"model": "m", "hf": {"shared_prompt_attention": True, "shared_prompt_min_rows": 1}}
    assert fingerprint({"policy": shared}) == fingerprint({"policy": {"model": "m", "hf": {}}})
    changed = {**config, "strategy": {"n": 8}, "aggregation": "prod"}
    assert differences(fingerprint(config), fingerprint(changed)) == [
        "aggregation: (absent) -> 'prod'",
        "strategy.n: 4 -> 8",
    ]


def test_check_fingerprint(tmp_path: Path) -> None:
    first = {"strategy": {"n": 4}, "seed": 0}
    check_fingerprint(tmp_path, first, has_records=False)
    check_fingerprint(tmp_path, {"strategy": {"n": 8}}, has_records=False)  # nothing made yet
    assert json.loads((tmp_path / FINGERPRINT_FILE).read_text()) == {"strategy": {"n": 8}}
    check_fingerprint(tmp_path, {"strategy": {"n": 8}}, has_records=True)
    with pytest.raises(RunDirError, match=r"1 different: strategy.n: 8 -> 4.*fix: choose a new"):
        check_fingerprint(tmp_path, {"strategy": {"n": 4}}, has_records=True)


def test_a_field_added_since_a_run_reads_as_its_default() -> None:
    from hydra import compose, initialize_config_dir

    import prm.label.__main__  # noqa: F401  (registers the labelling schemas)
    from search.resolve import CONF_DIR

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        raw = compose("prm_label", overrides=["labeller=mc"])
    defaults = schema_defaults(raw)
    assert defaults["labeller"]["trust_right_answers"] is True  # MCConfig's default
    assert defaults["chunk_solutions"] == raw.chunk_solutions  # LabelConfig's
    stored = {"labeller": {"name": "mc", "num_rollouts": 8}, "seed": 0}
    current = {"labeller": {"name": "mc", "num_rollouts": 8, "trust_right_answers": True}}
    current["seed"] = 0
    assert differences(stored, current, defaults=defaults) == []
    assert differences(stored, current) == ["labeller.trust_right_answers: (absent) -> True"]
    current["labeller"]["trust_right_answers"] = False  # not what the old run did
    assert differences(stored, current, defaults=defaults) == [
        "labeller.trust_right_answers: (absent) -> False"
    ]
    # a whole group added since: each of its keys against its default
    group = {"seed": 0, "labeller": {"trust_right_answers": True, "num_rollouts": 8}}
    assert differences({"seed": 0}, group, defaults=defaults) == []
    group["labeller"]["num_rollouts"] = 3
    assert differences({"seed": 0}, group, defaults=defaults) == [
        "labeller.num_rollouts: (absent) -> 3"
    ]


def test_an_old_labelling_run_resumes_after_a_field_was_added(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prm.sample import run_sampling
    from search.envs.arith.fakes import FakeGenerator
    from search.envs.arith.world import make_split

    run_sampling(make_split("train", size=3), FakeGenerator(seed=1), tmp_path, 2, 4)
    out = tmp_path / "calculator"
    args = ["prm.label", "labeller=calculator", f"samples={tmp_path / 'samples.jsonl'}"]
    args += [f"output_dir={out}", "progress=false"]
    import prm.label.__main__ as entry

    monkeypatch.setattr(sys, "argv", args)
    entry.main()
    stored = json.loads((out / FINGERPRINT_FILE).read_text())
    del stored["seed"]  # as if written before the field existed
    (out / FINGERPRINT_FILE).write_text(json.dumps(stored))
    entry.main()  # resumes: the old run used the default
    monkeypatch.setattr(sys, "argv", [*args, "seed=7"])
    with pytest.raises(SystemExit, match=r"seed: \(absent\) -> 7"):
        entry.main()  # another value than the old run's default is refused


def test_a_run_resumes_under_another_spelling_of_its_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prm.sample import run_sampling
    from search.envs.arith.fakes import FakeGenerator
    from search.envs.arith.world import make_split

    run_sampling(make_split("train", size=3), FakeGenerator(seed=1), tmp_path, 2, 4)
    (tmp_path / "link").symlink_to(tmp_path)  # runs/prm-timed -> /work/runs/prmfresh
    out = tmp_path / "calculator"
    import prm.label.__main__ as entry

    def label(samples: Path, *more: str) -> None:
        args = ["prm.label", "labeller=calculator", f"samples={samples}", f"output_dir={out}"]
        monkeypatch.setattr(sys, "argv", [*args, "progress=false", *more])
        entry.main()

    label(tmp_path / "samples.jsonl")
    records = (out / "records.jsonl").read_text()
    label(tmp_path / "link" / "samples.jsonl")  # the same file: resumes, adds nothing
    assert (out / "records.jsonl").read_text() == records
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "samples.jsonl").write_text((tmp_path / "samples.jsonl").read_text())
    with pytest.raises(SystemExit, match=r"samples: .* -> .*other/samples.jsonl"):
        label(tmp_path / "other" / "samples.jsonl")  # a copy is another file: refused
    assert differences({"a": "hf"}, {"a": "vllm"}) == ["a: 'hf' -> 'vllm'"]  # not paths


def run_cli(*overrides: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "search", *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_refuses_a_resume_with_other_settings_and_extends_with_a_larger_limit(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    base = ["policy=fake", "scorer=fake", "strategy.n=4", f"hydra.run.dir={out}"]
    assert run_cli(*base, "dataset.limit=3", cwd=tmp_path).returncode == 0
    before = (out / "results.jsonl").read_bytes()
    # another strategy into the same directory: refused, naming the keys, nothing written
    # (policy.model points nowhere: had the policy been loaded first, that would fail instead)
    done = run_cli(
        *base[:3],
        "strategy.n=8",
        "+strategy=beam",
        "aggregation=prod",
        f"hydra.run.dir={out}",
        "dataset.limit=3",
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "strategy.n: 4 -> 8" in done.stderr and "aggregation: 'min' -> 'prod'" in done.stderr
    assert "fix: choose a new directory" in done.stderr
    assert (out / "results.jsonl").read_bytes() == before
    # more problems, smaller batches, no progress bar: the same run, extended
    done = run_cli(*base, "dataset.limit=5", "batch_problems=2", "progress=false", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = (out / "results.jsonl").read_bytes()
    assert lines.startswith(before) and lines.count(b"\n") == 5


def test_cli_refuses_a_second_run_into_a_directory_in_use(tmp_path: Path) -> None:
    out = tmp_path / "run"
    holder = hold_lock(out)
    try:
        start = time.perf_counter()
        done = run_cli("policy=fake", "scorer=fake", f"hydra.run.dir={out}", cwd=tmp_path)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert done.returncode != 0
    assert f"pid {holder.pid}" in done.stderr and "fix: wait for it" in done.stderr
    assert not (out / "results.jsonl").exists()
    assert time.perf_counter() - start < 60


def test_a_fingerprint_stored_with_server_settings_still_resumes(tmp_path: Path) -> None:
    """A run whose fingerprint.json was written while ``base_url`` and ``timeout_s`` still
    counted resumes with other values of them."""
    old = {"policy": {"model": "m", "base_url": "http://a:1", "timeout_s": 300}}
    (tmp_path / FINGERPRINT_FILE).write_text(json.dumps(old))
    now = fingerprint({"policy": {"model": "m", "base_url": "http://b:2", "timeout_s": 600}})
    check_fingerprint(tmp_path, now, has_records=True)  # no refusal
    with pytest.raises(RunDirError, match="policy.model"):
        check_fingerprint(tmp_path, fingerprint({"policy": {"model": "x"}}), has_records=True)
