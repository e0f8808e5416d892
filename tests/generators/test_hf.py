from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from search.envs.arith.world import make_split
from search.generators.base import GenerationSettings, make_continuation
from search.generators.hf import HFGenerator
from search.prompting import PLAIN_TEMPLATE, render_prompt
from search.types import GREEDY, FinishReason, Prefix, Sampling, Until


@pytest.fixture(scope="module")
def prefixes() -> list[Prefix]:
    problems = make_split("test", size=3)
    return [Prefix(problems[0]), Prefix(problems[1], ("1 + 1 = 2",)), Prefix(problems[2])]


def test_shapes_counts_and_stop_reasons(tiny_policy_dir: Path, prefixes: list[Prefix]) -> None:
    gen = HFGenerator(str(tiny_policy_dir), max_step_tokens=12, max_tokens=30, seed=1)
    out = gen.generate(prefixes, n=4, until=Until.step)
    assert len(out) == 3
    assert all(len(g.continuations) == 4 for g in out)
    for prefix, generation in zip(prefixes, out, strict=True):
        ids = gen.renderer.encode(prefix)
        assert generation.prompt_tokens == len(ids)
        for c in generation.continuations:
            assert 1 <= c.num_tokens <= 12
            if c.finish_reason is FinishReason.step:
                assert c.text.endswith("\n\n") and c.text.count("\n\n") == 1
            if c.finish_reason is FinishReason.length:
                assert c.num_tokens == 12
    assert gen.usage.calls == 1
    assert gen.usage.generated_tokens == sum(c.num_tokens for g in out for c in g.continuations)
    assert gen.usage.tokens == sum(g.prompt_tokens for g in out)


def test_until_end_runs_past_step_boundaries(tiny_policy_dir: Path, prefixes: list[Prefix]) -> None:
    gen = HFGenerator(str(tiny_policy_dir), max_step_tokens=5, max_tokens=40, seed=0)
    out = gen.generate(prefixes, n=3, until=Until.end)
    for g in out:
        for c in g.continuations:
            assert c.finish_reason in (FinishReason.eos, FinishReason.length)
            assert c.num_tokens <= 40
            assert c.finish_reason is not FinishReason.length or c.num_tokens == 40


def test_seeded_and_batch_size_invariant_when_greedy(
    tiny_policy_dir: Path, prefixes: list[Prefix]
) -> None:
    a = HFGenerator(str(tiny_policy_dir), temperature=1.0, max_tokens=20, seed=7)
    b = HFGenerator(str(tiny_policy_dir), temperature=1.0, max_tokens=20, seed=7)
    assert a.generate(prefixes, 2, Until.end) == b.generate(prefixes, 2, Until.end)
    small = HFGenerator(str(tiny_policy_dir), temperature=0.0, max_tokens=20, batch_size=2)
    large = HFGenerator(str(tiny_policy_dir), temperature=0.0, max_tokens=20, batch_size=64)
    assert small.generate(prefixes, 2, Until.end) == large.generate(prefixes, 2, Until.end)


def test_left_padding_matches_unpadded_greedy(
    tiny_policy_dir: Path, prefixes: list[Prefix]
) -> None:
    """A prompt batched with longer ones decodes exactly as it does alone."""
    batched = HFGenerator(str(tiny_policy_dir), temperature=0.0, max_tokens=25)
    together = batched.generate(prefixes, 1, Until.end)
    for prefix, expected in zip(prefixes, together, strict=True):
        alone = batched.generate([prefix], 1, Until.end)[0]
        assert alone == expected


def test_invalid_arguments(tiny_policy_dir: Path, prefixes: list[Prefix]) -> None:
    with pytest.raises(ValueError, match="temperature"):
        GenerationSettings(temperature=-1)
    gen = HFGenerator(str(tiny_policy_dir))
    with pytest.raises(ValueError, match="n >= 1"):
        gen.generate(prefixes, 0, Until.step)


def test_make_continuation_cuts_after_the_first_blank_line() -> None:
    c = make_continuation("2 + 2 = 4\n\nThe", FinishReason.step, 5, Until.step)
    assert c.text == "2 + 2 = 4\n\n" and c.steps == ("2 + 2 = 4",)
    end = make_continuation("a\n\nb", FinishReason.eos, 3, Until.end)
    assert end.steps == ("a", "b") and end.finished


def test_plain_and_chat_prompts() -> None:
    from search.envs.arith.tokenizer import build_tokenizer

    plain = render_prompt("Q?", ["s1"], tokenizer=build_tokenizer())
    assert plain == PLAIN_TEMPLATE.format(question="Q?") + "s1\n\n"
    tok = build_tokenizer()
    tok.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    chat = render_prompt("Q?", ["s1", "s2"], tokenizer=tok, system_prompt="SYS")
    assert chat == "<|system|>SYS\n<|user|>Q?\n<|assistant|>s1\n\ns2\n\n"
    with pytest.raises(ValueError, match="chat template"):
        render_prompt("Q?", [], tokenizer=build_tokenizer(), use_chat_template=True)


def test_sampled_continuations_depend_only_on_their_stream(
    tiny_policy_dir: Path, prefixes: list[Prefix]
) -> None:
    """At temperature 1 a prefix's continuations are the same alone or batched, whatever the
    batch size, and are named by (seed, stream, index): a re-batched run repeats them."""
    streams = Sampling(streams=("a", "b", "c"))
    small = HFGenerator(str(tiny_policy_dir), temperature=1.0, max_tokens=20, batch_size=2)
    large = HFGenerator(str(tiny_policy_dir), temperature=1.0, max_tokens=20, batch_size=64)
    together = large.generate(prefixes, 3, Until.end, streams)
    assert small.generate(prefixes, 3, Until.end, streams) == together
    for index, prefix in enumerate(prefixes):
        alone = small.generate(
            [prefix], 3, Until.end, Sampling(streams=(streams.streams or ())[index : index + 1])
        )
        assert alone[0] == together[index]
    texts = [c.text for g in together for c in g.continuations]
    assert len(set(texts)) > len(texts) // 2  # the n continuations of a prefix differ
    other = large.generate(prefixes, 3, Until.end, Sampling(streams=("x", "y", "z")))
    assert other != together
    reseeded = HFGenerator(str(tiny_policy_dir), temperature=1.0, max_tokens=20, seed=1)
    assert reseeded.generate(prefixes, 3, Until.end, streams) != together


def test_per_call_sampling_overrides_the_generators_settings(
    tiny_policy_dir: Path, prefixes: list[Prefix]
) -> None:
    sampled = HFGenerator(str(tiny_policy_dir), temperature=1.0, max_tokens=20)
    greedy = HFGenerator(str(tiny_policy_dir), temperature=0.0, max_tokens=20)
    assert sampled.generate(prefixes, 2, Until.end, GREEDY) == greedy.generate(
        prefixes, 2, Until.end
    )
    short = sampled.generate(prefixes, 2, Until.end, Sampling(max_tokens=3))
    assert all(c.num_tokens <= 3 for g in short for c in g.continuations)
    with pytest.raises(ValueError, match="one sampling stream per prefix"):
        sampled.generate(prefixes, 1, Until.end, Sampling(streams=("only-one",)))
    with pytest.raises(ValueError, match="top_p"):
        Sampling(top_p=0.0)


def test_kv_buffer_matches_dynamic_cache(tiny_policy_dir: Path, prefixes: list[Prefix]) -> None:
    """In-place appends (and late row dropping) give the tokens DynamicCache gives, greedy
    and sampled (each row samples from its own stream)."""
    outputs = {}
    for cache in ("buffer", "dynamic"):
        gen = HFGenerator(
            str(tiny_policy_dir), temperature=1.0, max_step_tokens=6, max_tokens=25, kv_cache=cache
        )
        outputs[cache] = [
            gen.generate(prefixes, 2, Until.end, GREEDY),
            gen.generate(prefixes, 3, Until.step, GREEDY),
            gen.generate(prefixes, 4, Until.end),
        ]
    assert outputs["buffer"] == outputs["dynamic"]
    with pytest.raises(ValueError, match="kv_cache"):
        HFGenerator(str(tiny_policy_dir), kv_cache="static")


def test_kv_buffer_grows_past_its_plan_and_selects_rows() -> None:
    import torch

    from search.generators.kv_buffer import BufferLayer

    layer = BufferLayer(capacity=3)
    keys = torch.arange(2 * 1 * 2 * 4, dtype=torch.float32).reshape(2, 1, 2, 4)
    layer.update(keys, keys + 100)
    step = torch.full((2, 1, 3, 4), 7.0)
    got_keys, got_values = layer.update(step, step)  # 5 > 3: grows
    assert got_keys.shape == (2, 1, 5, 4) and layer.get_seq_length() == 5
    assert torch.equal(got_keys[:, :, :2], keys) and torch.equal(got_values[:, :, 2:], step)
    filled_keys, filled_values = got_keys.clone(), got_values.clone()
    layer.batch_select_indices(torch.tensor([1, 0, 1]))  # reordered, one row twice
    assert torch.equal(layer.keys, filled_keys[[1, 0, 1]])
    assert torch.equal(layer.values, filled_values[[1, 0, 1]])
    room = layer._keys.shape[2]
    assert room == 6  # the grown capacity is kept: the next token needs no new buffer
    new_keys, new_values = layer.update(torch.ones(3, 1, 1, 4), torch.zeros(3, 1, 1, 4))
    assert layer._keys.shape[2] == room and new_keys.shape == (3, 1, 6, 4)
    assert torch.equal(new_keys[:, :, :5], filled_keys[[1, 0, 1]])
    assert torch.equal(new_values[:, :, 5], torch.zeros(3, 1, 4))
    layer.batch_select_indices(torch.tensor([2]))
    assert torch.equal(layer.keys[0, :, :2], keys[1]) and layer.keys.shape[0] == 1


def test_kv_buffer_reorders_for_beam_search_and_refuses_what_it_cannot_do() -> None:
    """transformers' own edits of a layer must keep the buffer behind ``keys`` right: beam
    search's reorder goes through the row selection (a list, a mask or a tensor), the rest is
    refused with the fix instead of leaving the buffer stale."""
    import torch

    from search.generators.kv_buffer import BufferLayer

    layer = BufferLayer(capacity=4)
    keys = torch.arange(3 * 1 * 2 * 2, dtype=torch.float32).reshape(3, 1, 2, 2)
    layer.update(keys, -keys)
    layer.reorder_cache(torch.tensor([2, 2, 0]))
    assert torch.equal(layer.keys, keys[[2, 2, 0]]) and torch.equal(layer.values, -keys[[2, 2, 0]])
    after, _ = layer.update(torch.ones(3, 1, 1, 2), torch.ones(3, 1, 1, 2))
    assert torch.equal(after[:, :, :2], keys[[2, 2, 0]])  # appends see the reordered rows
    layer.batch_select_indices(torch.tensor([True, False, True]))
    assert torch.equal(layer.keys[:, :, :2], keys[[2, 0]])
    layer.batch_select_indices([1])
    assert torch.equal(layer.keys[:, :, :2], keys[[0]])
    for call in (
        lambda: layer.crop(1),
        lambda: layer.batch_repeat_interleave(2),
        layer.offload,
        layer.prefetch,
    ):
        with pytest.raises(NotImplementedError, match="fix: policy.hf.kv_cache=dynamic"):
            call()


def test_prompt_prefix_reuse_across_calls_changes_no_token(tiny_policy_dir: Path) -> None:
    """A beam's next depth re-sends its whole prefix: with the prompt tree, only the new
    tokens are run, and every continuation is what a generator without the tree samples."""
    problems = make_split("test", size=3)
    reuse = HFGenerator(str(tiny_policy_dir), max_step_tokens=6, max_tokens=20, batch_size=5)
    fresh = HFGenerator(
        str(tiny_policy_dir), max_step_tokens=6, max_tokens=20, prefix_cache_tokens=0
    )
    assert reuse.prefix_tree is not None and fresh.prefix_tree is None
    steps: dict[str, tuple[str, ...]] = {p.id: () for p in problems}
    for _ in range(3):
        prefixes = [Prefix(p, steps[p.id]) for p in problems]
        for sampling in (GREEDY, Sampling()):
            got = reuse.generate(prefixes, 3, Until.step, sampling)
            assert got == fresh.generate(prefixes, 3, Until.step, sampling)
        for p, generation in zip(problems, got, strict=True):  # grow each prefix by a step
            steps[p.id] = steps[p.id] + (generation.continuations[0].steps or ("1 + 1 = 2",))
    assert reuse.computed_prompt_tokens < 0.7 * fresh.computed_prompt_tokens


def test_rows_of_a_prompt_share_its_prefill(tiny_policy_dir: Path, prefixes: list[Prefix]) -> None:
    """The n rows of a prompt run its prefill once (MC's K rollouts of a prefix), and sample
    what rows that each ran the prompt sample (the DynamicCache path prefills every row)."""
    shared = HFGenerator(str(tiny_policy_dir), max_tokens=20, prefix_cache_tokens=0)
    per_row = HFGenerator(str(tiny_policy_dir), max_tokens=20, kv_cache="dynamic")
    streams = Sampling(streams=("a", "b", "c"))
    got = shared.generate(prefixes, 4, Until.end, streams)
    assert got == per_row.generate(prefixes, 4, Until.end, streams)
    prompt_tokens = sum(len(shared.renderer.encode(p)) for p in prefixes)
    assert shared.computed_prompt_tokens == prompt_tokens
    assert per_row.computed_prompt_tokens == 4 * prompt_tokens


def test_eager_attention_samples_what_the_default_kernel_samples(
    tiny_policy_dir: Path, prefixes: list[Prefix]
) -> None:
    """``attn_implementation=eager`` only swaps the attention kernel: greedy continuations
    of ragged, left-padded prompts are the same tokens."""
    default = HFGenerator(str(tiny_policy_dir), temperature=0.0, max_tokens=20)
    eager = HFGenerator(
        str(tiny_policy_dir), temperature=0.0, max_tokens=20, attn_implementation="eager"
    )
    assert eager.model.config._attn_implementation == "eager"
    assert default.model.config._attn_implementation != "eager"
    assert eager.generate(prefixes, 2, Until.end) == default.generate(prefixes, 2, Until.end)


@pytest.mark.parametrize(
    "cache",
    [{}, {"shared_prompt_min_rows": 1}, {"kv_cache": "dynamic"}],  # copied, shared, dynamic
)
def test_abandoned_prefixes_stop_within_the_call_and_the_others_do_not_change(
    tiny_policy_dir: Path, prefixes: list[Prefix], cache: dict[str, Any]
) -> None:
    """Prefix 1 abandoned from the start: its rows never run, nor its prompt; abandoned once
    the call runs: its rows stop at the next check (every ``ABANDONED_EVERY`` tokens), cut,
    their tokens so far kept. The other prefixes' continuations are those of a call without
    abandonment."""
    from search.generators.hf import ABANDONED_EVERY

    streams = ("a", "b", "c")
    limit = 3 * ABANDONED_EVERY
    gen = HFGenerator(str(tiny_policy_dir), max_tokens=limit, batch_size=4, **cache)
    whole = gen.generate(prefixes, 2, Until.end, Sampling(streams=streams))
    assert all(c.num_tokens > ABANDONED_EVERY for c in whole[1].continuations)
    at_once = gen.generate(prefixes, 2, Until.end, Sampling(streams=streams, abandoned=lambda: [1]))
    assert at_once[0] == whole[0] and at_once[2] == whole[2]
    for c in at_once[1].continuations:
        assert c.num_tokens == 0 and c.finish_reason is FinishReason.length
    assert at_once[1].prompt_tokens == 0 < whole[1].prompt_tokens  # its prompt never ran
    asked: list[int] = []

    def later() -> list[int]:  # nothing at the chunk's start, prefix 1 from the first check
        asked.append(1)
        return [1] if len(asked) > 1 else []

    before = gen.usage.generated_tokens
    midway = gen.generate(prefixes, 2, Until.end, Sampling(streams=streams, abandoned=later))
    assert midway[0] == whole[0] and midway[2] == whole[2]
    for cut, full in zip(midway[1].continuations, whole[1].continuations, strict=True):
        assert cut.num_tokens == ABANDONED_EVERY and cut.finish_reason is FinishReason.length
        assert full.text.startswith(cut.text)
    assert gen.usage.generated_tokens - before == sum(
        c.num_tokens for g in midway for c in g.continuations
    )
