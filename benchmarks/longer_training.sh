#!/usr/bin/env bash
# Does the shipped PRM gain from one more training round? (README, "One more training round
# for the shipped PRM".) One round as make prm's last (2 epochs at 5e-4) continuing
# checkpoints/arith-prm on the labels it was trained on, then both on the validation split
# (step-error identification, and search paired with the shipped PRM's validation table).
# A measurement for choosing the next recipe, not a new shipped PRM: shipping one means
# choosing it on validation search too and regenerating the test tables. Resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
LABELS=${LABELS:-runs/prm/labels/consensus/stepwise.jsonl}
OUT=${OUT:-runs/prm-longer}
"$PY" -m prm.train train_data="$LABELS" output_dir="$OUT/round1" export_dir=null policy_dir=null \
  init_checkpoint=checkpoints/arith-prm epochs=2 batch_size=64 learning_rate=0.0005 progress=false
"$PY" benchmarks/prm_processbench.py --split validation --name prm_longer_validation \
  --prm shipped=checkpoints/arith-prm "shipped+1 round=$OUT/round1"
# search on validation with it, paired with the shipped PRM's validation table
results=benchmarks/results/longer
[ -f "$results/accuracy_vs_compute_validation.json" ] || "$PY" benchmarks/accuracy_vs_compute.py \
  --splits validation --max-n 32 --search-ns 16 --strategies beam dvts --prm "$OUT/round1" \
  --results-dir "$results"
"$PY" benchmarks/accuracy_vs_compute.py --paired \
  benchmarks/results/accuracy_vs_compute_validation.json \
  "$results/accuracy_vs_compute_validation.json" --results-dir "$results"
