"""The chat call: one OpenAI-compatible endpoint, bounded in time, its answer checked for a cut-off.

Any server that speaks the chat-completions API works (OpenAI, Azure, vLLM, Ollama, llama.cpp's server): the
model comes from `--llm`, the endpoint from `OPENAI_BASE_URL` (or `--llm-base-url`), the key from
`OPENAI_API_KEY`. The `openai` package is imported only when a call is made: the CLI stays fast without it.

Time is bounded: answers are streamed, so a server that goes silent for `SCAFFOLD_LLM_TIMEOUT` seconds is given
up at once (it would stay silent on a retry), while a slow but working one is not cut off; 429, 5xx and refused
connections are retried `SCAFFOLD_LLM_RETRIES` times with backoff; and no call outlives
`SCAFFOLD_LLM_MAX_SECONDS`, retries included.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from scaffolder.errors import MissingToolError, SpecError
from scaffolder.llm.answer import RESPONSE_SCHEMA

if TYPE_CHECKING:
    import openai

DEFAULT_HOST = "api.openai.com"
OPENAI_MISSING = "--llm needs the openai package; install it with `pip install 'scaffolder[llm]'`"
# Time bounds: variable -> (default, type, what it bounds). README lists the same.
KNOBS: dict[str, tuple[float, type, str]] = {
    "SCAFFOLD_LLM_TIMEOUT": (60.0, float, "seconds of silence (connecting, or between streamed chunks)"),
    "SCAFFOLD_LLM_MAX_SECONDS": (600.0, float, "seconds one answer may take, retries included"),
    "SCAFFOLD_LLM_RETRIES": (2, int, "retries after a 429, a 5xx or a refused connection"),
    "SCAFFOLD_LLM_ROUNDS": (2, int, "repair rounds after the first answer"),
}
BACKOFF_START, BACKOFF_CAP = 1.0, 8.0  # seconds: 1, 2, 4, 8, 8, ... (a server's Retry-After, up to the cap)
# Structured-output modes, strongest first: a server that rejects one (HTTP 400/422) is asked with the next.
MODES = ("json_schema", "json_object", "plain")
_FORMATS: dict[str, dict[str, Any]] = {
    "json_schema": {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "project_files", "strict": True, "schema": RESPONSE_SCHEMA},
        }
    },
    "json_object": {"response_format": {"type": "json_object"}},
    "plain": {},
}
# Statuses a retry cannot help: the message names the fix instead.
_FIXES = {
    401: "the endpoint refused the key: check OPENAI_API_KEY",
    403: "the key may not use this model or endpoint: check OPENAI_API_KEY and --llm",
    404: "no such model or path at this endpoint: check --llm and OPENAI_BASE_URL (it usually ends in /v1)",
}


class EndpointError(Exception):
    """The endpoint gave no usable answer within the bounds. The message is one line and holds no key."""


@dataclass(frozen=True)
class Endpoint:
    model: str
    base_url: str | None  # None: the openai client's default (api.openai.com)
    api_key: str = field(repr=False)  # never printed, logged or written
    timeout: float = 60.0
    max_seconds: float = 600.0
    retries: int = 2
    rounds: int = 2

    @property
    def host(self) -> str:
        """What the commit trailers and messages name: host[:port], never the path, user or query."""
        if not self.base_url:
            return DEFAULT_HOST
        parsed = urlparse(self.base_url)
        return f"{parsed.hostname}:{parsed.port}" if parsed.port else str(parsed.hostname)

    def redact(self, text: str) -> str:
        return text.replace(self.api_key, "<key>") if self.api_key else text


def endpoint_from_env(model: str, base_url: str | None = None) -> Endpoint:
    """The endpoint for `--llm MODEL`, from the flags and the standard OPENAI_* variables; checked up front."""
    model = model.strip()
    if not model:
        raise SpecError("--llm needs a model name, e.g. --llm gpt-4o-mini")
    base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
    if base_url:
        parsed = urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise SpecError(
                f"endpoint `{base_url}` is not an http(s) URL; set OPENAI_BASE_URL like http://host:8000/v1"
            )
    key = os.environ.get("OPENAI_API_KEY", "")
    if not key and not base_url:
        raise SpecError("--llm needs OPENAI_API_KEY set (or OPENAI_BASE_URL pointing at a server that needs no key)")
    knobs = {name: _knob(name) for name in KNOBS}
    return Endpoint(
        model,
        base_url,
        key,
        timeout=knobs["SCAFFOLD_LLM_TIMEOUT"],
        max_seconds=knobs["SCAFFOLD_LLM_MAX_SECONDS"],
        retries=int(knobs["SCAFFOLD_LLM_RETRIES"]),
        rounds=int(knobs["SCAFFOLD_LLM_ROUNDS"]),
    )


def _knob(name: str) -> float:
    default, kind, what = KNOBS[name]
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = -1
    if value < 0 or (name != "SCAFFOLD_LLM_RETRIES" and name != "SCAFFOLD_LLM_ROUNDS" and value == 0):
        raise SpecError(f"{name}={text!r} is not a valid number of {what}; unset it or give a positive {kind.__name__}")
    return value


@dataclass(frozen=True)
class Answer:
    text: str
    finish_reason: str | None
    seconds: float


class ChatClient:
    """One conversation's calls to one endpoint; remembers which structured-output mode the server takes."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.mode = MODES[0]
        self._openai = _import_openai()
        self._client = self._openai.OpenAI(
            # A local server may need no key; the client insists on one, so it gets a placeholder.
            api_key=endpoint.api_key or "no-key",
            base_url=endpoint.base_url,
            max_retries=0,  # retries are ours: bounded by the call's deadline, and never after a silent server
            timeout=self._openai.Timeout(endpoint.timeout, connect=min(endpoint.timeout, 10.0)),
        )

    def complete(self, messages: list[dict[str, str]]) -> Answer:
        started = time.monotonic()
        deadline = started + self.endpoint.max_seconds
        for attempt in range(self.endpoint.retries + 1):
            try:
                text, finish = self._in_some_mode(messages, deadline)
                return Answer(text, finish, time.monotonic() - started)
            except (self._openai.RateLimitError, self._openai.InternalServerError) as exc:
                failure, retry_after = self._describe(exc), _retry_after(exc)
            except self._openai.APITimeoutError:
                silent = f"no answer within {self.endpoint.timeout:g} s (unreachable or stalled)"
                raise EndpointError(self._say(silent)) from None
            except self._openai.APIConnectionError as exc:
                failure, retry_after = self._say(f"cannot connect ({_cause(exc)})"), None
            except self._openai.APIError as exc:
                raise EndpointError(self._describe(exc)) from None
            delay = retry_after if retry_after is not None else BACKOFF_START * 2**attempt
            delay = min(delay, BACKOFF_CAP) * (1 - 0.25 * random.random())  # jitter: clients retrying together
            if attempt == self.endpoint.retries or time.monotonic() + delay >= deadline:
                break
            time.sleep(delay)
        raise EndpointError(f"{failure}, {attempt + 1} attempt(s) in {time.monotonic() - started:.1f} s")

    def _in_some_mode(self, messages: list[dict[str, str]], deadline: float) -> tuple[str, str | None]:
        """Ask in the current mode; a server that rejects it (400/422) is asked again in the next one."""
        while True:
            try:
                return self._stream(messages, deadline)
            except (self._openai.BadRequestError, self._openai.UnprocessableEntityError):
                if self.mode == MODES[-1]:
                    raise
                self.mode = MODES[MODES.index(self.mode) + 1]

    def _stream(self, messages: list[dict[str, str]], deadline: float) -> tuple[str, str | None]:
        stream = self._client.chat.completions.create(
            model=self.endpoint.model,
            messages=messages,  # type: ignore[arg-type]
            stream=True,
            **_FORMATS[self.mode],
        )
        parts: list[str] = []
        finish = None
        with stream:
            for chunk in stream:
                if time.monotonic() > deadline:
                    raise EndpointError(self._say(f"the answer took longer than {self.endpoint.max_seconds:g} s"))
                for choice in chunk.choices:
                    if choice.delta is not None and choice.delta.content:
                        parts.append(choice.delta.content)
                    finish = choice.finish_reason or finish
        return "".join(parts), finish

    def _describe(self, exc: openai.APIError) -> str:
        status = getattr(exc, "status_code", None)
        if status in _FIXES:
            return self._say(f"HTTP {status}: {_FIXES[status]}")
        detail = " ".join(str(exc.message).split())[:200]
        return self._say(f"HTTP {status}: {detail}" if status else detail)

    def _say(self, text: str) -> str:
        return self.endpoint.redact(f"{self.endpoint.host}: {text}")


def _retry_after(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _cause(exc: BaseException) -> str:
    """The innermost reason (e.g. `[Errno 111] Connection refused`), shortened to one line."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return " ".join(str(exc).split())[:120] or type(exc).__name__


def _import_openai() -> Any:
    try:
        import openai
    except ImportError:
        raise MissingToolError(OPENAI_MISSING) from None
    return openai
