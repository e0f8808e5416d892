"""Accuracy of the embedded policy on the arithmetic test split: the targets of the
foundation issue (single-sample accuracy at temperature 1.0 between 25% and 75%, pass@16 at
least 1.5 times that), with the error kinds the ground-truth checker finds.

    python benchmarks/policy_accuracy.py [--problems 500] [--samples 16] [--split test]

Writes benchmarks/results/policy_accuracy_<split>.json and a markdown table, printed and
written to policy_accuracy.md (the test split, which README shows) or
policy_accuracy_<split>.md (another split). pass@k: k = 1, 2, 4, ... and --samples.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from search.envs.arith.checker import ErrorKind, check_solution
from search.envs.arith.world import Split, make_split
from search.generators import build_generator
from search.metrics import k_values, pass_at_k
from search.types import Prefix, Until

RESULTS = Path(__file__).resolve().parent / "results"


def output_names(split: str) -> tuple[str, str]:
    """The (json, md) file names of a run on ``split``: the test split's md keeps its plain
    name (README's results section reads ``policy_accuracy.md``), another split's names carry
    the split, so a run on it does not overwrite the test table."""
    md = "policy_accuracy.md" if split == Split.test.value else f"policy_accuracy_{split}.md"
    return f"policy_accuracy_{split}.json", md


def pass_curve(correct_counts: list[int], n: int) -> dict[int, float]:
    """Mean pass@k over problems (``correct_counts[i]`` of ``n`` samples right) at k = 1, 2,
    4, ... and at ``n`` itself (``k_values``)."""
    return {
        k: sum(pass_at_k(n, c, k) for c in correct_counts) / len(correct_counts)
        for k in k_values(n)
    }


def render(report: dict[str, Any]) -> str:
    """The markdown of a run's ``report`` (a ratio without a value, e.g. pass@n over a single
    sample accuracy of 0, shows as ``-``)."""

    def cell(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    n = report["samples"]
    curve = report["pass_at_k"]
    kinds_text = ", ".join(f"{k} {v:.1%}" for k, v in report["error_kinds_share"].items())
    return "\n".join(
        [
            f"{report['problems']} problems of the {report['split']} split, {n} samples each "
            f"at temperature {report['temperature']} ({report['wall_s']:.0f} s).",
            "",
            f"| split | greedy | single sample (T=1) | pass@{n} | pass@{n} / single |",
            "|---|---|---|---|---|",
            f"| {report['split']} | {cell(report['greedy_accuracy'], '.3f')} | "
            f"{cell(report['single_sample_accuracy'], '.3f')} | {cell(curve[n], '.3f')} | "
            f"{cell(report['pass_at_n_over_single'], '.2f')} |",
            "",
            "pass@k: " + ", ".join(f"k={k}: {v:.3f}" for k, v in curve.items()),
            "",
            f"Samples by the checker's verdict: {kinds_text}; right answer with a wrong "
            f"process: {report['right_answer_wrong_process_share']:.1%}.",
        ]
    )


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table in
    benchmarks/results/, not a run directory; it composes no config groups."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--split", choices=[split.value for split in Split], default="test")
    parser.add_argument("--model", default="checkpoints/arith-policy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for flag, value in (("--problems", args.problems), ("--samples", args.samples)):
        if value < 1:  # before any model builds
            parser.error(f"expected {flag} >= 1, got {value}; fix: e.g. {flag} 16")

    problems = make_split(args.split, size=args.problems)
    policy: dict[str, Any] = {
        "max_tokens": 160,
        "dtype": "float32",
        "use_chat_template": False,
        "hf": {"batch_size": 1024},
    }
    generator = build_generator(args.model, seed=args.seed, temperature=1.0, **policy)
    greedy = build_generator(args.model, seed=args.seed, temperature=0.0, **policy)
    start = time.perf_counter()
    sampled = generator.generate([Prefix(p) for p in problems], args.samples, Until.end)
    greedy_out = greedy.generate([Prefix(p) for p in problems], 1, Until.end)
    wall_s = time.perf_counter() - start

    kinds: Counter[str] = Counter()
    correct_counts = []
    right_answer_wrong_process = 0
    total = 0
    for problem, generation in zip(problems, sampled, strict=True):
        correct = 0
        for continuation in generation.continuations:
            check = check_solution(problem, continuation.steps)
            correct += check.answer_correct
            total += 1
            right_answer_wrong_process += check.right_answer_wrong_process
            kinds[ErrorKind(check.kind).value if check.kind else "none"] += 1
        correct_counts.append(correct)
    greedy_correct = sum(
        check_solution(p, g.continuations[0].steps).answer_correct
        for p, g in zip(problems, greedy_out, strict=True)
    )
    n = args.samples
    single = sum(c / n for c in correct_counts) / len(problems)
    curve = pass_curve(correct_counts, n)
    report = {
        "split": args.split,
        "problems": len(problems),
        "samples": n,
        "temperature": 1.0,
        "greedy_accuracy": greedy_correct / len(problems),
        "single_sample_accuracy": single,
        "pass_at_k": curve,
        "pass_at_n_over_single": curve[n] / single if single else None,
        "error_kinds_share": {k: v / total for k, v in sorted(kinds.items())},
        "right_answer_wrong_process_share": right_answer_wrong_process / total,
        "wall_s": wall_s,
        "model": args.model,
    }
    text = render(report)
    json_name, md_name = output_names(args.split)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / json_name).write_text(json.dumps(report, indent=2))
    (RESULTS / md_name).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
