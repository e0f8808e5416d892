"""The vLLM pooling backend of the step-tag PRM scorer.

``LLM(runner="pooling")`` with ``llm.encode(..., pooling_task="token_classify")`` returns one
row of logits per input token. The inputs are token ids (``TokensPrompt``) made by the same
Hugging Face tokenizer and ``PrefixEncoder`` as the transformers backend, so both see
identical inputs; activation is off (``use_activation=False``) and the softmax is the
shared one of ``prm.scoring.base``, so the scores match the transformers backend.

- ``token_classification``: ``Qwen2ForTokenClassification`` (the embedded PRM) is served by
  vLLM's classify adapter; ``Qwen2ForProcessRewardModel`` (Qwen2.5-Math-PRM) natively.
- ``label_token``: the causal LM is converted to a 2-label head whose rows are the LM-head
  rows of the good and bad tokens (``hf_overrides={"classifier_from_token": [good, bad],
  "method": "no_post_processing"}``), which gives exactly the good/bad logits.

Prefix caching. vLLM skips *reading* its prefix cache for ``token_classify`` requests by
default, because a cached token yields no output row. With ``reuse_prefix_cache=True`` this
scorer asks it to read the cache anyway (``PoolingParams.skip_reading_prefix_cache=False``)
and takes the scores of tags inside the cached part from its own memo of earlier results:
the logits at a tag depend only on the tokens up to it (causal attention), so they are keyed
by a digest of that token prefix. A tag not in the memo re-runs its input without cache
reads. Output rows are checked against ``num_cached_tokens``; a mismatch is an error.

CPU notes: vLLM's CPU attention needs head_dim 64; ``VLLM_CPU_KVCACHE_SPACE`` (GiB) defaults
to ``kv_cache_space_gib`` when unset; vLLM starts worker processes, so a script that builds a
``VLLMScorer`` needs an ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prm.scoring.base import StepTagScorer
from prm.scoring.encoding import (
    EncodedPrefix,
    OverflowPolicy,
    PrefixEncoder,
    resolve_max_length,
)
from prm.scoring.format import PRMFamily, PRMFormat
from search.resolve import resolve_dtype, resolve_model_path

log = logging.getLogger(__name__)


def _tag_digests(token_ids: Sequence[int], tag_positions: Sequence[int]) -> list[bytes]:
    """A digest of ``token_ids[: p + 1]`` for every tag position ``p`` (blake2b, 16 bytes)."""
    ids = np.asarray(token_ids, dtype=np.int64)
    running = hashlib.blake2b(digest_size=16)
    digests = []
    start = 0
    for position in tag_positions:
        running.update(ids[start : position + 1].tobytes())
        start = position + 1
        digests.append(running.copy().digest())
    return digests


class VLLMScorer(StepTagScorer):
    """A step-tag PRM run by a vLLM pooling engine (``search.protocols.Scorer``).

    ``llm``: a ``vllm.LLM`` started with ``runner="pooling"`` whose token-classify output
    has 2 columns ordered as the format reads them; ``VLLMScorer.load`` starts one.
    """

    def __init__(
        self,
        llm: Any,
        tokenizer: Any,
        fmt: PRMFormat,
        *,
        max_length: int,
        on_overflow: OverflowPolicy | str = OverflowPolicy.error,
        reuse_prefix_cache: bool = True,
    ) -> None:
        super().__init__(PrefixEncoder(tokenizer, fmt, max_length, on_overflow))
        self.llm = llm
        self.reuse_prefix_cache = reuse_prefix_cache
        if fmt.family is PRMFamily.token_classification:
            self._columns = [fmt.positive_label, 1 - fmt.positive_label]
        else:
            self._columns = [0, 1]  # classifier_from_token = [good, bad]
        self._memo: dict[bytes, np.ndarray] = {}
        self.cached_tokens = 0  # tokens vLLM read from its prefix cache instead of computing
        self.recomputed_inputs = 0  # inputs re-run because a cached tag was not in the memo

    @classmethod
    def load(
        cls,
        model: str | Path,
        fmt: PRMFormat,
        *,
        tokenizer: str | Path | None = None,
        dtype: str = "auto",
        trust_remote_code: bool = False,
        max_length: int | None = None,
        on_overflow: OverflowPolicy | str = OverflowPolicy.error,
        gpu_memory_utilization: float = 0.3,
        tensor_parallel_size: int = 1,
        block_size: int | None = None,
        enforce_eager: bool | None = None,
        reuse_prefix_cache: bool = True,
        kv_cache_space_gib: int = 1,
        seed: int = 0,
        **engine_kwargs: Any,
    ) -> VLLMScorer:
        """Start a vLLM pooling engine on a checkpoint (local path or hub name).

        ``enforce_eager=None``: eager on CPU (no graph capture), compiled on CUDA.
        ``block_size``: tokens per KV-cache block, the granularity of prefix-cache hits
        (``None``: vLLM's default, 128 on CPU and 16 on CUDA). ``engine_kwargs`` go to
        ``vllm.LLM`` as they are (e.g. ``load_format="dummy"``: random weights, for
        benchmarks).
        """
        import torch
        import transformers

        cuda = torch.cuda.is_available()
        if not cuda and "VLLM_CPU_KVCACHE_SPACE" not in os.environ:
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(kv_cache_space_gib)
        from vllm import LLM
        from vllm.config import PoolerConfig

        path = resolve_model_path(model, key="scorer.model")
        tokenizer_path = (
            resolve_model_path(tokenizer, key="scorer.tokenizer") if tokenizer is not None else path
        )
        hf_tokenizer = transformers.AutoTokenizer.from_pretrained(
            tokenizer_path, trust_remote_code=trust_remote_code
        )
        config = transformers.AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        if fmt.family is PRMFamily.token_classification and config.num_labels != 2:
            raise ValueError(
                f"expected a token-classification PRM with num_labels=2, got "
                f"{config.num_labels} in {path}; fix: use family=label_token for a causal "
                "LM, or a PRM checkpoint with 2 labels"
            )
        limit = resolve_max_length(max_length, config, hf_tokenizer)
        engine_args: dict[str, Any] = dict(engine_kwargs)
        if block_size is not None:
            engine_args["block_size"] = block_size
        if fmt.family is PRMFamily.label_token:
            encoder = PrefixEncoder(hf_tokenizer, fmt, limit, on_overflow)
            good, bad = encoder.token_ids.good, encoder.token_ids.bad
            assert good is not None and bad is not None
            labels = [good, bad]
            engine_args["convert"] = "classify"
            engine_args["hf_overrides"] = {
                "classifier_from_token": hf_tokenizer.convert_ids_to_tokens(labels),
                "method": "no_post_processing",
            }
        resolved_dtype: Any = resolve_dtype(dtype, "cuda" if cuda else "cpu")
        llm = LLM(
            model=path,
            tokenizer=tokenizer_path,
            runner="pooling",
            dtype=resolved_dtype,
            max_model_len=limit,
            enable_prefix_caching=True,
            gpu_memory_utilization=gpu_memory_utilization,
            tensor_parallel_size=tensor_parallel_size,
            enforce_eager=not cuda if enforce_eager is None else enforce_eager,
            trust_remote_code=trust_remote_code,
            seed=seed,
            pooler_config=PoolerConfig(task="token_classify"),
            **engine_args,
        )
        return cls(
            llm,
            hf_tokenizer,
            fmt,
            max_length=limit,
            on_overflow=on_overflow,
            reuse_prefix_cache=reuse_prefix_cache,
        )

    def close(self) -> None:
        """Stop the engine's worker processes now rather than at interpreter exit."""
        engine_core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        if engine_core is not None:
            engine_core.shutdown()

    def _encode(self, inputs: Sequence[EncodedPrefix], read_cache: bool) -> list[Any]:
        from vllm.inputs import TokensPrompt
        from vllm.pooling_params import PoolingParams

        params = PoolingParams(use_activation=False)
        if read_cache:
            params = PoolingParams(use_activation=False, skip_reading_prefix_cache=False)
        prompts = [TokensPrompt(prompt_token_ids=list(item.token_ids)) for item in inputs]
        return list(self.llm.encode(prompts, params, pooling_task="token_classify", use_tqdm=False))

    def _rows(self, item: EncodedPrefix, output: Any, read_cache: bool) -> tuple[int, np.ndarray]:
        """(position of the first output row, the rows' two logit columns)."""
        data = output.outputs.data
        rows = data.float().cpu().numpy() if hasattr(data, "cpu") else np.asarray(data)
        if rows.ndim != 2 or rows.shape[1] <= max(self._columns):
            raise ValueError(
                f"expected vLLM token_classify output of shape (tokens, 2), got {rows.shape}; "
                "fix: serve a PRM with a 2-label head (or family=label_token)"
            )
        offset = len(item.token_ids) - rows.shape[0]
        cached = int(getattr(output, "num_cached_tokens", 0) or 0) if read_cache else 0
        self.cached_tokens += cached
        if offset != cached:
            raise RuntimeError(
                f"vLLM returned {rows.shape[0]} output rows for {len(item.token_ids)} tokens "
                f"with {cached} read from its prefix cache; expected one row per token computed"
            )
        return offset, rows[:, self._columns]

    def _tag_logits(self, encoded: Sequence[EncodedPrefix]) -> list[np.ndarray]:
        read_cache = self.reuse_prefix_cache
        outputs = self._encode(encoded, read_cache=read_cache)
        rows = [
            self._rows(item, output, read_cache)
            for item, output in zip(encoded, outputs, strict=True)
        ]
        if not read_cache:
            return [
                logits[list(item.tag_positions)]
                for item, (_, logits) in zip(encoded, rows, strict=True)
            ]
        digests = [_tag_digests(item.token_ids, item.tag_positions) for item in encoded]
        for item, keys, (offset, logits) in zip(encoded, digests, rows, strict=True):
            for position, key in zip(item.tag_positions, keys, strict=True):
                if position >= offset:
                    self._memo[key] = logits[position - offset]
        result: list[np.ndarray] = []
        missing: list[int] = []
        for index, (item, keys, (offset, logits)) in enumerate(
            zip(encoded, digests, rows, strict=True)
        ):
            picked = [
                logits[position - offset] if position >= offset else self._memo.get(key)
                for position, key in zip(item.tag_positions, keys, strict=True)
            ]
            present = [value for value in picked if value is not None]
            if len(present) < len(picked):
                missing.append(index)
            result.append(np.stack(present) if present else np.empty((0, 2)))
        if missing:
            log.debug("re-running %d inputs without prefix-cache reads", len(missing))
            self.recomputed_inputs += len(missing)
            retry = self._encode([encoded[index] for index in missing], read_cache=False)
            for index, output in zip(missing, retry, strict=True):
                _, logits = self._rows(encoded[index], output, read_cache=False)
                result[index] = logits[list(encoded[index].tag_positions)]
        return result
