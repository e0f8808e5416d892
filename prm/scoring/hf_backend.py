"""The transformers backend of the step-tag PRM scorer.

Inputs are sorted by length (longest first) to cut padding, run ``batch_size`` at a time
with right padding (a causal model's real tokens never attend to the pads after them, so
a padded row scores as it would alone), and read at the tag positions only. Weights load
in the dtype of ``search.resolve.resolve_dtype`` (``auto``: float32 on CPU, bfloat16 on
CUDA, float16 on CUDA without bfloat16).

Prefix reuse (``reuse_prefix_cache=True``, the default): the key/value states and tag logits
of every token run are kept in a ``KVTree``, so a beam's growing prefixes run only the tokens
past what was run before, on top of the gathered states (the logits at a tag depend only on
the tokens up to it). Within one call, the prefixes that several inputs share and that were
never run (the question, at the first depth) are run once first. Each batch pads the reused
states of its rows to one width and masks the gaps, with explicit position ids, so a row
scores as it would alone. At load, a probe checks that the model gives the same logits with
and without reused states; ``computed_tokens`` counts the tokens actually run.
"""

from __future__ import annotations

import inspect
import itertools
import logging
from collections.abc import Iterable, Sequence
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
from prm.scoring.factory import AUTO_CLASSES
from prm.scoring.format import PRMFamily, PRMFormat
from search.inputs import InputError
from search.kv_tree import KVTree, common_length
from search.resolve import resolve_device, resolve_model_path, torch_dtype

log = logging.getLogger(__name__)


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
        reuse_prefix_cache: bool = True,
        prefix_cache_tokens: int = 65536,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"expected batch_size >= 1, got {batch_size}")
        limit = resolve_max_length(max_length, model.config, tokenizer)
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
        self.computed_tokens = 0  # tokens run through the model (the rest were reused)
        reuse = reuse_prefix_cache and prefix_cache_tokens > 0  # 0 tokens: off, as the policy's
        self.kv_tree = KVTree(prefix_cache_tokens) if reuse else None
        self._check_model()
        if self.kv_tree is not None:
            self._check_reuse()

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
        reuse_prefix_cache: bool = True,
        prefix_cache_tokens: int = 65536,
    ) -> HFScorer:
        """Load a checkpoint (local path or hub name) and its tokenizer.

        ``device_map`` (e.g. ``"auto"``) shards a large model with accelerate instead of
        moving it to ``device``. ``auto_class`` defaults to ``AutoModelForTokenClassification`` or
        ``AutoModelForCausalLM`` by family; Qwen2.5-Math-PRM's remote code registers only
        ``AutoModel``. ``reuse_prefix_cache``: reuse the key/value states of token prefixes
        run before (see the module docstring), keeping at most ``prefix_cache_tokens``.
        """
        import transformers

        path = resolve_model_path(model, key="scorer.model")
        tokenizer_path = (
            resolve_model_path(tokenizer, key="scorer.tokenizer") if tokenizer is not None else path
        )
        device = resolve_device(device)
        weights_dtype = torch_dtype(dtype, device)
        if auto_class is None:
            token_cls = fmt.family is PRMFamily.token_classification
            auto_class = "AutoModelForTokenClassification" if token_cls else "AutoModelForCausalLM"
        if auto_class not in AUTO_CLASSES:  # checked before loading by scorer_plan too
            raise ValueError(
                f"expected auto_class in {list(AUTO_CLASSES)}, got {auto_class!r}; "
                "fix: scorer.hf.auto_class=null"
            )
        loaded_tokenizer = transformers.AutoTokenizer.from_pretrained(
            tokenizer_path, trust_remote_code=trust_remote_code
        )
        extra = {"device_map": device_map} if device_map is not None else {}
        loaded, info = getattr(transformers, auto_class).from_pretrained(
            path,
            dtype=weights_dtype,
            trust_remote_code=trust_remote_code,
            output_loading_info=True,
            **extra,
        )
        check_no_missing_weights(path, auto_class, fmt, info.get("missing_keys") or ())
        if device_map is None:
            loaded = loaded.to(device)
        log.debug("loaded PRM %s (%s, %s) on %s", path, auto_class, weights_dtype, loaded.device)
        return cls(
            loaded,
            loaded_tokenizer,
            fmt,
            max_length=max_length,
            on_overflow=on_overflow,
            batch_size=batch_size,
            reuse_prefix_cache=reuse_prefix_cache,
            prefix_cache_tokens=prefix_cache_tokens,
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
                f"{width}; fix: a PRM checkpoint with num_labels=2; a causal LM scored at label "
                "tokens is family=label_token, and a PRM whose class ships as code needs "
                "scorer.trust_remote_code=true (else AutoModel loads its bare base model)"
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
        if self.kv_tree is not None:
            return self._tag_logits_reusing(self.kv_tree, encoded)
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
            self.computed_tokens += sum(len(encoded[index].token_ids) for index in chunk)
            for row, index in enumerate(chunk):
                tags = list(encoded[index].tag_positions)
                if column_of is not None:
                    tags = [column_of[p] for p in tags]
                picked = logits[row, tags][:, columns].float().cpu().numpy()
                result[index] = picked
        assert all(item is not None for item in result)
        return [item for item in result if item is not None]

    def _tag_logits_reusing(
        self, tree: KVTree, encoded: Sequence[EncodedPrefix]
    ) -> list[np.ndarray]:
        """Run only what the tree lacks, shared stems first, then read every tag from it."""
        unique = sorted({item.token_ids for item in encoded})
        todo = set(unique)
        for left, right in itertools.pairwise(unique):
            shared = common_length(left, right)
            if shared > 0:
                todo.add(left[:shared])
        waves: dict[int, list[tuple[int, ...]]] = {}
        stack: list[tuple[int, ...]] = []
        for ids in sorted(todo):  # a sequence waits for every one of its prefixes in todo
            while stack and ids[: len(stack[-1])] != stack[-1]:
                stack.pop()
            waves.setdefault(len(stack), []).append(ids)
            stack.append(ids)
        for level in sorted(waves):
            pending = [(ids, tree.match(ids)) for ids in waves[level]]
            pending = [(ids, match) for ids, match in pending if match.length < len(ids)]
            pending.sort(key=lambda item: -(len(item[0]) - item[1].length))
            for start in range(0, len(pending), self.batch_size):
                # match again: an earlier batch's inserts may have split the matched nodes
                chunk = [ids for ids, _ in pending[start : start + self.batch_size]]
                self._run_extending(tree, [(ids, tree.match(ids)) for ids in chunk])
        result = [tree.tag_logits(item.token_ids, item.tag_positions) for item in encoded]
        tree.evict()
        return result

    def _run_extending(self, tree: KVTree, rows: Sequence[tuple[tuple[int, ...], Any]]) -> None:
        """One forward pass over the new tokens of ``rows`` (ids, ``Match``) on top of their
        reused states; their states and tag logits go into ``tree``."""
        import torch
        from transformers import DynamicCache

        device = self.model.device
        reused = [match.length for _, match in rows]
        new = [len(ids) - length for (ids, _), length in zip(rows, reused, strict=True)]
        past, width = max(reused), max(new)
        input_ids = torch.zeros((len(rows), width), dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), past + width), dtype=torch.long)
        layers: list[tuple[Any, Any]] = []
        tag = self.encoder.token_ids.step_tag
        tag_offsets: list[list[int]] = []
        for row, ((ids, match), length, count) in enumerate(zip(rows, reused, new, strict=True)):
            input_ids[row, :count] = torch.tensor(ids[length:])
            positions[row] = torch.arange(length, length + width)
            mask[row, :length] = 1
            mask[row, past : past + count] = 1
            tag_offsets.append([p - length for p in range(length, len(ids)) if ids[p] == tag])
            for layer, (keys, values) in enumerate(KVTree.gather(match)):
                if len(layers) <= layer:
                    shape = (len(rows), keys.shape[0], past, keys.shape[2])
                    layers.append(
                        (
                            torch.zeros(shape, dtype=keys.dtype, device=keys.device),
                            torch.zeros(shape, dtype=keys.dtype, device=keys.device),
                        )
                    )
                layers[layer][0][row, :, :length] = keys
                layers[layer][1][row, :, :length] = values
        cache = DynamicCache(layers, config=self.model.config) if layers else DynamicCache()
        kept = sorted({o for offsets in tag_offsets for o in offsets})
        keep = torch.tensor(kept or [0], device=device) if self._keep_logits else None
        with torch.inference_mode():
            out = self.model(
                input_ids=input_ids.to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
                past_key_values=cache,
                use_cache=True,
                **({"logits_to_keep": keep} if keep is not None else {}),
            )
            logits = out.logits if hasattr(out, "logits") else out[0]
            column_of = {o: i for i, o in enumerate(kept)} if keep is not None else None
            columns = list(self._columns)
            for row, ((ids, _), length, count) in enumerate(zip(rows, reused, new, strict=True)):
                offsets = tag_offsets[row]
                at = [column_of[o] for o in offsets] if column_of is not None else offsets
                picked = logits[row, at][:, columns].float().cpu().numpy()
                states = [
                    (keys[row, :, past : past + count], values[row, :, past : past + count])
                    for keys, values, *_ in cache
                ]
                tree.insert(
                    ids,
                    length,
                    states,
                    {length + o: picked[i] for i, o in enumerate(offsets)},
                )
        self.computed_tokens += sum(new)

    def _check_reuse(self) -> None:
        """Logits over reused states must equal a full pass: probe with a short input."""
        import torch

        tag = self.encoder.token_ids.step_tag
        encode = self.encoder.tokenizer.encode
        probe = (
            *encode("Compute 12 + 7 - 3.", add_special_tokens=False),
            tag,
            *encode("12 + 7 = 19", add_special_tokens=False),
            tag,
        )
        probe = tuple(t for t in probe if t < self.model.get_input_embeddings().num_embeddings)
        tag_positions = tuple(p for p, token in enumerate(probe) if token == tag)
        probe_tree = KVTree(max_tokens=len(probe))
        head = probe[: len(probe) // 2 + 1]
        self._run_extending(probe_tree, [(head, probe_tree.match(head))])
        self._run_extending(probe_tree, [(probe, probe_tree.match(probe))])
        reused = probe_tree.tag_logits(probe, tag_positions)
        tensor = torch.tensor([probe], device=self.model.device)
        with torch.inference_mode():
            full = self._logits(tensor, torch.ones_like(tensor), None)[0, list(tag_positions)]
        full = full[:, list(self._columns)].float().cpu().numpy()
        self.computed_tokens = 0
        exact = self.model.dtype == torch.float32
        tolerance = 1e-3 if exact else 5e-2 * max(1.0, float(np.abs(full).max()))
        if not np.abs(reused - full).max() <= tolerance:
            raise ValueError(
                "expected the PRM's logits with reused key/value states to equal a full pass, "
                f"got a difference of {np.abs(reused - full).max():.3g}; the model's forward "
                "does not take past_key_values/position_ids as transformers' models do; fix: "
                "set scorer.hf.reuse_prefix_cache=false"
            )


def check_no_missing_weights(
    path: Path | str, auto_class: str, fmt: PRMFormat, missing: Iterable[str]
) -> None:
    """Refuse a checkpoint that lacks weights of the class it is loaded as: transformers
    fills them at random (e.g. a causal LM loaded as a token-classification PRM gets a random
    ``score`` head, whose scores mean nothing)."""
    missing = sorted(missing)
    if not missing:
        return
    shown = ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else "")
    raise InputError(
        f"expected {path} to hold every weight of {auto_class} (family={fmt.family.value}), "
        f"got {len(missing)} missing, which transformers would fill at random: {shown}; fix: "
        f"{fmt.family.wrong_checkpoint_fix()}"
    )
