"""Tiny models for tests, built from a config in seconds (no hub); importable by name from any
test (``from tiny_models import ...``), unlike ``conftest``, of which there are several."""

from __future__ import annotations

from pathlib import Path
from typing import Any


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
    return save_with_tokenizer(out, build_model(tokenizer, shape, seed=0), tokenizer)


def save_tiny_model(out: Path, config: Any) -> Path:
    """A random causal LM of any architecture's ``config`` (seed 0) with the embedded
    tokenizer, saved to ``out``."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    return save_with_tokenizer(out, AutoModelForCausalLM.from_config(config))


def save_with_tokenizer(out: Path, model: Any, tokenizer: Any = None) -> Path:
    """``model`` and the embedded tokenizer (or ``tokenizer``) saved to ``out``."""
    from search.envs.arith.tokenizer import build_tokenizer

    model.save_pretrained(str(out))
    (tokenizer or build_tokenizer()).save_pretrained(str(out))
    return out


def count_shared_chunks(monkeypatch: Any) -> list[int]:
    """From now on (for the test), the rows of every chunk whose prompts the transformers
    generator shares (shared-prompt attention), one entry per chunk."""
    from search.generators.hf import HFGenerator

    shared: list[int] = []
    share = HFGenerator._share_prompts

    def counting(self: HFGenerator, *args: Any) -> Any:  # (cache, attention, to_rows, rows, limit)
        shared.append(args[3])
        return share(self, *args)

    monkeypatch.setattr(HFGenerator, "_share_prompts", counting)
    return shared
