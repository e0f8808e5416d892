"""benchmarks/prm_train_speed.py: the padding share it reports for plain and packed batches
is counted from the rows each layout really makes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from prm_train_speed import padding_share  # noqa: E402


def test_padding_share_of_plain_and_packed_batches() -> None:
    lengths = [10, 4, 6, 2]  # 22 real tokens in one batch of 4
    # padded: 4 rows of 10
    assert padding_share(lengths, [0, 1, 2, 3], batch_size=4, steps=1) == pytest.approx(0.45)
    # packed: rows [10], [6, 4], [2] of width 10
    packed = padding_share(lengths, [0, 1, 2, 3], batch_size=4, steps=1, packed=True)
    assert packed == pytest.approx(8 / 30)
