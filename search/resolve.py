"""Where things are and what they run on, one rule each: the repository's folders, model
paths, devices and dtypes. Used by the generators, the scorers and the trainers alike."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = REPO_ROOT / "conf"  # Hydra's config_path for every entry point
DTYPES = ("auto", "float32", "bfloat16", "float16")


def local_model_dir(model: str | Path) -> Path | None:
    """``model`` as an existing local directory (tried as ``resolve_model_path`` tries it:
    from the working directory, then the repository root), else ``None``; never the hub."""
    path = Path(model).expanduser()
    bases = [Path("/")] if path.is_absolute() else [Path.cwd(), REPO_ROOT]
    for base in bases:
        if (base / path).is_dir():
            return (base / path).resolve()
    return None


def local_json(model: str | Path, name: str) -> dict[str, Any] | None:
    """The JSON object in file ``name`` of ``model`` when ``model`` is a local checkpoint
    holding it (no hub lookup: a check must work offline), else ``None`` (also for a file
    that is not a JSON object: the checks that read it then have nothing to read)."""
    import json

    directory = local_model_dir(model)
    path = directory / name if directory is not None else None
    if path is None or not path.is_file():
        return None
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return content if isinstance(content, dict) else None


# files of which a transformers tokenizer folder holds at least one (besides any *.model,
# sentencepiece's, or *.tiktoken file)
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "vocab.txt", "merges.txt")
CHAT_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")


def weights_digest(model: str | Path) -> str | None:
    """The first 16 hex digits of the sha256 of a local model directory's weight files
    (``*.safetensors``, ``*.bin``), or None for a name that is not a local directory: a
    result file names its models by these as well as by path, since a path's checkpoint can
    change (checkpoints/arith-prm did when a new PRM was shipped)."""
    directory = Path(model)
    files = sorted([*directory.glob("*.safetensors"), *directory.glob("*.bin")])
    files = [path for path in files if path.name != "training_args.bin"]
    if not directory.is_dir() or not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def is_served(settings: Mapping[str, Any]) -> bool:
    """Whether a policy or scorer node names a model a server runs (an openai_server policy,
    a vllm_server scorer): its ``model`` is then a served name, loaded here as a tokenizer
    at most."""
    return bool(settings.get("base_url")) and settings.get("backend") in (None, "vllm_server")


def check_checkpoint(role: str, settings: Mapping[str, Any], causal_lm: bool) -> None:
    """Before any model loads: ``settings`` (a policy or scorer node) name local folders that
    hold what the role needs. A model loaded here (not one a server runs: ``base_url``)
    needs a ``config.json``, weights, a context at least as long as the vLLM
    ``max_model_len`` asked, and, for a policy (``causal_lm``), to be a model that writes
    text rather than a classifier (a PRM given as the policy). The tokenizer (``tokenizer``,
    else ``model``) needs its files, and a chat template when ``use_chat_template`` asks for
    one (checked before the weights, which say less about a half-made folder). A hub or
    served name is not read here (``check_hub_reachable`` covers the hub); an ``InputError``
    names the key and the fix."""
    model = settings.get("model")
    # a model a server runs (an openai_server policy, a vllm_server scorer): its name only
    directory = None if model is None or is_served(settings) else local_model_dir(str(model))
    if directory is not None:
        _check_model_folder(role, directory, settings, causal_lm)
    tokenizer = settings.get("tokenizer")
    named = tokenizer if tokenizer is not None else model  # where the tokenizer loads from
    tokenizer_dir = None if named is None else local_model_dir(str(named))
    if tokenizer_dir is not None:
        _check_tokenizer_folder(role, tokenizer_dir, settings)
    if directory is not None:  # last: the checks above say more about a half-made folder
        _check_weights(role, directory)


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
"""Weight files transformers (``model*.safetensors``, ``pytorch_model*.bin``) or vLLM (also
``*.pt``, ``consolidated*.safetensors``, GGUF) reads."""
TRAINER_STATE = re.compile(r"(training_args|optimizer|scheduler|scaler)\.(bin|pt)|rng_state.*\.pth")
"""What a training checkpoint keeps beside (or instead of) the weights: not weights (vLLM
skips the same names)."""


def _check_weights(role: str, directory: Path) -> None:
    """A model folder must hold weights (a format transformers or vLLM reads, sharded or
    not; a trainer's state files do not count); a folder of a config and a tokenizer alone,
    or a training checkpoint saved without its weights, fails only after the other models
    loaded."""
    from search.inputs import InputError

    weights = [
        path
        for path in directory.iterdir()
        if path.name.endswith(WEIGHT_SUFFIXES) and not TRAINER_STATE.fullmatch(path.name)
    ]
    placeholders = [path for path in weights if _placeholder(path)]
    if weights and len(placeholders) == len(weights):
        names = ", ".join(sorted(path.name for path in placeholders)[:3])
        raise InputError(
            f"{role}.model: expected model weights in {directory}, got Git LFS pointers or "
            f"empty files in their place ({names}); fix: fetch the files themselves (git lfs "
            "pull in that folder, or huggingface-cli download)"
        )
    if not weights:
        elsewhere = (
            f" (a tokenizer kept elsewhere goes in {role}.tokenizer)" if role == "scorer" else ""
        )
        raise InputError(
            f"{role}.model: expected model weights (model.safetensors, pytorch_model.bin, or "
            f"their shards) in {directory}, got none; fix: point {role}.model at the folder "
            f"that holds the weights{elsewhere}"
        )


LFS_POINTER = b"version https://git-lfs.github.com/spec/"


def _placeholder(path: Path) -> bool:
    """An empty file, or a Git LFS pointer (what a clone without git-lfs holds in place of a
    large file): no weights, and transformers' error on it does not say so."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(LFS_POINTER))
    except OSError:  # e.g. a dangling link: the load says why
        return False
    return head == b"" or head == LFS_POINTER


def _check_tokenizer_folder(role: str, tokenizer_dir: Path, settings: Mapping[str, Any]) -> None:
    from search.inputs import InputError

    tokenizer = settings.get("tokenizer")
    key = f"{role}.model"
    present = {path.name for path in tokenizer_dir.iterdir()}
    tokenizer_config = local_json(tokenizer_dir, "tokenizer_config.json") or {}
    vocabulary = present & set(TOKENIZER_FILES) or any(
        name.endswith((".model", ".tiktoken")) for name in present
    )
    if not vocabulary and "auto_map" not in tokenizer_config:  # auto_map: its own code
        which = f"{role}.tokenizer" if tokenizer is not None else key
        # a tokenizer of its own: every scorer, and a policy a server runs
        own = role == "scorer" or "tokenizer" in settings
        elsewhere = f"{role}.tokenizer=PATH of the tokenizer, or " if own else ""
        raise InputError(
            f"{which}: expected tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...) in "
            f"{tokenizer_dir}, got none; fix: {elsewhere}save it there "
            "(tokenizer.save_pretrained)"
        )
    template = tokenizer_config.get("chat_template")
    has_template = bool(template) or bool(present & set(CHAT_TEMPLATE_FILES))
    if settings.get("use_chat_template") and not has_template:
        raise InputError(
            f"{role}.use_chat_template: expected a tokenizer with a chat template, got none "
            f"in {tokenizer_dir}; fix: {role}.use_chat_template=false (the plain prompt "
            "template), or a tokenizer that has one"
        )


def _rope_scaled(config: Mapping[str, Any]) -> bool:
    """Whether the model stretches its context (rope scaling: ``rope_scaling``, or
    transformers 5's ``rope_parameters`` with a ``rope_type`` other than ``default``)."""
    if config.get("rope_scaling"):
        return True
    parameters = config.get("rope_parameters")
    if not isinstance(parameters, dict):
        return False
    # one set of parameters, or one per attention type
    groups = [parameters] if "rope_type" in parameters else list(parameters.values())
    return any(isinstance(g, dict) and g.get("rope_type", "default") != "default" for g in groups)


def _check_model_folder(
    role: str, directory: Path, settings: Mapping[str, Any], causal_lm: bool
) -> None:
    from search.inputs import InputError

    key = f"{role}.model"
    config = local_json(directory, "config.json")
    if config is None:
        raise InputError(
            f"{key}: expected a transformers checkpoint (config.json) in {directory}, got "
            f"none; fix: point {key} at the folder that holds config.json and the weights"
        )
    architectures = [str(a) for a in config.get("architectures") or []]
    classifier = [a for a in architectures if "Classification" in a or "RewardModel" in a]
    if causal_lm and classifier and len(classifier) == len(architectures):
        raise InputError(
            f"{key}: expected a causal language model (e.g. *ForCausalLM) to write solutions, "
            f"got {classifier[0]} in {directory}/config.json (a PRM?); fix: {key}=a policy "
            "checkpoint, and give a PRM as scorer.model"
        )
    asked = (settings.get("vllm") or {}).get("max_model_len")
    context = config.get("max_position_embeddings")
    # vLLM derives the same bound (longer with rope scaling, or when told to allow it)
    on_vllm = settings.get("backend") == "vllm" and not _rope_scaled(config)
    on_vllm = on_vllm and os.environ.get("VLLM_ALLOW_LONG_MAX_MODEL_LEN", "0") in ("", "0")
    if on_vllm and isinstance(asked, int) and isinstance(context, int) and asked > context:
        raise InputError(
            f"{role}.vllm.max_model_len: expected at most the model's context of {context} "
            f"tokens (max_position_embeddings in {directory}/config.json), got {asked}; "
            f"fix: {role}.vllm.max_model_len={context}"
        )


def resolve_model_path(model: str | Path, key: str | None = None) -> str:
    """A local checkpoint as an absolute path, else ``model`` unchanged (a hub name).

    A relative path is tried from the working directory, then from the repository root (so
    ``checkpoints/arith-prm`` is found from anywhere). A path that is absolute, starts with
    ``.``, or whose first folder exists locally (``checkpoints/...``) but which itself does
    not exist is an error naming the path, not a hub lookup.
    """
    path = Path(model).expanduser()
    relative_to = list(dict.fromkeys([Path.cwd().resolve(), REPO_ROOT]))  # each folder once
    bases = [Path("/")] if path.is_absolute() else relative_to
    for base in bases:
        if (base / path).exists():
            return str((base / path).resolve())
    first = path.parts[0] if path.parts else ""
    looks_local = (
        path.is_absolute()
        or str(model).startswith(".")
        or any((base / first).is_dir() for base in relative_to)
    )
    if looks_local:
        where = "" if path.is_absolute() else f" (from {' or '.join(map(str, relative_to))})"
        raise FileNotFoundError(
            f"expected a model checkpoint at {model}{where}, got "
            "no such directory; fix: point policy.model / scorer.model at an existing "
            "checkpoint, or rebuild the embedded ones (`make policy`, `make prm`)"
        )
    log.info("model %s is not a local path; loading it as a hub model name", model)
    check_hub_reachable(str(model), key=key)
    return str(model)


def check_hub_reachable(name: str, timeout_s: float = 3.0, key: str | None = None) -> None:
    """Fail within seconds, with the fix, when hub model ``name`` can be neither read from
    the Hugging Face cache nor downloaded (transformers would otherwise retry for a minute).

    Cached (a ``config.json`` in the HF cache): fine. Otherwise ``require_hub`` decides.
    ``key``: the setting that named the model (``scorer.model``), for the fix.
    """
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(name, "config.json")
    if isinstance(cached, str):
        return
    local = f"/path/to/{name.split('/')[-1]}"
    copy = f"{key}={local}" if key else f"{local} in the setting that names {name}"
    fix = (
        f"fix: pass a local copy ({copy}), or download it once on a machine with network "
        f"(huggingface-cli download {name}) and set HF_HUB_OFFLINE=1"
    )
    require_hub(name, "model", fix, timeout_s)


def require_hub(name: str, kind: str, fix: str, timeout_s: float = 3.0) -> None:
    """Fail within seconds, with ``fix``, when hub ``kind`` (``model``, ``dataset``) ``name``,
    not in the cache, cannot be downloaded: ``HF_HUB_OFFLINE=1`` is an error, otherwise one
    TCP connection to the hub's host, ``timeout_s`` at most, decides."""
    import os
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise FileNotFoundError(
            f"expected hub {kind} {name} in the Hugging Face cache (HF_HUB_OFFLINE is set), "
            f"got no cached copy; {fix}"
        )
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as error:
        raise ConnectionError(
            f"expected to reach the {kind} hub ({host}:{port}) for {name}, got {error}; this "
            f"machine looks offline and has no cached copy; {fix}"
        ) from None


def resolve_device(device: str) -> str:
    """``auto``: ``cuda`` when a GPU is visible, else ``cpu``; anything else unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_dtype(dtype: str, key: str = "dtype") -> None:
    """``dtype`` is one of ``DTYPES``; ``key`` names the setting in the error."""
    if dtype not in DTYPES:
        raise ValueError(
            f"expected {key} in {list(DTYPES)}, got {dtype!r}; fix: {key}=auto (float32 on "
            "CPU, bfloat16 or float16 on a GPU)"
        )


def resolve_dtype(dtype: str, device: str) -> str:
    """The dtype's name. ``auto``: bfloat16 on a CUDA device that supports it, float16 on
    other CUDA devices, float32 elsewhere (CPU kernels are fastest and exact in float32)."""
    check_dtype(dtype)
    if dtype != "auto":
        return dtype
    if not device.startswith("cuda"):
        return "float32"
    import torch

    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


def torch_dtype(dtype: str, device: str) -> Any:
    """``resolve_dtype`` as a ``torch.dtype``."""
    import torch

    return getattr(torch, resolve_dtype(dtype, device))
