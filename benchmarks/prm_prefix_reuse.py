"""How much of a beam-like PRM workload is new tokens, and what prefix reuse saves (both backends).

Workload: for each problem, ``beam_width`` prefixes per search step; at depth ``d`` they share
the first ``d - 1`` gold steps and differ in step ``d`` (the gold step and perturbed copies),
as a beam search that keeps one beam and expands it ``beam_width`` ways. Every depth is one
score call over all problems. Problems: MATH-500 gold solutions split at blank lines
(``--dataset math500``, /work/shared/data) or the arithmetic world (``--dataset arith``).

The PRM is the embedded architecture at the policy's shape with random weights (timings do
not depend on the weights), byte-level tokenizer. Reported per backend: tokens encoded,
tokens new to the problem (``TokenLedger``), tokens actually run through the model (the
transformers backend with and without its KV tree; vLLM: encoded minus its prefix-cache hits),
tokens vLLM read from its prefix cache, and the wall time of the score calls (engine start
excluded; best of ``--repeats``). With reuse, every backend's scores are checked against the
transformers backend without reuse.

    python benchmarks/prm_prefix_reuse.py --dataset math500 --problems 8 --beam-width 4
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
import time
from pathlib import Path

from prm.arith_model import EMBEDDED_PRM_FORMAT, build_random_prm, save_prm
from prm.scoring import HFScorer, StepTagScorer, VLLMScorer
from search.envs.arith.tokenizer import build_tokenizer
from search.envs.arith.world import Split, make_split
from search.types import Prefix, Problem, split_steps

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def load_problems(dataset: str, count: int, max_steps: int) -> list[Problem]:
    if dataset == "arith":
        return make_split(Split.hard, size=count)
    problems = []
    with (DATA / "math500_test.jsonl").open() as rows:
        for index, line in enumerate(rows):
            row = json.loads(line)
            steps = split_steps(row["solution"].replace("<step>", ""))
            if len(steps) >= 3:
                problems.append(
                    Problem(f"math500-{index}", row["problem"], row["answer"], steps[:max_steps])
                )
            if len(problems) == count:
                break
    return problems


def perturb(step: str, rng: random.Random) -> str:
    """The step with every digit replaced: same length, different content."""
    return re.sub(r"\d", lambda _: str(rng.randint(0, 9)), step) + " (check)"


def beam_workload(problems: list[Problem], beam_width: int, seed: int) -> list[list[Prefix]]:
    rng = random.Random(seed)
    calls = []
    for depth in range(1, max(len(p.gold_steps) for p in problems) + 1):
        prefixes = []
        for problem in problems:
            gold = problem.gold_steps
            if depth > len(gold):
                continue
            prefixes.append(Prefix(problem, gold[:depth]))
            for _ in range(beam_width - 1):
                prefixes.append(
                    Prefix(problem, (*gold[: depth - 1], perturb(gold[depth - 1], rng)))
                )
        calls.append(prefixes)
    return calls


def run(scorer: StepTagScorer, calls: list[list[Prefix]]) -> tuple[float, list[list[float]]]:
    start = time.perf_counter()
    scores = [s for prefixes in calls for s in scorer.score(prefixes)]
    return time.perf_counter() - start, scores


def max_difference(a: list[list[float]], b: list[list[float]]) -> float:
    return max(abs(x - y) for u, v in zip(a, b, strict=True) for x, y in zip(u, v, strict=True))


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table in
    benchmarks/results/, not a run directory; it composes no config groups."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("math500", "arith"), default="math500")
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--beam-width", type=int, default=4)
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--block-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-vllm", action="store_true")
    args = parser.parse_args()

    problems = load_problems(args.dataset, args.problems, args.max_steps)
    calls = beam_workload(problems, args.beam_width, seed=0)
    tokenizer = build_tokenizer()
    model = build_random_prm(
        tokenizer,
        hidden_size=192,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=3,
        max_position_embeddings=4096,
    )
    print(
        f"workload: {args.dataset}, {len(problems)} problems, beam width {args.beam_width}, "
        f"{len(calls)} score calls, {sum(len(c) for c in calls)} prefixes"
    )
    rows: list[tuple[str, int, int, int, int, float]] = []
    hf_scores: list[list[float]] = []
    for reuse_kv in (False, True):
        best = float("inf")
        for _ in range(args.repeats):
            hf = HFScorer(
                model,
                tokenizer,
                EMBEDDED_PRM_FORMAT,
                max_length=4096,
                batch_size=16,
                reuse_prefix_cache=reuse_kv,
            )
            wall, scores = run(hf, calls)
            best = min(best, wall)
        if not reuse_kv:
            hf_scores = scores
        else:
            difference = max_difference(scores, hf_scores)
            print(f"hf reuse_prefix_cache=True: max |score - hf score| = {difference:.2e}")
            if difference > 1e-4:
                raise SystemExit(f"expected scores equal to 1e-4 with KV reuse, got {difference}")
        label = f"hf reuse_prefix_cache={reuse_kv}"
        usage = hf.usage
        rows.append((label, usage.tokens, usage.new_tokens, hf.computed_tokens, 0, best))

    if not args.skip_vllm:
        with tempfile.TemporaryDirectory() as tmp:
            path = save_prm(model, tokenizer, Path(tmp) / "prm")
            engine = VLLMScorer.load(
                str(path),
                EMBEDDED_PRM_FORMAT,
                dtype="float32",
                max_length=4096,
                block_size=args.block_size,
            )
            engine.score([Prefix(Problem("warmup", "1 + 1", "2"), ("1 + 1 = 2",))])
            for reuse in (False, True):
                best = float("inf")
                scorer: VLLMScorer | None = None
                for _ in range(args.repeats):
                    engine.llm.reset_prefix_cache()
                    scorer = VLLMScorer(
                        engine.llm,
                        engine.encoder.tokenizer,
                        EMBEDDED_PRM_FORMAT,
                        max_length=4096,
                        reuse_prefix_cache=reuse,
                    )
                    wall, scores = run(scorer, calls)
                    best = min(best, wall)
                assert scorer is not None
                label = f"vllm reuse_prefix_cache={reuse}"
                usage = scorer.usage
                run_tokens = usage.tokens - scorer.cached_tokens
                rows.append(
                    (label, usage.tokens, usage.new_tokens, run_tokens, scorer.cached_tokens, best)
                )
                print(f"{label}: max |score - hf score| = {max_difference(scores, hf_scores):.2e}")
            engine.close()

    print(f"\n{'backend':<32}{'tokens':>10}{'new':>10}{'run':>10}{'cache hits':>12}{'wall s':>10}")
    for label, tokens, new, ran, hits, wall in rows:
        print(f"{label:<32}{tokens:>10}{new:>10}{ran:>10}{hits:>12}{wall:>10.2f}")
    tokens, new = rows[0][1], rows[0][2]
    reused_run = rows[1][3]
    print(
        f"\nnew / encoded tokens: {new / tokens:.3f}; "
        f"hf with reuse runs {reused_run / new:.2f}x new"
    )
    lines = [
        f"Beam-like workload: {args.dataset}, {len(problems)} problems, beam width "
        f"{args.beam_width}, {len(calls)} score calls, {sum(len(c) for c in calls)} prefixes; "
        "a PRM of the embedded shape (random weights), float32, best of "
        f"{args.repeats} runs. Tokens run: through the model (the rest reused); scores with "
        "reuse equal those without to 1e-4 (checked by the script).",
        "",
        "| backend | tokens encoded | new tokens | tokens run | prefix-cache hits | wall s |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {label} | {t} | {n} | {r} | {h} | {w:.2f} |" for label, t, n, r, h, w in rows),
        "",
        f"New tokens are {new / tokens:.1%} of the tokens a PRM without prefix reuse encodes; "
        f"the transformers backend with reuse runs {reused_run / new:.2f} tokens per new token.",
    ]
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / "prm_prefix_reuse.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
