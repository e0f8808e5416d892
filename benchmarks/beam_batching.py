"""Where beam search spends its time, batched across problems and one problem at a time.

Same beam search (N, M), same problems, same models; run once over all problems together
(one generate and one score call per depth for all of them) and once per problem (what
search-and-learn does). For each: wall time, time in generate and score calls, the policy's
forward passes and rows per pass, the prompt tokens it ran (prefill) and the tokens it
generated, the PRM's forward passes, and accuracy. The embedded policy and PRM (transformers,
float32; both keep the key/value states of prefixes they ran, so a beam's next depth runs
only the tokens it adds; ``--no-prompt-reuse`` turns the policy's off).

    python benchmarks/beam_batching.py [--problems 32] [--n 8] [--beam-width 4]

Writes benchmarks/results/beam_batching.{json,md} (``beam_batching_no_prompt_reuse.*`` with
``--no-prompt-reuse``).
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
    """Counts a module's forward passes, the rows they ran, and the tokens of passes over
    several positions (prefill: prompts re-encoded) and of one-position passes (decode)."""

    def __init__(self, module: Any) -> None:
        self.calls = self.rows = self.prefill_tokens = self.decode_tokens = 0
        module.register_forward_hook(self._hook, with_kwargs=True)

    def _hook(self, module: Any, args: Any, kwargs: Any, output: Any) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.calls += 1
        self.rows += int(ids.shape[0])
        if ids.shape[1] > 1:
            self.prefill_tokens += int(ids.numel())
        else:
            self.decode_tokens += int(ids.numel())

    def snapshot(self) -> dict[str, int]:
        return {
            "forwards": self.calls,
            "rows": self.rows,
            "prefill_tokens": self.prefill_tokens,
            "decode_tokens": self.decode_tokens,
        }


def measure(label: str, run: Any, policy: HFGenerator, strategy: Any, problems: Any) -> dict:
    """One mode with a fresh PRM and an empty policy prompt tree (no prefix cache may carry
    over between modes)."""
    if policy.prefix_tree is not None:
        policy.prefix_tree.clear()
    prm = build_scorer(model="checkpoints/arith-prm", backend="hf")
    prm_model: Any = getattr(prm, "model")  # noqa: B009  (HFScorer.model; Scorer has none)
    counters = {"policy": ForwardCounter(policy.model), "prm": ForwardCounter(prm_model)}
    gen, scorer = TimedGenerator(policy), TimedScorer(prm)
    start, cpu = time.perf_counter(), time.process_time()
    results = run(strategy, problems, gen, scorer)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    policy_counts, prm_counts = counters["policy"].snapshot(), counters["prm"].snapshot()
    row: dict[str, Any] = {
        "mode": label,
        "wall_s": wall,
        "cpu_s": cpu,
        "generate_s": gen.seconds,
        "score_s": scorer.seconds,
        "policy": policy_counts,
        "prm": prm_counts,
        "accuracy": accuracy(problems, results),
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
    parser.add_argument("--no-prompt-reuse", action="store_true")
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
        prefix_cache_tokens=0 if args.no_prompt_reuse else 65536,
    )
    beam = build_strategy(
        StrategyConfig(name=StrategyName.beam, n=args.n, beam_width=args.beam_width),
        Aggregation.min,
    )
    rows = [
        measure(
            "batched",
            lambda strategy, batch, gen, scorer: strategy.run(batch, gen, scorer),
            policy,
            beam,
            problems,
        ),
        measure(
            "one problem at a time",
            lambda strategy, batch, gen, scorer: [strategy.run([p], gen, scorer)[0] for p in batch],
            policy,
            beam,
            problems,
        ),
    ]
    speedup = rows[1]["wall_s"] / rows[0]["wall_s"]
    cpu_speedup = rows[1]["cpu_s"] / rows[0]["cpu_s"]
    lines = [
        f"Beam search N={args.n}, M={args.beam_width}, {args.problems} arithmetic test problems, "
        f"embedded policy (kv_cache={args.kv_cache}, prompt prefix reuse "
        f"{'off' if args.no_prompt_reuse else 'on'}) and PRM (prefix reuse), float32.",
        "",
        "| mode | wall s | CPU s | generate s | score s | other s | policy forwards | rows/forward "
        "| prefill tokens | decode tokens | PRM forwards | PRM tokens | accuracy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r['mode']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['generate_s']:.1f} | "
            f"{r['score_s']:.1f} | {r['other_s']:.1f} | {r['policy']['forwards']} | "
            f"{r['policy']['rows'] / max(r['policy']['forwards'], 1):.0f} | "
            f"{r['policy']['prefill_tokens']} | {r['policy']['decode_tokens']} | "
            f"{r['prm']['forwards']} | "
            f"{r['prm']['prefill_tokens'] + r['prm']['decode_tokens']} | {r['accuracy']:.3f} |"
            for r in rows
        ),
        "",
        f"Batched across problems: {speedup:.1f}x faster than one problem at a time by wall "
        f"time, {cpu_speedup:.1f}x by this process's CPU time.",
    ]
    name = "beam_batching_no_prompt_reuse" if args.no_prompt_reuse else "beam_batching"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(
        json.dumps(
            {"args": vars(args), "rows": rows, "speedup": speedup, "cpu_speedup": cpu_speedup},
            indent=2,
        )
    )
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
