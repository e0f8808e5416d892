"""vLLM servers of the shipped policy and PRM, started together once per session (about a
minute on CPU) for every test that needs one, and stopped at the end of the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from served_models import POLICY_DIR, PRM_DIR


@pytest.fixture(scope="session")
def vllm_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """[policy server URL, PRM server URL]; the policy's model name is str(POLICY_DIR)."""
    pytest.importorskip("vllm")
    from vllm_servers import ServerSpec, vllm_servers

    specs = [ServerSpec(POLICY_DIR), ServerSpec(PRM_DIR, ("--runner", "pooling"))]
    with vllm_servers(specs, tmp_path_factory.mktemp("vllm-servers")) as urls:
        yield urls


@pytest.fixture(scope="session")
def policy_server(vllm_urls: list[str]) -> str:
    return vllm_urls[0]


@pytest.fixture(scope="session")
def prm_server(vllm_urls: list[str]) -> str:
    return vllm_urls[1]
