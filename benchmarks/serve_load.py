"""Load test of the search server (``python -m search.serve``) on loopback: the same requests
sent one by one, then all at once, against the embedded policy and PRM (transformers).

Requests that arrive together are batched into one strategy call, so the concurrent pass
finishes sooner than the sequential one; how much sooner depends on how much of a
one-problem call is fixed cost (per-token-step overhead of the backend) rather than compute
that grows with the batch. Each request asks for its N in the extra body field ``n``.
Reports errors, wall times, the throughput ratio and how the server batched the concurrent
requests, for every N given.

    python benchmarks/serve_load.py [--requests 64] [--n 4 8] [--strategy best_of_n]

Writes benchmarks/results/serve_load.{json,md}. About 3 minutes on 2 busy CPU cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import openai
from hydra.utils import instantiate
from omegaconf import OmegaConf

from search.aggregation import Aggregation
from search.envs.arith.world import make_split
from search.serve.app import build_app
from search.serve.background import serve_in_background
from search.serve.service import SearchService
from search.strategies.config import StrategyConfig, StrategyName

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def load_service(n: int, strategy: str, seed: int) -> SearchService:
    """The server's default models (conf/policy/arith_tiny.yaml, conf/scorer/arith_prm.yaml)."""
    policy = OmegaConf.load(ROOT / "conf" / "policy" / "arith_tiny.yaml")
    scorer = OmegaConf.load(ROOT / "conf" / "scorer" / "arith_prm.yaml")
    return SearchService(
        instantiate(policy, seed=seed),
        instantiate(scorer),
        StrategyConfig(name=strategy, n=n),  # type: ignore[arg-type]
        Aggregation.min,
        seed=seed,
    )


async def ask(client: openai.AsyncOpenAI, question: str, n: int) -> tuple[bool, float]:
    start = time.perf_counter()
    try:
        await client.chat.completions.create(
            model="prm-search",
            messages=[{"role": "user", "content": question}],
            extra_body={"n": n},
        )
        return True, time.perf_counter() - start
    except openai.APIError:
        return False, time.perf_counter() - start


async def sequential(
    url: str, questions: list[str], n: int
) -> tuple[float, list[tuple[bool, float]]]:
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=600)
    start = time.perf_counter()
    out = [await ask(client, q, n) for q in questions]
    return time.perf_counter() - start, out


async def concurrent(
    url: str, questions: list[str], n: int
) -> tuple[float, list[tuple[bool, float]]]:
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=600)
    start = time.perf_counter()
    out = await asyncio.gather(*(ask(client, q, n) for q in questions))
    return time.perf_counter() - start, list(out)


def measure(app: Any, url: str, questions: list[str], n: int) -> dict[str, Any]:
    batcher = app.state.batcher
    asyncio.run(concurrent(url, questions[:2], n))  # warm-up: first calls pay lazy set-up
    calls_before = batcher.strategy_calls
    one_by_one_s, one_by_one = asyncio.run(sequential(url, questions, n))
    calls_sequential = batcher.strategy_calls - calls_before
    sizes_before = len(batcher.batch_sizes)
    together_s, together = asyncio.run(concurrent(url, questions, n))
    sizes = batcher.batch_sizes[sizes_before:]
    return {
        "n": n,
        "sequential": {
            "wall_s": one_by_one_s,
            "errors": sum(not ok for ok, _ in one_by_one),
            "requests_per_s": len(questions) / one_by_one_s,
            "strategy_calls": calls_sequential,
        },
        "concurrent": {
            "wall_s": together_s,
            "errors": sum(not ok for ok, _ in together),
            "requests_per_s": len(questions) / together_s,
            "strategy_calls": len(sizes),
            "batch_sizes": sizes,
            "max_latency_s": max(latency for _, latency in together),
        },
        "throughput_ratio": one_by_one_s / together_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--n", type=int, nargs="+", default=[4, 8])
    parser.add_argument(
        "--strategy", default="best_of_n", choices=[name.value for name in StrategyName]
    )
    parser.add_argument("--max-batch-problems", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    for flag, values in (("--requests", [args.requests]), ("--n", args.n),
                         ("--max-batch-problems", [args.max_batch_problems])):  # fmt: skip
        if min(values) < 1:  # before the models load and the server starts
            parser.error(f"expected {flag} >= 1, got {' '.join(map(str, values))}")

    questions = [p.question for p in make_split("test", size=args.requests)]
    service = load_service(args.n[0], args.strategy, args.seed)
    app = build_app(service, max_batch_problems=args.max_batch_problems)
    with serve_in_background(app) as url:
        runs = [measure(app, url, questions, n) for n in args.n]
    result = {
        "requests": args.requests,
        "strategy": args.strategy,
        "max_batch_problems": args.max_batch_problems,
        "runs": runs,
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / "serve_load.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"{args.requests} chat requests to `python -m search.serve` on loopback (embedded "
        f"policy and PRM, transformers, {args.strategy}), sent one by one and then all at "
        "once:",
        "",
        "| N | requests sent | errors | wall s | requests/s | strategy calls | throughput |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        seq, con = run["sequential"], run["concurrent"]
        sizes = ", ".join(str(size) for size in con["batch_sizes"])
        lines += [
            f"| {run['n']} | one by one | {seq['errors']} | {seq['wall_s']:.1f} | "
            f"{seq['requests_per_s']:.2f} | {seq['strategy_calls']} | 1x |",
            f"| {run['n']} | {args.requests} concurrent | {con['errors']} | "
            f"{con['wall_s']:.1f} | {con['requests_per_s']:.2f} | {con['strategy_calls']} "
            f"(problems per call: {sizes}) | **{run['throughput_ratio']:.1f}x** |",
        ]
    lines += [
        "",
        "On CPU cores the tiny policy's batched forward pass becomes compute-bound at a few "
        f"hundred sequences ({args.requests} requests of N={max(args.n)} are "
        f"{args.requests * max(args.n)}), so the gain of batching falls as N grows.",
    ]
    table = "\n".join(lines)
    (args.results_dir / "serve_load.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
