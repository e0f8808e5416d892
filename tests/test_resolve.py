"""search.resolve: one "auto" dtype rule and one device rule for policies and PRMs alike."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from search.resolve import (
    CONF_DIR,
    REPO_ROOT,
    resolve_device,
    resolve_dtype,
    resolve_model_path,
    torch_dtype,
)


def test_auto_dtype_is_float32_off_cuda_and_explicit_names_pass_through() -> None:
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("bfloat16", "cpu") == "bfloat16"
    assert torch_dtype("float16", "cpu") is torch.float16
    with pytest.raises(ValueError, match="expected dtype in"):
        resolve_dtype("fp8", "cpu")


@pytest.mark.parametrize(("bf16", "expected"), [(True, "bfloat16"), (False, "float16")])
def test_auto_dtype_on_cuda(monkeypatch: pytest.MonkeyPatch, bf16: bool, expected: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    assert resolve_dtype("auto", "cuda") == expected
    assert resolve_dtype("auto", "cuda:1") == expected


def test_device_and_folders() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert (CONF_DIR / "config.yaml").is_file() and (REPO_ROOT / "search").is_dir()


def test_a_missing_checkpoint_names_each_folder_tried_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)  # the working directory is the repository root
    with pytest.raises(FileNotFoundError) as raised:
        resolve_model_path("checkpoints/no-such-model")
    assert f"(from {REPO_ROOT}), got no such directory" in str(raised.value)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(FileNotFoundError) as raised:
        resolve_model_path("checkpoints/no-such-model")
    assert f"(from {tmp_path.resolve()} or {REPO_ROOT})" in str(raised.value)
    with pytest.raises(FileNotFoundError, match=r"at /nonexistent/model, got no such"):
        resolve_model_path("/nonexistent/model")  # absolute: no folder to name
