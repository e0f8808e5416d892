"""Attention that reads a prompt shared by several sampled rows once for all of them.

The transformers generator samples ``n`` rows from each prompt (best-of-N's N samples, MC's K
rollouts of a prefix, a beam's children). Its prompt's keys and values are the same for every
row, yet plain decoding copies them to each row and, at every token, every row's attention
reads its own copy: on CPU decode attention is bound by that reading (the generator shares
prompts in chunks of ``shared_prompt_min_rows`` rows or more: in smaller ones the copies cost
less than the second attention call below). Here the prompt's keys
and values stay one copy per prompt (``SharedPrompt``) and each row's cache holds only the
tokens it generated. Attention is computed in two parts and merged exactly by their
log-sum-exps (cascade attention, as FlashInfer and vLLM do it on GPU):

- the prompt part: the queries of all rows of a prompt, stacked, against the prompt's keys
  (one batched product per prompt, its padding masked);
- the row's own part: each row's query against the tokens it generated so far;
- merged as ``o = o_row + sigmoid(lse_prompt - lse_row) * (o_prompt - o_row)``, which is the
  softmax over the concatenated keys.

Grouped-query attention needs no repeated keys either: the query heads that share a key/value
head are stacked along the query axis. ``enable`` switches a loaded model to this attention;
a forward pass given no ``shared_prompt`` (the prefill) runs transformers' sdpa unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NAME = "search_shared_prompt"  # the attention implementation registered with transformers
BASE = "sdpa"  # what it runs for forward passes without a shared prompt (the prefill)
FUSED_ON_CPU = True  # torch's fused CPU attention kernel (it returns the log-sum-exp); tests
# turn it off to check the plain products, which every other device runs


def unsupported(model: Any) -> str | None:
    """Why ``model``'s config rules out shared-prompt attention, or ``None`` when it does
    not: every layer must attend to all earlier tokens (no sliding window, unless the config
    turns it off; no logit soft-capping or attention chunks) with transformers' default
    kernel (sdpa), which the prefill runs. ``enable`` then checks the model itself."""
    config = model.config
    kernel = getattr(config, "_attn_implementation", None)
    if kernel not in (BASE, NAME):
        return f"the attention kernel is {kernel!r}, not {BASE}"
    layer_types = getattr(config, "layer_types", None) or ["full_attention"]
    if any(kind != "full_attention" for kind in layer_types):
        return f"layers of kinds {sorted(set(layer_types))}, not only full_attention"
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        return f"a sliding attention window of {config.sliding_window} tokens"
    for name in ("attn_logit_softcapping", "attention_chunk_size"):
        if getattr(config, name, None):
            return f"{name} is set"
    return None


def enable(model: Any) -> str | None:
    """Register shared-prompt attention with transformers (once per process), switch
    ``model`` to it and check it on one decode step (``_check``); ``None`` when it is on,
    else why not (the model is switched back to sdpa). The caller checks ``unsupported``
    first."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    if NAME not in AttentionInterface._global_mapping:
        AttentionInterface.register(NAME, shared_prompt_attention)
        AttentionMaskInterface.register(NAME, ALL_MASK_ATTENTION_FUNCTIONS[BASE])
    try:
        model.set_attn_implementation(NAME)
        if model.config._attn_implementation != NAME:
            why: str | None = "the model does not take attention kernels registered by name"
        else:
            why = _check(model)
    except Exception as error:  # a model this attention does not fit: copy prompts instead
        why = f"{type(error).__name__}: {error}"
    if why is not None and model.config._attn_implementation == NAME:
        model.set_attn_implementation(BASE)
    return why


# while ``_check`` runs: the layers that read the shared prompt (empty otherwise)
_reached: list[list[int]] = []


def _check(model: Any) -> str | None:
    """One decode step of two rows after a 3-token prompt, with the prompt shared and with
    it copied to both rows: ``None`` when every layer read the shared prompt and the logits
    agree, else what differed. Catches models whose layers do not pass keyword arguments on
    to their attention (the rows would silently ignore their prompt)."""
    import torch

    from search.generators.kv_buffer import buffer_cache

    device = next(model.parameters()).device
    layers = model.config.num_hidden_layers
    prompt = torch.tensor([[1, 2, 3]], device=device)
    ones = torch.ones((2, 4), dtype=torch.long, device=device)
    step = {
        "input_ids": torch.tensor([[4], [5]], device=device),
        "position_ids": torch.full((2, 1), 3, device=device),
        "use_cache": True,
        "logits_to_keep": 1,
    }
    both = torch.zeros(2, dtype=torch.long, device=device)
    with torch.inference_mode():
        prefill = model(input_ids=prompt, past_key_values=buffer_cache(layers, 8), use_cache=True)
        cache = prefill.past_key_values
        shared = SharedPrompt.from_cache(cache, ones[:1, :3], both)  # a copy: kept as it is
        cache.batch_select_indices(both)  # the prompt copied to both rows
        expected = model(attention_mask=ones, past_key_values=cache, **step).logits
        _reached.append([])
        try:
            got = model(
                attention_mask=ones[:, :1],
                past_key_values=buffer_cache(layers, 4),
                shared_prompt=shared,
                **step,
            ).logits
        finally:
            reached = len(set(_reached.pop()))
    if reached != layers:
        return (
            f"{reached} of its {layers} layers read the shared prompt (its layers do not pass "
            "keyword arguments on to attention)"
        )
    tolerance = 1e-3 if expected.dtype == torch.float32 else 5e-2
    difference = float((got.float() - expected.float()).abs().max())
    if difference > tolerance * max(1.0, float(expected.float().abs().max())):
        return f"its logits differ from those of copied prompts by {difference:.3g}"
    return None


@dataclass(frozen=True)
class SharedPrompt:
    """The prompts of a batch being decoded, one copy each, and which rows read which.

    ``layers``: per layer, keys and values ``(prompts, kv_heads, prompt_length, dim)``;
    ``mask``: ``(prompts, 1, 1, prompt_length)``, 0 where a prompt has a token and -inf at
    its padding; ``group``: ``(rows,)``, the prompt of each row; ``slot``: ``(rows,)``, the
    row's place in a ``(prompts, width)`` grid that stacks the rows of each prompt;
    ``width``: the most rows any prompt has."""

    layers: tuple[tuple[Any, Any], ...]
    mask: Any
    group: Any
    slot: Any
    width: int

    @classmethod
    def of(cls, layers: list[tuple[Any, Any]], attention: Any, group: Any) -> SharedPrompt:
        """From the prompts' key/value states ``layers`` (the prefill's cache), their 0/1
        ``attention`` mask ``(prompts, prompt_length)`` and each row's prompt ``group``."""
        import torch

        dtype = layers[0][0].dtype
        mask = torch.zeros(attention.shape, dtype=dtype, device=attention.device)
        mask.masked_fill_(attention == 0, float("-inf"))
        slot, width = _slots(group, attention.shape[0])
        return cls(tuple(layers), mask[:, None, None, :], group, slot, width)

    @classmethod
    def from_cache(cls, cache: Any, attention: Any, group: Any) -> SharedPrompt:
        """``of`` the prefill's ``cache``: a contiguous copy of each layer's filled keys and
        values (the cache's own buffers may be replaced or grown afterwards)."""
        layers = [(layer.keys.contiguous(), layer.values.contiguous()) for layer in cache.layers]
        return cls.of(layers, attention, group)

    def keep(self, rows: Any) -> SharedPrompt:
        """The same prompts for the rows ``rows`` (indices into the current rows, in order):
        prompts no kept row reads are dropped (one copy of the rest)."""
        import torch

        group = self.group[rows]
        used, group = torch.unique(group, sorted=True, return_inverse=True)
        layers = self.layers
        if used.shape[0] < self.mask.shape[0]:
            layers = tuple(
                (keys.index_select(0, used), values.index_select(0, used))
                for keys, values in layers
            )
        mask = self.mask.index_select(0, used)
        slot, width = _slots(group, int(used.shape[0]))
        return SharedPrompt(layers, mask, group, slot, width)


def _slots(group: Any, prompts: int) -> tuple[Any, int]:
    """Each row's place in a ``(prompts, width)`` grid: its prompt times ``width`` plus how
    many rows of its prompt come before it."""
    import torch

    counts = torch.bincount(group, minlength=prompts)
    width = int(counts.max()) if group.numel() else 1
    order = torch.argsort(group, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(group)
    rank[order] = torch.arange(group.shape[0], device=group.device) - starts[group[order]]
    return group * width + rank, width


def _attend(query: Any, keys: Any, values: Any, mask: Any, scale: float) -> tuple[Any, Any]:
    """Softmax attention of ``query`` ``(b, h, q, d)`` over ``keys``/``values`` ``(b, h, k,
    d)`` with an additive ``mask`` (or None): the output and its log-sum-exp ``(b, h, q)``.
    On CPU, torch's fused kernel; elsewhere plain products."""
    import torch

    if FUSED_ON_CPU and query.device.type == "cpu":
        # the kernel, called directly, skips sdpa's stride checks: it needs each vector whole
        query, keys, values = (
            t if t.stride(-1) == 1 else t.contiguous() for t in (query, keys, values)
        )
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            query, keys, values, attn_mask=mask, scale=scale
        )
        return out, lse
    # float32 scores, scaled before the product: float16 products of large queries overflow
    scores = torch.matmul(query.float() * scale, keys.float().transpose(-1, -2))
    if mask is not None:
        scores = scores + mask.float()
    lse = torch.logsumexp(scores, dim=-1)
    weights = torch.exp(scores - lse.unsqueeze(-1))
    return torch.matmul(weights, values.float()).to(values.dtype), lse


def shared_prompt_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    shared_prompt: SharedPrompt | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """transformers' attention interface: ``query`` ``(rows, heads, 1, dim)`` of one decode
    step; ``key``/``value`` the rows' own generated tokens ``(rows, kv_heads, length, dim)``
    (this step's included); ``attention_mask`` over those (or None). Without
    ``shared_prompt`` (the prefill), sdpa as usual. Returns ``(rows, 1, heads, dim)``."""
    import torch
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if shared_prompt is None:
        return ALL_ATTENTION_FUNCTIONS[BASE](  # type: ignore[no-any-return]
            module,
            query,
            key,
            value,
            attention_mask,
            dropout=dropout,
            scaling=scaling,
            **kwargs,
        )
    for name in ("sliding_window", "softcap", "s_aux"):
        if kwargs.get(name) is not None:
            raise ValueError(
                f"expected full attention with a shared prompt, got {name}={kwargs[name]!r} "
                "from the model; fix: policy.hf.shared_prompt_attention=false"
            )
    if _reached:
        _reached[-1].append(module.layer_idx)
    rows, heads, steps, dim = query.shape
    if steps != 1:
        raise ValueError(
            f"expected one query token per row with a shared prompt (a decode step), got "
            f"{steps}; fix: run the prefill without shared_prompt"
        )
    kv_heads = key.shape[1]
    stacked = heads // kv_heads  # query heads per key/value head
    scale = scaling if scaling is not None else dim**-0.5
    keys, values = shared_prompt.layers[module.layer_idx]
    prompts, width = keys.shape[0], shared_prompt.width
    q = query.reshape(rows, kv_heads, stacked, dim)
    # the prompt part: every prompt's rows (and stacked heads) as its queries
    grid = q.new_zeros((prompts * width, kv_heads, stacked, dim))
    grid[shared_prompt.slot] = q
    grid = grid.view(prompts, width, kv_heads, stacked, dim).permute(0, 2, 1, 3, 4)
    grid = grid.reshape(prompts, kv_heads, width * stacked, dim)
    out_p, lse_p = _attend(grid, keys, values, shared_prompt.mask, scale)
    out_p = out_p.view(prompts, kv_heads, width, stacked, dim).permute(0, 2, 1, 3, 4)
    out_p = out_p.reshape(prompts * width, kv_heads, stacked, dim)[shared_prompt.slot]
    lse_p = lse_p.view(prompts, kv_heads, width, stacked).permute(0, 2, 1, 3)
    lse_p = lse_p.reshape(prompts * width, kv_heads, stacked)[shared_prompt.slot]
    # the row's own part
    mask = None
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            mask = torch.zeros(attention_mask.shape, dtype=q.dtype, device=q.device)
            mask.masked_fill_(~attention_mask, float("-inf"))
        else:
            mask = attention_mask.to(q.dtype)
        mask = mask[..., : key.shape[2]]
    out_r, lse_r = _attend(q, key, value, mask, scale)
    weight = torch.sigmoid(lse_p - lse_r).unsqueeze(-1).to(q.dtype)
    out = out_r + weight * (out_p - out_r)
    return out.reshape(rows, heads, 1, dim).transpose(1, 2).contiguous(), None
