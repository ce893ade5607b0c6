"""The sandbox HTTP server: one loopback server that speaks every imitated API.

Routes (more sources join in later issues):

- `POST /google/token`: Google's OAuth token endpoint (JWT-bearer grant).
- `POST /ga4/v1beta/properties/{id}:runReport`: the GA4 Data API; needs a bearer token the
  sandbox issued.
- `GET /` and `GET /healthz`: what is served, and a liveness answer.

Faults for tests: `server.inject_fault("runReport", 503, times=2)` makes the next two matching
requests fail with that status (Google's error body unless `body` is given), before any other
handling, so a 401 fault is answered even to a valid token.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connectors.sandbox.brand import (
    BRAND_NAME,
    DEFAULT_SCALE,
    DEFAULT_SEED,
    SANDBOX_GA4_PROPERTY_ID,
    SANDBOX_START_DATE,
    check_scale,
)
from connectors.sandbox.ga4_api import GoogleApiError, google_error_body, run_report, unauthenticated_body
from connectors.sandbox.google_auth import OAuthError, TokenStore
from connectors.sandbox.limits import SandboxLimits
from connectors.sandbox.registry import api_for, apis
from connectors.sandbox.routes import SandboxRequest

log = logging.getLogger(__name__)

_RUN_REPORT = re.compile(r"^/ga4/v1beta/properties/([^/:]+):runReport$")
_MAX_BODY = 10 * 1024 * 1024


@dataclass
class Fault:
    """A canned failure for requests whose path contains `path_contains`.

    The first `after` matching requests pass; the next `times` get the failure (None: all of them).
    """

    path_contains: str
    status: int
    times: int | None = 1
    body: dict | str | bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    after: int = 0
    # "status": answer `status` and `body`; "drop": close the connection without an answer;
    # "truncate": answer normally but cut the body in half; "slow": wait `delay` seconds, then
    # answer normally; "transform": answer normally with `transform` applied to the JSON body.
    kind: str = "status"
    delay: float = 0.0
    transform: Callable[[Any], Any] | None = None
    hits: int = 0
    passed: int = 0


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str  # with the query string
    status: int
    body: bytes = b""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, sandbox: SandboxServer):
        self.sandbox = sandbox
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY, Nagle + delayed ACK add ~40 ms to a keep-alive request whose answer
    # leaves in two writes (the truncated-body fault, error pages of the base class).
    disable_nagle_algorithm = True
    server_version = "NorthwindSandbox/1.0"
    server: _HTTPServer

    # --- plumbing ---
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, _MAX_BODY)) if length > 0 else b""

    def _send(
        self, status: int, payload: dict | list | str | bytes, headers: dict[str, str] | None = None
    ) -> None:
        fault = getattr(self, "_fault", None)
        if fault is not None and fault.kind == "transform" and isinstance(payload, (dict, list)):
            payload = fault.transform(payload)
        if isinstance(payload, (dict, list)):
            data = json.dumps(payload).encode("utf-8")
            content_type = "application/json; charset=UTF-8"
        elif isinstance(payload, str):
            data = payload.encode("utf-8")
            content_type = "text/plain; charset=utf-8"
        else:
            data = payload
            content_type = "application/octet-stream"
        # Recorded before the answer leaves, so a client that got it always finds it in the log.
        self.server.sandbox._record(RequestRecord(self.command, self.path, status, self._body))
        self.send_response(status)
        extra = dict(headers or {})
        if not any(k.lower() == "content-type" for k in extra):
            self.send_header("Content-Type", content_type)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        if self.command == "HEAD":
            self.end_headers()
        elif fault is not None and fault.kind == "truncate":
            self.end_headers()
            # Content-Length promises the whole body; half of it arrives, then the connection ends.
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
        else:
            # Head and body in one write, as production servers send a small answer (one segment
            # rather than two, and one read for the client). end_headers() would write the head
            # alone; this is what it does, with the body added to the buffer it flushes.
            self._headers_buffer.append(b"\r\n" + data)
            self.flush_headers()
        self._status = status

    def _handle(self) -> None:
        sandbox = self.server.sandbox
        body = self._read_body() if self.command in ("POST", "PUT", "PATCH") else b""
        self._body = body
        self._status = 0
        self._fault = None
        try:
            fault = sandbox._take_fault(self.path)
            if fault is None or fault.kind in ("truncate", "transform"):
                self._fault = fault
                self._paced_route(body)
            elif fault.kind == "slow":
                time.sleep(fault.delay)
                self._paced_route(body)
            elif fault.kind == "drop":
                sandbox._record(RequestRecord(self.command, self.path, 0, body))
                self.close_connection = True
                self.connection.shutdown(2)
            else:
                self._send_fault(fault)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first (a "slow" fault past its timeout): nobody to answer.
            self.close_connection = True
        except Exception:  # a sandbox bug must answer 500, not hang the client
            log.exception("sandbox failed on %s %s", self.command, self.path)
            if not self._status:
                self._send(500, google_error_body(500))

    def _send_fault(self, fault: Fault) -> None:
        body = fault.body
        api = api_for(urlsplit(self.path).path)
        if body is None and api is not None:
            body = api.error_body(fault.status)
        if body is None:
            body = (
                google_error_body(fault.status)
                if not self.path.startswith("/google/token")
                else {"error": "temporarily_unavailable", "error_description": "Injected fault."}
            )
        self._send(fault.status, body, fault.headers)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _paced_route(self, body: bytes) -> None:
        """`_route` after the configured latency, within the API's published limits
        (connectors/sandbox/limits.py): past them, the API's own throttle answer."""
        limits = self.server.sandbox.limits
        path = urlsplit(self.path).path
        throttled = limits.check(path, self.headers)
        if throttled is not None:
            limits.delay()
            self._send(throttled.status, throttled.body, throttled.headers)
            return
        match = _RUN_REPORT.match(path)
        if match is None:
            limits.delay()
            self._route(body)
            return
        # the latency inside the slot: a GA4 request holds its slot until its answer is sent
        with limits.ga4_slot(match.group(1)) as refused:
            limits.delay()
            if refused is not None:
                self._send(refused.status, refused.body, refused.headers)
            else:
                self._route(body)

    # --- routes ---
    def _route(self, body: bytes) -> None:
        path = urlsplit(self.path).path
        sandbox = self.server.sandbox
        if path == "/google/token" and self.command == "POST":
            form = parse_qs(body.decode("utf-8", "replace"))
            try:
                self._send(200, sandbox.tokens.grant(form), {"Cache-Control": "no-store"})
            except OAuthError as exc:
                self._send(400, exc.body())
            return
        match = _RUN_REPORT.match(path)
        if match and self.command == "POST":
            self._run_report(match.group(1), body)
            return
        api = api_for(path)
        if api is not None:
            request = SandboxRequest(
                method=self.command,
                path=path,
                query=parse_qs(urlsplit(self.path).query, keep_blank_values=True),
                headers=self.headers,
                body=body,
                sandbox=sandbox,
            )
            response = api.handle(request)
            self._send(response.status, response.body, response.headers)
            return
        if path in ("/", "/healthz") and self.command == "GET":
            self._send(200, sandbox.describe() if path == "/" else {"status": "ok"})
            return
        if path.startswith(("/ga4/", "/google/")):
            self._send(404, google_error_body(404, f"The requested URL {path} was not found on this server."))
        else:
            self._send(404, {"error": "not_found", "path": path})

    def _run_report(self, property_id: str, body: bytes) -> None:
        sandbox = self.server.sandbox
        auth = self.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if not token or not sandbox.tokens.is_valid(token):
            self._send(
                401,
                unauthenticated_body(),
                {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
            return
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            self._send(400, GoogleApiError(400, "Invalid JSON payload received. Unexpected token.").body())
            return
        try:
            response = run_report(
                request,
                property_id,
                seed=sandbox.seed,
                scale=sandbox.scale,
                today=sandbox.today(),
                how_heard_parameter=sandbox.how_heard_parameter,
                lead_event=sandbox.lead_event,
            )
        except GoogleApiError as exc:
            self._send(exc.code, exc.body())
            return
        self._send(200, response)


class SandboxServer:
    """A loopback HTTP server imitating the brand's APIs, in a background thread.

    Args:
        seed: the data's seed; the same seed gives the same data for every date.
        scale: "small" (tests), "demo" or "large" (benchmarks).
        host, port: where to listen; port 0 picks a free port.
        how_heard_parameter, lead_event: the GA4 custom event parameter and key event of leads.
        today: pin "today" (the last served day is the day before); default: the UTC date.
    """

    def __init__(
        self,
        seed: int = DEFAULT_SEED,
        scale: str = DEFAULT_SCALE,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        how_heard_parameter: str = "how_heard",
        lead_event: str = "generate_lead",
        today: date | None = None,
        limits: SandboxLimits | None = None,
        discourse_likes_arrive: bool = False,
    ):
        self.seed = int(seed)
        # rate limits and latency (SANDBOX_RATE_LIMITS, SANDBOX_TIME_SCALE, SANDBOX_LATENCY_MS)
        self.limits = limits if limits is not None else SandboxLimits.from_env()
        self.scale = check_scale(scale)
        self.host = host
        self.port = port
        self.how_heard_parameter = how_heard_parameter
        self.lead_event = lead_event
        self._today = today
        self.tokens = TokenStore()
        self.faults: list[Fault] = []
        self.requests: deque[RequestRecord] = deque(maxlen=10_000)
        # Slack channel ids the bot has left: listed with is_member false, their history refused
        self.slack_left_channels: set[str] = set()
        # Discourse post id -> the person ids (connectors.sandbox.community) who like it, in place of
        # the generated reactions: a test adds and removes likes between two loads
        self.discourse_likers: dict[int, tuple[str, ...]] = {}
        # Discourse likes given over the days after their post, only those before today served
        # (the benchmark's nightly then finds recent posts' like counts grown); off, a post's likes
        # are all there as soon as it is
        self.discourse_likes_arrive = discourse_likes_arrive
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---
    def start(self) -> SandboxServer:
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer((self.host, self.port), _Handler, self)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"sandbox-{self.port}", daemon=True
        )
        self._thread.start()
        log.info(
            "sandbox serving %s (seed %s, scale %s) at %s", BRAND_NAME, self.seed, self.scale, self.base_url
        )
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- addresses ---
    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the sandbox is not started; call start() first")
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.port}"

    @property
    def ga4_base_url(self) -> str:
        """GA4_BASE_URL for the sandbox."""
        return f"{self.base_url}/ga4"

    @property
    def google_token_uri(self) -> str:
        """GA4_TOKEN_URI (the service account's token_uri) for the sandbox."""
        return f"{self.base_url}/google/token"

    def today(self) -> date:
        return self._today or datetime.now(timezone.utc).date()

    def describe(self) -> dict:
        return {
            **{api.name: api.describe(self) for api in apis()},
            "brand": BRAND_NAME,
            "seed": self.seed,
            "scale": self.scale,
            "first_date": SANDBOX_START_DATE.isoformat(),
            "ga4": {
                "base_url": self.ga4_base_url,
                "token_uri": self.google_token_uri,
                "property_id": SANDBOX_GA4_PROPERTY_ID,
                "run_report": f"{self.ga4_base_url}/v1beta/properties/{SANDBOX_GA4_PROPERTY_ID}:runReport",
            },
        }

    # --- faults and the request log ---
    def inject_fault(
        self,
        path_contains: str,
        status: int,
        times: int | None = 1,
        body: dict | str | bytes | None = None,
        headers: dict[str, str] | None = None,
        after: int = 0,
        kind: str = "status",
        delay: float = 0.0,
        transform: Callable[[Any], Any] | None = None,
    ) -> Fault:
        """Make the next `times` requests whose path contains `path_contains` fail with `status`.

        Args:
            path_contains: a substring of the request path (with query), e.g. ":runReport".
            status: the HTTP status to answer.
            times: how many matching requests fail; None: every one until `clear_faults()`.
            body: the answer (dict as JSON, str as text); default: Google's error body for the status.
            headers: extra response headers, e.g. {"Retry-After": "3"}.
            after: let this many matching requests pass first (to fail the second page, say).
            kind: "status" (default), "drop" (no answer), "truncate" (half the body),
                "slow" (answer after `delay` seconds) or "transform" (`transform(json)` answered).
        """
        if kind not in ("status", "drop", "truncate", "slow", "transform"):
            raise ValueError(f"unknown fault kind {kind!r}")
        if kind == "transform" and transform is None:
            raise ValueError("a transform fault needs transform=")
        fault = Fault(
            path_contains,
            int(status),
            times,
            body,
            dict(headers or {}),
            after=int(after),
            kind=kind,
            delay=float(delay),
            transform=transform,
        )
        with self._lock:
            self.faults.append(fault)
        return fault

    def inject(
        self, path_contains: str, status: int = 429, times: int | None = 1, headers=None, body=None, after=0
    ) -> Fault:
        """Alias of inject_fault with the spec's argument order."""
        return self.inject_fault(path_contains, status, times=times, body=body, headers=headers, after=after)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.path_contains not in path or (fault.times is not None and fault.hits >= fault.times):
                    continue
                if fault.passed < fault.after:
                    fault.passed += 1
                    continue
                fault.hits += 1
                return fault
        return None

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def requests_to(self, path_contains: str) -> list[RequestRecord]:
        """The recorded requests whose path contains `path_contains`, oldest first."""
        with self._lock:
            return [r for r in self.requests if path_contains in r.path]


@dataclass(frozen=True)
class RemoteSandbox:
    """A sandbox that another process serves (`python -m connectors.sandbox serve`).

    `make demo` runs the sandbox in its own process and points SANDBOX_URL at it, so generating
    the brand's data and loading it run on two cores instead of sharing one interpreter.
    """

    base_url: str
    running: bool = True

    @property
    def ga4_base_url(self) -> str:
        return f"{self.base_url}/ga4"

    @property
    def google_token_uri(self) -> str:
        return f"{self.base_url}/google/token"


_singleton: SandboxServer | None = None
_singleton_lock = threading.Lock()


def ensure_sandbox() -> SandboxServer | RemoteSandbox:
    """The process-wide sandbox, started on first call (SANDBOX_SEED, SANDBOX_SCALE from the environment).

    With SANDBOX_URL set, the sandbox another process serves there is used instead.
    """
    remote = os.environ.get("SANDBOX_URL")
    if remote:
        return RemoteSandbox(remote.rstrip("/"))
    global _singleton
    with _singleton_lock:
        if _singleton is None or not _singleton.running:
            seed_text = os.environ.get("SANDBOX_SEED") or str(DEFAULT_SEED)
            try:
                seed = int(seed_text)
            except ValueError:
                raise ValueError(
                    f"SANDBOX_SEED={seed_text!r} is not an integer; use e.g. SANDBOX_SEED=42"
                ) from None
            scale = os.environ.get("SANDBOX_SCALE") or DEFAULT_SCALE
            try:
                check_scale(scale)
            except ValueError as exc:
                raise ValueError(f"SANDBOX_SCALE: {exc}") from None
            _singleton = SandboxServer(
                seed=seed,
                scale=scale,
                how_heard_parameter=os.environ.get("GA4_HOW_HEARD_PARAMETER") or "how_heard",
                lead_event=os.environ.get("GA4_LEAD_EVENT") or "generate_lead",
            ).start()
        return _singleton
