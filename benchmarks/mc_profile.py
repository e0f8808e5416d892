"""Where the time of one MC labelling row goes: the model's prefill and decode calls (decode
split by how many rows the batch holds) against the rest of the labeller.

The row is ``make prm``'s (early-stop MC rolled out by the verifier base on the transformers
generator: ``mc_labelling_speed.SETUPS[4]``). Every forward call of the model is timed with
forward hooks (a call of one new token per row is a decode step, else a prefill); the rest of
the wall time is sampling, stopping, cache copies, tokenizing and the labeller's own work.
A decode batch holds fewer rows as its rows finish (the generator drops them) and in early
stop's later rounds (``prm.label.mc``): the buckets show what a decode step costs per row at
each batch size. (A prefill whose prompts were all run before is one new token per row; it
is counted as a decode step, which is rare.) ``--baseline`` also runs the recipe before
(``mc_labelling_speed.SETUPS[0]``) in the same run, so the bound below the table is also
given against it.

    python benchmarks/mc_profile.py --limit 512 --chunk 512 --baseline
    python benchmarks/mc_profile.py --limit 1024 --chunk 512 --name mc_profile_1024_chunk512
    python benchmarks/mc_profile.py --limit 1024 --chunk 1024 --name mc_profile_1024_chunk1024

Writes benchmarks/results/<name>.{json,md}. Shares are ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import mc_labelling_speed as speed

from prm.sample import read_samples

BUCKETS = (64, 128, 256, 512)  # decode batches of at most this many rows, and above


def profile(solutions: list[Any], chunk: int, rollouts: int) -> dict[str, Any]:
    """One labelling row with every model call timed (see the module docstring)."""
    from search.generators.hf import HFGenerator

    calls: list[tuple[int, int, float]] = []  # (rows, new tokens per row, seconds)
    started: list[float] = []
    original = speed._build

    def build(setup: speed.SetUp) -> Any:
        generator = original(setup)
        assert isinstance(generator, HFGenerator)

        def before(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
            started.append(time.perf_counter())

        def after(module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> None:
            rows, width = kwargs["input_ids"].shape
            calls.append((int(rows), int(width), time.perf_counter() - started.pop()))

        generator.model.register_forward_pre_hook(before, with_kwargs=True)
        generator.model.register_forward_hook(after, with_kwargs=True)
        return generator

    speed._build = build  # type: ignore[assignment]
    try:
        row = speed.run_setup(speed.SETUPS[4], solutions, chunk, rollouts)
    finally:
        speed._build = original  # type: ignore[assignment]
    decode = [(rows, seconds) for rows, width, seconds in calls if width == 1]
    prefill = [(rows * width, seconds) for rows, width, seconds in calls if width > 1]
    buckets = []
    for low, high in zip((0, *BUCKETS), (*BUCKETS, None), strict=True):
        inside = [(r, s) for r, s in decode if r > low and (high is None or r <= high)]
        if inside:
            steps = sum(r for r, _ in inside)
            seconds = sum(s for _, s in inside)
            name = f"{low + 1}-{high}" if high is not None else f"> {low}"
            buckets.append(
                {"rows": name, "calls": len(inside), "row_steps": steps, "seconds": seconds}
            )
    model_s = sum(s for _, _, s in calls)
    return {
        "chunk": chunk,
        "setup": row["setup"],
        "solutions": row["solutions"],
        "rollout_tokens": row["rollout_tokens"],
        "wall_s": row["wall_s"],
        "prefill": {
            "calls": len(prefill),
            "tokens": sum(t for t, _ in prefill),
            "seconds": sum(s for _, s in prefill),
        },
        "decode": buckets,
        "outside_model_s": row["wall_s"] - model_s,
    }


def report(result: dict[str, Any], chunk: int, rollouts: int) -> str:
    wall = result["wall_s"]
    steps = sum(b["row_steps"] for b in result["decode"])
    lines = [
        f"{result['setup']}: {result['solutions']} policy solutions, K={rollouts}, chunks of "
        f"{chunk}; {result['rollout_tokens']} rollout tokens in {wall:.1f} s "
        f"({result['rollout_tokens'] / wall:.0f} rollout tokens/s). Decode row-steps: "
        f"{steps} ({steps - result['rollout_tokens']} more than the rollout tokens: rows "
        "that finished riding along until the batch drops them). Shares of the wall time.",
        "",
        "| part | calls | tokens or row-steps | seconds | share | tokens/s | vs largest |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    full = result["decode"][-1]  # the largest batches
    full_rate = full["row_steps"] / full["seconds"]
    prefill = result["prefill"]
    rate = prefill["tokens"] / max(prefill["seconds"], 1e-9)
    lines.append(
        f"| prefill | {prefill['calls']} | {prefill['tokens']} | {prefill['seconds']:.1f} | "
        f"{prefill['seconds'] / wall:.2f} | {rate:.0f} | |"
    )
    for bucket in result["decode"]:
        bucket_rate = bucket["row_steps"] / bucket["seconds"]
        lines.append(
            f"| decode, batches of {bucket['rows']} rows | {bucket['calls']} | "
            f"{bucket['row_steps']} | {bucket['seconds']:.1f} | {bucket['seconds'] / wall:.2f} "
            f"| {bucket_rate:.0f} | {bucket_rate / full_rate:.2f} |"
        )
    outside = result["outside_model_s"]
    lines.append(f"| outside the model | | | {outside:.1f} | {outside / wall:.2f} | | |")
    bound = result["rollout_tokens"] / (steps / full_rate)
    lines += [
        "",
        f"Bound: with every decode row-step at the rate of the largest batches "
        f"({full_rate:.0f}/s) and nothing else taking time (no prefill, sampling, stopping or "
        f"copies), this row would spend {bound:.0f} rollout tokens/s "
        f"({bound / (result['rollout_tokens'] / wall):.2f}x its measured rate)"
        + (
            f"; the recipe before ({result['baseline']['setup']}) ran "
            f"{result['baseline']['rollout_tokens_per_s']:.0f} in this run: the row is "
            f"{result['rollout_tokens'] / wall / result['baseline']['rollout_tokens_per_s']:.2f}x "
            f"it, the bound {bound / result['baseline']['rollout_tokens_per_s']:.2f}x."
            if result.get("baseline")
            else "."
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", default="runs/prm/samples/samples.jsonl")
    parser.add_argument("--limit", type=int, default=512)
    parser.add_argument("--chunk", type=int, default=512)
    parser.add_argument("--rollouts", type=int, default=8)
    parser.add_argument("--results-dir", default=str(speed.RESULTS))
    parser.add_argument("--name", default="mc_profile", help="result file stem")
    parser.add_argument("--baseline", action="store_true", help="also run the recipe before")
    args = parser.parse_args()
    solutions = read_samples(Path(args.samples))[: args.limit]
    result = profile(solutions, args.chunk, args.rollouts)
    if args.baseline:  # after the profiled row, in the same run
        result["baseline"] = speed.run_setup(speed.SETUPS[0], solutions, args.chunk, args.rollouts)
    text = report(result, args.chunk, args.rollouts)
    out = Path(args.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{args.name}.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
