"""transformers backend: batched sampling with left padding and a KV cache.

Every prefix is expanded ``n`` times and sequences run in chunks of ``batch_size``. Each
sequence stops on its own (end of step, eos, or its token limit); a chunk ends when all of
its sequences have stopped, and finished rows are dropped from the batch and its cache as
they stop. Each sequence draws its tokens from its own stream, seeded by (the generator's
seed, the prefix's stream name, the sequence's index among the ``n``): one uniform number per
token, turned into a token by the inverse of the (top-p filtered) distribution's CDF. So a
sequence's tokens do not depend on which other sequences share its batch, and no global RNG
state is touched.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from search.generators.base import (
    CallSettings,
    GenerationSettings,
    PromptRenderer,
    check_prompt_lengths,
    continuation_seed,
    make_continuation,
    stream_names,
)
from search.protocols import TokenCounter
from search.resolve import resolve_device, torch_dtype
from search.types import DEFAULT_SAMPLING, FinishReason, Generation, Prefix, Sampling, Until

log = logging.getLogger(__name__)

KV_CACHES = ("buffer", "dynamic")  # in-place appends (kv_buffer) | transformers' DynamicCache
KV_PLAN_TOKENS = 32  # generated tokens a fresh KV buffer has room for before it grows
# the default of shared_prompt_min_rows: a chunk of at least this many rows reads each prompt
# once (shared-prompt attention); a smaller one copies its prompts to its rows. Measured on
# this project's 2-core CPU with the embedded policy (prompts of 40 to 70 tokens): below it the
# two-part attention's fixed cost per step was as much as the reading it saves, or more
# (README table "Decoding: from how many rows shared-prompt attention pays",
# benchmarks/shared_prompt_rows.py); longer prompts or another device may want fewer
SHARE_FROM_ROWS = 64
ABANDONED_EVERY = 8  # decode steps between two questions to Sampling.abandoned


@dataclass
class _Row:
    """One sequence being sampled: which request it belongs to and what it has so far."""

    request: int
    generated: list[int]
    rng: random.Random
    room: int | None = None  # tokens left in the model's context after the prompt
    reason: FinishReason | None = None


def attn_implementations() -> list[str]:
    """The attention kernels transformers registers (and ``eager``, its plain one): the
    values of ``policy.hf.attn_implementation``. On this CPU ``eager`` labels MC about as
    fast as the default, sdpa, with shared prompts (table "Monte Carlo labelling speed:
    attention kernels and shared prompts"); only sdpa shares a prompt among its rows."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    from search.generators.shared_prompt import NAME

    # the generator's own shared-prompt attention is an option of its own, not a kernel
    return ["eager", *(k for k in ALL_ATTENTION_FUNCTIONS.valid_keys() if k != NAME)]


def check_attn_implementation(name: str | None) -> None:
    """Refuse an attention kernel transformers does not register, before any model loads."""
    if name is not None and name not in (known := attn_implementations()):
        raise ValueError(
            f"expected policy.hf.attn_implementation in {known} or null, "
            f"got {name!r}; fix: policy.hf.attn_implementation=eager (or null for "
            "transformers' default)"
        )


class HFGenerator:
    """Generator on a transformers causal LM (``AutoModelForCausalLM``).

    ``model`` is a local directory or, when online, a hub name. ``kv_cache``: ``buffer``
    (keys and values appended in place, see ``_run_chunk``) or ``dynamic`` (transformers'
    ``DynamicCache``). ``attn_implementation``: transformers' attention kernel (one of
    ``attn_implementations()``; ``None`` leaves transformers' default).
    ``shared_prompt_attention``: the rows sampled from one prompt read its keys and values
    once, not each its own copy (``search/generators/shared_prompt.py``; with the buffer cache
    and transformers' default kernel on a model whose layers all attend to every earlier
    token, else off, logged), in chunks of at least ``shared_prompt_min_rows`` rows (smaller
    chunks copy their prompts). Implements ``search.protocols.Generator``.
    """

    def __init__(
        self,
        model: str,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_step_tokens: int = 64,
        max_tokens: int = 512,
        batch_size: int = 256,
        seed: int = 0,
        dtype: str = "auto",
        device: str = "auto",
        use_chat_template: bool | None = None,
        system_prompt: str | None = None,
        trust_remote_code: bool = False,
        kv_cache: str = "buffer",
        prefix_cache_tokens: int = 65536,
        attn_implementation: str | None = None,
        shared_prompt_attention: bool = True,
        shared_prompt_min_rows: int = SHARE_FROM_ROWS,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from search.kv_tree import KVTree

        check_attn_implementation(attn_implementation)
        if kv_cache not in KV_CACHES:
            raise ValueError(
                f"expected kv_cache in {list(KV_CACHES)}, got {kv_cache!r}; fix: "
                "policy.hf.kv_cache=buffer"
            )
        self.kv_cache = kv_cache
        # prompts' key/value states kept across calls (a beam's next depth re-sends its prefix)
        self.prefix_tree = (
            KVTree(prefix_cache_tokens) if kv_cache == "buffer" and prefix_cache_tokens else None
        )
        self.computed_prompt_tokens = 0  # prompt tokens run through the model (rest reused)
        self.settings = GenerationSettings(
            temperature=temperature,
            top_p=top_p,
            max_step_tokens=max_step_tokens,
            max_tokens=max_tokens,
        )
        if batch_size < 1:
            raise ValueError(f"expected batch_size >= 1, got {batch_size}")
        self.batch_size = batch_size
        if shared_prompt_min_rows < 1:
            raise ValueError(
                f"expected shared_prompt_min_rows >= 1, got {shared_prompt_min_rows}; fix: "
                f"policy.hf.shared_prompt_min_rows={SHARE_FROM_ROWS}"
            )
        self.shared_prompt_min_rows = shared_prompt_min_rows  # fewer rows copy their prompts
        self.device = resolve_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
        extra = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
        loaded: Any = AutoModelForCausalLM.from_pretrained(
            model,
            dtype=torch_dtype(dtype, self.device),
            trust_remote_code=trust_remote_code,
            **extra,
        )
        self.model: Any = loaded.to(self.device)
        self.model.eval()
        # rows sampled from one prompt read its keys and values once (shared_prompt.py), in
        # chunks of shared_prompt_min_rows rows or more
        self.shared_prompt = False
        if shared_prompt_attention and kv_cache == "buffer":
            from search.generators import shared_prompt

            why = shared_prompt.unsupported(self.model) or shared_prompt.enable(self.model)
            self.shared_prompt = why is None
            if why is not None:
                log.info("shared-prompt attention off for %s: %s", model, why)
        positions = getattr(self.model.config, "max_position_embeddings", None)
        self.context_length: int | None = int(positions) if positions else None
        self.renderer = PromptRenderer(self.tokenizer, use_chat_template, system_prompt)
        self.eos_ids = self.renderer.eos_ids(self.model.generation_config.eos_token_id)
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = next(iter(self.eos_ids))
        self.seed = seed
        self.usage = TokenCounter()
        self._newline_tokens: dict[int, bool] = {}

    def prompt_length(self, prefix: Prefix) -> int:
        """Tokens of ``prefix``'s prompt (``search.protocols.ContextLimited``)."""
        return len(self.renderer.encode(prefix))

    # -- protocol -----------------------------------------------------------------------
    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        if n < 1:
            raise ValueError(f"expected n >= 1, got {n}")
        until = Until(until)
        settings = self.settings.for_call(sampling, until)
        streams = stream_names(prefixes, sampling)
        prompts = [self.renderer.encode(prefix) for prefix in prefixes]
        context = self.context_length
        if context is not None:
            check_prompt_lengths(prefixes, [len(ids) for ids in prompts], context)
        rows = [
            _Row(
                request=i,
                generated=[],
                rng=random.Random(continuation_seed(self.seed, s, j)),
                room=None if context is None else context - len(prompts[i]),
            )
            for i, s in enumerate(streams)
            for j in range(n)
        ]
        abandoned = sampling.abandoned
        ran: set[int] = set()  # the requests whose prompts ran (a prefix cut first did not)
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            if abandoned is not None:  # rows nobody wants any more: cut before they start
                chunk = self._cut_abandoned(chunk, abandoned)
            if chunk:
                ran.update(row.request for row in chunk)
                self._run_chunk(chunk, prompts, settings, until, abandoned)
        prompt_tokens = [len(ids) if i in ran else 0 for i, ids in enumerate(prompts)]
        self.usage.calls += 1
        self.usage.tokens += sum(prompt_tokens)
        self.usage.new_tokens += sum(prompt_tokens)
        self.usage.generated_tokens += sum(len(row.generated) for row in rows)
        out: list[Generation] = []
        for index, tokens in enumerate(prompt_tokens):
            mine = rows[index * n : (index + 1) * n]
            continuations = tuple(
                make_continuation(
                    str(self.tokenizer.decode(row.generated, skip_special_tokens=True)),
                    row.reason or FinishReason.length,
                    len(row.generated),
                    until,
                )
                for row in mine
            )
            out.append(Generation(prompt_tokens=tokens, continuations=continuations))
        return out

    # -- sampling -----------------------------------------------------------------------
    def _ends_line(self, token: int) -> bool:
        known = self._newline_tokens.get(token)
        if known is None:
            known = "\n" in self.tokenizer.decode([token])
            self._newline_tokens[token] = known
        return known

    @staticmethod
    def _cut_abandoned(rows: list[_Row], abandoned: Callable[[], Collection[int]]) -> list[_Row]:
        """``rows`` but those of the requests ``abandoned`` names, which are cut where they
        are (``FinishReason.length``) and will sample nothing more."""
        gone = set(abandoned())
        for row in rows:
            if row.request in gone and row.reason is None:
                row.reason = FinishReason.length
        return [row for row in rows if row.reason is None]

    def _run_chunk(
        self,
        rows: list[_Row],
        prompts: list[list[int]],
        settings: CallSettings,
        until: Until,
        abandoned: Callable[[], Collection[int]] | None = None,
    ) -> None:
        """Sample ``rows`` to their stops: one prefill, then one token per step for every
        row still in the batch. With ``kv_cache="buffer"`` each distinct prompt is prefilled
        once for all its rows, keys and values are written in place (``kv_buffer``), and
        finished rows are dropped only once half of the batch has finished (until then they
        ride along and their tokens are discarded: every drop copies the cache); with
        ``"dynamic"`` (transformers' ``DynamicCache``, concatenating, the recipe before) every
        row runs its own prefill and finished rows are dropped at once."""
        import torch

        limit = settings.max_tokens
        # with the buffer cache the n rows of a prompt share one prefill: each distinct
        # request's prompt runs once; its rows then read its states once (shared-prompt
        # attention, in chunks of shared_prompt_min_rows rows or more) or each get a copy of
        # them (`expand`)
        buffered = self.kv_cache == "buffer"
        requests = [row.request for row in rows]
        if buffered:
            requests = list(dict.fromkeys(requests))
            position = {request: i for i, request in enumerate(requests)}
            expand = [position[row.request] for row in rows]
        ids = [prompts[request] for request in requests]
        # reused: the longest prefix of each prompt already in the tree, its last token kept
        # out so that the prefill has something to run (its logits start the sampling)
        tree = self.prefix_tree
        matches = [tree.match(x) if tree is not None else None for x in ids]
        reused = [
            0 if match is None else min(match.length, len(x) - 1)
            for match, x in zip(matches, ids, strict=True)
        ]
        past = max(reused)
        width = max(len(x) - m for x, m in zip(ids, reused, strict=True))
        capacity = past + width + limit + 1
        input_ids = torch.full((len(ids), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(ids), capacity), dtype=torch.long)
        for r, (x, m) in enumerate(zip(ids, reused, strict=True)):
            input_ids[r, width - (len(x) - m) :] = torch.tensor(x[m:], dtype=torch.long)
            attention[r, :m] = 1
            attention[r, past + width - (len(x) - m) : past + width] = 1
        input_ids = input_ids.to(self.device)
        attention = attention.to(self.device)
        positions = (attention[:, : past + width].cumsum(-1) - 1).clamp(min=0)[:, past:]
        self.computed_prompt_tokens += sum(len(x) - m for x, m in zip(ids, reused, strict=True))
        slots = list(range(len(rows)))  # batch position -> index in `rows`
        running = [True] * len(rows)  # per batch position: still sampling
        compact_at = 0.5 if buffered else 1.0
        cache: Any = None
        if buffered:
            from search.generators.kv_buffer import buffer_cache

            # room for the prompt and a step's worth of tokens; a longer rollout grows it by
            # doubling (`BufferLayer.update`). Copies of the cache (rows dropped, a prompt's
            # states given to its rows) copy only the filled positions, so a larger plan
            # would cost memory, not copy time
            cache = buffer_cache(
                self.model.config.num_hidden_layers,
                past + width + min(limit, KV_PLAN_TOKENS) + 1,
                self._gather_past(matches, reused, past) if past else None,
            )
        length = past + width
        step_input = input_ids
        first = True
        shared: dict[str, Any] = {}  # the decode steps' shared prompt, when the rows read one
        steps = 0  # tokens sampled per row so far
        with torch.inference_mode():
            while True:
                out = self.model(
                    input_ids=step_input,
                    attention_mask=attention[:, :length],
                    position_ids=positions,
                    past_key_values=cache,
                    use_cache=True,
                    logits_to_keep=1,
                    **shared,
                )
                cache = out.past_key_values
                logits = out.logits[:, -1, :]
                if first:
                    if tree is not None:
                        self._remember_prompts(tree, cache, ids, reused, past, width)
                    if buffered:
                        to_rows = torch.tensor(expand, device=self.device)
                        positions, logits = positions[to_rows], logits[to_rows]
                        several = len(rows) > len(requests)  # a prompt has several rows
                        big = len(rows) >= self.shared_prompt_min_rows
                        if self.shared_prompt and several and big:
                            # one copy of each prompt; each row's cache holds its own tokens
                            # only, and its mask covers those (all of them, no padding)
                            cache, attention, shared = self._share_prompts(
                                cache, attention[:, :length], to_rows, len(rows), limit
                            )
                            length = 0
                        else:
                            cache.batch_select_indices(to_rows)
                            attention = attention[to_rows]
                    first = False
                tokens = self._sample(logits.float(), [rows[index] for index in slots], settings)
                for slot, token in enumerate(tokens.tolist()):
                    if not running[slot]:
                        continue
                    row = rows[slots[slot]]
                    row.generated.append(token)
                    row.reason = self._stop_reason(row, token, until, limit)
                    running[slot] = row.reason is None
                steps += 1
                if abandoned is not None and steps % ABANDONED_EVERY == 0:
                    self._cut_abandoned([rows[index] for index in slots], abandoned)
                    running = [
                        on and rows[index].reason is None
                        for on, index in zip(running, slots, strict=True)
                    ]
                live = [slot for slot, on in enumerate(running) if on]
                if not live:
                    break
                if len(live) <= compact_at * len(slots) and len(live) < len(slots):
                    keep = torch.tensor(live, device=self.device)
                    cache.batch_select_indices(keep)
                    attention = attention[keep]
                    if shared:
                        shared["shared_prompt"] = shared["shared_prompt"].keep(keep)
                    tokens = tokens[keep]
                    positions = positions[keep]
                    slots = [slots[slot] for slot in live]
                    running = [True] * len(slots)
                attention[:, length] = 1
                length += 1
                positions = positions[:, -1:] + 1
                step_input = tokens.unsqueeze(-1)

    def _share_prompts(
        self, cache: Any, attention: Any, to_rows: Any, rows: int, limit: int
    ) -> tuple[Any, Any, dict[str, Any]]:
        """After the prefill: the prompts' key/value states as one ``SharedPrompt`` (a
        contiguous copy of each), a fresh cache for the ``rows`` rows' own tokens, their
        all-ones mask, and the keyword the model's decode steps take it by."""
        import torch

        from search.generators.kv_buffer import buffer_cache
        from search.generators.shared_prompt import SharedPrompt

        prompt = SharedPrompt.from_cache(cache, attention, to_rows)
        own = buffer_cache(self.model.config.num_hidden_layers, min(limit, KV_PLAN_TOKENS) + 1)
        mask = torch.ones((rows, limit + 1), dtype=torch.long, device=self.device)
        return own, mask, {"shared_prompt": prompt}

    def _gather_past(self, matches: list[Any], reused: list[int], past: int) -> list[Any]:
        """Per layer, the reused keys and values of every row, padded to ``past`` positions
        (the gaps are masked out)."""
        import torch

        from search.kv_tree import KVTree

        layers: list[tuple[Any, Any]] = []
        for r, (match, m) in enumerate(zip(matches, reused, strict=True)):
            if not m:
                continue
            for layer, (keys, values) in enumerate(KVTree.gather(match)):
                if len(layers) <= layer:
                    shape = (len(matches), keys.shape[0], past, keys.shape[2])
                    layers.append(
                        (
                            torch.zeros(shape, dtype=keys.dtype, device=keys.device),
                            torch.zeros(shape, dtype=keys.dtype, device=keys.device),
                        )
                    )
                layers[layer][0][r, :, :m] = keys[:, :m]
                layers[layer][1][r, :, :m] = values[:, :m]
        return layers

    def _remember_prompts(
        self, tree: Any, cache: Any, ids: list[list[int]], reused: list[int], past: int, width: int
    ) -> None:
        """Put each distinct prompt's newly computed key/value states into ``tree``; drop
        the least recently used prompts past its budget."""
        seen: set[tuple[int, ...]] = set()
        for r, (x, m) in enumerate(zip(ids, reused, strict=True)):
            key = tuple(x)
            if key in seen:
                continue
            seen.add(key)
            begin = past + width - (len(x) - m)
            layers: Any = cache.layers
            states = [
                (layer.keys[r, :, begin : past + width], layer.values[r, :, begin : past + width])
                for layer in layers
            ]
            tree.insert(x, m, states, {})
        tree.evict()

    def _sample(self, logits: Any, rows: list[_Row], settings: CallSettings) -> Any:
        """One token per row: greedy at temperature 0, else by inverse-CDF sampling with one
        uniform number from each row's own stream."""
        import torch

        if settings.temperature == 0.0:
            return logits.argmax(dim=-1)
        probs = torch.softmax(logits / settings.temperature, dim=-1)
        if settings.top_p < 1.0:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            cumulative = sorted_probs.cumsum(dim=-1)
            sorted_probs[(cumulative - sorted_probs) > settings.top_p] = 0.0
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        cdf = probs.double().cumsum(dim=-1)
        uniform = torch.tensor([row.rng.random() for row in rows], dtype=torch.float64)
        target = (uniform.to(cdf.device) * cdf[:, -1]).unsqueeze(-1)
        tokens = torch.searchsorted(cdf, target, right=True).squeeze(-1)
        return tokens.clamp(max=cdf.shape[-1] - 1)

    def _stop_reason(self, row: _Row, token: int, until: Until, limit: int) -> FinishReason | None:
        if token in self.eos_ids:  # kept in `generated`: it was sampled, so it is counted
            return FinishReason.eos
        if until is Until.step and self._ends_line(token):
            text = str(self.tokenizer.decode(row.generated, skip_special_tokens=True))
            if self.renderer.ends_step(text):
                return FinishReason.step
        if len(row.generated) >= limit or (row.room is not None and len(row.generated) >= row.room):
            return FinishReason.length
        return None
