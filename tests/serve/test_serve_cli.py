"""``python -m search.serve``: its config composes with every policy and scorer option, and
the command serves requests end to end (fake models, a subprocess, as a user runs it)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from search.envs.arith.world import make_split
from search.serve.background import free_port
from search.serve.config import ServeConfig, register_configs

REPO_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = REPO_ROOT / "conf"


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF_DIR / group).glob("*.yaml"))


@pytest.fixture(scope="module", autouse=True)
def hydra_conf() -> Iterator[None]:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        yield


@pytest.mark.parametrize("policy", options("policy"))
@pytest.mark.parametrize("scorer", ["arith_prm", "none"])
def test_serve_config_composes(policy: str, scorer: str) -> None:
    raw = compose(config_name="serve", overrides=[f"policy={policy}", f"scorer={scorer}"])
    config = OmegaConf.to_object(raw)
    assert isinstance(config, ServeConfig)
    assert config.policy["_target_"] and config.port == 8000
    assert (config.scorer is None) == (scorer == "none")
    raw = compose(config_name="serve", overrides=["+strategy=beam", "strategy.n=8"])
    assert OmegaConf.to_object(raw).strategy.n == 8  # type: ignore[union-attr]


def test_bad_serve_settings_fail_at_the_command_line() -> None:
    with pytest.raises(Exception, match="port"):
        OmegaConf.to_object(compose(config_name="serve", overrides=["port=0"]))
    with pytest.raises(Exception, match=r"strategy.n=100, max_n=64; fix: max_n=100"):
        OmegaConf.to_object(compose(config_name="serve", overrides=["strategy.n=100"]))
    raw = compose(config_name="serve", overrides=["strategy.n=100", "max_n=128"])
    assert OmegaConf.to_object(raw).max_n == 128  # type: ignore[union-attr]
    with pytest.raises(Exception, match=r"disconnect_poll_ms > 0, got 0.0; fix"):
        OmegaConf.to_object(compose(config_name="serve", overrides=["disconnect_poll_ms=0"]))
    raw = compose(config_name="serve", overrides=["disconnect_poll_ms=50"])
    assert OmegaConf.to_object(raw).disconnect_poll_ms == 50  # type: ignore[union-attr]


def start_server(tmp_path: Path, *overrides: str) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m search.serve`` with fake models and ``overrides`` in its own session
    (``os.killpg`` reaches it), once ``/health`` answers; its output in ``serve.log``."""
    port = free_port()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "tests")]),
    }
    command = [sys.executable, "-m", "search.serve", "policy=fake", "scorer=fake",
               f"port={port}", "strategy.n=4", f"hydra.run.dir={tmp_path}", *overrides]  # fmt: skip
    with (tmp_path / "serve.log").open("w") as log:
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            raise AssertionError((tmp_path / "serve.log").read_text()[-2000:])
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.5)


def test_python_m_search_serve_answers_the_openai_client(tmp_path: Path) -> None:
    process, url = start_server(tmp_path)
    try:
        client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
        problem = make_split("test", size=1)[0]
        reply = client.chat.completions.create(
            model="prm-search", messages=[{"role": "user", "content": problem.question}]
        )
        assert reply.model_extra is not None
        assert len(reply.model_extra["search"]["candidates"]) == 4
        assert reply.choices[0].message.content
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)


def test_a_second_ctrl_c_during_a_batch_answers_503_without_tracebacks(tmp_path: Path) -> None:
    """The first Ctrl-C lets running requests finish; a second makes uvicorn cancel them. A
    cancelled request is told the server stopped (503), and the log holds no traceback."""
    process, url = start_server(
        tmp_path, "policy._target_=slow_fake.SlowFakeGenerator", "+policy.delay_s=2.0"
    )
    replies: list[httpx.Response] = []
    body = {"model": "prm-search", "prompt": make_split("test", size=1)[0].question}
    sender = threading.Thread(
        target=lambda: replies.append(httpx.post(url + "/v1/completions", json=body, timeout=60))
    )
    try:
        sender.start()
        time.sleep(1.0)  # the batch is in the slow policy's first generate call
        os.killpg(process.pid, signal.SIGINT)
        time.sleep(0.5)
        os.killpg(process.pid, signal.SIGINT)
        sender.join(timeout=60)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log and "CancelledError" not in log, log[-3000:]
    (reply,) = replies
    assert reply.status_code == 503, reply.text
    assert reply.json()["error"]["type"] == "server_shutting_down"
    assert "stopped by the server's forced exit" in log


def test_bad_component_settings_are_one_line_before_any_model_loads(tmp_path: Path) -> None:
    (tmp_path / "tokenizer-only").mkdir()
    (tmp_path / "tokenizer-only" / "tokenizer.json").write_text("{}")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    cases = {
        "policy.hf.batch_size=0": r"expected policy\.hf\.batch_size >= 1, got 0; fix",
        "policy.hf.shared_prompt_min_rows=0": (
            r"expected policy\.hf\.shared_prompt_min_rows >= 1, got 0; fix"
        ),
        f"policy.model={tmp_path}/tokenizer-only": r"policy\.model: expected a transformers ",
    }
    for override, message in cases.items():
        done = subprocess.run(
            [sys.executable, "-m", "search.serve", override, f"hydra.run.dir={tmp_path}/run"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
        assert re.search(message, done.stderr.strip().splitlines()[-1]), done.stderr[-2000:]
