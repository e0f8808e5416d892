"""The arithmetic world's embedded PRM: a Qwen2 token classifier over the policy's tokenizer and
``<step>`` tag.

``Qwen2ForTokenClassification`` with two labels (0 ``wrong``, 1 ``right``): a step's score is
the softmax probability of ``right`` at the ``<step>`` tag after it, the design of
Qwen2.5-Math-PRM (arXiv 2501.07301) at toy scale. It reads the policy's own layout
(``EMBEDDED_PRM_FORMAT``), and its checkpoint (``config.json``, ``model.safetensors`` and
tokenizer files) loads in both scorer backends. Initialise one from the policy with::

    python -m prm.arith_model checkpoints/arith-policy checkpoints/arith-prm-init
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from prm.scoring.format import PRMFamily, PRMFormat, lookup_single_token
from search.envs.arith.tokenizer import STEP_TAG, build_tokenizer
from search.prompting import PLAIN_TEMPLATE

log = logging.getLogger(__name__)

PRM_LABELS = {0: "wrong", 1: "right"}
POSITIVE_LABEL = 1
EMBEDDED_PRM_FORMAT = PRMFormat(
    family=PRMFamily.token_classification,
    step_tag=STEP_TAG,
    use_chat_template=False,
    prompt_template=PLAIN_TEMPLATE,
    step_template="{step}{tag}\n\n",
    positive_label=POSITIVE_LABEL,
)


def prm_config(base: Any, extra_layers: int = 0) -> Any:
    """A copy of a Qwen2 config with the PRM's 2-label head (and no LM head to tie), and
    ``extra_layers`` more decoder layers than ``base``."""
    config = base.__class__.from_dict(base.to_dict())
    if extra_layers:
        config.num_hidden_layers = base.num_hidden_layers + extra_layers
        if getattr(base, "layer_types", None):
            config.layer_types = [*base.layer_types, *[base.layer_types[-1]] * extra_layers]
    config.num_labels = len(PRM_LABELS)
    config.id2label = dict(PRM_LABELS)
    config.label2id = {label: index for index, label in PRM_LABELS.items()}
    config.architectures = ["Qwen2ForTokenClassification"]
    config.tie_word_embeddings = False
    return config


def _init_head(model: Any, seed: int) -> None:
    """The classification head from a local generator: normal(0, initializer_range), bias 0."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    std = float(getattr(model.config, "initializer_range", 0.02))
    with torch.no_grad():
        weight = torch.randn(model.score.weight.shape, generator=generator) * std
        model.score.weight.copy_(weight)
        if model.score.bias is not None:
            model.score.bias.zero_()


def _check_tokenizer(tokenizer: Any) -> None:
    lookup_single_token(tokenizer, STEP_TAG, "step tag")


def build_random_prm(
    tokenizer: Any | None = None,
    *,
    hidden_size: int = 64,
    intermediate_size: int = 128,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 1,
    max_position_embeddings: int = 512,
    seed: int = 0,
) -> Any:
    """A randomly initialised embedded-PRM architecture for tests (head_dim 64 by default,
    as vLLM's CPU attention needs); ``tokenizer`` defaults to the embedded one."""
    import torch
    from transformers import Qwen2Config, Qwen2ForTokenClassification

    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    if hidden_size % num_attention_heads:
        raise ValueError(
            f"expected hidden_size divisible by num_attention_heads, got {hidden_size} and "
            f"{num_attention_heads}"
        )
    base = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_attention_heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForTokenClassification(prm_config(base))
    _init_head(model, seed)
    return model.eval()


def save_prm(model: Any, tokenizer: Any, output_dir: Path) -> Path:
    """Write an HF checkpoint (model + tokenizer) that both scorer backends load."""
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    return output_dir


def _append_identity_layers(model: Any, first_new: int) -> None:
    """Layers ``first_new`` and above start as the identity on the residual stream: their
    attention and MLP output projections are zero, so the deeper model computes exactly what
    the policy's layers compute until training moves them."""
    import torch

    with torch.no_grad():
        for layer in model.model.layers[first_new:]:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()


def init_prm_from_policy(
    policy_dir: Path,
    output_dir: Path,
    seed: int = 0,
    extra_layers: int = 0,
    tag_from_separator: bool = False,
) -> Path:
    """The embedded PRM initialised from the policy: the policy's transformer weights, a new
    seeded 2-label head, and the policy's tokenizer (which must have the ``<step>`` tag).

    ``extra_layers`` > 0 stacks that many new decoder layers on the policy's, initialised as
    the identity (`_append_identity_layers`). A causal model reads a step's result only at the
    last of its layers that compute it; the tag after the step needs more depth to compare the
    two, which a verifier as deep as its policy lacks.

    ``tag_from_separator`` starts the ``<step>`` tag's embedding as the newline's, the token
    the policy saw where the tag now stands. The policy never saw the tag: its untrained
    embedding becomes a high-norm attention sink whose hidden state barely depends on the
    step before it (measured in README). Returns ``output_dir``."""
    import torch
    from transformers import AutoTokenizer, Qwen2ForCausalLM, Qwen2ForTokenClassification

    if not (policy_dir / "config.json").exists():
        raise FileNotFoundError(
            f"expected a policy checkpoint (config.json) in {policy_dir}, got none; fix: train "
            "it with `python -m search.envs.arith.train_policy`"
        )
    tokenizer = AutoTokenizer.from_pretrained(str(policy_dir))
    _check_tokenizer(tokenizer)
    policy = Qwen2ForCausalLM.from_pretrained(str(policy_dir), dtype=torch.float32)
    if extra_layers < 0:
        raise ValueError(f"expected extra_layers >= 0, got {extra_layers}")
    torch.manual_seed(seed)  # the new layers' weights
    model = Qwen2ForTokenClassification(prm_config(policy.config, extra_layers))
    missing, unexpected = model.model.load_state_dict(policy.model.state_dict(), strict=False)
    depth = policy.config.num_hidden_layers
    new_layers = tuple(f"layers.{index}." for index in range(depth, depth + extra_layers))
    not_loaded = (
        [key for key in missing if not key.startswith(new_layers)] if new_layers else missing
    )
    if unexpected or not_loaded:
        raise ValueError(
            f"expected the policy's weights to fill the PRM's first {depth} layers, got missing "
            f"{not_loaded} and unexpected {unexpected}; fix: initialise from a Qwen2 policy"
        )
    _append_identity_layers(model, depth)
    if tag_from_separator:
        embeddings = model.model.embed_tokens.weight
        newline = tokenizer.encode("\n", add_special_tokens=False)
        with torch.no_grad():
            embeddings[tokenizer.convert_tokens_to_ids(STEP_TAG)] = embeddings[newline[-1]]
    _init_head(model, seed)
    log.info(
        "initialised PRM from %s (+%d layers, head seed %d) -> %s",
        policy_dir, extra_layers, seed, output_dir,
    )  # fmt: skip
    return save_prm(model, tokenizer, output_dir)


def main() -> None:
    """argparse, not Hydra: two paths and a seed, no config groups, no run directory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("policy_dir", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extra-layers", type=int, default=0)
    parser.add_argument("--tag-from-separator", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    init_prm_from_policy(
        args.policy_dir, args.output_dir, args.seed, args.extra_layers, args.tag_from_separator
    )


if __name__ == "__main__":
    main()
