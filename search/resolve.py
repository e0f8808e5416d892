"""Where things are and what they run on, one rule each: the repository's folders, model
paths, devices and dtypes. Used by the generators, the scorers and the trainers alike."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = REPO_ROOT / "conf"  # Hydra's config_path for every entry point
DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_model_path(model: str | Path) -> str:
    """A local checkpoint as an absolute path, else ``model`` unchanged (a hub name).

    A relative path is tried from the working directory, then from the repository root (so
    ``checkpoints/arith-prm`` is found from anywhere). A path that is absolute, starts with
    ``.``, or whose first folder exists locally (``checkpoints/...``) but which itself does
    not exist is an error naming the path, not a hub lookup.
    """
    path = Path(model).expanduser()
    bases = [Path("/")] if path.is_absolute() else [Path.cwd(), REPO_ROOT]
    for base in bases:
        if (base / path).exists():
            return str((base / path).resolve())
    first = path.parts[0] if path.parts else ""
    looks_local = (
        path.is_absolute()
        or str(model).startswith(".")
        or any((base / first).is_dir() for base in (Path.cwd(), REPO_ROOT))
    )
    if looks_local:
        raise FileNotFoundError(
            f"expected a model checkpoint at {model} (from {Path.cwd()} or {REPO_ROOT}), got "
            "no such directory; fix: point policy.model / scorer.model at an existing "
            "checkpoint, or rebuild the embedded ones (`make policy`, `make prm`)"
        )
    log.info("model %s is not a local path; loading it as a hub model name", model)
    return str(model)


def resolve_device(device: str) -> str:
    """``auto``: ``cuda`` when a GPU is visible, else ``cpu``; anything else unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str, device: str) -> str:
    """The dtype's name. ``auto``: bfloat16 on a CUDA device that supports it, float16 on
    other CUDA devices, float32 elsewhere (CPU kernels are fastest and exact in float32)."""
    if dtype not in DTYPES:
        raise ValueError(f"expected dtype in {list(DTYPES)}, got {dtype!r}")
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
