"""Throughput of the engine against the raw backend, measured side by side in one run.

1. Engine overhead: the share of wall time spent outside generate and score calls, per
   strategy.
2. Best-of-N tokens per second against one raw ``model.generate`` call (transformers,
   ``num_return_sequences=N``) producing the same number of completions: the physical limit of
   this machine for that model.
3. Beam search batched across problems against the same beam search run one problem at a
   time (what search-and-learn does), with the accuracy of each.

    python benchmarks/throughput.py [--problems 32] [--n 8]

Writes benchmarks/results/throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from search.aggregation import Aggregation
from search.envs.arith.world import make_split
from search.generators import build_generator
from search.generators.hf import HFGenerator
from search.grading import answers_match
from search.protocols import Generator, Scorer
from search.strategies import build_strategy
from search.strategies.config import StrategyConfig, StrategyName
from search.types import (
    DEFAULT_SAMPLING,
    Generation,
    Prefix,
    Problem,
    Sampling,
    SearchResult,
    Until,
)

RESULTS = Path(__file__).resolve().parent / "results"


class TimedGenerator:
    def __init__(self, inner: Generator) -> None:
        self.inner = inner
        self.seconds = 0.0

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        start = time.perf_counter()
        try:
            return self.inner.generate(prefixes, n, until, sampling)
        finally:
            self.seconds += time.perf_counter() - start


class TimedScorer:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0

    def score(self, prefixes: Sequence[Prefix]) -> list[list[float]]:
        return self.score_with_usage(prefixes).scores

    def score_with_usage(self, prefixes: Sequence[Prefix]) -> Any:
        start = time.perf_counter()
        try:
            return self.inner.score_with_usage(prefixes)
        finally:
            self.seconds += time.perf_counter() - start


def accuracy(problems: Sequence[Problem], results: Sequence[SearchResult]) -> float:
    right = sum(
        answers_match(r.prediction, p.answer) for p, r in zip(problems, results, strict=True)
    )
    return right / len(problems)


def overhead(
    name: StrategyName, problems: list[Problem], generator: Generator, scorer: Scorer, n: int
) -> dict[str, Any]:
    timed_gen = TimedGenerator(generator)
    timed_scorer = TimedScorer(scorer)
    strategy = build_strategy(
        StrategyConfig(name=name, n=n, beam_width=min(4, n), num_simulations=2 * n),
        Aggregation.min,
    )
    start = time.perf_counter()
    results = strategy.run(problems, timed_gen, timed_scorer)  # type: ignore[arg-type]
    wall = time.perf_counter() - start
    model_s = timed_gen.seconds + timed_scorer.seconds
    return {
        "strategy": name.value,
        "wall_s": wall,
        "generate_s": timed_gen.seconds,
        "score_s": timed_scorer.seconds,
        "overhead_share": (wall - model_s) / wall,
        "accuracy": accuracy(problems, results),
    }


def raw_generate(generator: HFGenerator, problems: list[Problem], n: int) -> dict[str, Any]:
    """One ``model.generate`` call on the same prompts, N samples each, same token limit."""
    import torch

    tokenizer = generator.tokenizer
    prompts = [generator.renderer.text(Prefix(p)) for p in problems]
    tokenizer.padding_side = "left"
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    start = time.perf_counter()
    with torch.inference_mode():
        out = generator.model.generate(
            **batch,
            do_sample=True,
            temperature=1.0,
            top_k=0,
            num_return_sequences=n,
            max_new_tokens=generator.settings.max_tokens,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    wall = time.perf_counter() - start
    new = out[:, batch["input_ids"].shape[1] :]
    # tokens up to and including the first eos of each row
    eos = tokenizer.eos_token_id
    tokens = 0
    for row in new.tolist():
        tokens += row.index(eos) + 1 if eos in row else len(row)
    return {"wall_s": wall, "generated_tokens": tokens, "tokens_per_s": tokens / wall}


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table in
    benchmarks/results/, not a run directory; it composes no config groups."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=32)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--policy", default="checkpoints/arith-policy")
    parser.add_argument("--prm", default="checkpoints/arith-prm")
    args = parser.parse_args()
    from prm.scoring import build_scorer

    problems = make_split("test", size=args.problems)
    generator = build_generator(
        args.policy,
        seed=0,
        max_tokens=160,
        max_step_tokens=32,
        dtype="float32",
        use_chat_template=False,
        hf={"batch_size": 1024},
    )
    assert isinstance(generator, HFGenerator)
    scorer = build_scorer(model=args.prm, backend="hf")

    rows = [
        overhead(StrategyName(name), problems, generator, scorer, args.n)
        for name in ("best_of_n", "beam", "dvts", "mcts")
    ]

    # Best-of-N generation against the raw backend, same prompts and N.
    start = time.perf_counter()
    before = generator.usage.generated_tokens
    generator.generate([Prefix(p) for p in problems], args.n, Until.end)
    engine_wall = time.perf_counter() - start
    engine_tokens = generator.usage.generated_tokens - before
    raw = raw_generate(generator, problems, args.n)
    bon = {
        "engine_tokens_per_s": engine_tokens / engine_wall,
        "raw_tokens_per_s": raw["tokens_per_s"],
        "engine_over_raw": (engine_tokens / engine_wall) / raw["tokens_per_s"],
    }

    # Beam: batched across problems versus one problem at a time.
    beam = build_strategy(
        StrategyConfig(name=StrategyName.beam, n=args.n, beam_width=4), Aggregation.min
    )
    start = time.perf_counter()
    batched = beam.run(problems, generator, scorer)
    batched_s = time.perf_counter() - start
    start = time.perf_counter()
    single = [beam.run([p], generator, scorer)[0] for p in problems]
    single_s = time.perf_counter() - start
    beam_row = {
        "batched_s": batched_s,
        "one_at_a_time_s": single_s,
        "speedup": single_s / batched_s,
        "batched_accuracy": accuracy(problems, batched),
        "one_at_a_time_accuracy": accuracy(problems, single),
    }
    report = {"args": vars(args), "overhead": rows, "best_of_n_vs_raw": bon, "beam": beam_row}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "throughput.json").write_text(json.dumps(report, indent=2))
    lines = [
        f"Problems: {args.problems}, N={args.n}, embedded policy and PRM, transformers backend.",
        "",
        "| strategy | wall s | generate s | score s | engine overhead | accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['strategy']} | {row['wall_s']:.1f} | {row['generate_s']:.1f} | "
            f"{row['score_s']:.1f} | {row['overhead_share']:.1%} | {row['accuracy']:.3f} |"
        )
    lines += [
        "",
        f"Best-of-{args.n} generation: engine {bon['engine_tokens_per_s']:.0f} tokens/s, raw "
        f"`model.generate` {bon['raw_tokens_per_s']:.0f} tokens/s "
        f"(engine/raw = {bon['engine_over_raw']:.2f}).",
        "",
        f"Beam search (N={args.n}, M=4): batched across problems {batched_s:.1f} s "
        f"(accuracy {beam_row['batched_accuracy']:.3f}) vs one problem at a time "
        f"{single_s:.1f} s (accuracy {beam_row['one_at_a_time_accuracy']:.3f}): "
        f"{beam_row['speedup']:.1f}x faster batched.",
    ]
    text = "\n".join(lines)
    (RESULTS / "throughput.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
