"""Label quality of MC, judge (calculator) and consensus labels against the arithmetic
world's ground-truth checker: the project's miniature of the paper's MC-vs-judge-vs-human
comparison (arXiv 2501.07301, section 3).

Reads the records that `make prm` (python -m prm.label ... report=true) wrote and prints one
table; it recomputes everything from the records, so it can run on any labelled samples.
With the records of a full-mode MC run (``labeller.early_stop=false``), a second table says how
well MC's soft labels (share of right rollouts) separate right steps from first errors:

    python benchmarks/label_quality.py [--samples runs/prm/samples/samples.jsonl]
        [--consensus runs/prm/labels/consensus/records.jsonl] [--name label_quality]

Writes benchmarks/results/<name>.{json,md}. The caption describes the MC run from the
``fingerprint.json`` the labelling CLI leaves beside the consensus records.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prm.label.quality import (
    describe_mc,
    markdown_table,
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


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table in
    benchmarks/results/, not a run directory; it composes no config groups."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", default="runs/prm/samples/samples.jsonl")
    parser.add_argument("--consensus", default="runs/prm/labels/consensus/records.jsonl")
    parser.add_argument("--name", default="label_quality", help="results file name")
    args = parser.parse_args()
    consensus = Path(args.consensus)
    mc = mc_run(consensus)
    if mc is None:
        raise ValueError(
            f"expected consensus records of MC and a judge, got {consensus} without MC labels; "
            "fix: pass --consensus runs/<run>/labels/consensus/records.jsonl"
        )
    solutions = read_samples(Path(args.samples))
    records = [LabelRecord.from_record(row) for row in read_jsonl(consensus)]
    # the labelling runs may cover the first `limit` samples only: judge those
    labelled = {record.key for record in records}
    solutions = [s for s in solutions if s.key in labelled]
    rows = quality_from_records(solutions, records, ArithChecker())
    rollouts = mc["num_rollouts"]
    lines = [
        f"{len(solutions)} policy solutions of arithmetic training problems, labelled by "
        f"Monte Carlo estimation (hard label: {describe_mc(mc)}, rolled out by "
        f"`{mc['model']}`), by the calculator judge (checks each step's arithmetic only) "
        "and by their consensus; "
        "compared with the checker's true first error. RAWP: right answer, wrong process; "
        "RAWP passed: share of those labelled fully correct.",
        "",
        markdown_table(rows),
    ]
    report: dict[str, Any] = {"rows": [asdict(row) for row in rows]}
    if not mc["early_stop"]:
        mc_records = [LabelRecord.from_record(row) for row in read_jsonl(mc["records"])]
        profile = soft_label_profile(solutions, mc_records, ArithChecker())
        report["soft"] = asdict(profile)
        lines += [
            "",
            f"MC soft labels (share of the {rollouts} rollouts after a step that reach the gold "
            "answer) on the steps up to each solution's true first error. AUC: chance that a "
            "right step's soft label exceeds a first wrong step's (ties half).",
            "",
            soft_markdown(profile),
        ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(report, indent=2))
    text = "\n".join(lines)
    (RESULTS / f"{args.name}.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
