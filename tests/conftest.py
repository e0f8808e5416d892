"""Shared fixtures: tiny models built from a config in seconds (no hub)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
POLICY_DIR = REPO_ROOT / "checkpoints" / "arith-policy"
PRM_DIR = REPO_ROOT / "checkpoints" / "arith-prm"


def save_tiny_policy(out: Path, hidden_size: int = 64, heads: int = 1, kv_heads: int = 1) -> Path:
    """A randomly initialised 2-layer Qwen2 causal LM with the embedded tokenizer, saved to
    ``out`` (head_dim = hidden_size / heads: 64 by default, as vLLM's CPU attention needs)."""
    from search.envs.arith.tokenizer import build_tokenizer
    from search.envs.arith.train_policy import ModelShape, build_model

    tokenizer = build_tokenizer()
    shape = ModelShape(
        hidden_size=hidden_size,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=256,
    )
    model = build_model(tokenizer, shape, seed=0)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


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
