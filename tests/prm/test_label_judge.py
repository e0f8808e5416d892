from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest
from remote.fake_server import free_port, scripted_server

from prm.label.judge import (
    Critique,
    GeneratorCritic,
    JudgeLabeller,
    OpenAICritic,
    UnparsableVerdict,
    parse_verdict,
    render_judge_prompt,
)
from prm.sample import SampledSolution
from search.remote import ServerUnavailable
from search.types import (
    DEFAULT_SAMPLING,
    Continuation,
    FinishReason,
    Generation,
    Prefix,
    Problem,
    Sampling,
    Until,
    split_steps,
)

PROBLEM = Problem(id="p0", question="Compute 4 + 3 - 2.", answer="5")
STEPS = ("4 + 3 = 7", "7 - 2 = 6", "The answer is \\boxed{6}.")


def test_prompt_numbers_the_paragraphs_and_asks_for_a_boxed_index() -> None:
    prompt = render_judge_prompt(PROBLEM.question, STEPS)
    assert PROBLEM.question in prompt
    for index, step in enumerate(STEPS):
        assert f"<paragraph_{index}>\n{step}\n</paragraph_{index}>" in prompt
    assert prompt.index("<paragraph_0>") < prompt.index("<paragraph_1>")
    assert "\\boxed{-1}" in prompt and "stop" in prompt


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Paragraph 0 is right. Paragraph 1: 7 - 2 is 5, not 6. \\boxed{1}", 1),
        ("All paragraphs are correct.\n\n\\boxed{-1}", None),
        ("It quotes \\boxed{6} from paragraph 2, which is wrong. Verdict: \\boxed{2}", 2),
        ("Verdict: $\\boxed{ 0 }$", 0),
    ],
)
def test_parse_well_formed_verdicts(text: str, expected: int | None) -> None:
    assert parse_verdict(text, num_steps=3) == expected


@pytest.mark.parametrize(
    ("text", "truncated", "reason"),
    [
        ("Paragraph 0 is correct. Paragraph 1 computes", True, "truncated"),
        ("\\boxed{1}", True, "truncated"),  # a cut-off critique is never trusted
        ("I think the first error is in paragraph 1.", False, "no_verdict"),
        ("The first error is \\boxed{1", False, "no_verdict"),
        ("\\boxed{paragraph one}", False, "not_an_index"),
        ("\\boxed{3}", False, "out_of_range"),
        ("\\boxed{-2}", False, "out_of_range"),
    ],
)
def test_parse_malformed_and_truncated(text: str, truncated: bool, reason: str) -> None:
    with pytest.raises(UnparsableVerdict) as error:
        parse_verdict(text, num_steps=3, truncated=truncated)
    assert error.value.reason == reason


class ScriptedJudge:
    """Answers each prompt by the question in it: a well-formed verdict, a malformed one,
    or a truncated critique."""

    def __init__(self, script: dict[str, Critique]) -> None:
        self.script = script
        self.prompts: list[str] = []

    def critique(self, prompts: Sequence[str]) -> list[Critique]:
        self.prompts += prompts
        out = []
        for prompt in prompts:
            question = re.search(r"Problem:\n(.*)\n", prompt)
            assert question is not None
            out.append(self.script[question.group(1)])
        return out


def make(question: str, index: int = 0, steps: tuple[str, ...] = STEPS) -> SampledSolution:
    problem = Problem(id=question, question=question, answer="5")
    return SampledSolution(problem, index, steps, True, 10)


def test_judge_labeller_counts_no_label_and_never_guesses() -> None:
    judge = ScriptedJudge(
        {
            "q-wrong": Critique("... \\boxed{1}", False, 5),
            "q-right": Critique("all fine \\boxed{-1}", False, 4),
            "q-malformed": Critique("the error is in paragraph 1", False, 6),
            "q-cut": Critique("Paragraph 0 is", True, 8),
        }
    )
    labeller = JudgeLabeller(judge)
    solutions = [
        make("q-wrong"),
        make("q-right"),
        make("q-malformed"),
        make("q-cut"),
        make("q-empty", steps=()),
    ]
    wrong, right, malformed, cut, empty = labeller.label(solutions)
    assert wrong.first_error == 1 and wrong.labels == (True, False, False)
    assert wrong.soft_labels == (1.0, 0.0, 0.0)
    assert right.first_error == -1 and right.labels == (True, True, True)
    assert malformed.first_error is None and malformed.reason == "no_verdict"
    assert cut.first_error is None and cut.reason == "truncated"
    assert empty.first_error is None and empty.reason == "empty solution"
    assert len(judge.prompts) == 4  # the empty solution is not sent
    usage = labeller.usage()
    assert usage["critiques"] == 4 and usage["critique_tokens"] == 23
    assert usage["no_label"] == {"no_verdict": 1, "truncated": 1}


class EchoJudgeGenerator:
    """A Generator used as a judge: answers \\boxed{1}, cut off for one prompt."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Prefix], int, Until]] = []

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        self.calls.append((list(prefixes), n, until))
        out = []
        for prefix in prefixes:
            cut = "q-cut" in prefix.problem.question
            text = "Paragraph 0 is" if cut else "Paragraph 1 is wrong.\n\n\\boxed{1}"
            reason = FinishReason.length if cut else FinishReason.eos
            out.append(Generation(5, (Continuation(text, split_steps(text), reason, 7),)))
        return out


def test_generator_critic_renders_the_prompt_as_the_question() -> None:
    generator = EchoJudgeGenerator()
    labeller = JudgeLabeller(GeneratorCritic(generator))
    ok, cut = labeller.label([make("q-ok"), make("q-cut")])
    ((prefixes, n, until),) = generator.calls
    assert n == 1 and until is Until.end
    assert prefixes[0].steps == () and prefixes[0].problem.question == render_judge_prompt(
        "q-ok", STEPS
    )
    assert ok.first_error == 1
    assert cut.first_error is None and cut.reason == "truncated"


def _chat_server(method: str, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
    """An OpenAI-compatible chat endpoint: a prompt holding "q-cut" is cut at max_tokens."""
    if method == "GET":
        return 200, {}, {"object": "list", "data": [{"id": "judge-72b"}]}
    cut = "q-cut" in body["messages"][0]["content"]
    choice = {
        "message": {"role": "assistant", "content": "hmm" if cut else "\\boxed{-1}"},
        "finish_reason": "length" if cut else "stop",
    }
    return 200, {}, {"choices": [choice], "usage": {"completion_tokens": 11}}


def test_openai_critic_maps_requests_and_finish_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_KEY", "secret")
    with scripted_server(_chat_server) as (url, seen):
        critic = OpenAICritic(
            model="judge-72b",
            base_url=url + "/v1",  # a trailing /v1 is accepted
            api_key_env="JUDGE_KEY",
            temperature=0.0,
            max_tokens=123,
            max_concurrency=4,
        )
        prompts = ["q-ok", "q-cut", "q-ok-2"]
        critiques = critic.critique(prompts)
        critic.client.close()
    assert [c.truncated for c in critiques] == [False, True, False]
    assert critiques[0].text == "\\boxed{-1}" and critiques[0].num_tokens == 11
    posts = [(path, body, headers) for method, path, body, headers in seen if method == "POST"]
    assert {path for path, _, _ in posts} == {"/v1/chat/completions"}
    assert sorted(body["messages"][0]["content"] for _, body, _ in posts) == sorted(prompts)
    _, request, headers = posts[0]
    assert request["model"] == "judge-72b" and request["max_tokens"] == 123
    assert request["messages"][0]["role"] == "user" and request["temperature"] == 0.0
    assert headers["authorization"] == "Bearer secret"


def test_a_judge_that_is_not_there_is_one_error_naming_its_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerUnavailable, match=url.replace(".", r"\.")):
        OpenAICritic(model="m", base_url=url, connect_timeout_s=1.0)
