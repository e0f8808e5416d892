"""How a PRM family reads a solution: the text layout and the tokens it scores at.

A PRM is data, not a class per model name. Two families cover the public PRMs:

- ``token_classification``: a 2-label token-classification head; a step's score is the
  softmax probability of the positive label at that step's tag token. Qwen2.5-Math-PRM-7B /
  -72B (tag ``<extra_0>``, arXiv 2501.07301) and the embedded arithmetic PRM (tag ``<step>``).
- ``label_token``: a causal LM; a step's score is ``p(good) / (p(good) + p(bad))`` of the
  next token predicted at the tag, i.e. a softmax over the two label logits. Math-Shepherd
  (arXiv 2312.08935, tag ``ки``, labels ``+`` / ``-``).

Text layout (``render_text``): every step becomes ``step_template.format(step=..., tag=...)``
and the steps are concatenated.

- With ``use_chat_template``: messages ``[system?, user=question, assistant=steps]`` rendered by
  the tokenizer's chat template with ``add_generation_prompt=False`` (Qwen2.5-Math-PRM's card:
  the assistant content is ``"<extra_0>".join(steps) + "<extra_0>"``, i.e. ``"{step}{tag}"``).
- Without: ``prompt_template.format(question=...)`` followed by the steps. The embedded PRM
  keeps the policy's layout (``search.prompting.PLAIN_TEMPLATE`` and ``"{step}{tag}\\n\\n"``),
  so its input for a prefix is a token prefix of the input for any extension of it.

Token ids are looked up from the tokenizer and validated once, at load (``resolve_token_ids``).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from search.prompting import DEFAULT_SYSTEM_PROMPT, PLAIN_TEMPLATE


class PRMFamily(str, Enum):
    """How a step's score is read off the model's output at the step tag."""

    token_classification = "token_classification"
    label_token = "label_token"

    def wrong_checkpoint_fix(self) -> str:
        """The fix for a checkpoint that is not of this family (it has the other's head)."""
        other = next(family for family in PRMFamily if family is not self)
        return (
            f"family={other.value} if this checkpoint is of that kind, or a PRM checkpoint "
            f"trained for family={self.value}"
        )


def _fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


@dataclass(frozen=True, slots=True)
class PRMFormat:
    """The input layout and output reading of one PRM (see the module docstring).

    ``positive_label``: for ``token_classification``, the index of the "step is right" label
    (Qwen2.5-Math-PRM and the embedded PRM: 1). ``good_token`` / ``bad_token``: for
    ``label_token``, the two label tokens. ``add_bos_token``: prepend the tokenizer's bos
    token (Mistral-based models, whose ``tokenizer.encode`` adds it by default).
    """

    family: PRMFamily
    step_tag: str
    use_chat_template: bool = False
    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT
    prompt_template: str = PLAIN_TEMPLATE
    step_template: str = "{step}{tag}\n\n"
    positive_label: int = 1
    good_token: str | None = None
    bad_token: str | None = None
    add_bos_token: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.family, PRMFamily):
            try:
                object.__setattr__(self, "family", PRMFamily(self.family))
            except ValueError:
                choices = ", ".join(member.value for member in PRMFamily)
                raise ValueError(
                    f"expected family in {{{choices}}}, got {self.family!r}; fix: "
                    "family=token_classification"
                ) from None
        if not self.step_tag:
            raise ValueError("expected a non-empty step_tag, got ''; fix: e.g. step_tag='<step>'")
        fields = _fields(self.step_template)
        if sorted(fields) != ["step", "tag"] or fields.index("step") > fields.index("tag"):
            raise ValueError(
                f"expected step_template with '{{step}}' then '{{tag}}', once each, got "
                f"{self.step_template!r}; fix: e.g. '{{step}}{{tag}}\\n\\n'"
            )
        if not self.use_chat_template and _fields(self.prompt_template) != ["question"]:
            raise ValueError(
                f"expected prompt_template with one '{{question}}' field, got "
                f"{self.prompt_template!r}; fix: e.g. 'Question: {{question}}\\nAnswer:\\n'"
            )
        if self.family is PRMFamily.token_classification:
            if self.positive_label not in (0, 1):
                raise ValueError(
                    "expected positive_label 0 or 1 for a 2-label head, got "
                    f"{self.positive_label!r}; fix: scorer.positive_label=1 (the index of the "
                    "label that means the step is right)"
                )
            if self.good_token is not None or self.bad_token is not None:
                raise ValueError(
                    "expected no good_token/bad_token for family token_classification (they "
                    f"are label_token's), got good_token={self.good_token!r}, "
                    f"bad_token={self.bad_token!r}; fix: family=label_token to read label "
                    "tokens, or drop good_token and bad_token"
                )
        elif not self.good_token or not self.bad_token or self.good_token == self.bad_token:
            raise ValueError(
                f"expected two different label tokens for family label_token, got "
                f"good_token={self.good_token!r}, bad_token={self.bad_token!r}; "
                "fix: set both (Math-Shepherd: '+' and '-')"
            )

    def render_step(self, step: str) -> str:
        return self.step_template.format(step=step, tag=self.step_tag)


@dataclass(frozen=True, slots=True)
class TokenIds:
    """The token ids a format needs, looked up in one tokenizer."""

    step_tag: int
    good: int | None = None  # label_token only
    bad: int | None = None
    bos: int | None = None  # only when the format adds it


def lookup_single_token(tokenizer: Any, text: str, role: str) -> int:
    """The id of ``text`` encoded on its own, which must be exactly one token.

    A SentencePiece tokenizer may put a bare word-boundary token (``▁``) first; it is skipped,
    as Math-Shepherd's card does (``tokenizer.encode("ки")[-1]``, ``encode("+ -")[1:]``).
    """
    ids = list(tokenizer.encode(text, add_special_tokens=False))
    if len(ids) == 2 and tokenizer.convert_ids_to_tokens(ids[0]) == "\u2581":
        ids = ids[1:]
    unk = getattr(tokenizer, "unk_token_id", None)
    if len(ids) != 1 or (unk is not None and ids[0] == unk):
        pieces = tokenizer.convert_ids_to_tokens(ids)
        raise ValueError(
            f"expected the {role} {text!r} to be exactly one token of the PRM's tokenizer, "
            f"got {len(ids)} tokens {pieces} (ids {ids}); fix: use the tag/label the model "
            "was trained with (scorer.step_tag, scorer.good_token, scorer.bad_token), or add "
            "it to the tokenizer as a special token "
            "(tokenizer.add_special_tokens) and resize the model's embeddings"
        )
    return int(ids[0])


def resolve_token_ids(tokenizer: Any, fmt: PRMFormat) -> TokenIds:
    """Look up and validate the tag (and label) token ids of ``fmt`` in ``tokenizer``."""
    step_tag = lookup_single_token(tokenizer, fmt.step_tag, "step tag")
    good = bad = bos = None
    if fmt.family is PRMFamily.label_token:
        assert fmt.good_token is not None and fmt.bad_token is not None
        good = lookup_single_token(tokenizer, fmt.good_token, "good label token")
        bad = lookup_single_token(tokenizer, fmt.bad_token, "bad label token")
        if step_tag in (good, bad):
            raise ValueError(
                f"expected the step tag {fmt.step_tag!r} to differ from the label tokens, "
                f"got the same token id {step_tag}; fix: scorer.step_tag=<a token the labels "
                "do not use>"
            )
    if fmt.add_bos_token:
        bos = getattr(tokenizer, "bos_token_id", None)
        if bos is None:
            raise ValueError(
                "expected a tokenizer with a bos token because scorer.add_bos_token is true, "
                "got none; fix: scorer.add_bos_token=false"
            )
    if fmt.use_chat_template and not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "expected a tokenizer with a chat template because scorer.use_chat_template is "
            "true, got none; fix: scorer.use_chat_template=false and a scorer.prompt_template"
        )
    return TokenIds(step_tag=step_tag, good=good, bad=bad, bos=bos)


@dataclass(frozen=True, slots=True)
class RenderedText:
    """A PRM input as text, and where the question sits in it (``-1`` when not found)."""

    text: str
    question_start: int
    question_end: int


def render_text(
    fmt: PRMFormat, tokenizer: Any, question: str, steps: Sequence[str]
) -> RenderedText:
    """The PRM's input text for ``steps`` of ``question`` (layout: module docstring)."""
    for index, step in enumerate(steps):
        if fmt.step_tag in step:
            raise ValueError(
                f"expected steps without the step tag {fmt.step_tag!r}, got it inside step "
                f"{index}: {step[:80]!r}; fix: remove it from the policy's output (one tag is "
                "placed after every step, and a stray one would shift every score)"
            )
    body = "".join(fmt.render_step(step) for step in steps)
    if fmt.use_chat_template:
        messages = []
        if fmt.system_prompt:
            messages.append({"role": "system", "content": fmt.system_prompt})
        messages.append({"role": "user", "content": question})
        messages.append({"role": "assistant", "content": body})
        text = str(
            tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        )
        start = text.find(question) if question else -1
    else:
        head = fmt.prompt_template.split("{question}")[0].format()
        text = fmt.prompt_template.format(question=question) + body
        start = len(head)
    end = start + len(question) if start >= 0 else -1
    return RenderedText(text=text, question_start=start, question_end=end)
