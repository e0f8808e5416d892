"""An HTTP client for model servers (vLLM, SGLang, any OpenAI-compatible endpoint).

Batch-first and synchronous to its callers: ``post_many`` sends many JSON bodies at once over
one ``httpx.AsyncClient`` (at most ``max_concurrency`` in flight) and returns the responses
in order. The event loop runs in a private daemon thread, so the client works the same from a
plain script, a worker thread of an async web server, or a Ray actor.

Failures:

- 429, 5xx, timeouts and dropped connections are retried ``max_retries`` times with
  exponential backoff (``backoff_s`` doubling up to ``max_backoff_s``, with jitter; a 429's
  ``Retry-After`` is honoured within that cap);
- any other 4xx is the caller's mistake and fails at once with the server's message;
- a server that cannot be reached at all (refused or unresolvable) fails the first request
  after its retries with one ``ServerUnavailable`` naming the URL; ``check`` does the same in
  about ``connect_timeout_s`` without retries, so an entry point can fail before any work.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
from collections.abc import Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
ABANDONED_POLL_S = 0.1  # how often post_many asks which of its requests nobody wants
# how long ``check`` waits for GET /v1/models once connected: a model server lists its models
# at once, so a server that accepted the connection and says nothing in this time is stuck
# or is not a model server (not a slow generation: timeout_s is for those)
CHECK_TIMEOUT_S = 30.0
ABANDONED: Any = object()  # post_many's response for a request nobody wanted any more


class ServerError(RuntimeError):
    """A model server answered with an error, or could not be reached."""


class ServerUnavailable(ServerError):
    """Nothing answers at the server's URL."""


def server_error(error: BaseException) -> ServerError | None:
    """The ``ServerError`` behind ``error`` (itself, or what it was raised from, e.g. by
    Hydra's ``instantiate``), or ``None``: entry points print it as one line."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ServerError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Where a server is and how to talk to it.

    ``base_url`` is the server root, e.g. ``http://127.0.0.1:8000`` (a trailing ``/v1`` is
    accepted and removed: paths are given in full). ``api_key_env`` names the environment
    variable that holds the API key (the key itself never sits in a config file); unset or
    empty means no ``Authorization`` header.
    """

    base_url: str
    api_key_env: str | None = None
    timeout_s: float = 300.0
    connect_timeout_s: float = 5.0
    max_concurrency: int = 64
    max_retries: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"expected base_url to start with http:// or https://, got {self.base_url!r}; "
                "fix: base_url=http://HOST:PORT"
            )
        positive = {
            "timeout_s": self.timeout_s,
            "connect_timeout_s": self.connect_timeout_s,
            "max_concurrency": self.max_concurrency,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"expected {name} > 0, got {value}; fix: a positive {name}")
        if self.max_retries < 0 or self.backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError(
                "expected max_retries, backoff_s and max_backoff_s >= 0, got "
                f"{self.max_retries}, {self.backoff_s}, {self.max_backoff_s}; fix: 0 or more each"
            )

    @property
    def root(self) -> str:
        url = self.base_url.rstrip("/")
        return url[: -len("/v1")] if url.endswith("/v1") else url

    def api_key(self) -> str | None:
        if not self.api_key_env:
            return None
        return os.environ.get(self.api_key_env) or None


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0.5, 1] x min(cap, base * 2**attempt)."""
    return min(cap_s, base_s * 2**attempt) * (0.5 + 0.5 * rng.random())


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None


def _status_fix(status: int, path: str, settings: ServerSettings, message: str = "") -> str:
    """What to do about an HTTP error ``status`` on ``path``: the common mistakes named."""
    if status in (401, 403):
        variable = settings.api_key_env
        if not variable:
            return (
                "fix: the server wants an API key: name the environment variable that holds "
                "it (api_key_env=VAR, e.g. policy.api_key_env or scorer.server.api_key_env)"
            )
        state = "is unset or empty" if not os.environ.get(variable) else "holds a key it refused"
        return f"fix: api_key_env names {variable}, which {state}; export the server's key in it"
    if status == 404 and "does not exist" in message:  # vLLM: a model name it does not serve
        return (
            "fix: name a model the server serves (GET /v1/models lists them; vLLM names one by "
            "--served-model-name, else its --model)"
        )
    if status == 404:
        wanted = {
            "/pooling": "a PRM served with --runner pooling (vLLM's POST /pooling)",
            "/v1/completions": "a completions model (vLLM without --runner pooling)",
            "/v1/chat/completions": "a chat model (vLLM without --runner pooling)",
        }.get(path, "an OpenAI-compatible model server")
        return f"fix: base_url must point at a server that answers {path}: {wanted}"
    return "fix: see the server's log"


def _message(response: httpx.Response) -> str:
    """The server's own error text, short."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body))
        if isinstance(error, dict):
            error = error.get("message", error)
        return str(error)[:500]
    return str(body)[:500]


class ServerClient:
    """JSON over HTTP to one server, many requests in flight (see the module docstring)."""

    def __init__(self, settings: ServerSettings, seed: int = 0) -> None:
        self.settings = settings
        self._rng = random.Random(seed)  # backoff jitter only
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"http:{settings.root}", daemon=True
        )
        self._thread.start()
        self._client: httpx.AsyncClient | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self.requests = 0  # HTTP requests sent, retries included
        self.retries = 0
        httpx_log = logging.getLogger("httpx")
        if httpx_log.level == logging.NOTSET:  # one INFO line per request: noise, unless asked
            httpx_log.setLevel(logging.WARNING)

    # -- sync API ---------------------------------------------------------------------------
    def get(self, path: str) -> Any:
        """GET ``path`` (retried like a POST)."""
        return self._run(self._send("GET", path, None))

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.post_many(path, [body])[0]

    def post_many(
        self,
        path: str,
        bodies: Sequence[dict[str, Any]],
        abandoned: Callable[[], Collection[int]] | None = None,
    ) -> list[Any]:
        """POST every body to ``path`` concurrently; the decoded JSON responses, in order.
        The first request that fails for good cancels the rest and raises. ``abandoned``:
        the indices of the bodies whose answers nobody wants any more, asked before sending
        and then every ``ABANDONED_POLL_S`` while requests are out (from the client's own
        thread: it must be cheap and thread-safe); such a request not yet sent is not sent,
        one in flight is cancelled (its connection closed: vLLM's server then stops
        generating for it), and its response is ``ABANDONED``. One answered before it was
        abandoned keeps its answer."""
        if not bodies:
            return []
        return self._run(self._gather(path, bodies, abandoned))

    def check(self) -> Any:
        """``GET /v1/models`` once, without retries: the server's models, or one
        ``ServerUnavailable`` naming the URL within about ``connect_timeout_s`` (a server that
        connects but does not answer: a ``ServerError`` within ``CHECK_TIMEOUT_S``)."""
        answer = min(self.settings.timeout_s, CHECK_TIMEOUT_S)
        return self._run(self._send("GET", "/v1/models", None, retries=0, read_timeout_s=answer))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        if self._client is not None:
            self._run(self._client.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __del__(self) -> None:  # a forgotten client must not keep a thread spinning
        try:
            if not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._loop.stop)
        except Exception:
            pass

    # -- async internals --------------------------------------------------------------------
    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop.is_closed():
            raise ServerError(f"the client of {self.settings.root} is closed")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            settings = self.settings
            headers = {}
            key = settings.api_key()
            if key:
                headers["Authorization"] = f"Bearer {key}"
            limit = settings.max_concurrency
            self._client = httpx.AsyncClient(
                base_url=settings.root,
                headers=headers,
                timeout=httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s),
                limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
            )
            self._semaphore = asyncio.Semaphore(limit)
        return self._client

    async def _gather(
        self,
        path: str,
        bodies: Sequence[dict[str, Any]],
        abandoned: Callable[[], Collection[int]] | None = None,
    ) -> list[Any]:
        cut: set[int] = set(abandoned()) if abandoned is not None else set()
        tasks: list[asyncio.Task[Any] | None] = [
            None if index in cut else asyncio.ensure_future(self._send("POST", path, body))
            for index, body in enumerate(bodies)
        ]
        running = [task for task in tasks if task is not None]
        watcher = None
        if abandoned is not None:
            watcher = asyncio.ensure_future(_cancel_abandoned(tasks, abandoned, cut))
        try:
            pending = set(running)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
                for finished in done:
                    if not finished.cancelled() and finished.exception() is not None:
                        raise finished.exception()  # type: ignore[misc]
            out = []
            for index, task in enumerate(tasks):
                if task is None or (task.cancelled() and index in cut):
                    out.append(ABANDONED)
                else:
                    out.append(task.result())  # raises CancelledError if cancelled otherwise
            return out
        except BaseException:
            for left in running:
                left.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise
        finally:
            if watcher is not None:
                watcher.cancel()

    async def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        retries: int | None = None,
        read_timeout_s: float | None = None,
    ) -> Any:
        settings = self.settings
        client = self._http()
        assert self._semaphore is not None
        retries = settings.max_retries if retries is None else retries
        url = settings.root + path
        timeout: Any = httpx.USE_CLIENT_DEFAULT  # the client's (timeout_s, connect_timeout_s)
        if read_timeout_s is not None:
            timeout = httpx.Timeout(read_timeout_s, connect=settings.connect_timeout_s)
        attempt = 0
        while True:
            wait: float | None = None
            async with self._semaphore:
                self.requests += 1
                try:
                    response = await client.request(method, path, json=body, timeout=timeout)
                except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                    if attempt >= retries:
                        raise ServerUnavailable(
                            f"could not reach the model server at {url} "
                            f"({type(error).__name__}: {error or 'no answer'}) after "
                            f"{attempt + 1} attempt(s); fix: start the server, or point "
                            "base_url at a running one"
                        ) from None
                    failure = f"{type(error).__name__}"
                except (
                    httpx.TimeoutException,
                    httpx.NetworkError,
                    httpx.RemoteProtocolError,
                ) as error:
                    if attempt >= retries:
                        detail = type(error).__name__ + (f" {error}" if str(error) else "")
                        fix = (
                            f"it connected but sent no answer within {read_timeout_s:.0f} s: is "
                            "base_url a model server, and is it up (its log)?"
                            if read_timeout_s is not None
                            and isinstance(error, httpx.TimeoutException)
                            else "check the server's log, raise timeout_s, or lower max_concurrency"
                        )
                        raise ServerError(
                            f"{method} {url} failed after {attempt + 1} attempt(s): "
                            f"{detail}; fix: {fix}"
                        ) from None
                    failure = f"{type(error).__name__}"
                else:
                    if response.is_success:
                        return response.json()
                    if response.status_code not in RETRY_STATUS or attempt >= retries:
                        said = _message(response)
                        raise ServerError(
                            f"{method} {url} answered {response.status_code} after "
                            f"{attempt + 1} attempt(s): {said}; "
                            + _status_fix(response.status_code, path, settings, said)
                        )
                    failure = f"HTTP {response.status_code}"
                    wait = _retry_after(response)
            delay = backoff_delay(attempt, settings.backoff_s, settings.max_backoff_s, self._rng)
            if wait is not None:
                delay = min(settings.max_backoff_s, max(delay, wait))
            log.warning("%s %s: %s; retry %d in %.1f s", method, url, failure, attempt + 1, delay)
            self.retries += 1
            attempt += 1
            await asyncio.sleep(delay)


async def _cancel_abandoned(
    tasks: Sequence[asyncio.Future[Any] | None],
    abandoned: Callable[[], Collection[int]],
    cut: set[int],
) -> None:
    """Cancel the tasks ``abandoned`` names (waiting for a slot or in flight) and add their
    indices to ``cut``, every ``ABANDONED_POLL_S``, until cancelled itself. A question that
    fails stops the watching (logged), not the requests."""
    while True:
        try:
            gone = list(abandoned())
        except Exception:
            log.exception("asking which requests were abandoned failed: no more are cancelled")
            return
        for index in gone:
            task = tasks[index] if 0 <= index < len(tasks) else None
            if task is not None and not task.done():
                cut.add(index)
                task.cancel()
        await asyncio.sleep(ABANDONED_POLL_S)
