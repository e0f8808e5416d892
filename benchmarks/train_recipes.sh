#!/usr/bin/env bash
# Training with batches grouped by length against the plain shuffle (README, "PRM training
# speed" and "Choosing the training recipe on validation"): the speed of the same optimizer
# steps both ways, then make prm's first three training rounds (model, refine1, refine2) with
# GROUP_BY_LENGTH=true on the default rebuild's consensus labels (runs/prm-timed, the same
# data and learning rates), and both rebuilds' PRMs, round by round, on the validation split.
# Three rounds, not seven: grouped training trails the plain shuffle's by about 20 points of
# validation F1 at each of them. Every stage resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
source benchmarks/recipes.sh
PLAIN=${PLAIN:-runs/prm-timed}
GROUPED=${GROUPED:-runs/prm-grouped}
DATA="$PLAIN/labels/consensus/stepwise.jsonl"
[ -f benchmarks/results/prm_train_speed.json ] || "$PY" benchmarks/prm_train_speed.py \
  --train-data "$DATA" --init "$PLAIN/refine6" --steps 60
RUN="$GROUPED" EXPORT="$GROUPED/export" STAGES=train TRAIN_DATA="$DATA" GROUP_BY_LENGTH=true \
  PACK=false BF16=false REFINE_LRS="0.001 0.001" bash benchmarks/build_prm.sh
rounds_on_validation prm_training_validation plain "$PLAIN" grouped "$GROUPED" \
  model refine1 refine2
