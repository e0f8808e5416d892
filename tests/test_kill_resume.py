"""``kill -9`` half way, then resume: the resumed run writes what one uninterrupted run does
(``python -m search``, ``python -m prm.label``, ``python -m prm.train``).

Each CLI runs as a user runs it (a subprocess) with a slowed fake policy
(``tests/slow_fake.py``), is killed with SIGKILL once it has written its first batch, and is
run again with the same command. Few and small: a handful of problems, seconds each.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # subprocesses killed half way: about 20 s each
TESTS = Path(__file__).resolve().parent
SLOW = ["policy=fake", "policy._target_=slow_fake.SlowFakeGenerator", "+policy.delay_s=0.4"]


def env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}


def run(module: str, args: list[str], cwd: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def _as_from_a_terminal() -> None:
    """SIGINT as a shell gives it: a process that inherits it ignored (as from a test runner
    whose earlier tests ignored it) gets no KeyboardInterrupt from Python at all."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(module: str, args: list[str], cwd: Path) -> subprocess.Popen[str]:
    """The command running, its stderr piped (read it with ``communicate``)."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_as_from_a_terminal,
    )


def signal_after_lines(
    process: subprocess.Popen[str], written: Path, count: int, signum: int
) -> str:
    """Send ``signum`` once ``written`` has ``count`` complete lines; its stderr at the end."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if written.exists() and written.read_bytes().count(b"\n") >= count:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before the signal; slow it down"
    os.kill(process.pid, signum)
    return process.communicate(timeout=60)[1]


def kill_after_first_lines(module: str, args: list[str], cwd: Path, written: Path) -> None:
    """Start the command, SIGKILL it once ``written`` has a complete line, wait for it."""
    signal_after_lines(start(module, args, cwd), written, 1, signal.SIGKILL)


def lines(path: Path, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    return [{k: v for k, v in row.items() if k not in drop} for row in rows]


def test_search_killed_and_resumed_equals_the_uninterrupted_run(tmp_path: Path) -> None:
    common = [
        *SLOW,
        "scorer=fake",
        "strategy.n=4",
        "+strategy=beam",
        "strategy.beam_width=2",
        "dataset.limit=6",
        "progress=false",
    ]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    run("search", [*common, "batch_problems=6", f"hydra.run.dir={whole}"], tmp_path)
    args = [*common, "batch_problems=2", f"hydra.run.dir={killed}"]
    kill_after_first_lines("search", args, tmp_path, killed / "results.jsonl")
    assert len(lines(killed / "results.jsonl")) < 6
    run("search", args, tmp_path)
    assert lines(killed / "results.jsonl", ("wall_s",)) == lines(
        whole / "results.jsonl", ("wall_s",)
    )


def test_prm_label_killed_and_resumed_equals_the_uninterrupted_run(tmp_path: Path) -> None:
    samples = tmp_path / "samples"
    run(
        "prm.sample",
        ["policy=fake", "count=6", "num_samples=2", f"output_dir={samples}", "progress=false"],
        tmp_path,
    )
    common = [
        *SLOW,
        "labeller=mc",
        "labeller.num_rollouts=4",
        f"samples={samples / 'samples.jsonl'}",
        "progress=false",
    ]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    run("prm.label", [*common, "chunk_solutions=12", f"output_dir={whole}"], tmp_path)
    args = [*common, "chunk_solutions=2", f"output_dir={killed}"]
    kill_after_first_lines("prm.label", args, tmp_path, killed / "records.jsonl")
    assert len(lines(killed / "records.jsonl")) < 12
    run("prm.label", args, tmp_path)
    assert lines(killed / "records.jsonl") == lines(whole / "records.jsonl")
    assert (killed / "stepwise.jsonl").read_bytes() == (whole / "stepwise.jsonl").read_bytes()


@pytest.mark.skipif(sys.platform != "linux", reason="flock semantics checked on Linux")
def test_a_killed_runs_lock_does_not_block_the_resume(tmp_path: Path) -> None:
    """The resume above already runs after a kill -9; here the lock file it left names the
    dead process, and the next run still starts (the kernel released the flock)."""
    out = tmp_path / "run"
    args = [*SLOW, "scorer=fake", "strategy.n=2", "dataset.limit=4", "batch_problems=1"]
    args += ["progress=false", f"hydra.run.dir={out}"]
    kill_after_first_lines("search", args, tmp_path, out / "results.jsonl")
    assert json.loads((out / ".lock").read_text())["pid"] > 0
    run("search", args, tmp_path)
    assert len(lines(out / "results.jsonl")) == 4


def test_prm_train_killed_and_resumed_equals_the_uninterrupted_run(tmp_path: Path) -> None:
    """Killed once its first Trainer checkpoint is on disk, then rerun: the final weights
    and the last epoch's log equal those of one uninterrupted run."""
    from safetensors.torch import load_file

    rows = []
    for i in range(24):
        a, b, right = i % 9 + 1, (i * 7) % 9 + 1, i % 3 != 0
        total = a + b if right else a + b + 1
        steps = [f"{a} + {b} = {total}", f"The answer is \\boxed{{{total}}}."]
        rows.append(
            {
                "prompt": f"Compute {a} + {b}.",
                "completions": steps,
                "labels": [right, right],
                "soft_labels": [float(right)] * 2,
                "problem_id": f"p{i}",
            }
        )
    data = tmp_path / "stepwise.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    common = [
        f"train_data={data}",
        "epochs=6",
        "batch_size=4",
        "save_every=2",
        "progress=false",
        "device=cpu",
        "num_threads=1",
        f"policy_dir={TESTS.parent / 'checkpoints' / 'arith-policy'}",
    ]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    run("prm.train", [*common, f"output_dir={whole}"], tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "prm.train", *common, f"output_dir={killed}"],
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if list(killed.glob("checkpoint-*/trainer_state.json")):
            break
        time.sleep(0.02)
    assert process.poll() is None, "training ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "model.safetensors").exists()
    run("prm.train", [*common, f"output_dir={killed}"], tmp_path)
    final, resumed = load_file(whole / "model.safetensors"), load_file(killed / "model.safetensors")
    assert all(final[name].equal(resumed[name]) for name in final)
    history = [
        json.loads((d / "training_log.json").read_text())["history"] for d in (whole, killed)
    ]
    assert history[0][-1] == history[1][-1]


def test_ctrl_c_says_what_is_saved_and_how_to_resume_without_a_traceback(tmp_path: Path) -> None:
    """SIGINT (Ctrl-C) half way: one line on stderr with the count of problems saved and the
    way on, exit status 130; the same command then resumes to the whole run."""
    out = tmp_path / "run"
    # 1.5 s a batch, 4 batches: the signal lands seconds before the end, even on a busy machine
    slower = [*SLOW[:2], "+policy.delay_s=1.5"]
    args = [*slower, "scorer=fake", "strategy.n=2", "dataset.limit=8", "batch_problems=2",
            "progress=false", f"hydra.run.dir={out}"]  # fmt: skip
    process = start("search", args, tmp_path)
    written = out / "results.jsonl"
    stderr = signal_after_lines(process, written, 2, signal.SIGINT)
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    saved = written.read_bytes().count(b"\n")
    assert f"interrupted: {saved} finished problems are saved in {written}; re-run the same " \
        "command to resume" in stderr  # fmt: skip
    run("search", args, tmp_path)
    assert len(lines(written)) == 8
