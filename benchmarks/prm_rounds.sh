# make prm's training recipe: sourced by build_prm.sh, which runs it (REFINE_LRS and BF16
# override), and by the scripts that rebuild or compare recipes.
#
# build_prm.sh trains 2 epochs at lr 2e-3 from the verifier base, then one refine round per
# entry, each continuing the last model for 2 epochs at that learning rate (a fresh warmup and
# decay).
#
# FLOAT32_REFINE_LRS: make prm's rounds in float32, the recipe that built the shipped PRM's
# schedule: validation F1 rose round after round at 1e-3 until the fifth, then with a round at
# 5e-4 (README, "Building the shipped PRM"), with a second one at 5e-4, which also searched
# better on validation (README, "One more training round for the shipped PRM"), and with two
# more at 5e-4, chosen on validation the same way (README, "Two more training rounds"). The
# scripts that measured that recipe pin it (with BF16=false), so they rerun as they ran.
FLOAT32_REFINE_LRS="0.001 0.001 0.001 0.001 0.001 0.0005 0.0005 0.0005 0.0005"
# BF16_14_REFINE_LRS: the same rounds and four more at 5e-4, each in bfloat16 (prm.train
# bf16). Fourteen bfloat16 rounds took less time than the ten in float32 (1.28x the steps per
# second) and came close to the shipped PRM on validation, where the float32 ten fall well
# short (README, "Training in bfloat16"); make_prm_bf16.sh timed them end to end (57 minutes)
# and pins them.
BF16_14_REFINE_LRS="$FLOAT32_REFINE_LRS 0.0005 0.0005 0.0005 0.0005"
# make prm today: twenty bfloat16 rounds, six more at 5e-4 on top of those fourteen, chosen on
# validation by round_rule.py against the shipped PRM (benchmarks/bf16_more_rounds.sh; README,
# "More bfloat16 rounds"): 77 minutes of stages on this machine.
MAKE_PRM_REFINE_LRS="$BF16_14_REFINE_LRS 0.0005 0.0005 0.0005 0.0005 0.0005 0.0005"
MAKE_PRM_BF16=true
