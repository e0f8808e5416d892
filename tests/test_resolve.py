"""search.resolve: one "auto" dtype rule and one device rule for policies and PRMs alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from search.inputs import InputError
from search.resolve import (
    CONF_DIR,
    REPO_ROOT,
    check_checkpoint,
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


def test_a_local_checkpoint_with_what_its_role_needs_passes_the_checks(tmp_path: Path) -> None:
    for role, causal in (("policy", True), ("scorer", False)):
        check_checkpoint(role, {"model": "checkpoints/arith-policy"}, causal)  # embedded
    folder = tmp_path / "qwen-like"
    folder.mkdir()
    config = {"architectures": ["Qwen2ForCausalLM"], "max_position_embeddings": 4096}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").write_text("{}")
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ x }}"}))
    settings = {"model": str(folder), "use_chat_template": True, "backend": "vllm"}
    with pytest.raises(InputError, match=r"policy\.model: expected model weights"):
        check_checkpoint("policy", settings, True)
    # a trainer's state is not weights (a checkpoint saved without them), nor is TF's format
    for name in (
        "training_args.bin",
        "optimizer.pt",
        "scheduler.pt",
        "rng_state_0.pth",
        "tf_model.h5",
    ):
        (folder / name).write_bytes(b"")
    with pytest.raises(InputError, match=r"policy\.model: expected model weights"):
        check_checkpoint("policy", settings, True)
    # what a clone without git-lfs holds in place of the weights
    pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 9\n"
    (folder / "model-00001-of-00002.safetensors").write_bytes(pointer)
    with pytest.raises(InputError, match=r"got Git LFS pointers or empty files in their place"):
        check_checkpoint("policy", settings, True)
    (folder / "model-00001-of-00002.safetensors").write_bytes(b"\x08" * 16)  # shards count
    check_checkpoint("policy", settings | {"vllm": {"max_model_len": 4096}}, True)
    # a template in its own file counts too; a PRM as the scorer is what it should be
    (folder / "tokenizer_config.json").write_text("{}")
    (folder / "chat_template.jinja").write_text("{{ x }}")
    check_checkpoint("policy", settings, True)
    (folder / "config.json").write_text(
        json.dumps({"architectures": ["Qwen2ForTokenClassification"]})
    )
    check_checkpoint("scorer", {"model": str(folder)}, False)
    with pytest.raises(InputError, match="expected a causal language model"):
        check_checkpoint("policy", {"model": str(folder)}, True)


@pytest.mark.parametrize(
    "files",
    [("tokenizer.model",), ("spiece.model",), ("vocab.json", "merges.txt"), ("q.tiktoken",)],
)
def test_tokenizers_of_other_layouts_pass(tmp_path: Path, files: tuple[str, ...]) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"weights")
    for name in files:
        (tmp_path / name).write_text("x")
    check_checkpoint("policy", {"model": str(tmp_path)}, True)


def test_a_longer_vllm_context_passes_with_rope_scaling(tmp_path: Path) -> None:
    config = {"architectures": ["Qwen2ForCausalLM"], "max_position_embeddings": 4096}
    (tmp_path / "tokenizer.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    settings = {"model": str(tmp_path), "backend": "vllm", "vllm": {"max_model_len": 16384}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match="max_model_len=4096"):
        check_checkpoint("policy", settings, True)
    scaled = config | {"rope_scaling": {"type": "yarn", "factor": 4.0}}
    (tmp_path / "config.json").write_text(json.dumps(scaled))
    check_checkpoint("policy", settings, True)  # vLLM stretches the context itself


def test_a_served_model_needs_only_its_tokenizer_here(tmp_path: Path) -> None:
    folder = tmp_path / "tokenizer-only"  # what an openai_server policy renders prompts with
    folder.mkdir()
    (folder / "tokenizer.json").write_text("{}")
    served = {"model": str(folder), "base_url": "http://127.0.0.1:8000"}
    check_checkpoint("policy", served, True)
    check_checkpoint("scorer", served | {"backend": "vllm_server"}, False)
    with pytest.raises(InputError, match="expected a transformers checkpoint"):
        check_checkpoint("policy", {"model": str(folder), "backend": "hf"}, True)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"policy\.tokenizer: expected tokenizer files"):
        check_checkpoint("policy", served | {"model": "served-name", "tokenizer": str(empty)}, True)


def test_transformers_5_rope_parameters_count_as_scaling(tmp_path: Path) -> None:
    config = {
        "architectures": ["Qwen2ForCausalLM"],
        "max_position_embeddings": 32768,
        "rope_parameters": {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e6},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "tokenizer.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    settings = {"model": str(tmp_path), "backend": "vllm", "vllm": {"max_model_len": 65536}}
    check_checkpoint("policy", settings, True)
    plain = config | {"rope_parameters": {"rope_type": "default", "rope_theta": 1e6}}
    (tmp_path / "config.json").write_text(json.dumps(plain))
    with pytest.raises(InputError, match="max_model_len=32768"):
        check_checkpoint("policy", settings, True)
