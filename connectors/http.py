"""The retry loop every connector shares: backoff, wait hints, bounded attempts and time.

A connector performs one request in an `attempt` function and raises `TransientError` for what
is worth retrying (throttling, 5xx, a dropped connection, a truncated body, an API's own
"slow down" answer). `call_with_retries` waits (the API's hint when it gave one, else capped
exponential backoff with jitter) and tries again, within `RetryPolicy`'s attempts and total time;
then it raises `ApiError` naming the source, the endpoint, the status and the API's message.

No token reaches a message: every message passes through `redact`.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timezone
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.json as pa_json
import requests
from requests.adapters import HTTPAdapter

from connectors.errors import ConnectorConfigError, ConnectorError
from connectors.secrets import redact_values

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

_SECRET_NAMES = r"access_token|refresh_token|api_key|api-key|key|token|client_secret|password"
_SECRET_PATTERNS = [
    # a query or form parameter: access_token=..., key=...
    re.compile(rf"(?i)\b({_SECRET_NAMES})=([^&\s\"']+)"),
    # a JSON member: "access_token": "..."
    re.compile(rf'(?i)("(?:{_SECRET_NAMES})"\s*:\s*")[^"]*(")'),
    # an Authorization header value; "Bot" only before something token-sized (not "the bot is ...")
    re.compile(r"(?i)\b(bearer)\s+[\w\-.~+/=]+|\b(bot)\s+[\w\-.~+/=]{20,}"),
    # tokens by their shape: Google access tokens, Slack tokens, Meta tokens
    re.compile(r"\b(ya29\.[\w.\-]+|xox[abposre]-[\w\-]+|xapp-[\w\-]+|EAA[\w]+)"),
    # a PEM private key (a service-account key echoed back)
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL),
]


def redact(text: str) -> str:
    """`text` with every configured secret (connectors/secrets.py) and anything shaped like a token,
    key or bearer credential replaced."""
    text = redact_values(text)
    text = _SECRET_PATTERNS[4].sub("[redacted-private-key]", text)
    text = _SECRET_PATTERNS[0].sub(lambda m: f"{m.group(1)}=[redacted]", text)
    text = _SECRET_PATTERNS[1].sub(lambda m: f"{m.group(1)}[redacted]{m.group(2)}", text)
    text = _SECRET_PATTERNS[2].sub(lambda m: f"{m.group(1) or m.group(2)} [redacted]", text)
    return _SECRET_PATTERNS[3].sub("[redacted]", text)


class ApiError(ConnectorError):
    """An API call failed for good (after retries, or at once for a permanent error).

    Attributes: source ("ga4", "meta", ...), endpoint (no query string), status (None: no HTTP
    answer), message (the API's own words, redacted), attempts.
    """

    def __init__(self, source: str, endpoint: str, status: int | None, message: str, attempts: int = 1):
        self.source = source
        self.endpoint = redact(endpoint)
        self.status = status
        self.message = redact(message)
        self.attempts = attempts
        super().__init__(str(self))

    def __str__(self) -> str:
        status = f"HTTP {self.status}" if self.status is not None else "no HTTP answer"
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"{self.source}: {self.endpoint} failed{tries} ({status}): {self.message}"


class TransientError(Exception):
    """One attempt failed in a way worth retrying.

    Args:
        status: the HTTP status, None when no answer came.
        message: what the API said (or what went wrong on the wire).
        wait: seconds the API asked us to wait (Retry-After, wait_seconds, ...), if it said.
    """

    def __init__(self, status: int | None, message: str, wait: float | None = None):
        self.status = status
        self.message = message
        self.wait = wait
        super().__init__(message)


@dataclass(frozen=True)
class RetryPolicy:
    """How long a connector keeps trying.

    Args:
        max_attempts: attempts in all, the first included.
        base_delay: the first backoff, doubled on each retry.
        max_delay: the cap on any single wait, the API's hints included.
        max_total_seconds: the retry budget of one call; a wait that would overrun it is not taken.
        jitter: +/- this fraction of randomness on computed backoffs (spreads a fleet's retries).
    """

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_total_seconds: float = 300.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConnectorConfigError(f"RetryPolicy.max_attempts={self.max_attempts} must be at least 1.")
        if min(self.base_delay, self.max_delay, self.max_total_seconds) < 0 or not 0 <= self.jitter <= 1:
            raise ConnectorConfigError(
                "RetryPolicy delays must be >= 0 and jitter within 0..1, got "
                f"base_delay={self.base_delay}, max_delay={self.max_delay}, "
                f"max_total_seconds={self.max_total_seconds}, jitter={self.jitter}."
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetryPolicy:
        """HTTP_MAX_ATTEMPTS and HTTP_MAX_RETRY_SECONDS, shared by every connector."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, key, kind in (
            ("HTTP_MAX_ATTEMPTS", "max_attempts", int),
            ("HTTP_MAX_RETRY_SECONDS", "max_total_seconds", float),
        ):
            text = env.get(name)
            if not text:
                continue
            try:
                values[key] = kind(text)
            except ValueError:
                raise ConnectorConfigError(
                    f"{name}={text!r} is not a number; unset it for the default."
                ) from None
            if values[key] < 1:
                raise ConnectorConfigError(f"{name}={text!r} must be at least 1.")
        return cls(**values)

    def backoff(self, retry: int) -> float:
        """The wait before retry number `retry` (1, 2, ...): base_delay doubled each time, +/- jitter,
        never above max_delay."""
        delay = min(self.max_delay, self.base_delay * (2.0 ** min(max(retry, 1) - 1, 60)))
        return min(self.max_delay, max(0.0, delay * (1 + random.uniform(-self.jitter, self.jitter))))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is no hint
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, not the local time zone
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - time.time())


# Requests attempted per source in this process, retries included: the day loop's progress lines
# turn them into calls per day, and the calls still to make into time left at the API's rate limit.
_CALLS: dict[str, int] = {}
_CALLS_LOCK = threading.Lock()


def _count(source: str) -> None:
    # After the attempt, never between a limiter's slot and the request it paces.
    with _CALLS_LOCK:
        _CALLS[source] = _CALLS.get(source, 0) + 1


def calls_made(source: str) -> int:
    """How many requests this process has attempted for `source` ("slack", "gsc", ...) so far."""
    with _CALLS_LOCK:
        return _CALLS.get(source, 0)


def call_with_retries(
    attempt: Callable[[], T],
    *,
    source: str,
    endpoint: str,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `attempt` until it returns, retrying on `TransientError` within `policy`.

    The time budget bounds the waits: a wait that would end past `policy.max_total_seconds`
    (counted from the first attempt) is not taken, so the whole call lasts at most the budget plus
    one attempt's own timeout.

    Raises:
        ApiError: when the attempts or the time budget run out (the last failure's status and
            message), or as raised by `attempt` for a permanent failure.
    """
    started = time.monotonic()
    for number in range(1, policy.max_attempts + 1):
        try:
            result = attempt()
        except TransientError as exc:
            _count(source)
            elapsed = time.monotonic() - started
            if number == policy.max_attempts:
                raise ApiError(source, endpoint, exc.status, exc.message, attempts=number) from None
            delay = exc.wait if exc.wait is not None else policy.backoff(number)
            delay = min(delay, policy.max_delay)
            if elapsed + delay > policy.max_total_seconds:
                raise ApiError(
                    source,
                    endpoint,
                    exc.status,
                    f"{exc.message} (gave up: waiting {delay:.1f}s more would overrun the retry "
                    f"budget of {policy.max_total_seconds:g}s)",
                    attempts=number,
                ) from None
            status = f"HTTP {exc.status}" if exc.status is not None else "no answer"
            log.warning(
                "%s: %s on %s, retry %d/%d in %.1fs: %s",
                source,
                status,
                redact(endpoint),
                number,
                policy.max_attempts - 1,
                delay,
                redact(exc.message)[:200],
            )
            sleep(delay)
        except BaseException:
            _count(source)
            raise
        else:
            _count(source)
            return result
    raise AssertionError("unreachable")  # pragma: no cover


FETCH_CONCURRENCY_ENV = "FETCH_CONCURRENCY"
DEFAULT_POOL_SIZE = 2


def pool_size_from_env(environ: Mapping[str, str] | None = None) -> int:
    """Connections kept per origin: FETCH_CONCURRENCY, the threads that fetch at once (default 2)."""
    env = os.environ if environ is None else environ
    text = (env.get(FETCH_CONCURRENCY_ENV) or "").strip()
    try:
        return max(1, int(text)) if text else DEFAULT_POOL_SIZE
    except ValueError:
        raise ConnectorConfigError(
            f"{FETCH_CONCURRENCY_ENV}={text!r} is not a whole number; unset it for the default."
        ) from None


def mount_pool(session: requests.Session, pool_size: int) -> requests.Session:
    """Give `session` one connection pool per origin holding `pool_size` connections, as many as
    threads fetch at once; requests' own retries are off (`call_with_retries` owns retrying)."""
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(1, pool_size), max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class ApiSession(requests.Session):
    """The `requests` session of one API client: a pooled connection per fetching thread, proxies
    and the CA bundle from the environment (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE; requests
    reads them), and credentials kept on their origin.

    requests drops `Authorization` when a redirect leaves the origin, but not an API's own
    credential headers (Discourse's `Api-Key` and `Api-Username`): those named in
    `credential_headers` are dropped at the same point, through requests' `rebuild_auth` hook.
    """

    def __init__(self, pool_size: int, credential_headers: tuple[str, ...] = ()):
        super().__init__()
        self.credential_headers = frozenset(name.lower() for name in credential_headers)
        mount_pool(self, pool_size)
        self._environment: dict[tuple[str, str], dict] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert) -> dict:
        """requests' environment settings (proxies with NO_PROXY applied, REQUESTS_CA_BUNDLE), read
        once per origin for the session's life rather than on every request: reading them scans the
        whole environment twice a call, more client CPU than the rest of a small request."""
        if proxies or stream is not None or verify is not None or cert is not None:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        origin = tuple(urlsplit(url)[:2])
        settings = self._environment.get(origin)
        if settings is None:
            settings = super().merge_environment_settings(url, {}, None, None, None)
            self._environment[origin] = settings
        return {**settings, "proxies": dict(settings["proxies"])}

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        super().rebuild_auth(prepared_request, response)
        if self.credential_headers and self.should_strip_auth(response.request.url, prepared_request.url):
            for name in [n for n in prepared_request.headers if n.lower() in self.credential_headers]:
                del prepared_request.headers[name]


def send(session: requests.Session, method: str, url: str, *, timeout: float, **kwargs) -> requests.Response:
    """One HTTP request with its body read in full; wire failures become `TransientError`.

    `session` is the connector's `ApiSession` (google-auth's `AuthorizedSession` for GA4 and
    Search Console); `kwargs` are its request's (params, data, json, headers).
    """
    try:
        return session.request(method, url, timeout=timeout, **kwargs)
    except (TimeoutError, requests.Timeout):
        raise TransientError(None, f"no answer within {timeout:g}s (timeout)") from None
    # a refused or dropped connection, a body cut short (ChunkedEncodingError) or a garbled
    # compressed one (ContentDecodingError)
    except (OSError, requests.RequestException) as exc:
        cause = _root_cause(exc)
        raise TransientError(None, f"connection failed: {type(cause).__name__}: {cause}") from None


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost error under requests' and urllib3's wrappers (ConnectionRefusedError rather
    than ConnectionError(MaxRetryError(NewConnectionError(...)))), which names what happened."""
    seen = {id(exc)}
    while True:
        inner = exc.__cause__ or getattr(exc, "reason", None) or exc.__context__
        if not isinstance(inner, BaseException) and exc.args and isinstance(exc.args[0], BaseException):
            inner = exc.args[0]
        if not isinstance(inner, BaseException) or id(inner) in seen:
            return exc
        seen.add(id(inner))
        exc = inner


def json_body(response: requests.Response) -> Any:
    """The parsed JSON of a 2xx answer; a cut or garbled body is `TransientError` (worth a retry).

    Decodes with the standard library's json (UTF-8/16/32 detected from the bytes).
    """
    try:
        return json.loads(response.content)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        snippet = response.content[:120].decode("utf-8", "replace")
        raise TransientError(
            response.status_code, f"the answer's JSON body is truncated or malformed: {snippet!r}"
        ) from None


def raise_for_transient_status(response: requests.Response, message: str) -> None:
    """Raise `TransientError` for 429/5xx answers, with the Retry-After hint when sent."""
    if response.status_code in RETRYABLE_STATUSES:
        wait = parse_retry_after(response.headers.get("Retry-After"))
        raise TransientError(response.status_code, message, wait)


# pyarrow's JSON reader crashes the process (SIGSEGV, pyarrow 26) on a body whose first value is
# `null`: only a body that opens an object reaches it.
_OBJECT_START = re.compile(rb"[ \t\r\n]*\{")


class ArrowJsonObject:
    """Reads an answer that is one JSON object straight into a one-row Arrow table (no Python object
    per value), typed by `schema`: what GA4 and Search Console pages are decoded with.

    `unexpected_field_behavior` is pyarrow's: "infer" keeps fields the schema does not name,
    "error" fails the read on them.
    """

    def __init__(self, schema: pa.Schema, unexpected_field_behavior: str):
        # A pretty-printed answer spans lines; a compact one (prettyPrint=false) parses ~25% faster
        # read as one line.
        self._pretty = pa_json.ParseOptions(
            explicit_schema=schema,
            newlines_in_values=True,
            unexpected_field_behavior=unexpected_field_behavior,
        )
        self._compact = pa_json.ParseOptions(
            explicit_schema=schema,
            newlines_in_values=False,
            unexpected_field_behavior=unexpected_field_behavior,
        )

    def read(self, content: bytes) -> pa.Table | None:
        """The table, or None when the body does not open an object.

        Raises:
            pyarrow's ArrowInvalid / ArrowTypeError when the body is not JSON of the schema's types.
        """
        if not _OBJECT_START.match(content):
            return None
        compact = content.count(b"\n") <= content.endswith(b"\n")
        return pa_json.read_json(
            pa.BufferReader(content),
            # one block holds the whole answer (one JSON object)
            read_options=pa_json.ReadOptions(block_size=max(len(content) + 1, 1 << 16), use_threads=False),
            parse_options=self._compact if compact else self._pretty,
        )
