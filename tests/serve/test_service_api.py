"""The search server (search.serve) driven by the `openai` client: fake policy and PRM of the
arithmetic world, so each test takes well under a second of model time."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import openai
import pytest
from slow_fake import SlowFakeGenerator

from search.aggregation import Aggregation
from search.answers import extract_answer
from search.envs.arith.fakes import FakeGenerator, FakeScorer, count_words
from search.envs.arith.world import make_split
from search.generators.base import GenerationSettings, make_continuation
from search.guards import ScoreOutput
from search.prompting import render_prompt
from search.remote import ServerClient, ServerSettings
from search.serve.app import build_app
from search.serve.background import free_port, serve_in_background
from search.serve.fields import check_unapplied
from search.serve.service import Batcher, RequestError, SearchService, SearchSettings
from search.strategies import StrategyConfig
from search.strategies.config import StrategyName
from search.types import DEFAULT_SAMPLING, FinishReason, Generation, Prefix, Sampling, Until

PROBLEMS = make_split("test", size=24)


class ExplodingScorer(FakeScorer):
    """Fails every call that holds a question with "999" in it (a poisoned request)."""

    def score_with_usage(self, prefixes: Sequence[Prefix]) -> ScoreOutput:
        if any("999" in prefix.problem.question for prefix in prefixes):
            raise RuntimeError("the PRM fell over")
        return super().score_with_usage(prefixes)


class Mumbler:
    """A policy that ends every solution (eos) without stating an answer."""

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        texts = ("I am not sure.", "No idea, sorry.")
        return [
            Generation(
                prompt_tokens=5,
                continuations=tuple(
                    make_continuation(texts[j % 2], FinishReason.eos, 4, until) for j in range(n)
                ),
            )
            for _ in prefixes
        ]


class ShortContextGenerator(FakeGenerator):
    """The fake policy with a context of ``context_length`` words (``ContextLimited``)."""

    context_length: int | None = 40

    def prompt_length(self, prefix: Prefix) -> int:
        return count_words(render_prompt(prefix.problem.question, prefix.steps))


class RemoteLookingGenerator(FakeGenerator):
    """The fake policy with a ``ServerClient`` to ``base_url``, as a remote policy has."""

    def __init__(self, base_url: str) -> None:
        super().__init__(seed=0)
        self.client = ServerClient(ServerSettings(base_url=base_url, connect_timeout_s=1.0))


def make_service(
    error_rate: float = 0.2, scorer: Any = None, n: int = 4, generator: Any = None
) -> SearchService:
    return SearchService(
        generator if generator is not None else FakeGenerator(seed=0, error_rate=error_rate),
        scorer if scorer is not None else FakeScorer(seed=0, noise=0.05),
        StrategyConfig(n=n),
        Aggregation.min,
    )


def local_client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Any]]:
    app = build_app(make_service(), max_wait_s=0.05)
    with serve_in_background(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def client(server: tuple[str, Any]) -> openai.OpenAI:
    return openai.OpenAI(base_url=server[0] + "/v1", api_key="none", max_retries=0)


def ask(client: openai.OpenAI, question: str, **extra: Any) -> Any:
    return client.chat.completions.create(
        model="prm-search", messages=[{"role": "user", "content": question}], extra_body=extra
    )


def test_chat_answer_is_the_selected_solution_with_candidates_and_usage(
    client: openai.OpenAI,
) -> None:
    reply = ask(client, PROBLEMS[0].question)
    (choice,) = reply.choices
    search = reply.model_extra["search"]
    assert search["strategy"] == "best_of_n" and search["n"] == search["candidates_drawn"] == 4
    assert search["rule"] == "weighted" and search["aggregation"] == "min"
    assert set(search["predictions"]) == {"prm", "weighted", "majority"}
    assert extract_answer(choice.message.content) == search["prediction"]
    texts = [c["text"] for c in search["candidates"]]
    assert len(texts) == 4 and choice.message.content in texts
    chosen = search["candidates"][texts.index(choice.message.content)]
    assert search["selected"] == texts.index(choice.message.content) and search["note"] is None
    assert chosen["answer"] == search["prediction"] and len(chosen["step_scores"]) == len(
        chosen["steps"]
    )
    assert choice.finish_reason == ("stop" if chosen["finished"] else "length")
    usage = reply.usage
    assert usage.completion_tokens == sum(c["num_tokens"] for c in search["candidates"])
    assert usage.prompt_tokens > 0 and usage.total_tokens == (
        usage.prompt_tokens + usage.completion_tokens
    )
    assert usage.model_extra["prm_tokens"] > 0


def test_completions_take_a_list_of_questions(client: openai.OpenAI) -> None:
    reply = client.completions.create(
        model="prm-search", prompt=[p.question for p in PROBLEMS[:3]], extra_body={"n": 2}
    )
    assert [c.index for c in reply.choices] == [0, 1, 2]
    for choice in reply.choices:
        search = choice.model_extra["search"]
        assert search["n"] == 2
        assert extract_answer(choice.text) == search["prediction"]


def test_a_request_overrides_n_strategy_aggregation_and_select(client: openai.OpenAI) -> None:
    reply = ask(client, PROBLEMS[1].question, n=8, strategy="beam", aggregation="prod")
    search = reply.model_extra["search"]
    assert (search["strategy"], search["n"], search["aggregation"]) == ("beam", 8, "prod")
    assert len(search["candidates"]) == 8
    reply = ask(client, PROBLEMS[1].question, select="majority")
    assert reply.model_extra["search"]["rule"] == "majority"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"n": 0}, "n: Input should be greater than or equal to 1"),
        ({"strategy": "nope"}, "strategy: Input should be"),
        ({"aggregation": "max"}, "aggregation: Input should be"),
        (
            {"strategy": "beam", "n": 6},
            'multiple of the server\'s strategy.beam_width=4.*fix: "n": 4 or "n": 8 in the request',
        ),
        (
            {"strategy": "beam", "n": 3},
            'got "n": 3; fix: "n": 4 in the request body \\(a multiple of 4, at most max_n=64\\)',
        ),
        ({"stream": True}, "streaming is not supported"),
    ],
)
def test_bad_requests_are_400_with_a_message(
    client: openai.OpenAI, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(openai.BadRequestError, match=message):
        ask(client, PROBLEMS[0].question, **extra)


def test_an_invalid_override_names_the_request_field_not_the_command_line(
    client: openai.OpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        ask(client, PROBLEMS[0].question, strategy="adaptive_best_of_n", select="prm")
    message = str(raised.value)
    assert 'fix: "select": "weighted" in the request body' in message
    assert "strategy.select" not in message


def test_bad_messages_model_and_prompt(client: openai.OpenAI, server: tuple[str, Any]) -> None:
    with pytest.raises(openai.BadRequestError, match="one user message"):
        client.chat.completions.create(
            model="prm-search",
            messages=[{"role": "system", "content": "x"}, {"role": "user", "content": "y"}],
        )
    with pytest.raises(openai.NotFoundError, match="expected model 'prm-search'"):
        client.chat.completions.create(
            model="gpt-4", messages=[{"role": "user", "content": "Compute 1 + 1."}]
        )
    with pytest.raises(openai.BadRequestError, match="non-empty question"):
        client.completions.create(model="prm-search", prompt="  ")
    image = {"type": "image_url", "image_url": {"url": "http://x/y.png"}}
    with pytest.raises(openai.BadRequestError, match=r"got \['image_url'\]; fix: send"):
        client.chat.completions.create(
            model="prm-search", messages=[{"role": "user", "content": [image]}]
        )
    response = httpx.post(server[0] + "/v1/completions", content=b"{not json")
    assert response.status_code == 400 and "error" in response.json()


def test_models_and_health(client: openai.OpenAI, server: tuple[str, Any]) -> None:
    assert [m.id for m in client.models.list()] == ["prm-search"]
    # in-process models: nothing remote to probe
    assert httpx.get(server[0] + "/health").json() == {"status": "ok", "backends": {}}


def test_requests_arriving_together_share_one_strategy_call() -> None:
    app = build_app(make_service(error_rate=0.0), max_wait_s=0.2)
    with serve_in_background(app) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            replies = list(pool.map(lambda p: ask(client, p.question), PROBLEMS[:16]))
    batcher = app.state.batcher
    assert batcher.strategy_calls < 16 and max(batcher.batch_sizes) > 1
    # with a policy that never errs, each reply must hold its own question's answer
    assert [r.model_extra["search"]["prediction"] for r in replies] == [
        p.answer for p in PROBLEMS[:16]
    ]


def test_a_failing_request_fails_alone_and_the_server_stays_up() -> None:
    app = build_app(make_service(scorer=ExplodingScorer(seed=0)), max_wait_s=0.2)
    questions = [p.question for p in PROBLEMS[:3]] + ["Compute 999 + 1."]
    with serve_in_background(app) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)

        def send(question: str) -> Any:
            try:
                return ask(client, question)
            except openai.InternalServerError as error:
                return error

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            replies = list(pool.map(send, questions))
        assert all(isinstance(r, openai.types.chat.ChatCompletion) for r in replies[:3])
        assert isinstance(replies[3], openai.InternalServerError)
        assert "the PRM fell over" in str(replies[3])
        assert ask(client, PROBLEMS[5].question).choices[0].message.content
        assert httpx.get(url + "/health").status_code == 200


def test_an_n_above_max_n_is_refused_before_any_search(
    client: openai.OpenAI, server: tuple[str, Any]
) -> None:
    calls = server[1].state.batcher.strategy_calls
    with pytest.raises(openai.BadRequestError) as raised:
        ask(client, PROBLEMS[0].question, n=100000)
    message = str(raised.value)
    assert 'expected "n" <= 64 (the server\'s max_n), got "n": 100000' in message
    assert 'fix: "n": 64 or less in the request body' in message and "max_n=100000" in message
    assert server[1].state.batcher.strategy_calls == calls
    assert ask(client, PROBLEMS[0].question, n=64).model_extra["search"]["n"] == 64


def test_more_questions_than_max_batch_problems_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match='at most 64 questions in "prompt"') as raised:
        client.completions.create(model="prm-search", prompt=[PROBLEMS[0].question] * 65)
    assert "max_batch_problems=65" in str(raised.value)


def test_a_server_n_above_max_n_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="fix: max_n=100"):
        SearchService(FakeGenerator(), FakeScorer(), StrategyConfig(n=100), Aggregation.min)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"temperature": 0.2}, '"temperature".*policy settings decide it.*policy.temperature=0.2'),
        ({"top_p": 0.5}, '"top_p".*fix: drop "top_p".*policy.top_p=0.5'),
        ({"max_tokens": 10}, '"max_tokens".*policy.max_tokens=10'),
        ({"presence_penalty": 0.5}, '"presence_penalty" unset or 0 .*does not apply'),
        ({"logprobs": True}, '"logprobs" unset or False'),
        ({"strategyy": "beam"}, 'only fields the server applies.*got "strategyy"; fix: drop'),
    ],
)
def test_openai_fields_the_server_does_not_apply_are_400(
    client: openai.OpenAI, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(openai.BadRequestError, match=message):
        ask(client, PROBLEMS[0].question, **extra)


def test_neutral_openai_fields_are_accepted(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="prm-search",
        messages=[{"role": "user", "content": PROBLEMS[0].question}],
        presence_penalty=0,
        frequency_penalty=0.0,
        logprobs=False,
        user="someone",
        stop=None,
    )
    assert reply.choices[0].message.content


def test_a_policy_field_equal_to_the_policys_setting_is_accepted() -> None:
    policy = GenerationSettings(temperature=0.7, top_p=0.9, max_tokens=160)
    check_unapplied({"temperature": 0.7, "top_p": 0.9, "max_tokens": 160}, policy, ("messages",))
    with pytest.raises(RequestError, match=r"policy.temperature=0.7\), got 1.0; fix: drop"):
        check_unapplied({"temperature": 1.0}, policy, ("messages",))
    with pytest.raises(RequestError, match="policy.max_tokens=160"):
        check_unapplied({"max_completion_tokens": 50}, policy, ("messages",))


def test_a_seed_repeats_the_answer_and_no_seed_draws_anew() -> None:
    app = build_app(make_service(error_rate=0.5), max_wait_s=0.2)
    questions = [p.question for p in PROBLEMS[:3]]

    def candidates(reply: Any) -> list[list[str]]:
        return [c["steps"] for c in reply.model_extra["search"]["candidates"]]

    with serve_in_background(app) as url:
        client = local_client(url)
        seeded = [candidates(ask(client, q, seed=7)) for q in questions]
        with concurrent.futures.ThreadPoolExecutor(3) as pool:  # together, in one batch
            again = list(pool.map(lambda q: candidates(ask(client, q, seed=7)), questions))
        other = [candidates(ask(client, q, seed=8)) for q in questions]
        unseeded = [candidates(ask(client, q)) for q in questions]
        unseeded_again = [candidates(ask(client, q)) for q in questions]
    assert again == seeded
    assert other != seeded and unseeded != unseeded_again


def test_adaptive_reports_the_budget_asked_and_the_candidates_drawn() -> None:
    app = build_app(make_service(error_rate=0.0))
    with serve_in_background(app) as url:
        reply = ask(local_client(url), PROBLEMS[0].question, strategy="adaptive_best_of_n", n=8)
    search = reply.model_extra["search"]
    assert search["n"] == 8
    assert search["candidates_drawn"] == len(search["candidates"]) == 4  # the votes agreed


def test_without_an_answer_the_reply_is_the_best_candidate_with_a_note() -> None:
    app = build_app(make_service(generator=Mumbler()))
    with serve_in_background(app) as url:
        reply = ask(local_client(url), "What colour is the sky?")
    (choice,) = reply.choices
    search = reply.model_extra["search"]
    assert search["prediction"] is None
    chosen = search["candidates"][search["selected"]]
    assert choice.message.content == chosen["text"] and choice.message.content
    assert chosen["finished"] and choice.finish_reason == "stop"
    assert "no answer was picked" in search["note"] and "not a selected answer" in search["note"]


def test_a_question_too_long_for_the_policy_is_400_naming_the_field() -> None:
    app = build_app(make_service(generator=ShortContextGenerator(seed=0)))
    long_question = "Compute 1 + 1. " + "Think hard. " * 30
    with serve_in_background(app) as url:
        client = local_client(url)
        with pytest.raises(openai.BadRequestError) as raised:
            ask(client, long_question)
        assert raised.value.type == "invalid_request_error"
        message = str(raised.value)
        assert '"messages[0].content": expected a question whose prompt fits' in message
        assert "context of 40 tokens" in message and "fix: a shorter question" in message
        assert "on_overflow" not in message
        with pytest.raises(openai.BadRequestError, match=r'"prompt\[1\]": .*got a prompt of'):
            client.completions.create(
                model="prm-search", prompt=[PROBLEMS[0].question, long_question]
            )
        assert ask(client, PROBLEMS[0].question).choices[0].message.content


def test_a_beam_width_mismatch_of_the_servers_own_n_names_the_request_fix() -> None:
    service = make_service(n=6)
    with pytest.raises(RequestError, match=r"got n=6 \(the server's strategy.n\); fix: \"n\": 4"):
        service.resolve(SearchSettings(strategy=StrategyName.beam))


def test_health_reports_a_remote_backend_that_is_down(server: tuple[str, Any]) -> None:
    down = build_app(
        make_service(generator=RemoteLookingGenerator(f"http://127.0.0.1:{free_port()}"))
    )
    up = build_app(make_service(generator=RemoteLookingGenerator(server[0])))
    with serve_in_background(down) as down_url, serve_in_background(up) as up_url:
        response = httpx.get(down_url + "/health", timeout=30)
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unavailable" and body["backends"]["policy"]["status"] == (
            "unavailable"
        )
        assert "could not reach" in body["backends"]["policy"]["error"]
        response = httpx.get(up_url + "/health", timeout=30)
        assert response.status_code == 200
        assert response.json()["backends"]["policy"] == {"url": server[0], "status": "ok"}


@pytest.mark.slow
def test_the_embedded_models_answer_through_the_openai_client() -> None:
    """The server's default models (conf/policy/arith_tiny.yaml, conf/scorer/arith_prm.yaml)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from search.resolve import CONF_DIR

    service = SearchService(
        instantiate(OmegaConf.load(CONF_DIR / "policy" / "arith_tiny.yaml"), seed=0),
        instantiate(OmegaConf.load(CONF_DIR / "scorer" / "arith_prm.yaml")),
        StrategyConfig(n=4),
        Aggregation.min,
    )
    with serve_in_background(build_app(service)) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
        reply = client.completions.create(
            model="prm-search", prompt=[p.question for p in PROBLEMS[:4]], extra_body={"n": 4}
        )
    assert len(reply.choices) == 4
    for choice in reply.choices:
        search = choice.model_extra["search"]
        assert len(search["candidates"]) == 4
        assert all(0.0 <= s <= 1.0 for c in search["candidates"] for s in c["step_scores"])
        if search["prediction"] is not None:
            assert extract_answer(choice.text) == search["prediction"]
    assert reply.usage.model_extra["prm_tokens"] > 0


def test_the_same_seeded_question_twice_in_one_batch_gets_the_same_answer() -> None:
    """Two requests with the same seed and question share a problem id: searched in one
    batch they must still both be answered, alike."""
    app = build_app(make_service(error_rate=0.5), max_wait_s=0.3)
    question = PROBLEMS[0].question
    with serve_in_background(app) as url:
        client = local_client(url)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            replies = list(pool.map(lambda _: ask(client, question, seed=7), range(2)))
        alone = ask(client, question, seed=7)
    steps = [[c["steps"] for c in r.model_extra["search"]["candidates"]] for r in replies]
    assert steps[0] == steps[1] == [c["steps"] for c in alone.model_extra["search"]["candidates"]]


def test_one_seeded_request_may_repeat_a_question(client: openai.OpenAI) -> None:
    question = PROBLEMS[0].question
    reply = client.completions.create(
        model="prm-search", prompt=[question, question], seed=7, extra_body={"n": 2}
    )
    first, second = (c.model_extra["search"]["candidates"] for c in reply.choices)
    assert first == second


# -- a client that leaves ---------------------------------------------------------------------
def _leave_after(url: str, question: str, seconds: float) -> None:
    """Send ``question`` and hang up after ``seconds`` without reading an answer."""
    body = {"model": "prm-search", "messages": [{"role": "user", "content": question}]}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url + "/v1/chat/completions", json=body, timeout=seconds)


def _wait_for(condition: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def _beam_service(generator: Any) -> SearchService:
    return SearchService(
        generator,
        FakeScorer(seed=0),
        StrategyConfig(name=StrategyName.beam, n=4, beam_width=2, max_steps=8),
        Aggregation.min,
    )


def test_a_search_whose_client_left_stops_at_its_next_backend_call() -> None:
    # the same beam search run to its end makes this many generate calls
    full = SlowFakeGenerator(delay_s=0.0, seed=0)
    service = _beam_service(full)
    service.run(service.resolve(SearchSettings()), [PROBLEMS[0]])
    assert full.usage.calls >= 4

    slow = SlowFakeGenerator(delay_s=0.25, seed=0)
    app = build_app(_beam_service(slow), disconnect_poll_s=0.05)
    with serve_in_background(app) as url:
        _leave_after(url, PROBLEMS[0].question, seconds=0.4)
        batcher = app.state.batcher
        assert _wait_for(lambda: batcher.stopped_batches == 1)
        calls_when_stopped = slow.usage.calls
        time.sleep(0.6)
        assert slow.usage.calls == calls_when_stopped < full.usage.calls
        # the model thread is free again: the next request is answered at once
        client = local_client(url)
        assert ask(client, PROBLEMS[1].question).choices[0].message.content


def test_a_queued_request_whose_client_left_is_never_searched() -> None:
    slow = SlowFakeGenerator(delay_s=0.25, seed=0)
    app = build_app(_beam_service(slow), max_wait_s=0.0, disconnect_poll_s=0.05)
    with serve_in_background(app) as url:
        client = local_client(url)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            first = pool.submit(ask, client, PROBLEMS[0].question)
            assert _wait_for(lambda: app.state.batcher.strategy_calls == 1)
            _leave_after(url, PROBLEMS[1].question, seconds=0.2)  # queued behind the first
            assert first.result().choices[0].message.content
        time.sleep(0.3)
        batcher = app.state.batcher
        assert batcher.strategy_calls == 1 and batcher.stopped_batches == 0


def test_a_client_that_leaves_a_shared_batch_is_dropped_from_it() -> None:
    slow = SlowFakeGenerator(delay_s=0.2, seed=0)
    app = build_app(_beam_service(slow), max_wait_s=0.3, disconnect_poll_s=0.05)
    stays, leaves = PROBLEMS[2].question, PROBLEMS[3].question
    with serve_in_background(app) as url:
        client = local_client(url)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            staying = pool.submit(ask, client, stays, seed=5)
            _leave_after(url, leaves, seconds=0.6)  # in the same batch
            reply = staying.result()
        batcher = app.state.batcher
        assert batcher.batch_sizes == [2] and batcher.stopped_batches == 0
        assert batcher.dropped_requests == 1
    assert slow.questions[0] == {stays, leaves}  # shared until the client left
    assert leaves not in slow.questions[-1] and stays in slow.questions[-1]
    # the client that stayed got what it gets alone
    alone = _beam_service(SlowFakeGenerator(delay_s=0.0, seed=0))
    with serve_in_background(build_app(alone)) as url:
        by_itself = ask(local_client(url), stays, seed=5)
    assert reply.choices[0].message.content == by_itself.choices[0].message.content
    assert reply.model_extra["search"] == by_itself.model_extra["search"]


@pytest.mark.parametrize("polled", [True, False])
def test_a_request_cancelled_on_the_server_drops_its_search_too(polled: bool) -> None:
    """E.g. at shutdown: the request's coroutine is cancelled, not its client gone (with or
    without a ``disconnected`` poll)."""
    slow = SlowFakeGenerator(delay_s=0.2, seed=0)
    service = _beam_service(slow)

    async def scenario() -> Batcher:
        batcher = Batcher(service, disconnect_poll_s=0.05)
        batcher.start()

        async def still_there() -> bool:
            return False

        settings = service.resolve(SearchSettings())
        poll = still_there if polled else None
        request = asyncio.create_task(batcher.submit(settings, [PROBLEMS[0]], poll))
        await asyncio.sleep(0.1)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        for _ in range(100):
            if batcher.stopped_batches:
                break
            await asyncio.sleep(0.02)
        await batcher.stop()
        return batcher

    batcher = asyncio.run(scenario())
    assert batcher.stopped_batches == 1 and batcher.strategy_calls == 1


def test_a_lifespan_failure_is_hidden_only_when_it_is_the_forced_exits_cancellation() -> None:
    """QuietForcedExit turns a lifespan failure into a clean shutdown only when its traceback
    ends in the cancellation; another error raised while one was handled is still reported."""
    from search.serve.app import _cancelled

    cancelled = "Traceback (most recent call last):\n  ...\nasyncio.exceptions.CancelledError\n"
    other = (
        "Traceback (most recent call last):\n  ...\nasyncio.exceptions.CancelledError\n\n"
        "During handling of the above exception, another exception occurred:\n\n"
        "RuntimeError: the batcher could not stop\n"
    )
    assert _cancelled({"type": "lifespan.shutdown.failed", "message": cancelled})
    assert not _cancelled({"type": "lifespan.shutdown.failed", "message": other})
    assert not _cancelled({"type": "lifespan.shutdown.failed"})
