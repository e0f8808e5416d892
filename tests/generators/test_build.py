"""``build_generator``: one builder for the local-model backends, flat common keys and
``hf:`` / ``vllm:`` sub-blocks, every key checked before a model loads."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from search.generators import HF_KEYS, VLLM_KEYS, build_generator
from search.generators.hf import HFGenerator
from search.generators.vllm import VLLMGenerator

COMMON = {
    "temperature": 0.0,
    "top_p": 1.0,
    "max_step_tokens": 8,
    "max_tokens": 16,
    "seed": 0,
    "dtype": "float32",
    "use_chat_template": False,
    "system_prompt": None,
    "trust_remote_code": False,
}


@pytest.mark.parametrize(("backend", "keys"), [(HFGenerator, HF_KEYS), (VLLMGenerator, VLLM_KEYS)])
def test_every_key_the_builder_passes_is_a_constructor_argument(backend: type, keys: tuple) -> None:
    options = dict.fromkeys(keys, None)
    inspect.signature(backend).bind("model", **COMMON, **options)  # raises on an unknown key


def test_hf_sub_block_reaches_the_backend(tiny_policy_dir: Path) -> None:
    generator = build_generator(
        str(tiny_policy_dir), "hf", **COMMON, hf={"batch_size": 3, "device": "cpu"}, vllm={}
    )
    assert isinstance(generator, HFGenerator)
    assert generator.batch_size == 3 and generator.device == "cpu"
    assert generator.settings.max_tokens == 16 and generator.settings.temperature == 0.0


def test_unknown_keys_and_backends_fail_before_loading() -> None:
    with pytest.raises(ValueError, match=r"policy\.hf options .* unknown \['batchsize'\]"):
        build_generator("/nonexistent", hf={"batchsize": 3})
    with pytest.raises(ValueError, match="expected policy.backend in"):
        build_generator("/nonexistent", "onnx")


def test_unknown_attention_kernel_fails_before_loading() -> None:
    """A typo in the attention kernel is refused before any model loads, on either backend
    (one config serves both)."""
    for backend in ("hf", "vllm"):
        with pytest.raises(ValueError, match=r"policy\.hf\.attn_implementation=eager"):
            build_generator("/nonexistent", backend, hf={"attn_implementation": "eagre"})
