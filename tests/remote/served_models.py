"""The shipped checkpoints the remote tests serve (a module of its own: with several
``conftest.py`` files in the suite, ``from conftest import`` finds whichever came first)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = REPO_ROOT / "checkpoints" / "arith-policy"
PRM_DIR = REPO_ROOT / "checkpoints" / "arith-prm"
