"""OpenAIServerGenerator against a scripted completions server: the request it sends, how
it reads stops and token counts, and how it fails. The vLLM server itself:
test_vllm_servers.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fake_server import free_port, scripted_server
from served_models import POLICY_DIR

from search.envs.arith.world import make_split
from search.generators.base import PromptRenderer
from search.generators.openai_server import OpenAIServerGenerator
from search.protocols import ContextLimited
from search.remote import ServerUnavailable
from search.types import FinishReason, Prefix, Sampling, Until

MODEL = "arith-policy"
PROBLEM = make_split("test", size=1)[0]


def completions(choices: list[dict[str, Any]], prompt_tokens: int = 7) -> Any:
    def handle(method: str, path: str, body: Any) -> Any:
        if path == "/v1/models":
            return 200, {}, {"data": [{"id": MODEL, "max_model_len": 256}]}
        used = sum(len(c.get("token_ids") or [0]) for c in choices)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": used}
        return 200, {}, {"choices": choices[: body["n"]], "usage": usage}

    return handle


def make(url: str, **kwargs: Any) -> OpenAIServerGenerator:
    return OpenAIServerGenerator(MODEL, url, tokenizer=str(POLICY_DIR), seed=3, **kwargs)


def test_sends_the_locally_rendered_token_ids_with_step_stops() -> None:
    choice = {"index": 0, "text": "7 + 5 = 12\n\n", "finish_reason": "stop"}
    choice |= {"stop_reason": "\n\n", "token_ids": [1, 2, 3]}
    with scripted_server(completions([choice])) as (url, seen):
        generator = make(url, max_step_tokens=9, temperature=0.5)
        (generation,) = generator.generate([Prefix(PROBLEM, ("1 + 1 = 2",))], 1, Until.step)
    body = seen[-1][2]
    renderer = PromptRenderer(generator.tokenizer, use_chat_template=None)
    assert body["prompt"] == renderer.encode(Prefix(PROBLEM, ("1 + 1 = 2",)))
    assert (body["model"], body["n"], body["max_tokens"], body["temperature"]) == (MODEL, 1, 9, 0.5)
    assert body["stop"] == ["\n\n"] and body["include_stop_str_in_output"]
    assert isinstance(body["seed"], int)
    (continuation,) = generation.continuations
    assert continuation.finish_reason is FinishReason.step and continuation.num_tokens == 3
    assert generation.prompt_tokens == 7 and continuation.steps == ("7 + 5 = 12",)


@pytest.mark.parametrize(
    ("choice", "until", "reason"),
    [
        ({"finish_reason": "stop", "stop_reason": None}, Until.step, FinishReason.eos),
        ({"finish_reason": "stop", "matched_stop": "\n\n"}, Until.step, FinishReason.step),
        ({"finish_reason": "stop", "matched_stop": 151645}, Until.step, FinishReason.eos),
        ({"finish_reason": "length"}, Until.step, FinishReason.length),
        ({"finish_reason": "stop"}, Until.end, FinishReason.eos),
    ],
)
def test_reads_which_stop_ended_a_choice(
    choice: dict[str, Any], until: Until, reason: FinishReason
) -> None:
    full = {"index": 0, "text": "9 - 3 = 6", "token_ids": [5, 6]} | choice
    with scripted_server(completions([full])) as (url, _):
        (generation,) = make(url).generate([Prefix(PROBLEM)], 1, until)
    assert generation.continuations[0].finish_reason is reason
    if reason is FinishReason.step:  # a server that drops the stop string gets it back
        assert generation.continuations[0].text == "9 - 3 = 6\n\n"


def test_without_stop_details_a_step_end_is_an_error_not_a_guess() -> None:
    choice = {"index": 0, "text": "x", "finish_reason": "stop", "token_ids": [1]}
    with (
        scripted_server(completions([choice])) as (url, _),
        pytest.raises(RuntimeError, match="stop_reason or SGLang's matched_stop"),
    ):
        make(url).generate([Prefix(PROBLEM)], 1, Until.step)


def test_counts_come_from_per_choice_ids_or_split_requests() -> None:
    choices = [
        {"index": i, "text": "1", "finish_reason": "length", "token_ids": [0] * (i + 1)}
        for i in range(3)
    ]
    with scripted_server(completions(choices)) as (url, _):
        (generation,) = make(url).generate([Prefix(PROBLEM)], 3, Until.end)
    assert [c.num_tokens for c in generation.continuations] == [1, 2, 3]
    bare = [{k: v for k, v in c.items() if k != "token_ids"} for c in choices]
    with scripted_server(completions(bare)) as (url, seen):
        with pytest.raises(RuntimeError, match="split_n=true"):
            make(url).generate([Prefix(PROBLEM)], 3, Until.end)
        (generation,) = make(url, split_n=True).generate([Prefix(PROBLEM)], 3, Until.end)
    assert len(generation.continuations) == 3
    posted = [body for method, _, body, _ in seen if method == "POST"]
    assert [body["n"] for body in posted[-3:]] == [1, 1, 1]
    assert len({body["seed"] for body in posted[-3:]}) == 3


def test_greedy_copies_go_one_choice_per_request() -> None:
    """vLLM answers 400 to a request for n > 1 greedy choices: at temperature 0 each copy is
    a request of its own (a greedy beam or best-of-N reaches the server without split_n)."""
    choice = {"index": 0, "text": "1", "finish_reason": "length", "token_ids": [4, 2]}
    with scripted_server(completions([choice])) as (url, seen):
        (generation,) = make(url, temperature=0.0).generate([Prefix(PROBLEM)], 3, Until.end)
        sampled = make(url, temperature=1.0)
        sampled.generate([Prefix(PROBLEM)], 2, Until.end, Sampling(temperature=0.0))
    posted = [body for method, _, body, _ in seen if method == "POST"]
    assert [body["n"] for body in posted] == [1, 1, 1, 1, 1]
    assert [body["temperature"] for body in posted] == [0.0] * 5
    assert [c.num_tokens for c in generation.continuations] == [2, 2, 2]


def test_the_served_context_is_known_before_any_search() -> None:
    """The served model's max_model_len makes the generator ``ContextLimited``, so a run or
    the search server refuses a prompt that does not fit before generating."""
    with scripted_server(completions([])) as (url, _):
        generator = make(url)
    assert isinstance(generator, ContextLimited) and generator.context_length == 256
    renderer = PromptRenderer(generator.tokenizer, use_chat_template=None)
    assert generator.prompt_length(Prefix(PROBLEM)) == len(renderer.encode(Prefix(PROBLEM)))


def test_an_unknown_model_names_the_served_ones() -> None:
    with (
        scripted_server(completions([])) as (url, _),
        pytest.raises(ValueError, match=r"serve model 'other'.*\['arith-policy'\]"),
    ):
        OpenAIServerGenerator("other", url, tokenizer=str(POLICY_DIR))


def test_a_down_server_fails_at_once_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    start = time.perf_counter()
    with pytest.raises(ServerUnavailable, match=f"model server at {url}/v1/models"):
        make(url)
    assert time.perf_counter() - start < 2


def test_the_cli_reports_a_down_server_in_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "search", "policy=openai_server", f"policy.base_url={url}",
         "scorer=fake", f"hydra.run.dir={tmp_path}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert time.perf_counter() - start < 60  # mostly interpreter start-up and imports
    assert done.returncode == 1
    assert f"error: could not reach the model server at {url}" in done.stderr
    assert "Traceback" not in done.stderr


def test_per_call_sampling_and_stream_seeds_reach_the_request() -> None:
    """A call's Sampling overrides temperature and max_tokens; each request's seed is a
    function of the generator's seed and the prefix's stream name only."""
    choice = {"index": 0, "text": "7 + 5 = 12\n\n", "finish_reason": "stop"}
    choice |= {"stop_reason": "\n\n", "token_ids": [1, 2, 3]}
    prefixes = [Prefix(PROBLEM), Prefix(PROBLEM, ("1 + 1 = 2",))]
    with scripted_server(completions([choice])) as (url, seen):
        generator = make(url, temperature=0.7)
        generator.generate(prefixes, 1, Until.step, Sampling(temperature=0.0, max_tokens=5))
        first = [body for _, path, body, _ in seen if path == "/v1/completions"]
        generator.generate(prefixes[::-1], 1, Until.step, Sampling(streams=("b", "a")))
        generator.generate(prefixes, 1, Until.step, Sampling(streams=("a", "b")))
        bodies = [body for _, path, body, _ in seen if path == "/v1/completions"]
    assert all((b["temperature"], b["max_tokens"]) == (0.0, 5) for b in first)
    swapped, straight = bodies[2:4], bodies[4:6]

    def seed_by_prompt(calls: list[dict[str, Any]]) -> dict[tuple[int, ...], int]:
        return {tuple(b["prompt"]): b["seed"] for b in calls}  # requests arrive in any order

    assert seed_by_prompt(swapped) == seed_by_prompt(straight)  # same prefix, same stream
    assert len(set(seed_by_prompt(straight).values())) == 2
    assert all(b["temperature"] == 0.7 for b in straight)


def test_abandoned_prefixes_come_back_cut_without_their_requests() -> None:
    choice = {"index": 0, "text": "7 + 5 = 12\n\n", "finish_reason": "stop"}
    choice |= {"stop_reason": "\n\n", "token_ids": [1, 2, 3]}
    prefixes = [Prefix(PROBLEM), Prefix(PROBLEM, ("1 + 1 = 2",)), Prefix(PROBLEM, ("2",))]
    with scripted_server(completions([choice])) as (url, seen):
        generator = make(url, split_n=True)  # one request per choice: 2 per prefix
        sent = len(seen)
        out = generator.generate(prefixes, 2, Until.step, Sampling(abandoned=lambda: [1]))
    assert len(seen) - sent == 4  # prefix 1's two requests were not sent
    for continuation in out[1].continuations:
        assert continuation.num_tokens == 0 and continuation.finish_reason is FinishReason.length
    assert all(c.num_tokens == 3 for i in (0, 2) for c in out[i].continuations)
    assert generator.usage.generated_tokens == 12
