"""Where a PRM checkpoint is and which dtype it runs in; shared by both backends."""

from __future__ import annotations

import logging
from pathlib import Path

import search

log = logging.getLogger(__name__)

REPO_ROOT = Path(search.__file__).resolve().parents[1]
DTYPES = ("auto", "float32", "bfloat16", "float16")


def resolve_model_path(model: str | Path) -> str:
    """A local directory (as given, else relative to the repository root) or a hub name.

    ``checkpoints/arith-prm`` is found from any working directory. A relative path whose
    first folder exists locally (``checkpoints/...``) but which itself does not is an error
    naming the path, not a hub lookup.
    """
    path = Path(model).expanduser()
    if path.is_absolute():
        if not path.exists():
            raise FileNotFoundError(f"expected a PRM checkpoint at {path}, got no such path")
        return str(path)
    for base in (Path.cwd(), REPO_ROOT):
        if (base / path).exists():
            return str((base / path).resolve())
    first = path.parts[0] if path.parts else ""
    if str(model).startswith(".") or any(
        (base / first).is_dir() for base in (Path.cwd(), REPO_ROOT)
    ):
        raise FileNotFoundError(
            f"expected a PRM checkpoint at {model} (from {Path.cwd()} or {REPO_ROOT}), got no "
            "such directory; fix: build it (see README, 'The embedded PRM') or point "
            "scorer.model at an existing checkpoint"
        )
    log.info("PRM %s is not a local path; loading it as a hub model name", model)
    return str(model)


def resolve_dtype(dtype: str, cuda: bool) -> str:
    """``auto``: bfloat16 on a CUDA device that supports it, float32 otherwise."""
    if dtype not in DTYPES:
        raise ValueError(f"expected dtype in {DTYPES}, got {dtype!r}")
    if dtype != "auto":
        return dtype
    if cuda:
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float32"
