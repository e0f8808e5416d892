"""The vLLM-server backend of the step-tag PRM scorer: ``POST /pooling`` with
``task: token_classify`` on a running vLLM OpenAI-compatible server.

Inputs are rendered and tokenised here by the same ``PrefixEncoder`` as the local backends
and sent as token ids (``add_special_tokens: false``), with activation off: the server
returns one row of logits per input token and the softmax is the shared one of
``prm.scoring.base``, so the scores equal the local backends' (tested to 1e-4 in float32).
Token accounting is the same as local (``StepTagScorer``): the server computes what this
scorer sends.

Start the server with the pooling runner (the embedded PRM; a hub PRM works the same)::

    python -m vllm.entrypoints.openai.api_server --model checkpoints/arith-prm \\
        --runner pooling --dtype float32 --port 8001       # (`vllm serve` on a GPU machine)
    python -m search scorer.backend=vllm_server scorer.base_url=http://127.0.0.1:8001

A ``label_token`` PRM (Math-Shepherd) is served as a 2-label classifier made from its good
and bad label tokens: add ``--convert classify --hf-overrides
'{"classifier_from_token": ["+", "-"], "method": "no_post_processing"}'``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prm.scoring.base import StepTagScorer
from prm.scoring.encoding import (
    EncodedPrefix,
    OverflowPolicy,
    PrefixEncoder,
    check_max_length,
)
from prm.scoring.format import PRMFamily, PRMFormat
from search.remote import ServerClient, ServerSettings
from search.resolve import resolve_model_path

log = logging.getLogger(__name__)


def served_model(client: ServerClient, wanted: str | None) -> tuple[str, int | None]:
    """(model name to send, the server's ``max_model_len`` or ``None``) from ``/v1/models``.

    ``wanted=None`` takes the server's only model; a name the server does not serve is an
    error listing the ones it does."""
    listing = client.check()
    models = [item for item in listing.get("data", []) if isinstance(item, dict)]
    names = [str(item.get("id")) for item in models]
    if wanted is None:
        if len(models) != 1:
            raise ValueError(
                f"expected {client.settings.root} to serve one model when none is named, got "
                f"{names}; fix: set the served model name (scorer.server.served_model_name=NAME)"
            )
        chosen = models[0]
    else:
        matches = [item for item in models if item.get("id") == wanted]
        if not matches:
            raise ValueError(
                f"expected {client.settings.root} to serve model {wanted!r}, got {names}; "
                "fix: name one of those (or start the server with --served-model-name)"
            )
        chosen = matches[0]
    limit = chosen.get("max_model_len")
    return str(chosen["id"]), int(limit) if isinstance(limit, int) else None


class VLLMServerScorer(StepTagScorer):
    """A step-tag PRM behind a vLLM server's ``/pooling`` endpoint
    (``search.protocols.Scorer``). ``VLLMServerScorer.load`` connects to one."""

    def __init__(
        self,
        client: ServerClient,
        tokenizer: Any,
        fmt: PRMFormat,
        *,
        model: str,
        max_length: int,
        on_overflow: OverflowPolicy | str = OverflowPolicy.error,
        batch_size: int = 16,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"expected batch_size >= 1, got {batch_size}")
        super().__init__(PrefixEncoder(tokenizer, fmt, max_length, on_overflow))
        self.client = client
        self.model = model
        self.batch_size = batch_size
        if fmt.family is PRMFamily.token_classification:
            self._columns = [fmt.positive_label, 1 - fmt.positive_label]
        else:
            self._columns = [0, 1]  # classifier_from_token = [good, bad]

    @classmethod
    def load(
        cls,
        model: str | Path,
        fmt: PRMFormat,
        *,
        base_url: str,
        served_model_name: str | None = None,
        tokenizer: str | Path | None = None,
        trust_remote_code: bool = False,
        max_length: int | None = None,
        on_overflow: OverflowPolicy | str = OverflowPolicy.error,
        batch_size: int = 16,
        api_key_env: str | None = None,
        timeout_s: float = 300.0,
        connect_timeout_s: float = 5.0,
        max_concurrency: int = 16,
        max_retries: int = 4,
    ) -> VLLMServerScorer:
        """Connect to the server at ``base_url`` (checked at once: a server that is down is
        one error naming its URL) and load the tokenizer of ``model`` (or ``tokenizer``)
        locally. ``max_length=None``: the server's ``max_model_len``."""
        import transformers

        settings = ServerSettings(
            base_url=base_url,
            api_key_env=api_key_env,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            max_concurrency=max_concurrency,
            max_retries=max_retries,
        )
        client = ServerClient(settings)
        name, server_limit = served_model(client, served_model_name)
        tokenizer_path = resolve_model_path(
            tokenizer if tokenizer is not None else model,
            key="scorer.tokenizer" if tokenizer is not None else "scorer.model",
        )
        hf_tokenizer = transformers.AutoTokenizer.from_pretrained(
            tokenizer_path, trust_remote_code=trust_remote_code
        )
        if max_length is not None:
            limit = check_max_length(max_length, server_limit, "the server's max_model_len")
        elif server_limit is None:
            raise ValueError(
                f"expected {settings.root}/v1/models to report max_model_len, got none; "
                "fix: set scorer.max_length"
            )
        else:
            limit = server_limit
        return cls(
            client,
            hf_tokenizer,
            fmt,
            model=name,
            max_length=limit,
            on_overflow=on_overflow,
            batch_size=batch_size,
        )

    def close(self) -> None:
        self.client.close()

    def _tag_logits(self, encoded: Sequence[EncodedPrefix]) -> list[np.ndarray]:
        chunks = [
            encoded[start : start + self.batch_size]
            for start in range(0, len(encoded), self.batch_size)
        ]
        bodies = [
            {
                "model": self.model,
                "task": "token_classify",
                "input": [list(item.token_ids) for item in chunk],
                "add_special_tokens": False,
                "use_activation": False,
            }
            for chunk in chunks
        ]
        responses = self.client.post_many("/pooling", bodies)
        result: list[np.ndarray] = []
        for chunk, response in zip(chunks, responses, strict=True):
            data = sorted(response.get("data", []), key=lambda item: item["index"])
            if len(data) != len(chunk):
                raise RuntimeError(
                    f"expected {len(chunk)} outputs from {self.client.settings.root}/pooling, "
                    f"got {len(data)}"
                )
            for item, output in zip(chunk, data, strict=True):
                rows = np.asarray(output["data"], dtype=np.float64)
                if rows.ndim != 2 or rows.shape[0] != len(item.token_ids) or rows.shape[1] < 2:
                    raise ValueError(
                        f"expected token_classify output of shape ({len(item.token_ids)}, 2) "
                        f"from {self.client.settings.root}/pooling, got {rows.shape}; fix: "
                        "serve a PRM with a 2-label token-classification head (--runner "
                        "pooling), without prefix-cache reads for token_classify"
                    )
                result.append(rows[list(item.tag_positions)][:, self._columns])
        return result
