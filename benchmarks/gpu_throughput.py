"""Throughput of the engine on a GPU at the paper's model sizes, with random weights.

No weights are downloaded: the script writes the configs of a Qwen2.5-Math-1.5B-shaped policy
(``Qwen2ForCausalLM``) and a Qwen2.5-Math-PRM-7B-shaped token-classification PRM, with a
tokenizer of the real vocabulary size (byte-level BPE trained on MATH-500 text, padded with
synthetic merges), and starts vLLM on them with ``load_format="dummy"`` (random weights:
timings do not depend on the weights; a random policy never writes a step separator or eos,
so every step and solution runs to its token limit, a fixed workload). Prompts are MATH-500
questions (``../shared/data`` or ``PRM_SEARCH_DATA``). Measured:

1. best-of-N: the engine's generate tokens/s against one raw vLLM ``generate`` of the same
   requests on the same engine (target >= 0.9);
2. beam search batched across problems against the same search run one problem at a time,
   as seconds per problem (target >= 5x);
3. PRM pooling tokens/s (tokens encoded per second) on a beam-like workload of MATH-500 gold
   prefixes, with and without prefix reuse (``reuse_prefix_cache``);
4. GPU memory in use on the device (all processes), the highest of the samples taken after
   each phase.

    python benchmarks/gpu_throughput.py                 # real shapes, one GPU, < 8 minutes
    python benchmarks/gpu_throughput.py --shape tiny --out /tmp/gpu   # the CPU smoke test

Writes ``OUT/gpu_throughput.{json,md}`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.data import DatasetConfig, load_problems
from search.types import Prefix, Problem, Until

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(os.environ.get("PRM_SEARCH_DATA", Path(__file__).resolve().parents[2] / "shared/data"))
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<extra_0>")


@dataclass(frozen=True)
class Shape:
    """A Qwen2 decoder's dimensions."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int = 4096
    tie_word_embeddings: bool = False


# Qwen/Qwen2.5-Math-1.5B-Instruct and Qwen/Qwen2.5-Math-PRM-7B (their config.json files).
SHAPES = {
    "real": (
        Shape(151936, 1536, 8960, 28, 12, 2, tie_word_embeddings=True),
        Shape(152064, 3584, 18944, 28, 28, 4),
    ),
    "tiny": (
        Shape(2048, 128, 256, 2, 2, 1, max_position_embeddings=2048, tie_word_embeddings=True),
        Shape(2048, 128, 256, 2, 2, 1, max_position_embeddings=2048),
    ),
}


def build_tokenizer(vocab_size: int, corpus: list[str]) -> Any:
    """A byte-level BPE tokenizer with exactly ``vocab_size`` tokens: merges learnt from
    ``corpus`` first, then synthetic merges (a learnt token + one byte) up to the size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    base_size = vocab_size - len(SPECIAL_TOKENS)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=min(base_size, 30000),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer)
    spec = json.loads(tokenizer.to_str())
    vocab: dict[str, int] = spec["model"]["vocab"]
    merges: list[Any] = spec["model"]["merges"]
    as_strings = bool(merges) and isinstance(merges[0], str)
    learnt = sorted(vocab, key=vocab.__getitem__)
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    rng = random.Random(0)
    while len(vocab) < base_size:
        left, right = rng.choice(learnt), rng.choice(alphabet)
        if left + right not in vocab and " " not in left + right:
            vocab[left + right] = len(vocab)
            merges.append(f"{left} {right}" if as_strings else [left, right])
    tokenizer = Tokenizer.from_str(json.dumps(spec))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS),
    )
    fast.chat_template = CHAT_TEMPLATE
    if len(fast) != vocab_size:
        raise RuntimeError(f"expected a tokenizer of {vocab_size} tokens, got {len(fast)}")
    return fast


def write_model(directory: Path, shape: Shape, tokenizer: Any, prm: bool) -> Path:
    """``config.json`` (no weights: vLLM loads with ``load_format="dummy"``) and tokenizer."""
    from transformers import Qwen2Config

    config = Qwen2Config(
        vocab_size=shape.vocab_size,
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        max_position_embeddings=shape.max_position_embeddings,
        tie_word_embeddings=shape.tie_word_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        bos_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="bfloat16",
    )
    if prm:
        config.num_labels = 2
        config.architectures = ["Qwen2ForTokenClassification"]
    else:
        config.architectures = ["Qwen2ForCausalLM"]
    directory.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def num_parameters(shape: Shape, prm: bool) -> int:
    """Parameters of the architecture, counted on the meta device (no memory)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2ForTokenClassification

    config = Qwen2Config(**vars(shape))
    config.num_labels = 2
    with torch.device("meta"):
        model = (Qwen2ForTokenClassification if prm else Qwen2ForCausalLM)(config)
    return sum(p.numel() for p in model.parameters())


class GpuMemory:
    """Device memory in use (all processes: vLLM's engines run in their own)."""

    def __init__(self) -> None:
        import torch

        self.cuda = torch.cuda.is_available()
        self.peak_gib: float | None = None

    def sample(self) -> None:
        if not self.cuda:
            return
        import torch

        free, total = torch.cuda.mem_get_info()
        used = (total - free) / 2**30
        self.peak_gib = max(self.peak_gib or 0.0, used)


def best_of_n(generator: Any, problems: list[Problem], n: int) -> dict[str, Any]:
    """The engine's generate against one raw ``LLM.generate`` of the same requests."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    prefixes = [Prefix(problem) for problem in problems]
    start = time.perf_counter()
    out = generator.generate(prefixes, n, Until.end)
    engine_s = time.perf_counter() - start
    engine_tokens = sum(c.num_tokens for g in out for c in g.continuations)
    prompts = [TokensPrompt(prompt_token_ids=generator.renderer.encode(p)) for p in prefixes]
    params = SamplingParams(
        n=n,
        temperature=generator.settings.temperature,
        top_p=generator.settings.top_p,
        max_tokens=generator.settings.max_tokens,
        seed=1,
    )
    start = time.perf_counter()
    raw = generator.llm.generate(prompts, params, use_tqdm=False)
    raw_s = time.perf_counter() - start
    raw_tokens = sum(len(c.token_ids) for request in raw for c in request.outputs)
    return {
        "engine_tokens_per_s": engine_tokens / engine_s,
        "raw_tokens_per_s": raw_tokens / raw_s,
        "engine_over_raw": (engine_tokens / engine_s) / (raw_tokens / raw_s),
        "engine_tokens": engine_tokens,
        "raw_tokens": raw_tokens,
    }


def beam(
    generator: Any, scorer: Any, problems: list[Problem], single: int, args: Any
) -> dict[str, Any]:
    """Seconds per problem: batched across ``problems`` vs one at a time on ``single``."""
    from search.aggregation import Aggregation
    from search.strategies import build_strategy
    from search.strategies.config import StrategyConfig, StrategyName

    config = StrategyConfig(
        name=StrategyName.beam, n=args.n, beam_width=args.beam_width, max_steps=args.max_steps
    )
    strategy = build_strategy(config, Aggregation.prod)
    start = time.perf_counter()
    strategy.run(problems, generator, scorer)
    batched_s = time.perf_counter() - start
    start = time.perf_counter()
    for problem in problems[:single]:
        strategy.run([problem], generator, scorer)
    single_s = time.perf_counter() - start
    return {
        "batched_problems": len(problems),
        "batched_s": batched_s,
        "single_problems": single,
        "single_s": single_s,
        "speedup_per_problem": (single_s / single) / (batched_s / len(problems)),
    }


def prm_pooling(scorer: Any, problems: list[Problem], beam_width: int) -> dict[str, Any]:
    """Tokens encoded per second on a beam-like workload, with and without prefix reuse."""
    from prm_prefix_reuse import beam_workload

    from prm.scoring import VLLMScorer

    calls = beam_workload(problems, beam_width, seed=0)
    row: dict[str, Any] = {"prefixes": sum(len(c) for c in calls), "score_calls": len(calls)}
    for reuse in (False, True):
        scorer.llm.reset_prefix_cache()
        fresh = VLLMScorer(
            scorer.llm,
            scorer.encoder.tokenizer,
            scorer.format,
            max_length=scorer.encoder.max_length,
            reuse_prefix_cache=reuse,
        )
        start = time.perf_counter()
        for prefixes in calls:
            fresh.score(prefixes)
        wall = time.perf_counter() - start
        key = "reuse" if reuse else "no_reuse"
        row[f"{key}_s"] = wall
        row[f"{key}_tokens_per_s"] = fresh.usage.tokens / wall
        row["tokens"] = fresh.usage.tokens
        row["new_tokens"] = fresh.usage.new_tokens
    return row


def render(report: dict[str, Any]) -> str:
    bon, beam_row, pool = report["best_of_n"], report["beam"], report["prm_pooling"]
    memory = report["peak_gpu_memory_gib"]
    lines = [
        f"{report['date']}, {report['device']}; policy {report['policy_parameters'] / 1e9:.2f}B "
        f"parameters, PRM {report['prm_parameters'] / 1e9:.2f}B (random weights, "
        f"{report['dtype']}); {report['problems']} MATH-500 questions, N={report['n']}; "
        f"engine start-up: policy {report['policy_start_s']:.0f} s, PRM "
        f"{report['prm_start_s']:.0f} s.",
        "",
        "| measurement | value | target |",
        "|---|---:|---:|",
        f"| best-of-{report['n']} engine tokens/s | {bon['engine_tokens_per_s']:.0f} | |",
        f"| best-of-{report['n']} raw vLLM generate tokens/s | {bon['raw_tokens_per_s']:.0f} | |",
        f"| engine / raw | {bon['engine_over_raw']:.2f} | >= 0.9 |",
        f"| beam, batched ({beam_row['batched_problems']} problems) s/problem | "
        f"{beam_row['batched_s'] / beam_row['batched_problems']:.2f} | |",
        f"| beam, one problem at a time ({beam_row['single_problems']}) s/problem | "
        f"{beam_row['single_s'] / beam_row['single_problems']:.2f} | |",
        f"| beam speed-up, batched | {beam_row['speedup_per_problem']:.1f}x | >= 5x |",
        f"| PRM pooling tokens/s, no prefix reuse | {pool['no_reuse_tokens_per_s']:.0f} | |",
        f"| PRM pooling tokens/s, prefix reuse | {pool['reuse_tokens_per_s']:.0f} | |",
        f"| peak GPU memory in use, GiB | {'-' if memory is None else f'{memory:.1f}'} | |",
    ]
    return "\n".join(lines)


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table in
    benchmarks/results/, not a run directory; it composes no config groups."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="real")
    parser.add_argument("--problems", type=int, default=64)
    parser.add_argument("--single-problems", type=int, default=4)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--beam-width", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--max-step-tokens", type=int, default=128)
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--policy-memory", type=float, default=0.35)
    parser.add_argument("--prm-memory", type=float, default=0.35)
    parser.add_argument("--data", type=Path, default=DATA, help="holds math500_test.jsonl")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--work-dir", type=Path, default=Path("runs/gpu_throughput"))
    args = parser.parse_args()
    import torch

    cuda = torch.cuda.is_available()
    dtype = "bfloat16" if cuda else "float32"
    path = str(args.data / "math500_test.jsonl")
    everything = load_problems(DatasetConfig(name="math500", path=path)).problems
    questions = list(everything[: args.problems])
    if len(questions) < args.problems:
        raise SystemExit(f"expected {args.problems} MATH-500 questions, got {len(questions)}")
    policy_shape, prm_shape = SHAPES[args.shape]
    corpus = [f"{p.question}\n{chr(10).join(p.gold_steps)}" for p in everything]
    tokenizer = build_tokenizer(policy_shape.vocab_size, corpus)
    policy_dir = write_model(args.work_dir / "policy", policy_shape, tokenizer, prm=False)
    prm_dir = write_model(args.work_dir / "prm", prm_shape, tokenizer, prm=True)
    memory = GpuMemory()

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from prm.scoring import PRMFamily, PRMFormat, VLLMScorer
    from search.generators.vllm import VLLMGenerator
    from search.prompting import DEFAULT_SYSTEM_PROMPT

    start = time.perf_counter()
    generator = VLLMGenerator(
        str(policy_dir),
        temperature=0.8,
        max_step_tokens=args.max_step_tokens,
        max_tokens=args.max_tokens,
        dtype=dtype,
        gpu_memory_utilization=args.policy_memory,
        max_model_len=min(4096, policy_shape.max_position_embeddings),
        use_chat_template=True,
        load_format="dummy",
    )
    policy_start_s = time.perf_counter() - start
    memory.sample()
    start = time.perf_counter()
    fmt = PRMFormat(
        family=PRMFamily.token_classification,
        step_tag="<extra_0>",
        use_chat_template=True,
        system_prompt=DEFAULT_SYSTEM_PROMPT,
        step_template="{step}{tag}",
        positive_label=1,
    )
    scorer = VLLMScorer.load(
        str(prm_dir),
        fmt,
        dtype=dtype,
        max_length=prm_shape.max_position_embeddings,
        on_overflow="truncate_question",
        gpu_memory_utilization=args.prm_memory,
        load_format="dummy",
    )
    prm_start_s = time.perf_counter() - start
    warmup = Prefix(questions[0], ("Warm-up step.",))
    generator.generate([warmup], 1, Until.step)  # first calls compile and allocate; untimed
    scorer.score([warmup])
    memory.sample()
    try:
        bon = best_of_n(generator, questions, args.n)
        memory.sample()
        beam_row = beam(generator, scorer, questions, args.single_problems, args)
        memory.sample()
        gold = [
            Problem(p.id, p.question, p.answer, p.gold_steps[: args.max_steps])
            for p in questions
            if len(p.gold_steps) >= 2
        ]
        pool = prm_pooling(scorer, gold, args.beam_width)
        memory.sample()
    finally:
        generator.close()
        scorer.close()
    device = torch.cuda.get_device_name() if cuda else "CPU (smoke test, not a measurement)"
    report = {
        "date": datetime.date.today().isoformat(),
        "device": device,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "dtype": dtype,
        "policy_parameters": num_parameters(policy_shape, prm=False),
        "prm_parameters": num_parameters(prm_shape, prm=True),
        "problems": len(questions),
        "n": args.n,
        "policy_start_s": policy_start_s,
        "prm_start_s": prm_start_s,
        "best_of_n": bon,
        "beam": beam_row,
        "prm_pooling": pool,
        "peak_gpu_memory_gib": memory.peak_gib,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_throughput.json").write_text(json.dumps(report, indent=2))
    text = render(report)
    (args.out / "gpu_throughput.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
