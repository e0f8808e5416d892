# Steps shared by the scripts that choose a recipe on the validation split (mc_recipes.sh,
# train_recipes.sh, pack_recipe.sh, longer_training.sh, more_rounds.sh): sourced, not run. They
# call "$PY".

# rounds_on_validation NAME LABEL_A RUN_A LABEL_B RUN_B ROUND...: every training round of two
# rebuilds on step-error identification (benchmarks/results/NAME.{json,md}), each round of
# each rebuild a PRM named LABEL-ROUND.
rounds_on_validation() {
  local name=$1 label_a=$2 run_a=$3 label_b=$4 run_b=$5 round
  shift 5
  local rounds=()
  for round in "$@"; do
    rounds+=("$label_a-$round=$run_a/$round" "$label_b-$round=$run_b/$round")
  done
  "$PY" benchmarks/prm_processbench.py --split validation --name "$name" --prm "${rounds[@]}"
}

# The PRM shipped from commit 26173b9 until make prm's round 20 replaced it (ship_round20.sh),
# written out of git history: the scripts that measured against "the shipped PRM" before then
# (bf16_recipe.sh, make_prm_bf16.sh, bf16_more_rounds.sh, tag_recipe.sh, more_rounds.sh) read
# it here, so a rerun reproduces their tables after checkpoints/arith-prm moved on.
SHIPPED_B786=${SHIPPED_B786:-runs/prm-shipped-26173b9}
shipped_b786() { bash benchmarks/previous_prm.sh "$SHIPPED_B786" 26173b9b8d39ea9b106e0da956cae3981d0f96be; }

# round_on_top INIT OUT [OVERRIDE...]: one training round as make prm's last (2 epochs at 5e-4)
# continuing the PRM in INIT on "$LABELS", into OUT (resumes; a finished round is left as it is).
round_on_top() {
  local init=$1 out=$2
  shift 2
  "$PY" -m prm.train train_data="$LABELS" output_dir="$out" export_dir=null policy_dir=null \
    init_checkpoint="$init" epochs=2 batch_size=64 learning_rate=0.0005 progress=false "$@"
}

# search_on_validation PRM OUT [BASELINE]: best-of-32, beam@16 and DVTS@16 with PRM on the
# validation split into OUT (unless OUT holds them), paired with BASELINE's validation table
# (default the previous PRM's, benchmarks/results/previous/). The baselines kept in
# benchmarks/results/ ran DVTS before its subtrees at one prefix shared a prompt: the same
# distribution, other draws, so a new run's DVTS@16 pairs with them without the pairing's
# smaller error; rerun the baseline for a tight DVTS pair.
search_on_validation() {
  local prm=$1 out=$2
  local baseline=${3:-benchmarks/results/previous/accuracy_vs_compute_validation.json}
  [ -f "$out/accuracy_vs_compute_validation.json" ] || "$PY" benchmarks/accuracy_vs_compute.py \
    --splits validation --max-n 32 --search-ns 16 --strategies beam dvts --prm "$prm" \
    --results-dir "$out"
  "$PY" benchmarks/accuracy_vs_compute.py --paired \
    "$baseline" "$out/accuracy_vs_compute_validation.json" --results-dir "$out"
}
