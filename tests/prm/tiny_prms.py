"""Tiny PRMs for the scoring tests, built from a config in a second (no hub).

- the embedded PRM (``prm.arith_model.build_random_prm``: ``<step>`` tag, plain layout);
- a Qwen2.5-Math-PRM look-alike: the same architecture with a Qwen-style chat template and
  an ``<extra_0>`` tag added to the tokenizer (the code path of Qwen2.5-Math-PRM-7B);
- a Math-Shepherd look-alike: a causal LM with ``ки`` added, labels ``+`` / ``-``.

All have head_dim 64 (vLLM's CPU attention needs it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prm.arith_model import build_random_prm, save_prm
from prm.scoring import PRMFamily, PRMFormat
from search.envs.arith.tokenizer import build_tokenizer
from search.prompting import DEFAULT_SYSTEM_PROMPT

QWEN_STYLE_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
QWEN_STYLE_FORMAT = PRMFormat(
    family=PRMFamily.token_classification,
    step_tag="<extra_0>",
    use_chat_template=True,
    system_prompt=DEFAULT_SYSTEM_PROMPT,
    step_template="{step}{tag}",
    positive_label=1,
)
SHEPHERD_STYLE_FORMAT = PRMFormat(
    family=PRMFamily.label_token,
    step_tag="ки",
    good_token="+",
    bad_token="-",
    prompt_template="{question} ",
    step_template="{step} {tag}\n",
)


def sharpen(model: Any, factor: float = 10.0) -> Any:
    """Scale the output head so random scores spread over (0, 1) instead of sitting at 0.5:
    a test that compares scores then compares something."""
    import torch

    head = model.get_output_embeddings() if hasattr(model, "lm_head") else model.score
    with torch.no_grad():
        head.weight.mul_(factor)
    return model


def embedded_prm(seed: int = 0) -> tuple[Any, Any]:
    tokenizer = build_tokenizer()
    return sharpen(build_random_prm(tokenizer, seed=seed)), tokenizer


def qwen_style_tokenizer() -> Any:
    tokenizer = build_tokenizer()
    tokenizer.add_special_tokens(
        {"additional_special_tokens": ["<step>", "<extra_0>", "<|im_start|>", "<|im_end|>"]}
    )
    tokenizer.chat_template = QWEN_STYLE_TEMPLATE
    return tokenizer


def shepherd_style_tokenizer() -> Any:
    tokenizer = build_tokenizer()
    tokenizer.add_tokens(["ки"])
    return tokenizer


def qwen_style_prm(seed: int = 1) -> tuple[Any, Any]:
    tokenizer = qwen_style_tokenizer()
    return sharpen(build_random_prm(tokenizer, seed=seed)), tokenizer


def shepherd_style_prm(seed: int = 2, max_position_embeddings: int = 512) -> tuple[Any, Any]:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = shepherd_style_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=1,
        num_key_value_heads=1,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return sharpen(Qwen2ForCausalLM(config).eval()), tokenizer


def save(model: Any, tokenizer: Any, path: Path) -> Path:
    return save_prm(model, tokenizer, path)
