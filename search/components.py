"""Helpers for components built from ``_target_`` config nodes (datasets, policies, scorers):
the backend sub-blocks (``policy.hf``, ``scorer.vllm``...) and a component's name for
provenance. Plain mappings in, no Hydra."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def backend_options(
    component: str, backend: str, given: Mapping[str, Any] | None, allowed: tuple[str, ...]
) -> dict[str, Any]:
    """The ``component.backend`` sub-block of a config (``policy.hf``, ``scorer.vllm``...) as
    keyword arguments; an unknown key is an error naming it."""
    options = dict(given or {})
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"expected {component}.{backend} options among {list(allowed)}, got unknown "
            f"{unknown}; fix: check the spelling under {component}.{backend}"
        )
    return options


def component_name(node: Mapping[str, Any] | None, key: str = "model") -> str | None:
    """What a ``_target_`` node builds, for provenance: its ``key`` (the model), else its
    target."""
    if node is None:
        return None
    value = node.get(key)
    return str(value) if value is not None else str(node.get("_target_"))
