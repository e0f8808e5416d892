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
