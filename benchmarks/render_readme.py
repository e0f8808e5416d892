"""Regenerate README's results section from the files the benchmark scripts wrote.

    python benchmarks/render_readme.py

Each block below names the command that produced it; a missing result is said to be missing,
never filled in by hand. A result's picture (the same name, ``.png``) follows its table.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import targets

ROOT = Path(__file__).resolve().parents[1]  # this checkout's, whichever one `search` imports from
RESULTS = ROOT / "benchmarks" / "results"
BEGIN, END = "<!-- RESULTS:BEGIN -->", "<!-- RESULTS:END -->"

TARGETS = "targets"  # not a file: the scoreboard, computed from the files of the sections below
SECTIONS: list[tuple[str, str, str]] = [
    ("Issue 10's targets at a glance", "python benchmarks/targets.py", TARGETS),
    (
        "The embedded policy",
        "python benchmarks/policy_accuracy.py",
        "policy_accuracy.md",
    ),
    (
        "PRM training data: label quality against the ground-truth checker",
        "python benchmarks/label_quality.py",
        "label_quality.md",
    ),
    (
        "PRM training data: three ways to run MC on the same 8,192 solutions",
        "bash benchmarks/label_mc_modes.sh",
        "label_quality_mc_modes.md",
    ),
    (
        "Monte Carlo labelling speed",
        "python benchmarks/mc_labelling_speed.py --limit 512 --chunk 512",
        "mc_labelling_speed.md",
    ),
    (
        "Monte Carlo labelling speed: attention kernels and shared prompts against run-to-run "
        "spread",
        "python benchmarks/mc_labelling_speed.py --limit 512 --chunk 512 --setups 0 4 9 5 "
        "--repeats 3 --name mc_attention_kernels",
        "mc_attention_kernels.md",
    ),
    (
        "Monte Carlo labelling speed: against the labeller as it was, run from its own commit",
        "python benchmarks/mc_labelling_speed.py --limit 512 --chunk 512 --setups 0 1 4 11 "
        "--code-before 1a6411c --repeats 3 --name mc_code_before",
        "mc_code_before.md",
    ),
    (
        "Monte Carlo labelling speed: against the labeller as it was, on an earlier and slower "
        "host (a record: the same command with --setups 0 4, on other samples and an earlier "
        "generator; its files moved to benchmarks/results/previous/)",
        "python benchmarks/mc_labelling_speed.py --limit 512 --chunk 512 --setups 0 4 "
        "--code-before 1a6411c --repeats 3 --name mc_code_before",
        "previous/mc_code_before_slower_host.md",
    ),
    (
        "Monte Carlo labelling speed: a prefix that samples share, rolled out once (make "
        "prm's chunks)",
        "python benchmarks/mc_labelling_speed.py --limit 4096 --chunk 2048 --setups 4 9 "
        "--code-before bc94d04 --code-before-setup 4 --name mc_shared_prefixes",
        "mc_shared_prefixes.md",
    ),
    (
        "Monte Carlo labelling: where the time of make prm's row goes",
        "python benchmarks/mc_profile.py --limit 512 --chunk 512 --baseline",
        "mc_profile.md",
    ),
    (
        "Building the shipped PRM: stage times on this machine (all rounds but its last three; "
        "a record of a run directory since gone, not rerunnable: the make prm timed tables "
        "below are)",
        "python benchmarks/prm_pipeline_times.py",
        "previous/prm_pipeline_shipped_build.md",
    ),
    (
        "`make prm` today: twenty rounds in bfloat16, timed (make_prm_bf16.sh's run and six "
        "more rounds, one after the other on a machine left to them)",
        "bash benchmarks/bf16_more_rounds.sh (its stage table: python "
        "benchmarks/prm_pipeline_times.py --run runs/prm-make20 --name prm_pipeline_make20)",
        "prm_pipeline_make20.md",
    ),
    (
        "More bfloat16 rounds: step-error identification on validation",
        "bash benchmarks/bf16_more_rounds.sh",
        "prm_more_bf16_validation.md",
    ),
    (
        "More bfloat16 rounds: the rule's choice",
        "bash benchmarks/bf16_more_rounds.sh",
        "more_bf16/choice.md",
    ),
    (
        "More bfloat16 rounds: search on validation with round 20, paired with the shipped PRM",
        "bash benchmarks/bf16_more_rounds.sh",
        "more_bf16/round20/accuracy_vs_compute_validation_paired.md",
    ),
    (
        "More bfloat16 rounds: round 20 and the shipped PRM on step-error identification, test "
        "(read once, after the choice)",
        "bash benchmarks/bf16_more_rounds.sh",
        "prm_processbench_more_bf16.md",
    ),
    (
        "More bfloat16 rounds: round 20 on test, search (read once after the choice, before "
        "it was shipped)",
        "bash benchmarks/bf16_more_rounds.sh",
        "more_bf16/test/accuracy_vs_compute_test.md",
    ),
    (
        "More bfloat16 rounds: round 20 on test, search paired with the shipped PRM",
        "bash benchmarks/bf16_more_rounds.sh",
        "more_bf16/test/accuracy_vs_compute_test_paired.md",
    ),
    (
        "Shipping round 20: `make prm`'s twenty rounds end to end, timed (light edits and short "
        "tests ran beside it)",
        "bash benchmarks/ship_round20.sh (its stage table: python benchmarks/prm_pipeline_times.py "
        "--run runs/prm-e2e20 --name prm_pipeline_make20_e2e)",
        "prm_pipeline_make20_e2e.md",
    ),
    (
        "Shipping round 20: `make prm`'s weights against those of the round chosen and read",
        "bash benchmarks/ship_round20.sh",
        "make_prm_identity.md",
    ),
    (
        "Shipping round 20: the test table against the PRM shipped before, paired",
        "bash benchmarks/ship_round20.sh",
        "ship20/accuracy_vs_compute_test_paired.md",
    ),
    (
        "Shipping round 20: the longest table against the PRM shipped before, paired",
        "bash benchmarks/ship_round20.sh",
        "ship20/accuracy_vs_compute_longest_paired.md",
    ),
    (
        "Shipping round 20: the validation table against the PRM shipped before, paired",
        "bash benchmarks/ship_round20.sh",
        "ship20/accuracy_vs_compute_validation_paired.md",
    ),
    (
        "Shipping round 20: more of the longest split (400 problems), paired with the PRM "
        "shipped before (reported, not chosen on)",
        "bash benchmarks/longest_wider.sh",
        "longest_wider/accuracy_vs_compute_longest_paired.md",
    ),
    (
        "`make prm` timed: fourteen rounds in bfloat16, end to end on a machine left to it",
        "bash benchmarks/make_prm_bf16.sh (its stage table: python "
        "benchmarks/prm_pipeline_times.py --run runs/prm-make --name prm_pipeline_make)",
        "prm_pipeline_make.md",
    ),
    (
        "`make prm` timed, fourteen rounds in bfloat16: does it rebuild the shipped PRM? (the "
        "parity check on validation)",
        "bash benchmarks/make_prm_bf16.sh",
        "make/parity.md",
    ),
    (
        "`make prm` timed, fourteen rounds in bfloat16: its PRM and the shipped one on "
        "step-error identification, validation",
        "bash benchmarks/make_prm_bf16.sh",
        "prm_make_validation.md",
    ),
    (
        "`make prm` timed, fourteen rounds in bfloat16: search on validation with its PRM, "
        "paired with the shipped PRM",
        "bash benchmarks/make_prm_bf16.sh",
        "make/rebuilt/accuracy_vs_compute_validation_paired.md",
    ),
    (
        "`make prm` timed, fourteen rounds in bfloat16: its PRM and the shipped one on "
        "step-error identification, test (reported, not chosen on)",
        "bash benchmarks/make_prm_bf16.sh",
        "prm_processbench_make.md",
    ),
    (
        "`make prm` end to end in float32 (the recipe before bfloat16): its stages (a shared "
        "machine, paused while the test suite ran: not a timing)",
        "RUN=runs/prm-e2e EXPORT=runs/prm-e2e/export BF16=false "
        'REFINE_LRS="$FLOAT32_REFINE_LRS" bash benchmarks/build_prm.sh (what make prm ran '
        "then, exporting beside the shipped PRM; FLOAT32_REFINE_LRS: benchmarks/prm_rounds.sh), "
        "then python "
        "benchmarks/prm_pipeline_times.py --run runs/prm-e2e --name prm_pipeline_e2e_shared",
        "prm_pipeline_e2e_shared.md",
    ),
    (
        "`make prm` end to end in float32 (the recipe before bfloat16): the rebuilt PRM on "
        "step-error identification",
        "python benchmarks/prm_processbench.py --prm shipped=checkpoints/arith-prm "
        "rebuilt=runs/prm-e2e/export --name prm_processbench_e2e",
        "prm_processbench_e2e.md",
    ),
    (
        "`make prm` timed in float32, ten rounds (the recipe before bfloat16; packed batches)",
        "bash benchmarks/more_rounds.sh (its last steps: the rounds of make prm on top of "
        "benchmarks/pack_recipe.sh's packed rebuild, then python benchmarks/prm_pipeline_times.py "
        "--run runs/prm-packed --name prm_pipeline_packed)",
        "prm_pipeline_packed.md",
    ),
    (
        "`make prm` timed in float32, ten rounds: the rebuilt PRM on step-error identification",
        "python benchmarks/prm_processbench.py --prm runs/prm-packed/export "
        "--name prm_processbench_packed",
        "prm_processbench_packed.md",
    ),
    (
        "`make prm` timed with padded batches (PACK=false, the recipe before packing)",
        "python benchmarks/prm_pipeline_times.py --run runs/prm-timed --name prm_pipeline_timed",
        "prm_pipeline_timed.md",
    ),
    (
        "`make prm` timed with padded batches: the rebuilt PRM on step-error identification",
        "python benchmarks/prm_processbench.py --prm runs/prm-timed/export "
        "--name prm_processbench_timed",
        "prm_processbench_timed.md",
    ),
    (
        "Choosing the MC recipe on validation: step-error identification",
        "bash benchmarks/mc_recipes.sh",
        "prm_recipes_validation.md",
    ),
    (
        "Choosing the MC recipe on validation: every training round of both rebuilds",
        "bash benchmarks/mc_recipes.sh",
        "prm_recipes_rounds_validation.md",
    ),
    (
        "Choosing the MC recipe on validation: search with the rolled-out PRM",
        "bash benchmarks/mc_recipes.sh",
        "rolled_out/accuracy_vs_compute_validation_paired.md",
    ),
    (
        "The rolled-out rebuild's stages (a shared machine: not a timing)",
        "bash benchmarks/mc_recipes.sh",
        "prm_pipeline_distrust.md",
    ),
    (
        "The MC recipes on test, reported once",
        "bash benchmarks/mc_recipes.sh",
        "prm_recipes_test.md",
    ),
    (
        "One more training round for the shipped PRM",
        "bash benchmarks/longer_training.sh",
        "prm_longer_validation.md",
    ),
    (
        "One more training round for the shipped PRM: search on validation",
        "bash benchmarks/longer_training.sh",
        "longer/accuracy_vs_compute_validation_paired.md",
    ),
    (
        "One more training round for the shipped PRM: test, reported once after shipping it",
        "bash benchmarks/longer_training.sh",
        "longer/accuracy_vs_compute_test_paired.md",
    ),
    (
        "One more training round for the shipped PRM: longest, reported once after shipping it",
        "bash benchmarks/longer_training.sh",
        "longer/accuracy_vs_compute_longest_paired.md",
    ),
    (
        "Two more training rounds: step-error identification on validation",
        "bash benchmarks/more_rounds.sh",
        "prm_rounds_validation.md",
    ),
    (
        "Two more training rounds: search on validation, one more round",
        "bash benchmarks/more_rounds.sh",
        "rounds/round2/accuracy_vs_compute_validation_paired.md",
    ),
    (
        "Two more training rounds: search on validation, two more rounds",
        "bash benchmarks/more_rounds.sh",
        "rounds/round3/accuracy_vs_compute_validation_paired.md",
    ),
    (
        "Two more training rounds: a second training seed, measured after the choice",
        "bash benchmarks/more_rounds.sh",
        "prm_rounds_seeds_validation.md",
    ),
    (
        "Two more training rounds: the rule's choice",
        "bash benchmarks/more_rounds.sh (benchmarks/round_rule.py)",
        "rounds/choice.md",
    ),
    (
        "Two more training rounds: test, reported once after shipping them",
        "bash benchmarks/more_rounds.sh",
        "rounds/accuracy_vs_compute_test_paired.md",
    ),
    (
        "Two more training rounds: longest, reported once after shipping them",
        "bash benchmarks/more_rounds.sh",
        "rounds/accuracy_vs_compute_longest_paired.md",
    ),
    (
        "PRM training speed: batches grouped by length, or packed",
        "python benchmarks/prm_train_speed.py (run by benchmarks/train_recipes.sh and "
        "benchmarks/pack_recipe.sh)",
        "prm_train_speed.md",
    ),
    (
        "PRM training speed: the same rows with bfloat16, rerun on this host",
        "python benchmarks/prm_train_speed.py --init runs/prm-e2e/refine6 --steps 60 "
        "--train-data runs/prm-e2e/labels/consensus/stepwise.jsonl --bf16 --name "
        "prm_train_speed_bf16",
        "prm_train_speed_bf16.md",
    ),
    (
        "Choosing the training recipe on validation: batches grouped by length",
        "bash benchmarks/train_recipes.sh",
        "prm_training_validation.md",
    ),
    (
        "Choosing the training recipe on validation: packed batches, every round",
        "bash benchmarks/pack_recipe.sh",
        "prm_packed_validation.md",
    ),
    (
        "A step tag that sees the step (TAG_FROM_SEPARATOR=true), at make prm's length: its "
        "rebuild's first rounds (a shared machine: not a timing; not judged yet)",
        "RUN=runs/prm-tag bash benchmarks/tag_recipe.sh (its stage table: python "
        "benchmarks/prm_pipeline_times.py --run runs/prm-tag --name prm_pipeline_tag)",
        "prm_pipeline_tag.md",
    ),
    (
        "Training in bfloat16: make prm's float32 rounds and four more, on the end-to-end "
        "rebuild's labels (its first rounds shared the machine: not a timing)",
        "bash benchmarks/bf16_recipe.sh (its stage table: python "
        "benchmarks/prm_pipeline_times.py --run runs/prm-bf16 --name prm_pipeline_bf16)",
        "prm_pipeline_bf16.md",
    ),
    (
        "Training in bfloat16: step-error identification on validation",
        "bash benchmarks/bf16_recipe.sh",
        "prm_bf16_validation.md",
    ),
    (
        "Training in bfloat16: as good as float32? (round 10 of each, same labels and schedule)",
        "bash benchmarks/bf16_recipe.sh",
        "bf16/parity.md",
    ),
    (
        "Training in bfloat16: more rounds against the shipped PRM (the rule's choice)",
        "bash benchmarks/bf16_recipe.sh",
        "bf16/choice.md",
    ),
    (
        "Training in bfloat16: search on validation with round 14, paired with the shipped PRM",
        "bash benchmarks/bf16_recipe.sh",
        "bf16/bf16-round14/accuracy_vs_compute_validation_paired.md",
    ),
    (
        "Choosing how beam search and DVTS prune: validation split",
        "bash benchmarks/ship_round20.sh (accuracy_vs_compute.py --splits validation --strategies "
        "beam dvts --prune weighted prm, once per seed and group of budgets into "
        "benchmarks/results/ship20/validation/, then --merge of those runs with round 20's "
        "best-of-32, beam@16 and DVTS@16 run; the JSON's args.merged lists them)",
        "accuracy_vs_compute_validation.md",
    ),
    (
        "Choosing DVTS's subtrees on validation: 8 subtrees of 2 (beam_width=2)",
        "bash benchmarks/dvts_width.sh",
        "dvts_width/m2/accuracy_vs_compute_validation_paired.md",
    ),
    (
        "Choosing DVTS's subtrees on validation: 2 subtrees of 8 (beam_width=8)",
        "bash benchmarks/dvts_width.sh",
        "dvts_width/m8/accuracy_vs_compute_validation_paired.md",
    ),
    (
        "DVTS's candidates on validation: how far apart, and subtrees forced apart or together",
        "python benchmarks/dvts_picks.py --split validation --problems 200 --seeds 0 1",
        "dvts_picks_validation.md",
    ),
    (
        "What a perfect verifier would buy, on validation: the step checker in the PRM's place",
        "python benchmarks/prm_headroom.py --split validation --problems 200 --seeds 0 1",
        "prm_headroom_validation.md",
    ),
    (
        "Accuracy versus compute: test split",
        "bash benchmarks/ship_round20.sh (accuracy_vs_compute.py once per seed and group of "
        "--strategies, with --lookahead 1 --lookahead-ns 16 beside beam@16, particle_filtering "
        "and adaptive_best_of_n with --problems 100, into benchmarks/results/ship20/test/, "
        "then --merge of those runs with round 20's best-of-64, beam@16 and DVTS@16 run; the "
        "JSON's args.merged lists them)",
        "accuracy_vs_compute_test.md",
    ),
    (
        "Accuracy versus compute: the test tables rerun with today's code",
        "python benchmarks/accuracy_vs_compute.py --splits test --seeds 0 --search-ns 16 "
        "--strategies beam --results-dir runs/recheck && python benchmarks/accuracy_vs_compute.py "
        "--compare benchmarks/results/accuracy_vs_compute_test.json "
        "runs/recheck/accuracy_vs_compute_test.json",
        "accuracy_vs_compute_test_recheck.md",
    ),
    (
        "Accuracy versus compute: DVTS rerun with shared prompts, against the table before",
        "python benchmarks/accuracy_vs_compute.py --splits test --strategies dvts --results-dir "
        "runs/dvts-shared && python benchmarks/accuracy_vs_compute.py --compare "
        "benchmarks/results/dvts_shared/before/accuracy_vs_compute_test.json "
        "runs/dvts-shared/accuracy_vs_compute_test.json "
        "--results-dir benchmarks/results/dvts_shared && python benchmarks/accuracy_vs_compute.py "
        "--merge runs/dvts-shared/accuracy_vs_compute_test.json "
        "benchmarks/results/dvts_shared/before/accuracy_vs_compute_test.json --replace",
        "dvts_shared/accuracy_vs_compute_test_recheck.md",
    ),
    (
        "Accuracy versus compute: best-of-N rerun for the half-octave budgets, against the "
        "tables before",
        "for s in test longest validation; do python benchmarks/accuracy_vs_compute.py "
        "--splits $s --problems P --max-n M --strategies --results-dir runs/bon-grid/$s && "
        "python benchmarks/accuracy_vs_compute.py --compare "
        "benchmarks/results/accuracy_vs_compute_$s.json "
        "runs/bon-grid/$s/accuracy_vs_compute_$s.json --results-dir benchmarks/results/bon_grid "
        "&& python benchmarks/accuracy_vs_compute.py --merge "
        "runs/bon-grid/$s/accuracy_vs_compute_$s.json "
        "benchmarks/results/accuracy_vs_compute_$s.json; done  (P, M: 200, 64 on test; 100, 64 "
        "on longest; 200, 32 on validation)",
        "bon_grid/accuracy_vs_compute_test_recheck.md",
    ),
    (
        "Accuracy versus compute: longest split (4-operation chains only)",
        "bash benchmarks/ship_round20.sh (accuracy_vs_compute.py --splits longest --problems "
        "100 --strategies dvts beam --seeds S, one run per seed into "
        "benchmarks/results/ship20/longest/, then --merge of those runs; the JSON's "
        "args.merged lists them)",
        "accuracy_vs_compute_longest.md",
    ),
    (
        "Step-error identification (ProcessBench format)",
        "python benchmarks/prm_processbench.py",
        "prm_processbench.md",
    ),
    (
        "Why the PRM learns slowly: does the step tag see the step?",
        "python benchmarks/tag_signal.py",
        "tag_signal.md",
    ),
    (
        "The paper's lessons, in miniature",
        "bash benchmarks/label_mc_modes.sh && python benchmarks/lessons.py --steps 300 "
        "--batch-size 64 --variants mc:hard "
        "calculator:hard consensus:hard mc_full:hard mc_full:soft",
        "lessons.md",
    ),
    (
        "The lessons, once more: consensus of MC that trusts right answers or not",
        "bash benchmarks/label_mc_modes.sh && python benchmarks/lessons.py --steps 300 "
        "--batch-size 64 --name lessons_trust "
        "--variants consensus_trust:hard consensus_distrust:hard",
        "lessons_trust.md",
    ),
    (
        "Throughput",
        "python benchmarks/throughput.py",
        "throughput.md",
    ),
    (
        "PRM prefix reuse",
        "python benchmarks/prm_prefix_reuse.py --dataset arith --problems 64",
        "prm_prefix_reuse.md",
    ),
    (
        "Search server under load",
        "python benchmarks/serve_load.py",
        "serve_load.md",
    ),
    (
        "Search server: clients that leave a shared batch",
        "python benchmarks/serve_leave.py",
        "serve_leave.md",
    ),
    (
        "Search server: clients that leave a best-of-N batch",
        "python benchmarks/serve_leave.py --strategy best_of_n",
        "serve_leave_best_of_n.md",
    ),
    (
        "Decoding: the transformers generator's KV cache",
        "python benchmarks/generator_kv_cache.py",
        "generator_kv_cache.md",
    ),
    (
        "Decoding: from how many rows shared-prompt attention pays",
        "python benchmarks/shared_prompt_rows.py",
        "shared_prompt_rows.md",
    ),
    (
        "Policy backend for the embedded models on CPU, start-up included",
        "python benchmarks/backend_choice.py",
        "backend_choice.md",
    ),
    (
        "Beam search batched across problems: where the time goes",
        "python benchmarks/beam_batching.py",
        "beam_batching.md",
    ),
    (
        "Beam search batched, the policy re-encoding every prefix (before prompt reuse)",
        "python benchmarks/beam_batching.py --no-prompt-reuse",
        "beam_batching_no_prompt_reuse.md",
    ),
    (
        "Throughput on a GPU at the paper's model sizes",
        "python benchmarks/gpu_throughput.py",
        "gpu_throughput.md",
    ),
]
MISSING = {
    "gpu_throughput.md": (
        "_Not run yet: no GPU machine was lent to the sessions that wrote this script. On one "
        "GPU it builds a Qwen2.5-Math-1.5B-shaped policy and a Qwen2.5-Math-PRM-7B-shaped PRM "
        "with random weights (no download) and prints best-of-N engine/raw tokens/s (target "
        ">= 0.9), batched/per-problem beam speed-up (target >= 5x), PRM pooling tokens/s with "
        "and without prefix reuse and peak GPU memory; its defaults are sized for under 8 "
        "minutes, not yet timed on a GPU._"
    ),
}


def policy_curve() -> str:
    log_path = ROOT / "checkpoints" / "arith-policy" / "training_log.json"
    if not log_path.exists():
        return ""
    log = json.loads(log_path.read_text())
    lines = [
        f"Training curve ({log['num_parameters']:,} parameters, {log['minutes']:.1f} min on "
        "this machine's 2 CPU cores, `python -m search.envs.arith.train_policy`):",
        "",
        "| step | loss | validation greedy accuracy | validation sampled accuracy (T=1) |",
        "|---|---|---|---|",
    ]
    for row in log["history"]:
        lines.append(
            f"| {row['step']} | {row['loss']:.3f} | {row['val_greedy_accuracy']:.3f} | "
            f"{row.get('val_sampled_accuracy', float('nan')):.3f} |"
        )
    return "\n".join(lines)


def render() -> str:
    blocks = []
    for title, command, filename in SECTIONS:
        if filename == TARGETS:
            table = targets.markdown(targets.scoreboard(RESULTS))
            blocks.append(f"### {title}\n\n`{command}`\n\n{table}")
            continue
        path = RESULTS / filename
        missing = MISSING.get(filename, "_Not run yet._")
        body = path.read_text().strip() if path.exists() else missing
        block = f"### {title}\n\n`{command}`\n\n{body}"
        if filename == "policy_accuracy.md":
            curve = policy_curve()
            if curve:
                block += "\n\n" + curve
        picture = path.with_suffix(".png")
        if path.exists() and picture.exists():
            shown = picture.relative_to(RESULTS).as_posix()  # a file in a subfolder too
            block += f"\n\n![{title}](benchmarks/results/{shown})"
        blocks.append(block)
    return "\n\n".join(blocks)


def rendered_readme(readme: Path) -> tuple[str, str]:
    """README's text as it is, and with its results block rendered from the result files."""
    text = readme.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no {BEGIN} ... {END} block; add one where results go")
    return text, pattern.sub(lambda _: f"{BEGIN}\n{render()}\n{END}", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when README's results block differs from the result files",
    )
    args = parser.parse_args()
    readme = ROOT / "README.md"
    text, rendered = rendered_readme(readme)
    if args.check:
        if text != rendered:
            raise SystemExit(
                f"expected {readme}'s results block to match benchmarks/results, got a "
                "difference (a table edited by hand, or a result file newer than README); fix: "
                "python benchmarks/render_readme.py"
            )
        print(f"{readme}: results block matches benchmarks/results")
        return
    readme.write_text(rendered)
    print(f"updated {readme}")


if __name__ == "__main__":
    main()
