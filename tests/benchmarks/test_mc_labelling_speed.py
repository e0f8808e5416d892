"""benchmarks/mc_labelling_speed.py: repeated rows keep their median run and show the spread."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import mc_labelling_speed  # noqa: E402


def run(setup: str, wall_s: float, tokens: int = 1000, labels: str = "") -> dict[str, Any]:
    return {
        "setup": setup,
        "rollouts": 10,
        "rollout_tokens": tokens,
        "startup_s": 0.0,
        "wall_s": wall_s,
        "rollout_tokens_per_s": tokens / wall_s,
        "solutions_per_s": 8 / wall_s,
        "first_error_accuracy": 0.5,
        "first_errors_digest": labels or mc_labelling_speed.first_errors_digest([0, None, 1]),
    }


def test_median_run_is_the_middle_wall_time_with_every_run_kept() -> None:
    middle = mc_labelling_speed.median_run([run("a", 30.0), run("a", 10.0), run("a", 20.0)])
    assert middle["wall_s"] == 20.0 and middle["rollout_tokens_per_s"] == 50.0
    assert middle["wall_s_runs"] == [30.0, 10.0, 20.0]
    lower = mc_labelling_speed.median_run([run("a", 40.0), run("a", 10.0)])
    assert lower["wall_s"] == 10.0  # an even count takes the lower middle


def test_report_shows_ranges_and_ratios_only_when_repeated() -> None:
    ceilings = [
        {"batch": 512, "context": 50, "steps": 64, "attention": k, "tokens_per_s": v}
        for k, v in (("sdpa", 400.0), ("eager", 500.0))
    ]
    rows = [
        mc_labelling_speed.median_run([run("before", 10.0), run("before", 12.0)]),
        mc_labelling_speed.median_run([run("eager", 5.0), run("eager", 4.0)]),
    ]
    text = mc_labelling_speed.report(rows, ceilings, 8, 8, 4)
    assert "Every row ran 2 times" in text
    assert "| 10.0 (10.0-12.0) | 100 | 1.0 |" in text
    assert "| 4.0 (4.0-5.0) | 250 | 2.5 |" in text
    assert "400 tokens/s with sdpa attention (4.0x the first row)" in text
    assert "500 tokens/s with eager attention (5.0x the first row)" in text
    single = mc_labelling_speed.report([run("before", 10.0)], ceilings, 8, 8, 4)
    assert "Every row ran" not in single and "(10.0-" not in single


def test_report_names_the_rows_that_label_alike() -> None:
    digest = mc_labelling_speed.first_errors_digest
    assert digest([0, None, 1]) == digest([0, None, 1]) != digest([0, None, 2])
    assert digest([0, 1]) != digest([None, 1])
    rows = [run("a", 1.0), run("b", 1.0, labels=digest([2])), run("c", 1.0)]
    assert mc_labelling_speed.same_labels(rows) == (
        "Same first errors for every solution: `a` and `c`."
    )
    assert mc_labelling_speed.same_labels(rows[:2]) == (
        "Same first errors for every solution: no two rows."
    )


def test_every_row_stops_its_backend_before_the_next(monkeypatch: Any) -> None:
    """A vLLM row's engine must not outlive its row (its worker would slow the rows after)."""
    from prm.sample import SampledSolution
    from search.envs.arith.fakes import FakeGenerator
    from search.envs.arith.world import make_split

    closed: list[bool] = []

    class Closing(FakeGenerator):
        def close(self) -> None:
            closed.append(True)

    monkeypatch.setattr(mc_labelling_speed, "_build", lambda setup: Closing(seed=0))
    problem = make_split("test", size=1)[0]
    solution = SampledSolution(problem, 0, problem.gold_steps, finished=True, num_tokens=9)
    row = mc_labelling_speed.run_setup(mc_labelling_speed.SETUPS[2], [solution], 1, 2)
    assert closed == [True] and row["solutions"] == 1
    mc_labelling_speed.release(FakeGenerator(seed=0))  # a backend without close: nothing to do


def _has_commit(commit: str) -> bool:
    import subprocess

    found = subprocess.run(
        ["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT, capture_output=True
    )
    return found.returncode == 0


@pytest.mark.slow
def test_code_before_row_runs_that_commits_own_labeller(tmp_path: Path) -> None:
    """The first row of --code-before is the old commit's labeller, from its own files, with
    the columns of every other row."""
    from prm.sample import SampledSolution
    from search.envs.arith.world import make_split
    from search.jsonl import write_jsonl

    commit = mc_labelling_speed.CODE_BEFORE
    if not _has_commit(commit):
        pytest.skip(f"this clone lacks commit {commit} (a shallow or exported copy)")
    problems = make_split("train", size=2)
    solutions = [
        SampledSolution(problem, 0, problem.gold_steps, finished=False, num_tokens=20)
        for problem in problems
    ]
    samples = tmp_path / "samples.jsonl"
    write_jsonl(samples, [solution.to_record() for solution in solutions])
    row = mc_labelling_speed.run_code_before(commit, samples, solutions, 2, 2)
    assert row["setup"] == f"hf / arith-policy / full / code at {commit}"
    assert row["solutions"] == 2 and row["commit"] == commit
    # unfinished solutions: every step's prefix is rolled out, K=2 completions each
    steps = sum(len(solution.steps) for solution in solutions)
    assert 0 < row["rollouts"] <= 2 * steps and row["rollout_tokens"] > 0
    assert row["rollout_tokens_per_s"] == row["rollout_tokens"] / row["wall_s"]
    assert 0.0 <= row["first_error_accuracy"] <= 1.0


# the last commit before early-stop rounds rolled out a prefix that samples share once
BEFORE_SHARED_ROLLOUTS = "bc94d04"


@pytest.mark.slow
def test_code_before_row_runs_as_an_early_stop_setup(tmp_path: Path) -> None:
    """--code-before-setup 4 runs the commit's labeller as make prm's row (verifier base,
    early stop): two copies of a solution cost that commit twice the rollouts they cost
    today, for the same first errors."""
    from prm.sample import SampledSolution
    from search.envs.arith.world import make_split
    from search.jsonl import write_jsonl

    commit = BEFORE_SHARED_ROLLOUTS
    if not _has_commit(commit):
        pytest.skip(f"this clone lacks commit {commit} (a shallow or exported copy)")
    (problem,) = make_split("train", size=1)
    solutions = [
        SampledSolution(problem, index, problem.gold_steps, finished=False, num_tokens=20)
        for index in range(2)
    ]
    samples = tmp_path / "samples.jsonl"
    write_jsonl(samples, [solution.to_record() for solution in solutions])
    setup = mc_labelling_speed.SETUPS[4]
    assert setup.early_stop and setup.model.endswith("arith-verifier-base")
    before = mc_labelling_speed.run_code_before(commit, samples, solutions, 2, 2, setup)
    today = mc_labelling_speed.run_setup(setup, solutions, 2, 2)
    assert before["setup"] == f"hf / arith-verifier-base / early_stop / code at {commit}"
    assert before["rollouts"] == 2 * today["rollouts"] > 0
    assert before["rollout_tokens"] == 2 * today["rollout_tokens"]
    assert before["first_errors_digest"] == today["first_errors_digest"]


def test_code_before_refuses_a_vllm_setup() -> None:
    with pytest.raises(SystemExit, match="expected a transformers set-up"):
        mc_labelling_speed.run_code_before(
            "HEAD", Path("samples.jsonl"), [], 2, 2, mc_labelling_speed.SETUPS[2]
        )


def test_old_labeller_refuses_this_clones_packages(tmp_path: Path) -> None:
    """Run from a folder that holds no packages, the child would import this clone's (the
    editable install): it stops instead of timing today's code under the old name."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", mc_labelling_speed._OLD_LABELLER, "{}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert f"expected prm from {tmp_path}" in done.stderr


def test_code_before_names_the_fix_for_a_missing_commit(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="expected commit 0000000 in this clone's history"):
        mc_labelling_speed.unpack_commit("0000000", tmp_path)


def test_code_before_names_paths_a_commit_lacks(tmp_path: Path) -> None:
    """A commit that is in the history but lacks the labeller's files is told apart from a
    missing commit (whose fix is a full clone)."""
    commit = mc_labelling_speed.CODE_BEFORE
    if not _has_commit(commit):
        pytest.skip(f"this clone lacks commit {commit} (a shallow or exported copy)")
    with pytest.raises(SystemExit, match=f"expected no-such-folder in commit {commit}"):
        mc_labelling_speed.unpack_commit(commit, tmp_path, ("no-such-folder",))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--code-before", "HEAD", "--code-before-setup", "2"], "expected --code-before-setup in"),
        (["--code-before-setup", "-4"], "expected --code-before-setup in"),
        (["--code-before-setup", "4"], "expected --code-before COMMIT with --code-before-setup"),
    ],
)
def test_code_before_setup_is_checked_before_anything_runs(
    argv: list[str], message: str, monkeypatch: Any, capsys: Any
) -> None:
    monkeypatch.setattr(sys, "argv", ["mc_labelling_speed.py", *argv])
    with pytest.raises(SystemExit):
        mc_labelling_speed.main()
    assert message in capsys.readouterr().err
