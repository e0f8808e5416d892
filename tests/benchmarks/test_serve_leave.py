"""benchmarks/serve_leave.py: leaving clients are dropped, the stayers' answers do not move."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

import serve_leave  # noqa: E402
from slow_fake import SlowFakeGenerator  # noqa: E402

from search.aggregation import Aggregation  # noqa: E402
from search.envs.arith.fakes import FakeScorer  # noqa: E402
from search.envs.arith.world import make_split  # noqa: E402
from search.serve.app import build_app  # noqa: E402
from search.serve.background import serve_in_background  # noqa: E402
from search.serve.service import SearchService  # noqa: E402
from search.strategies.config import StrategyConfig, StrategyName  # noqa: E402


def test_the_leaving_half_is_dropped_and_the_stayers_answers_hold() -> None:
    backends = serve_leave.Backends(
        serve_leave.CountingGenerator(SlowFakeGenerator(delay_s=0.15, seed=0)),
        serve_leave.CountingScorer(FakeScorer(seed=0)),
    )
    service = SearchService(
        backends.generator,  # type: ignore[arg-type]
        backends.scorer,
        StrategyConfig(name=StrategyName.beam, n=4, beam_width=2, max_steps=8),
        Aggregation.min,
    )
    questions = [p.question for p in make_split("test", size=6)]
    app = build_app(service, max_batch_problems=6, max_wait_s=0.2, disconnect_poll_s=0.05)
    with serve_in_background(app) as url:
        result = serve_leave.measure(app, url, backends, questions, leave_after=0.4)
    cases = result["cases"]
    assert result["stayers_same_answers"]
    assert [cases[name]["requests"] for name in cases] == [3, 6, 6]
    assert cases["half leave"]["dropped_requests"] == 3
    assert cases["all stay"]["dropped_requests"] == 0
    work = {name: cases[name]["generated_prefixes"] for name in cases}
    assert work["stayers alone"] < work["half leave"] < work["all stay"]
    assert all(cases[name]["strategy_calls"] == 1 for name in cases)
    result |= {"requests": 6, "n": 4, "leave_after": 0.4}
    text = serve_leave.markdown(result)
    assert "| half leave | 6 |" in text and "got the same answers" in text
