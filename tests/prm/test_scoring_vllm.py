"""VLLMScorer == HFScorer on the same inputs (float32, 1e-4), with and without reading
vLLM's prefix cache. One engine per PRM family, started once per module (~1 min each on
CPU)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tiny_prms import SHEPHERD_STYLE_FORMAT, embedded_prm, save, shepherd_style_prm

from prm.arith_model import EMBEDDED_PRM_FORMAT
from prm.scoring import HFScorer, VLLMScorer, build_scorer
from search.guards import call_scorer
from search.types import Prefix, Problem

pytest.importorskip("vllm")
pytestmark = [pytest.mark.vllm, pytest.mark.slow]

# A question long enough (> 2 blocks of 32 tokens) that growing prefixes hit the cache.
PROBLEMS = (
    Problem("long", "Compute " + " + ".join(str(n) for n in range(1, 30)) + ".", "435"),
    Problem("short", "Compute 7 + 5 - 3.", "9"),
)
STEPS = {
    "long": tuple(f"{n * (n + 1) // 2} + {n + 1} = {(n + 1) * (n + 2) // 2}" for n in range(1, 9)),
    "short": ("7 + 5 = 12", "12 - 3 = 9", "The answer is \\boxed{9}."),
}


def _beam_workload() -> list[list[Prefix]]:
    """Score calls of a beam-like search: every call extends each beam by one step and adds
    a sibling that branches at the last step."""
    calls = []
    for depth in range(1, 9):
        prefixes = []
        for problem in PROBLEMS:
            gold = STEPS[problem.id]
            if depth <= len(gold):
                prefixes.append(Prefix(problem, gold[:depth]))
                prefixes.append(Prefix(problem, (*gold[: depth - 1], f"{depth} * 2 = {2 * depth}")))
        calls.append(prefixes)
    return [*calls, calls[-1]]  # and the last call again: everything but one token cached


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, VLLMScorer]]:
    model, tokenizer = embedded_prm()
    path = save(model, tokenizer, tmp_path_factory.mktemp("vllm-prm") / "prm")
    scorer = build_scorer(
        str(path),
        backend="vllm",
        dtype="float32",
        max_length=512,
        vllm={"block_size": 32, "reuse_prefix_cache": True},
    )
    assert isinstance(scorer, VLLMScorer)
    yield HFScorer(model, tokenizer, EMBEDDED_PRM_FORMAT, max_length=512), scorer
    scorer.close()


def _assert_same_scores(hf: HFScorer, vllm: VLLMScorer, calls: list[list[Prefix]]) -> None:
    for prefixes in calls:
        expected = hf.score_with_usage(prefixes)
        got = call_scorer(vllm, prefixes)
        assert got.tokens == expected.tokens  # identical token ids in both backends
        for want, have in zip(expected.scores, got.scores, strict=True):
            assert have == pytest.approx(want, abs=1e-4)


def test_vllm_token_classification_matches_hf_reading_the_prefix_cache(embedded: tuple) -> None:
    hf, vllm = embedded
    vllm.reuse_prefix_cache = True
    _assert_same_scores(hf, vllm, _beam_workload())
    assert vllm.cached_tokens > 0  # the cache was read and the memo filled in the tags
    assert vllm.recomputed_inputs == 0
    assert vllm.usage.new_tokens < vllm.usage.tokens


def test_vllm_token_classification_matches_hf_without_cache_reads(embedded: tuple) -> None:
    hf, vllm = embedded
    vllm.reuse_prefix_cache = False
    before = vllm.cached_tokens
    _assert_same_scores(hf, vllm, _beam_workload())
    assert vllm.cached_tokens == before
    vllm.reuse_prefix_cache = True


def test_cache_hits_missing_from_the_memo_are_recomputed(embedded: tuple) -> None:
    """A second scorer on the same engine finds blocks it never scored in vLLM's cache: the
    tags there are not in its memo, so those inputs re-run without cache reads."""
    hf, vllm = embedded
    calls = _beam_workload()
    vllm.score([p for prefixes in calls for p in prefixes])
    fresh = VLLMScorer(vllm.llm, vllm.encoder.tokenizer, EMBEDDED_PRM_FORMAT, max_length=512)
    _assert_same_scores(hf, fresh, calls[-2:])
    assert fresh.cached_tokens > 0 and fresh.recomputed_inputs > 0


def test_vllm_refuses_a_wrong_head_at_load(tmp_path: Path) -> None:
    from transformers import Qwen2ForTokenClassification

    model, tokenizer = embedded_prm()
    config = model.config.__class__.from_dict({**model.config.to_dict(), "num_labels": 3})
    config.id2label = {0: "a", 1: "b", 2: "c"}
    path = save(Qwen2ForTokenClassification(config), tokenizer, tmp_path / "three")
    with pytest.raises(ValueError, match="num_labels=2, got 3"):
        VLLMScorer.load(str(path), EMBEDDED_PRM_FORMAT)


@pytest.fixture(scope="module")
def shepherd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, VLLMScorer]]:
    model, tokenizer = shepherd_style_prm()
    path = save(model, tokenizer, tmp_path_factory.mktemp("vllm-shepherd") / "prm")
    scorer = VLLMScorer.load(
        str(path), SHEPHERD_STYLE_FORMAT, dtype="float32", max_length=512, block_size=32
    )
    yield HFScorer(model, tokenizer, SHEPHERD_STYLE_FORMAT, max_length=512), scorer
    scorer.close()


def test_vllm_label_token_matches_hf(shepherd: tuple) -> None:
    hf, vllm = shepherd
    _assert_same_scores(hf, vllm, _beam_workload())
    assert vllm.cached_tokens > 0
