#!/usr/bin/env bash
# Three ways to run MC on the same solutions, each with its consensus against the calculator
# judge, then one label-quality table (README, "three ways to run MC"):
#   trust:    early stop, a finished right-answer solution labelled right without rollouts
#             (what `make prm` runs);
#   distrust: early stop, every solution's prefixes rolled out (trust_right_answers=false);
#   full:     every prefix rolled out K times: soft labels (what lessons.py's soft rows need).
# Needs `make prm`'s samples; every labelling run resumes where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
LABELS=${LABELS:-runs/prm/labels}
SAMPLES=${SAMPLES:-runs/prm/samples/samples.jsonl}
LIMIT=${LIMIT:-8192}
VERIFIER=${VERIFIER:-checkpoints/arith-verifier-base}
mc() {
  local name=$1; shift
  "$PY" -m prm.label labeller=mc samples="$SAMPLES" output_dir="$LABELS/mc_$name" \
    chunk_solutions=2048 limit="$LIMIT" policy.model="$VERIFIER" policy.backend=hf \
    progress=false "$@"
  "$PY" -m prm.label labeller=consensus samples="$SAMPLES" output_dir="$LABELS/consensus_$name" \
    labeller.mc_records="$LABELS/mc_$name/records.jsonl" limit="$LIMIT" progress=false
}
mc trust labeller.early_stop=true
mc distrust labeller.early_stop=true labeller.trust_right_answers=false
mc full labeller.early_stop=false
"$PY" benchmarks/label_quality.py --samples "$SAMPLES" --limit "$LIMIT" \
  --name label_quality_mc_modes --consensus "$LABELS"/consensus_{trust,distrust,full}/records.jsonl
