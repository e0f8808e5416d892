"""``build_scorer``: one entry point for every PRM config (``conf/scorer/*.yaml``).

The format keys (family, tag, layout) and the common keys are flat; what only one backend
understands sits under ``hf:`` or ``vllm:``, so switching backend is one override::

    python -m search scorer=qwen25_math_prm_7b scorer.backend=vllm
    python -m search scorer=arith_prm scorer.vllm.reuse_prefix_cache=false scorer.backend=vllm
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from prm.scoring.base import StepTagScorer
from prm.scoring.encoding import OverflowPolicy
from prm.scoring.format import PRMFamily, PRMFormat
from search.config import backend_options
from search.prompting import DEFAULT_SYSTEM_PROMPT, PLAIN_TEMPLATE


class Backend(str, Enum):
    hf = "hf"
    vllm = "vllm"


_HF_KEYS = (
    "batch_size",
    "device",
    "device_map",
    "auto_class",
    "reuse_prefix_cache",
    "prefix_cache_tokens",
)
_VLLM_KEYS = (
    "gpu_memory_utilization",
    "tensor_parallel_size",
    "block_size",
    "enforce_eager",
    "reuse_prefix_cache",
    "kv_cache_space_gib",
    "seed",
)


def build_scorer(
    model: str,
    backend: Backend | str = Backend.hf,
    *,
    family: PRMFamily | str = PRMFamily.token_classification,
    step_tag: str = "<step>",
    use_chat_template: bool = False,
    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
    prompt_template: str = PLAIN_TEMPLATE,
    step_template: str = "{step}{tag}\n\n",
    positive_label: int = 1,
    good_token: str | None = None,
    bad_token: str | None = None,
    add_bos_token: bool = False,
    tokenizer: str | None = None,
    dtype: str = "auto",
    max_length: int | None = None,
    on_overflow: OverflowPolicy | str = OverflowPolicy.error,
    trust_remote_code: bool = False,
    hf: Mapping[str, Any] | None = None,
    vllm: Mapping[str, Any] | None = None,
) -> StepTagScorer:
    """Load a step-tag PRM with the chosen backend (``hf``: transformers, ``vllm``: pooling).

    The keyword arguments from ``family`` to ``add_bos_token`` make the ``PRMFormat``.
    ``hf`` options: ``batch_size``, ``device``, ``device_map``, ``auto_class``,
    ``reuse_prefix_cache``, ``prefix_cache_tokens`` (see ``HFScorer.load``); ``vllm``
    options: ``gpu_memory_utilization``, ``tensor_parallel_size``, ``block_size``,
    ``enforce_eager``, ``reuse_prefix_cache``, ``kv_cache_space_gib``, ``seed`` (see
    ``VLLMScorer.load``). The options of the backend
    not chosen are ignored, so one config serves both.
    """
    try:
        chosen = Backend(backend)
    except ValueError:
        raise ValueError(f"expected backend hf or vllm, got {backend!r}") from None
    try:
        chosen_family = PRMFamily(family)
    except ValueError:
        choices = [member.value for member in PRMFamily]
        raise ValueError(f"expected family in {choices}, got {family!r}") from None
    fmt = PRMFormat(
        family=chosen_family,
        step_tag=step_tag,
        use_chat_template=use_chat_template,
        system_prompt=system_prompt,
        prompt_template=prompt_template,
        step_template=step_template,
        positive_label=positive_label,
        good_token=good_token,
        bad_token=bad_token,
        add_bos_token=add_bos_token,
    )
    hf_options = backend_options("scorer", "hf", hf, _HF_KEYS)
    vllm_options = backend_options("scorer", "vllm", vllm, _VLLM_KEYS)
    common: dict[str, Any] = {
        "tokenizer": tokenizer,
        "dtype": dtype,
        "trust_remote_code": trust_remote_code,
        "max_length": max_length,
        "on_overflow": on_overflow,
    }
    if chosen is Backend.hf:
        from prm.scoring.hf_backend import HFScorer

        return HFScorer.load(model, fmt, **common, **hf_options)
    from prm.scoring.vllm_backend import VLLMScorer

    return VLLMScorer.load(model, fmt, **common, **vllm_options)
