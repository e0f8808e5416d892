"""Does the step tag see the step? A diagnostic of why the embedded PRM learns arithmetic
checks slowly.

Pairs of one-step solutions on test problems: the gold first step ``a op b = c`` and the
same step with its result off by one (``c + 1``). For a PRM initialised from the verifier
base (``prm.arith_model.init_prm_from_policy``; with and without ``tag_from_separator``) it
measures, at the ``<step>`` tag after the step, how much each layer's hidden state moves
between the two (``|h_gold - h_slip| / |h_gold|``, mean over pairs), and the tag's hidden-
state norm. Beside it, the verifier base as a language model: how often it gives the gold
result's tokens a higher probability than the slipped ones (the knowledge the PRM has to
read out); and how often trained PRMs score the gold step above the slipped one.

    python benchmarks/tag_signal.py [--problems 200] [--prm checkpoints/arith-prm]

Writes benchmarks/results/tag_signal.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoModelForTokenClassification, AutoTokenizer

from prm.arith_model import EMBEDDED_PRM_FORMAT, init_prm_from_policy
from prm.scoring import build_scorer
from search.envs.arith.world import make_split
from search.guards import call_scorer
from search.resolve import local_model_dir
from search.types import Prefix, Problem

RESULTS = Path(__file__).resolve().parent / "results"


def pairs(count: int) -> list[tuple[str, str, str]]:
    """(question, gold first step, slipped first step) for the first ``count`` test problems."""
    out = []
    for problem in make_split("test", size=count):
        step = problem.gold_steps[0]
        left, result = step.rsplit("= ", 1)
        out.append((problem.question, step, f"{left}= {int(result) + 1}"))
    return out


def text(question: str, step: str, tag: bool) -> str:
    prompt = EMBEDDED_PRM_FORMAT.prompt_template.format(question=question)
    return prompt + step + (EMBEDDED_PRM_FORMAT.step_tag if tag else "")


def tag_movement(model_dir: Path, items: list[tuple[str, str, str]]) -> dict[str, Any]:
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForTokenClassification.from_pretrained(str(model_dir), dtype=torch.float32)
    model.eval()
    moves: list[list[float]] = []
    norms: list[list[float]] = []
    for question, gold, slipped in items:
        states = []
        for step in (gold, slipped):
            ids = tokenizer(text(question, step, tag=True), return_tensors="pt").input_ids
            with torch.no_grad():
                hidden = model.model(ids, output_hidden_states=True).hidden_states
            states.append([layer[0, -1] for layer in hidden])
        moves.append([float((a - b).norm() / a.norm()) for a, b in zip(*states, strict=True)])
        norms.append([float(a.norm()) for a in states[0]])
    layers = len(moves[0])
    return {
        "relative_move": [sum(m[i] for m in moves) / len(moves) for i in range(layers)],
        "norm": [sum(n[i] for n in norms) / len(norms) for i in range(layers)],
    }


def lm_prefers_gold(policy_dir: Path, items: list[tuple[str, str, str]]) -> float:
    """Share of pairs where the LM gives the gold step's tokens a higher total log-probability."""
    tokenizer = AutoTokenizer.from_pretrained(str(policy_dir))
    model = AutoModelForCausalLM.from_pretrained(str(policy_dir), dtype=torch.float32).eval()
    wins = 0
    for question, gold, slipped in items:
        scores = []
        prompt_len = len(tokenizer(text(question, "", tag=False)).input_ids)
        for step in (gold, slipped):
            ids = tokenizer(text(question, step, tag=False), return_tensors="pt").input_ids
            with torch.no_grad():
                logits = model(ids).logits[0, :-1].log_softmax(-1)
            targets = ids[0, 1:]
            picked = logits.gather(-1, targets[:, None])[:, 0]
            scores.append(float(picked[prompt_len - 1 :].sum()))
        wins += scores[0] > scores[1]
    return wins / len(items)


def prm_prefers_gold(prm: str, items: list[tuple[str, str, str]]) -> float:
    scorer = build_scorer(model=prm, backend="hf")
    prefixes = [
        Prefix(Problem(id=str(i), question=q, answer=""), (step,))
        for i, (q, gold, slipped) in enumerate(items)
        for step in (gold, slipped)
    ]
    scores = call_scorer(scorer, prefixes).scores
    return sum(scores[2 * i][0] > scores[2 * i + 1][0] for i in range(len(items))) / len(items)


def main() -> None:
    """argparse, not Hydra: a benchmark script with a few flags whose output is its table in
    benchmarks/results/, not a run directory; it composes no config groups."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=200)
    parser.add_argument("--verifier", default="checkpoints/arith-verifier-base")
    parser.add_argument("--prm", nargs="+", default=["checkpoints/arith-prm"])
    args = parser.parse_args()
    if args.problems < 1:
        parser.error(f"expected --problems >= 1, got {args.problems}")
    missing = [path for path in [args.verifier, *args.prm] if local_model_dir(path) is None]
    if missing:  # before the verifier pass
        parser.error(f"expected local checkpoint folders, got none at {missing}; fix: make prm")
    start = time.perf_counter()
    torch.manual_seed(0)
    items = pairs(args.problems)
    verifier = local_model_dir(args.verifier)
    assert verifier is not None  # checked above
    movement = {}
    with tempfile.TemporaryDirectory() as work:
        for name, from_separator in (("untrained tag", False), ("tag from separator", True)):
            init = init_prm_from_policy(
                verifier, Path(work) / name.replace(" ", "-"), tag_from_separator=from_separator
            )
            movement[name] = tag_movement(init, items)
    lm = lm_prefers_gold(verifier, items)
    trained = {prm: prm_prefers_gold(prm, items) for prm in args.prm}
    layers = len(next(iter(movement.values()))["relative_move"])
    lines = [
        f"{len(items)} test problems: the gold first step against the same step with its result "
        "+1. Hidden state at the `<step>` tag of a PRM initialised from "
        f"`{args.verifier}`, per layer (0: embeddings): mean relative move "
        "|h_gold − h_slip| / |h_gold|, and mean norm.",
        "",
        "| tag embedding | " + " | ".join(f"layer {i}" for i in range(layers)) + " |",
        "|---|" + "---:|" * layers,
    ]
    for name, row in movement.items():
        cells = [
            f"{m:.3f} (norm {n:.0f})"
            for m, n in zip(row["relative_move"], row["norm"], strict=True)
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"The verifier base as a language model prefers the gold step (higher log-probability) "
        f"in {100 * lm:.1f}% of pairs.",
    ]
    for prm, share in trained.items():
        lines.append(f"`{prm}` scores the gold step above the slipped one in {100 * share:.1f}%.")
    text_out = "\n".join(lines)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tag_signal.json").write_text(
        json.dumps(
            {
                "args": vars(args),
                "movement": movement,
                "lm_prefers_gold": lm,
                "prm_prefers_gold": trained,
                "wall_s": time.perf_counter() - start,
            },
            indent=2,
        )
    )
    (RESULTS / "tag_signal.md").write_text(text_out + "\n")
    print(text_out)


if __name__ == "__main__":
    main()
