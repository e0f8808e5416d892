"""search.remote.client: order, concurrency, retries with backoff, clear failures."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fake_server import free_port, scripted_server

from search.remote import ServerClient, ServerError, ServerSettings, ServerUnavailable
from search.remote.client import ABANDONED, ABANDONED_POLL_S, backoff_delay


def settings(url: str, **changes: Any) -> ServerSettings:
    return ServerSettings(base_url=url, **{"backoff_s": 0.01, "max_backoff_s": 0.05, **changes})


def test_post_many_keeps_order_and_limits_concurrency() -> None:
    lock = threading.Lock()
    state = {"now": 0, "most": 0}

    def echo(method: str, path: str, body: Any) -> tuple[int, dict, Any]:
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.02)
        with lock:
            state["now"] -= 1
        return 200, {}, {"echo": body["i"], "path": path}

    with scripted_server(echo) as (url, seen):
        client = ServerClient(settings(url + "/v1", max_concurrency=3))
        out = client.post_many("/x", [{"i": i} for i in range(12)])
        client.close()
    assert [o["echo"] for o in out] == list(range(12))
    assert {o["path"] for o in out} == {"/x"}  # "/v1" of base_url is not doubled
    assert len(seen) == 12 and 1 < state["most"] <= 3


def test_retries_429_5xx_and_dropped_connections_then_succeeds() -> None:
    script = iter(
        [(429, {"retry-after": "0"}, {}), None, (503, {}, {"error": "busy"}), (200, {}, {"ok": 1})]
    )

    def flaky(method: str, path: str, body: Any) -> Any:
        return next(script)

    with scripted_server(flaky) as (url, seen):
        client = ServerClient(settings(url, max_retries=4))
        assert client.post("/y", {"a": 1}) == {"ok": 1}
        client.close()
    assert len(seen) == 4 and client.retries == 3


def test_gives_up_after_max_retries_with_the_status_and_message() -> None:
    with scripted_server(lambda m, p, b: (500, {}, {"error": {"message": "boom"}})) as (url, seen):
        client = ServerClient(settings(url, max_retries=2))
        with pytest.raises(ServerError, match=r"answered 500 after 3 attempt\(s\): boom"):
            client.post("/z", {})
        client.close()
    assert len(seen) == 3


def test_a_client_error_is_not_retried() -> None:
    answer = (400, {}, {"error": {"message": "max_tokens must be at least 1"}})
    with scripted_server(lambda m, p, b: answer) as (url, seen):
        client = ServerClient(settings(url))
        with pytest.raises(ServerError, match="answered 400 .*max_tokens must be at least 1"):
            client.post("/z", {})
        client.close()
    assert len(seen) == 1


def test_a_down_server_is_one_error_naming_the_url_within_seconds() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client = ServerClient(ServerSettings(base_url=url))  # default retries and backoff
    start = time.perf_counter()
    with pytest.raises(ServerUnavailable, match=f"could not reach the model server at {url}"):
        client.check()
    assert time.perf_counter() - start < 2
    start = time.perf_counter()
    with pytest.raises(ServerUnavailable, match=f"{url}/v1/completions .* after 5 attempt"):
        client.post_many("/v1/completions", [{}] * 8)
    assert time.perf_counter() - start < 20
    client.close()


def test_backoff_grows_and_is_capped() -> None:
    import random

    rng = random.Random(0)
    delays = [backoff_delay(attempt, 0.5, 8.0, rng) for attempt in range(8)]
    assert 0.25 <= delays[0] <= 0.5 and all(d <= 8.0 for d in delays)
    assert delays[4] >= 4.0  # 0.5 * 2**4 = 8, jittered to at least half


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        ServerSettings(base_url="localhost:8000")
    with pytest.raises(ValueError, match="max_concurrency > 0"):
        ServerSettings(base_url="http://x", max_concurrency=0)


def test_api_key_is_read_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_TEST_KEY", "sekret")
    with scripted_server(lambda m, p, b: (200, {}, {})) as (url, seen):
        client = ServerClient(settings(url, api_key_env="MY_TEST_KEY"))
        client.post("/k", {})
        client.close()
        ServerClient(settings(url)).post("/k", {})
    assert seen[0][3]["authorization"] == "Bearer sekret"
    assert "authorization" not in seen[1][3]


def test_a_server_that_connects_but_never_answers_fails_the_check_soon(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    from search.remote import client as client_module

    monkeypatch.setattr(client_module, "CHECK_TIMEOUT_S", 0.5)
    with socket.socket() as silent:  # accepts (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        client = ServerClient(ServerSettings(base_url=url))  # timeout_s 300
        start = time.perf_counter()
        with pytest.raises(ServerError, match=r"ReadTimeout; fix: it connected but sent no"):
            client.check()
        assert time.perf_counter() - start < 5
        client.close()


@pytest.mark.parametrize(
    ("path", "status", "fix"),
    [
        (
            "/pooling",
            404,
            "fix: base_url must point at a server that answers /pooling: a PRM "
            "served with --runner pooling",
        ),
        ("/v1/completions", 404, "a completions model"),
        ("/v1/chat/completions", 404, "a chat model"),
        ("/v1/completions", 401, "fix: api_key_env names MY_UNSET_KEY, which is unset or empty"),
    ],
)
def test_the_wrong_server_or_a_missing_key_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, path: str, status: int, fix: str
) -> None:
    monkeypatch.delenv("MY_UNSET_KEY", raising=False)
    with scripted_server(lambda m, p, b: (status, {}, {"detail": "Not Found"})) as (url, _):
        client = ServerClient(settings(url, api_key_env="MY_UNSET_KEY"))
        with pytest.raises(ServerError, match=f"answered {status} .*; .*{fix}"):
            client.post(path, {})
        client.close()


def test_an_unknown_model_name_is_told_apart_from_a_wrong_server() -> None:
    said = (404, {}, {"error": {"message": "The model `tiny` does not exist."}})
    with scripted_server(lambda m, p, b: said) as (url, _):
        client = ServerClient(settings(url))
        with pytest.raises(ServerError, match=r"does not exist\.; fix: name a model the server"):
            client.post("/v1/chat/completions", {})
        client.close()


def test_post_many_drops_abandoned_requests_unsent_or_in_flight() -> None:
    """Bodies the caller abandons come back ``ABANDONED``: one abandoned before the call and
    one waiting for a slot are never sent, one in flight is cancelled (its connection
    closed); one answered before it was abandoned keeps its answer; the rest are answered."""
    gone: set[int] = {4}  # abandoned before the call
    started = threading.Event()
    calls: list[float] = []

    def slow(method: str, path: str, body: Any) -> tuple[int, dict, Any]:
        if body["i"] == 0:
            started.set()
            time.sleep(2.0)  # in flight when abandoned
        return 200, {}, {"echo": body["i"]}

    with scripted_server(slow) as (url, seen):
        client = ServerClient(settings(url, max_concurrency=1))  # sent one after another

        def abandoned() -> set[int]:
            calls.append(time.perf_counter())
            if started.is_set():  # body 0 answered, 1 in flight, 2 waiting behind it
                gone.update({0, 1, 2})
            return gone

        start = time.perf_counter()
        bodies = [{"i": i} for i in (1, 0, 2, 3, 4)]
        out = client.post_many("/x", bodies, abandoned)
        took = time.perf_counter() - start
        asked = len(calls)
        time.sleep(3 * ABANDONED_POLL_S)
        client.close()
    assert out[0] == {"echo": 1} and out[3] == {"echo": 3}
    assert out[1] is ABANDONED and out[2] is ABANDONED and out[4] is ABANDONED
    assert [body["i"] for _, _, body, _ in seen] == [1, 0, 3]  # 2 and 4 never sent
    assert took < 1.5  # the request in flight was not waited for
    assert len(calls) == asked  # not asked again once post_many returned


def test_a_real_failure_still_raises_beside_abandoned_requests() -> None:
    def fail(method: str, path: str, body: Any) -> tuple[int, dict, Any]:
        return (400, {}, {"error": "bad"}) if body["i"] == 1 else (200, {}, {"ok": body["i"]})

    with scripted_server(fail) as (url, _):
        client = ServerClient(settings(url, max_concurrency=1))
        with pytest.raises(ServerError, match="answered 400"):
            client.post_many("/x", [{"i": i} for i in range(3)], lambda: {0})
        client.close()
