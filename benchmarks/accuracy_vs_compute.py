"""Accuracy versus compute on the embedded default: every strategy, budgets N, aggregations,
seeds, one or more arithmetic splits.

Best-of-N is run once per seed at the largest N (``--max-n``) and subsampled (its first N
candidates) for smaller N, as search-and-learn does, at powers of two and the half-octaves
between them (3, 6, 12, 24, 48); beam, DVTS, MCTS, particle filtering and
adaptive best-of-N (majority and PRM-weighted vote) run once per N (``--search-ns``), and
with ``--lookahead K`` beam runs again with ``strategy.lookahead=K`` (greedy rollouts). Budget
N: N candidates for beam and DVTS (beam width min(4, N)), N particles, at most N samples for
adaptive best-of-N, and 2N simulations of 4 children for MCTS (plus up to
``extra_simulations`` until a path finishes). With ``--prune weighted prm`` beam and DVTS run
once per pruning rule (``strategy.prune``), to choose it on the validation split.

Compute is counted per problem, as the engine counts it: policy tokens (prompt + generated;
for adaptive best-of-N what it drew before its vote settled) and PRM tokens (what the PRM
encoded). A subsampled best-of-N is charged the PRM tokens of its first N candidates, read per
candidate from the scorer's ``score_with_usage`` (``prm_tokens_from: per-candidate`` in the
JSON rows), or, for a scorer that reports no per-prefix counts, N/max-N of the run's PRM
tokens (``proportional``); a majority vote reads no scores and is charged none. ``pass@N`` is
the share of problems with a right (finished) answer among those N candidates: the ceiling
of any rule that picks one of them.

Error bars are standard errors over problems and seeds: the sample standard deviation of the
per-(problem, seed) correctness divided by the square root of their count. Differences in the
summary are paired (same problems, same seeds).

    python benchmarks/accuracy_vs_compute.py --splits test --problems 200 --seeds 0 1 \
        --max-n 64 --strategies beam dvts mcts --lookahead 1 --lookahead-ns 16
    python benchmarks/accuracy_vs_compute.py --splits longest --problems 100 --seeds 0 1 \
        --max-n 64 --strategies beam dvts
    python benchmarks/accuracy_vs_compute.py --splits validation --problems 200 --seeds 0 1 \
        --max-n 32 --search-ns 16 --strategies beam dvts --prune weighted prm   # choose pruning
    python benchmarks/accuracy_vs_compute.py --problems 4 --seeds 0 --max-n 4 \
        --search-ns 2 4 --summary-n 4 --lookahead 1 --results-dir /tmp/avc    # a smoke run

Cost, from a run on 20 test problems (one seed, ``OMP_NUM_THREADS=1``): best-of-64 about 2.2
CPU-s per problem; at N=16 beam about 0.7, DVTS 0.55, MCTS 1.4, particle filtering 0.85,
adaptive best-of-N 0.6 (both votes), beam with lookahead 1 about 1.2 CPU-s per problem; each
budget costs about half of the next one up. So the first command above takes about 55
CPU-minutes (both seeds), the second about 30; wall time is that divided by the share of a
core the run gets. Each report states its own ``wall_s``.

Writes ``accuracy_vs_compute_<split>.{json,md,png}`` per split into benchmarks/results/ (or
``--results-dir``), rewritten after every seed so a long run can be read while it goes.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from search.aggregation import Aggregation, aggregate
from search.envs.arith.world import Split, make_split
from search.generators import build_generator
from search.grading import answers_match
from search.guards import call_scorer
from search.protocols import Generator, Scorer, Strategy
from search.resolve import weights_digest
from search.run import grade
from search.selection import Select, pick
from search.strategies import build_strategy
from search.strategies.config import StrategyConfig, StrategyName
from search.types import Candidate, Prefix, Problem, ScoreOutput, SearchResult

RESULTS = Path(__file__).resolve().parent / "results"
# splits a search benchmark may read (train is what the models learned from)
HELD_OUT_SPLITS = [split.value for split in Split if split is not Split.train]
SHIPPED_PRM = "checkpoints/arith-prm"
SHIPPED_POLICY = "checkpoints/arith-policy"
GRADE_TIMEOUT_S = 5.0
log = logging.getLogger("accuracy_vs_compute")

PASS = "pass@N"  # the ceiling row: a right answer among the candidates
READS_NO_SCORE = ("best_of_n/majority", "adaptive_best_of_n/majority", PASS)  # rows no PRM moves
TREE_STRATEGIES = ["beam", "dvts", "mcts", "particle_filtering", "adaptive_best_of_n"]


def build_policy(model: str, seed: int) -> Generator:
    """The policy as the benchmarks sample it: the embedded world's token limits, float32,
    transformers with batches of 1,024 rows."""
    return build_generator(
        model,
        seed=seed,
        max_tokens=160,
        max_step_tokens=32,
        dtype="float32",
        use_chat_template=False,
        hf={"batch_size": 1024},
    )


def build_scorer(model: str) -> Scorer:
    from prm.scoring import build_scorer as build

    return build(model=model, backend="hf")  # type: ignore[no-any-return]


# -- what each best-of-N candidate cost the PRM -------------------------------------------------
class RecordingScorer:
    """A scorer that remembers the PRM tokens of every prefix it scored, keyed by (problem id,
    steps), so a best-of-N subsample can be charged for its own candidates. Delegates to
    ``inner`` through ``search.guards.call_scorer``: a scorer without ``score_with_usage``
    reports no counts and nothing is recorded."""

    def __init__(self, inner: Scorer) -> None:
        self.inner = inner
        self.tokens: dict[tuple[str, tuple[str, ...]], int] = {}

    def score(self, prefixes: Sequence[Prefix]) -> list[list[float]]:
        return self.score_with_usage(prefixes).scores

    def score_with_usage(self, prefixes: Sequence[Prefix]) -> ScoreOutput:
        out = call_scorer(self.inner, prefixes)
        if out.tokens is not None:
            for prefix, count in zip(prefixes, out.tokens, strict=True):
                self.tokens[(prefix.problem.id, prefix.steps)] = count
        return out


def prm_tokens_of_first(
    result: SearchResult, n: int, recorded: dict[tuple[str, tuple[str, ...]], int]
) -> tuple[float | None, str]:
    """PRM tokens of ``result``'s first ``n`` candidates and how they were found:
    ``per-candidate`` (every candidate's count recorded), ``proportional`` (n / all of the
    run's PRM tokens) or ``unknown`` (the scorer reported none)."""
    counts = [recorded.get((result.problem.id, c.steps)) for c in result.candidates[:n]]
    if all(count is not None for count in counts):
        return float(sum(count or 0 for count in counts)), "per-candidate"
    if result.usage.prm_tokens is None:
        return None, "unknown"
    return result.usage.prm_tokens * n / len(result.candidates), "proportional"


# -- runs --------------------------------------------------------------------------------------
def rescore(candidates: tuple[Candidate, ...], how: Aggregation) -> tuple[Candidate, ...]:
    return tuple(
        replace(c, score=None if c.step_scores is None else aggregate(c.step_scores, how))
        for c in candidates
    )


def mean_or_none(values: Sequence[float | None]) -> float | None:
    if any(value is None for value in values):
        return None
    return sum(value or 0.0 for value in values) / len(values)


@functools.lru_cache(maxsize=1 << 16)
def is_right(prediction: str | None, gold: str) -> bool:
    """``answers_match``, remembered: best-of-N asks about the same answers at every N."""
    return answers_match(prediction, gold, timeout_s=GRADE_TIMEOUT_S)


def best_of_n_right(result: SearchResult, n: int, rule: Select | None, how: Aggregation) -> bool:
    """Whether the first ``n`` candidates of ``result``, rescored with ``how``, give a right
    answer picked by ``rule``; ``rule=None``: whether any of them is right (pass@n). Graded
    as ``search.run.grade`` does: an unfinished candidate is never right (``pick`` picks
    among finished ones only)."""
    candidates = result.candidates[:n]
    gold = result.problem.answer
    if rule is None:
        return any(c.finished and is_right(c.answer, gold) for c in candidates)
    return is_right(pick(rescore(candidates, how), rule), gold)


def best_of_n_rows(
    results: Sequence[SearchResult],
    ns: Sequence[int],
    seed: int,
    aggregations: Sequence[Aggregation],
    recorded: dict[tuple[str, tuple[str, ...]], int],
) -> list[dict[str, Any]]:
    """Rows of best-of-N at every ``n`` in ``ns`` from one run at the largest N (one result
    per problem): the first n candidates, picked by ``prm``, ``weighted`` (per aggregation)
    and ``majority``, and the pass@n ceiling. Majority is charged no PRM tokens (it reads no
    scores); pass@n is charged what the PRM picks it bounds spent, so it sits above them."""
    picks: list[tuple[str, str, Select | None, Aggregation]] = [
        (PASS, "-", None, Aggregation.min),
        (f"best_of_n/{Select.majority.value}", "-", Select.majority, Aggregation.min),
    ]
    for how in aggregations:
        picks += [
            (f"best_of_n/{rule.value}", how.value, rule, how)
            for rule in (Select.prm, Select.weighted)
        ]
    rows = []
    for n in ns:
        policy = [
            r.usage.prompt_tokens + sum(c.num_tokens for c in r.candidates[:n]) for r in results
        ]
        charged = [prm_tokens_of_first(r, n, recorded) for r in results]
        prm = mean_or_none([tokens for tokens, _ in charged])
        charged_from = "+".join(sorted({source for _, source in charged}))
        for strategy, aggregation, rule, how in picks:
            correct = [int(best_of_n_right(r, n, rule, how)) for r in results]
            voting = rule is Select.majority
            rows.append(
                {
                    "strategy": strategy,
                    "aggregation": aggregation,
                    "n": n,
                    "lookahead": 0,
                    "seed": seed,
                    "candidates": float(n),
                    "policy_tokens": sum(policy) / len(results),
                    "prm_tokens": 0.0 if voting else prm,
                    "prm_tokens_from": "none (a vote)" if voting else charged_from,
                    "correct": correct,
                    "accuracy": sum(correct) / len(results),
                }
            )
    return rows


@dataclass(frozen=True)
class SearchRun:
    """One search configuration of the sweep: ``strategy`` at budget ``n``."""

    strategy: StrategyName
    n: int
    aggregation: Aggregation
    select: Select | None = None  # adaptive best-of-N: the vote that decides when it stops
    lookahead: int = 0
    uses_scorer: bool = True
    prune: Select = Select.weighted  # beam and DVTS: how a depth's children are ranked

    @property
    def label(self) -> str:
        label = self.strategy.value
        if self.select is not None:
            label += f"/{self.select.value}"
        if self.prune is not Select.weighted:
            label += f"/prune={self.prune.value}"
        if self.lookahead:
            label += f"/lookahead={self.lookahead}"
        return label


def search_runs(
    strategies: Sequence[str],
    search_ns: Sequence[int],
    aggregations: Sequence[Aggregation],
    lookahead: int,
    lookahead_ns: Sequence[int] | None = None,
    prunes: Sequence[Select] = (Select.weighted,),
) -> list[SearchRun]:
    """Every tree-strategy run of the sweep: each strategy at each budget and aggregation
    (adaptive best-of-N: majority without the PRM, and weighted), and beam again with
    ``lookahead`` when it is > 0 (at the budgets ``lookahead_ns``, default all); beam and DVTS
    once per pruning rule in ``prunes``."""
    runs = []
    for name in map(StrategyName, strategies):
        for n in search_ns:
            if name is StrategyName.adaptive_best_of_n:
                runs.append(SearchRun(name, n, Aggregation.min, Select.majority, uses_scorer=False))
                runs += [SearchRun(name, n, how, Select.weighted) for how in aggregations]
            elif name in (StrategyName.beam, StrategyName.dvts):
                runs += [
                    SearchRun(name, n, how, prune=prune) for prune in prunes for how in aggregations
                ]
            else:
                runs += [SearchRun(name, n, how) for how in aggregations]
            if name is StrategyName.beam and lookahead and n in (lookahead_ns or search_ns):
                runs += [SearchRun(name, n, how, lookahead=lookahead) for how in aggregations]
    return runs


def run_graded(
    strategy: Strategy, problems: Sequence[Problem], generator: Generator, scorer: Scorer | None
) -> tuple[list[tuple[SearchResult, dict[str, bool]]], float]:
    """``strategy`` run on ``problems``: each result graded as the engine grades its runs (no
    credit for an answer no finished path states, ``search.run.grade``), and the wall time."""
    start = time.perf_counter()
    results = strategy.run(problems, generator, scorer)
    wall = time.perf_counter() - start
    return [grade(result, GRADE_TIMEOUT_S) for result in results], wall


def search_row(
    run: SearchRun,
    problems: Sequence[Problem],
    generator: Generator,
    scorer: Scorer | None,
    seed: int,
    beam_width: int,
) -> dict[str, Any]:
    """One run of ``run.strategy`` at budget ``run.n`` on ``problems``."""
    config = StrategyConfig(
        name=run.strategy,
        n=run.n,
        select=run.select,
        beam_width=min(beam_width, run.n),
        lookahead=run.lookahead,
        num_simulations=2 * run.n,
        children_per_expansion=beam_width,
        prune=run.prune,
    )
    graded, wall = run_graded(
        build_strategy(config, run.aggregation, seed=seed),
        problems,
        generator,
        scorer if run.uses_scorer else None,
    )
    results = [result for result, _ in graded]
    correct = [int(marks["selected"]) for _, marks in graded]
    return {
        "strategy": run.label,
        "aggregation": run.aggregation.value if run.uses_scorer else "-",
        "n": run.n,
        "lookahead": run.lookahead,
        "seed": seed,
        "candidates": sum(len(r.candidates) for r in results) / len(problems),
        "policy_tokens": sum(r.usage.policy_tokens for r in results) / len(problems),
        "prm_tokens": mean_or_none([r.usage.prm_tokens for r in results]),
        "prm_tokens_from": "engine",
        "correct": correct,
        "accuracy": sum(correct) / len(problems),
        "wall_s": wall,
    }


def best_of_n_budgets(max_n: int) -> list[int]:
    """The N at which best-of-N is read off its run at ``max_n``: powers of two and the
    half-octaves between them (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, ...), up to and
    including ``max_n``. The half-octaves put a best-of-N row within 1.5x of any tree run's
    policy tokens, so "the smallest N with at least its tokens" is a near-equal budget and not
    up to twice it."""
    ns = {1, max_n}
    power = 1
    while power <= max_n:
        ns.update(n for n in (power, 3 * power // 2) if 1 <= n <= max_n)
        power *= 2
    return sorted(ns)


def sweep(
    problems: Sequence[Problem],
    generator: Generator,
    scorer: Scorer,
    seed: int,
    *,
    max_n: int,
    runs: Sequence[SearchRun],
    aggregations: Sequence[Aggregation],
    beam_width: int,
) -> list[dict[str, Any]]:
    """Every row of one seed on ``problems``: best-of-N at ``best_of_n_budgets(max_n)`` from
    one run, then each of ``runs``."""
    recording = RecordingScorer(scorer)
    best_of_n = build_strategy(
        StrategyConfig(name=StrategyName.best_of_n, n=max_n), Aggregation.min
    )
    start = time.perf_counter()
    results = best_of_n.run(problems, generator, recording)
    rows = best_of_n_rows(results, best_of_n_budgets(max_n), seed, aggregations, recording.tokens)
    log.info("seed %d best_of_n@%d: %.0f s", seed, max_n, time.perf_counter() - start)
    for run in runs:
        row = search_row(run, problems, generator, scorer, seed, beam_width)
        log.info(
            "seed %d %s@%d (%s): accuracy %.3f, %.0f s",
            seed,
            row["strategy"],
            row["n"],
            row["aggregation"],
            row["accuracy"],
            row["wall_s"],
        )
        rows.append(row)
    return rows


# -- statistics --------------------------------------------------------------------------------
def standard_error(values: Sequence[float]) -> float:
    """Standard error of the mean of ``values`` (sample standard deviation / sqrt(count));
    0 for fewer than two values."""
    if len(values) < 2:
        return 0.0
    return statistics.stdev(values) / math.sqrt(len(values))


def paired_difference(first: Sequence[int], second: Sequence[int]) -> tuple[float, float]:
    """Mean and standard error of ``first - second`` over the same (problem, seed) pairs."""
    if len(first) != len(second):
        raise ValueError(
            f"expected correctness over the same (problem, seed) pairs, got {len(first)} and "
            f"{len(second)} values; fix: compare rows of one run"
        )
    differences = [a - b for a, b in zip(first, second, strict=True)]
    return statistics.mean(differences), standard_error(differences)


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (strategy, aggregation, N) over seeds: accuracy and its standard error
    over the per-(problem, seed) correctness (concatenated in seed order), and the mean
    tokens per problem (PRM and total ``None`` when the scorer did not report them)."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: r["seed"]):
        groups.setdefault((row["strategy"], row["aggregation"], row["n"]), []).append(row)
    table = []
    for (strategy, how, n), members in sorted(groups.items()):
        correct = [value for m in members for value in m["correct"]]
        policy = statistics.mean(m["policy_tokens"] for m in members)
        prm = mean_or_none([m["prm_tokens"] for m in members])
        table.append(
            {
                "strategy": strategy,
                "aggregation": how,
                "n": n,
                "lookahead": members[0]["lookahead"],
                "accuracy": statistics.mean(correct),
                "accuracy_se": standard_error(correct),
                "problems": len(members[0]["correct"]),
                "seeds": len(members),
                "candidates": statistics.mean(m["candidates"] for m in members),
                "policy_tokens": policy,
                "prm_tokens": prm,
                "total_tokens": None if prm is None else policy + prm,
                "prm_tokens_from": "+".join(sorted({m["prm_tokens_from"] for m in members})),
                "correct": correct,
            }
        )
    return table


# -- tables and the summary ----------------------------------------------------------------------
def _tokens(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.0f}"


def _accuracy(entry: dict[str, Any]) -> str:
    return f"{entry['accuracy']:.3f} ± {entry['accuracy_se']:.3f}"


def markdown_table(table: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| strategy | aggregation | N | accuracy ± SE | problems × seeds | policy tokens / problem "
        "| PRM tokens / problem | total tokens / problem |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for entry in table:
        budget = str(entry["n"])
        if entry["candidates"] < entry["n"]:  # adaptive: what it drew before the vote settled
            budget += f" ({entry['candidates']:.1f} drawn)"
        lines.append(
            f"| {entry['strategy']} | {entry['aggregation']} | {budget} | {_accuracy(entry)} | "
            f"{entry['problems']} × {entry['seeds']} | {_tokens(entry['policy_tokens'])} | "
            f"{_tokens(entry['prm_tokens'])} | {_tokens(entry['total_tokens'])} |"
        )
    return "\n".join(lines)


def find(
    table: Sequence[dict[str, Any]], strategy: str, n: int, aggregation: str
) -> dict[str, Any] | None:
    """The entry of ``strategy`` at ``n`` (aggregation ``-`` for rows that use no scores)."""
    for entry in table:
        if (
            entry["strategy"] == strategy
            and entry["n"] == n
            and entry["aggregation"] in (aggregation, "-")
        ):
            return entry
    return None


def _cost(entry: dict[str, Any]) -> str:
    return (
        f"{_tokens(entry['policy_tokens'])} policy / {_tokens(entry['total_tokens'])} total "
        "tokens per problem"
    )


def _versus(first: dict[str, Any], second: dict[str, Any]) -> str:
    if len(first["correct"]) != len(second["correct"]):  # merged runs of other sizes
        return (
            f"not paired ({first['problems']} x {first['seeds']} vs {second['problems']} x "
            f"{second['seeds']} problems x seeds): difference of means "
            f"{first['accuracy'] - second['accuracy']:+.3f}"
        )
    difference, se = paired_difference(first["correct"], second["correct"])
    return f"difference {difference:+.3f} ± {se:.3f}"


def summary(table: Sequence[dict[str, Any]], n: int, aggregation: str, lookahead: int) -> str:
    """The comparisons issue 10 asks for, computed from ``table``: best-of-n rules against
    majority, beam and DVTS at n against best-of-n weighted (and against best-of-N weighted
    at the smallest N that spends at least their policy tokens, and at the next N up), MCTS
    against majority at the nearest policy-token budget, and beam with lookahead against
    beam without. A comparison whose rows were not run says so."""
    lines = []
    argmax = find(table, "best_of_n/prm", n, aggregation)
    weighted = find(table, "best_of_n/weighted", n, aggregation)
    majority = find(table, "best_of_n/majority", n, aggregation)
    if argmax and weighted and majority:
        lines.append(
            f"- best-of-{n} ({aggregation}): PRM argmax {_accuracy(argmax)}, majority "
            f"{_accuracy(majority)}, PRM-weighted {_accuracy(weighted)}; argmax − majority: "
            f"{_versus(argmax, majority)}; weighted − majority: {_versus(weighted, majority)}."
        )
    else:
        lines.append(f"- best-of-{n}: not run (needs --max-n >= {n}).")
    for strategy in ("beam", "dvts"):
        entry = find(table, strategy, n, aggregation)
        if entry and weighted:
            line = (
                f"- {strategy}@{n}: {_accuracy(entry)} at {_cost(entry)}; best-of-{n} weighted "
                f"{_accuracy(weighted)} at {_cost(weighted)}; {strategy} − best-of-{n}: "
                f"{_versus(entry, weighted)}"
            )
            richer = sorted(
                (
                    e
                    for e in table
                    if e["strategy"] == "best_of_n/weighted"
                    and e["aggregation"] == aggregation
                    and e["policy_tokens"] >= entry["policy_tokens"]
                ),
                key=lambda e: e["n"],
            )
            # the smallest richer budget, and the next one up, so a near-tie is read at both
            roles = ("the smallest N with at least its policy tokens", "the next N up")
            for other, role in zip(richer, roles, strict=False):
                line += (
                    f"; best-of-{other['n']} weighted ({role}) {_accuracy(other)} at "
                    f"{_cost(other)}; {strategy} − best-of-{other['n']}: {_versus(entry, other)}"
                )
            if not richer:
                line += "; no best-of-N run spent as many policy tokens (raise --max-n)"
            lines.append(line + ".")
        else:
            lines.append(f"- {strategy}@{n} against best-of-{n} weighted: not run.")
    for strategy in ("beam", "dvts"):
        by_vote = find(table, strategy, n, aggregation)
        by_score = find(table, f"{strategy}/prune=prm", n, aggregation)
        if by_vote and by_score:
            lines.append(
                f"- {strategy}@{n} pruned by the weighted vote of identical steps "
                f"{_accuracy(by_vote)} at {_cost(by_vote)}; by each step's own score "
                f"{_accuracy(by_score)} at {_cost(by_score)}; weighted − own score: "
                f"{_versus(by_vote, by_score)}."
            )
    majorities = [e for e in table if e["strategy"] == "best_of_n/majority"]
    mcts = [e for e in table if e["strategy"] == "mcts" and e["aggregation"] == aggregation]
    for tree in mcts:
        if not majorities:
            break
        nearest = min(
            majorities, key=lambda m: abs(math.log(m["policy_tokens"] / tree["policy_tokens"]))
        )
        lines.append(
            f"- mcts@{tree['n']}: {_accuracy(tree)} at {_tokens(tree['policy_tokens'])} "
            f"policy tokens; majority@{nearest['n']} (nearest policy budget) "
            f"{_accuracy(nearest)} at {_tokens(nearest['policy_tokens'])}; mcts − majority: "
            f"{_versus(tree, nearest)}."
        )
    if not mcts:
        lines.append("- mcts against majority at equal policy tokens: not run.")
    with_lookahead = [
        e
        for e in table
        if e["strategy"] == f"beam/lookahead={lookahead}" and e["aggregation"] == aggregation
    ]
    for ahead in with_lookahead:
        plain = find(table, "beam", ahead["n"], aggregation)
        if plain:
            lines.append(
                f"- beam@{ahead['n']} with lookahead={lookahead}: {_accuracy(ahead)} at "
                f"{_cost(ahead)}; without: {_accuracy(plain)} at {_cost(plain)}; lookahead − "
                f"none: {_versus(ahead, plain)}."
            )
    if not with_lookahead:
        lines.append("- beam with lookahead against none: not run (--lookahead K).")
    return "\n".join(lines)


def lookahead_sampling() -> str:
    """How the lookahead rollouts of the beam rows are sampled (``StrategyConfig``'s default
    ``lookahead_temperature``, which the sweep keeps)."""
    temperature = StrategyConfig().lookahead_temperature
    kind = "greedy" if temperature == 0 else "sampled"
    return f"{kind} (strategy.lookahead_temperature={temperature})"


def report_markdown(table: Sequence[dict[str, Any]], meta: dict[str, Any]) -> str:
    sizes = sorted({(e["problems"], e["seeds"]) for e in table}, reverse=True) or [(0, 0)]
    charged = sorted(
        {e["prm_tokens_from"] for e in table if e["strategy"] in ("best_of_n/prm", PASS)}
    )
    lines = [
        f"Arithmetic `{meta['split']}` split: "
        + " or ".join(f"{problems} problems × {seeds} seeds" for problems, seeds in sizes)
        + " (per row in the table); accuracy ± standard error over the (problem, seed) pairs. "
        f"Tokens are per "
        f"problem; total = policy + PRM. pass@N: a right answer among the best-of-N "
        f"candidates (the ceiling of any pick), drawn at the cost of the PRM picks. Best-of-N "
        f"below max N is the first N of {meta['max_n']} samples; its PRM tokens are charged "
        f"{', '.join(charged)}; majority votes are charged none. "
        f"Lookahead rollouts: {meta['lookahead_sampling']}. Search took "
        f"{meta['wall_s'] / 60:.1f} min on this split.",
        "",
        markdown_table(table),
        "",
        f"Summary (N={meta['summary_n']}, aggregation={meta['aggregation']}; differences "
        "paired over the same problems and seeds, ± standard error):",
        "",
        summary(table, meta["summary_n"], meta["aggregation"], meta["lookahead"]),
    ]
    return "\n".join(lines)


# -- the picture -------------------------------------------------------------------------------
def plot(table: Sequence[dict[str, Any]], path: Path, meta: dict[str, Any]) -> None:
    """Two panels: accuracy against total tokens (policy + PRM) and against policy tokens,
    log x, y from 0, one line per strategy / rule with SE bars, pass@N dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    how = meta["aggregation"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.8), sharey=True)
    names = [*sorted({e["strategy"] for e in table} - {PASS}), PASS]
    colors = [plt.get_cmap("tab20")(i) for i in range(20)]
    markers = "osD^vP*X<>ph"
    top = 0.0
    for ax, key, xlabel in (
        (axes[0], "total_tokens", "total tokens per problem (policy + PRM)"),
        (axes[1], "policy_tokens", "policy tokens per problem (prompt + generated)"),
    ):
        for index, name in enumerate(names):
            entries = [
                e
                for e in table
                if e["strategy"] == name and e["aggregation"] in (how, "-") and e[key] is not None
            ]
            if not entries:
                continue
            entries.sort(key=lambda e: e[key])
            ceiling = name == PASS
            ax.errorbar(
                [e[key] for e in entries],
                [e["accuracy"] for e in entries],
                yerr=[e["accuracy_se"] for e in entries],
                marker="" if ceiling else markers[index % len(markers)],
                markersize=5,
                capsize=3,
                linestyle="--" if ceiling else "-",
                color="black" if ceiling else colors[(2 * index) % 20 + (index // 10) % 2],
                label="pass@N of best-of-N (ceiling)" if ceiling else name,
            )
            top = max(top, *(e["accuracy"] + e["accuracy_se"] for e in entries))
        ax.set_xscale("log", base=2)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[0].set_ylim(0, min(1.0, top * 1.1 + 0.02))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=6, fontsize=8, frameon=False)
    sizes = sorted({(e["problems"], e["seeds"]) for e in table}, reverse=True) or [(0, 0)]
    fig.suptitle(
        f"Arithmetic {meta['split']} split: "
        + " or ".join(f"{problems} problems × {seeds} seeds" for problems, seeds in sizes)
        + f", aggregation={how}; bars: standard error over (problem, seed)"
    )
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(
    results_dir: Path, rows: Sequence[dict[str, Any]], meta: dict[str, Any], args: dict[str, Any]
) -> str:
    """Write ``accuracy_vs_compute_<split>.{json,md,png}``; return the markdown."""
    table = summarise(rows)
    stem = results_dir / f"accuracy_vs_compute_{meta['split']}"
    report = {"args": args, **meta, "rows": list(rows), "table": table}
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1))
    text = report_markdown(table, meta)
    prm = args.get("prm", SHIPPED_PRM)
    if prm != SHIPPED_PRM:  # a table of another PRM says so (the shipped one's stay as they were)
        text = f"PRM `{prm}`, not the shipped one. {text}"
    stem.with_suffix(".md").write_text(text + "\n")
    plot(table, stem.with_suffix(".png"), meta)
    return text


def row_key(row: dict[str, Any]) -> tuple[Any, ...]:
    """What identifies a row across result files: the run and its seed."""
    return (row["strategy"], row["aggregation"], row["n"], row["seed"], row["lookahead"])


@dataclass(frozen=True)
class RowCheck:
    """One row found in both result files: its name, what changed, and whether nothing did."""

    name: str
    detail: str
    same: bool


def one_split_reports(old: Path, new: Path, use: str) -> list[dict[str, Any]]:
    """The two result files ``old`` and ``new``, read, of one split (ValueError otherwise:
    ``use`` names what the caller does with them, for the fix)."""
    reports = [json.loads(Path(path).read_text()) for path in (old, new)]
    if reports[0]["split"] != reports[1]["split"]:
        raise ValueError(
            f"expected results of one split, got {reports[0]['split']} and "
            f"{reports[1]['split']}; fix: {use} files of the same split"
        )
    return reports


def describe(row: dict[str, Any]) -> str:
    """A row as the checks name it: strategy, aggregation, N and seed."""
    return "{} {} n={} seed={}".format(*row_key(row)[:4])


def row_checks(old: Path, new: Path) -> list[RowCheck]:
    """Per row present in both result files (same split, run and seed): whether the
    per-problem grades are the same, e.g. after a code change that should not move results
    (rerun a subset of the runs into another --results-dir, then compare)."""
    reports = one_split_reports(old, new, "compare")
    before = {row_key(row): row for row in reports[0]["rows"]}
    checks = []
    for row in reports[1]["rows"]:
        earlier = before.get(row_key(row))
        if earlier is None:
            continue
        name = describe(row)
        if len(earlier["correct"]) != len(row["correct"]):
            detail = f"{len(earlier['correct'])} problems before, {len(row['correct'])} now"
            checks.append(RowCheck(name, detail, same=False))
            continue
        differ = sum(a != b for a, b in zip(earlier["correct"], row["correct"], strict=True))
        checks.append(
            RowCheck(
                name,
                f"{'same grades' if not differ else f'{differ} problems differ'} "
                f"(accuracy {earlier['accuracy']:.3f} -> {row['accuracy']:.3f}; policy tokens "
                f"{earlier['policy_tokens']:.1f} -> {row['policy_tokens']:.1f})",
                same=not differ,
            )
        )
    if not checks:
        raise ValueError(
            f"expected rows in common (same run and seed), got none between {old} and {new}; "
            "fix: rerun some of the old file's runs"
        )
    return checks


def checks_summary(checks: Sequence[RowCheck]) -> str:
    same = sum(check.same for check in checks)
    return f"{same} of {len(checks)} rows in common have the same grades"


def checks_text(checks: Sequence[RowCheck]) -> str:
    """A line per row in both files, then how many are the same."""
    return "\n".join([*(f"{c.name}: {c.detail}" for c in checks), checks_summary(checks)])


def compare(old: Path, new: Path) -> str:
    return checks_text(row_checks(old, new))


def recheck_markdown(old: Path, new: Path, checks: Sequence[RowCheck]) -> str:
    """README's block: the summary, the rows that moved, the rows compared."""
    blocks = [
        f"Rerun `{new}` against `{old}`: {checks_summary(checks)}.",
        "\n".join(f"- {c.name}: {c.detail}" for c in checks if not c.same),
        f"Rows compared: {', '.join(c.name for c in checks)}.",
    ]
    return "\n\n".join(block for block in blocks if block) + "\n"


def paired_entries(old: Path, new: Path) -> list[dict[str, Any]]:
    """Per (strategy, aggregation, N) run in both result files, e.g. the same runs with two
    PRMs: both accuracies and NEW - OLD with its standard error, paired over the (problem,
    seed) pairs of the seeds both files hold. Majority votes and pass@N read no PRM score,
    so with the same policy and seeds they must come out the same: a check on the pairing."""
    reports = one_split_reports(old, new, "pair")
    runs: list[dict[tuple[Any, ...], dict[int, dict[str, Any]]]] = []
    for report in reports:
        by_run: dict[tuple[Any, ...], dict[int, dict[str, Any]]] = {}
        for row in report["rows"]:
            by_run.setdefault(row_key(row)[:3] + row_key(row)[4:], {})[row["seed"]] = row
        runs.append(by_run)
    entries = []
    for key, old_rows in sorted(runs[0].items(), key=lambda item: item[0]):
        new_rows = runs[1].get(key)
        seeds = sorted(set(old_rows) & set(new_rows or {}))
        if new_rows is None or not seeds:
            continue
        before = [value for seed in seeds for value in old_rows[seed]["correct"]]
        after = [value for seed in seeds for value in new_rows[seed]["correct"]]
        strategy, how, n, _ = key  # a lookahead run's name says its lookahead already
        if strategy in READS_NO_SCORE and before != after:
            raise ValueError(
                f"expected the same grades for {strategy} n={n}, which reads no PRM score, in "
                f"both files, got {sum(a != b for a, b in zip(before, after, strict=False))} "
                f"problems that differ between {old} and {new}; fix: pair runs of the same "
                "policy, problems and seeds"
            )
        difference, error = paired_difference(after, before)
        entries.append(
            {
                "strategy": strategy,
                "aggregation": how,
                "n": n,
                "problems": len(old_rows[seeds[0]]["correct"]),
                "seeds": len(seeds),
                "old": statistics.mean(before),
                "new": statistics.mean(after),
                "difference": difference,
                "standard_error": error,
            }
        )
    if not entries:
        raise ValueError(
            f"expected runs in common (same strategy, aggregation, N and a seed), got none "
            f"between {old} and {new}; fix: run the same budgets and seeds in both"
        )
    return entries


def paired_markdown(old: Path, new: Path, entries: Sequence[dict[str, Any]]) -> str:
    """README's block: which files and PRMs, then a row per run in both."""
    named = [model_identity(json.loads(Path(path).read_text()), "prm") for path in (old, new)]
    prms = [path + (f", weights {digest}" if digest else "") for path, digest in named]
    files = (  # one path for both: the checkpoint in it changed between the two runs
        f"OLD `{old}` against NEW `{new}`, each run with the PRM in `{named[0][0]}` as it was then"
        if named[0][0] == named[1][0] and None in (named[0][1], named[1][1])
        else f"OLD `{old}` (PRM `{prms[0]}`) against NEW `{new}` (PRM `{prms[1]}`)"
    )
    lines = [
        f"{files}; differences NEW − OLD paired over the same problems and seeds, ± standard "
        "error.",
        "",
        "| strategy | aggregation | N | problems × seeds | OLD | NEW | NEW − OLD |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for e in entries:
        lines.append(
            f"| {e['strategy']} | {e['aggregation']} | {e['n']} | {e['problems']} × "
            f"{e['seeds']} | {e['old']:.3f} | {e['new']:.3f} | "
            f"{e['difference']:+.3f} ± {e['standard_error']:.3f} |"
        )
    return "\n".join(lines) + "\n"


MERGE_DEFAULTS = {"policy": SHIPPED_POLICY, "prm": SHIPPED_PRM}


def model_identity(report: dict[str, Any], model: str) -> Any:
    """How a result file names its policy or PRM: the path, and the weights' digest when the
    file recorded one (files from before digests were recorded have only the path)."""
    args = report["args"]
    return args.get(model, MERGE_DEFAULTS[model]), args.get(f"{model}_sha256")


def require_prm(path: Path, prm: str) -> None:
    """Refuse a result file that was not run with the PRM weights now in ``prm`` (a table
    paired as "the PRM shipped now" must be of that PRM, or both sides would be one PRM)."""
    recorded = json.loads(Path(path).read_text())["args"].get("prm_sha256")
    expected = weights_digest(prm)
    if expected is None:
        raise ValueError(
            f"expected a local PRM directory with weights at {prm}, got none; fix: --new-prm "
            "DIR with the PRM's *.safetensors or *.bin files"
        )
    if recorded != expected:
        raise ValueError(
            f"expected {path} run with the PRM weights in {prm} ({expected}), got PRM weights "
            f"{recorded}; fix: rerun python benchmarks/accuracy_vs_compute.py with --prm {prm}"
        )


def merged_from(path: Path, report: dict[str, Any]) -> list[str]:
    """The run files behind a result file: its ``merged`` list, or the file itself."""
    return [str(m) for m in report["args"].get("merged") or [path]]


MERGED_LISTS = ("seeds", "search_ns", "strategies", "aggregations", "prune", "lookahead_ns")


def merge(paths: Sequence[Path], results_dir: Path, replace: bool = False) -> str:
    """Union of the rows of several result files of one split (a row repeated in several,
    e.g. the best-of-N rows of one seed, is kept once); the tables are recomputed. A repeated
    row must have the same grades in every file (or, from a run on fewer problems, the same
    grades as the first ones of the row over more, which is kept), unless ``replace``: then
    the first file's row stands (a rerun listed first replaces the rows it reran)."""
    reports = [json.loads(Path(path).read_text()) for path in paths]
    splits = {report["split"] for report in reports}
    if len(splits) != 1:
        raise ValueError(
            f"expected results of one split, got {sorted(splits)}; fix: merge per split"
        )
    for model in ("policy", "prm"):  # rows of other models must not pass as one table
        named = [model_identity(report, model) for report in reports]
        digests = {digest for _, digest in named}
        # by the weights where every file recorded them, else by path
        used = digests if None not in digests else {path for path, _ in named}
        if len(used) != 1:
            raise ValueError(
                f"expected results of one {model}, got {sorted(used)} in "
                f"{[str(path) for path in paths]}; fix: merge the runs of each {model} separately"
            )
    widths = {report["args"].get("beam_width", 4) for report in reports}
    if len(widths) != 1:  # not in a row's key: one run would stand for the other
        raise ValueError(
            f"expected results of one beam width, got {sorted(widths)}; fix: merge the runs "
            "of each --beam-width separately"
        )
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    differ: list[str] = []
    for report in reports:
        for row in report["rows"]:
            kept = rows.setdefault(row_key(row), row)
            if kept["correct"] == row["correct"]:
                continue
            # a split's first P problems are its size-P split: a row over fewer problems (e.g.
            # the best-of-1 rows of a run on 100 problems) agrees with one over more when its
            # grades are their first ones; the row over more problems is kept
            short, long = sorted((kept, row), key=lambda r: len(r["correct"]))
            if len(short["correct"]) < len(long["correct"]) and (
                long["correct"][: len(short["correct"])] == short["correct"]
            ):
                rows[row_key(row)] = long
            else:
                differ.append(describe(kept))
    if differ and not replace:
        raise ValueError(
            f"expected a row repeated in several files to have the same grades, got {len(differ)} "
            f"that differ ({', '.join(differ[:3])}{', ...' if len(differ) > 3 else ''}); fix: "
            "list the rerun first and add --replace, or merge runs of the same code"
        )
    meta = {key: value for key, value in reports[0].items() if key not in ("args", "rows", "table")}
    meta["wall_s"] = sum(report.get("wall_s", 0.0) for report in reports)
    # best-of-N read off the largest run of it, whichever file holds it (a piece that ran
    # best-of-1 only, beside a file of best-of-64, is a table of best-of-64)
    meta["max_n"] = max(report.get("max_n", 0) for report in reports)
    # the lookahead of the files that ran beam with one (its summary line), whatever the order
    lookaheads = {report.get("lookahead", 0) for report in reports} - {0}
    if len(lookaheads) > 1:
        raise ValueError(
            f"expected results of one lookahead, got {sorted(lookaheads)}; fix: merge the runs "
            "of each --lookahead separately"
        )
    meta["lookahead"] = lookaheads.pop() if lookaheads else 0
    # the files behind each input: its own list when it is itself a merge
    merged = [m for path, r in zip(paths, reports, strict=True) for m in merged_from(path, r)]
    arguments = {**reports[0]["args"], "merged": list(dict.fromkeys(merged))}
    arguments["lookahead"] = meta["lookahead"]
    arguments["max_n"] = meta["max_n"]
    arguments["problems"] = max(report["args"].get("problems", 0) for report in reports)
    for name in MERGED_LISTS:  # what the union ran: every seed, strategy, budget, rule
        union = [v for report in reports for v in report["args"].get(name) or []]
        if union:
            arguments[name] = sorted(set(union), key=union.index)
    results_dir.mkdir(parents=True, exist_ok=True)
    return write(results_dir, list(rows.values()), meta, arguments)


def merge_seeds(
    runs: Sequence[dict[str, Any]],
    lists: Sequence[str],
    means: Sequence[str],
    names: Sequence[str] = ("row",),
) -> dict[str, Any]:
    """One row from the runs of one configuration at several seeds (a benchmark's own row
    shape): ``names`` from the first run, ``seeds``, each of ``lists`` (per-problem values)
    concatenated over the runs, so that standard errors count every (problem, seed) pair, and
    each of ``means`` averaged."""
    merged: dict[str, Any] = {name: runs[0][name] for name in names}
    merged["seeds"] = [run["seed"] for run in runs]
    for key in lists:
        merged[key] = [value for run in runs for value in run[key]]
    for key in means:
        merged[key] = statistics.mean(run[key] for run in runs)
    return merged


def write_report(results_dir: str | Path, name: str, report: dict[str, Any], text: str) -> None:
    """A benchmark's ``<name>.json`` (``report``) and ``<name>.md`` (``text``, the table README
    shows) in ``results_dir``; prints the table."""
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, indent=2))
    (out / f"{name}.md").write_text(text + "\n")
    print(text)


def add_split_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of a benchmark that searches one split with the shipped models (e.g.
    ``dvts_picks.py``, ``prm_headroom.py``): ``--split``, ``--problems``, ``--seeds``,
    ``--prm``, ``--policy``, ``--results-dir`` and ``--name``; ``check_split_arguments``
    refuses sizes that leave nothing to measure."""
    parser.add_argument("--split", default="validation", choices=HELD_OUT_SPLITS)
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--prm", default=SHIPPED_PRM)
    parser.add_argument("--policy", default=SHIPPED_POLICY)
    parser.add_argument("--results-dir", default=str(RESULTS))
    parser.add_argument("--name", default=None, help="result file stem")


def check_split_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--problems`` and ``--seeds`` of a search benchmark, before any model loads."""
    check_sizes(parser, args.problems, args.seeds)


def check_sizes(parser: argparse.ArgumentParser, problems: int, seeds: Sequence[int]) -> None:
    """At least one problem, and distinct seeds: a seed listed twice would count the same
    (problem, seed) pairs twice and shrink every standard error."""
    if problems < 1:
        parser.error(f"expected --problems >= 1, got {problems}")
    if len(set(seeds)) != len(seeds):
        parser.error(f"expected distinct --seeds, got {seeds}; fix: list each seed once")


def check_sweep_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A sweep's sizes, before any model loads (they would fail later, after the loads, in
    the words of the engine's settings rather than of these flags)."""
    check_sizes(parser, args.problems, args.seeds)
    for flag, values in (("--max-n", [args.max_n]), ("--search-ns", args.search_ns),
                         ("--beam-width", [args.beam_width]), ("--summary-n", [args.summary_n]),
                         ("--lookahead-ns", args.lookahead_ns or [1])):  # fmt: skip
        if min(values) < 1:
            parser.error(f"expected {flag} >= 1, got {values if len(values) > 1 else values[0]}")
    if args.lookahead < 0:
        parser.error(f"expected --lookahead >= 0, got {args.lookahead}")
    for split in args.splits:
        if split not in HELD_OUT_SPLITS:
            parser.error(f"expected --splits among {HELD_OUT_SPLITS}, got {split!r}")


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table in
    benchmarks/results/, not a run directory; it composes no config groups."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--max-n", type=int, default=64, help="largest best-of-N")
    parser.add_argument("--search-ns", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument(
        "--strategies",
        nargs="*",
        default=TREE_STRATEGIES,
        choices=TREE_STRATEGIES,
        help="tree strategies to run besides best-of-N (none: best-of-N only)",
    )
    parser.add_argument("--aggregations", nargs="+", default=["min"])
    parser.add_argument("--beam-width", type=int, default=4)
    parser.add_argument(
        "--lookahead", type=int, default=0, help="K > 0: beam again with strategy.lookahead=K"
    )
    parser.add_argument(
        "--lookahead-ns", type=int, nargs="+", help="budgets of the lookahead rows (all: unset)"
    )
    parser.add_argument(
        "--prune",
        nargs="+",
        default=["weighted"],
        choices=["weighted", "prm"],
        help="beam and DVTS once per rule (strategy.prune)",
    )
    parser.add_argument("--summary-n", type=int, default=16)
    parser.add_argument("--policy", default=SHIPPED_POLICY)
    parser.add_argument("--prm", default=SHIPPED_PRM)
    parser.add_argument("--splits", "--split", nargs="+", default=["test", "longest"])
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        help="JSON results of one split from runs that split the work (other seeds or "
        "strategies, e.g. in parallel processes): rewrite their union into --results-dir",
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="with --merge: a row in several files with other grades is taken from the first "
        "file (list a rerun first); without it such a row is refused",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        nargs=2,
        metavar=("OLD", "NEW"),
        help="two JSON results of one split: say, per row in both, whether its per-problem "
        "grades are the same (runs nothing; writes <NEW's name>_recheck.md to --results-dir)",
    )
    parser.add_argument(
        "--paired",
        type=Path,
        nargs=2,
        metavar=("OLD", "NEW"),
        help="two JSON results of one split, e.g. the same runs with two PRMs: per run in "
        "both, NEW − OLD paired over problems and seeds (runs nothing; writes "
        "<NEW's name>_paired.{md,json} to --results-dir)",
    )
    parser.add_argument(
        "--new-prm",
        metavar="DIR",
        help="with --paired: refuse NEW unless it was run with the PRM weights now in DIR",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    modes = [flag for flag in ("paired", "compare", "merge") if getattr(args, flag)]
    if len(modes) > 1:
        parser.error(f"expected one of --paired, --compare and --merge, got {modes}")
    if not modes:
        check_sweep_arguments(parser, args)
    if args.new_prm and not args.paired:
        parser.error("--new-prm checks the NEW file of --paired; fix: add --paired OLD NEW")
    if args.paired:
        old, new = args.paired
        if args.new_prm:
            require_prm(new, args.new_prm)
        entries = paired_entries(old, new)
        text = paired_markdown(old, new, entries)
        args.results_dir.mkdir(parents=True, exist_ok=True)
        stem = args.results_dir / f"{new.stem}_paired"
        stem.with_suffix(".md").write_text(text)
        stem.with_suffix(".json").write_text(json.dumps(entries, indent=1))
        print(text)
        return
    if args.compare:
        old, new = args.compare
        checks = row_checks(old, new)
        args.results_dir.mkdir(parents=True, exist_ok=True)
        (args.results_dir / f"{new.stem}_recheck.md").write_text(recheck_markdown(old, new, checks))
        print(checks_text(checks))
        return
    if args.replace and not args.merge:
        parser.error("--replace is for --merge; fix: add --merge RERUN OTHER...")
    if args.merge:
        print(merge(args.merge, args.results_dir, replace=args.replace))
        return

    aggregations = [Aggregation(how) for how in args.aggregations]
    splits = {split: make_split(split, size=args.problems) for split in args.splits}
    runs = search_runs(
        args.strategies,
        args.search_ns,
        aggregations,
        args.lookahead,
        args.lookahead_ns,
        [Select(rule) for rule in args.prune],
    )
    results_dir: Path = args.results_dir
    results_dir.mkdir(parents=True, exist_ok=True)
    scorer = build_scorer(args.prm)
    digests = {f"{m}_sha256": weights_digest(getattr(args, m)) for m in ("policy", "prm")}
    rows: dict[str, list[dict[str, Any]]] = {split: [] for split in splits}
    wall_s = dict.fromkeys(splits, 0.0)
    texts: dict[str, str] = {}
    for seed in args.seeds:
        generator = build_policy(args.policy, seed)
        for split, problems in splits.items():
            start = time.perf_counter()
            rows[split] += sweep(
                problems,
                generator,
                scorer,
                seed,
                max_n=args.max_n,
                runs=runs,
                aggregations=aggregations,
                beam_width=args.beam_width,
            )
            wall_s[split] += time.perf_counter() - start
            meta = {
                "split": split,
                "max_n": args.max_n,
                "summary_n": args.summary_n,
                "aggregation": aggregations[0].value,
                "lookahead": args.lookahead,
                "lookahead_sampling": lookahead_sampling(),
                "wall_s": wall_s[split],
            }
            arguments = {**vars(args), "results_dir": str(results_dir)} | digests
            texts[split] = write(results_dir, rows[split], meta, arguments)
            log.info("seed %d %s written (%.0f s on this split so far)", seed, split, wall_s[split])
    for split, text in texts.items():
        print(f"## {split}\n\n{text}\n")


if __name__ == "__main__":
    main()
