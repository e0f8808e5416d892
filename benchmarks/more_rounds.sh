#!/usr/bin/env bash
# More training rounds for the shipped PRM? (README, "Two more training rounds".) Rounds 2 and
# 3 on top of the PRM shipped at commit 646b35b (itself one round on top of the PRM before:
# benchmarks/longer_training.sh), each as make prm's last (2 epochs at 5e-4, packed batches) on
# the labels they were all trained on; then every one on the validation split: step-error
# identification, and search paired with the shipped PRM's validation table
# (benchmarks/results/longer/, written by longer_training.sh).
#
# The rule, written before any of these numbers existed: a round passes if its validation step
# F1 on the policy's solutions is at least the shipped PRM's and its mean over best-of-16
# argmax, best-of-16 weighted, beam@16 and DVTS@16 is not lower than the shipped PRM's. Of the
# rounds that pass, the one with the higher four-row mean is shipped (a tie: the fewer rounds),
# and make prm runs as many more rounds. Test is read once, after the choice. Then make prm,
# timed: its rounds on top of the packed rebuild of benchmarks/pack_recipe.sh (the same labels
# and first eight rounds), the stage table, and the rebuilt PRM on step-error identification.
# Resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
source benchmarks/recipes.sh
shipped_b786
LABELS=${LABELS:-runs/prm/labels/consensus/stepwise.jsonl}
OUT=${OUT:-runs/prm-rounds}
SHIPPED=${SHIPPED:-runs/prm-shipped-646b35b}
bash benchmarks/previous_prm.sh "$SHIPPED" 646b35b3963248d06cf2a985baf2f446c142f6ba
previous=$SHIPPED
for round in round2 round3; do
  round_on_top "$previous" "$OUT/$round" pack=true
  previous=$OUT/$round
done
"$PY" benchmarks/prm_processbench.py --split validation --name prm_rounds_validation \
  --prm "shipped=$SHIPPED" "shipped+1 round=$OUT/round2" "shipped+2 rounds=$OUT/round3"
results=benchmarks/results/rounds
for round in round2 round3; do
  search_on_validation "$OUT/$round" "$results/$round" \
    benchmarks/results/longer/accuracy_vs_compute_validation.json
done
"$PY" benchmarks/round_rule.py --processbench benchmarks/results/prm_rounds_validation.json \
  --shipped shipped --candidate "shipped+1 round=$results/round2" \
  --candidate "shipped+2 rounds=$results/round3" --out "$results/choice.md"
# test and longest, read once after the choice was shipped: README's tables (accuracy_vs_compute.py,
# run with it) paired with those of the PRM shipped before, kept in benchmarks/results/rounds/before/
# (README's tables as they were then: their DVTS rows were rerun later, once DVTS subtrees at
# one prefix shared a prompt, which draws anew; benchmarks/results/dvts_shared/before/ keeps
# them as they were)
for split in test longest; do
  # they must have been run with the PRM shipped now, or the pairs would be of one PRM
  "$PY" benchmarks/accuracy_vs_compute.py --paired \
    "$results/before/accuracy_vs_compute_$split.json" \
    "benchmarks/results/dvts_shared/before/accuracy_vs_compute_$split.json" \
    --new-prm "$SHIPPED_B786" --results-dir "$results"
done
# make prm with the chosen rounds (build_prm.sh's REFINE_LRS), timed on the packed rebuild
PACKED=${PACKED:-runs/prm-packed}
[ -f "$PACKED/refine7/training_log.json" ] || bash benchmarks/pack_recipe.sh
# (the float32 rounds make prm ran then: make prm trains in bfloat16 today, prm_rounds.sh)
source benchmarks/prm_rounds.sh
read -r -a lrs <<< "$FLOAT32_REFINE_LRS"
# once its last round has trained, not again: every resumed stage would log its checks' seconds
[ -f "$PACKED/refine${#lrs[@]}/training_log.json" ] || RUN="$PACKED" EXPORT="$PACKED/export" \
  STAGES=train PACK=true BF16=false REFINE_LRS="$FLOAT32_REFINE_LRS" bash benchmarks/build_prm.sh
"$PY" benchmarks/prm_pipeline_times.py --run "$PACKED" --name prm_pipeline_packed
"$PY" benchmarks/prm_processbench.py --prm "$PACKED/export" --name prm_processbench_packed
# Training noise, measured after the choice and not part of it: the same two rounds with
# training seed 1 (other shuffles and dropout masks), on step-error identification beside seed 0
previous=$SHIPPED
for round in round2 round3; do
  round_on_top "$previous" "$OUT/seed1-$round" pack=true seed=1
  previous=$OUT/seed1-$round
done
"$PY" benchmarks/prm_processbench.py --split validation --name prm_rounds_seeds_validation \
  --prm "shipped=$SHIPPED" "+1 round, seed 0=$OUT/round2" "+2 rounds, seed 0=$OUT/round3" \
  "+1 round, seed 1=$OUT/seed1-round2" "+2 rounds, seed 1=$OUT/seed1-round3"
