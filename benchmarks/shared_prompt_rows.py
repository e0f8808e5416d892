"""From how many rows shared-prompt attention pays, on this machine.

The transformers generator's rows sampled from one prompt can read its keys and values once
(shared-prompt attention, ``search/generators/shared_prompt.py``) instead of each reading its
own copy. That saves reading the copies at every decode step, and costs a second attention
call per layer and the bookkeeping that merges the two. So it pays in large chunks and costs
in small ones; the generator shares a chunk's prompts from ``policy.hf.shared_prompt_min_rows``
rows on (default ``SHARE_FROM_ROWS`` in ``search/generators/hf.py``). This table is where that
default comes from.

Each row of the table is one generate call of ``rows`` rows in one chunk, ``rows per prompt``
rows sampled from each prompt, embedded policy, float32, on arithmetic test problems: the
question alone sampled to the end of the solution (best-of-N's call), or the question and
its first two gold steps sampled for one step (a tree search's later depth: short calls,
where a chunk's fixed costs weigh most) or to the end (an MC rollout). Both variants run
the same rows with the same streams; wall and CPU time are the best of ``--repeats`` runs,
the variants interleaved.

    python benchmarks/shared_prompt_rows.py [--rows 8 16 32 64 128 256 512] [--per-prompt 2 8]

Writes benchmarks/results/shared_prompt_rows.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from generator_kv_cache import embedded_generator

from search.envs.arith.world import make_split
from search.generators.hf import SHARE_FROM_ROWS, HFGenerator
from search.types import Prefix, Sampling, Until

RESULTS = Path(__file__).resolve().parent / "results"
# what a call asks for: (gold steps in the prompt, how far each row samples)
WORKLOADS = {
    "question, to the end": (0, Until.end),  # best-of-N
    "question + 2 steps, one step": (2, Until.step),  # a tree search's later depth
    "question + 2 steps, to the end": (2, Until.end),  # an MC rollout
}


def prefixes(kind: str, count: int) -> list[Prefix]:
    steps = WORKLOADS[kind][0]
    return [Prefix(p, p.gold_steps[:steps]) for p in make_split("test", size=count)]


def generator(policy: str, rows: int, shared: bool) -> HFGenerator:
    """The embedded settings, one chunk of ``rows`` rows; ``shared``: prompts read once
    at every size (whatever the default's ``shared_prompt_min_rows``), else copied."""
    made = embedded_generator(
        policy, rows, shared_prompt_attention=shared, shared_prompt_min_rows=1
    )
    if shared and not made.shared_prompt:
        raise SystemExit(f"expected shared-prompt attention to apply to {policy}, it does not")
    return made


def measure(policy: str, kind: str, rows: int, per_prompt: int, repeats: int) -> dict[str, Any]:
    """One row: the same call with prompts copied and shared, best of ``repeats``."""
    asked = prefixes(kind, rows // per_prompt)
    streams = Sampling(streams=tuple(f"{kind}/{i}" for i in range(len(asked))))
    best = {name: {"wall_s": float("inf"), "cpu_s": float("inf")} for name in ("copied", "shared")}
    texts: dict[str, list[list[str]]] = {}
    prompt_tokens = 0.0
    for _ in range(repeats):  # interleaved: both variants see the same machine load
        for name in best:
            made = generator(policy, rows, shared=name == "shared")
            start, cpu = time.perf_counter(), time.process_time()
            out = made.generate(asked, per_prompt, WORKLOADS[kind][1], streams)
            wall, spent = time.perf_counter() - start, time.process_time() - cpu
            best[name]["wall_s"] = min(best[name]["wall_s"], wall)
            best[name]["cpu_s"] = min(best[name]["cpu_s"], spent)
            best[name]["generated_tokens"] = made.usage.generated_tokens
            texts[name] = [[c.text for c in g.continuations] for g in out]
            prompt_tokens = sum(g.prompt_tokens for g in out) / len(out)
    return {
        "workload": kind,
        "rows": rows,
        "per_prompt": per_prompt,
        "prompt_tokens": prompt_tokens,
        **{f"{name}_{key}": value for name, row in best.items() for key, value in row.items()},
        "same_tokens": texts["copied"] == texts["shared"],
        "speedup_wall": best["copied"]["wall_s"] / best["shared"]["wall_s"],
        "speedup_cpu": best["copied"]["cpu_s"] / best["shared"]["cpu_s"],
    }


def report(rows: list[dict[str, Any]], repeats: int) -> str:
    lines = [
        f"One generate call per table row, all its rows in one chunk; "
        f"embedded policy, float32; best of {repeats} runs, the variants interleaved. "
        "Speed-up: the copied prompts' time over the shared prompt's (above 1: sharing pays). "
        "The generator shares a chunk's prompts from `policy.hf.shared_prompt_min_rows` rows "
        f"on, {SHARE_FROM_ROWS} by default: the last column.",
        "",
        "| call | prompt tokens | rows per prompt | rows | copied s | shared s | speed-up "
        "(wall) | speed-up (CPU) | same tokens | the generator |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['workload']} | {row['prompt_tokens']:.0f} | {row['per_prompt']} | "
            f"{row['rows']} | {row['copied_wall_s']:.2f} | {row['shared_wall_s']:.2f} | "
            f"{row['speedup_wall']:.2f} | {row['speedup_cpu']:.2f} | "
            f"{'yes' if row['same_tokens'] else 'no'} | "
            f"{'shares' if row['rows'] >= SHARE_FROM_ROWS else 'copies'} |"
        )
    return "\n".join(lines)


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table in
    benchmarks/results/, not a run directory; it composes no config groups."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256, 512])
    parser.add_argument("--per-prompt", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--policy", default="checkpoints/arith-policy")
    parser.add_argument("--results-dir", default=str(RESULTS))
    parser.add_argument("--name", default="shared_prompt_rows", help="result file stem")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"expected --repeats >= 1, got {args.repeats}; fix: --repeats 5")
    if min(args.per_prompt) < 2:
        parser.error(
            f"expected --per-prompt values >= 2 (one row per prompt shares nothing), got "
            f"{args.per_prompt}; fix: --per-prompt 2 8"
        )
    step = math.lcm(*args.per_prompt)
    if any(rows % step for rows in args.rows):
        parser.error(
            f"expected --rows that are multiples of every --per-prompt ({step}), got "
            f"{args.rows}; fix: --rows {' '.join(str(step * k) for k in (1, 4, 16))}"
        )
    out = Path(args.results_dir)
    out.mkdir(parents=True, exist_ok=True)  # before the work: a bad path fails at once
    table = []
    for kind in WORKLOADS:
        for per_prompt in args.per_prompt:
            for rows in args.rows:
                table.append(measure(args.policy, kind, rows, per_prompt, args.repeats))
                print(json.dumps(table[-1]), flush=True)
    text = report(table, args.repeats)
    (out / f"{args.name}.json").write_text(
        json.dumps({"args": vars(args), "rows": table}, indent=2) + "\n"
    )
    (out / f"{args.name}.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
