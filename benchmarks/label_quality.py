"""Label quality of MC, judge (calculator) and consensus labels against the arithmetic
world's ground-truth checker: the project's miniature of the paper's MC-vs-judge-vs-human
comparison (arXiv 2501.07301, section 3).

Reads the records that `make prm` (python -m prm.label ... report=true) wrote and prints one
table; it recomputes everything from the records, so it can run on any labelled samples.
Several consensus runs on the same samples (their MC runs set up differently) share one table,
each MC run with the rollouts it spent per solution (from its ``usage.jsonl``); with a
full-mode MC run (``labeller.early_stop=false``) a second table says how well MC's soft labels
(share of right rollouts) separate right steps from first errors:

    python benchmarks/label_quality.py [--samples runs/prm/samples/samples.jsonl]
        [--consensus runs/prm/labels/consensus/records.jsonl ...] [--limit N]
        [--name label_quality]

``benchmarks/label_mc_modes.sh`` runs three MC set-ups and this table on them. Writes
benchmarks/results/<name>.{json,md}. Each MC run is described from the ``fingerprint.json``
the labelling CLI leaves beside its records.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prm.label.quality import (
    LabelQuality,
    describe_mc,
    mc_run,
    quality_from_records,
    soft_label_profile,
    soft_markdown,
)
from prm.label.records import LabelRecord
from prm.sample import read_samples
from search.envs.arith.checker import ArithChecker
from search.jsonl import read_jsonl

RESULTS = Path(__file__).resolve().parent / "results"
CHECKER = ArithChecker()
MAKE_RUNS = (
    "fix: make them with `make prm` (it writes runs/prm/samples/samples.jsonl and "
    "runs/prm/labels/consensus/records.jsonl), or with `bash benchmarks/label_mc_modes.sh` for "
    "the MC-modes table (runs/prm/labels/consensus_{trust,distrust,full}, on make prm's "
    "samples), or pass --samples and --consensus of other prm.label runs"
)


def check_inputs(samples: Path, consensus: list[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """(records, MC settings) of every consensus run, checked with the samples file before
    any record is read; a missing file is named with the command that makes it."""
    if not samples.is_file():
        raise FileNotFoundError(
            f"expected --samples {samples} to be a prm.sample file, got no such file; {MAKE_RUNS}"
        )
    settings = []
    for path in consensus:
        if not path.is_file():
            raise FileNotFoundError(
                f"expected --consensus {path} to be the records of a prm.label consensus run, "
                f"got no such file; {MAKE_RUNS}"
            )
        try:
            mc = mc_run(path)  # its fingerprint, and its MC run's
        except FileNotFoundError as error:
            reason = str(error).partition("; fix:")[0]
            raise FileNotFoundError(f"--consensus {path}: {reason}; {MAKE_RUNS}") from None
        if mc is None:
            raise ValueError(
                f"expected consensus records of MC and a judge, got {path} without MC labels; "
                "fix: pass --consensus runs/<run>/labels/consensus/records.jsonl"
            )
        settings.append((path, mc))
    return settings


def rollouts_per_solution(mc: dict[str, Any]) -> float | None:
    """Rollouts the MC run spent per solution, from its ``usage.jsonl`` (None without one)."""
    if mc["records"] is None:
        return None
    usage = Path(mc["records"]).parent / "usage.jsonl"
    if not usage.exists():
        return None
    chunks = read_jsonl(usage)
    solutions = sum(chunk["solutions"] for chunk in chunks)
    return sum(chunk["rollouts"] for chunk in chunks) / solutions if solutions else None


def table(runs: list[tuple[dict[str, Any], list[LabelQuality]]]) -> str:
    """One row per MC and consensus labeller of every run, the judge's once."""
    lines = [
        "| MC run | rollouts / solution | labeller | retained | retention | first-error acc "
        "| step precision | step recall | RAWP | RAWP passed | RAWP share of positives |",
        "|---|---:|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(value: float | None, digits: int = 3) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    judges_done = False
    for mc, rows in runs:
        for row in rows:
            is_judge = row.labeller not in ("mc", "consensus")
            if is_judge and judges_done:
                continue
            spent = None if row.labeller != "mc" else rollouts_per_solution(mc)
            lines.append(
                f"| {'-' if is_judge else describe_mc(mc, short=True)} | {cell(spent, 2)} | "
                f"{row.labeller} | {row.retained}/{row.num_solutions} | {cell(row.retention)} | "
                f"{cell(row.first_error_accuracy)} | {cell(row.step_precision)} | "
                f"{cell(row.step_recall)} | {row.rawp} | {cell(row.rawp_passed)} | "
                f"{cell(row.positives_rawp_share)} |"
            )
        judges_done = True
    return "\n".join(lines)


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table in
    benchmarks/results/, not a run directory; it composes no config groups."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", default="runs/prm/samples/samples.jsonl")
    parser.add_argument(
        "--consensus",
        nargs="+",
        default=["runs/prm/labels/consensus/records.jsonl"],
        help="records of one or more consensus runs on the same samples (their MC runs differ)",
    )
    parser.add_argument("--limit", type=int, help="judge the first LIMIT samples only")
    parser.add_argument("--name", default="label_quality", help="results file name")
    args = parser.parse_args()
    if args.limit is not None and args.limit < 1:
        parser.error(
            f"expected --limit >= 1 (or no --limit: every sample), got {args.limit}; "
            "fix: e.g. --limit 8192"
        )
    try:
        settings = check_inputs(Path(args.samples), [Path(p) for p in args.consensus])
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    solutions = read_samples(Path(args.samples))[: args.limit]
    keys = {s.key for s in solutions}
    runs, soft, report = [], [], []
    for path, mc in settings:
        records = [LabelRecord.from_record(row) for row in read_jsonl(path)]
        # judge the solutions every run labelled (a run may cover the first `limit` only)
        labelled = {record.key for record in records}
        missing = [s.key for s in solutions if s.key not in labelled]
        if missing:
            raise ValueError(
                f"expected {path} to label all {len(solutions)} samples judged, got "
                f"{len(missing)} missing (first: {missing[0]}); fix: --limit to what every "
                "run labelled"
            )
        rows = quality_from_records(solutions, [r for r in records if r.key in keys], CHECKER)
        runs.append((mc, rows))
        entry: dict[str, Any] = {
            "consensus": str(path),
            "mc": {k: str(v) for k, v in mc.items()},
            "rollouts_per_solution": rollouts_per_solution(mc),
            "rows": [asdict(row) for row in rows],
        }
        if not mc["early_stop"] and mc["records"] is not None:
            mc_records = [LabelRecord.from_record(row) for row in read_jsonl(mc["records"])]
            profile = soft_label_profile(solutions, mc_records, CHECKER)
            soft.append(profile)
            entry["soft"] = asdict(profile)
        report.append(entry)
    models = sorted({f"`{mc['model']}`" for mc, _ in runs})
    lines = [
        f"{len(solutions)} policy solutions of arithmetic training problems, labelled by "
        f"Monte Carlo estimation (hard label: any of up to {runs[0][0]['num_rollouts']} "
        f"rollouts right; rolled out by {', '.join(models)}), by the calculator judge (checks "
        "each step's arithmetic only) and by their consensus; compared with the checker's true "
        "first error. MC run: full, all rollouts of every prefix; early stop, a prefix stops "
        "at its first right rollout, and a finished solution with the right answer is either "
        "trusted (all its steps right, no rollout) or rolled out like any other. RAWP: right "
        "answer, wrong process; RAWP passed: share of those labelled fully correct.",
        "",
        table(runs),
    ]
    if soft:
        lines += [
            "",
            "MC soft labels of the full MC run (share of the rollouts after a step that reach "
            "the gold answer) on the steps up to each solution's true first error. AUC: chance "
            "that a right step's soft label exceeds a first wrong step's (ties half).",
            "",
            *[soft_markdown(profile) for profile in soft],
        ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(report, indent=2))
    text = "\n".join(lines)
    (RESULTS / f"{args.name}.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
