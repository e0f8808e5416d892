#!/usr/bin/env bash
# Ship the PRM `make prm` builds, once a candidate of its recipe was chosen on validation by
# round_rule.py and read once on test: rebuild it, check it is that candidate byte for byte,
# copy it over checkpoints/arith-prm and rerun every table the scoreboard reads with it.
# benchmarks/ship_round20.sh names what it shipped (round 20); the next ship names its own.
#
#   RUN=runs/prm-next OUT=benchmarks/results/ship-next NAME="round 24" \
#   STAGE_TABLE=prm_pipeline_make_next CHOSEN_TEST=.../accuracy_vs_compute_test.json \
#   CHOSEN_VALIDATION=.../accuracy_vs_compute_validation.json bash benchmarks/ship_prm.sh
#
# CHOSEN_TEST: the candidate's test run (best-of-N to 64, beam@16 and DVTS@16, 200 problems x
# 2 seeds, as bf16_more_rounds.sh runs it); CHOSEN_VALIDATION: its validation run (best-of-32,
# beam@16 and DVTS@16, recipes.sh's search_on_validation). Both record the weights' digest,
# which the rebuilt weights must match. Every step resumes, across sessions too: the pieces
# land in $OUT (commit them as they land) and a step whose file is there is skipped.
#
# 1. make prm end to end with its recipe, in $RUN on a machine left to it; skipped once the
#    shipped weights are the chosen ones. README's tables of the PRM shipped until then are
#    copied to $OUT/before/ first.
# 2. Its weights must be, byte for byte, those of CHOSEN_TEST and CHOSEN_VALIDATION
#    (same_weights.py writes make_prm_identity); else the script stops, since a PRM that
#    differs was not judged. Then its stage table ($STAGE_TABLE) is written and the weights
#    are copied over checkpoints/arith-prm: commit them with those two files.
# 3. ProcessBench (step-error identification) with the shipped PRM.
# 4. The tables the scoreboard reads, rerun with the shipped PRM: test, longest, validation.
#    The test and validation tables reuse the chosen runs; the other pieces run best-of-N at
#    N=1 only, and merging refuses any row a piece shares with another unless its grades are
#    the same (the best-of-1 rows, beam@16 rerun beside the lookahead, 100-problem rows
#    against the first 100 of 200), so the pieces check each other. A split's table in
#    benchmarks/results/ is replaced when all its pieces are there; until then the scoreboard
#    reads its old table as stale. Last, each new table is paired with the one it replaced.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
for name in RUN OUT NAME STAGE_TABLE CHOSEN_TEST CHOSEN_VALIDATION; do
  if [ -z "${!name:-}" ]; then
    echo "expected $name to be set, got nothing; fix: see the head of $0" >&2
    exit 2
  fi
done
SHIPPED=checkpoints/arith-prm
digest() { "$PY" -c 'import sys; from search.resolve import weights_digest as d; print(d(sys.argv[1]))' "$1"; }
recorded() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["args"]["prm_sha256"])' "$1"; }
chosen=$(recorded "$CHOSEN_TEST")
if [ "$(digest "$SHIPPED")" != "$chosen" ]; then
  # build_prm.sh resumes stage by stage, but a resumed stage logs its checks' seconds into the
  # stage table: once the last round has trained and exported, it is not called again
  last=$(source benchmarks/prm_rounds.sh && read -r -a lrs <<< "$MAKE_PRM_REFINE_LRS" \
    && echo "${#lrs[@]}")
  [ -f "$RUN/refine$last/training_log.json" ] && [ -f "$RUN/export/model.safetensors" ] \
    || RUN="$RUN" EXPORT="$RUN/export" PY="$PY" bash benchmarks/build_prm.sh
  if ! "$PY" benchmarks/same_weights.py --name make_prm_identity \
    --model "make prm=$RUN/export" --recorded "$NAME read on test=$CHOSEN_TEST" \
    --recorded "$NAME read on validation=$CHOSEN_VALIDATION"; then
    echo "expected make prm's weights in $RUN/export to be $NAME's ($chosen), got others" \
      "(benchmarks/results/make_prm_identity.md); fix: judge them on validation by" \
      "round_rule.py before shipping them, not this script" >&2
    exit 1
  fi
  "$PY" benchmarks/prm_pipeline_times.py --run "$RUN" --name "$STAGE_TABLE"
  if [ ! -d "$OUT/before" ]; then  # README's tables of the PRM shipped until now
    mkdir -p "$OUT/before.partial"
    for split in test longest validation; do
      cp benchmarks/results/accuracy_vs_compute_$split.{json,md,png} "$OUT/before.partial/"
    done
    cp benchmarks/results/prm_processbench.{json,md} "$OUT/before.partial/"
    mv "$OUT/before.partial" "$OUT/before"
  fi
  rm -rf "$SHIPPED.partial"
  cp -r "$RUN/export" "$SHIPPED.partial"
  rm -rf "$SHIPPED"
  mv "$SHIPPED.partial" "$SHIPPED"
fi
# shipped: commit checkpoints/arith-prm with these two files, which no later run can write
for file in make_prm_identity.json "$STAGE_TABLE.json"; do
  if [ ! -f "benchmarks/results/$file" ]; then
    echo "expected benchmarks/results/$file beside the shipped weights, got none; fix:" \
      "restore it from git (it is written when the weights are shipped)" >&2
    exit 1
  fi
done
if [ "$(digest "$SHIPPED")" != "$chosen" ]; then
  echo "expected $SHIPPED to hold $NAME's weights ($chosen), got $(digest "$SHIPPED");" \
    "fix: rerun this script" >&2
  exit 1
fi
# 3. step-error identification, unless its file is of the shipped weights
processbench=benchmarks/results/prm_processbench.json
[ "$("$PY" -c 'import json, pathlib, sys; p = pathlib.Path(sys.argv[1]); print(json.loads(p.read_text()).get("prm_sha256") if p.is_file() else None)' "$processbench")" = "$chosen" ] \
  || "$PY" benchmarks/prm_processbench.py
# 4. the search tables: piece SPLIT NAME FLAGS... runs accuracy_vs_compute.py into $OUT/SPLIT/NAME
piece() {
  local split=$1 name=$2
  shift 2
  local dir="$OUT/$split/$name"
  [ -f "$dir/accuracy_vs_compute_$split.json" ] || "$PY" benchmarks/accuracy_vs_compute.py \
    --splits "$split" --prm "$SHIPPED" --results-dir "$dir" "$@"
}
# merge FILES...: a split's table in benchmarks/results from its pieces, reached once every
# piece is there (the first names the PRM by its shipped path)
merge() { "$PY" benchmarks/accuracy_vs_compute.py --merge "$@" --results-dir benchmarks/results; }
# paired SPLIT: the split's new table against the one of the PRM shipped before (README's
# tables as they were, kept in $OUT/before/), NEW - OLD over the same problems and seeds
paired() {
  "$PY" benchmarks/accuracy_vs_compute.py --paired "$OUT/before/accuracy_vs_compute_$1.json" \
    "benchmarks/results/accuracy_vs_compute_$1.json" --new-prm "$SHIPPED" --results-dir "$OUT"
}
for seed in 0 1; do
  piece test "s$seed-tree" --seeds "$seed" --max-n 1 --search-ns 2 4 8 \
    --strategies beam dvts mcts
  piece test "s$seed-16" --seeds "$seed" --max-n 1 --search-ns 16 --strategies beam mcts \
    --lookahead 1 --lookahead-ns 16
  piece test "s$seed-other" --seeds "$seed" --max-n 1 --problems 100 \
    --strategies particle_filtering adaptive_best_of_n
done
merge "$OUT"/test/s{0,1}-{tree,16,other}/accuracy_vs_compute_test.json "$CHOSEN_TEST"
for seed in 0 1; do
  piece longest "s$seed" --seeds "$seed" --problems 100 --strategies dvts beam
done
merge "$OUT"/longest/s{0,1}/accuracy_vs_compute_longest.json
for seed in 0 1; do
  piece validation "s$seed" --seeds "$seed" --max-n 1 --search-ns 2 4 8 --strategies beam dvts \
    --prune weighted prm
  piece validation "s$seed-16" --seeds "$seed" --max-n 1 --search-ns 16 --strategies beam dvts \
    --prune prm
done
merge "$OUT"/validation/s{0,1}{,-16}/accuracy_vs_compute_validation.json \
  "$CHOSEN_VALIDATION"
# last, so a pairing that refuses (a row without the PRM that changed) stops nothing else
for split in test longest validation; do paired "$split"; done
