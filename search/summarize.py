"""One table across runs: a sweep's jobs (or any run directories) side by side.

Every ``metrics.json`` found under the given directories becomes one row: strategy, N,
selection rule, aggregation, every other setting in which the runs differ (from each run's
``fingerprint.json``: a sweep's swept keys, a dataset, a model, a seed), accuracy of every
selection rule, pass@N, policy and PRM tokens per problem, and wall time. Written beside them
as ``summary.md``, ``summary.csv`` and ``summary.png`` (accuracy against policy tokens per
problem, one line per strategy, aggregation, selection rule and differing setting, so runs
on two datasets never make one curve)::

    python -m search.summarize multirun/search/2026-11-30_01-00-00
    python -m search.summarize outputs/a outputs/b --out comparison/

After ``python -m search -m ...`` the sweep directory gets the same files automatically
(``SweepSummary``, a Hydra callback in ``conf/config.yaml``).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
FINGERPRINT_FILE = "fingerprint.json"
# settings the fixed columns already show
SHOWN = {"strategy.name", "strategy.n", "strategy.select", "aggregation"}
# settings whose difference makes rows incomparable, not a sweep over one comparison
ACROSS = ("dataset", "policy.model", "scorer.model", "seed")
FIXED_COLUMNS = (
    "run",
    "strategy",
    "n",
    "select",
    "aggregation",
    "problems",
    "accuracy",
)
TAIL_COLUMNS = (
    "pass@n",
    "finished share",
    "policy tokens/problem",
    "prm tokens/problem",
    "wall s",
)
# the decimals each numeric column is shown with (accuracies and shares: 3)
DECIMALS = {"policy tokens/problem": 0, "prm tokens/problem": 0, "wall s": 1}


@dataclass(frozen=True)
class Summary:
    """Rows (one per run, sorted by strategy, aggregation, N) and their column names."""

    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    varied: tuple[str, ...] = ()  # settings in which the runs differ (columns too)


def find_runs(directories: Sequence[Path]) -> list[Path]:
    """Every ``metrics.json`` at or under ``directories``, sorted, each once."""
    found: set[Path] = set()
    for directory in directories:
        if not directory.exists():
            raise FileNotFoundError(
                f"expected a run or sweep directory, got no such path: {directory}; fix: pass "
                "the directory Hydra printed (outputs/... or multirun/...)"
            )
        found.update(path.resolve() for path in directory.rglob(METRICS_FILE))
    return sorted(found)


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix: json.dumps(node) if isinstance(node, list) else node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def run_settings(metrics_path: Path) -> dict[str, Any]:
    """The run's settings (its ``fingerprint.json``) as dotted keys; empty without one."""
    path = metrics_path.parent / FINGERPRINT_FILE
    try:
        settings = json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}
    return _flatten(settings) if isinstance(settings, dict) else {}


def differing(settings: Sequence[dict[str, Any]]) -> list[str]:
    """The keys whose values differ between runs (missing counts as a value), sorted, less
    those the fixed columns show."""
    keys = sorted({key for one in settings for key in one} - SHOWN)
    return [key for key in keys if len({json.dumps(one.get(key)) for one in settings}) > 1]


def _per_problem(total: Any, problems: int) -> float | None:
    return None if total is None or not problems else total / problems


def summarize(metrics_paths: Sequence[Path], root: Path | None = None) -> Summary:
    """The table of the runs whose ``metrics.json`` files are given. ``run`` is each file's
    directory relative to ``root`` (or its name)."""
    if not metrics_paths:
        raise ValueError(
            "expected at least one metrics.json, got none; fix: point at a directory that "
            "holds finished runs (a run writes metrics.json when it ends)"
        )
    rules: list[str] = []
    rows = []
    settings = [run_settings(path) for path in metrics_paths]
    varied = differing(settings)
    across = [key for key in varied if key.startswith(ACROSS)]
    if across:
        log.warning(
            "the runs differ in %s: each is its own column, and no curve joins runs that "
            "differ in them",
            ", ".join(across),
        )
    for path, setting in zip(metrics_paths, settings, strict=True):
        metrics = json.loads(path.read_text())
        by_rule = metrics.get("accuracy_by_rule") or {}
        rules += [rule for rule in by_rule if rule not in rules]
        problems = int(metrics.get("num_problems") or 0)
        directory = path.parent
        name = str(directory.relative_to(root)) if root is not None else directory.name
        rows.append(
            {
                "run": name or ".",
                "strategy": metrics.get("strategy"),
                "n": metrics.get("n"),
                "select": metrics.get("select"),
                "aggregation": metrics.get("aggregation"),
                **{key: setting.get(key) for key in varied},
                "problems": problems,
                "accuracy": metrics.get("accuracy"),
                **{f"acc {rule}": value for rule, value in by_rule.items()},
                "pass@n": metrics.get("pass_at_n"),
                "finished share": metrics.get("finished_share"),
                "policy tokens/problem": _per_problem(metrics.get("policy_tokens"), problems),
                "prm tokens/problem": _per_problem(metrics.get("prm_tokens"), problems),
                "wall s": metrics.get("wall_s"),
            }
        )
    rows.sort(
        key=lambda r: (
            str(r["strategy"]),
            str(r["aggregation"]),
            *(str(r.get(key)) for key in varied),
            r["n"] or 0,
            r["run"],
        )
    )
    fixed = (*FIXED_COLUMNS[:5], *varied, *FIXED_COLUMNS[5:])
    columns = (*fixed, *(f"acc {rule}" for rule in rules), *TAIL_COLUMNS)
    return Summary(columns, tuple(rows), tuple(varied))


def _cell(column: str, value: Any) -> str:
    """One column's numbers all with the same decimals (``DECIMALS``, else 3 for floats)."""
    if value is None:
        return "-"
    if isinstance(value, float) or (column in DECIMALS and isinstance(value, int)):
        return f"{value:.{DECIMALS.get(column, 3)}f}"
    return str(value)


def to_markdown(summary: Summary) -> str:
    lines = [
        "| " + " | ".join(summary.columns) + " |",
        "|" + "---|" * len(summary.columns),
    ]
    for row in summary.rows:
        lines.append("| " + " | ".join(_cell(c, row.get(c)) for c in summary.columns) + " |")
    return "\n".join(lines)


def write_csv(summary: Summary, path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(summary.columns))
        writer.writeheader()
        for row in summary.rows:
            writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in summary.columns})


def plot(summary: Summary, path: Path) -> bool:
    """Accuracy against policy tokens per problem, one line per (strategy, aggregation).
    Returns False (and says why) when no row has both numbers."""
    points: dict[str, list[tuple[float, float]]] = {}
    for row in summary.rows:
        tokens, accuracy = row.get("policy tokens/problem"), row.get("accuracy")
        if tokens is None or accuracy is None:
            continue
        label = " / ".join(
            [
                f"{row['strategy']} / {row['aggregation']} / {row['select']}",
                *(f"{key}={row.get(key)}" for key in summary.varied),
            ]
        )
        points.setdefault(label, []).append((float(tokens), float(accuracy)))
    if not points:
        log.warning("no run has both accuracy and policy tokens; %s not drawn", path)
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, xy in sorted(points.items()):
        xy.sort()
        ax.plot([x for x, _ in xy], [y for _, y in xy], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("policy tokens per problem")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # long labels: beside
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return True


def write_summary(directories: Sequence[Path], out: Path) -> Summary:
    """Summarise every run under ``directories`` into ``out/summary.{md,csv,png}``."""
    paths = find_runs(directories)
    root = directories[0].resolve() if len(directories) == 1 else None
    summary = summarize(paths, root=root)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(to_markdown(summary) + "\n")
    write_csv(summary, out / "summary.csv")
    plot(summary, out / "summary.png")
    return summary


class SweepSummary(Callback):
    """Hydra callback: after a multirun, the summary of its jobs in the sweep directory."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.exists():
            return  # no job ran (e.g. --cfg)
        try:
            paths = find_runs([sweep_dir])
        except FileNotFoundError:
            return
        if not paths:
            log.warning("no job of the sweep in %s wrote metrics.json; no summary", sweep_dir)
            return
        summary = write_summary([sweep_dir], sweep_dir)
        print(to_markdown(summary))
        print(f"sweep summary: {sweep_dir / 'summary.md'} (.csv, .png)")


def main(argv: Sequence[str] | None = None) -> None:
    """argparse, not Hydra: it reads run directories given on the command line and composes
    no config groups; a Hydra app would make a run directory of its own."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directories", nargs="+", type=Path, help="run or sweep directories")
    parser.add_argument(
        "--out", type=Path, default=None, help="where to write (default: the one directory)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    out = args.out
    if out is None:
        if len(args.directories) > 1:
            parser.error("with several directories, say where to write: --out DIR")
        out = args.directories[0]
    try:
        summary = write_summary(args.directories, out)
    except (FileNotFoundError, ValueError) as error:  # said in one line, as every entry point
        parser.exit(2, f"error: {error}\n")
    print(to_markdown(summary))
    print(f"written: {out / 'summary.md'}, {out / 'summary.csv'}, {out / 'summary.png'}")


if __name__ == "__main__":
    main()
