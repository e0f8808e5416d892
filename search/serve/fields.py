"""OpenAI request fields that the search server does not apply.

The server searches with its own policy settings (``policy.temperature`` and so on) and
returns one choice per question, so a request field that would change sampling or the shape
of the reply cannot be honoured. Rather than ignore it silently, ``check_unapplied`` refuses
(a ``RequestError``, a 400) any such field set to a value other than what the server does
anyway:

- ``POLICY_FIELDS`` (``temperature``, ``top_p``, ``max_tokens``, ``max_completion_tokens``):
  accepted only equal to the policy's own setting (never when the backend does not expose
  its settings); the fix names the command-line setting that decides it;
- ``NEUTRAL``: accepted at the neutral values listed (what the field means when absent);
- ``INFORMATIONAL`` (``user``): accepted with any value, as it changes nothing;
- any other field: refused, naming it (a misspelt ``"strategy"`` is not searched as if heard).

A field sent as ``null`` counts as absent. The ``openai`` client sends only the fields its
caller passes, so a plain ``chat.completions.create(model=..., messages=...)`` passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from search.generators.base import GenerationSettings
from search.serve.service import RequestError

# request field -> the policy setting that decides it (GenerationSettings attribute)
POLICY_FIELDS: dict[str, str] = {
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
}

# request field -> the values that change nothing here (the field's meaning when absent)
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "presence_penalty": (0,),
    "frequency_penalty": (0,),
    "logprobs": (False,),
    "top_logprobs": (0,),
    "echo": (False,),
    "best_of": (1,),
    "stop": ([],),
    "logit_bias": ({},),
    "tools": ([],),
    "functions": ([],),
    "tool_choice": ("none",),
    "function_call": ("none",),
    "response_format": ({"type": "text"},),
    "stream_options": ({},),
    "suffix": ("",),
    "store": (False,),
    "metadata": ({},),
}

INFORMATIONAL = frozenset({"user"})


def _same(value: Any, neutral: Any) -> bool:
    if isinstance(neutral, bool) or isinstance(value, bool):
        return type(value) is type(neutral) and value == neutral
    return bool(value == neutral)


def check_unapplied(
    extra: Mapping[str, Any], policy: GenerationSettings | None, applied: tuple[str, ...]
) -> None:
    """Refuse the first field of ``extra`` (the request's fields the server does not read)
    that would change what the server does; ``applied`` are the fields the endpoint reads
    (its request model's), named in the message of an unknown field."""
    for name, value in extra.items():
        if value is None or name in INFORMATIONAL:
            continue
        if name in POLICY_FIELDS:
            setting = POLICY_FIELDS[name]
            used = None if policy is None else getattr(policy, setting)
            if used is not None and not isinstance(value, bool) and value == used:
                continue
            decided = (
                f"policy.{setting}={used}" if used is not None else f"policy.{setting}, if any"
            )
            raise RequestError(
                f'expected no "{name}" in the request (the server\'s policy settings decide '
                f'it: {decided}), got {value!r}; fix: drop "{name}" from the request, or '
                f"start the server with policy.{setting}={value!r}"
            )
        if name in NEUTRAL:
            neutral = NEUTRAL[name]
            if any(_same(value, n) for n in neutral):
                continue
            shown = " or ".join(repr(n) for n in neutral)
            raise RequestError(
                f'expected "{name}" unset or {shown} (the server does not apply it: it '
                f"searches with its own settings and returns one choice per question), got "
                f'{value!r}; fix: drop "{name}" from the request'
            )
        known = ", ".join(f'"{f}"' for f in (*applied, *sorted(INFORMATIONAL)))
        raise RequestError(
            f'expected only fields the server applies ({known}), got "{name}"; fix: drop '
            f'"{name}" from the request (or correct its spelling)'
        )
