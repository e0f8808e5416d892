"""README's "Plugging in a custom PRM", done exactly as documented, from a directory outside
the repository."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_custom_scorer_from_a_user_directory(tmp_path: Path) -> None:
    user_dir = tmp_path / "my_prms"
    (user_dir / "scorer").mkdir(parents=True)
    shutil.copy(
        REPO_ROOT / "tests" / "prm" / "custom_scorer_example.py", user_dir / "length_penalty.py"
    )
    (user_dir / "scorer" / "length_penalty.yaml").write_text(
        "_target_: length_penalty.LengthPenaltyScorer\nmax_chars: 120\n"
    )
    run_dir = tmp_path / "run"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "search",
            "--config-dir",
            str(user_dir),
            "scorer=length_penalty",
            "scorer.max_chars=80",
            "policy=fake",
            "dataset.limit=3",
            "strategy.n=4",
            "progress=false",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=user_dir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["scorer"] == "length_penalty.LengthPenaltyScorer"
    assert metrics["prm_tokens"] is None  # the scorer does not report usage: unknown, not 0
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert len(records) == 3
    for record in records:
        for candidate in record["candidates"]:
            steps, scores = candidate["steps"], candidate["step_scores"]
            assert len(scores) == len(steps)
            for step, score in zip(steps, scores, strict=True):
                assert abs(score - max(0.05, 1 - len(step) / 80)) < 1e-9  # max_chars=80 won


def test_custom_scorer_object_from_python(tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO_ROOT / "tests" / "prm"))
    try:
        from custom_scorer_example import LengthPenaltyScorer
    finally:
        sys.path.pop(0)
    from search.aggregation import Aggregation
    from search.envs.arith.fakes import FakeGenerator
    from search.envs.arith.world import make_split
    from search.strategies import build_strategy
    from search.strategies.config import StrategyConfig, StrategyName

    strategy = build_strategy(
        StrategyConfig(name=StrategyName.beam, n=4, beam_width=2), Aggregation.min
    )
    results = strategy.run(
        make_split("test", size=2), FakeGenerator(seed=0), LengthPenaltyScorer(max_chars=50)
    )
    assert [len(r.candidates) for r in results] == [4, 4]
    assert all(c.step_scores is not None for r in results for c in r.candidates)
