#!/usr/bin/env bash
# Choosing make prm's MC recipe on validation (README, "Choosing the MC recipe on validation"):
# the default rebuild (early-stop MC trusting right answers, runs/prm-timed) against one whose MC
# rolls out the prefixes of right-answer solutions too (TRUST_RIGHT_ANSWERS=false,
# runs/prm-distrust), built from the same samples; then, on the validation split, both final
# PRMs and the shipped one on step-error identification (the same exported solutions for all),
# every training round of both rebuilds, and search with the rolled-out PRM paired against the
# shipped PRM's validation table; last, the test split once for each recipe. Every stage resumes.
# Both rebuilds follow make prm's recipe as it was then, seven float32 rounds (pinned below: make
# prm has seven more since, in bfloat16), and get an eighth (refine7) for the round table. "shipped" was the PRM shipped
# then (checkpoints/arith-prm at commit 38c6079, written out by previous_prm.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
source benchmarks/recipes.sh
TRUSTING=${TRUSTING:-runs/prm-timed}
ROLLED=${ROLLED:-runs/prm-distrust}
export REFINE_LRS="0.001 0.001 0.001 0.001 0.001 0.0005" PACK=false BF16=false
PREVIOUS=${PREVIOUS:-runs/prm-previous}
bash benchmarks/previous_prm.sh "$PREVIOUS"
# the default rebuild (make prm's timed run), unless it has trained its seven rounds
[ -f "$TRUSTING/refine6/training_log.json" ] || RUN="$TRUSTING" EXPORT="$TRUSTING/export" \
  bash benchmarks/build_prm.sh
# the same solutions: the two rebuilds differ in their MC labels only (copied whole, then moved)
if [ ! -d "$ROLLED/samples" ]; then
  mkdir -p "$ROLLED"
  rm -rf "$ROLLED/samples.partial"
  cp -r "$TRUSTING/samples" "$ROLLED/samples.partial"
  mv "$ROLLED/samples.partial" "$ROLLED/samples"
fi
RUN="$ROLLED" EXPORT="$ROLLED/export" TRUST_RIGHT_ANSWERS=false bash benchmarks/build_prm.sh
recipes=("shipped=$PREVIOUS" "trusting=$TRUSTING/refine6" "rolled-out=$ROLLED/export")
"$PY" benchmarks/prm_processbench.py --split validation --name prm_recipes_validation \
  --prm "${recipes[@]}"
# one round beyond make prm's for both (2 epochs more at 5e-4): does training still pay?
for run in "$TRUSTING" "$ROLLED"; do
  "$PY" -m prm.train train_data="$run/labels/consensus/stepwise.jsonl" output_dir="$run/refine7" \
    export_dir=null policy_dir=null init_checkpoint="$run/refine6" epochs=2 batch_size=64 \
    learning_rate=0.0005 progress=false
done
rounds_on_validation prm_recipes_rounds_validation trusting "$TRUSTING" rolled-out "$ROLLED" \
  model refine1 refine2 refine3 refine4 refine5 refine6 refine7
search_on_validation "$ROLLED/export" benchmarks/results/rolled_out
"$PY" benchmarks/prm_pipeline_times.py --run "$ROLLED" --name prm_pipeline_distrust
"$PY" benchmarks/prm_processbench.py --name prm_recipes_test --prm "${recipes[@]}"
