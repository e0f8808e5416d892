# make prm's refine rounds, one learning rate each: sourced by build_prm.sh, which runs them
# (REFINE_LRS overrides), and by more_rounds.sh, which checks that its rebuild ran them all.
#
# build_prm.sh trains 2 epochs at lr 2e-3 from the verifier base, then one refine round per
# entry, each continuing the last model for 2 epochs at that learning rate (a fresh warmup and
# decay): validation F1 rose round after round at 1e-3 until the fifth, then with a round at
# 5e-4 (README, "Building the shipped PRM"), with a second one at 5e-4, which also searched
# better on validation (README, "One more training round for the shipped PRM"), and with two
# more at 5e-4, chosen on validation the same way (README, "Two more training rounds").
MAKE_PRM_REFINE_LRS="0.001 0.001 0.001 0.001 0.001 0.0005 0.0005 0.0005 0.0005"
