"""Training helpers both trainers use (the policy's SFT and the PRM's): the optimizer (AdamW
with weight decay on weight matrices only, none on biases and norms) and the learning-rate
schedule (linear warmup, then linear decay to 0)."""

from __future__ import annotations

from typing import Any


def warmup_linear_decay(
    step: int, learning_rate: float, warmup_steps: int, total_steps: int
) -> float:
    """The learning rate of 0-based ``step``: ``learning_rate * (step + 1) / warmup_steps``
    during warmup, then linear decay reaching 0 at ``total_steps``."""
    if step < warmup_steps:
        return learning_rate * (step + 1) / warmup_steps
    left = (total_steps - step) / max(1, total_steps - warmup_steps)
    return learning_rate * max(0.0, left)


def adamw_without_decay_on_norms(
    model: Any, learning_rate: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999)
) -> Any:
    import torch

    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, param in model.named_parameters():
        (no_decay if param.ndim < 2 or "norm" in name else decay).append(param)
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=learning_rate,
        betas=betas,
    )
