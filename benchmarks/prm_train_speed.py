"""PRM training speed: the same optimizer steps with batches drawn by the Trainer's plain
shuffle, by ``group_by_length`` (prm/train.py ``GroupedByLength``), drawn plainly but
packed (``pack``: each batch's examples in fewer rows, ``collate_packed``), and with
``--bf16`` packed in bfloat16 too (``bf16``: forward and backward autocast, float32 weights),
in one run.

All continue the same PRM on the same consensus data for ``--steps`` optimizer steps without
validation. Columns: wall seconds per step (the Trainer's steps alone, not loading or
saving), the share of batch positions that are padding (over the batches those steps draw),
and training tokens (real, not padding) per second. Timings are ratios within one run on a
machine left to itself.

    python benchmarks/prm_train_speed.py --init runs/prm-timed/refine6 --steps 60 \
        --train-data runs/prm-timed/labels/consensus/stepwise.jsonl
    python benchmarks/prm_train_speed.py --init runs/prm-e2e/refine6 --steps 60 \
        --train-data runs/prm-e2e/labels/consensus/stepwise.jsonl --bf16 \
        --name prm_train_speed_bf16

Writes benchmarks/results/<--name>.{json,md}: README's first table (``prm_train_speed``, the
default), and its second, the same rows and bfloat16 rerun on a later host.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer, TrainerCallback

from prm.train import GroupedByLength, TrainConfig, load_data, pack_rows, train_prm

RESULTS = Path(__file__).resolve().parent / "results"


def padding_share(
    lengths: list[int], order: list[int], batch_size: int, steps: int, packed: bool = False
) -> float:
    """Share of padded positions in the first ``steps`` batches of ``order`` (``packed``: in
    the rows ``collate_packed`` makes of each batch)."""
    batches = [order[i : i + batch_size] for i in range(0, steps * batch_size, batch_size)]
    real = sum(lengths[i] for batch in batches for i in batch)
    padded = 0
    for batch in (b for b in batches if b):
        width = max(lengths[i] for i in batch)
        rows = len(pack_rows([lengths[i] for i in batch], width)) if packed else len(batch)
        padded += width * rows
    return 1 - real / padded


class StepClock(TrainerCallback):  # type: ignore[misc]
    """Wall time from the Trainer's first step to its last: no data loading, model loading,
    saving or plotting."""

    def __init__(self) -> None:
        self.start = self.end = 0.0

    def on_train_begin(self, *args: Any, **kwargs: Any) -> None:
        self.start = time.perf_counter()

    def on_train_end(self, *args: Any, **kwargs: Any) -> None:
        self.end = time.perf_counter()


def run(config: TrainConfig) -> float:
    """Seconds the optimizer steps of ``config`` took."""
    clock = StepClock()
    train_prm(config, callbacks=[clock])
    return clock.end - clock.start


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-data", default="runs/prm-timed/labels/consensus/stepwise.jsonl")
    parser.add_argument("--init", default="runs/prm-timed/refine6", help="a PRM to continue")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--name", default="prm_train_speed", help="results file stem")
    parser.add_argument("--bf16", action="store_true", help="add a packed bfloat16 row")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    lengths: list[int] = []
    with tempfile.TemporaryDirectory() as scratch:
        setups = ["plain shuffle", "grouped by length", "plain shuffle, packed"]
        setups += ["plain shuffle, packed, bfloat16"] if args.bf16 else []
        for batches in setups:
            grouped, packed = batches == "grouped by length", "packed" in batches
            config = TrainConfig(
                train_data=args.train_data,
                output_dir=str(Path(scratch) / batches.replace(" ", "-").replace(",", "")),
                policy_dir=None,
                init_checkpoint=args.init,
                val_fraction=0.0,
                max_steps=args.steps,
                batch_size=args.batch_size,
                learning_rate=5e-4,
                save_every=10**6,
                group_by_length=grouped,
                pack=packed,
                bf16=batches.endswith("bfloat16"),
                resume=False,
                progress=False,
            )
            if not lengths:  # the same data for both set-ups: read and encoded once
                train, _, _ = load_data(config, AutoTokenizer.from_pretrained(args.init))
                lengths = [len(example.token_ids) for example in train]
            if grouped:
                order = list(GroupedByLength(lengths, args.batch_size, seed=config.seed))
            else:  # the Trainer's shuffle: a seeded permutation (its share, not its exact order)
                generator = torch.Generator().manual_seed(config.seed)
                order = torch.randperm(len(lengths), generator=generator).tolist()
            share = padding_share(lengths, order, args.batch_size, args.steps, packed)
            seconds = run(config)
            real = sum(lengths) * args.steps * args.batch_size / len(lengths)
            rows.append(
                {
                    "batches": batches,
                    "steps": args.steps,
                    "seconds": seconds,
                    "seconds_per_step": seconds / args.steps,
                    "padding_share": share,
                    "tokens_per_s": real / seconds,
                }
            )
    base = rows[0]["seconds_per_step"]
    lines = [
        f"{args.steps} optimizer steps of batch {args.batch_size}, continuing `{args.init}` on "
        f"`{args.train_data}`, no validation; tokens/s counts real (unpadded) training tokens "
        "at the data's mean length.",
        "",
        "| batches | s / step | speed-up | padding share | tokens / s |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['batches']} | {row['seconds_per_step']:.2f} | "
            f"{base / row['seconds_per_step']:.2f}x | {row['padding_share']:.1%} | "
            f"{row['tokens_per_s']:.0f} |"
        )
    text = "\n".join(lines)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    report = {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}
    (args.results_dir / f"{args.name}.json").write_text(json.dumps(report, indent=2))
    (args.results_dir / f"{args.name}.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
