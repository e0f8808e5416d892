#!/usr/bin/env bash
# Does the PRM gain from one more training round? (README, "One more training round for the
# shipped PRM".) One round as make prm's last (2 epochs at 5e-4) continuing the PRM shipped
# before it (checkpoints/arith-prm at commit 38c6079, written out by previous_prm.sh) on the
# labels it was trained on, then both on the validation split (step-error identification, and
# search paired with the previous PRM's validation table, benchmarks/results/previous/). It
# passed the rule fixed beforehand and was shipped (commit 646b35b); the PRM shipped now is
# this round plus two more (benchmarks/more_rounds.sh). Resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
source benchmarks/recipes.sh
LABELS=${LABELS:-runs/prm/labels/consensus/stepwise.jsonl}
OUT=${OUT:-runs/prm-longer}
PREVIOUS=${PREVIOUS:-runs/prm-previous}
bash benchmarks/previous_prm.sh "$PREVIOUS"
round_on_top "$PREVIOUS" "$OUT/round1"
"$PY" benchmarks/prm_processbench.py --split validation --name prm_longer_validation \
  --prm "previous=$PREVIOUS" "previous+1 round=$OUT/round1"
# search on validation with it, paired with the previous PRM's validation table
results=benchmarks/results/longer
search_on_validation "$OUT/round1" "$results"
# test and longest, read once after it was shipped: README's tables as they were then
# (accuracy_vs_compute.py, run with it; kept in benchmarks/results/rounds/before/ since the
# PRM moved on) paired with the previous PRM's, kept in benchmarks/results/previous/
for split in test longest; do
  "$PY" benchmarks/accuracy_vs_compute.py --paired \
    "benchmarks/results/previous/accuracy_vs_compute_$split.json" \
    "benchmarks/results/rounds/before/accuracy_vs_compute_$split.json" --results-dir "$results"
done
