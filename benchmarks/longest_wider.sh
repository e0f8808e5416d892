#!/usr/bin/env bash
# Does round 20 lose on the longest split? (README, "Round 20, shipped, against the PRM before
# it".) Its rerun of the longest table (100 problems x 2 seeds) read every PRM-guided row
# 0.02-0.04 below the PRM shipped before it, each within 1.6 standard errors. Here the first
# 400 of the split's 500 problems (the 100 read already among them), 2 seeds, with both
# PRMs: best-of-N to 32, beam@16 and DVTS@16, paired. Reported, not chosen on: round 20 is
# shipped either way, and the split is not used to choose anything. Resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
source benchmarks/recipes.sh
shipped_b786
results=benchmarks/results/longest_wider
for side in before:"$SHIPPED_B786" shipped:checkpoints/arith-prm; do
  name=${side%%:*} prm=${side#*:}
  [ -f "$results/$name/accuracy_vs_compute_longest.json" ] || "$PY" \
    benchmarks/accuracy_vs_compute.py --splits longest --problems 400 --max-n 32 \
    --search-ns 16 --strategies beam dvts --prm "$prm" --results-dir "$results/$name"
done
"$PY" benchmarks/accuracy_vs_compute.py --paired "$results/before/accuracy_vs_compute_longest.json" \
  "$results/shipped/accuracy_vs_compute_longest.json" --new-prm checkpoints/arith-prm \
  --results-dir "$results"
