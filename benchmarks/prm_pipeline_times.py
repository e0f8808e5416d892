"""What each stage of `make prm` cost on this machine, read from the files the stages wrote
(their metrics.json and each training round's log), so the figures in README are the run's own.

    python benchmarks/prm_pipeline_times.py [--run runs/prm]
    python benchmarks/prm_pipeline_times.py --run runs/prm-timed --name prm_pipeline_timed

Writes benchmarks/results/{name}.{json,md} (``prm_pipeline`` by default).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(f"expected {path} from `make prm`, got no file; fix: run it")
    return dict(json.loads(path.read_text()))


def hydra_to_log_seconds(log_path: Path) -> float | None:
    """A training stage run by hand rather than by build_prm.sh: from the start time in the
    name of its first Hydra run directory to the time its training log was written."""
    starts = sorted((log_path.parent / "hydra").glob("*"))
    if not starts:
        return None
    began = datetime.strptime(starts[0].name, "%Y-%m-%d_%H-%M-%S").replace(tzinfo=UTC)
    return log_path.stat().st_mtime - began.timestamp()


def labels_run(run: Path) -> Path:
    """The run directory whose samples and labels ``run`` trained on: ``run`` itself, or, for
    a run of the training rounds alone (no ``samples/`` of its own), the run that holds its
    first round's ``train_data`` (``RUN/labels/consensus/stepwise.jsonl``)."""
    if (run / "samples").exists():
        return run
    data = Path(read(run / "model" / "training_log.json")["config"]["train_data"])
    if len(data.parents) < 3 or data.parents[1].name != "labels":
        raise SystemExit(
            f"expected {run}/samples, or training data under another run's labels/ (RUN/labels/"
            f"consensus/stepwise.jsonl), got neither (train_data={data}); fix: --run the "
            "directory that `make prm` or benchmarks/build_prm.sh wrote"
        )
    return data.parents[2]


def stage_seconds(path: Path) -> dict[str, int]:
    """``STAGE name SECONDS n`` lines of benchmarks/build_prm.sh, summed over resumed runs
    of the same stage (every stage resumes where an earlier run stopped)."""
    seconds: dict[str, int] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] == "STAGE" and parts[2] == "SECONDS":
                seconds[parts[1]] = seconds.get(parts[1], 0) + int(parts[3])
    return seconds


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table in
    benchmarks/results/, not a run directory; it composes no config groups."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="runs/prm")
    parser.add_argument("--name", default="prm_pipeline", help="results file name, no suffix")
    args = parser.parse_args()
    run = Path(args.run)
    times = stage_seconds(run / "stages.log")
    source = labels_run(run)
    # a run of the training rounds alone (build_prm.sh STAGES=train): its sampling and
    # labelling rows are those of the run whose labels it trained on, with that run's times
    label_times = times if source == run else stage_seconds(source / "stages.log")
    sample = read(source / "samples" / "metrics.json")
    rows: list[dict[str, Any]] = [
        {
            "stage": "sample",
            "command": f"python -m prm.sample count={sample['num_problems']} "
            f"num_samples={sample['num_samples']}",
            "seconds": label_times.get("sample", sample["wall_s_this_run"]),
            "detail": f"{sample['num_solutions']} solutions, "
            f"{sample['generated_tokens']} tokens, answer accuracy "
            f"{sample['answer_accuracy']:.3f}",
        }
    ]
    for name in ("mc", "calculator", "consensus"):
        metrics = read(source / "labels" / name / "metrics.json")
        usage = metrics.get("usage", {})
        detail = (
            f"{metrics['num_labelled']} of {metrics['num_solutions']} solutions labelled, "
            f"{metrics['num_steps']} steps"
        )
        if usage.get("rollouts"):
            detail += f", {usage['rollouts']} rollouts, {usage['rollout_tokens']} rollout tokens"
        rows.append(
            {
                "stage": f"label {name}",
                "command": f"python -m prm.label labeller={name}"
                + (f" limit={limit}" if (limit := metrics["config"].get("limit")) else "")
                + (
                    f" policy.backend={metrics['config']['policy']['backend']}"
                    if usage.get("rollouts")
                    else ""
                ),
                "seconds": label_times.get(name),
                "detail": detail,
            }
        )
    rounds = sorted(run.glob("refine*/training_log.json"), key=lambda p: int(p.parent.name[6:]))
    for name, log_path in [("train", run / "model" / "training_log.json")] + [
        (path.parent.name, path) for path in rounds
    ]:
        train = read(log_path)
        config = train["config"]
        start = config["policy_dir"] if name == "train" else "the previous round"
        last = train["history"][-1]
        val_f1 = last.get("val_f1")
        # a log rewritten by a rerun before prm.train kept finished runs could stop short of
        # the last epoch's validation: say which epoch the figure is from when it is not the last
        short = "" if last.get("epoch") == config["epochs"] else f" (after epoch {last['epoch']:g})"
        rows.append(
            {
                "stage": name,
                "command": f"python -m prm.train epochs={config['epochs']} "
                f"learning_rate={config['learning_rate']}"
                + "".join(
                    f" {key}=true" for key in ("group_by_length", "pack", "bf16") if config.get(key)
                ),
                "seconds": times.get(name, hydra_to_log_seconds(log_path)),
                "detail": f"from {start}: {train['num_train']} training solutions, "
                f"{train['total_steps']} steps, validation step-error F1 "
                f"{'-' if val_f1 is None else f'{val_f1:.3f}'}{short}",
            }
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(rows, indent=2))
    lines = [
        "Wall seconds on this machine's 2 CPU cores, shared with whatever else ran at the time "
        "(`STAGE` lines of benchmarks/build_prm.sh, summed over resumed runs, else the stage's "
        "own metrics)."
        + (
            f" The training rounds alone ran in `{run}` (STAGES=train), on the labels of "
            f"`{source}`: the first four rows and their seconds are that run's."
            if source != run
            else ""
        ),
        "",
        "| stage | command | seconds | what |",
        "|---|---|---:|---|",
    ]
    for row in rows:
        seconds = "-" if row["seconds"] is None else f"{row['seconds']:.0f}"
        lines.append(f"| {row['stage']} | `{row['command']}` | {seconds} | {row['detail']} |")
    timed = [row["seconds"] for row in rows if row["seconds"] is not None]
    for part, stages in (("sample and label", rows[:4]), ("training rounds", rows[4:])):
        seconds = sum(row["seconds"] for row in stages if row["seconds"] is not None)
        lines.append(f"| subtotal | {part} ({len(stages)} stages) | {seconds:.0f} | |")
    lines.append(
        f"| total | all of the above, one after another | {sum(timed):.0f} | "
        f"{sum(timed) / 60:.0f} minutes; {len(rows) - len(timed)} stages without a time |"
    )
    text = "\n".join(lines)
    (RESULTS / f"{args.name}.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
