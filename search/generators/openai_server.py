"""Remote policy: any OpenAI-compatible ``/v1/completions`` endpoint (``vllm serve``, SGLang).

Prompts are rendered and tokenised here by the same ``PromptRenderer`` as the local backends
and sent as token ids (``prompt_format="text"`` sends the rendered text instead, for servers
that do not take ids), so the server sees exactly what a local engine would. One request
per prefix asks for its ``n`` continuations; all requests of a call are in flight together
(at most ``max_concurrency``), with timeouts and retries (``search.remote.client``). The
requests of prefixes a call's ``Sampling.abandoned`` names are not sent, or cancelled in
flight (vLLM's server stops a request whose connection closes); their continuations come
back cut, with no tokens counted.

What the response must carry:

- which stop ended a choice: vLLM's ``stop_reason`` (the stop string, or ``None`` for eos)
  or SGLang's ``matched_stop``; step mode asks for ``stop=["\\n\\n"]`` and
  ``include_stop_str_in_output`` (a server that drops the stop string gets it put back);
- token counts: ``usage.prompt_tokens`` per prompt, and per choice the sampled ids
  (``return_token_ids``, vLLM) whose lengths must sum to ``usage.completion_tokens``; a
  server without per-choice ids is asked one choice per request (``split_n=True``), so that
  ``usage.completion_tokens`` is the choice's own count.

Each prompt carries its own ``seed``, derived from (the generator's seed, the prefix's stream
name; ``search.types.Sampling``), as ``VLLMGenerator`` does; a request split into ``n`` single
choices seeds copy ``j`` with that seed plus ``j``, as vLLM does with its ``n`` outputs.
With ``temperature=0`` the continuations equal the local vLLM backend's on the same
checkpoint (tested).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from search.generators.base import (
    CallSettings,
    GenerationSettings,
    PromptRenderer,
    make_continuation,
    request_seed,
    stream_names,
)
from search.protocols import TokenCounter
from search.remote import ABANDONED, ServerClient, ServerSettings
from search.types import (
    DEFAULT_SAMPLING,
    STEP_SEPARATOR,
    Continuation,
    FinishReason,
    Generation,
    Prefix,
    Sampling,
    Until,
)

log = logging.getLogger(__name__)

PROMPT_FORMATS = ("token_ids", "text")


def finish_reason(choice: dict[str, Any], until: Until) -> FinishReason:
    """Map an OpenAI completion choice to a ``FinishReason``."""
    reason = choice.get("finish_reason")
    if reason == "length":
        return FinishReason.length
    if reason != "stop":
        raise RuntimeError(f"expected finish_reason 'stop' or 'length', got {reason!r}")
    if until is Until.end:
        return FinishReason.eos
    for key in ("stop_reason", "matched_stop"):
        if key in choice:
            return FinishReason.step if choice[key] == STEP_SEPARATOR else FinishReason.eos
    raise RuntimeError(
        "expected the server to say which stop ended a completion (vLLM's stop_reason or "
        f"SGLang's matched_stop), got neither in {sorted(choice)}; a step end and the end "
        "of a solution cannot be told apart without it"
    )


class OpenAIServerGenerator:
    """Generator on an OpenAI-compatible completions server (``search.protocols.Generator``).

    ``model`` is the served model name; ``tokenizer`` (default: ``model``) a local directory
    or hub name of the same tokenizer, used to render prompts exactly as the local backends.
    """

    def __init__(
        self,
        model: str,
        base_url: str,
        tokenizer: str | None = None,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_step_tokens: int = 64,
        max_tokens: int = 512,
        seed: int = 0,
        use_chat_template: bool | None = None,
        system_prompt: str | None = None,
        trust_remote_code: bool = False,
        api_key_env: str | None = None,
        timeout_s: float = 300.0,
        connect_timeout_s: float = 5.0,
        max_concurrency: int = 64,
        max_retries: int = 4,
        prompt_format: str = "token_ids",
        split_n: bool = False,
    ) -> None:
        from transformers import AutoTokenizer

        from search.resolve import resolve_model_path

        if prompt_format not in PROMPT_FORMATS:
            raise ValueError(
                f"expected policy.prompt_format in {list(PROMPT_FORMATS)}, got "
                f"{prompt_format!r}; fix: policy.prompt_format=token_ids (or text for a server "
                "that takes no token ids)"
            )
        self.settings = GenerationSettings(
            temperature=temperature,
            top_p=top_p,
            max_step_tokens=max_step_tokens,
            max_tokens=max_tokens,
        )
        self.client = ServerClient(
            ServerSettings(
                base_url=base_url,
                api_key_env=api_key_env,
                timeout_s=timeout_s,
                connect_timeout_s=connect_timeout_s,
                max_concurrency=max_concurrency,
                max_retries=max_retries,
            ),
            seed=seed,
        )
        entries = {str(item.get("id")): item for item in self.client.check().get("data", [])}
        served = list(entries)
        if model not in served:
            raise ValueError(
                f"expected {self.client.settings.root} to serve model {model!r}, got {served}; "
                "fix: policy.model=<one of those> (vLLM names a model by its --model argument "
                "unless --served-model-name is given)"
            )
        self.model = model
        # the served context (vLLM's /v1/models reports max_model_len), so that a prompt that
        # does not fit is found before any search, as with a local policy
        limit = entries[model].get("max_model_len")
        self.context_length: int | None = int(limit) if isinstance(limit, int) else None
        path = resolve_model_path(
            tokenizer or model, key="policy.tokenizer" if tokenizer else "policy.model"
        )
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        self.renderer = PromptRenderer(self.tokenizer, use_chat_template, system_prompt)
        self.prompt_format = prompt_format
        self.split_n = split_n
        self.seed = seed
        self.usage = TokenCounter()

    def prompt_length(self, prefix: Prefix) -> int:
        """Tokens of ``prefix``'s prompt as rendered here (``search.protocols.ContextLimited``;
        with ``prompt_format=text`` the server's own count may differ slightly)."""
        return len(self.renderer.encode(prefix))

    def generate(
        self,
        prefixes: Sequence[Prefix],
        n: int,
        until: Until,
        sampling: Sampling = DEFAULT_SAMPLING,
    ) -> list[Generation]:
        if n < 1:
            raise ValueError(f"expected n >= 1, got {n}")
        until = Until(until)
        if not prefixes:
            return []
        settings = self.settings.for_call(sampling, until)
        seeds = [request_seed(self.seed, stream) for stream in stream_names(prefixes, sampling)]
        # one choice per request with split_n, and always at temperature 0: vLLM refuses a
        # greedy request for n > 1 choices (its n copies would be the same continuation)
        per_request = 1 if self.split_n or settings.temperature == 0.0 else n
        bodies = [
            self._body(prefix, per_request, until, settings, seed + copy)
            for prefix, seed in zip(prefixes, seeds, strict=True)
            for copy in range(n // per_request)
        ]
        copies = n // per_request
        abandoned = None
        if sampling.abandoned is not None:
            gone = sampling.abandoned

            def abandoned() -> list[int]:  # the requests of the prefixes nobody wants
                return [p * copies + c for p in gone() for c in range(copies)]

        responses = self.client.post_many("/v1/completions", bodies, abandoned)
        out: list[Generation] = []
        cut = make_continuation("", FinishReason.length, 0, until)
        for index in range(len(prefixes)):
            mine = responses[index * copies : (index + 1) * copies]
            continuations: list[Continuation] = []
            prompt_tokens = 0
            for response in mine:
                if response is ABANDONED:  # not sent, or cancelled in flight
                    continuations.extend([cut] * per_request)
                    continue
                prompt_tokens, part = self._read(response, per_request, until)
                continuations.extend(part)
            out.append(Generation(prompt_tokens=prompt_tokens, continuations=tuple(continuations)))
        self.usage.calls += 1
        self.usage.tokens += sum(g.prompt_tokens for g in out)
        self.usage.new_tokens += sum(g.prompt_tokens for g in out)
        self.usage.generated_tokens += sum(c.num_tokens for g in out for c in g.continuations)
        return out

    def _body(
        self, prefix: Prefix, n: int, until: Until, settings: CallSettings, seed: int
    ) -> dict[str, Any]:
        prompt: str | list[int] = (
            self.renderer.encode(prefix)
            if self.prompt_format == "token_ids"
            else self.renderer.text(prefix)
        )
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "n": n,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "max_tokens": settings.max_tokens,
            "seed": seed,
            "include_stop_str_in_output": True,
            "skip_special_tokens": True,
            "return_token_ids": True,
        }
        if until is Until.step:
            body["stop"] = [STEP_SEPARATOR]
        return body

    def _read(
        self, response: dict[str, Any], n: int, until: Until
    ) -> tuple[int, list[Continuation]]:
        """(prompt tokens, the continuations) of one completions response."""
        root = self.client.settings.root
        choices = sorted(response.get("choices", []), key=lambda choice: choice["index"])
        usage = response.get("usage") or {}
        if len(choices) != n or "prompt_tokens" not in usage:
            raise RuntimeError(
                f"expected {n} choices and usage.prompt_tokens from {root}/v1/completions, got "
                f"{len(choices)} choices and usage {usage}"
            )
        completion_tokens = int(usage.get("completion_tokens", 0))
        counts = [
            len(choice["token_ids"]) if choice.get("token_ids") is not None else None
            for choice in choices
        ]
        if None in counts:
            if n > 1:
                raise RuntimeError(
                    f"expected per-choice token ids (return_token_ids) from {root} to count "
                    "the tokens of each of n > 1 choices, got none; fix: "
                    "policy.split_n=true (one choice per request)"
                )
            counts = [completion_tokens]
        elif sum(c or 0 for c in counts) != completion_tokens:
            raise RuntimeError(
                f"expected the choices' token ids to add up to usage.completion_tokens="
                f"{completion_tokens} from {root}, got {counts}"
            )
        continuations = []
        for choice, count in zip(choices, counts, strict=True):
            reason = finish_reason(choice, until)
            text = str(choice.get("text") or "")
            if reason is FinishReason.step and not text.endswith(STEP_SEPARATOR):
                text += STEP_SEPARATOR  # a server that leaves the stop string out
            assert count is not None
            continuations.append(make_continuation(text, reason, count, until))
        return int(usage["prompt_tokens"]), continuations

    def close(self) -> None:
        self.client.close()
