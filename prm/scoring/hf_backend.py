"""The transformers backend of the step-tag PRM scorer.

Inputs are sorted by length (longest first) to cut padding, run ``batch_size`` at a time
with right padding (a causal model's real tokens never attend to the pads after them, so
a padded row scores as it would alone), and read at the tag positions only. Weights load
in float32 on CPU and bfloat16 on CUDA (``dtype="auto"``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prm.scoring.base import StepTagScorer
from prm.scoring.encoding import EncodedPrefix, OverflowPolicy, PrefixEncoder
from prm.scoring.format import PRMFamily, PRMFormat
from search.resolve import resolve_device, resolve_model_path, torch_dtype

log = logging.getLogger(__name__)

_AUTO_CLASSES = ("AutoModelForTokenClassification", "AutoModelForCausalLM", "AutoModel")


def default_max_length(config: Any, tokenizer: Any) -> int:
    """The model's context: ``max_position_embeddings``, else the tokenizer's limit."""
    for value in (
        getattr(config, "max_position_embeddings", None),
        getattr(tokenizer, "model_max_length", None),
    ):
        if isinstance(value, int) and 0 < value < 10_000_000:
            return value
    raise ValueError(
        "expected the PRM's config to give max_position_embeddings, got none; fix: set max_length"
    )


class HFScorer(StepTagScorer):
    """A step-tag PRM run with transformers (``search.protocols.Scorer``).

    ``model``: a loaded ``*ForTokenClassification`` (family ``token_classification``, output
    ``(batch, seq, 2)``) or ``*ForCausalLM`` (family ``label_token``, output
    ``(batch, seq, vocab)``). ``HFScorer.load`` builds one from a checkpoint.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        fmt: PRMFormat,
        *,
        max_length: int | None = None,
        on_overflow: OverflowPolicy | str = OverflowPolicy.error,
        batch_size: int = 16,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"expected batch_size >= 1, got {batch_size}")
        limit = max_length or default_max_length(model.config, tokenizer)
        super().__init__(PrefixEncoder(tokenizer, fmt, limit, on_overflow))
        self.model = model.eval()
        self.batch_size = batch_size
        ids = self.encoder.token_ids
        if fmt.family is PRMFamily.token_classification:
            self._columns = (fmt.positive_label, 1 - fmt.positive_label)
        else:
            assert ids.good is not None and ids.bad is not None
            self._columns = (ids.good, ids.bad)
        self._keep_logits = (
            fmt.family is PRMFamily.label_token
            and "logits_to_keep" in inspect.signature(model.forward).parameters
        )
        self._check_model()

    @classmethod
    def load(
        cls,
        model: str | Path,
        fmt: PRMFormat,
        *,
        tokenizer: str | Path | None = None,
        dtype: str = "auto",
        device: str = "auto",
        device_map: str | None = None,
        auto_class: str | None = None,
        trust_remote_code: bool = False,
        max_length: int | None = None,
        on_overflow: OverflowPolicy | str = OverflowPolicy.error,
        batch_size: int = 16,
    ) -> HFScorer:
        """Load a checkpoint (local path or hub name) and its tokenizer.

        ``device_map`` (e.g. ``"auto"``) shards a large model with accelerate instead of
        moving it to ``device``. ``auto_class`` defaults to ``AutoModelForTokenClassification`` or
        ``AutoModelForCausalLM`` by family; Qwen2.5-Math-PRM's remote code registers only
        ``AutoModel``.
        """
        import transformers

        path = resolve_model_path(model)
        tokenizer_path = resolve_model_path(tokenizer) if tokenizer is not None else path
        device = resolve_device(device)
        weights_dtype = torch_dtype(dtype, device)
        if auto_class is None:
            token_cls = fmt.family is PRMFamily.token_classification
            auto_class = "AutoModelForTokenClassification" if token_cls else "AutoModelForCausalLM"
        if auto_class not in _AUTO_CLASSES:
            raise ValueError(f"expected auto_class in {_AUTO_CLASSES}, got {auto_class!r}")
        loaded_tokenizer = transformers.AutoTokenizer.from_pretrained(
            tokenizer_path, trust_remote_code=trust_remote_code
        )
        extra = {"device_map": device_map} if device_map is not None else {}
        loaded = getattr(transformers, auto_class).from_pretrained(
            path, dtype=weights_dtype, trust_remote_code=trust_remote_code, **extra
        )
        if device_map is None:
            loaded = loaded.to(device)
        log.info("loaded PRM %s (%s, %s) on %s", path, auto_class, weights_dtype, loaded.device)
        return cls(
            loaded,
            loaded_tokenizer,
            fmt,
            max_length=max_length,
            on_overflow=on_overflow,
            batch_size=batch_size,
        )

    def _check_model(self) -> None:
        """One forward pass over the tag token: the output must have the expected width."""
        import torch

        ids = self.encoder.token_ids
        num_embeddings = self.model.get_input_embeddings().num_embeddings
        used = [value for value in (ids.step_tag, ids.good, ids.bad, ids.bos) if value is not None]
        if max(used) >= num_embeddings:
            raise ValueError(
                f"expected the tag/label token ids {used} below the model's embedding size "
                f"{num_embeddings}, got one past it; fix: load the tokenizer that belongs to "
                "this model, or resize its embeddings after adding tokens"
            )
        probe = torch.tensor([[ids.step_tag]], device=self.model.device)
        with torch.inference_mode():
            width = self._logits(probe, torch.ones_like(probe), None).shape[-1]
        if self.format.family is PRMFamily.token_classification and width != 2:
            raise ValueError(
                f"expected a token-classification PRM with 2 labels (output last dim 2), got "
                f"{width}; fix: use family=label_token for a causal LM, or a PRM checkpoint "
                "with num_labels=2"
            )
        if self.format.family is PRMFamily.label_token and max(self._columns) >= width:
            raise ValueError(
                f"expected label token ids {self._columns} below the model's output width "
                f"{width}; fix: check good_token/bad_token and the model's family"
            )

    def _logits(self, input_ids: Any, attention_mask: Any, keep: Any) -> Any:
        kwargs = {"logits_to_keep": keep} if keep is not None else {}
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        return out.logits if hasattr(out, "logits") else out[0]

    def _tag_logits(self, encoded: Sequence[EncodedPrefix]) -> list[np.ndarray]:
        import torch

        order = sorted(range(len(encoded)), key=lambda index: -len(encoded[index].token_ids))
        result: list[np.ndarray | None] = [None] * len(encoded)
        columns = list(self._columns)
        device = self.model.device
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            width = len(encoded[chunk[0]].token_ids)
            input_ids = torch.zeros((len(chunk), width), dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, index in enumerate(chunk):
                ids = encoded[index].token_ids
                input_ids[row, : len(ids)] = torch.tensor(ids)
                mask[row, : len(ids)] = 1
            positions = sorted({p for index in chunk for p in encoded[index].tag_positions})
            keep = torch.tensor(positions, device=device) if self._keep_logits else None
            column_of = {p: i for i, p in enumerate(positions)} if self._keep_logits else None
            with torch.inference_mode():
                logits = self._logits(input_ids.to(device), mask.to(device), keep)
            for row, index in enumerate(chunk):
                tags = list(encoded[index].tag_positions)
                if column_of is not None:
                    tags = [column_of[p] for p in tags]
                picked = logits[row, tags][:, columns].float().cpu().numpy()
                result[index] = picked
        assert all(item is not None for item in result)
        return [item for item in result if item is not None]
