"""The OpenAI-compatible HTTP face of ``SearchService`` (FastAPI).

- ``POST /v1/chat/completions``: ``messages`` is one user message, the question;
- ``POST /v1/completions``: ``prompt`` is a question, or a list of questions (one choice each);
- ``GET /v1/models``, ``GET /health``.

A request may override the search in extra body fields: ``n`` (the search budget N, not the
number of choices: the answer is always one choice per question; at most the server's
``max_n``), ``strategy``, ``aggregation`` and ``select``; ``seed`` makes the request
repeatable (``Batcher.new_problem``). Other OpenAI fields are refused unless neutral
(``search.serve.fields``). The choice's text is the selected solution (steps joined by blank
lines) and ``finish_reason`` is that candidate's (``stop``: the policy ended it); the
``search`` field holds the requested budget ``n``, the ``candidates_drawn``, every candidate
with its steps, answer and scores, the selection rule and its pick, the index of the returned
candidate (``selected``) and a ``note`` when that is not an answer's pick (no finished
candidate states an answer: ``SearchService.reply``); ``usage`` has the policy tokens
(``prompt_tokens``, ``completion_tokens``) and the PRM's (``prm_tokens``).

Errors: a malformed request, an invalid override, a question too long for the policy's
context or more questions than ``max_batch_problems`` is 400 (or 404 for an unknown model)
with OpenAI's error body, naming the request's fields (``"n": 4``, not the command line's
``strategy.n=4``); a failure inside the search is 500 for that request only. ``/health`` is
503 when a remote policy or PRM server does not answer. A client that disconnects before its
answer drops its search (``search.serve.service``): its questions leave its batch at the
next generate or score call (the transformers policy stops their samples within the call
running), and a batch left by every client stops there. Stopping the server with a second
Ctrl-C while a batch runs answers its waiting requests 503 (``QuietForcedExit``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from search.aggregation import Aggregation
from search.remote import ServerClient
from search.selection import Select
from search.serve.fields import check_unapplied
from search.serve.service import (
    Batcher,
    ClientGone,
    QuestionTooLong,
    RequestError,
    Resolved,
    SearchService,
    SearchSettings,
    solution_text,
)
from search.strategies.config import StrategyName
from search.types import SearchResult

log = logging.getLogger(__name__)


class SearchFields(BaseModel):
    """The extra body fields that override the configured search; any other field lands in
    ``model_extra`` for ``search.serve.fields.check_unapplied``."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    n: int | None = Field(default=None, ge=1)
    seed: int | None = None
    strategy: StrategyName | None = None
    aggregation: Aggregation | None = None
    select: Select | None = None
    stream: bool = False

    def settings(self) -> SearchSettings:
        return SearchSettings(
            strategy=self.strategy, n=self.n, aggregation=self.aggregation, select=self.select
        )


_FIX = re.compile(r"\bstrategy\.(n|select)=(\w+)( or more)?")
_FIELD = re.compile(r"\bstrategy\.(n|select)(=?)")


def in_request_terms(message: str) -> str:
    """A strategy config's error, written for the command line, in the terms of a request:
    ``fix: strategy.n=4`` becomes ``fix: "n": 4 in the request body`` and ``strategy.n``
    ``"n"`` (likewise ``select``); the server's own settings keep their config names."""

    def fix(match: re.Match[str]) -> str:
        key, value, more = match.group(1), match.group(2), match.group(3) or ""
        shown = value if key == "n" else f'"{value}"'
        return f'"{key}": {shown}{more} in the request body'

    def field(match: re.Match[str]) -> str:
        return f'"{match.group(1)}"' + (": " if match.group(2) else "")

    head, separator, fixes = message.partition("; fix: ")
    return _FIELD.sub(field, head + separator + _FIX.sub(fix, fixes))


class ContentPart(BaseModel):
    type: str
    text: str | None = None


class Message(BaseModel):
    role: str
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            if any(part.type != "text" for part in self.content):
                kinds = sorted({part.type for part in self.content if part.type != "text"})
                raise ValueError(
                    f"expected text content parts only, got {kinds}; fix: send the question "
                    'as a string, or as parts of {"type": "text"}'
                )
            return "".join(part.text or "" for part in self.content)
        return self.content or ""


class ChatRequest(SearchFields):
    messages: list[Message]


class CompletionRequest(SearchFields):
    prompt: str | list[str]


HEALTH_TIMEOUT_S = 5.0  # how long /health waits for a remote backend's GET /v1/models


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": {"message": message, "type": kind, "code": status}}
    )


SHUTTING_DOWN = (
    "the server was stopped before it answered; fix: send the request again to a running server"
)


def _cancelled(message: dict[str, Any]) -> bool:
    """Whether a lifespan failure's traceback ends in the cancellation itself (not in another
    error raised while a cancellation was handled)."""
    lines = [line for line in str(message.get("message", "")).splitlines() if line.strip()]
    return bool(lines) and lines[-1].strip().endswith("CancelledError")


class QuietForcedExit:
    """ASGI middleware for uvicorn's forced exit (a second Ctrl-C while a batch runs), when
    uvicorn cancels every task still running: a request cancelled before it answered gets a
    503 with OpenAI's error body instead of a 500 and a traceback per request in the log, and
    the lifespan's cancellation ends shutdown without one (the batch's thread is left to die
    with the process). A cancellation reaches the app's top only at shutdown: a client that
    leaves is noticed by polling, never by cancelling its handler."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = False

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            if message["type"] == "lifespan.shutdown.failed" and _cancelled(message):
                message = {"type": "lifespan.shutdown.complete"}
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except asyncio.CancelledError:
            if scope["type"] != "http":
                return
            log.info("%s %s: stopped by the server's forced exit", scope.get("method"),
                     scope.get("path"))  # fmt: skip
            if not started:
                try:
                    await _error(503, SHUTTING_DOWN, "server_shutting_down")(scope, receive, send)
                except Exception:  # the connection is already closed: nobody to tell
                    return


def _usage(results: list[SearchResult]) -> dict[str, Any]:
    prompt = sum(r.usage.prompt_tokens for r in results)
    generated = sum(r.usage.generated_tokens for r in results)
    prm = [r.usage.prm_tokens for r in results]
    return {
        "prompt_tokens": prompt,
        "completion_tokens": generated,
        "total_tokens": prompt + generated,
        "prm_tokens": None if None in prm else sum(p or 0 for p in prm),
    }


def build_app(
    service: SearchService,
    model_name: str = "prm-search",
    max_batch_problems: int = 64,
    max_wait_s: float = 0.01,
    disconnect_poll_s: float = 0.5,
) -> FastAPI:
    """The app; ``app.state.batcher`` is the running ``Batcher`` (while the app is up)."""
    batcher = Batcher(
        service,
        max_batch_problems=max_batch_problems,
        max_wait_s=max_wait_s,
        disconnect_poll_s=disconnect_poll_s,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="prm-search", lifespan=lifespan)
    app.add_middleware(QuietForcedExit)
    app.state.batcher = batcher
    created = int(time.time())

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return _error(error.status, str(error), error.kind)

    @app.exception_handler(RequestError)
    async def refused(request: Request, error: RequestError) -> JSONResponse:
        """A request the service refuses, already worded in the request's fields."""
        return _error(400, str(error), "invalid_request_error")

    @app.exception_handler(RequestValidationError)
    async def bad_body(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc'][1:]) or 'body'}: {item['msg']}"
            for item in error.errors()
        )
        return _error(400, f"invalid request: {problems}", "invalid_request_error")

    def describe(result: SearchResult, resolved: Resolved) -> dict[str, Any]:
        reply = service.reply(result)
        return {
            "strategy": resolved.config.name.value,
            "n": resolved.config.n,  # the budget asked for
            "candidates_drawn": len(result.candidates),  # fewer when adaptive stops early
            "aggregation": resolved.aggregation.value,
            "rule": service.rule(resolved),
            "prediction": result.prediction,
            "predictions": result.predictions,
            "selected": reply.index,
            "note": reply.note,
            "candidates": [
                {
                    "text": solution_text(c),
                    "steps": list(c.steps),
                    "answer": c.answer,
                    "finished": c.finished,
                    "num_tokens": c.num_tokens,
                    "step_scores": None if c.step_scores is None else list(c.step_scores),
                    "score": c.score,
                }
                for c in result.candidates
            ],
        }

    async def search(
        request: Request, fields: SearchFields, questions: list[str], where: list[str]
    ) -> tuple[list[SearchResult], Resolved]:
        """Search ``questions``; ``where[i]`` names question i's field in the request. A
        client that disconnects drops its search (``Batcher.submit``); the 499 it is answered
        reaches no one."""
        if fields.stream:
            raise ApiError(400, "expected stream=false, got true; streaming is not supported")
        if fields.model is not None and fields.model != model_name:
            raise ApiError(
                404, f"expected model {model_name!r}, got {fields.model!r}", "not_found_error"
            )
        body_field = where[0].split("[")[0] if where else "prompt"
        applied = tuple(type(fields).model_fields)  # what this endpoint's request model reads
        check_unapplied(fields.model_extra or {}, service.policy_settings, applied)
        if not questions or any(not q.strip() for q in questions):
            raise ApiError(400, "expected a non-empty question, got an empty one")
        if len(questions) > batcher.max_batch_problems:
            raise ApiError(
                400,
                f'expected at most {batcher.max_batch_problems} questions in "{body_field}" '
                f"(the server's max_batch_problems), got {len(questions)}; fix: send them in "
                f"requests of at most {batcher.max_batch_problems} questions, or start the "
                f"server with max_batch_problems={len(questions)}",
            )
        try:
            resolved = service.resolve(fields.settings())
        except RequestError:
            raise  # already in the request's terms: a 400 (``refused``)
        except ValueError as error:
            raise ApiError(400, in_request_terms(str(error))) from None
        problems = [batcher.new_problem(question, fields.seed) for question in questions]
        try:
            results = await batcher.submit(resolved, problems, request.is_disconnected)
        except ClientGone as error:
            log.info("%s; its search was dropped", error)
            raise ApiError(499, f"{error}", "client_closed_request") from None
        except QuestionTooLong as error:
            ids = [problem.id for problem in problems]
            field = where[ids.index(error.problem_id)] if error.problem_id in ids else body_field
            raise ApiError(400, f'"{field}": {error}') from None
        except RequestError:
            raise  # a 400 (``refused``), not a failed search
        except Exception as error:
            raise ApiError(500, f"search failed: {error}", "server_error") from None
        return results, resolved

    def finish(result: SearchResult) -> str:
        """The returned candidate's finish: ``stop`` when the policy ended it."""
        candidate = service.reply(result).candidate
        return "stop" if candidate is not None and candidate.finished else "length"

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest, request: Request) -> dict[str, Any]:
        roles = [m.role for m in body.messages]
        if roles != ["user"]:
            raise ApiError(
                400,
                f"expected messages to be one user message with the question, got roles "
                f"{roles}; the policy's own prompt (policy.system_prompt) frames it",
            )
        try:
            question = body.messages[0].text()
        except ValueError as error:
            raise ApiError(400, str(error)) from None
        results, resolved = await search(request, body, [question], ["messages[0].content"])
        (result,) = results
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": solution_text(service.reply(result).candidate),
                    },
                    "finish_reason": finish(result),
                }
            ],
            "usage": _usage(results),
            "search": describe(result, resolved),
        }

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> dict[str, Any]:
        if isinstance(body.prompt, str):
            questions, where = [body.prompt], ["prompt"]
        else:
            questions = list(body.prompt)
            where = [f"prompt[{i}]" for i in range(len(questions))]
        results, resolved = await search(request, body, questions, where)
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model_name,
            "choices": [
                {
                    "index": index,
                    "text": solution_text(service.reply(result).candidate),
                    "finish_reason": finish(result),
                    "logprobs": None,
                    "search": describe(result, resolved),
                }
                for index, result in enumerate(results)
            ],
            "usage": _usage(results),
        }

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": model_name, "object": "model", "created": created, "owned_by": "prm-search"}
            ],
        }

    @app.get("/health")
    async def health() -> JSONResponse:
        """``ok`` (200) when this process is up and every remote backend (a policy or PRM
        behind a ``ServerClient``) answers ``GET /v1/models``; else 503 naming the one down.
        In-process models are not probed (they are up when the process is)."""
        backends: dict[str, dict[str, str]] = {}
        for role, backend in (("policy", service.generator), ("scorer", service.scorer)):
            client = getattr(backend, "client", None)
            if not isinstance(client, ServerClient):
                continue
            entry = {"url": client.settings.root, "status": "ok"}
            try:
                await asyncio.wait_for(asyncio.to_thread(client.check), HEALTH_TIMEOUT_S)
            except asyncio.TimeoutError:
                entry.update(status="unavailable", error=f"no answer in {HEALTH_TIMEOUT_S} s")
            except Exception as error:
                entry.update(status="unavailable", error=str(error))
            backends[role] = entry
        ok = all(entry["status"] == "ok" for entry in backends.values())
        return JSONResponse(
            status_code=200 if ok else 503,
            content={"status": "ok" if ok else "unavailable", "backends": backends},
        )

    return app
