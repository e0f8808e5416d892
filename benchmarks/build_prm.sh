#!/usr/bin/env bash
# Rebuild the shipped PRM with this repository's own pipeline (`make prm` runs this):
# sample -> label (mc, calculator judge, consensus) -> train on consensus hard labels.
# Each stage's wall time is appended to $RUN/stages.log ("STAGE name SECONDS n"), which
# benchmarks/prm_pipeline_times.py turns into README's table. A rerun resumes every stage where
# it stopped and appends its own lines, so the table sums what each stage cost over all runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RUN=${RUN:-runs/prm}
PROBLEMS=${PROBLEMS:-3200}
EPOCHS=${EPOCHS:-2}
EXPORT=${EXPORT:-checkpoints/arith-prm}
# DRY_RUN=true: print each stage's command ("DRY name: command...") and run nothing, to see
# what a recipe's knobs make of it (tests/benchmarks/test_build_prm.py reads it)
DRY_RUN=${DRY_RUN:-false}
case "$DRY_RUN" in
  true | false) ;;
  *) echo "expected DRY_RUN=true or DRY_RUN=false, got DRY_RUN=$DRY_RUN" >&2; exit 2 ;;
esac
stage() {
  local name=$1; shift
  if [ "$DRY_RUN" = true ]; then
    echo "DRY $name: $*"
    return
  fi
  local start; start=$(date +%s)
  "$@"
  echo "STAGE $name SECONDS $(( $(date +%s) - start ))" | tee -a "$RUN/stages.log"
}
# Solutions come from the searched policy; MC rollouts and the PRM's initial weights come from
# the stronger verifier base (checkpoints/arith-verifier-base, `make verifier`): see README.
VERIFIER=${VERIFIER:-checkpoints/arith-verifier-base}
export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-3}
# STAGES=train: only the training rounds, on TRAIN_DATA (another run's consensus labels), to
# compare training recipes on the same data
STAGES=${STAGES:-all}
case "$STAGES" in
  all | train) ;;
  *) echo "expected STAGES=all or STAGES=train, got STAGES=$STAGES" >&2; exit 2 ;;
esac
[ "$DRY_RUN" = true ] || mkdir -p "$RUN"
TRAIN_DATA=${TRAIN_DATA:-$RUN/labels/consensus/stepwise.jsonl}
if [ "$STAGES" != train ]; then
  stage sample "$PY" -m prm.sample output_dir="$RUN/samples" count="$PROBLEMS" num_samples=8 \
    chunk_problems=400 policy.backend=vllm progress=false
  # MC_BACKEND: on this 2-core machine the transformers generator labels about 2.7x the
  # solutions per second vLLM does as run here (2x vLLM given both cores; README, "Monte Carlo
  # labelling speed"), which keeps `make prm` within 90 minutes (README, "`make prm` timed"). The shipped labels were rolled out on vLLM
  # (MC_BACKEND=vllm), with other random draws; on a GPU, vLLM is the one to use.
  MC_BACKEND=${MC_BACKEND:-hf}
  # TRUST_RIGHT_ANSWERS=false: early-stop MC rolls out the prefixes of right-answer solutions too
  # (README, "three ways to run MC": 1.29x the rollouts, more and better consensus data). The
  # PRM trained on those labels was weaker on validation than the shipped one and than the
  # default rebuild (README, "Choosing the MC recipe on validation"), so true stays the default.
  TRUST_RIGHT_ANSWERS=${TRUST_RIGHT_ANSWERS:-true}
  stage mc "$PY" -m prm.label labeller=mc labeller.early_stop=true samples="$RUN/samples/samples.jsonl" \
    labeller.trust_right_answers="$TRUST_RIGHT_ANSWERS" \
    output_dir="$RUN/labels/mc" chunk_solutions=2048 policy.model="$VERIFIER" \
    policy.backend="$MC_BACKEND" report=true progress=false
  stage calculator "$PY" -m prm.label labeller=calculator samples="$RUN/samples/samples.jsonl" \
    output_dir="$RUN/labels/calculator" report=true progress=false
  stage consensus "$PY" -m prm.label labeller=consensus samples="$RUN/samples/samples.jsonl" \
    output_dir="$RUN/labels/consensus" labeller.mc_records="$RUN/labels/mc/records.jsonl" \
    report=true progress=false
fi
# Train 2 epochs at lr 2e-3 from the verifier base, then one refine round per entry of
# REFINE_LRS (default: benchmarks/prm_rounds.sh, which says why), each continuing the last
# model for 2 epochs at that learning rate. The last stage exports the model.
source benchmarks/prm_rounds.sh
REFINE_LRS=${REFINE_LRS:-$MAKE_PRM_REFINE_LRS}
# GROUP_BY_LENGTH=true: every round draws batches of similar lengths (prm.train group_by_length):
# 1.78x faster per step, but on these labels it trains far worse (README, "Choosing the
# training recipe on validation"), so false stays the default.
GROUP_BY_LENGTH=${GROUP_BY_LENGTH:-false}
# PACK=true (the default): every round packs each batch's examples into fewer rows (prm.train
# pack): the same examples, steps and loss with less padding, 1.31x the steps per second, and
# a PRM as good on validation (README, "Choosing the training recipe on validation: packed
# batches"). PACK=false is the padded recipe, which built the shipped PRM's first eight rounds
# (its last two were packed).
PACK=${PACK:-true}
# EXTRA_LAYERS=K: the PRM starts K identity-initialised decoder layers deeper than the verifier
# base (prm.train extra_layers), a verifier deeper than its policy. The shipped PRM is 0 (the
# default); README, "What a perfect verifier would buy", says why a deeper one is worth trying:
# the shipped PRM misjudges the two-digit steps.
EXTRA_LAYERS=${EXTRA_LAYERS:-0}
# TAG_FROM_SEPARATOR=true: the step tag's embedding starts as the newline's (prm.train
# tag_from_separator), so the tag's state sees the step ("Why the PRM learns slowly"). The
# shipped PRM is false (the default).
TAG_FROM_SEPARATOR=${TAG_FROM_SEPARATOR:-false}
# BF16=true (the default, benchmarks/prm_rounds.sh): every round autocasts forward and backward
# to bfloat16 (prm.train bf16; float32 weights and optimizer), 1.28x the steps per second on
# this machine's AVX512-BF16 CPU (README, "PRM training speed"). On a CPU without AVX512-BF16
# or AMX (prm.train warns) it is slower: there, set BF16=false and REFINE_LRS to prm_rounds.sh's
# FLOAT32_REFINE_LRS (ten float32 rounds, the recipe before). The shipped PRM was trained in
# float32.
BF16=${BF16:-$MAKE_PRM_BF16}
read -r -a lrs <<< "$REFINE_LRS"
REFINE=${#lrs[@]}
export_of() { if [ "$1" -eq "$REFINE" ]; then echo "export_dir=$EXPORT"; else echo "export_dir=null"; fi; }
stage train "$PY" -m prm.train train_data="$TRAIN_DATA" \
  output_dir="$RUN/model" "$(export_of 0)" policy_dir="$VERIFIER" epochs="$EPOCHS" batch_size=64 \
  learning_rate=0.002 group_by_length="$GROUP_BY_LENGTH" pack="$PACK" progress=false \
  extra_layers="$EXTRA_LAYERS" tag_from_separator="$TAG_FROM_SEPARATOR" bf16="$BF16"
previous="$RUN/model"
for round in $(seq 1 "$REFINE"); do
  stage "refine$round" "$PY" -m prm.train train_data="$TRAIN_DATA" \
    output_dir="$RUN/refine$round" "$(export_of "$round")" policy_dir=null \
    init_checkpoint="$previous" epochs=2 batch_size=64 learning_rate="${lrs[$((round - 1))]}" \
    group_by_length="$GROUP_BY_LENGTH" pack="$PACK" bf16="$BF16" progress=false
  previous="$RUN/refine$round"
done
