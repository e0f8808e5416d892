"""Generator backends behind ``search.protocols.Generator``: transformers (``hf``), vLLM
(``vllm``) and a fake one for tests (``fake``). Heavy libraries are imported only when a
backend is built."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from search.protocols import Generator

REPO_ROOT = Path(__file__).resolve().parents[2]


class Backend(str, Enum):
    hf = "hf"
    vllm = "vllm"
    fake = "fake"


@dataclass
class PolicyConfig:
    """The policy model and how it samples (``conf/policy/*.yaml``).

    ``model`` is a local directory (relative paths are tried from the working directory,
    then from the repository root, where the embedded checkpoints live) or a hub name.
    ``max_step_tokens`` caps one step, ``max_tokens`` the rest of a solution.
    ``use_chat_template: null`` uses the tokenizer's chat template when it has one.
    """

    backend: Backend = Backend.hf
    model: str = "checkpoints/arith-policy"
    temperature: float = 1.0
    top_p: float = 1.0
    max_step_tokens: int = 64
    max_tokens: int = 256
    dtype: str = "auto"
    use_chat_template: bool | None = None
    system_prompt: str | None = None
    trust_remote_code: bool = False
    # transformers backend
    batch_size: int = 256
    device: str = "auto"
    # vLLM backend
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    enable_prefix_caching: bool = True
    cpu_kvcache_space_gib: int = 1


def resolve_model_path(model: str) -> str:
    """A local checkpoint path as an absolute path, or ``model`` unchanged (a hub name)."""
    for candidate in (Path(model), REPO_ROOT / model):
        if (candidate / "config.json").is_file():
            return str(candidate.resolve())
    if model.startswith(("/", "./", "../")) or model.startswith("checkpoints/"):
        raise FileNotFoundError(
            f"expected a model checkpoint (a directory with config.json) at {model!r}, "
            f"got nothing there (also tried {REPO_ROOT / model}); fix: pass policy.model=PATH "
            "or rebuild the embedded policy with `python -m search.arith.train_policy`"
        )
    return model


def build_generator(config: PolicyConfig, seed: int) -> Generator:
    backend = Backend(config.backend)
    if backend is Backend.fake:
        from search.fakes import FakeGenerator

        return FakeGenerator(seed=seed)
    model = resolve_model_path(config.model)
    if backend is Backend.hf:
        from search.generators.hf import HFGenerator

        return HFGenerator(
            model,
            temperature=config.temperature,
            top_p=config.top_p,
            max_step_tokens=config.max_step_tokens,
            max_tokens=config.max_tokens,
            batch_size=config.batch_size,
            seed=seed,
            dtype=config.dtype,
            device=config.device,
            use_chat_template=config.use_chat_template,
            system_prompt=config.system_prompt,
            trust_remote_code=config.trust_remote_code,
        )
    from search.generators.vllm import VLLMGenerator

    return VLLMGenerator(
        model,
        temperature=config.temperature,
        top_p=config.top_p,
        max_step_tokens=config.max_step_tokens,
        max_tokens=config.max_tokens,
        seed=seed,
        dtype=config.dtype,
        gpu_memory_utilization=config.gpu_memory_utilization,
        max_model_len=config.max_model_len,
        enable_prefix_caching=config.enable_prefix_caching,
        use_chat_template=config.use_chat_template,
        system_prompt=config.system_prompt,
        trust_remote_code=config.trust_remote_code,
        cpu_kvcache_space_gib=config.cpu_kvcache_space_gib,
    )
