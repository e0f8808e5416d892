#!/usr/bin/env bash
# How many subtrees should DVTS@16 grow? (README, "Choosing DVTS's subtrees on validation".)
# DVTS@16 with beam_width M=2 (8 subtrees) and M=8 (2 subtrees) on the validation split, each
# paired with README's validation table, which ran the default M=4 (4 subtrees). The rule,
# fixed before these numbers existed: change conf/strategy/dvts.yaml's beam_width only if an M
# beats M=4 by at least one standard error, paired, and is above best-of-32 weighted on
# validation. Neither did, so M=4 stays. Resumes (a finished run is not rerun).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=benchmarks/results/dvts_width
for m in 2 8; do
  [ -f "$OUT/m$m/accuracy_vs_compute_validation.json" ] || "$PY" benchmarks/accuracy_vs_compute.py \
    --splits validation --max-n 1 --search-ns 16 --strategies dvts --beam-width "$m" \
    --results-dir "$OUT/m$m"
  "$PY" benchmarks/accuracy_vs_compute.py --paired \
    benchmarks/results/accuracy_vs_compute_validation.json \
    "$OUT/m$m/accuracy_vs_compute_validation.json" --results-dir "$OUT/m$m"
done
