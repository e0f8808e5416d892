"""benchmarks/mc_labelling_speed.py: repeated rows keep their median run and show the spread."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import mc_labelling_speed  # noqa: E402


def run(setup: str, wall_s: float, tokens: int = 1000) -> dict[str, Any]:
    return {
        "setup": setup,
        "rollouts": 10,
        "rollout_tokens": tokens,
        "startup_s": 0.0,
        "wall_s": wall_s,
        "rollout_tokens_per_s": tokens / wall_s,
        "solutions_per_s": 8 / wall_s,
        "first_error_accuracy": 0.5,
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
