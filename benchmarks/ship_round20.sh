#!/usr/bin/env bash
# Ship make prm's round 20 (its twenty bfloat16 rounds), chosen on validation by round_rule.py
# against the PRM shipped before it (bf16_more_rounds.sh) and read once on test after the
# choice: benchmarks/ship_prm.sh does the work (its head says what). This run rebuilt it byte
# for byte in 74 minutes (README, "Shipping round 20") and reran the tables in 16; rerun, it
# finds every piece there and only merges and pairs again.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-runs/prm-e2e20} OUT=benchmarks/results/ship20 NAME="round 20" \
  STAGE_TABLE=prm_pipeline_make20_e2e \
  CHOSEN_TEST=benchmarks/results/more_bf16/test/accuracy_vs_compute_test.json \
  CHOSEN_VALIDATION=benchmarks/results/more_bf16/round20/accuracy_vs_compute_validation.json \
  exec bash benchmarks/ship_prm.sh
