"""A hub model name on a machine that cannot reach the hub fails within seconds, with the fix."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from search.resolve import resolve_model_path


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def test_offline_and_not_cached_says_the_fix(
    empty_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE.*fix: pass a local copy"):
        resolve_model_path("Qwen/Qwen2.5-Math-7B-Instruct")


def test_unreachable_hub_fails_fast(empty_cache: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match="offline.*fix: pass a local copy"):
        resolve_model_path("Qwen/Qwen2.5-Math-PRM-7B")
    assert time.perf_counter() - start < 5


def test_a_cached_hub_model_is_used_offline(
    tmp_path: Path, empty_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = tmp_path / "hub" / "models--org--tiny" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    refs = tmp_path / "hub" / "models--org--tiny" / "refs"
    refs.mkdir()
    (refs / "main").write_text("abc")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model_path("org/tiny") == "org/tiny"


def test_a_served_name_is_not_looked_up_when_the_tokenizer_is_given(
    empty_cache: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An openai_server policy (or vllm_server PRM) served under a name of its own: the name
    is the server's, the tokenizer the local folder; neither the hub nor a folder is asked
    for the name, offline or not."""
    from omegaconf import OmegaConf

    from search.__main__ import check_model_paths
    from search.inputs import InputError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    served = {"base_url": "http://127.0.0.1:8003", "model": "tiny"}
    tokenizer = "checkpoints/arith-policy"
    check_model_paths(OmegaConf.create({"policy": {**served, "tokenizer": tokenizer}}))
    scorer = {**served, "backend": "vllm_server", "tokenizer": "checkpoints/arith-prm"}
    check_model_paths(OmegaConf.create({"scorer": scorer}))
    with pytest.raises(InputError, match="policy.tokenizer: expected a model checkpoint"):
        check_model_paths(OmegaConf.create({"policy": {**served, "tokenizer": "./nowhere"}}))
    with pytest.raises(InputError, match="policy.model: .*HF_HUB_OFFLINE"):  # no tokenizer
        check_model_paths(OmegaConf.create({"policy": served}))
    local = {"model": "tiny", "tokenizer": tokenizer}  # a model loaded here: its name is looked up
    with pytest.raises(InputError, match="policy.model: .*HF_HUB_OFFLINE"):
        check_model_paths(OmegaConf.create({"policy": local}))
