"""Whether model directories, and the models result files were run with, hold the same weights
(the digest of ``search.resolve.weights_digest``): e.g. whether ``make prm`` rebuilt, byte for
byte, the PRM that was chosen on validation and read on test.

    python benchmarks/same_weights.py --name make_prm_identity \\
        --model "make prm=runs/prm-e2e20/export" \\
        --recorded "chosen=benchmarks/results/more_bf16/test/accuracy_vs_compute_test.json"

Writes benchmarks/results/{name}.{json,md}; exits 1 when the digests differ, so a script that
ships the rebuilt model stops there.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from search.resolve import weights_digest

RESULTS = Path(__file__).resolve().parent / "results"


def named(value: str, flag: str) -> tuple[str, str]:
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected {flag} NAME=PATH, got {value!r}")
    return name, path


def recorded_digest(path: Path) -> str | None:
    """The PRM digest a result file recorded (``args.prm_sha256`` of accuracy_vs_compute.py,
    ``prm_sha256`` of prm_processbench.py)."""
    report = json.loads(path.read_text())
    return report.get("args", {}).get("prm_sha256") or report.get("prm_sha256")


def compare(models: list[tuple[str, str]], recorded: list[tuple[str, str]]) -> dict[str, Any]:
    rows = [
        {"name": name, "path": path, "from": "weights", "digest": weights_digest(path)}
        for name, path in models
    ]
    for name, path in recorded:
        if not Path(path).is_file():
            raise FileNotFoundError(f"expected a result file at {path}, got none")
        rows.append(
            {"name": name, "path": path, "from": "recorded", "digest": recorded_digest(Path(path))}
        )
    missing = [row["name"] for row in rows if row["digest"] is None]
    if missing:
        raise ValueError(
            f"expected a digest for every entry, got none for {missing}; fix: name model "
            "directories with *.safetensors or *.bin files, and result files that record "
            "prm_sha256"
        )
    return {"rows": rows, "identical": len({row["digest"] for row in rows}) == 1}


def markdown(report: dict[str, Any]) -> str:
    lines = ["| name | path | digest of | weights digest |", "|---|---|---|---|"]
    lines += [
        f"| {row['name']} | `{row['path']}` | {row['from']} | `{row['digest']}` |"
        for row in report["rows"]
    ]
    verdict = "the same weights, byte for byte" if report["identical"] else "different weights"
    return "\n".join([*lines, "", f"All {len(report['rows'])}: {verdict}."])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True, help="results file name, no suffix")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--model", action="append", default=[], help="NAME=DIR, repeatable")
    parser.add_argument(
        "--recorded", action="append", default=[], help="NAME=RESULT_JSON, repeatable"
    )
    args = parser.parse_args()
    try:
        models = [named(value, "--model") for value in args.model]
        recorded = [named(value, "--recorded") for value in args.recorded]
        if len(models) + len(recorded) < 2:
            raise ValueError(
                f"expected at least two --model/--recorded entries, got "
                f"{len(models) + len(recorded)}; fix: name what to compare"
            )
        report = compare(models, recorded)
    except (argparse.ArgumentTypeError, ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    results: Path = args.results_dir
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{args.name}.json").write_text(json.dumps(report, indent=1))
    text = markdown(report)
    (results / f"{args.name}.md").write_text(text + "\n")
    print(text)
    if not report["identical"]:
        digests = ", ".join(f"{row['name']} {row['digest']}" for row in report["rows"])
        print(
            f"expected the same weights everywhere, got {digests}; fix: a model whose weights "
            "were not judged is judged (on validation) before it stands in for one that was",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
