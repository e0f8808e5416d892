"""benchmarks/label_quality.py: MC runs side by side, the judge's row once, each MC run's
rollouts per solution read from its usage log."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import label_quality  # noqa: E402

from prm.label.quality import LabelQuality  # noqa: E402


def quality(labeller: str, accuracy: float) -> LabelQuality:
    return LabelQuality(labeller, 4, 4, 1.0, accuracy, 1.0, 0.5, 1, 0.0, 0.0)


def test_runs_side_by_side(tmp_path: Path) -> None:
    usage = [{"solutions": 2, "rollouts": 10}, {"solutions": 2, "rollouts": 4}]
    (tmp_path / "usage.jsonl").write_text("".join(json.dumps(u) + "\n" for u in usage))
    full = {"num_rollouts": 8, "early_stop": False, "records": tmp_path / "records.jsonl"}
    early = {"num_rollouts": 8, "early_stop": True, "records": tmp_path / "none" / "r.jsonl"}
    rows = [quality("mc", 0.5), quality("calculator", 0.9), quality("consensus", 1.0)]
    lines = label_quality.table([(early, rows), (full, rows)]).splitlines()
    assert len(lines) == 2 + 5  # header, rule; mc, judge, consensus; mc, consensus
    assert sum("| calculator |" in line for line in lines) == 1
    assert lines[2].startswith("| early stop, right answers trusted | - | mc |")
    assert lines[5].startswith("| full | 3.50 | mc |")  # 14 rollouts over 4 solutions
    assert lines[6].startswith("| full | - | consensus |")
