"""Issue 10's targets at a glance: each target, what it asks, what the shipped results give, and
whether that meets it, read from the result files the benchmark scripts wrote (nothing is
measured or typed here).

    python benchmarks/targets.py

Sources, all in ``benchmarks/results/``: ``mc_code_before.json`` (MC speed, before and after
in one run), ``prm_pipeline_make20_e2e.json`` or else ``prm_pipeline_make20.json`` (``make
prm`` timed: its data and minutes), ``make_prm_identity.json`` (its weights against the
shipped ones), else ``prm_more_bf16_validation.json`` and
``more_bf16/round20/accuracy_vs_compute_validation_paired.json`` (``make prm``'s PRM against
the shipped one on validation: does it rebuild it?),
``prm_processbench.json`` (step-error F1), ``accuracy_vs_compute_test.json`` and
``accuracy_vs_compute_longest.json`` (search). A missing file makes its rows say so.

Verdicts on accuracy differences (paired over the same problems and seeds, ± standard error):
``met`` when every comparison the target names is above by at least 2 standard errors,
``met in the mean`` when every one is above but some by less, ``level`` when they disagree in
sign, ``not met`` when none is above; ``stale`` for every row of a file that records PRM
weights other than those now in ``checkpoints/arith-prm`` (a table of a PRM no longer
shipped judges nothing; its numbers stay in view). It prints the table; ``render_readme.py``
renders the same table into README from the same files, so the two cannot drift apart.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from accuracy_vs_compute import SHIPPED_PRM, find, paired_difference
from round_rule import PARITY_F1_POINTS, PARITY_MEAN, four_rows, rule_passes, step_f1

from search.resolve import weights_digest

RESULTS = Path(__file__).resolve().parent / "results"
SHIPPED_PRM_DIR = Path(__file__).resolve().parents[1] / SHIPPED_PRM  # whose tables count
N = 16  # the budget the targets name
AGGREGATION = "min"  # the aggregation the shipped tables report
SPEED_TARGET = 5.0  # MC rollout tokens/s over the labeller before
SOLUTIONS_TARGET = 25_000
MINUTES_TARGET = 90.0
F1_TARGET = 0.85
MARGIN_TARGET = 0.10  # best-of-16 rules over majority@16
MAKE_PRM_MC_ROW = "hf / arith-verifier-base / early_stop"  # build_prm.sh's MC set-up


@dataclass(frozen=True)
class Target:
    """One row of the scoreboard."""

    target: str
    asks: str
    measured: str
    verdict: str
    source: str


@dataclass(frozen=True)
class Difference:
    """An accuracy difference, paired, with what it was taken against."""

    against: str
    value: float
    se: float

    @property
    def text(self) -> str:
        return f"{self.value:+.3f} ± {self.se:.3f} vs {self.against}"


def verdict(differences: Sequence[Difference]) -> str:
    """The verdict on "above all of these" (module docstring)."""
    if not differences:
        return "not run"
    above = [d.value > 0 for d in differences]
    if all(above):
        clear = all(d.value >= 2 * d.se for d in differences)
        return "met" if clear else "met in the mean"
    return "not met" if not any(above) else "level"


def load(name: str, results: Path) -> Any | None:
    path = results / name
    return json.loads(path.read_text()) if path.is_file() else None


def missing(target: str, asks: str, source: str, command: str) -> Target:
    return Target(target, asks, f"no results file; run `{command}`", "not run", source)


def stale(
    rows: Sequence[Target], recorded: str | None, shipped: str | None, command: str
) -> list[Target]:
    """The rows of a file run with PRM weights other than the shipped ones, or that records
    none (a file from before digests were recorded): their verdict is ``stale`` (what they
    measured stays in view, with both digests and the command that reruns them)."""
    if recorded is not None and recorded == shipped:
        return list(rows)
    whose = "no PRM weights recorded" if recorded is None else f"run with PRM weights {recorded}"
    note = f" [{whose}, not the shipped {shipped}: was {{verdict}}; rerun `{command}`]"
    return [
        Target(row.target, row.asks, row.measured + note.format(verdict=row.verdict), "stale",
               row.source)
        for row in rows
    ]  # fmt: skip


# -- MC speed and make prm ---------------------------------------------------------------------
def _speed_ratios(
    report: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, float], dict[str, float]]:
    """The run's before row (the code-before row, else its first) and every other row's
    rollout tokens/s and solutions/s over it."""
    rows = report["rows"]
    before = next((row for row in rows if "commit" in row), rows[0])
    after = [row for row in rows if row is not before]
    tokens = {r["setup"]: r["rollout_tokens_per_s"] / before["rollout_tokens_per_s"] for r in after}
    solutions = {r["setup"]: r["solutions_per_s"] / before["solutions_per_s"] for r in after}
    return before, tokens, solutions


def speed_target(results: Path) -> Target:
    """make prm's MC set-up against the labeller of the commit the issue measured
    (``mc_code_before.json``), and the fastest set-up of the full table
    (``mc_labelling_speed.json``, against its generator-before row)."""
    asks = f">= {SPEED_TARGET:.0f}x the labeller before in rollout tokens/s, one run"
    target = "MC labelling speed"
    sources = ("mc_code_before.json", "mc_labelling_speed.json")
    code_before, full_table = (load(source, results) for source in sources)
    if code_before is None:
        return missing(target, asks, sources[0], "python benchmarks/mc_labelling_speed.py ...")
    before, tokens, solutions = _speed_ratios(code_before)
    shipped = MAKE_PRM_MC_ROW if MAKE_PRM_MC_ROW in tokens else max(tokens, key=tokens.__getitem__)
    measured = (
        f"make prm's set-up ({shipped}): {tokens[shipped]:.1f}x rollout tokens/s, "
        f"{solutions[shipped]:.1f}x solutions/s against {before['setup']}"
    )
    # the verdict: the fastest row against the labeller the issue measured, in the same run;
    # the other rows past the target are named (else the fastest, when it is not make prm's)
    best = max(tokens.values())
    past = [s for s in tokens if s != shipped and tokens[s] >= SPEED_TARGET]
    named = past or [s for s in tokens if s != shipped and tokens[s] == best]
    if named:
        measured += "; " + ("past the target in the same run: " if past else "the run's fastest: ")
        measured += ", ".join(
            f"{s} {tokens[s]:.1f}x rollout tokens/s, {solutions[s]:.1f}x solutions/s"
            for s in sorted(named, key=tokens.__getitem__)
        )
    if full_table is not None:  # shown for information: another baseline
        full_before, full_tokens, _ = _speed_ratios(full_table)
        fastest = max(full_tokens, key=full_tokens.__getitem__)
        measured += (
            f"; for information, the full table's fastest set-up ({fastest}): "
            f"{full_tokens[fastest]:.1f}x against its {full_before['setup']} (`{sources[1]}`)"
        )
    return Target(target, asks, measured, "met" if best >= SPEED_TARGET else "not met", sources[0])


def _count(pattern: str, text: str) -> int | None:
    found = re.search(pattern, text)
    return None if found is None else int(found.group(1))


# make prm's recipe (twenty bfloat16 rounds), timed and judged by this script, which names its
# PRM "round 20" beside "shipped"
MAKE_PRM_COMMAND = "bash benchmarks/bf16_more_rounds.sh"
MAKE_PRM_NAME = "round 20"
REBUILT_VALIDATION = "prm_more_bf16_validation.json"
REBUILT_PAIRED = "more_bf16/round20/accuracy_vs_compute_validation_paired.json"
REBUILT_TEST = "prm_processbench_more_bf16.json"  # both PRMs on test, read once
TEST_SUBSET = "arith-test-policy"


PIPELINES = (  # make prm's stage tables, the first that exists counts
    "prm_pipeline_make20_e2e.json",  # its twenty rounds in one run (ship_round20.sh)
    "prm_pipeline_make20.json",  # two runs' stages, one after the other (bf16_more_rounds.sh)
)
IDENTITY = "make_prm_identity.json"  # make prm's weights against the chosen ones
# the PRM the parity files call "shipped": the weights of the table the search was paired with
REBUILT_BASELINE = "bf16/shipped/accuracy_vs_compute_validation.json"
SHIP_COMMAND = "bash benchmarks/ship_prm.sh"  # ships a PRM and reruns every table it reads


def pipeline_targets(results: Path) -> list[Target]:
    source = next((name for name in PIPELINES if (results / name).is_file()), PIPELINES[-1])
    data_asks = (
        f">= {SOLUTIONS_TARGET:,} policy solutions labelled by MC and the calculator judge, "
        "filtered by their consensus"
    )
    time_asks = f"`make prm` within {MINUTES_TARGET:.0f} minutes, stage by stage"
    stages = load(source, results)
    if stages is None:
        command = MAKE_PRM_COMMAND
        return [
            missing("Ten times the data", data_asks, source, command),
            missing("`make prm` time", time_asks, source, command),
        ]
    by_stage = {stage["stage"]: stage for stage in stages}
    labelled = {
        name: _count(r"(\d+) of \d+ solutions labelled", by_stage[name]["detail"])
        for name in ("label mc", "label calculator", "label consensus")
        if name in by_stage
    }
    sampled = (
        _count(r"(\d+) solutions", by_stage["sample"]["detail"]) if "sample" in by_stage else None
    )
    counts = [labelled.get("label mc"), labelled.get("label calculator")]
    data_met = all(count is not None and count >= SOLUTIONS_TARGET for count in counts)
    data = Target(
        "Ten times the data",
        data_asks,
        f"{sampled} sampled; labelled by MC {labelled.get('label mc')}, by the calculator judge "
        f"{labelled.get('label calculator')}; the consensus keeps "
        f"{labelled.get('label consensus')}",
        "met" if data_met and "label consensus" in labelled else "not met",
        source,
    )
    untimed = [stage["stage"] for stage in stages if stage.get("seconds") is None]
    seconds = sum(stage["seconds"] or 0 for stage in stages)
    minutes = seconds / 60
    timed = Target(
        "`make prm` time",
        time_asks,
        f"{minutes:.0f} minutes ({seconds} s over {len(stages)} stages"
        + (f"; untimed: {', '.join(untimed)}" if untimed else "")
        + ")",
        "met" if minutes <= MINUTES_TARGET and not untimed else "not met",
        source,
    )
    return [data, timed]


def rebuild_target(results: Path, shipped_prm: Path = SHIPPED_PRM_DIR) -> Target:
    """Does ``make prm`` rebuild the shipped PRM? Met byte for byte when its weights are the
    shipped ones (``make_prm_identity.json``, ship_round20.sh); else by round_rule.py's parity
    check of its PRM against the shipped one on validation."""
    target = "`make prm` rebuilds the shipped PRM"
    asks = (
        f"its PRM the shipped one: the same weights, or at parity on validation (step F1 at "
        f"most {PARITY_F1_POINTS:g} points and the four-row search mean at most "
        f"{PARITY_MEAN:g} below)"
    )
    identity = load(IDENTITY, results)
    shipped = weights_digest(shipped_prm)
    if identity is not None and identity["identical"] and identity["rows"][0]["digest"] == shipped:
        names = ", ".join(f"{row['name']} (`{row['path']}`)" for row in identity["rows"])
        measured = f"the shipped weights ({shipped}), byte for byte: {names}"
        return Target(target, asks, measured, "met", IDENTITY)
    sources = (REBUILT_VALIDATION, REBUILT_PAIRED)
    processbench, paired = (load(source, results) for source in sources)
    if processbench is None or paired is None:
        return missing(target, asks, sources[0 if processbench is None else 1], MAKE_PRM_COMMAND)
    try:  # files that lack a PRM or a row: the row says which, the scoreboard goes on
        shipped_f1 = step_f1(processbench, "shipped")
        rebuilt_f1 = step_f1(processbench, MAKE_PRM_NAME)
        shipped_mean, rebuilt_mean, (problems, seeds) = four_rows(paired)
    except SystemExit as error:
        return Target(target, asks, f"unreadable: {error}", "not run", sources[0])
    passes = rule_passes(
        rebuilt_f1, rebuilt_mean, shipped_f1, shipped_mean, PARITY_F1_POINTS, PARITY_MEAN
    )
    measured = (
        f"step F1 {100 * rebuilt_f1:.1f} vs {100 * shipped_f1:.1f}; four-row mean "
        f"{rebuilt_mean:.3f} vs {shipped_mean:.3f} ({problems} problems × {seeds} seeds, paired)"
    )
    test = load(REBUILT_TEST, results)  # reported beside the verdict, which is validation's
    if test is not None:
        try:
            on_test = [step_f1(test, name, TEST_SUBSET) for name in (MAKE_PRM_NAME, "shipped")]
        except SystemExit as error:
            measured += f"; test unreadable: {error}"
        else:
            measured += (
                f"; on test (reported, not judged): step F1 {100 * on_test[0]:.1f} vs "
                f"{100 * on_test[1]:.1f} (`{REBUILT_TEST}`)"
            )
    row = Target(target, asks, measured, "met" if passes else "not met", sources[0])
    baseline = load(REBUILT_BASELINE, results)  # whose weights "shipped" was in these files
    recorded = None if baseline is None else baseline.get("args", {}).get("prm_sha256")
    return stale([row], recorded, shipped, SHIP_COMMAND)[0]


# -- step-error F1 -----------------------------------------------------------------------------
def f1_target(results: Path, shipped_prm: Path = SHIPPED_PRM_DIR) -> Target:
    source = "prm_processbench.json"
    asks = f"step-error F1 >= {100 * F1_TARGET:.0f} on the policy's own test solutions"
    report = load(source, results)
    target = "PRM step-error F1"
    if report is None:
        return missing(target, asks, source, "python benchmarks/prm_processbench.py")
    subsets = {subset["subset"]: subset for subset in report["subsets"]}
    own = subsets.get("arith-test-policy")
    if own is None or own.get("f1") is None:
        return Target(target, asks, "no arith-test-policy F1 in the file", "not run", source)
    corrupt = subsets.get("arith-test-corrupt", {}).get("f1")
    measured = f"{100 * own['f1']:.1f} on {own['num_samples']} solutions"
    if corrupt is not None:
        measured += f" (corrupted gold, logic errors: {100 * corrupt:.1f})"
    row = Target(target, asks, measured, "met" if own["f1"] >= F1_TARGET else "not met", source)
    recorded = report.get("prm_sha256")
    return stale([row], recorded, weights_digest(shipped_prm), SHIP_COMMAND)[0]


# -- search ------------------------------------------------------------------------------------
class NotPaired(ValueError):
    """Two rows over other (problem, seed) pairs: merged runs of other sizes."""


def _difference(first: dict[str, Any], second: dict[str, Any], against: str) -> Difference:
    if len(first["correct"]) != len(second["correct"]):
        raise NotPaired(
            f"not paired vs {against} ({len(first['correct'])} and {len(second['correct'])} "
            "(problem, seed) pairs)"
        )
    value, se = paired_difference(first["correct"], second["correct"])
    return Difference(against, value, se)


def _weighted_at_or_above(table: Sequence[dict[str, Any]], tokens: float) -> list[dict[str, Any]]:
    """Best-of-N weighted entries that spent at least ``tokens`` policy tokens, smallest N
    first."""
    return sorted(
        (
            entry
            for entry in table
            if entry["strategy"] == "best_of_n/weighted"
            and entry["aggregation"] == AGGREGATION
            and entry["policy_tokens"] >= tokens
        ),
        key=lambda entry: entry["n"],
    )


def search_targets(split: str, results: Path, shipped_prm: Path = SHIPPED_PRM_DIR) -> list[Target]:
    """The search rows of ``split``; a comparison of rows over other (problem, seed) pairs
    (merged runs of other sizes) is said to be unpaired, with no verdict; rows of a table run
    with other PRM weights than the shipped ones are ``stale``."""
    source = f"accuracy_vs_compute_{split}.json"
    try:
        rows = _search_targets(split, results)
    except NotPaired as error:
        rows = [Target(f"search ({split})", "paired comparisons", str(error), "not paired", source)]
    report = load(source, results)
    if report is None:  # its rows say what to run
        return rows
    recorded = report.get("args", {}).get("prm_sha256")
    return stale(rows, recorded, weights_digest(shipped_prm), SHIP_COMMAND)


def _search_targets(split: str, results: Path) -> list[Target]:
    source = f"accuracy_vs_compute_{split}.json"
    report = load(source, results)
    command = f"python benchmarks/accuracy_vs_compute.py --splits {split}"
    tree_asks = (
        "above best-of-N weighted at equal or larger policy-token budgets (the smallest N "
        "spending at least as many, and the next N up)"
    )
    names = [f"beam@{N}", f"DVTS@{N}"]
    if split == "test":
        names = [f"best-of-{N} argmax", f"best-of-{N} weighted", *names, "MCTS", "lookahead"]
    if report is None:
        return [missing(f"{name} ({split})", "see the sections below", source, command)
                for name in names]  # fmt: skip
    table = report["table"]
    rows: list[Target] = []
    majority = find(table, "best_of_n/majority", N, AGGREGATION)
    if split == "test":
        for rule, label in (("best_of_n/prm", "argmax"), ("best_of_n/weighted", "weighted")):
            entry = find(table, rule, N, AGGREGATION)
            asks = f">= majority@{N} + {100 * MARGIN_TARGET:.0f} points"
            if entry is None or majority is None:
                rows.append(missing(f"best-of-{N} {label} ({split})", asks, source, command))
                continue
            gap = _difference(entry, majority, f"majority@{N}")
            floor = gap.value - MARGIN_TARGET
            rows.append(
                Target(
                    f"best-of-{N} {label} ({split})",
                    asks,
                    f"{entry['accuracy']:.3f} against majority {majority['accuracy']:.3f}: "
                    f"{gap.text}",
                    "met" if floor >= 0 else "not met",
                    source,
                )
            )
    for strategy, label in (("beam", f"beam@{N}"), ("dvts", f"DVTS@{N}")):
        entry = find(table, strategy, N, AGGREGATION)
        if entry is None:
            rows.append(missing(f"{label} ({split})", tree_asks, source, command))
            continue
        richer = _weighted_at_or_above(table, entry["policy_tokens"])[:2]
        differences = [
            _difference(entry, e, f"best-of-{e['n']} ({e['policy_tokens']:.0f} tokens)")
            for e in richer
        ]
        measured = f"{entry['accuracy']:.3f} at {entry['policy_tokens']:.0f} policy tokens; " + (
            "; ".join(d.text for d in differences) or "no best-of-N run spent as many tokens"
        )
        rows.append(Target(f"{label} ({split})", tree_asks, measured, verdict(differences), source))
    if split != "test":
        return rows
    mcts = sorted(
        (e for e in table if e["strategy"] == "mcts" and e["aggregation"] == AGGREGATION),
        key=lambda e: e["n"],
    )
    majorities = [e for e in table if e["strategy"] == "best_of_n/majority"]
    mcts_asks = "above majority vote at equal policy tokens (the nearest majority@N budget)"
    if mcts and majorities:
        differences = []
        for tree in mcts:
            nearest = min(
                majorities,
                key=lambda m: abs(math.log(m["policy_tokens"] / tree["policy_tokens"])),
            )
            differences.append(_difference(tree, nearest, f"majority@{nearest['n']}"))
        measured = "; ".join(
            f"mcts@{tree['n']} {d.text}" for tree, d in zip(mcts, differences, strict=True)
        )
        rows.append(Target(f"MCTS ({split})", mcts_asks, measured, verdict(differences), source))
    else:
        rows.append(missing(f"MCTS ({split})", mcts_asks, source, command))
    ahead = next((e for e in table if e["strategy"].startswith("beam/lookahead=")), None)
    plain = None if ahead is None else find(table, "beam", ahead["n"], AGGREGATION)
    lookahead_asks = "measured at least once against no lookahead"
    if ahead is None or plain is None:
        rows.append(
            missing(f"lookahead ({split})", lookahead_asks, source, command + " --lookahead 1")
        )
    else:
        gap = _difference(ahead, plain, f"beam@{plain['n']} without")
        rows.append(
            Target(
                f"lookahead ({split})",
                lookahead_asks,
                f"{ahead['strategy']}@{ahead['n']}: {gap.text}",
                "met (measured)",
                source,
            )
        )
    return rows


# -- the scoreboard ----------------------------------------------------------------------------
def scoreboard(results: Path = RESULTS, shipped_prm: Path = SHIPPED_PRM_DIR) -> list[Target]:
    return [
        speed_target(results),
        *pipeline_targets(results),
        rebuild_target(results, shipped_prm),
        f1_target(results, shipped_prm),
        *search_targets("test", results, shipped_prm),
        *search_targets("longest", results, shipped_prm),
    ]


def markdown(targets: Sequence[Target]) -> str:
    lines = [
        "Issue 10's targets, read from the result files named in the last column (the sections "
        "below hold each table). Accuracy differences are paired over the same problems and "
        "seeds, ± standard error; `met`: above in every comparison by at least 2 standard "
        "errors (for a threshold: at or past it); `met in the mean`: above in every one, some "
        "by less; `level`: above in some; `not met`: in none; `not run`: no results file; "
        "`stale`: its file was run with PRM weights other than the shipped ones.",
        "",
        "| target | asks | measured | verdict | source |",
        "|---|---|---|---|---|",
    ]
    for target in targets:
        lines.append(
            f"| {target.target} | {target.asks} | {target.measured} | **{target.verdict}** | "
            f"`{target.source}` |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    results: Path = args.results_dir
    if not results.is_dir():
        parser.error(f"expected --results-dir to be a folder of result files, got {results}")
    targets = scoreboard(results)
    if args.json:
        print(json.dumps([asdict(target) for target in targets], indent=1))
    else:
        print(markdown(targets))


if __name__ == "__main__":
    main()
