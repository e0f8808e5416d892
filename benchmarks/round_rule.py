"""Apply benchmarks/more_rounds.sh's rule to its validation results and print the choice.

    python benchmarks/round_rule.py --processbench benchmarks/results/prm_rounds_validation.json \
        --shipped shipped --candidate "shipped+1 round=benchmarks/results/rounds/round2" \
        --candidate "shipped+2 rounds=benchmarks/results/rounds/round3"

A candidate passes if its step F1 on the policy's validation solutions is at least the shipped
PRM's and its mean over the four PRM-guided rows at N=16 (best-of-16 argmax, best-of-16
weighted, beam@16, DVTS@16; min aggregation) is not lower than the shipped PRM's over the same
problems and seeds (the paired table ``accuracy_vs_compute_validation_paired.json`` in the
candidate's directory). Of those that pass, the higher four-row mean wins; a tie goes to the
candidate named first (fewer rounds). Writes ``--out`` (markdown) and prints it.

``--f1-tolerance POINTS`` and ``--mean-tolerance ACC`` loosen "at least" and "not lower" by
that much, for a parity check rather than a choice (``benchmarks/bf16_recipe.sh``: bfloat16
training against float32, ``--shipped`` naming the float32 PRM); the table says so.
``--parity`` sets both to that check's values (``PARITY_F1_POINTS``, ``PARITY_MEAN``), which
``benchmarks/make_prm_bf16.sh`` applies to ``make prm``'s rebuild against the shipped PRM.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

POLICY_SUBSET = "arith-validation-policy"
TOLERANCE = 1e-9  # means equal but for float rounding are a tie
# The parity check (bf16_recipe.sh, written before its numbers): step F1 at most 2.5 points
# below the reference's (the spread of two training seeds) and a four-row mean at most 0.015
# below (about one paired row's standard error at 200 problems x 2 seeds).
PARITY_F1_POINTS = 2.5
PARITY_MEAN = 0.015
FOUR_ROWS = (
    ("best_of_n/prm", 16),
    ("best_of_n/weighted", 16),
    ("beam", 16),
    ("dvts", 16),
)


def step_f1(processbench: dict[str, Any], name: str, subset_name: str = POLICY_SUBSET) -> float:
    """The PRM ``name``'s F1 on ``subset_name`` (default: the policy's own validation
    solutions)."""
    for prm in processbench["prms"]:
        if prm["name"] == name:
            for subset in prm["subsets"]:
                if subset["subset"] == subset_name and subset.get("f1") is not None:
                    return float(subset["f1"])
    names = [prm["name"] for prm in processbench["prms"]]
    raise SystemExit(f"expected a PRM named {name!r} with {subset_name}, got PRMs {names}")


def four_rows(paired: list[dict[str, Any]]) -> tuple[float, float, tuple[int, int]]:
    """Mean over the four rows of the OLD (shipped) and NEW (candidate) PRM, and the
    (problems, seeds) they were paired over (the same for all four, or an error)."""
    old, new = [], []
    sizes = set()
    for strategy, n in FOUR_ROWS:
        rows = [
            row
            for row in paired
            if row["strategy"] == strategy and row["n"] == n and row["aggregation"] == "min"
        ]
        if len(rows) != 1:
            raise SystemExit(
                f"expected one {strategy} N={n} min row in the paired table, got {len(rows)}; "
                "fix: rerun the script that wrote it (more_rounds.sh, bf16_recipe.sh, "
                "make_prm_bf16.sh)"
            )
        old.append(float(rows[0]["old"]))
        new.append(float(rows[0]["new"]))
        sizes.add((int(rows[0]["problems"]), int(rows[0]["seeds"])))
    if len(sizes) != 1:
        raise SystemExit(
            f"expected the four rows paired over the same problems and seeds, got {sorted(sizes)};"
            " fix: rerun the script that wrote them (more_rounds.sh, bf16_recipe.sh, "
            "make_prm_bf16.sh)"
        )
    return sum(old) / len(old), sum(new) / len(new), sizes.pop()


def rule_passes(
    f1: float,
    mean: float,
    shipped_f1: float,
    shipped_mean: float,
    f1_points: float = 0.0,
    mean_tolerance: float = 0.0,
) -> bool:
    """The rule: step F1 (a fraction) at least the shipped PRM's less ``f1_points`` (points), and
    a four-row mean not lower than the shipped PRM's less ``mean_tolerance``."""
    return (
        f1 >= shipped_f1 - f1_points / 100 - TOLERANCE
        and mean >= shipped_mean - mean_tolerance - TOLERANCE
    )


def parse_candidates(
    parser: argparse.ArgumentParser, specs: list[str], shipped: str
) -> list[tuple[str, str]]:
    """``NAME=DIR`` pairs: each named once, none named as the shipped PRM."""
    pairs = []
    for spec in specs:
        name, sign, directory = spec.partition("=")
        if not sign or not name or not directory:
            example = '"shipped+1 round=benchmarks/results/rounds/round2"'
            parser.error(f"expected --candidate NAME=DIR, got {spec!r}; fix: e.g. {example}")
        pairs.append((name, directory))
    names = [name for name, _ in pairs]
    if shipped in names or len(set(names)) != len(names):
        parser.error(
            f"expected candidate names distinct from each other and from --shipped "
            f"{shipped!r}, got {names}; fix: name each PRM once"
        )
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processbench", type=Path, required=True)
    parser.add_argument("--shipped", required=True, help="the shipped PRM's name in it")
    parser.add_argument(
        "--candidate", action="append", required=True, help="NAME=DIR of its paired table"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/rounds/choice.md"))
    parser.add_argument("--f1-tolerance", type=float, help="step F1 points (default 0)")
    parser.add_argument("--mean-tolerance", type=float, help="four-row mean (default 0)")
    parser.add_argument(
        "--parity",
        action="store_true",
        help=f"the parity check: --f1-tolerance {PARITY_F1_POINTS} --mean-tolerance {PARITY_MEAN}",
    )
    args = parser.parse_args()
    if args.parity:
        if args.f1_tolerance is not None or args.mean_tolerance is not None:
            parser.error(
                "expected --parity or the tolerances, got both; fix: --parity alone (the "
                f"values {PARITY_F1_POINTS} and {PARITY_MEAN}) or the two tolerances"
            )
        args.f1_tolerance, args.mean_tolerance = PARITY_F1_POINTS, PARITY_MEAN
    args.f1_tolerance = args.f1_tolerance or 0.0
    args.mean_tolerance = args.mean_tolerance or 0.0
    if args.f1_tolerance < 0 or args.mean_tolerance < 0:
        parser.error(
            f"expected tolerances >= 0, got --f1-tolerance {args.f1_tolerance} and "
            f"--mean-tolerance {args.mean_tolerance}; fix: 0 (the rule as written) or more"
        )
    candidates = parse_candidates(parser, args.candidate, args.shipped)
    if not args.processbench.is_file():
        parser.error(
            f"expected --processbench to name a file, got {args.processbench}; fix: the "
            "prm_rounds_validation.json that benchmarks/more_rounds.sh writes"
        )
    processbench = json.loads(args.processbench.read_text())
    shipped_f1 = step_f1(processbench, args.shipped)
    shipped_mean: float | None = None
    size: tuple[int, int] | None = None
    best: tuple[float, str] | None = None
    rows, passing = [], []
    for name, directory in candidates:
        paired_file = Path(directory) / "accuracy_vs_compute_validation_paired.json"
        if not paired_file.is_file():
            raise SystemExit(
                f"expected {paired_file}, got none; fix: run the script that writes it "
                "(more_rounds.sh, bf16_recipe.sh, make_prm_bf16.sh)"
            )
        old, new, paired_over = four_rows(json.loads(paired_file.read_text()))
        if shipped_mean is not None and (abs(old - shipped_mean) > 1e-12 or paired_over != size):
            raise SystemExit(
                f"expected every paired table to share the shipped PRM's rows, got four-row "
                f"means {shipped_mean} and {old} over (problems, seeds) {size} and {paired_over}; "
                "fix: pair every candidate with the same table of the shipped PRM"
            )
        shipped_mean, size = old, paired_over
        f1 = step_f1(processbench, name)
        passes = rule_passes(f1, new, shipped_f1, old, args.f1_tolerance, args.mean_tolerance)
        rows.append(f"| {name} | {100 * f1:.1f} | {new:.4f} | {'yes' if passes else 'no'} |")
        passing += [name] if passes else []
        if passes and (best is None or new > best[0] + TOLERANCE):
            best = (new, name)
    assert size is not None  # argparse requires a candidate
    parity = bool(args.f1_tolerance or args.mean_tolerance)
    role = "reference" if parity else "shipped"  # a parity check has no shipped PRM
    lines = [
        "Validation split. Step F1: the policy's own solutions (%). Four-row mean: best-of-16 "
        "argmax, best-of-16 weighted, beam@16 and DVTS@16 (min aggregation), "
        f"{size[0]} problems × {size[1]} seeds, paired with the {role} PRM.",
        *(
            [
                "",
                f"A parity check: a PRM passes with step F1 at most {args.f1_tolerance:g} points "
                f"below the reference PRM's and a four-row mean at most "
                f"{args.mean_tolerance:g} below.",
            ]
            if parity
            else []
        ),
        "",
        "| PRM | step F1 | four-row mean | passes |",
        "|---|---:|---:|---|",
        f"| {args.shipped} | {100 * shipped_f1:.1f} | {shipped_mean:.4f} | ({role}) |",
        *rows,
    ]
    if parity:
        lines += ["", f"Parity: {', '.join(passing) + ' passes' if passing else 'none passes'}."]
    else:
        lines += ["", f"Choice: {best[1] if best else args.shipped + ' (no candidate passes)'}."]
    text = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
