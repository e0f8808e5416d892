"""The PRM training curve as a picture, beside the ``training_log.json`` that holds it.

``plot_training_curve(log_path)`` draws training and validation loss, and the validation
step-error F1 and accuracies, against the optimizer step, into ``training_curve.png`` in the
log's folder (``prm.train`` can call it after writing the log)::

    python -m prm.curve checkpoints/arith-prm/training_log.json
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

LOSSES = ("train_loss", "val_loss")
SCORES = ("val_f1", "val_error_accuracy", "val_correct_accuracy", "val_step_accuracy")


def plot_training_curve(log_path: Path, out: Path | None = None) -> Path:
    """Draw the ``history`` of a PRM ``training_log.json``; return the PNG path."""
    log = json.loads(Path(log_path).read_text())
    history = log.get("history") or []
    if not history or "step" not in history[0]:
        raise ValueError(
            f"expected a training log with a 'history' of evaluations (step, losses, F1) in "
            f"{log_path}, got {len(history)} entries; fix: pass the training_log.json that "
            "python -m prm.train wrote"
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [row["step"] for row in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key in LOSSES:
        if key in history[0]:
            left.plot(steps, [row[key] for row in history], marker="o", label=key)
    left.set_xlabel("optimizer step")
    left.set_ylabel("loss")
    if left.get_lines():
        left.legend()
    left.grid(alpha=0.3)
    for key in SCORES:
        if key in history[0]:
            right.plot(steps, [row[key] for row in history], marker="o", label=key)
    right.set_xlabel("optimizer step")
    right.set_ylabel("validation")
    right.set_ylim(0, 1)
    if right.get_lines():  # a run without validation has no scores to show
        right.legend(fontsize=8)
    else:
        right.text(0.5, 0.5, "no validation in this run", ha="center", transform=right.transAxes)
    right.grid(alpha=0.3)
    fig.suptitle(f"PRM training: {log.get('num_train', '?')} solutions, {Path(log_path).parent}")
    fig.tight_layout()
    target = out if out is not None else Path(log_path).parent / "training_curve.png"
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def main(argv: Sequence[str] | None = None) -> None:
    """argparse, not Hydra: one file in, one picture out; no config groups."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path, help="a training_log.json written by prm.train")
    parser.add_argument("--out", type=Path, default=None, help="default: beside the log")
    args = parser.parse_args(argv)
    print(plot_training_curve(args.log, args.out))


if __name__ == "__main__":
    main()
