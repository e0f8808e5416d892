"""A KV cache that appends in place: no concatenation per decoded token.

transformers' ``DynamicCache`` grows every layer's keys and values with ``torch.cat`` at every
step, copying the whole cache each time (a third of decode time at batch 512 on CPU). Here
each layer writes into a buffer preallocated for the chunk's longest possible sequence and
hands the model a view of the filled part, so attention still reads only the tokens so far
(unlike ``StaticCache``, which attends over the whole buffer). Dropping finished rows copies
the live rows' filled positions once (``batch_select_indices``); the generator does it only
when enough rows have finished to pay for the copy.
"""

from __future__ import annotations

from typing import Any

from transformers.cache_utils import Cache, DynamicLayer


class BufferLayer(DynamicLayer):
    """One layer's keys and values in a buffer of ``capacity`` positions (grown by doubling
    if a sequence runs past it)."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.length = 0
        self._keys: Any = None
        self._values: Any = None

    def lazy_initialization(self, key_states: Any, value_states: Any) -> None:
        import torch

        self.dtype, self.device = key_states.dtype, key_states.device
        batch, heads, _, dim = key_states.shape
        shape = (batch, heads, self.capacity, dim)
        self._keys = torch.empty(shape, dtype=self.dtype, device=self.device)
        self._values = torch.empty(
            (batch, heads, self.capacity, value_states.shape[-1]),
            dtype=self.dtype,
            device=self.device,
        )
        self.length = 0
        self.keys, self.values = self._keys[:, :, :0], self._values[:, :, :0]
        self.is_initialized = True

    def update(
        self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any
    ) -> tuple[Any, Any]:
        import torch

        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if end > self._keys.shape[2]:  # past the planned length: grow once, by doubling
            size = max(end, 2 * self._keys.shape[2])
            grown_keys = torch.empty(
                (*self._keys.shape[:2], size, self._keys.shape[3]),
                dtype=self.dtype,
                device=self.device,
            )
            grown_values = torch.empty(
                (*self._values.shape[:2], size, self._values.shape[3]),
                dtype=self.dtype,
                device=self.device,
            )
            grown_keys[:, :, : self.length] = self._keys[:, :, : self.length]
            grown_values[:, :, : self.length] = self._values[:, :, : self.length]
            self._keys, self._values = grown_keys, grown_values
        self._keys[:, :, self.length : end] = key_states
        self._values[:, :, self.length : end] = value_states
        self.length = end
        self.keys, self.values = self._keys[:, :, :end], self._values[:, :, :end]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length if self.is_initialized else 0

    def batch_select_indices(self, indices: Any) -> None:
        """Keep the rows ``indices`` (a 1-D tensor, in that order, repeats allowed): a new
        buffer of the same capacity, of which only the filled positions are copied, by one
        ``index_select`` straight into it (no temporary; indexing the whole buffer copied
        its empty room too, and 5 times slower on CPU)."""
        import torch

        if not self.is_initialized:
            return
        indices = torch.as_tensor(indices, device=self.device)
        if indices.dtype == torch.bool:  # a mask of the rows to keep
            indices = indices.nonzero().squeeze(1)
        count = int(indices.shape[0])
        filled = self.length
        keys = torch.empty((count, *self._keys.shape[1:]), dtype=self.dtype, device=self.device)
        values = torch.empty((count, *self._values.shape[1:]), dtype=self.dtype, device=self.device)
        torch.index_select(self._keys[:, :, :filled], 0, indices, out=keys[:, :, :filled])
        torch.index_select(self._values[:, :, :filled], 0, indices, out=values[:, :, :filled])
        self._keys, self._values = keys, values
        self.keys = self._keys[:, :, :filled]
        self.values = self._values[:, :, :filled]

    def reorder_cache(self, beam_idx: Any) -> None:
        """transformers' beam search: rows reordered (and repeated) in place of the old."""
        self.batch_select_indices(beam_idx)

    # transformers' other in-place edits of a layer rewrite only ``keys``/``values`` and would
    # leave the buffer behind them stale: refused rather than silently wrong
    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError(_UNSUPPORTED.format("crop"))

    def batch_repeat_interleave(self, repeats: int) -> None:
        raise NotImplementedError(_UNSUPPORTED.format("batch_repeat_interleave"))

    def offload(self) -> None:
        raise NotImplementedError(_UNSUPPORTED.format("offload"))

    def prefetch(self) -> None:
        raise NotImplementedError(_UNSUPPORTED.format("prefetch"))


_UNSUPPORTED = (
    "expected the search generator's own use of the KV buffer, got a call to {}, which it "
    "does not support; fix: policy.hf.kv_cache=dynamic (transformers' DynamicCache)"
)


def buffer_cache(
    num_layers: int, capacity: int, past: list[tuple[Any, Any]] | None = None
) -> Cache:
    """A ``Cache`` of ``num_layers`` ``BufferLayer`` s, each planned for ``capacity`` tokens;
    ``past`` (per layer, keys and values ``(batch, kv_heads, length, dim)``) fills their
    first ``length`` positions."""
    layers: list[Any] = [BufferLayer(capacity) for _ in range(num_layers)]
    for layer, (keys, values) in zip(layers, past or [], strict=False):
        layer.update(keys, values)
    return Cache(layers=layers)
