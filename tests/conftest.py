"""Shared fixtures: tiny models built from a config in seconds (no hub)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import save_tiny_policy

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
POLICY_DIR = REPO_ROOT / "checkpoints" / "arith-policy"
PRM_DIR = REPO_ROOT / "checkpoints" / "arith-prm"


@pytest.fixture(scope="session")
def tiny_policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Qwen2 causal LM with the embedded tokenizer (head_dim 64)."""
    return save_tiny_policy(tmp_path_factory.mktemp("tiny-policy"))


@pytest.fixture(autouse=True)
def _fresh_pretrained_memo() -> None:
    """Each test starts without the pre-load checks' remembered tokenizers and configs
    (``prm.scoring.factory._read_pretrained``), so a test that counts or patches loads does
    not depend on which test read the same folder before it."""
    from prm.scoring.factory import _read_pretrained

    _read_pretrained.cache_clear()
