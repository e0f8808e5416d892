"""What a client that leaves costs the search server: the same requests to ``python -m
search.serve`` (beam search, or ``--strategy best_of_n``, on the embedded policy and PRM,
transformers) in three runs:

1. ``stayers alone``: only the requests that will stay, sent at once;
2. ``all stay``: every request sent at once, every client waits for its answer;
3. ``half leave``: every request sent at once, and the leaving half hang up after
   ``--leave-after`` seconds (an HTTP read timeout), while their batch runs.

A client that leaves is dropped from its running batch: its questions leave every later
generate and score call (``search.serve.service``), and the transformers generator stops
their rows within a running call too (``Sampling.abandoned``: best-of-N's samples are one
call). So in run 3 the staying clients should be
answered sooner than in run 2, and the backends should do less work (prefixes generated and
scored, policy tokens generated), towards run 1. Each request carries a ``seed``, so a
staying client's answer is a function of its question and seed: the script checks that the
stayers get the same answers in all three runs.

    python benchmarks/serve_leave.py [--requests 32] [--n 8] [--leave-after 1.0]
    python benchmarks/serve_leave.py --strategy best_of_n

Writes benchmarks/results/serve_leave.{json,md} (serve_leave_best_of_n.* for best-of-N).
About a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from hydra.utils import instantiate
from omegaconf import OmegaConf

from search.aggregation import Aggregation
from search.envs.arith.world import make_split
from search.protocols import Generator, Scorer
from search.resolve import CONF_DIR, REPO_ROOT
from search.serve.app import build_app
from search.serve.background import serve_in_background
from search.serve.service import SearchService
from search.strategies.config import StrategyConfig
from search.types import DEFAULT_SAMPLING, Generation, Prefix, Sampling, Until

RESULTS = REPO_ROOT / "benchmarks" / "results"
NAMES = {"beam": "beam search", "best_of_n": "best-of-N"}  # as the table's caption says them
STRATEGIES = tuple(NAMES)


class CountingGenerator:
    """Forwards to the policy and counts the prefixes it continued and the tokens it wrote."""

    def __init__(self, inner: Generator) -> None:
        self.inner = inner
        self.prefixes = 0
        self.tokens = 0

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        out = self.inner.generate(prefixes, n, until, sampling)
        self.prefixes += len(prefixes)
        self.tokens += sum(c.num_tokens for g in out for c in g.continuations)
        return out


class CountingScorer:
    """Forwards to the PRM and counts the prefixes it scored."""

    def __init__(self, inner: Scorer) -> None:
        self.inner = inner
        self.prefixes = 0

    def score(self, prefixes: Sequence[Prefix]) -> list[list[float]]:
        self.prefixes += len(prefixes)
        return self.inner.score(prefixes)


@dataclass
class Backends:
    generator: CountingGenerator
    scorer: CountingScorer

    def work(self) -> tuple[int, int, int]:
        return self.generator.prefixes, self.generator.tokens, self.scorer.prefixes


def load_service(n: int, seed: int, strategy: str = "beam") -> tuple[SearchService, Backends]:
    """Beam search (or best-of-N) on the server's default models (conf/policy/arith_tiny.yaml,
    conf/scorer/arith_prm.yaml), behind counters. Their prefix caches are off, so that a
    run does not reuse what the run before it computed for the same questions (the runs are
    compared)."""
    policy = OmegaConf.load(CONF_DIR / "policy" / "arith_tiny.yaml")
    scorer = OmegaConf.load(CONF_DIR / "scorer" / "arith_prm.yaml")
    policy.hf.prefix_cache_tokens = 0
    scorer.hf.reuse_prefix_cache = False
    backends = Backends(
        CountingGenerator(instantiate(policy, seed=seed)), CountingScorer(instantiate(scorer))
    )
    service = SearchService(
        backends.generator,  # type: ignore[arg-type]
        backends.scorer,
        StrategyConfig(name=strategy, n=n, beam_width=min(4, n)),  # type: ignore[arg-type]
        Aggregation.min,
        seed=seed,
    )
    return service, backends


async def _ask(
    client: httpx.AsyncClient, question: str, seed: int, leave_after: float | None
) -> tuple[str | None, float]:
    """The answer's text (``None`` for a client that left) and the seconds it took."""
    body = {
        "model": "prm-search",
        "messages": [{"role": "user", "content": question}],
        "seed": seed,
    }
    start = time.perf_counter()
    try:
        reply = await client.post("/v1/chat/completions", json=body, timeout=leave_after or 600)
    except httpx.ReadTimeout:
        return None, time.perf_counter() - start
    reply.raise_for_status()
    text = str(reply.json()["choices"][0]["message"]["content"])
    return text, time.perf_counter() - start


async def _together(
    url: str, asks: list[tuple[str, int, float | None]]
) -> list[tuple[str | None, float]]:
    async with httpx.AsyncClient(base_url=url) as client:
        return list(await asyncio.gather(*(_ask(client, q, s, t) for q, s, t in asks)))


def run_case(
    app: Any,
    url: str,
    backends: Backends,
    questions: list[str],
    staying: set[int],
    leave_after: float | None,
    send_leavers: bool,
) -> dict[str, Any]:
    """Send the requests at once (the leavers only if ``send_leavers``; they hang up after
    ``leave_after`` s); wait until the server has finished every batch; report."""
    batcher = app.state.batcher
    calls_before = batcher.strategy_calls
    stopped_before, dropped_before = batcher.stopped_batches, batcher.dropped_requests
    work_before = backends.work()
    asks = [
        (question, index, None if index in staying else leave_after)
        for index, question in enumerate(questions)
        if index in staying or send_leavers
    ]
    replies = asyncio.run(_together(url, asks))
    stayers_s = max(
        seconds for (_, seed, _), (_, seconds) in zip(asks, replies, strict=True) if seed in staying
    )
    # one batch (sent at once): it has ended when its last staying client is answered
    work = [after - before for after, before in zip(backends.work(), work_before, strict=True)]
    return {
        "requests": len(asks),
        "stayers_answered_s": stayers_s,
        "strategy_calls": batcher.strategy_calls - calls_before,
        "stopped_batches": batcher.stopped_batches - stopped_before,
        "dropped_requests": batcher.dropped_requests - dropped_before,
        "generated_prefixes": work[0],
        "generated_tokens": work[1],
        "scored_prefixes": work[2],
        "answers": {str(seed): text for (_, seed, _), (text, _) in zip(asks, replies, strict=True)},
    }


def measure(
    app: Any, url: str, backends: Backends, questions: list[str], leave_after: float
) -> dict[str, Any]:
    """The three runs of the module docstring; the even-numbered requests stay."""
    staying = set(range(0, len(questions), 2))
    run_case(app, url, backends, questions[:2], {0, 1}, None, False)  # warm-up: lazy set-up
    cases = {
        "stayers alone": run_case(app, url, backends, questions, staying, None, False),
        "all stay": run_case(app, url, backends, questions, set(range(len(questions))), None, True),
        "half leave": run_case(app, url, backends, questions, staying, leave_after, True),
    }
    answers = [
        {seed: text for seed, text in case["answers"].items() if int(seed) in staying}
        for case in cases.values()
    ]
    return {"cases": cases, "stayers_same_answers": all(a == answers[0] for a in answers)}


def markdown(result: dict[str, Any]) -> str:
    cases = result["cases"]
    lines = [
        f"{result['requests']} chat requests with a seed each to `python -m search.serve` on "
        f"loopback ({NAMES[result.get('strategy', 'beam')]}, N={result['n']}; embedded policy "
        "and PRM, transformers, "
        "prefix caches off so that no run reuses another's work), sent "
        f"at once; the odd-numbered half hang up after {result['leave_after']:.1f} s in `half "
        "leave`. Backend work: what the policy and the PRM were asked for, from the first "
        "request until the last staying client was answered.",
        "",
        "| run | requests | stayers answered after s | strategy calls | clients dropped | "
        "batches stopped | prefixes generated | tokens generated | prefixes scored |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, case in cases.items():
        lines.append(
            f"| {name} | {case['requests']} | {case['stayers_answered_s']:.1f} | "
            f"{case['strategy_calls']} | {case['dropped_requests']} | {case['stopped_batches']} | "
            f"{case['generated_prefixes']} | {case['generated_tokens']} | "
            f"{case['scored_prefixes']} |"
        )
    same = "the same" if result["stayers_same_answers"] else "**not** the same"
    lines += ["", f"The staying clients got {same} answers in all three runs."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--leave-after", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strategy", choices=STRATEGIES, default="beam")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args()

    questions = [p.question for p in make_split("test", size=args.requests)]
    service, backends = load_service(args.n, args.seed, args.strategy)
    app = build_app(
        service, max_batch_problems=args.requests, max_wait_s=0.2, disconnect_poll_s=0.1
    )
    with serve_in_background(app) as url:
        result = measure(app, url, backends, questions, args.leave_after)
    result |= {
        "requests": args.requests,
        "n": args.n,
        "leave_after": args.leave_after,
        "strategy": args.strategy,
    }
    stem = "serve_leave" if args.strategy == "beam" else f"serve_leave_{args.strategy}"
    args.results_dir.mkdir(parents=True, exist_ok=True)
    (args.results_dir / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (args.results_dir / f"{stem}.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
