"""How a prefix becomes the policy's input text. Generators own this; strategies never do.

With a chat template (real instruct models such as Qwen2.5-Math-1.5B-Instruct) the prompt is
system + user rendered by the template, and the assistant turn is continued with the steps so
far. Without one (the embedded tiny policy) the plain template below is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from search.types import STEP_SEPARATOR

PLAIN_TEMPLATE = "Question: {question}\nAnswer:\n"
DEFAULT_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."


def join_steps(steps: Sequence[str]) -> str:
    """The text of the steps so far, each followed by the separator so the next step starts."""
    return "".join(step + STEP_SEPARATOR for step in steps)


def render_prompt(
    question: str,
    steps: Sequence[str],
    tokenizer: Any | None = None,
    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
    use_chat_template: bool | None = None,
) -> str:
    """Prompt text for continuing ``steps``.

    ``use_chat_template=None`` uses the tokenizer's chat template when it has one.
    """
    has_template = tokenizer is not None and getattr(tokenizer, "chat_template", None)
    if use_chat_template is None:
        use_chat_template = bool(has_template)
    if use_chat_template:
        if not has_template:
            raise ValueError(
                "expected a tokenizer with a chat template (use_chat_template is true), got "
                "none; fix: use_chat_template=false for base models (policy.use_chat_template, "
                "or that of the generator node in use)"
            )
        messages = []
        if system_prompt:
            messages.append({"role": "system", "content": system_prompt})
        messages.append({"role": "user", "content": question})
        head = tokenizer.apply_chat_template(  # type: ignore[union-attr]
            messages, tokenize=False, add_generation_prompt=True
        )
        return str(head) + join_steps(steps)
    return PLAIN_TEMPLATE.format(question=question) + join_steps(steps)


def render_training_text(question: str, steps: Sequence[str]) -> tuple[str, str]:
    """(prompt, solution) for supervised fine-tuning with the plain template; the caller
    appends the eos token to the solution."""
    return PLAIN_TEMPLATE.format(question=question), STEP_SEPARATOR.join(steps)
