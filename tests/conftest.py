"""Shared fixtures: tiny models built from a config in seconds (no hub)."""

from __future__ import annotations

import signal
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny_models import save_tiny_policy

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
POLICY_DIR = REPO_ROOT / "checkpoints" / "arith-policy"
PRM_DIR = REPO_ROOT / "checkpoints" / "arith-prm"


@pytest.fixture(scope="session")
def tiny_policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Qwen2 causal LM with the embedded tokenizer (head_dim 64)."""
    return save_tiny_policy(tmp_path_factory.mktemp("tiny-policy"))


@pytest.fixture(autouse=True)
def _fresh_pretrained_memo() -> None:
    """Each test starts without the pre-load checks' remembered tokenizers and configs
    (``prm.scoring.factory._read_pretrained``), so a test that counts or patches loads does
    not depend on which test read the same folder before it."""
    from prm.scoring.factory import _read_pretrained

    _read_pretrained.cache_clear()


@pytest.fixture(autouse=True)
def _sigint_left_as_found() -> Iterator[None]:
    """A test (or Python code of a library it starts: an engine, a cluster) that leaves SIGINT
    handled otherwise, e.g. ignored, would hand that to every later test and to every process
    those start (an ignored SIGINT is inherited: Ctrl-C tests would see no KeyboardInterrupt).
    Put it back after each test, with a warning that names the test. (A handler set from C is
    not seen by ``signal.getsignal``.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.getsignal(signal.SIGINT)
    yield
    after = signal.getsignal(signal.SIGINT)
    if after is not before and before is not None:  # None: set from C, not restorable
        signal.signal(signal.SIGINT, before)
        warnings.warn(
            f"SIGINT's handler was {before!r} before this test and {after!r} after it; put back",
            stacklevel=1,
        )
