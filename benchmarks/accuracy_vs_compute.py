"""Accuracy versus compute on the embedded default: every strategy, budgets N, aggregations,
seeds for error bars.

Best-of-N is run once per seed at the largest N and subsampled (its first N candidates) for
smaller N, as search-and-learn does; beam, DVTS, MCTS, particle filtering and adaptive
best-of-N (majority and PRM-weighted vote) run once per N. The x axis is policy tokens per
problem (prompt + generated, as the engine counts them: for adaptive best-of-N, what it
actually spent before its vote settled), the y axis accuracy.

    python benchmarks/accuracy_vs_compute.py                # 32 min on 2 CPU cores (shared)
    python benchmarks/accuracy_vs_compute.py --problems 200 --seeds 0 1 2 --max-n 64
    python benchmarks/accuracy_vs_compute.py --problems 4 --seeds 0 --max-n 4 \
        --search-ns 4 --results-dir /tmp/avc                  # a smoke run

Writes benchmarks/results/accuracy_vs_compute.{json,md,png} (or into ``--results-dir``).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from search.aggregation import Aggregation, aggregate
from search.envs.arith.world import make_split
from search.generators import build_generator
from search.grading import answers_match
from search.protocols import Scorer
from search.selection import Select, pick
from search.strategies import build_strategy
from search.strategies.config import StrategyConfig, StrategyName
from search.types import Candidate, Problem, SearchResult

RESULTS = Path(__file__).resolve().parent / "results"
log = logging.getLogger("accuracy_vs_compute")


def build_scorer(model: str) -> Scorer:
    from prm.scoring import build_scorer as build

    return build(model=model, backend="hf")  # type: ignore[no-any-return]


def rescore(candidates: tuple[Candidate, ...], how: Aggregation) -> tuple[Candidate, ...]:
    return tuple(
        replace(c, score=None if c.step_scores is None else aggregate(c.step_scores, how))
        for c in candidates
    )


def best_of_n_rows(
    problems: list[Problem], results: list[SearchResult], ns: list[int], seed: int
) -> list[dict[str, Any]]:
    rows = []
    for how in (Aggregation.min, Aggregation.prod, Aggregation.last):
        for n in ns:
            for rule in (Select.prm, Select.weighted, Select.majority):
                if rule is Select.majority and how is not Aggregation.min:
                    continue  # majority does not use scores: one row is enough
                right = 0
                tokens = 0
                for problem, result in zip(problems, results, strict=True):
                    candidates = rescore(result.candidates[:n], how)
                    right += answers_match(pick(candidates, rule), problem.answer)
                    prompt = result.usage.prompt_tokens
                    tokens += prompt + sum(c.num_tokens for c in candidates)
                rows.append(
                    {
                        "strategy": f"best_of_n/{rule.value}",
                        "aggregation": how.value if rule is not Select.majority else "-",
                        "n": n,
                        "seed": seed,
                        "accuracy": right / len(problems),
                        "policy_tokens": tokens / len(problems),
                    }
                )
    return rows


def search_rows(
    name: StrategyName,
    problems: list[Problem],
    generator: Any,
    scorer: Scorer | None,
    n: int,
    how: Aggregation,
    seed: int,
    beam_width: int,
    select: Select | None = None,
) -> dict[str, Any]:
    """One run of strategy ``name`` at budget ``n``. With ``select``, the row is named
    ``name/select`` (adaptive best-of-N, whose vote decides when it stops); a majority vote
    runs without the PRM and its row has no aggregation."""
    config = StrategyConfig(
        name=name,
        n=n,
        select=select,
        beam_width=min(beam_width, n),
        num_simulations=max(8, 2 * n),
        children_per_expansion=beam_width,
    )
    start = time.perf_counter()
    results = build_strategy(config, how, seed=seed).run(problems, generator, scorer)
    wall = time.perf_counter() - start
    right = sum(
        answers_match(r.prediction, p.answer) for p, r in zip(problems, results, strict=True)
    )
    prm = [r.usage.prm_tokens or 0 for r in results]
    return {
        "strategy": name.value if select is None else f"{name.value}/{select.value}",
        "aggregation": how.value if scorer is not None else "-",
        "n": n,
        "seed": seed,
        "accuracy": right / len(problems),
        "candidates": sum(len(r.candidates) for r in results) / len(problems),
        "policy_tokens": sum(r.usage.policy_tokens for r in results) / len(problems),
        "prm_tokens": sum(prm) / len(problems),
        "wall_s": wall,
    }


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["strategy"], row["aggregation"], row["n"]), []).append(row)
    table = []
    for (strategy, how, n), members in sorted(groups.items()):
        accuracies = [m["accuracy"] for m in members]
        table.append(
            {
                "strategy": strategy,
                "aggregation": how,
                "n": n,
                "accuracy": statistics.mean(accuracies),
                "accuracy_std": statistics.pstdev(accuracies) if len(members) > 1 else 0.0,
                "policy_tokens": statistics.mean(m["policy_tokens"] for m in members),
                "candidates": statistics.mean(m.get("candidates", n) for m in members),
                "seeds": len(members),
            }
        )
    return table


def markdown(table: list[dict[str, Any]]) -> str:
    lines = [
        "| strategy | aggregation | N | accuracy (mean ± std, seeds) | policy tokens / problem |",
        "|---|---|---|---|---|",
    ]
    for row in table:
        budget = str(row["n"])
        if row["candidates"] < row["n"]:  # adaptive: what it drew before the vote settled
            budget += f" ({row['candidates']:.1f} drawn)"
        lines.append(
            f"| {row['strategy']} | {row['aggregation']} | {budget} | "
            f"{row['accuracy']:.3f} ± {row['accuracy_std']:.3f} | {row['policy_tokens']:.0f} |"
        )
    return "\n".join(lines)


def plot(table: list[dict[str, Any]], path: Path, how: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = sorted({r["strategy"] for r in table})
    for name in names:
        rows = [r for r in table if r["strategy"] == name and r["aggregation"] in (how, "-")]
        if not rows:
            continue
        rows.sort(key=lambda r: r["policy_tokens"])
        ax.errorbar(
            [r["policy_tokens"] for r in rows],
            [r["accuracy"] for r in rows],
            yerr=[r["accuracy_std"] for r in rows],
            marker="o",
            capsize=3,
            label=name,
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("policy tokens per problem (prompt + generated)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Arithmetic test split, aggregation={how}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table in
    benchmarks/results/, not a run directory; it composes no config groups."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--max-n", type=int, default=64)
    parser.add_argument("--search-ns", type=int, nargs="+", default=[4, 16])
    parser.add_argument(
        "--strategies",
        nargs="+",
        default=["beam", "dvts", "mcts", "particle_filtering", "adaptive_best_of_n"],
    )
    parser.add_argument("--aggregations", nargs="+", default=["min"])
    parser.add_argument("--beam-width", type=int, default=4)
    parser.add_argument("--policy", default="checkpoints/arith-policy")
    parser.add_argument("--prm", default="checkpoints/arith-prm")
    parser.add_argument("--split", default="test")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    problems = make_split(args.split, size=args.problems)
    scorer = build_scorer(args.prm)
    ns = [n for n in (1, 2, 4, 8, 16, 32, 64, 128, 256) if n <= args.max_n]
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    for seed in args.seeds:
        generator = build_generator(
            args.policy,
            seed=seed,
            max_tokens=160,
            max_step_tokens=32,
            dtype="float32",
            use_chat_template=False,
            hf={"batch_size": 1024},
        )
        bon = build_strategy(
            StrategyConfig(name=StrategyName.best_of_n, n=args.max_n), Aggregation.min
        )
        results = bon.run(problems, generator, scorer)
        rows += best_of_n_rows(problems, results, ns, seed)
        log.info("seed %d best_of_n done", seed)
        for name in map(StrategyName, args.strategies):
            runs: list[tuple[Aggregation, Select | None, Scorer | None]] = [
                (Aggregation(how), None, scorer) for how in args.aggregations
            ]
            if name is StrategyName.adaptive_best_of_n:
                runs = [(Aggregation.min, Select.majority, None)] + [
                    (how, Select.weighted, scorer) for how, _, _ in runs
                ]
            for how, select, run_scorer in runs:
                for n in args.search_ns:
                    row = search_rows(
                        name,
                        problems,
                        generator,
                        run_scorer,
                        n,
                        how,
                        seed,
                        args.beam_width,
                        select,
                    )
                    log.info(json.dumps(row))
                    rows.append(row)
    table = summarise(rows)
    results_dir: Path = args.results_dir
    results_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "args": {**vars(args), "results_dir": str(results_dir)},
        "rows": rows,
        "table": table,
        "wall_s": time.perf_counter() - start,
    }
    (results_dir / "accuracy_vs_compute.json").write_text(json.dumps(report, indent=2))
    text = markdown(table)
    (results_dir / "accuracy_vs_compute.md").write_text(text + "\n")
    plot(table, results_dir / "accuracy_vs_compute.png", "min")
    print(text)


if __name__ == "__main__":
    main()
