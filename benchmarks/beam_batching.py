"""Where beam search spends its time, batched across problems and one problem at a time.

Same beam search (N, M), same problems, same models; run once over all problems together
(one generate and one score call per depth for all of them) and once per problem (what
search-and-learn does). For each: wall time, time in generate and score calls, the policy's
forward passes and rows per pass, the PRM's forward passes, and accuracy. The embedded
policy and PRM (transformers, float32, PRM prefix reuse on).

    python benchmarks/beam_batching.py [--problems 32] [--n 8] [--beam-width 4]

Writes benchmarks/results/beam_batching.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from throughput import TimedGenerator, TimedScorer, accuracy

from prm.scoring import build_scorer
from search.aggregation import Aggregation
from search.envs.arith.world import make_split
from search.generators.hf import HFGenerator
from search.strategies import build_strategy
from search.strategies.config import StrategyConfig, StrategyName

RESULTS = Path(__file__).resolve().parent / "results"


class ForwardCounter:
    """Counts a module's forward passes and the rows and tokens they ran."""

    def __init__(self, module: Any) -> None:
        self.calls = self.rows = self.tokens = 0
        module.register_forward_hook(self._hook, with_kwargs=True)

    def _hook(self, module: Any, args: Any, kwargs: Any, output: Any) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.calls += 1
        self.rows += int(ids.shape[0])
        self.tokens += int(ids.numel())

    def snapshot(self) -> tuple[int, int, int]:
        return self.calls, self.rows, self.tokens


def measure(label: str, run: Any, gen: TimedGenerator, scorer: TimedScorer, counters: Any) -> dict:
    policy, prm = counters
    before = (policy.snapshot(), prm.snapshot(), gen.seconds, scorer.seconds)
    start = time.perf_counter()
    results = run()
    wall = time.perf_counter() - start
    (p_calls, p_rows, p_tokens), (s_calls, _, s_tokens) = policy.snapshot(), prm.snapshot()
    p_calls -= before[0][0]
    p_rows -= before[0][1]
    p_tokens -= before[0][2]
    s_calls -= before[1][0]
    s_tokens -= before[1][2]
    row = {
        "mode": label,
        "wall_s": wall,
        "generate_s": gen.seconds - before[2],
        "score_s": scorer.seconds - before[3],
        "policy_forwards": p_calls,
        "policy_rows_per_forward": p_rows / max(p_calls, 1),
        "policy_tokens_run": p_tokens,
        "prm_forwards": s_calls,
        "prm_tokens_run": s_tokens,
        "results": results,
    }
    row["other_s"] = wall - row["generate_s"] - row["score_s"]
    return row


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table in
    benchmarks/results/, not a run directory; it composes no config groups."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=32)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--beam-width", type=int, default=4)
    parser.add_argument("--kv-cache", default="buffer", choices=("buffer", "dynamic"))
    args = parser.parse_args()
    problems = make_split("test", size=args.problems)
    policy = HFGenerator(
        "checkpoints/arith-policy",
        max_step_tokens=32,
        max_tokens=160,
        batch_size=1024,
        dtype="float32",
        use_chat_template=False,
        kv_cache=args.kv_cache,
    )
    prm = build_scorer(model="checkpoints/arith-prm", backend="hf")
    counters = (ForwardCounter(policy.model), ForwardCounter(prm.model))  # type: ignore[attr-defined]
    gen, scorer = TimedGenerator(policy), TimedScorer(prm)
    beam = build_strategy(
        StrategyConfig(name=StrategyName.beam, n=args.n, beam_width=args.beam_width),
        Aggregation.min,
    )
    rows = [
        measure("batched", lambda: beam.run(problems, gen, scorer), gen, scorer, counters),
        measure(
            "one problem at a time",
            lambda: [beam.run([p], gen, scorer)[0] for p in problems],
            gen,
            scorer,
            counters,
        ),
    ]
    for row in rows:
        row["accuracy"] = accuracy(problems, row.pop("results"))
    speedup = rows[1]["wall_s"] / rows[0]["wall_s"]
    lines = [
        f"Beam search N={args.n}, M={args.beam_width}, {args.problems} arithmetic test problems, "
        f"embedded policy (kv_cache={args.kv_cache}) and PRM (prefix reuse), float32.",
        "",
        "| mode | wall s | generate s | score s | other s | policy forwards | rows/forward "
        "| PRM forwards | accuracy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r['mode']} | {r['wall_s']:.1f} | {r['generate_s']:.1f} | {r['score_s']:.1f} | "
            f"{r['other_s']:.1f} | {r['policy_forwards']} | {r['policy_rows_per_forward']:.0f} | "
            f"{r['prm_forwards']} | {r['accuracy']:.3f} |"
            for r in rows
        ),
        "",
        f"Batched across problems: {speedup:.1f}x faster than one problem at a time.",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "beam_batching.json").write_text(
        json.dumps({"args": vars(args), "rows": rows, "speedup": speedup}, indent=2)
    )
    (RESULTS / "beam_batching.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
