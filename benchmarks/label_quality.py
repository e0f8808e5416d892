"""Label quality of MC, judge (calculator) and consensus labels against the arithmetic
world's ground-truth checker: the project's miniature of the paper's MC-vs-judge-vs-human
comparison (arXiv 2501.07301, section 3).

Reads the records that `make prm` (python -m prm.label ... report=true) wrote and prints one
table; it recomputes everything from the records, so it can run on any labelled samples:

    python benchmarks/label_quality.py [--samples runs/prm/samples/samples.jsonl]
        [--consensus runs/prm/labels/consensus/records.jsonl]

Writes benchmarks/results/label_quality.{json,md}.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prm.label.quality import markdown_table, quality_from_records, write_quality
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
    args = parser.parse_args()
    solutions = read_samples(Path(args.samples))
    records = [LabelRecord.from_record(row) for row in read_jsonl(Path(args.consensus))]
    # the labelling runs may cover the first `limit` samples only: judge those
    labelled = {record.key for record in records}
    solutions = [s for s in solutions if s.key in labelled]
    rows = quality_from_records(solutions, records, ArithChecker())
    RESULTS.mkdir(exist_ok=True)
    write_quality(RESULTS / "label_quality.json", rows)
    text = "\n".join(
        [
            f"{len(solutions)} policy solutions of arithmetic training problems, labelled by "
            "Monte Carlo estimation as `make prm` runs it (hard label: any of up to 8 rollouts "
            "right, early stop, rolled out by the verifier base), by the "
            "calculator judge (checks each step's arithmetic only) and by their consensus; "
            "compared with the checker's true first error. RAWP: right answer, wrong process; "
            "RAWP passed: share of those labelled fully correct.",
            "",
            markdown_table(rows),
        ]
    )
    (RESULTS / "label_quality.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
