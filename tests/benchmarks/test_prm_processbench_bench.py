"""benchmarks/prm_processbench.py --split: validation is the yardstick for choosing a PRM recipe,
so its subsets must hold validation problems only, and the test-only hard subset stays out."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import prm_processbench  # noqa: E402

from search.envs.arith.export import export_processbench  # noqa: E402
from search.envs.arith.world import Split, make_split  # noqa: E402

POLICY = {"model": "unused"}


def test_test_split_keeps_its_three_subsets() -> None:
    names = [name for name, _ in prm_processbench.subsets(Split.test, 10, POLICY)]
    assert names == ["arith-test-policy", "arith-hard-policy", "arith-test-corrupt"]


def test_validation_subsets_hold_validation_problems_only(tmp_path: Path) -> None:
    chosen = prm_processbench.subsets(Split.validation, 12, POLICY)
    assert [name for name, _ in chosen] == ["arith-validation-policy", "arith-validation-corrupt"]
    assert all(config.split is Split.validation for _, config in chosen)
    corrupt = chosen[-1][1]
    corrupt.output = str(tmp_path / "corrupt.json")
    path, _ = export_processbench(corrupt)
    questions = {record["problem"] for record in json.loads(path.read_text())}
    validation = {p.question for p in make_split(Split.validation, size=12)}
    test = {p.question for p in make_split(Split.test)}
    assert questions and questions <= validation
    assert not questions & test


def test_other_splits_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="--split test"):
        prm_processbench.subsets(Split.hard, 10, POLICY)
