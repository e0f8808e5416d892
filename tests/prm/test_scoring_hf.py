"""HFScorer on tiny models of the three PRM layouts: scores, batching, validation, overflow,
token accounting."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_prms import (
    QWEN_STYLE_FORMAT,
    SHEPHERD_STYLE_FORMAT,
    embedded_prm,
    qwen_style_prm,
    save,
    shepherd_style_prm,
)

from prm.arith_model import EMBEDDED_PRM_FORMAT
from prm.scoring import HFScorer, PRMFormat, build_scorer
from search.guards import call_scorer
from search.inputs import InputError
from search.prompting import DEFAULT_SYSTEM_PROMPT
from search.types import Prefix, Problem

PROBLEMS = (
    Problem("p1", "Compute 7 + 5 - 3.", "9"),
    Problem("p2", "Compute 12 * 3 + 4 - 8 + 1.", "33"),
)
STEPS = {
    "p1": ("7 + 5 = 12", "12 - 3 = 9", "The answer is \\boxed{9}."),
    "p2": (
        "12 * 3 = 36",
        "36 + 4 = 40",
        "40 - 8 = 32",
        "32 + 1 = 33",
        "The answer is \\boxed{33}.",
    ),
}
FAMILIES = {
    "embedded": (embedded_prm, EMBEDDED_PRM_FORMAT),
    "qwen_style": (qwen_style_prm, QWEN_STYLE_FORMAT),
    "shepherd_style": (shepherd_style_prm, SHEPHERD_STYLE_FORMAT),
}


def _prefixes() -> list[Prefix]:
    """Every prefix of both gold solutions (empty ones included), problems interleaved."""
    out = []
    for length in range(6):
        for problem in PROBLEMS:
            if length <= len(STEPS[problem.id]):
                out.append(Prefix(problem, STEPS[problem.id][:length]))
    return out


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request: pytest.FixtureRequest) -> tuple[str, Any, Any, PRMFormat]:
    build, fmt = FAMILIES[request.param]
    model, tokenizer = build()
    return request.param, model, tokenizer, fmt


def _card_scores(name: str, model: Any, tokenizer: Any, prefix: Prefix) -> list[float]:
    """Scores computed the way each model card does, independently of prm.scoring."""
    steps = list(prefix.steps)
    question = prefix.problem.question
    if name == "qwen_style":
        messages = [
            {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
            {"role": "user", "content": question},
            {"role": "assistant", "content": "<extra_0>".join(steps) + "<extra_0>"},
        ]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        tag = "<extra_0>"
    elif name == "embedded":
        text = f"Question: {question}\nAnswer:\n" + "".join(s + "<step>\n\n" for s in steps)
        tag = "<step>"
    else:
        text = f"{question} " + " ки\n".join(steps) + " ки"
        tag = "ки"
    ids = torch.tensor([tokenizer.encode(text)])
    mask = ids[0] == tokenizer.convert_tokens_to_ids(tag)
    with torch.no_grad():
        logits = model(ids).logits[0]
    if name == "shepherd_style":
        candidates = tokenizer.convert_tokens_to_ids(["+", "-"])
        return logits[:, candidates].softmax(-1)[mask, 0].tolist()
    return logits.softmax(-1)[mask, 1].tolist()


def test_scores_have_one_probability_per_step(family: tuple) -> None:
    _, model, tokenizer, fmt = family
    prefixes = _prefixes()
    out = call_scorer(HFScorer(model, tokenizer, fmt), prefixes)  # the engine's checks
    assert [len(s) for s in out.scores] == [len(p.steps) for p in prefixes]
    values = [v for scores in out.scores for v in scores]
    assert all(0.0 < v < 1.0 for v in values) and max(values) - min(values) > 0.01


def test_scores_equal_the_model_cards_computation(family: tuple) -> None:
    name, model, tokenizer, fmt = family
    prefixes = [p for p in _prefixes() if p.steps]
    scores = HFScorer(model, tokenizer, fmt).score(prefixes)
    for prefix, got in zip(prefixes, scores, strict=True):
        assert got == pytest.approx(_card_scores(name, model, tokenizer, prefix), abs=1e-5)


def test_batching_and_sorting_match_one_by_one(family: tuple) -> None:
    _, model, tokenizer, fmt = family
    prefixes = _prefixes()
    batched = HFScorer(model, tokenizer, fmt, batch_size=3).score(prefixes)
    single = HFScorer(model, tokenizer, fmt, batch_size=1)
    for prefix, got in zip(prefixes, batched, strict=True):
        assert got == pytest.approx(single.score([prefix])[0], abs=1e-5)


def test_a_prefix_scores_like_the_start_of_its_extension(family: tuple) -> None:
    _, model, tokenizer, fmt = family
    scorer = HFScorer(model, tokenizer, fmt, batch_size=4)
    steps = STEPS["p2"]
    scores = scorer.score([Prefix(PROBLEMS[1], steps[:k]) for k in range(1, len(steps) + 1)])
    for shorter, longer in itertools.pairwise(scores):
        assert longer[: len(shorter)] == pytest.approx(shorter, abs=1e-5)


def test_label_token_logits_only_at_tags_equal_full_logits() -> None:
    model, tokenizer = shepherd_style_prm()
    fast = HFScorer(model, tokenizer, SHEPHERD_STYLE_FORMAT, batch_size=4)
    full = HFScorer(model, tokenizer, SHEPHERD_STYLE_FORMAT, batch_size=4)
    assert fast._keep_logits
    full._keep_logits = False
    prefixes = _prefixes()
    for got, expected in zip(fast.score(prefixes), full.score(prefixes), strict=True):
        assert got == pytest.approx(expected, abs=1e-6)


def test_token_classifier_without_two_labels_fails_at_load() -> None:
    from transformers import Qwen2ForTokenClassification

    model, tokenizer = embedded_prm()
    config = model.config.__class__.from_dict({**model.config.to_dict(), "num_labels": 3})
    config.id2label = {0: "a", 1: "b", 2: "c"}
    with pytest.raises(ValueError, match="2 labels.*got 3.*fix"):
        HFScorer(Qwen2ForTokenClassification(config), tokenizer, EMBEDDED_PRM_FORMAT)
    causal, causal_tokenizer = shepherd_style_prm()
    with pytest.raises(ValueError, match="2 labels.*got \\d+.*family=label_token"):
        HFScorer(causal, causal_tokenizer, EMBEDDED_PRM_FORMAT)


def test_a_checkpoint_of_the_other_family_is_refused_not_given_a_random_head(
    tmp_path: Path,
) -> None:
    """transformers fills weights a checkpoint lacks at random (a causal LM loaded for token
    classification gets a random score head): the scorer refuses such a load."""
    causal, causal_tokenizer = shepherd_style_prm()
    causal.save_pretrained(tmp_path / "causal")
    causal_tokenizer.save_pretrained(tmp_path / "causal")
    with pytest.raises(InputError, match=r"score\.weight.*fix: family=label_token"):
        HFScorer.load(tmp_path / "causal", EMBEDDED_PRM_FORMAT, device="cpu")


def test_tag_outside_the_models_vocabulary_fails_at_load() -> None:
    model, _ = embedded_prm()  # embeddings for the embedded vocabulary only
    _, bigger_tokenizer = qwen_style_prm()
    with pytest.raises(ValueError, match="below the model's embedding size"):
        HFScorer(model, bigger_tokenizer, QWEN_STYLE_FORMAT)


def test_overflow_policy_both_ways() -> None:
    model, tokenizer = embedded_prm()
    prefix = Prefix(PROBLEMS[1], STEPS["p2"])
    full = HFScorer(model, tokenizer, EMBEDDED_PRM_FORMAT)
    length = full.score_with_usage([prefix]).tokens
    assert length is not None
    limit = length[0] - 10
    strict = HFScorer(model, tokenizer, EMBEDDED_PRM_FORMAT, max_length=limit)
    with pytest.raises(ValueError, match="on_overflow=truncate_question"):
        strict.score([prefix])
    cut = HFScorer(
        model, tokenizer, EMBEDDED_PRM_FORMAT, max_length=limit, on_overflow="truncate_question"
    )
    out = cut.score_with_usage([prefix])
    assert out.tokens == [limit]
    encoded = cut.encoder.encode_one(prefix)
    with torch.no_grad():
        logits = model(torch.tensor([encoded.token_ids])).logits[0]
    expected = logits.softmax(-1)[list(encoded.tag_positions), 1].tolist()
    assert out.scores[0] == pytest.approx(expected, abs=1e-5)
    assert out.scores[0] != pytest.approx(full.score([prefix])[0], abs=1e-6)  # context changed


def test_a_max_length_above_the_models_context_fails_at_load() -> None:
    model, tokenizer = embedded_prm()  # max_position_embeddings 512
    assert HFScorer(model, tokenizer, EMBEDDED_PRM_FORMAT).encoder.max_length == 512
    with pytest.raises(InputError, match=r"max_position_embeddings=512\), got max_length=4096"):
        HFScorer(model, tokenizer, EMBEDDED_PRM_FORMAT, max_length=4096)
    shipped = Path(__file__).resolve().parents[2] / "checkpoints" / "arith-prm"  # 256 positions
    with pytest.raises(InputError, match=r"fix: scorer\.max_length=256 or null"):
        build_scorer(str(shipped), max_length=4096)


def test_new_tokens_on_a_beam_like_workload() -> None:
    """Two beams per problem, extended one step per call: each call re-encodes the whole
    prefix (tokens) but only the last step, or a sibling's branch, is new."""
    model, tokenizer = embedded_prm()
    scorer = HFScorer(model, tokenizer, EMBEDDED_PRM_FORMAT, batch_size=8)
    problem = PROBLEMS[1]
    gold = STEPS["p2"]
    total = new = 0
    for depth in range(1, len(gold) + 1):
        beams = [gold[:depth], (*gold[: depth - 1], f"{depth} + {depth} = {2 * depth}")]
        prefixes = [Prefix(problem, steps) for steps in beams]
        out = scorer.score_with_usage(prefixes)
        encoded = scorer.encoder.encode(prefixes)
        assert out.tokens == [len(e.token_ids) for e in encoded]
        assert out.new_tokens is not None and out.tokens is not None
        if depth > 1:  # the gold beam adds its last step to the previous gold prefix
            previous = scorer.encoder.encode_one(Prefix(problem, gold[: depth - 1]))
            assert out.new_tokens[0] == len(encoded[0].token_ids) - len(previous.token_ids)
        shared = 0
        while encoded[0].token_ids[shared] == encoded[1].token_ids[shared]:
            shared += 1
        assert out.new_tokens[1] == len(encoded[1].token_ids) - shared
        total += sum(out.tokens)
        new += sum(out.new_tokens)
    assert (scorer.usage.tokens, scorer.usage.new_tokens) == (total, new)
    assert scorer.usage.calls == len(gold)
    assert new < 0.5 * total
    again = scorer.score_with_usage([Prefix(problem, gold)])
    assert again.new_tokens == [0]


def test_build_scorer_loads_a_checkpoint_in_the_chosen_dtype(tmp_path: Path) -> None:
    model, tokenizer = embedded_prm()
    path = save(model, tokenizer, tmp_path / "prm")
    prefixes = [p for p in _prefixes() if p.steps]
    fp32 = build_scorer(str(path), backend="hf", dtype="auto", hf={"batch_size": 4})
    bf16 = build_scorer(str(path), backend="hf", dtype="bfloat16")
    assert isinstance(fp32, HFScorer) and isinstance(bf16, HFScorer)
    assert next(fp32.model.parameters()).dtype == torch.float32  # auto on CPU
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    expected = HFScorer(model, tokenizer, EMBEDDED_PRM_FORMAT).score(prefixes)
    for got, low, want in zip(fp32.score(prefixes), bf16.score(prefixes), expected, strict=True):
        assert got == pytest.approx(want, abs=1e-6)
        assert low == pytest.approx(want, abs=0.05)


def _beam_calls() -> list[list[Prefix]]:
    """Three beams per problem, one step longer per call; siblings differ in their last step."""
    calls = []
    for depth in range(1, 6):
        prefixes = []
        for problem in PROBLEMS:
            gold = STEPS[problem.id]
            if depth <= len(gold):
                head = gold[: depth - 1]
                for tail in (gold[depth - 1], f"{depth} + 1 = {depth + 1}", "The answer is 0."):
                    prefixes.append(Prefix(problem, (*head, tail)))
        calls.append(prefixes)
    return calls


def test_prefix_reuse_scores_equal_a_full_pass_and_run_only_new_tokens(family: tuple) -> None:
    _, model, tokenizer, fmt = family
    full = HFScorer(model, tokenizer, fmt, batch_size=4, reuse_prefix_cache=False)
    reusing = HFScorer(model, tokenizer, fmt, batch_size=4, reuse_prefix_cache=True)
    assert full.kv_tree is None and reusing.kv_tree is not None
    for prefixes in _beam_calls():
        for got, want in zip(reusing.score(prefixes), full.score(prefixes), strict=True):
            assert got == pytest.approx(want, abs=1e-4)
    assert full.computed_tokens == full.usage.tokens
    # every distinct token runs once: at most the ledger's new tokens (a shared template
    # across problems makes it fewer)
    assert 0 < reusing.computed_tokens <= reusing.usage.new_tokens < 0.5 * full.usage.tokens
    before = reusing.computed_tokens
    again = [p for prefixes in _beam_calls()[:2] for p in prefixes]
    for got, want in zip(reusing.score(again), full.score(again), strict=True):
        assert got == pytest.approx(want, abs=1e-4)
    assert reusing.computed_tokens == before  # all of it was run before


def test_prefix_reuse_keeps_at_most_its_token_budget() -> None:
    model, tokenizer = embedded_prm()
    full = HFScorer(model, tokenizer, EMBEDDED_PRM_FORMAT, reuse_prefix_cache=False)
    small = HFScorer(model, tokenizer, EMBEDDED_PRM_FORMAT, prefix_cache_tokens=60)
    assert small.kv_tree is not None
    for prefixes in _beam_calls():
        for got, want in zip(small.score(prefixes), full.score(prefixes), strict=True):
            assert got == pytest.approx(want, abs=1e-4)
        assert small.kv_tree.num_tokens <= 60
    assert small.computed_tokens > small.usage.new_tokens  # evicted prefixes ran again


def test_a_prefix_cache_of_0_tokens_is_off_as_the_policys() -> None:
    model, tokenizer = embedded_prm()
    off = HFScorer(model, tokenizer, EMBEDDED_PRM_FORMAT, prefix_cache_tokens=0)
    assert off.kv_tree is None
    prefixes = _beam_calls()[0]
    off.score(prefixes)
    assert off.computed_tokens == off.usage.tokens  # every token ran: nothing reused


def test_a_model_that_ignores_reused_states_fails_at_load() -> None:
    model, tokenizer = embedded_prm()

    class ForgetsThePast(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model
            self.config = model.config

        def forward(self, input_ids: Any, attention_mask: Any, **kwargs: Any) -> Any:
            kwargs.pop("past_key_values", None)
            kwargs.pop("position_ids", None)
            return self.inner(input_ids=input_ids, **kwargs)

        def get_input_embeddings(self) -> Any:
            return model.get_input_embeddings()

        @property
        def device(self) -> Any:
            return model.device

        @property
        def dtype(self) -> Any:
            return model.dtype

    with pytest.raises(ValueError, match="reused key/value states.*reuse_prefix_cache=false"):
        HFScorer(ForgetsThePast(), tokenizer, EMBEDDED_PRM_FORMAT)
    HFScorer(ForgetsThePast(), tokenizer, EMBEDDED_PRM_FORMAT, reuse_prefix_cache=False)
