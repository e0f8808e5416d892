"""benchmarks/gpu_throughput.py: the real shapes are the paper's models, the tokenizer has the
real vocabulary size, and the whole script runs end to end on CPU at tiny shapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_throughput  # noqa: E402

QUESTIONS = ["What is $1 + 1$?", "Find $x$ if $2x = 10$.", "Compute $\\frac{3}{4} + 1$."]


def test_real_shapes_have_the_paper_models_parameter_counts() -> None:
    policy, prm = gpu_throughput.SHAPES["real"]
    # Qwen2.5-Math-1.5B-Instruct: 1.54B; Qwen2.5-Math-PRM-7B: 7.07B less the LM head it
    # replaces with a 2-label head (7.6B with an LM head)
    assert 1.50e9 < gpu_throughput.num_parameters(policy, prm=False) < 1.60e9
    assert 6.9e9 < gpu_throughput.num_parameters(prm, prm=True) < 7.2e9


def test_tokenizer_has_the_vocabulary_size_and_round_trips_text() -> None:
    tokenizer = gpu_throughput.build_tokenizer(3000, QUESTIONS * 20)
    assert len(tokenizer) == 3000
    for question in QUESTIONS:
        ids = tokenizer.encode(question, add_special_tokens=False)
        assert tokenizer.decode(ids) == question
        assert len(ids) < len(question)  # merges learnt from the corpus apply
    assert tokenizer.convert_tokens_to_ids("<extra_0>") < 3000
    messages = [{"role": "user", "content": "hi"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.slow
@pytest.mark.vllm
def test_the_script_runs_end_to_end_at_tiny_shapes(tmp_path: Path) -> None:
    pytest.importorskip("vllm")
    rows = [
        {
            "problem": f"Problem {index}: {question}",
            "answer": str(index),
            "unique_id": f"test/{index}.json",
            "solution": "First step.\n\nSecond step.\n\nSo the answer is $\\boxed{1}$.",
        }
        for index, question in enumerate(QUESTIONS * 2)
    ]
    (tmp_path / "math500_test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "gpu_throughput.py"),
        "--shape=tiny",
        "--problems=4",
        "--single-problems=1",
        "--n=4",
        "--beam-width=2",
        "--max-tokens=32",
        "--max-step-tokens=8",
        "--max-steps=2",
        f"--data={tmp_path}",
        f"--out={tmp_path / 'out'}",
        f"--work-dir={tmp_path / 'models'}",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "gpu_throughput.json").read_text())
    assert report["best_of_n"]["engine_tokens"] == 4 * 4 * 32  # no eos: every sample runs out
    assert report["best_of_n"]["raw_tokens"] == report["best_of_n"]["engine_tokens"]
    assert report["beam"]["batched_s"] > 0 and report["beam"]["speedup_per_problem"] > 0
    pool = report["prm_pooling"]
    assert pool["new_tokens"] < pool["tokens"]
    assert pool["reuse_tokens_per_s"] > 0 and pool["no_reuse_tokens_per_s"] > 0
    assert "engine / raw" in (tmp_path / "out" / "gpu_throughput.md").read_text()
