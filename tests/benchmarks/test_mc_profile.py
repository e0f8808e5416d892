"""benchmarks/mc_profile.py: every model call is timed and the parts add up to the row."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import mc_profile  # noqa: E402

from prm.sample import SampledSolution  # noqa: E402
from search.envs.arith.world import make_split  # noqa: E402


def test_the_profile_splits_the_row_into_model_calls_and_the_rest() -> None:
    problems = make_split("train", size=3)
    wrong = "The answer is \\boxed{-999}."  # a wrong answer: MC rolls its prefixes out
    solutions = [SampledSolution(p, 0, (*p.gold_steps[:-1], wrong), True, 20) for p in problems]
    result = mc_profile.profile(solutions, chunk=3, rollouts=2)
    decode_steps = sum(bucket["row_steps"] for bucket in result["decode"])
    assert result["rollout_tokens"] > 0 and decode_steps >= result["rollout_tokens"] - 3 * 2 * 3
    assert result["prefill"]["calls"] >= 1 and result["prefill"]["tokens"] > 0
    model_s = result["prefill"]["seconds"] + sum(b["seconds"] for b in result["decode"])
    assert result["outside_model_s"] >= 0 and model_s + result["outside_model_s"] > 0
    assert abs(model_s + result["outside_model_s"] - result["wall_s"]) < 1e-6
    text = mc_profile.report(result, chunk=3, rollouts=2)
    assert "| prefill |" in text and "| outside the model |" in text
