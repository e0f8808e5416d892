"""Session-scoped vLLM servers of the shipped policy and PRM: started once (about a minute
each on CPU) for every test that needs them, stopped at the end of the session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = REPO_ROOT / "checkpoints" / "arith-policy"
PRM_DIR = REPO_ROOT / "checkpoints" / "arith-prm"


@pytest.fixture(scope="session")
def policy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a vLLM server of the shipped policy; its model name is str(POLICY_DIR)."""
    pytest.importorskip("vllm")
    from vllm_servers import vllm_server

    log = tmp_path_factory.mktemp("policy-server") / "server.log"
    with vllm_server(POLICY_DIR, log_path=log) as url:
        yield url


@pytest.fixture(scope="session")
def prm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a vLLM pooling server of the shipped PRM."""
    pytest.importorskip("vllm")
    from vllm_servers import vllm_server

    log = tmp_path_factory.mktemp("prm-server") / "server.log"
    with vllm_server(PRM_DIR, "--runner", "pooling", log_path=log) as url:
        yield url
