"""Decode throughput of the transformers generator with its KV caches.

``kv_cache=dynamic`` is transformers' ``DynamicCache`` (every step concatenates every layer's
keys and values, and finished rows are dropped at once); ``kv_cache=buffer`` appends in place
into a preallocated buffer (``search/generators/kv_buffer.py``), either with the prompt's keys
and values copied to every row sampled from it or read once for all of them
(``shared_prompt_attention``, ``search/generators/shared_prompt.py``). Same prompts, same model:
best-of-N solutions to the end (``Until.end``) for ``--problems`` arithmetic test problems,
the embedded policy, float32, one chunk of ``problems x n`` rows. Greedy outputs of the three
variants (two rows per prompt, so that rows share it) must be identical (checked); sampled
tokens/s is the best of ``--repeats`` runs, the variants interleaved.

    python benchmarks/generator_kv_cache.py [--problems 64] [--n 8]

Writes benchmarks/results/generator_kv_cache.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from search.envs.arith.world import make_split
from search.generators.hf import HFGenerator
from search.types import Prefix, Until

RESULTS = Path(__file__).resolve().parent / "results"
DYNAMIC, COPIED, SHARED = "dynamic", "buffer, prompt copied to every row", "buffer, shared prompt"
VARIANTS: dict[str, dict[str, Any]] = {
    DYNAMIC: {"kv_cache": "dynamic"},
    COPIED: {"kv_cache": "buffer", "shared_prompt_attention": False},
    # at any --problems: the generator's default shares only chunks of 64 rows or more
    SHARED: {"kv_cache": "buffer", "shared_prompt_attention": True, "shared_prompt_min_rows": 1},
}


def embedded_generator(policy: str, rows: int, **options: Any) -> HFGenerator:
    """The transformers generator with the embedded world's limits (a step of at most 32
    tokens, 160 in all), float32, plain prompts, all ``rows`` rows in one chunk; ``options``
    are ``HFGenerator``'s others (the decoding benchmarks' variants)."""
    return HFGenerator(
        policy,
        max_step_tokens=32,
        max_tokens=160,
        batch_size=rows,
        dtype="float32",
        use_chat_template=False,
        **options,
    )


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table in
    benchmarks/results/, not a run directory; it composes no config groups."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=64)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--policy", default="checkpoints/arith-policy")
    args = parser.parse_args()
    prefixes = [Prefix(p) for p in make_split("test", size=args.problems)]
    rows = args.problems * args.n

    def generator(variant: str, temperature: float) -> HFGenerator:
        return embedded_generator(args.policy, rows, temperature=temperature, **VARIANTS[variant])

    greedy = {
        variant: [
            [c.text for c in g.continuations]
            # two rows per prompt: the rows of a prompt share it (one row would not)
            for g in generator(variant, 0.0).generate(prefixes, 2, Until.end)
        ]
        for variant in VARIANTS
    }
    if any(texts != greedy[DYNAMIC] for texts in greedy.values()):
        raise SystemExit(
            f"expected identical greedy outputs with every KV cache, got different ones: "
            f"{[v for v, texts in greedy.items() if texts != greedy[DYNAMIC]]}"
        )
    report: dict[str, dict[str, float]] = {
        variant: {"wall_s": float("inf"), "cpu_s": float("inf")} for variant in VARIANTS
    }
    for _ in range(args.repeats):  # interleaved, so every variant sees the same machine load
        for variant in VARIANTS:
            gen = generator(variant, 1.0)
            start, cpu = time.perf_counter(), time.process_time()
            gen.generate(prefixes, args.n, Until.end)
            row = report[variant]
            row["wall_s"] = min(row["wall_s"], time.perf_counter() - start)
            row["cpu_s"] = min(row["cpu_s"], time.process_time() - cpu)
            row["generated_tokens"] = gen.usage.generated_tokens
    for variant, row in report.items():
        row["tokens_per_s"] = row["generated_tokens"] / row["wall_s"]
        row["tokens_per_cpu_s"] = row["generated_tokens"] / row["cpu_s"]
        print(f"{variant}: {row}")

    def ratio(a: str, b: str) -> tuple[float, float]:
        """``a``'s tokens per CPU second and per second over ``b``'s."""
        return (
            report[a]["tokens_per_cpu_s"] / report[b]["tokens_per_cpu_s"],
            report[a]["tokens_per_s"] / report[b]["tokens_per_s"],
        )

    speedup, wall_speedup = ratio(COPIED, DYNAMIC)
    shared, wall_shared = ratio(SHARED, COPIED)
    lines = [
        f"Best-of-{args.n} to the end for {args.problems} arithmetic problems ({rows} rows in one "
        f"chunk), embedded policy, float32, best of {args.repeats}; greedy outputs identical "
        "with every variant (checked). CPU s: this process's CPU time over all its threads, "
        "which other jobs on the machine disturb less than wall time.",
        "",
        "| KV cache | generated tokens | wall s | CPU s | tokens/s | tokens per CPU s |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {variant} | {row['generated_tokens']:.0f} | {row['wall_s']:.2f} | "
            f"{row['cpu_s']:.2f} | {row['tokens_per_s']:.0f} | {row['tokens_per_cpu_s']:.0f} |"
            for variant, row in report.items()
        ),
        "",
        f"In-place KV buffer: {speedup:.2f}x the tokens per CPU second of transformers' "
        f"DynamicCache ({wall_speedup:.2f}x by wall time). Shared-prompt attention on top: "
        f"{shared:.2f}x the tokens per CPU second of the buffer with the prompt copied to "
        f"every row ({wall_shared:.2f}x by wall time).",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "generator_kv_cache.json").write_text(
        json.dumps(
            {
                "args": vars(args),
                "report": report,
                "speedup_cpu": speedup,
                "speedup_wall": wall_speedup,
                "shared_prompt_speedup_cpu": shared,
                "shared_prompt_speedup_wall": wall_shared,
            },
            indent=2,
        )
    )
    (RESULTS / "generator_kv_cache.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
