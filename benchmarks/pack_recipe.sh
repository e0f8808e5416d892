#!/usr/bin/env bash
# Packed training batches against padded ones (README, "PRM training speed" and "Choosing the
# training recipe on validation: packed batches"): the eight training rounds make prm had then, with
# PACK=true on the default rebuild's consensus labels (runs/prm-timed: the same data, rounds and
# learning rates; its sampling and labelling are shared, so their stage times carry over), both
# rebuilds round by round on the validation split. The rule, fixed before the packed rebuild's
# numbers existed: PACK=true becomes make prm's default if packed steps are at least 1.25x as
# fast and its last round's validation step F1 is at most 1.5 points below the plain rebuild's.
# It passed. make prm had eight float32 rounds then (REFINE_LRS below); it had two more after,
# which benchmarks/more_rounds.sh trains on top of this packed rebuild and times with it
# (README, "`make prm` timed in float32, ten rounds"); make prm trains twenty rounds in
# bfloat16 today (benchmarks/prm_rounds.sh). Every stage resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
source benchmarks/recipes.sh
# the eight rounds make prm ran when this was decided, in float32
export REFINE_LRS="0.001 0.001 0.001 0.001 0.001 0.0005 0.0005" BF16=false
PLAIN=${PLAIN:-runs/prm-timed}
PACKED=${PACKED:-runs/prm-packed}
# the plain rebuild (make prm's timed run), unless it has trained its eight rounds
[ -f "$PLAIN/refine7/training_log.json" ] || RUN="$PLAIN" EXPORT="$PLAIN/export" PACK=false \
  bash benchmarks/build_prm.sh
grep -q packed benchmarks/results/prm_train_speed.json 2>/dev/null || "$PY" \
  benchmarks/prm_train_speed.py --train-data "$PLAIN/labels/consensus/stepwise.jsonl" \
  --init "$PLAIN/refine6" --steps 60
mkdir -p "$PACKED"
for part in samples labels; do
  [ -e "$PACKED/$part" ] || ln -s "$(realpath "$PLAIN/$part")" "$PACKED/$part"
done
if [ ! -f "$PACKED/stages.log" ]; then  # the four shared stages' times, or nothing
  grep -E "^STAGE (sample|mc|calculator|consensus) " "$PLAIN/stages.log" > "$PACKED/stages.partial"
  mv "$PACKED/stages.partial" "$PACKED/stages.log"
fi
# its own export directory: more_rounds.sh's later rounds export make prm's PRM to "$PACKED/export"
RUN="$PACKED" EXPORT="$PACKED/export-8rounds" STAGES=train PACK=true bash benchmarks/build_prm.sh
rounds_on_validation prm_packed_validation plain "$PLAIN" packed "$PACKED" \
  model refine1 refine2 refine3 refine4 refine5 refine6 refine7
