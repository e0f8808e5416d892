"""PRM formats: text layout, token-id lookup and validation, encoding, context overflow."""

from __future__ import annotations

from typing import ClassVar

import pytest
from tiny_prms import (
    QWEN_STYLE_FORMAT,
    SHEPHERD_STYLE_FORMAT,
    qwen_style_tokenizer,
    shepherd_style_tokenizer,
)

from prm.arith_model import EMBEDDED_PRM_FORMAT
from prm.scoring import (
    OverflowPolicy,
    PrefixEncoder,
    PRMFamily,
    PRMFormat,
    render_text,
    resolve_token_ids,
)
from prm.scoring.encoding import InputTooLong, resolve_max_length
from prm.scoring.format import lookup_single_token
from search.envs.arith.tokenizer import build_tokenizer
from search.inputs import InputError
from search.prompting import DEFAULT_SYSTEM_PROMPT
from search.types import Prefix, Problem

PROBLEM = Problem("p1", "Compute 7 + 5 - 3.", "9")
STEPS = ("7 + 5 = 12", "12 - 3 = 9", "The answer is \\boxed{9}.")


def test_embedded_layout_is_the_policy_layout_with_a_tag_after_each_step() -> None:
    rendered = render_text(EMBEDDED_PRM_FORMAT, None, PROBLEM.question, STEPS[:2])
    assert rendered.text == (
        "Question: Compute 7 + 5 - 3.\nAnswer:\n7 + 5 = 12<step>\n\n12 - 3 = 9<step>\n\n"
    )
    start, end = rendered.question_start, rendered.question_end
    assert rendered.text[start:end] == PROBLEM.question


def test_chat_layout_matches_the_qwen_prm_card() -> None:
    tokenizer = qwen_style_tokenizer()
    rendered = render_text(QWEN_STYLE_FORMAT, tokenizer, PROBLEM.question, STEPS)
    messages = [
        {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
        {"role": "user", "content": PROBLEM.question},
        {"role": "assistant", "content": "<extra_0>".join(STEPS) + "<extra_0>"},
    ]
    card = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    assert rendered.text == card
    assert rendered.text[rendered.question_start : rendered.question_end] == PROBLEM.question


def test_shepherd_layout_matches_its_card_up_to_the_last_tag() -> None:
    rendered = render_text(SHEPHERD_STYLE_FORMAT, None, PROBLEM.question, STEPS)
    card = f"{PROBLEM.question} " + " ки\n".join(STEPS) + " ки"
    assert rendered.text == card + "\n"


def test_token_ids_are_looked_up_and_validated() -> None:
    ids = resolve_token_ids(build_tokenizer(), EMBEDDED_PRM_FORMAT)
    assert ids.step_tag == build_tokenizer().convert_tokens_to_ids("<step>")
    shepherd = resolve_token_ids(shepherd_style_tokenizer(), SHEPHERD_STYLE_FORMAT)
    tokenizer = shepherd_style_tokenizer()
    assert (shepherd.good, shepherd.bad) == tuple(tokenizer.convert_tokens_to_ids(["+", "-"]))
    assert shepherd.step_tag == tokenizer.convert_tokens_to_ids("ки")


def test_a_tag_that_is_several_tokens_or_missing_fails_at_load() -> None:
    multi = PRMFormat(family=PRMFamily.token_classification, step_tag="ки")
    with pytest.raises(ValueError, match="exactly one token.*fix"):
        resolve_token_ids(build_tokenizer(), multi)  # 4 byte tokens
    missing = PRMFormat(family=PRMFamily.token_classification, step_tag="<extra_0>")
    with pytest.raises(ValueError, match="'<extra_0>' to be exactly one token"):
        resolve_token_ids(build_tokenizer(), missing)
    label = PRMFormat(family=PRMFamily.label_token, step_tag="ки", good_token="good", bad_token="-")
    with pytest.raises(ValueError, match="good label token 'good'"):
        resolve_token_ids(shepherd_style_tokenizer(), label)


def test_chat_template_required_when_asked_for() -> None:
    with pytest.raises(ValueError, match="chat template.*use_chat_template=false"):
        fmt = PRMFormat(
            family=PRMFamily.token_classification, step_tag="<step>", use_chat_template=True
        )
        resolve_token_ids(build_tokenizer(), fmt)


class _SentencePieceLike:
    """``encode`` puts a bare word-boundary piece first, as Llama/Mistral tokenizers do."""

    unk_token_id = 0
    pieces: ClassVar[dict[int, str]] = {
        0: "<unk>",
        5: "\u2581",
        6: "ки",
        7: "\u2581+",
        8: "\u2581x",
        9: "y",
    }

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return {"ки": [5, 6], "+": [7], "xy": [8, 9]}[text]

    def convert_ids_to_tokens(self, ids: int | list[int]) -> str | list[str]:
        return self.pieces[ids] if isinstance(ids, int) else [self.pieces[i] for i in ids]


def test_lookup_skips_a_leading_word_boundary_piece_like_the_shepherd_card() -> None:
    tokenizer = _SentencePieceLike()
    assert lookup_single_token(tokenizer, "ки", "step tag") == 6  # encode("ки")[-1]
    assert lookup_single_token(tokenizer, "+", "good label token") == 7  # encode("+ -")[1]
    with pytest.raises(ValueError, match="got 2 tokens"):
        lookup_single_token(tokenizer, "xy", "step tag")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"family": "regression"}, "expected family in"),
        ({"step_template": "{tag}{step}"}, "'{step}' then '{tag}'"),
        ({"prompt_template": "Q: {problem}"}, "one '{question}' field"),
        ({"positive_label": 2}, "positive_label 0 or 1"),
        ({"family": "label_token", "good_token": "+"}, "two different label tokens"),
    ],
)
def test_format_rejects_inconsistent_settings(kwargs: dict, message: str) -> None:
    settings = {"family": "token_classification", "step_tag": "<step>", **kwargs}
    with pytest.raises(ValueError, match=message):
        PRMFormat(**settings)


def test_encoding_finds_one_tag_per_step() -> None:
    encoder = PrefixEncoder(build_tokenizer(), EMBEDDED_PRM_FORMAT, max_length=512)
    encoded = encoder.encode_one(Prefix(PROBLEM, STEPS))
    assert len(encoded.tag_positions) == len(STEPS)
    tag = encoder.token_ids.step_tag
    assert [encoded.token_ids[p] for p in encoded.tag_positions] == [tag] * 3
    text = build_tokenizer().decode(list(encoded.token_ids[: encoded.tag_positions[0]]))
    assert text.endswith("7 + 5 = 12")


def test_a_tag_inside_a_step_or_the_question_is_refused() -> None:
    encoder = PrefixEncoder(build_tokenizer(), EMBEDDED_PRM_FORMAT, max_length=512)
    with pytest.raises(ValueError, match="without the step tag '<step>'.*step 1"):
        encoder.encode_one(Prefix(PROBLEM, ("7 + 5 = 12", "12 <step> - 3")))
    tagged = Problem("p2", "What is <step> 1 + 1?", "2")
    with pytest.raises(ValueError, match="got 2 tags for 1 steps"):
        encoder.encode_one(Prefix(tagged, ("1 + 1 = 2",)))


def test_overflow_error_names_the_fix() -> None:
    full = PrefixEncoder(build_tokenizer(), EMBEDDED_PRM_FORMAT, 512).encode_one(
        Prefix(PROBLEM, STEPS)
    )
    encoder = PrefixEncoder(
        build_tokenizer(), EMBEDDED_PRM_FORMAT, len(full.token_ids) - 5, OverflowPolicy.error
    )
    with pytest.raises(
        InputTooLong, match=r"at most max_length=\d+ tokens.*truncate_question"
    ) as e:
        encoder.encode_one(Prefix(PROBLEM, STEPS))
    assert (e.value.problem_id, e.value.num_tokens) == ("p1", len(full.token_ids))
    assert e.value.max_length == len(full.token_ids) - 5 and not e.value.question_dropped


@pytest.mark.parametrize("make_format", ["embedded", "qwen"])
def test_truncate_question_drops_question_tokens_from_the_left(make_format: str) -> None:
    tokenizer = build_tokenizer() if make_format == "embedded" else qwen_style_tokenizer()
    fmt = EMBEDDED_PRM_FORMAT if make_format == "embedded" else QWEN_STYLE_FORMAT
    prefix = Prefix(PROBLEM, STEPS)
    full = PrefixEncoder(tokenizer, fmt, 4096).encode_one(prefix)
    limit = len(full.token_ids) - 7
    short = PrefixEncoder(tokenizer, fmt, limit, "truncate_question").encode_one(prefix)
    assert len(short.token_ids) == limit and short.truncated_tokens == 7
    question_ids = tokenizer.encode(PROBLEM.question, add_special_tokens=False)
    start = next(
        i
        for i in range(len(full.token_ids))
        if list(full.token_ids[i : i + len(question_ids)]) == question_ids
    )
    expected = full.token_ids[:start] + full.token_ids[start + 7 :]
    assert short.token_ids == expected  # the first 7 question tokens are gone, nothing else
    assert [p - q for p, q in zip(full.tag_positions, short.tag_positions, strict=True)] == [7] * 3


def test_truncation_refuses_when_the_steps_alone_do_not_fit() -> None:
    encoder = PrefixEncoder(build_tokenizer(), EMBEDDED_PRM_FORMAT, 20, "truncate_question")
    with pytest.raises(InputTooLong, match="once the question is dropped.*problem 'p1'") as e:
        encoder.encode_one(Prefix(PROBLEM, STEPS))
    assert e.value.max_length == 20 and e.value.num_tokens > 20 and e.value.question_dropped
    assert isinstance(e.value, InputError)  # an entry point prints it as one line


class _Config:
    def __init__(self, max_position_embeddings: int | None) -> None:
        self.max_position_embeddings = max_position_embeddings


def test_max_length_defaults_to_the_models_context_and_may_not_exceed_it() -> None:
    tokenizer = build_tokenizer()
    assert resolve_max_length(None, _Config(256), tokenizer) == 256
    assert resolve_max_length(None, _Config(None), tokenizer) == tokenizer.model_max_length
    assert resolve_max_length(128, _Config(256), tokenizer) == 128
    assert resolve_max_length(4096, _Config(None), tokenizer) == 4096  # no context to check
    with pytest.raises(InputError) as raised:
        resolve_max_length(4096, _Config(256), tokenizer)
    assert str(raised.value) == (
        "expected scorer.max_length <= the model's context (max_position_embeddings=256), got "
        "max_length=4096; fix: scorer.max_length=256 or null (the model's context); inputs "
        "longer than that need a PRM with a longer context"
    )


def test_bos_is_prepended_when_the_format_asks() -> None:
    tokenizer = shepherd_style_tokenizer()
    tokenizer.bos_token = "<|endoftext|>"
    fmt = PRMFormat(
        family=PRMFamily.label_token,
        step_tag="ки",
        good_token="+",
        bad_token="-",
        prompt_template="{question} ",
        step_template="{step} {tag}\n",
        add_bos_token=True,
    )
    encoded = PrefixEncoder(tokenizer, fmt, 512).encode_one(Prefix(PROBLEM, STEPS[:1]))
    assert encoded.token_ids[0] == tokenizer.bos_token_id
    plain = PrefixEncoder(tokenizer, SHEPHERD_STYLE_FORMAT, 512).encode_one(
        Prefix(PROBLEM, STEPS[:1])
    )
    assert encoded.token_ids[1:] == plain.token_ids


def test_label_tokens_on_a_token_classification_format_are_refused() -> None:
    """good_token/bad_token are read only by label_token PRMs: set on a token-classification
    format they would be silently ignored."""
    with pytest.raises(ValueError, match=r"expected no good_token/bad_token.*fix: family=label"):
        PRMFormat(family="token_classification", step_tag="<step>", good_token="+")
