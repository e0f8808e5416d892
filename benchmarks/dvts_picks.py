"""Why DVTS@16 is only level with best-of-N on this world: how far apart its candidates are,
and what forcing them apart, or together, does.

DVTS@16 (4 subtrees of 4 children, min aggregation, weighted pruning: the shipped config) on
one arithmetic split, with three ways for a subtree to pick the node it goes on from at each
depth (``search.strategies.dvts.Dvts.choose``):

- ``own``: each subtree keeps its own best child, independently (the engine's DVTS);
- ``distinct``: subtrees standing at one prefix pool their children and take the best
  distinct steps in turn (the k-th subtree the k-th best different step; the best again when
  the pool holds fewer different steps than subtrees), to keep the subtrees apart;
- ``shared``: subtrees at one prefix pool their children and all go on from the best one (a
  greedy step-level best-of-16 per prefix).

Best-of-16 (weighted vote) runs beside them for the spread of independent samples. Columns,
per problem: accuracy ± standard error over (problem, seed) pairs, pass@16 (a right finished
answer among the 16 candidates), distinct candidate texts, distinct first steps and distinct
answers among the candidates (means), and policy tokens. The differences against ``own`` are
paired over the same problems and seeds.

    python benchmarks/dvts_picks.py --split validation --problems 200 --seeds 0 1

Writes benchmarks/results/<name>.{json,md} (default name ``dvts_picks_<split>``).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from typing import Any

from accuracy_vs_compute import (
    add_split_arguments,
    build_policy,
    build_scorer,
    check_split_arguments,
    merge_seeds,
    paired_difference,
    run_graded,
    standard_error,
    write_report,
)

from search.aggregation import Aggregation
from search.envs.arith.world import make_split
from search.protocols import Generator, Scorer
from search.selection import Select
from search.strategies import build_strategy
from search.strategies.config import StrategyConfig, StrategyName
from search.strategies.dvts import Dvts
from search.strategies.tree import Node, prune_keys, same_prefix_groups
from search.types import Problem, SearchResult

PICKS = ("own", "distinct", "shared")


class PooledDvts(Dvts):
    """DVTS whose subtrees at one prefix pick from their pooled children: ``distinct`` (the
    best different steps in turn) or ``shared`` (all the best one)."""

    def __init__(self, *args: Any, distinct: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.distinct = distinct

    def choose(
        self, parents: Sequence[tuple[int, Node]], children: Sequence[list[Node]]
    ) -> list[Node]:
        """Per group of subtrees at one prefix: rank the pooled children and pick, then swap
        each pick into a list of a subtree that picked it (``deal``), as the engine asks."""
        chosen: list[Node | None] = [None] * len(parents)
        for group in same_prefix_groups(parents):
            pool = [kid for position in group for kid in children[position]]
            keys = prune_keys(pool, self.config.prune)
            ranked = [pool[i] for i in sorted(range(len(pool)), key=lambda i: (-keys[i], i))]
            different: list[Node] = []
            for node in ranked:
                if all(node.steps != taken.steps for taken in different):
                    different.append(node)
            picks = [
                different[turn if self.distinct and turn < len(different) else 0]
                for turn in range(len(group))
            ]
            deal(group, picks, children)
            for position, node in zip(group, picks, strict=True):
                chosen[position] = node
        assert all(node is not None for node in chosen)
        return [node for node in chosen if node is not None]


def deal(group: Sequence[int], picks: Sequence[Node], children: Sequence[list[Node]]) -> None:
    """Swap each pick that none of the subtrees picking it holds into the first such
    subtree's list (``children[position]`` of ``group``), in exchange for a child of that
    list that nobody picked: every child of the group stays in exactly one list, each list
    keeps its length and otherwise its own draws, and ``search.strategies.dvts.check_held``
    holds. A pick several subtrees share needs to be in one of their lists only: they go on,
    or stop, together."""
    picked = {id(node) for node in picks}
    for node in dict.fromkeys(picks):  # each picked node once, in pick order
        choosers = [position for position, pick in zip(group, picks, strict=True) if pick is node]
        if any(any(node is kid for kid in children[position]) for position in choosers):
            continue
        owner = next(p for p in group if any(node is kid for kid in children[p]))
        target = children[choosers[0]]
        spare = next(i for i, kid in enumerate(target) if id(kid) not in picked)
        at = next(i for i, kid in enumerate(children[owner]) if kid is node)
        target[spare], children[owner][at] = node, target[spare]


def dvts(pick: str, seed: int) -> Dvts:
    config = StrategyConfig(name=StrategyName.dvts, n=16, beam_width=4)
    if pick == "own":
        strategy = build_strategy(config, Aggregation.min, seed=seed)
        assert type(strategy) is Dvts
        return strategy
    return PooledDvts(config, Aggregation.min, distinct=pick == "distinct")


def spread(results: Sequence[SearchResult]) -> dict[str, float]:
    """Means per problem of the distinct candidate texts, first steps and answers."""

    def mean_distinct(key: Any) -> float:
        return statistics.mean(len({key(c) for c in r.candidates}) for r in results)

    return {
        "distinct_candidates": mean_distinct(lambda c: c.steps),
        "distinct_first_steps": mean_distinct(lambda c: c.steps[:1]),
        "distinct_answers": mean_distinct(lambda c: c.answer),
    }


def run_row(
    name: str,
    strategy: Any,
    problems: Sequence[Problem],
    generator: Generator,
    scorer: Scorer,
    seed: int,
) -> dict[str, Any]:
    graded, wall_s = run_graded(strategy, problems, generator, scorer)
    results = [result for result, _ in graded]
    return {
        "row": name,
        "seed": seed,
        "correct": [int(marks["selected"]) for _, marks in graded],
        "passed": [int(any(c.correct for c in result.candidates)) for result, _ in graded],
        "policy_tokens": statistics.mean(r.usage.policy_tokens for r in results),
        **spread(results),
        "wall_s": wall_s,
    }


def markdown(rows: Sequence[dict[str, Any]], split: str, problems: int) -> str:
    own = next(row for row in rows if row["row"] == "dvts/own")
    seeds = len(own["seeds"])
    lines = [
        f"Arithmetic `{split}` split, {problems} problems × {seeds} seeds; the shipped policy "
        "and PRM; min aggregation. Accuracy ± standard error over the (problem, seed) pairs; "
        "the spread columns are means per problem over the 16 candidates; differences "
        "against dvts/own paired over the same problems and seeds.",
        "",
        "| row | accuracy ± SE | − dvts/own | pass@16 | distinct candidates | distinct "
        "first steps | distinct answers | policy tokens / problem |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        accuracy = statistics.mean(row["correct"])
        error = standard_error(row["correct"])
        if row is own:
            versus = "-"
        else:
            difference, difference_error = paired_difference(row["correct"], own["correct"])
            versus = f"{difference:+.3f} ± {difference_error:.3f}"
        lines.append(
            f"| {row['row']} | {accuracy:.3f} ± {error:.3f} | {versus} | "
            f"{statistics.mean(row['passed']):.3f} | {row['distinct_candidates']:.2f} | "
            f"{row['distinct_first_steps']:.2f} | {row['distinct_answers']:.2f} | "
            f"{row['policy_tokens']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_split_arguments(parser)
    args = parser.parse_args()
    check_split_arguments(parser, args)
    problems = make_split(args.split, size=args.problems)
    scorer = build_scorer(args.prm)
    runs: dict[str, list[dict[str, Any]]] = {}
    for seed in args.seeds:
        generator = build_policy(args.policy, seed)
        best_of_n = build_strategy(
            StrategyConfig(name=StrategyName.best_of_n, n=16, select=Select.weighted),
            Aggregation.min,
            seed=seed,
        )
        named: list[tuple[str, Any]] = [(f"dvts/{pick}", dvts(pick, seed)) for pick in PICKS]
        for name, strategy in [*named, ("best_of_n/weighted", best_of_n)]:
            row = run_row(name, strategy, problems, generator, scorer, seed)
            print(f"seed {seed} {name}: accuracy {statistics.mean(row['correct']):.3f}")
            runs.setdefault(name, []).append(row)
    spread_keys = ("distinct_candidates", "distinct_first_steps", "distinct_answers")
    means = ("policy_tokens", *spread_keys, "wall_s")
    rows = [merge_seeds(mine, ("correct", "passed"), means) for mine in runs.values()]
    text = markdown(rows, args.split, args.problems)
    name = args.name or f"dvts_picks_{args.split}"
    write_report(args.results_dir, name, {"split": args.split, "rows": rows}, text)


if __name__ == "__main__":
    main()
