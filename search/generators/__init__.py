"""Generator backends behind ``search.protocols.Generator``: transformers (``hf``) and vLLM
(``vllm``). Heavy libraries are imported only when a backend is built.

A policy is a ``_target_`` node (``conf/policy/*.yaml``), like a scorer; entry points build
it with ``hydra.utils.instantiate(node, seed=seed)``. The local-model backends share one
builder, ``build_generator``: the keys every backend understands are flat, the ones only one
backend understands sit under ``hf:`` / ``vllm:``, so switching backend is one override::

    python -m search policy.backend=vllm

A backend with other settings (a remote server, the fake policy of the arithmetic world)
is one class satisfying ``Generator`` whose constructor takes ``seed``, and one YAML file
whose ``_target_`` names that class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from search.components import (
    backend_options,
    checks_settings_with,
    enum_setting,
    int_setting,
)
from search.protocols import Generator
from search.resolve import resolve_model_path


class Backend(str, Enum):
    hf = "hf"
    vllm = "vllm"


HF_KEYS = (
    "batch_size",
    "device",
    "kv_cache",
    "prefix_cache_tokens",
    "attn_implementation",
    "shared_prompt_attention",
    "shared_prompt_min_rows",
)
VLLM_KEYS = (
    "gpu_memory_utilization",
    "max_model_len",
    "enable_prefix_caching",
    "cpu_kvcache_space_gib",
    "enforce_eager",
    "tensor_parallel_size",
    "max_num_seqs",
)


@dataclass(frozen=True)
class GeneratorPlan:
    """A policy's settings, checked, before anything loads (``generator_plan``)."""

    backend: Backend
    common: dict[str, Any]
    hf_options: dict[str, Any]
    vllm_options: dict[str, Any]


def generator_plan(
    model: str,
    backend: Backend | str = Backend.hf,
    *,
    seed: int = 0,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_step_tokens: int = 64,
    max_tokens: int = 256,
    dtype: str = "auto",
    use_chat_template: bool | None = None,
    system_prompt: str | None = None,
    trust_remote_code: bool = False,
    hf: Mapping[str, Any] | None = None,
    vllm: Mapping[str, Any] | None = None,
) -> GeneratorPlan:
    """``build_generator``'s arguments checked without loading anything (the entry points
    call it through ``search.components.check_component`` before any model loads): the
    backend, both backends' options (a config serves both), the sampling settings and the
    dtype. Raises ValueError naming the setting and the fix."""
    from search.generators.base import GenerationSettings
    from search.generators.hf import KV_CACHES, check_attn_implementation
    from search.resolve import check_dtype

    chosen = enum_setting(
        Backend,
        backend,
        "policy.backend",
        "policy.backend=hf, or a policy config whose _target_ is your own Generator class",
    )
    hf_options = backend_options("policy", "hf", hf, HF_KEYS)
    if "attn_implementation" in hf_options:  # checked even when vllm is chosen: one config
        check_attn_implementation(hf_options["attn_implementation"])
    if hf_options.get("kv_cache", "buffer") not in KV_CACHES:
        raise ValueError(
            f"expected policy.hf.kv_cache in {list(KV_CACHES)}, got "
            f"{hf_options['kv_cache']!r}; fix: policy.hf.kv_cache=buffer"
        )
    shared = hf_options.get("shared_prompt_attention", True)
    if not isinstance(shared, bool):
        raise ValueError(
            f"expected policy.hf.shared_prompt_attention true or false, got {shared!r}; fix: "
            "policy.hf.shared_prompt_attention=true"
        )
    for key, least, fix in (
        ("batch_size", 1, 256),
        ("prefix_cache_tokens", 0, 65536),
        ("shared_prompt_min_rows", 1, 64),
    ):
        name = f"policy.hf.{key}"
        int_setting(hf_options.get(key, least), name, least, f"{name}={fix}")
    vllm_options = backend_options("policy", "vllm", vllm, VLLM_KEYS)
    GenerationSettings(temperature, top_p, max_step_tokens, max_tokens)  # raises if bad
    check_dtype(dtype, "policy.dtype")
    common: dict[str, Any] = {
        "temperature": temperature,
        "top_p": top_p,
        "max_step_tokens": max_step_tokens,
        "max_tokens": max_tokens,
        "seed": seed,
        "dtype": dtype,
        "use_chat_template": use_chat_template,
        "system_prompt": system_prompt,
        "trust_remote_code": trust_remote_code,
    }
    return GeneratorPlan(chosen, common, hf_options, vllm_options)


@checks_settings_with(generator_plan)
def build_generator(model: str, backend: Backend | str = Backend.hf, **settings: Any) -> Generator:
    """Load the policy ``model`` (a local directory, relative paths also tried from the
    repository root where the embedded checkpoints live, or a hub name) on ``backend``.
    ``settings`` are ``generator_plan``'s keyword arguments (its signature lists them with
    their defaults; it checks them all before anything loads).

    ``max_step_tokens`` caps one step, ``max_tokens`` the rest of a solution;
    ``use_chat_template=None`` uses the tokenizer's chat template when it has one.
    ``hf`` options: ``batch_size``, ``device``, ``kv_cache``, ``prefix_cache_tokens``,
    ``attn_implementation``, ``shared_prompt_attention``, ``shared_prompt_min_rows`` (see
    ``HFGenerator``); ``vllm`` options:
    ``gpu_memory_utilization``, ``max_model_len``, ``enable_prefix_caching``,
    ``cpu_kvcache_space_gib``, ``enforce_eager``, ``tensor_parallel_size``, ``max_num_seqs``
    (sequences decoded together; vLLM's default on CPU is 256) (see ``VLLMGenerator``). The
    options of the backend not chosen are checked and ignored, so one config serves both
    (``generator_plan`` checks them all before anything loads).
    """
    plan = generator_plan(model, backend, **settings)
    path = resolve_model_path(model)  # the policy, or e.g. a judge_local generator
    if plan.backend is Backend.hf:
        from search.generators.hf import HFGenerator

        return HFGenerator(path, **plan.common, **plan.hf_options)
    from search.generators.vllm import VLLMGenerator

    return VLLMGenerator(path, **plan.common, **plan.vllm_options)


BUILD_GENERATOR = "search.generators.build_generator"


class PromptMeasure:
    """A policy's prompt lengths and context without its weights
    (``search.protocols.ContextLimited``): its tokenizer and ``config.json``, so that a run
    refuses prompts that do not fit before the policy loads (``local_prompt_measure``)."""

    def __init__(self, renderer: Any, context_length: int | None) -> None:
        self.renderer = renderer
        self.context_length = context_length

    def prompt_length(self, prefix: Any) -> int:
        return len(self.renderer.encode(prefix))


def local_prompt_measure(node: Mapping[str, Any]) -> PromptMeasure | None:
    """The ``PromptMeasure`` of a ``build_generator`` policy node whose model is a local
    folder (the context: ``config.json``'s ``max_position_embeddings``, or the vLLM
    ``max_model_len`` asked for); ``None`` for any other policy (a server's, a hub name, your
    own class), which the run measures once it is built."""
    model = node.get("model")
    if node.get("_target_") != BUILD_GENERATOR or model is None:
        return None
    from transformers import AutoTokenizer

    from search.generators.base import PromptRenderer
    from search.resolve import local_json, local_model_dir

    folder = local_model_dir(str(model))
    config = local_json(str(model), "config.json")
    if folder is None or config is None:
        return None
    positions = config.get("max_position_embeddings")
    context = int(positions) if isinstance(positions, int) and positions > 0 else None
    asked = (node.get("vllm") or {}).get("max_model_len")
    if node.get("backend") == Backend.vllm.value:
        if isinstance(asked, int) and asked > 0:
            context = asked
        elif config.get("rope_scaling"):  # vLLM derives a longer context from it: its own check
            return None
    if context is None:
        return None
    tokenizer = AutoTokenizer.from_pretrained(
        folder, trust_remote_code=bool(node.get("trust_remote_code", False))
    )
    # prompts are measured against the context here: the tokenizer's own "indexing errors"
    # warning (its "said already" flag) would only repeat that, as an alarm
    tokenizer.deprecation_warnings["sequence-length-is-longer-than-the-specified-maximum"] = True
    renderer = PromptRenderer(tokenizer, node.get("use_chat_template"), node.get("system_prompt"))
    return PromptMeasure(renderer, context)
