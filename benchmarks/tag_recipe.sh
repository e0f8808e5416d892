#!/usr/bin/env bash
# A step tag that sees the step, trained to make prm's full length (README, "A tag that sees
# the step, at make prm's length"): make prm's recipe with TAG_FROM_SEPARATOR=true (the tag's
# embedding starts as the newline's, prm.train tag_from_separator), rebuilt stage by stage in
# its own run directory (sampling and labelling are seeded, so its labels are make prm's), then
# against the shipped PRM on the validation split: step-error identification of both (each
# training round's own validation F1 is in its stage table, prm_pipeline_tag), and search
# paired with the shipped PRM's validation table
# (benchmarks/results/ship20/before/accuracy_vs_compute_validation.json: the tables of then).
#
# The rule, written before any of its numbers existed, is round_rule.py's: the candidate
# passes if its validation step F1 on the policy's solutions is at least the shipped PRM's and
# its mean over best-of-16 argmax, best-of-16 weighted, beam@16 and DVTS@16 is not lower. Only a
# candidate that passes and is shipped is read on test. Every stage resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
source benchmarks/recipes.sh
shipped_b786
RUN=${RUN:-runs/prm-tag}
source benchmarks/prm_rounds.sh
# make prm's recipe when this ran (float32 rounds): make prm trains in bfloat16 today
RUN="$RUN" EXPORT="$RUN/export" TAG_FROM_SEPARATOR=true PY="$PY" BF16=false \
  REFINE_LRS="$FLOAT32_REFINE_LRS" bash benchmarks/build_prm.sh
"$PY" benchmarks/prm_pipeline_times.py --run "$RUN" --name prm_pipeline_tag
results=benchmarks/results/tag
[ -f benchmarks/results/prm_tag_validation.json ] || "$PY" benchmarks/prm_processbench.py \
  --split validation --name prm_tag_validation \
  --prm "shipped=$SHIPPED_B786" "tag from separator=$RUN/export"
search_on_validation "$RUN/export" "$results" \
  benchmarks/results/ship20/before/accuracy_vs_compute_validation.json
"$PY" benchmarks/round_rule.py --processbench benchmarks/results/prm_tag_validation.json \
  --shipped shipped --candidate "tag from separator=$results" --out "$results/choice.md"
