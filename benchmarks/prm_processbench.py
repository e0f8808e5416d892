"""Step-error identification of a PRM on the arithmetic world, in ProcessBench's format.

Three subsets with true labels from the ground-truth checker: solutions the policy wrote for
the test split, for the held-out hard split (longer chains), and gold solutions corrupted on
purpose (slips, wrong operands, skipped steps). The predicted label is the first step whose
score falls below the threshold; F1 is the harmonic mean of the accuracy on erroneous and on
correct solutions. Also the paper's diagnostic: the share of solutions whose minimum step
score falls on the final step.

With ``--split validation`` the policy and corrupted subsets come from the validation split and
the hard subset is left out: that is the yardstick for choosing between PRM recipes, so that
the test split is read once per recipe.

    python benchmarks/prm_processbench.py [--prm checkpoints/arith-prm] [--count 400] \
        [--split test|validation] [--name prm_processbench]
    python benchmarks/prm_processbench.py --split validation --name prm_recipes_validation \
        --prm shipped=checkpoints/arith-prm rebuilt=runs/prm/export   # one table, a PRM column

Writes benchmarks/results/{name}.{json,md}.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prm.processbench import (
    comparison_table,
    evaluate_subset,
    f1_table,
    load_subset,
    markdown_table,
    mean_f1,
)
from prm.scoring import build_scorer
from prm.scoring.factory import scorer_plan
from search.envs.arith.export import ExportConfig, Source, export_processbench
from search.envs.arith.world import Split
from search.metrics import min_on_final_step_share
from search.resolve import REPO_ROOT, local_model_dir, resolve_model_path, weights_digest

RESULTS = Path(__file__).resolve().parent / "results"


def subsets(split: Split, count: int, policy: dict[str, Any]) -> list[tuple[str, ExportConfig]]:
    """The named ProcessBench subsets scored for ``split`` (test or validation)."""
    if split not in (Split.test, Split.validation):
        raise ValueError(
            f"expected split 'test' or 'validation', got {split.value!r}; "
            "fix: pass --split test to report, --split validation to choose a recipe"
        )
    chosen = [
        (
            f"arith-{split.value}-policy",
            ExportConfig(source=Source.policy, split=split, count=count, policy=policy),
        )
    ]
    if split is Split.test:
        chosen.append(
            (
                "arith-hard-policy",
                ExportConfig(source=Source.policy, split=Split.hard, count=count, policy=policy),
            )
        )
    chosen.append(
        (
            f"arith-{split.value}-corrupt",
            ExportConfig(source=Source.corrupt, split=split, count=count),
        )
    )
    return chosen


def named_prms(entries: list[str]) -> list[tuple[str, str]]:
    """``--prm`` entries, each ``PATH`` or ``NAME=PATH``, as (name, path); names must differ."""
    named = [
        (entry.split("=", 1)[0], entry.split("=", 1)[1]) if "=" in entry else (entry, entry)
        for entry in entries
    ]
    names = [name for name, _ in named]
    if len(set(names)) != len(names) or not all(name and path for name, path in named):
        raise ValueError(
            f"expected --prm entries PATH or NAME=PATH with distinct names, got {entries}; "
            "fix: name each PRM, e.g. --prm shipped=checkpoints/arith-prm new=runs/prm/export"
        )
    return named


WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def check_prm(name: str, path: str) -> None:
    """Refuse, before any subset is exported, a ``--prm`` that is no PRM checkpoint: a local
    folder must hold ``config.json`` and weights, and ``scorer_plan`` must accept it for this
    script's scorer (a token-classification PRM on the hf backend); a name that is no local
    folder must be a hub model this machine can load."""
    entry = path if name == path else f"{name}={path}"
    fix = (
        "fix: pass a PRM checkpoint folder, e.g. checkpoints/arith-prm or a prm.train export "
        "(`make prm` writes one)"
    )
    directory = local_model_dir(path)
    if directory is None:
        if Path(path).expanduser().exists():  # a file, not a folder
            raise ValueError(f"expected --prm {entry} to be a checkpoint folder, got a file; {fix}")
        try:
            resolve_model_path(path, key="--prm")  # a hub name: cached, or the hub reachable
        except (FileNotFoundError, ConnectionError):
            bases = " or ".join(map(str, dict.fromkeys([Path.cwd().resolve(), REPO_ROOT])))
            raise ValueError(
                f"expected --prm {entry} to be a PRM checkpoint, got no such folder (from "
                f"{bases}) and no hub model of that name this machine can load; {fix}"
            ) from None
    else:
        missing = [
            what
            for what, present in (
                ("config.json", (directory / "config.json").is_file()),
                (" or ".join(WEIGHTS), any((directory / w).is_file() for w in WEIGHTS)),
            )
            if not present
        ]
        if missing:
            raise ValueError(
                f"expected --prm {entry} to be a checkpoint folder with config.json and "
                f"weights, got {directory} without {' and '.join(missing)}; {fix}"
            )
    try:
        scorer_plan(path, backend="hf")
    except ValueError as error:
        raise ValueError(f"--prm {entry}: {error}") from None


def evaluate(
    prms: list[tuple[str, str]],
    count: int,
    workdir: Path,
    threshold: float,
    split: Split = Split.test,
) -> list[dict[str, Any]]:
    """Every PRM of ``prms`` scored on the same exported subsets (the policy writes them once):
    per PRM its name, path, subset results and diagnostics."""
    policy = {
        "_target_": "search.generators.build_generator",
        "model": "checkpoints/arith-policy",
        "max_tokens": 160,
        "dtype": "float32",
        "use_chat_template": False,
    }
    exported = []
    for name, config in subsets(split, count, policy):
        config.output = str(workdir / f"{name}.json")
        path, summary = export_processbench(config)
        exported.append((name, load_subset(path), summary))
    scored = []
    for label, prm in prms:
        scorer = build_scorer(model=prm, backend="hf")
        results = []
        diagnostics: dict[str, Any] = {}
        for name, samples, summary in exported:
            result, predictions = evaluate_subset(
                name, samples, scorer, threshold=threshold, batch_size=128
            )
            results.append(result)
            diagnostics[name] = {
                "export": summary,
                "min_on_final_step_share": min_on_final_step_share(
                    [p["step_scores"] for p in predictions]
                ),
            }
        scored.append({"name": label, "prm": prm, "results": results, "diagnostics": diagnostics})
        del scorer
    return scored


def final_share_line(diagnostics: dict[str, Any]) -> str:
    share = {k: v["min_on_final_step_share"] for k, v in diagnostics.items()}
    return ", ".join(f"{k} {v:.1%}" for k, v in share.items() if v is not None)


def report_of(
    scored: list[dict[str, Any]], arguments: dict[str, Any], digests: dict[str, str | None]
) -> tuple[dict[str, Any], str]:
    """The results file's content and its markdown, for one PRM or several (``digests``: each
    PRM path's weights digest, which the report records beside the path)."""
    legend = (
        "accuracies and F1 in %. "
        "RAWP flagged: share of right-answer-wrong-process solutions the PRM flags."
    )
    if len(scored) == 1:
        (only,) = scored
        table = markdown_table(only["results"])
        digest = digests[only["prm"]]
        lines = [
            f"PRM `{only['prm']}` (weights {digest}), {arguments['split']} split, threshold "
            f"{arguments['threshold']}; {legend}",
            "",
            table,
            "",
            "Share of solutions whose minimum step score is on the final step: "
            + final_share_line(only["diagnostics"]),
        ]
        report: dict[str, Any] = {
            "args": arguments,
            "prm_sha256": digest,
            "subsets": [asdict(r) for r in only["results"]],
            "mean_f1": mean_f1(only["results"]),
            "diagnostics": only["diagnostics"],
            "table": table,
        }
    else:
        named = [(entry["name"], entry["results"]) for entry in scored]
        table = comparison_table(named)
        lines = [
            f"{arguments['split'].capitalize()} split, threshold {arguments['threshold']}, the "
            f"same exported solutions for every PRM; {legend}",
            "",
            f1_table(named),
            "",
            "<details><summary>Per subset: accuracies and RAWP flagged</summary>",
            "",
            table,
            "",
            "</details>",
            "",
            "PRMs: " + ", ".join(f"{entry['name']} `{entry['prm']}`" for entry in scored) + ".",
            "",
            "Share of solutions whose minimum step score is on the final step: "
            + "; ".join(
                f"{entry['name']}: {final_share_line(entry['diagnostics'])}" for entry in scored
            ),
        ]
        report = {
            "args": arguments,
            "prms": [
                {
                    "name": entry["name"],
                    "prm": entry["prm"],
                    "prm_sha256": digests[entry["prm"]],
                    "subsets": [asdict(r) for r in entry["results"]],
                    "mean_f1": mean_f1(entry["results"]),
                    "diagnostics": entry["diagnostics"],
                }
                for entry in scored
            ],
            "table": table,
        }
    return report, "\n".join(lines)


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table in
    benchmarks/results/, not a run directory; it composes no config groups."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--prm",
        nargs="+",
        default=["checkpoints/arith-prm"],
        help="one or more PRMs, each PATH or NAME=PATH: several share one export, one table",
    )
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--workdir", default="runs/processbench")
    parser.add_argument(
        "--split",
        choices=[Split.test.value, Split.validation.value],
        default=Split.test.value,
        help="validation: choose between recipes there; test: report once per recipe",
    )
    parser.add_argument(
        "--name",
        default=None,
        help="results file name, no suffix (prm_processbench, or prm_processbench_<split> "
        "for another split than test)",
    )
    args = parser.parse_args()
    if args.count < 1:
        parser.error(f"expected --count >= 1, got {args.count}; fix: e.g. --count 400")
    if not 0.0 <= args.threshold <= 1.0:
        parser.error(f"expected 0 <= --threshold <= 1, got {args.threshold}; fix: --threshold 0.5")
    if args.name is None:  # a validation run does not overwrite the test results
        args.name = "prm_processbench" + ("" if args.split == "test" else f"_{args.split}")
    try:
        prms = named_prms(args.prm)
        for name, path in prms:  # before the policy exports any subset
            check_prm(name, path)
    except ValueError as error:
        parser.error(str(error))
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # the weights each PRM is read from, taken before any is loaded (a report names them)
    digests = {path: weights_digest(local_model_dir(path) or path) for _, path in prms}
    scored = evaluate(prms, args.count, workdir, args.threshold, Split(args.split))
    report, text = report_of(scored, vars(args), digests)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(report, indent=2))
    (RESULTS / f"{args.name}.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
