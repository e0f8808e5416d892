#!/usr/bin/env bash
# More bfloat16 rounds for make prm? (README, "More bfloat16 rounds".) make prm's fourteen
# bfloat16 rounds leave room under its 90 minutes (benchmarks/make_prm_bf16.sh times them).
# Rounds 15 to 20, each as make prm's last (2 epochs at 5e-4, packed, bfloat16) continuing make
# prm's PRM (runs/prm-make/export) on its labels, each timed ($OUT/stages.log); then rounds
# 16, 18 and 20 on the validation split: step-error identification beside the shipped PRM and
# make prm's round 14, and search (best-of-32, beam@16, DVTS@16, 200 problems x 2 seeds)
# paired with the shipped PRM's validation table (benchmarks/results/bf16/shipped/).
#
# The rule, written before any of these numbers existed: round_rule.py as written (no
# tolerance) against the shipped PRM: a round passes if its validation step F1 on the
# policy's solutions is at least the shipped PRM's and its four-row mean (best-of-16 argmax,
# best-of-16 weighted, beam@16, DVTS@16) is not lower; of those that pass, the higher mean wins
# (a tie: fewer rounds). A winner becomes make prm's recipe only if make prm's stages plus its
# extra rounds stay within 90 minutes, and is shipped only then; test is read once, after.
# Round 20 won and is make prm's recipe (benchmarks/prm_rounds.sh). Its time: the stages of
# make_prm_bf16.sh's timed run and the six rounds here, run one after the other on a machine
# left to them, in one stage table ($VIEW: that run's directory with these rounds as its
# refine14 to refine19). Its step-error identification and search on test are read here,
# once, after the choice; benchmarks/ship_round20.sh ships it (make prm rebuilt it byte for
# byte) and reruns every table with it. "shipped" here is the PRM shipped before it (commit
# 26173b9, recipes.sh's shipped_b786). Every stage resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
source benchmarks/recipes.sh
shipped_b786
MAKE=${MAKE:-runs/prm-make}
OUT=${OUT:-runs/prm-more}
LABELS="$MAKE/labels/consensus/stepwise.jsonl"
[ -f "$MAKE/export/config.json" ] || bash benchmarks/make_prm_bf16.sh
mkdir -p "$OUT"
previous="$MAKE/export"
for round in 15 16 17 18 19 20; do
  if [ ! -f "$OUT/round$round/training_log.json" ]; then  # timed once, when it trains
    start=$(date +%s)
    round_on_top "$previous" "$OUT/round$round" pack=true bf16=true
    echo "STAGE round$round SECONDS $(($(date +%s) - start))" | tee -a "$OUT/stages.log"
  fi
  previous="$OUT/round$round"
done
[ -f benchmarks/results/prm_more_bf16_validation.json ] || "$PY" \
  benchmarks/prm_processbench.py --split validation --name prm_more_bf16_validation \
  --prm "shipped=$SHIPPED_B786" "round 14=$MAKE/export" "round 16=$OUT/round16" \
  "round 18=$OUT/round18" "round 20=$OUT/round20"
results=benchmarks/results/more_bf16
baseline=benchmarks/results/bf16/shipped/accuracy_vs_compute_validation.json
candidates=()
for round in 16 18 20; do
  search_on_validation "$OUT/round$round" "$results/round$round" "$baseline"
  candidates+=(--candidate "round $round=$results/round$round")
done
"$PY" benchmarks/round_rule.py --processbench benchmarks/results/prm_more_bf16_validation.json \
  --shipped shipped "${candidates[@]}" --out "$results/choice.md"
# make prm's twenty rounds as one run directory (links, written once) and its stage table
VIEW=${VIEW:-runs/prm-make20}
if [ ! -f "$VIEW/stages.log" ]; then
  rm -rf "$VIEW.partial"
  mkdir -p "$VIEW.partial"
  for part in samples labels model $(seq -f "refine%g" 1 13); do
    ln -s "$(realpath "$MAKE/$part")" "$VIEW.partial/$part"
  done
  for round in $(seq 15 20); do
    ln -s "$(realpath "$OUT/round$round")" "$VIEW.partial/refine$((round - 1))"
  done
  cp "$MAKE/stages.log" "$VIEW.partial/stages.log"
  while read -r _ name _ seconds; do
    echo "STAGE refine$((${name#round} - 1)) SECONDS $seconds"
  done < "$OUT/stages.log" >> "$VIEW.partial/stages.log"
  mv "$VIEW.partial" "$VIEW"
fi
"$PY" benchmarks/prm_pipeline_times.py --run "$VIEW" --name prm_pipeline_make20
[ -f benchmarks/results/prm_processbench_more_bf16.json ] || "$PY" \
  benchmarks/prm_processbench.py --name prm_processbench_more_bf16 \
  --prm "shipped=$SHIPPED_B786" "round 20=$OUT/round20"
# search on test with round 20, read once after the choice: beam@16, DVTS@16 and best-of-N up
# to 64 (the budgets the scoreboard compares them with), paired with the shipped PRM's test
# table (kept in benchmarks/results/ship20/before/ since round 20 was shipped).
[ -f "$results/test/accuracy_vs_compute_test.json" ] || "$PY" benchmarks/accuracy_vs_compute.py \
  --splits test --max-n 64 --search-ns 16 --strategies beam dvts --prm "$OUT/round20" \
  --results-dir "$results/test"
"$PY" benchmarks/accuracy_vs_compute.py --paired \
  benchmarks/results/ship20/before/accuracy_vs_compute_test.json \
  "$results/test/accuracy_vs_compute_test.json" --results-dir "$results/test"
