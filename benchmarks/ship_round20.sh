#!/usr/bin/env bash
# Ship make prm's PRM: round 20 of its twenty bfloat16 rounds, chosen on validation by
# round_rule.py against the PRM shipped before (bf16_more_rounds.sh) and read once on test
# after the choice. Every step resumes, across sessions too: the pieces land in
# benchmarks/results/ship20/ (commit them as they land) and a step whose file is there is
# skipped.
#
# 1. make prm end to end with its recipe (twenty rounds), on a machine left to it: its stage
#    table is prm_pipeline_make20_e2e. Skipped once the shipped weights are the chosen ones.
# 2. Its weights must be, byte for byte, those that were chosen and read on test (the digest
#    the test table of round 20 recorded); else the script stops, since a PRM that differs
#    was not judged (same_weights.py exits 1). Then they are copied over checkpoints/arith-prm.
# 3. ProcessBench (step-error identification) with the shipped PRM.
# 4. The tables the scoreboard reads, rerun with the shipped PRM: test and longest, then
#    validation. The test table reuses round 20's test run (best-of-N to 64, beam@16 and
#    DVTS@16 over 200 problems x 2 seeds); its other pieces run best-of-N at N=1 only, and
#    merging refuses any row a piece shares with another unless its grades are the same (the
#    best-of-1 rows, beam@16 rerun beside the lookahead), so the pieces check each other. The
#    validation table reuses round 20's validation run the same way. A split's table in
#    benchmarks/results/ is replaced when all its pieces are there; until then the scoreboard
#    reads its old table as stale (other PRM weights). The tables they replace are kept in
#    $OUT/before/ (copied there before the ship), and each new one is paired with its old one.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUN=${RUN:-runs/prm-e2e20}
SHIPPED=checkpoints/arith-prm
OUT=benchmarks/results/ship20
CHOSEN_TEST=benchmarks/results/more_bf16/test/accuracy_vs_compute_test.json
CHOSEN_VALIDATION=benchmarks/results/more_bf16/round20/accuracy_vs_compute_validation.json
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
    --model "make prm=$RUN/export" --recorded "round 20 read on test=$CHOSEN_TEST" \
    --recorded "round 20 read on validation=$CHOSEN_VALIDATION"; then
    echo "expected make prm's weights in $RUN/export to be round 20's ($chosen), got others" \
      "(benchmarks/results/make_prm_identity.md); fix: judge them on validation by" \
      "round_rule.py before shipping them, not this script" >&2
    exit 1
  fi
  "$PY" benchmarks/prm_pipeline_times.py --run "$RUN" --name prm_pipeline_make20_e2e
  rm -rf "$SHIPPED.partial"
  cp -r "$RUN/export" "$SHIPPED.partial"
  rm -rf "$SHIPPED"
  mv "$SHIPPED.partial" "$SHIPPED"
fi
# shipped: commit checkpoints/arith-prm with these two files, which no later run can write
for file in make_prm_identity.json prm_pipeline_make20_e2e.json; do
  if [ ! -f "benchmarks/results/$file" ]; then
    echo "expected benchmarks/results/$file beside the shipped weights, got none; fix:" \
      "restore it from git (it is written when the weights are shipped)" >&2
    exit 1
  fi
done
if [ "$(digest "$SHIPPED")" != "$chosen" ]; then
  echo "expected $SHIPPED to hold round 20's weights ($chosen), got $(digest "$SHIPPED");" \
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
