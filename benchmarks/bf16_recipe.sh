#!/usr/bin/env bash
# PRM training in bfloat16 (prm.train bf16: forward and backward autocast to bfloat16, float32
# weights and optimizer), and what its time buys (README, the sections "Training in bfloat16").
#
# 1. make prm's float32 training rounds then, with BF16=true, on the labels of the end-to-end
#    float32 rebuild (runs/prm-e2e, `RUN=runs/prm-e2e EXPORT=runs/prm-e2e/export BF16=false
#    REFINE_LRS="$FLOAT32_REFINE_LRS" bash benchmarks/build_prm.sh`, as this script runs it):
#    the same data, seed and schedule, so each round pairs with that rebuild's; then four more
#    rounds at 5e-4 (rounds 11 to 14), which the float32 recipe has no room for in 90 minutes.
# 2. On the validation split: step-error identification of the shipped PRM, the float32
#    rebuild's round 10, the bfloat16 rounds 10 and 14, and one float32 round on top of the
#    shipped PRM (round 11 of the shipped PRM, as make prm's last); search (best-of-32, beam@16,
#    DVTS@16, 200 problems x 2 seeds) with each, paired with the shipped PRM's table rerun with
#    today's code (benchmarks/results/bf16/shipped/).
#
# The rules, written before any of these numbers existed:
# - parity: bfloat16 training builds as good a PRM if its round 10 is within 2.5 points of
#   validation step F1 (the spread of two training seeds, README "a second training seed") of
#   the float32 round 10, and its four-row mean (best-of-16 argmax, best-of-16 weighted,
#   beam@16, DVTS@16) is at most 0.015 below the float32 round 10's (about the standard error
#   of one such paired row at 200 problems x 2 seeds);
# - shipping: a candidate (bfloat16 round 14, float32 shipped + 1 round) passes round_rule.py
#   against the shipped PRM. One that passes is shipped only with make prm rebuilding it within
#   90 minutes (timed), and is read on test once, after that.
# Every stage resumes. It pins the float32 recipe it was judged against (FLOAT32_REFINE_LRS,
# BF16=false); make prm runs its bfloat16 rounds today (benchmarks/prm_rounds.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
source benchmarks/recipes.sh
shipped_b786
source benchmarks/prm_rounds.sh
FP32=${FP32:-runs/prm-e2e}
RUN=${RUN:-runs/prm-bf16}
LABELS="$FP32/labels/consensus/stepwise.jsonl"
# the float32 rebuild, whole (labels and export: its round 10 is compared below); resumes
[ -f "$FP32/export/config.json" ] || RUN="$FP32" EXPORT="$FP32/export" PY="$PY" \
  BF16=false REFINE_LRS="$FLOAT32_REFINE_LRS" bash benchmarks/build_prm.sh
RUN="$RUN" EXPORT="$RUN/export" STAGES=train TRAIN_DATA="$LABELS" BF16=true PY="$PY" \
  REFINE_LRS="$FLOAT32_REFINE_LRS 0.0005 0.0005 0.0005 0.0005" bash benchmarks/build_prm.sh
"$PY" benchmarks/prm_pipeline_times.py --run "$RUN" --name prm_pipeline_bf16
round_on_top "$SHIPPED_B786" runs/prm-shipped-round11 pack=true
results=benchmarks/results/bf16
[ -f benchmarks/results/prm_bf16_validation.json ] || "$PY" benchmarks/prm_processbench.py \
  --split validation --name prm_bf16_validation \
  --prm "shipped=$SHIPPED_B786" "float32 round 10=$FP32/export" \
  "bfloat16 round 10=$RUN/refine9" "bfloat16 round 14=$RUN/export" \
  "shipped + 1 round=runs/prm-shipped-round11"
[ -f "$results/shipped/accuracy_vs_compute_validation.json" ] || "$PY" \
  benchmarks/accuracy_vs_compute.py --splits validation --max-n 32 --search-ns 16 \
  --strategies beam dvts --prm "$SHIPPED_B786" --results-dir "$results/shipped"
baseline="$results/shipped/accuracy_vs_compute_validation.json"
search_on_validation "$FP32/export" "$results/fp32-round10" "$baseline"
search_on_validation "$RUN/refine9" "$results/bf16-round10" "$baseline"
search_on_validation "$RUN/export" "$results/bf16-round14" "$baseline"
search_on_validation runs/prm-shipped-round11 "$results/shipped-round11" "$baseline"
# parity: bfloat16 round 10 against float32 round 10, paired (round_rule.py, loosened)
"$PY" benchmarks/accuracy_vs_compute.py --paired \
  "$results/fp32-round10/accuracy_vs_compute_validation.json" \
  "$results/bf16-round10/accuracy_vs_compute_validation.json" --results-dir "$results/parity"
"$PY" benchmarks/round_rule.py --processbench benchmarks/results/prm_bf16_validation.json \
  --shipped "float32 round 10" --candidate "bfloat16 round 10=$results/parity" \
  --f1-tolerance 2.5 --mean-tolerance 0.015 --out "$results/parity.md"
# shipping: each candidate against the shipped PRM
"$PY" benchmarks/round_rule.py --processbench benchmarks/results/prm_bf16_validation.json \
  --shipped shipped --candidate "bfloat16 round 14=$results/bf16-round14" \
  --candidate "shipped + 1 round=$results/shipped-round11" --out "$results/choice.md"
