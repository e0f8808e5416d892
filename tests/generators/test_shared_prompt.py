"""Shared-prompt attention: the prompt read once per prompt gives the attention of each row
over its own copy of the prompt and its generated tokens."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from search.envs.arith.world import make_split
from search.generators import shared_prompt
from search.generators.hf import HFGenerator
from search.generators.shared_prompt import SharedPrompt, shared_prompt_attention
from search.types import GREEDY, Prefix, Sampling, Until

torch = pytest.importorskip("torch")


def reference(
    query: Any, prompt_keys: Any, prompt_values: Any, keep: Any, own_keys: Any, own_values: Any
) -> Any:
    """Each row over its own copy of its prompt (padding dropped) then its own tokens, keys
    repeated for grouped-query heads: plain softmax attention, ``(rows, 1, heads, dim)``."""
    _, heads, _, dim = query.shape
    stacked = heads // own_keys.shape[1]
    out = []
    for row, (keys, values, kept) in enumerate(zip(prompt_keys, prompt_values, keep, strict=True)):
        k = torch.cat([keys[:, kept], own_keys[row]], 1).repeat_interleave(stacked, 0)
        v = torch.cat([values[:, kept], own_values[row]], 1).repeat_interleave(stacked, 0)
        weights = torch.softmax(query[row] @ k.transpose(-1, -2) * dim**-0.5, -1)
        out.append((weights @ v).transpose(0, 1))
    return torch.stack(out)


@pytest.mark.parametrize("heads", [(4, 2), (2, 2)])  # grouped-query and one key head per head
@pytest.mark.parametrize("fused", [True, False])  # torch's CPU kernel, or the plain products
def test_attention_equals_every_row_over_its_own_copy(
    heads: tuple[int, int], fused: bool, monkeypatch: Any
) -> None:
    generator = torch.Generator().manual_seed(0)
    query_heads, kv_heads = heads
    dim, prompt_length, own = 8, 6, 3
    group = torch.tensor([2, 0, 0, 1, 2, 0])  # uneven groups, rows of a prompt not adjacent
    rows = group.shape[0]
    attention = torch.ones(3, prompt_length, dtype=torch.long)
    attention[0, :2] = 0  # left padding
    attention[2, 3] = 0  # a gap, as reused prompt states leave
    keys = [torch.randn(3, kv_heads, prompt_length, dim, generator=generator) for _ in range(2)]
    values = [torch.randn(3, kv_heads, prompt_length, dim, generator=generator) for _ in range(2)]
    prompt = SharedPrompt.of(list(zip(keys, values, strict=True)), attention, group)
    query = torch.randn(rows, query_heads, 1, dim, generator=generator)
    own_keys = torch.randn(rows, kv_heads, own, dim, generator=generator)
    own_values = torch.randn(rows, kv_heads, own, dim, generator=generator)
    if not fused:
        monkeypatch.setattr(shared_prompt, "FUSED_ON_CPU", False)
    for layer in range(2):
        module = SimpleNamespace(layer_idx=layer)
        got, weights = shared_prompt_attention(
            module, query, own_keys, own_values, None, scaling=dim**-0.5, shared_prompt=prompt
        )
        kept = [attention[g].bool() for g in group]
        expected = reference(
            query, keys[layer][group], values[layer][group], kept, own_keys, own_values
        )
        assert weights is None and got.shape == (rows, 1, query_heads, dim)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # a mask over the rows' own tokens is applied: the last one masked out of row 1
    mask = torch.ones(rows, 1, 1, own, dtype=torch.bool)
    mask[1, ..., -1] = False
    got, _ = shared_prompt_attention(
        SimpleNamespace(layer_idx=0), query, own_keys, own_values, mask, shared_prompt=prompt
    )
    short = reference(
        query[1:2],
        keys[0][group[1:2]],
        values[0][group[1:2]],
        [attention[0].bool()],
        own_keys[1:2, :, :-1],
        own_values[1:2, :, :-1],
    )
    torch.testing.assert_close(got[1:2], short, atol=1e-5, rtol=1e-5)


def test_keep_drops_prompts_no_row_reads() -> None:
    attention = torch.ones(3, 4, dtype=torch.long)
    layers = [(torch.arange(3.0).view(3, 1, 1, 1).expand(3, 1, 4, 2).clone(),) * 2]
    prompt = SharedPrompt.of(layers, attention, torch.tensor([0, 0, 1, 2, 2, 2]))
    assert prompt.width == 3 and prompt.slot.tolist() == [0, 1, 3, 6, 7, 8]
    kept = prompt.keep(torch.tensor([1, 3, 5]))  # rows of prompts 0 and 2 only
    assert kept.group.tolist() == [0, 1, 1] and kept.width == 2
    assert kept.slot.tolist() == [0, 2, 3]
    assert kept.layers[0][0][:, 0, 0, 0].tolist() == [0.0, 2.0]  # prompt 1's states gone
    assert kept.mask.shape == (2, 1, 1, 4)


def test_a_prefill_step_is_refused() -> None:
    prompt = SharedPrompt.of(
        [(torch.zeros(1, 1, 2, 4),) * 2], torch.ones(1, 2, dtype=torch.long), torch.tensor([0])
    )
    with pytest.raises(ValueError, match="expected one query token per row"):
        shared_prompt_attention(
            SimpleNamespace(layer_idx=0),
            torch.zeros(1, 1, 2, 4),
            torch.zeros(1, 1, 2, 4),
            torch.zeros(1, 1, 2, 4),
            None,
            shared_prompt=prompt,
        )


@pytest.fixture(scope="module")
def gqa_policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Qwen2 with grouped-query attention (2 query heads per key head)."""
    from tiny_models import save_tiny_policy

    return save_tiny_policy(tmp_path_factory.mktemp("gqa-policy"), 128, heads=2, kv_heads=1)


@pytest.mark.parametrize("model", ["gqa", "shipped"])
def test_generations_are_those_of_each_row_reading_its_own_copy(
    model: str, gqa_policy_dir: Path, monkeypatch: Any
) -> None:
    """Greedy and sampled, with a batch that splits a prompt's rows across chunks: the same
    tokens as rows that each hold a copy of their prompt. The random grouped-query model
    runs its rows to the token limit; the shipped policy's rows finish at different times
    and are dropped from the batch, their prompts with them once no row reads them."""
    from search.resolve import resolve_model_path

    prompts_held: list[tuple[int, int]] = []  # per drop of rows: prompts before, after
    keep = SharedPrompt.keep

    def counting_keep(self: SharedPrompt, rows: Any) -> SharedPrompt:
        kept = keep(self, rows)
        prompts_held.append((int(self.mask.shape[0]), int(kept.mask.shape[0])))
        return kept

    monkeypatch.setattr(SharedPrompt, "keep", counting_keep)
    path = str(gqa_policy_dir) if model == "gqa" else resolve_model_path("checkpoints/arith-policy")
    problems = make_split("test", size=3)
    # the shipped policy's rows of the first prompt finish first, while the first chunk's
    # other rows run on: the batch drops them, and their prompt with them
    prefixes = [Prefix(problems[1], ("1 + 1 = 2",)), Prefix(problems[0]), Prefix(problems[2])]
    outputs = {}
    for on in (True, False):
        generator = HFGenerator(
            path,
            temperature=1.0,
            max_step_tokens=8,
            max_tokens=40 if model == "gqa" else 160,  # the shipped policy's solutions end
            batch_size=7,  # 3 prompts x 4 rows: chunks of 7 and 5 rows
            shared_prompt_attention=on,
            shared_prompt_min_rows=1,  # these chunks are far smaller than the default's
        )
        assert generator.shared_prompt is on
        outputs[on] = [
            generator.generate(prefixes, 4, Until.end, GREEDY),
            generator.generate(prefixes, 4, Until.step, Sampling(streams=("a", "b", "c"))),
            generator.generate(prefixes, 4, Until.end),
            generator.generate(prefixes, 1, Until.end),  # one row per prompt: nothing shared
        ]
    assert outputs[True] == outputs[False]
    if model == "shipped":
        lengths = {c.num_tokens for g in outputs[True][2] for c in g.continuations}
        assert len(lengths) > 1
        assert (2, 1) in prompts_held  # a prompt dropped with the last of its rows


@pytest.mark.slow  # the shipped policy's rows to their ends, four times
def test_bfloat16_rollouts_read_the_shared_prompt_in_bfloat16(monkeypatch: Any) -> None:
    """The roll-out model in bfloat16 (``mc_labelling_speed``'s bfloat16 rows; the dtype
    option of every policy): its shared prompt and own keys and values are bfloat16, and
    its tokens, greedy and sampled, are those of rows that each hold a copy of the prompt."""
    from search.resolve import resolve_model_path

    dtypes: list[Any] = []
    of = SharedPrompt.of.__func__  # type: ignore[attr-defined]

    def recording(cls: Any, layers: Any, attention: Any, group: Any) -> SharedPrompt:
        dtypes.append(layers[0][0].dtype)
        return of(cls, layers, attention, group)  # type: ignore[no-any-return]

    monkeypatch.setattr(SharedPrompt, "of", classmethod(recording))
    problems = make_split("test", size=2)
    prefixes = [Prefix(problems[0], ("1 + 1 = 2",)), Prefix(problems[1])]
    outputs = {}
    for on in (True, False):
        generator = HFGenerator(
            resolve_model_path("checkpoints/arith-policy"),
            max_step_tokens=8,
            batch_size=8,
            shared_prompt_attention=on,
            shared_prompt_min_rows=1,
            dtype="bfloat16",
        )
        assert generator.model.dtype == torch.bfloat16 and generator.shared_prompt is on
        outputs[on] = [
            generator.generate(prefixes, 4, Until.end, GREEDY),
            generator.generate(prefixes, 4, Until.end),
        ]
    assert outputs[True] == outputs[False]
    assert dtypes and set(dtypes) == {torch.bfloat16}  # only the shared run builds one
    answers = {c.text for g in outputs[True][1] for c in g.continuations}
    assert len(answers) > 1  # sampled rows differ: the test compares real samples


def test_chunks_of_fewer_rows_than_the_minimum_copy_their_prompts(
    tiny_policy_dir: Path, monkeypatch: Any
) -> None:
    """A chunk reads its prompts once from ``shared_prompt_min_rows`` rows on (64 by
    default), copies them below it, and both give the same tokens; the minimum is checked."""
    from tiny_models import count_shared_chunks

    from search.generators import hf

    shared = count_shared_chunks(monkeypatch)  # rows of each chunk that shared its prompts
    prefixes = [Prefix(p) for p in make_split("test", size=3)]

    def generate(**minimum: int) -> Any:
        made = HFGenerator(str(tiny_policy_dir), max_tokens=12, batch_size=4, **minimum)
        return made.generate(prefixes, 2, Until.end)  # chunks of 4 and 2 rows

    copied = generate()
    assert shared == [] and hf.SHARE_FROM_ROWS == 64
    assert generate(shared_prompt_min_rows=4) == copied
    assert shared == [4]  # the chunk of 2 rows copies
    assert generate(shared_prompt_min_rows=1) == copied
    assert shared == [4, 4, 2]
    with pytest.raises(ValueError, match="expected shared_prompt_min_rows >= 1, got 0; fix"):
        HFGenerator(str(tiny_policy_dir), shared_prompt_min_rows=0)


def test_shared_prompt_attention_is_off_where_it_does_not_apply(tiny_policy_dir: Path) -> None:
    eager = HFGenerator(str(tiny_policy_dir), attn_implementation="eager")
    dynamic = HFGenerator(str(tiny_policy_dir), kv_cache="dynamic")
    off = HFGenerator(str(tiny_policy_dir), shared_prompt_attention=False)
    assert not eager.shared_prompt and not dynamic.shared_prompt and not off.shared_prompt
    assert eager.model.config._attn_implementation == "eager"
    assert shared_prompt.unsupported(eager.model) == "the attention kernel is 'eager', not sdpa"
    sliding = SimpleNamespace(
        config=SimpleNamespace(
            _attn_implementation="sdpa", layer_types=["full_attention", "sliding_attention"]
        )
    )
    assert "sliding_attention" in (shared_prompt.unsupported(sliding) or "")
    assert HFGenerator(str(tiny_policy_dir)).shared_prompt


def test_a_model_whose_layers_drop_the_shared_prompt_copies_prompts(tmp_path: Path) -> None:
    """StableLM's decoder layers call attention without passing keyword arguments on: the
    check at load sees that no layer read the shared prompt, so the generator copies
    prompts to rows, and generates what it would with the option off."""
    from transformers import StableLmConfig

    config = StableLmConfig(
        vocab_size=258,
        hidden_size=64,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=1,
        num_key_value_heads=1,
        max_position_embeddings=128,
    )
    from tiny_models import save_tiny_model

    path = str(save_tiny_model(tmp_path, config))
    model = HFGenerator(path, max_tokens=12).model
    assert shared_prompt.unsupported(model) is None  # the config does not tell
    assert "0 of its 2 layers read the shared prompt" in (shared_prompt.enable(model) or "")
    assert model.config._attn_implementation == "sdpa"  # switched back
    prefixes = [Prefix(p) for p in make_split("test", size=2)]
    on = HFGenerator(path, temperature=0.0, max_tokens=12)
    off = HFGenerator(path, temperature=0.0, max_tokens=12, shared_prompt_attention=False)
    assert not on.shared_prompt
    assert on.generate(prefixes, 2, Until.end) == off.generate(prefixes, 2, Until.end)


def test_a_sliding_window_the_config_turns_on_is_refused() -> None:
    def model(**config: Any) -> Any:
        return SimpleNamespace(config=SimpleNamespace(_attn_implementation="sdpa", **config))

    assert "sliding attention window of 8" in (
        shared_prompt.unsupported(model(sliding_window=8)) or ""
    )  # Mistral's configs have no use_sliding_window
    assert shared_prompt.unsupported(model(sliding_window=8, use_sliding_window=False)) is None
    assert shared_prompt.unsupported(model(sliding_window=None)) is None
    assert "attn_logit_softcapping" in (
        shared_prompt.unsupported(model(attn_logit_softcapping=30.0)) or ""
    )


def test_the_plain_products_do_not_overflow_in_half_precision(monkeypatch: Any) -> None:
    """Off CPU (the plain products), float16 queries and keys whose unscaled dot products
    pass float16's range still give sdpa's attention."""
    monkeypatch.setattr(shared_prompt, "FUSED_ON_CPU", False)
    query = torch.full((1, 1, 1, 128), 24.0, dtype=torch.float16)
    keys = torch.full((1, 1, 3, 128), 24.0, dtype=torch.float16)
    keys[..., 1, :] = 23.9
    values = torch.randn(1, 1, 3, 128).to(torch.float16)
    out, lse = shared_prompt._attend(query, keys, values, None, 128**-0.5)
    expected = torch.nn.functional.scaled_dot_product_attention(
        query.float(), keys.float(), values.float()
    )
    assert torch.isfinite(lse).all() and out.dtype == torch.float16
    torch.testing.assert_close(out.float(), expected, atol=1e-2, rtol=1e-2)


def test_the_option_is_not_listed_as_a_kernel(tiny_policy_dir: Path) -> None:
    from search.generators.hf import attn_implementations, check_attn_implementation

    assert HFGenerator(str(tiny_policy_dir)).shared_prompt
    assert shared_prompt.NAME not in attn_implementations()
    with pytest.raises(ValueError, match="expected policy.hf.attn_implementation"):
        check_attn_implementation(shared_prompt.NAME)
