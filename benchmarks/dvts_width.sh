#!/usr/bin/env bash
# How many subtrees should DVTS@16 grow? (README, "Choosing DVTS's subtrees on validation".)
# DVTS@16 with beam_width M=2 (8 subtrees) and M=8 (2 subtrees) on the validation split, each
# paired with README's validation table as it was then (kept in $OUT/m4/), which ran the
# default M=4 (4 subtrees); all with the PRM shipped then (commit 646b35b, written out by
# previous_prm.sh), so a rerun reproduces them after checkpoints/arith-prm moved on. The rule,
# fixed before these numbers existed: change conf/strategy/dvts.yaml's beam_width only if an M
# beats M=4 by at least one standard error, paired, and is above best-of-32 weighted on
# validation. Neither did, so M=4 stays. Resumes (a finished run is not rerun).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=benchmarks/results/dvts_width
PRM=${PRM:-runs/prm-shipped-646b35b}
bash benchmarks/previous_prm.sh "$PRM" 646b35b3963248d06cf2a985baf2f446c142f6ba
for m in 2 8; do
  [ -f "$OUT/m$m/accuracy_vs_compute_validation.json" ] || "$PY" benchmarks/accuracy_vs_compute.py \
    --splits validation --max-n 1 --search-ns 16 --strategies dvts --beam-width "$m" \
    --prm "$PRM" --results-dir "$OUT/m$m"
  "$PY" benchmarks/accuracy_vs_compute.py --paired \
    "$OUT/m4/accuracy_vs_compute_validation.json" \
    "$OUT/m$m/accuracy_vs_compute_validation.json" --results-dir "$OUT/m$m"
done
