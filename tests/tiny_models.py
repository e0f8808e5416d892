"""Tiny models for tests, built from a config in seconds (no hub); importable by name from any
test (``from tiny_models import ...``), unlike ``conftest``, of which there are several."""

from __future__ import annotations

from pathlib import Path


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
