"""How much a better PRM would buy on this world, and where the shipped PRM's step picks fail.

The same searches run twice on one split: with the shipped PRM, and with the world's
ground-truth step checker in the PRM's place (``search.envs.arith.fakes.FakeScorer``: a step
scores 1 while the solution is right so far, ``--checker-wrong`` from its first error on; a
perfect verifier, the ceiling any trained PRM could reach). Rows: best-of-N read off one
run at N=32 (its first n candidates: the PRM-weighted vote, the PRM argmax and the majority
vote at 16; the weighted vote at 24 and 32, the budgets around DVTS@16's policy tokens) and
DVTS@16 (the shipped config: 4 subtrees of 4, min aggregation, weighted pruning). Columns,
per (problem, seed): accuracy ± standard error, the checker row minus the shipped-PRM row
paired over the same problems and seeds, pass@N (a right finished answer among the
candidates), right-process pass@N (a finished candidate whose every step the checker
accepts) and policy tokens.

Best-of-N draws the same candidates under both scorers (same seed, same calls), so its
rows differ only by the pick. DVTS's picks steer what it samples next, so its paths differ.

The second table opens DVTS's step picks with the shipped PRM: at each depth, each subtree's
4 children of a prefix that is right so far. A set is ``mixed`` when some children are right
and some wrong; the PRM picks right when the child its subtree goes on from is right. Sets
are split by the true running value the step starts from (one digit, 10-19, 20 and up; the
answer step apart), which is where this policy and PRM make their arithmetic errors.

    python benchmarks/prm_headroom.py --split validation --problems 200 --seeds 0 1

Writes benchmarks/results/<name>.{json,md} (default name ``prm_headroom_<split>``).
Validation only by default: it chooses nothing, and says what a PRM recipe must improve.
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from accuracy_vs_compute import (
    add_split_arguments,
    best_of_n_right,
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
from search.envs.arith.checker import check_solution, parse_question
from search.envs.arith.fakes import FakeScorer
from search.envs.arith.world import apply, make_split
from search.protocols import Generator, Scorer
from search.selection import Select
from search.strategies import build_strategy
from search.strategies.config import StrategyConfig, StrategyName
from search.strategies.dvts import Dvts
from search.strategies.tree import Node
from search.types import Candidate, Problem, SearchResult

SCORERS = ("shipped PRM", "checker")
# best-of-N rows, read off one run at the largest N: the three rules at 16, and the weighted
# vote at the budgets around DVTS@16's policy tokens (accuracy_vs_compute's half-octave grid)
BEST_OF_N = (
    (16, Select.weighted),
    (16, Select.prm),
    (16, Select.majority),
    (24, Select.weighted),
    (32, Select.weighted),
)
BUCKETS = ("0-9", "10-19", "20+", "answer step")


def right_so_far(problem: Problem, steps: Sequence[str]) -> bool:
    """Whether the checker finds no wrong step among ``steps`` (a prefix or a solution)."""
    first_error = check_solution(problem, list(steps)).first_error
    return first_error == -1 or first_error >= len(steps)


def right_process(problem: Problem, candidate: Candidate) -> bool:
    """A finished candidate whose every step the checker accepts."""
    return candidate.finished and check_solution(problem, list(candidate.steps)).first_error == -1


def bucket(problem: Problem, depth: int) -> str:
    """Where the step at ``depth`` (0-based) starts: the true running value's range, or the
    answer step after the chain."""
    start, chain = parse_question(problem.question)
    if depth >= len(chain):
        return "answer step"
    value = start
    for op, operand in chain[:depth]:
        value = apply(op, value, operand)
    if abs(value) < 10:
        return "0-9"
    return "10-19" if abs(value) < 20 else "20+"


class RecordingDvts(Dvts):
    """The engine's DVTS, recording each subtree's children and the child it goes on from."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.picks: list[tuple[Problem, Node, list[Node], Node]] = []
        self._problems: Sequence[Problem] = ()

    def search(self, problems: Sequence[Problem], calls: Any) -> Any:
        self._problems = problems
        return super().search(problems, calls)

    def choose(
        self, parents: Sequence[tuple[int, Node]], children: Sequence[list[Node]]
    ) -> list[Node]:
        chosen = super().choose(parents, children)
        for (index, parent), kids, node in zip(parents, children, chosen, strict=True):
            self.picks.append((self._problems[index], parent, list(kids), node))
        return chosen


def step_picks(picks: Sequence[tuple[Problem, Node, list[Node], Node]]) -> dict[str, Counter[str]]:
    """Per bucket: sets whose prefix is right so far, split into all-right, none-right and
    mixed children; of the mixed sets, those whose picked child is right (DVTS's pick: the
    weighted vote of identical children, so several copies of one step count together) and
    those where the PRM alone scores a right new step above every wrong one."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in BUCKETS}
    for problem, parent, kids, chosen in picks:
        if not right_so_far(problem, parent.steps):
            continue
        right = [right_so_far(problem, kid.steps) for kid in kids]
        where = counts[bucket(problem, len(parent.steps))]
        where["sets"] += 1
        if all(right):
            where["all right"] += 1
        elif not any(right):
            where["none right"] += 1
        else:
            where["mixed"] += 1
            where["mixed, picked right"] += int(right_so_far(problem, chosen.steps))
            # the PRM alone: its score of the new step ranks a right child above every wrong one
            last = [kid.step_scores[-1] if kid.step_scores else 0.0 for kid in kids]
            best_right = max(score for score, ok in zip(last, right, strict=True) if ok)
            best_wrong = max(score for score, ok in zip(last, right, strict=True) if not ok)
            where["mixed, right step scored highest"] += int(best_right > best_wrong)
    return counts


def best_of_n_rows(
    problems: Sequence[Problem], generator: Generator, scorer: Scorer, seed: int
) -> list[dict[str, Any]]:
    """Best-of-N read off one run at the largest N of ``BEST_OF_N`` (its first n candidates,
    as ``accuracy_vs_compute`` reads it), each (n, rule) of ``BEST_OF_N`` a row."""
    largest = max(n for n, _ in BEST_OF_N)
    strategy = build_strategy(
        StrategyConfig(name=StrategyName.best_of_n, n=largest, select=Select.weighted),
        Aggregation.min,
        seed=seed,
    )
    graded, _ = run_graded(strategy, problems, generator, scorer)
    results = [result for result, _ in graded]
    rows = []
    for n, rule in BEST_OF_N:
        first = [replace(r, candidates=r.candidates[:n]) for r in results]
        # as accuracy_vs_compute charges best-of-n: the prompt, and the n candidates' tokens
        tokens = statistics.mean(
            r.usage.prompt_tokens + sum(c.num_tokens for c in r.candidates) for r in first
        )
        rows.append(
            {
                "row": f"best_of_{n}/{rule.value}",
                "seed": seed,
                "correct": [int(best_of_n_right(r, n, rule, Aggregation.min)) for r in results],
                **summary_columns(first, tokens),
            }
        )
    return rows


def dvts_row(
    problems: Sequence[Problem], generator: Generator, scorer: Scorer, seed: int
) -> tuple[dict[str, Any], dict[str, Counter[str]]]:
    config = StrategyConfig(name=StrategyName.dvts, n=16, beam_width=4)
    strategy = RecordingDvts(config, Aggregation.min)
    graded, _ = run_graded(strategy, problems, generator, scorer)
    results = [result for result, _ in graded]
    row = {
        "row": "dvts@16",
        "seed": seed,
        "correct": [int(marks["selected"]) for _, marks in graded],
        **summary_columns(results, statistics.mean(r.usage.policy_tokens for r in results)),
    }
    return row, step_picks(strategy.picks)


def summary_columns(results: Sequence[SearchResult], policy_tokens: float) -> dict[str, Any]:
    """pass@N and right-process pass@N of graded results, and the policy tokens per problem
    the caller counted."""
    return {
        "passed": [int(any(c.correct for c in r.candidates)) for r in results],
        "process_passed": [
            int(any(right_process(r.problem, c) for c in r.candidates)) for r in results
        ],
        "policy_tokens": policy_tokens,
    }


def add_counts(counts: Sequence[dict[str, Counter[str]]]) -> dict[str, dict[str, int]]:
    total: dict[str, Counter[str]] = {name: Counter() for name in BUCKETS}
    for one in counts:
        for name, counter in one.items():
            total[name].update(counter)
    return {name: dict(counter) for name, counter in total.items()}


def share(part: int, whole: int) -> str:
    return f"{part / whole:.3f}" if whole else "-"


def markdown(
    rows: Sequence[dict[str, Any]],
    picks: dict[str, dict[str, int]],
    split: str,
    problems: int,
    checker_wrong: float,
) -> str:
    seeds = len(rows[0]["seeds"])
    lines = [
        f"Arithmetic `{split}` split, {problems} problems × {seeds} seeds; the shipped policy; "
        f"scorer: the shipped PRM, or the ground-truth step checker (1 for a step while the "
        f"solution is right so far, {checker_wrong:g} from its first error on). Min "
        "aggregation. Accuracy ± standard error over the (problem, seed) pairs; checker − PRM "
        "paired over the same problems and seeds.",
        "",
        "| row | scorer | accuracy ± SE | checker − PRM | pass@N | right-process pass@N | "
        "policy tokens / problem |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    by_key = {(row["row"], row["scorer"]): row for row in rows}
    for row in rows:
        accuracy = statistics.mean(row["correct"])
        versus = "-"
        if row["scorer"] == "checker":
            shipped = by_key[(row["row"], "shipped PRM")]
            difference, error = paired_difference(row["correct"], shipped["correct"])
            versus = f"{difference:+.3f} ± {error:.3f}"
        lines.append(
            f"| {row['row']} | {row['scorer']} | {accuracy:.3f} ± "
            f"{standard_error(row['correct']):.3f} | {versus} | "
            f"{statistics.mean(row['passed']):.3f} | "
            f"{statistics.mean(row['process_passed']):.3f} | {row['policy_tokens']:.0f} |"
        )
    dvts_rows = [row for row in rows if row["row"] == "dvts@16"]
    if dvts_rows:
        lines += ["", "DVTS@16 against best-of-N (weighted) at its budget, paired per scorer:", ""]
    for dvts in dvts_rows:
        against: list[str] = []
        for n in (24, 32):
            other = by_key.get((f"best_of_{n}/{Select.weighted.value}", dvts["scorer"]))
            if other is not None:
                difference, error = paired_difference(dvts["correct"], other["correct"])
                against.append(f"{difference:+.3f} ± {error:.3f} against best-of-{n}")
        lines.append(f"- {dvts['scorer']}: " + "; ".join(against))
    lines += [
        "",
        "DVTS@16 with the shipped PRM: each subtree's 4 children of a prefix that is right so "
        "far, by the true value the step starts from (its absolute value). Mixed: some "
        "children right, some wrong. Of the mixed sets: DVTS picked right, the child the "
        "subtree goes on from is right (the weighted vote of identical children); PRM ranks "
        "right, the PRM's score of the new step is higher for a right child than for every "
        "wrong one (the PRM alone).",
        "",
        "| step starts from | sets | all right | none right | mixed | mixed: DVTS picked right "
        "| mixed: PRM ranks right |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in BUCKETS:
        count = picks[name]
        sets = count.get("sets", 0)
        mixed = count.get("mixed", 0)
        ranked = count.get("mixed, right step scored highest", 0)
        lines.append(
            f"| {name} | {sets} | {share(count.get('all right', 0), sets)} | "
            f"{share(count.get('none right', 0), sets)} | {mixed} ({share(mixed, sets)}) | "
            f"{share(count.get('mixed, picked right', 0), mixed)} | {share(ranked, mixed)} |"
        )
    return "\n".join(lines)


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_split_arguments(parser)
    parser.add_argument(
        "--checker-wrong",
        type=float,
        default=0.01,
        help="the checker's score for a wrong step (above 0, so that best-of-N's weighted "
        "vote falls back to the majority when no candidate is right throughout)",
    )
    args = parser.parse_args()
    check_split_arguments(parser, args)
    if not 0.0 < args.checker_wrong < 1.0:
        parser.error(f"expected 0 < --checker-wrong < 1, got {args.checker_wrong}")
    problems = make_split(args.split, size=args.problems)
    scorers: dict[str, Scorer] = {
        "shipped PRM": build_scorer(args.prm),
        "checker": FakeScorer(right_score=1.0, wrong_score=args.checker_wrong),
    }
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    picks: list[dict[str, Counter[str]]] = []
    for seed in args.seeds:
        for scorer_name in SCORERS:
            scorer = scorers[scorer_name]
            generator = build_policy(args.policy, seed)
            rows = best_of_n_rows(problems, generator, scorer, seed)
            generator = build_policy(args.policy, seed)
            row, counts = dvts_row(problems, generator, scorer, seed)
            if scorer_name == "shipped PRM":
                picks.append(counts)
            for one in [*rows, row]:
                one["scorer"] = scorer_name
                runs.setdefault((one["row"], scorer_name), []).append(one)
                print(
                    f"seed {seed} {one['row']} ({scorer_name}): accuracy "
                    f"{statistics.mean(one['correct']):.3f}",
                    flush=True,
                )
    order = [*(f"best_of_{n}/{rule.value}" for n, rule in BEST_OF_N), "dvts@16"]
    lists, names = ("correct", "passed", "process_passed"), ("row", "scorer")
    rows = [
        merge_seeds(runs[(name, scorer)], lists, ("policy_tokens",), names)
        for name in order
        for scorer in SCORERS
    ]
    totals = add_counts(picks)
    text = markdown(rows, totals, args.split, args.problems, args.checker_wrong)
    name = args.name or f"prm_headroom_{args.split}"
    report = {"split": args.split, "args": vars(args), "rows": rows, "step_picks": totals}
    write_report(args.results_dir, name, report, text)


if __name__ == "__main__":
    main()
