"""The optimizer both trainers use (the policy's SFT and the PRM's): AdamW with weight decay
on weight matrices only, none on biases and norms."""

from __future__ import annotations

from typing import Any


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
