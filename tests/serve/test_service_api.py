"""The search server (search.serve) driven by the `openai` client: fake policy and PRM of the
arithmetic world, so each test takes well under a second of model time."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import openai
import pytest

from search.aggregation import Aggregation
from search.answers import extract_answer
from search.envs.arith.fakes import FakeGenerator, FakeScorer
from search.envs.arith.world import make_split
from search.guards import ScoreOutput
from search.serve.app import build_app
from search.serve.background import serve_in_background
from search.serve.service import SearchService
from search.strategies import StrategyConfig
from search.types import Prefix

PROBLEMS = make_split("test", size=24)


class ExplodingScorer(FakeScorer):
    """Fails every call that holds a question with "999" in it (a poisoned request)."""

    def score_with_usage(self, prefixes: Sequence[Prefix]) -> ScoreOutput:
        if any("999" in prefix.problem.question for prefix in prefixes):
            raise RuntimeError("the PRM fell over")
        return super().score_with_usage(prefixes)


def make_service(error_rate: float = 0.2, scorer: Any = None, n: int = 4) -> SearchService:
    return SearchService(
        FakeGenerator(seed=0, error_rate=error_rate),
        scorer if scorer is not None else FakeScorer(seed=0, noise=0.05),
        StrategyConfig(n=n),
        Aggregation.min,
    )


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
    assert search["strategy"] == "best_of_n" and search["n"] == 4
    assert search["rule"] == "weighted" and search["aggregation"] == "min"
    assert set(search["predictions"]) == {"prm", "weighted", "majority"}
    assert extract_answer(choice.message.content) == search["prediction"]
    texts = [c["text"] for c in search["candidates"]]
    assert len(texts) == 4 and choice.message.content in texts
    chosen = search["candidates"][texts.index(choice.message.content)]
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
            'multiple of strategy.beam_width.*fix: "n": 4 in the request',
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
        ask(client, PROBLEMS[0].question, strategy="beam", n=6)
    message = str(raised.value)
    assert 'fix: "n": 4 in the request body' in message and "strategy.n" not in message


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
    response = httpx.post(server[0] + "/v1/completions", content=b"{not json")
    assert response.status_code == 400 and "error" in response.json()


def test_models_and_health(client: openai.OpenAI, server: tuple[str, Any]) -> None:
    assert [m.id for m in client.models.list()] == ["prm-search"]
    assert httpx.get(server[0] + "/health").json() == {"status": "ok"}


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
