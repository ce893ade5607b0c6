"""The HTTP client of every connector: a lean HTTP/1.1 session over the standard library's
`http.client` (GA4 and Search Console use it through `connectors.google_auth.GoogleSession`).

Slack asks one `conversations.replies` per thread and Discourse one request per topic, so a
backfill makes hundreds of thousands of calls whose bodies are a few kilobytes. Through `requests`
each call costs ~0.5 ms of client CPU on loopback (request preparation, hooks, adapters, urllib3's
pool and response wrappers); this session costs ~0.1 ms, and reads a large body (a GA4 or Search
Console page) in one piece rather than in 10 KB chunks. What it keeps from `requests`, because
real APIs need it:

- persistent connections per origin, shared safely by threads (each request takes an idle
  connection or opens one; a connection the server closed while idle is noticed before reuse);
- HTTPS verified against certifi's bundle, or REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE when set;
- gzip and deflate answers decoded (a cut compressed body is an error, like a cut plain one);
- redirects of GET followed (at most 5), without the session's credentials when the redirect
  leaves the origin;
- proxies: when HTTP_PROXY / HTTPS_PROXY / ALL_PROXY apply to an origin (NO_PROXY honoured), that
  origin's requests go through `requests` itself, which speaks to proxies.

Wire failures are raised as the standard library raises them (`TimeoutError` for a timeout,
`OSError` or `http.client.HTTPException` for a dropped or cut connection, `zlib.error` for a cut
compressed body); `connectors.http.send` turns them into `TransientError`. The session's `hooks`
take `{"response": [callable]}` as `requests` does (the ingest benchmark records bodies with it).
"""

from __future__ import annotations

import http.client
import json
import os
import select
import ssl
import threading
import zlib
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from requests.structures import CaseInsensitiveDict

MAX_REDIRECTS = 5
MAX_IDLE_PER_ORIGIN = 4
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# The only session headers that follow a redirect to another origin (credentials do not).
_PORTABLE_HEADERS = frozenset({"user-agent", "accept", "accept-encoding"})


class Response:
    """What the connectors read from an answer: status, reason, headers, the whole body."""

    __slots__ = ("status_code", "reason", "headers", "content", "url")

    def __init__(self, status_code: int, reason: str, headers: Mapping[str, str], content: bytes, url: str):
        self.status_code = status_code
        self.reason = reason
        self.headers = headers  # case-insensitive .get(), as http.client's message and requests' dict
        self.content = content
        self.url = url

    @property
    def text(self) -> str:
        """The body as text, in the charset the answer declares (UTF-8 when it declares none)."""
        charset = "utf-8"
        for part in (self.headers.get("Content-Type") or "").split(";")[1:]:
            name, _, value = part.strip().partition("=")
            if name.lower() == "charset" and value:
                charset = value.strip("\"'")
        try:
            return self.content.decode(charset, "replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The parsed JSON body (ValueError when it is not JSON)."""
        return json.loads(self.content)


class HttpSession:
    """Persistent connections and default headers for one API client (see the module docstring)."""

    def __init__(self) -> None:
        self.headers: CaseInsensitiveDict = CaseInsensitiveDict(
            {"User-Agent": "darksocial-warehouse", "Accept": "*/*", "Accept-Encoding": "gzip, deflate"}
        )
        self.hooks: dict[str, list[Callable[[Response], Any]]] = {"response": []}
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._proxied: dict[tuple[str, str, int], bool] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None
        self._requests = None  # a requests.Session for the origins reached through a proxy

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
            fallback, self._requests = self._requests, None
        for connections in idle.values():
            for connection in connections:
                connection.close()
        if fallback is not None:
            fallback.close()

    def __enter__(self) -> HttpSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request and read its whole answer.

        `params` are added to the URL's query and `data` is sent form-encoded, as `requests`
        encodes them: a list value repeats its key, a None value is left out.
        """
        if params:
            query = _encode(params)
            if query:
                url = f"{url}{'&' if urlsplit(url).query else '?'}{query}"
        sent = CaseInsensitiveDict(self.headers)
        body: bytes | None = None
        if data is not None:
            body = _encode(data).encode("ascii")
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        elif json is not None:
            body = _dumps(json)
            sent["Content-Type"] = "application/json"
        if headers:
            sent.update(headers)
        origin = urlsplit(url)
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(method, url, sent, body, timeout)
            location = response.headers.get("Location")
            if response.status_code not in _REDIRECTS or not location or method not in ("GET", "HEAD"):
                break
            url = urljoin(url, location)
            target = urlsplit(url)
            if (target.scheme, target.hostname, target.port) != (origin.scheme, origin.hostname, origin.port):
                sent = CaseInsensitiveDict({k: v for k, v in sent.items() if k.lower() in _PORTABLE_HEADERS})
                origin = target
        for hook in self.hooks["response"]:
            hook(response)
        return response

    # --- one exchange ---
    def _send(
        self, method: str, url: str, headers: CaseInsensitiveDict, body: bytes | None, timeout: float
    ) -> Response:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {parts.scheme}://{parts.netloc}")
        key = (scheme, parts.hostname or "", parts.port or (443 if scheme == "https" else 80))
        if self._through_proxy(key):
            return self._via_requests(method, url, headers, body, timeout)
        target = parts.path or "/"
        if parts.query:
            target = f"{target}?{parts.query}"
        connection = self._connection(key, timeout)
        try:
            connection.request(method, target, body=body, headers=dict(headers))
            answer = connection.getresponse()
            content = answer.read()
            content = _decoded(content, answer.headers.get("Content-Encoding"))
        except BaseException:
            connection.close()
            raise
        if answer.will_close:
            connection.close()
        else:
            self._release(key, connection)
        return Response(answer.status, answer.reason, answer.headers, content, url)

    def _connection(self, key: tuple[str, str, int], timeout: float) -> http.client.HTTPConnection:
        with self._lock:
            idle = self._idle.get(key)
            while idle:
                connection = idle.pop()
                if _dropped(connection):
                    connection.close()
                    continue
                connection.sock.settimeout(timeout)
                connection.timeout = timeout
                return connection
        scheme, host, port = key
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=self._tls_context())
        return http.client.HTTPConnection(host, port, timeout=timeout)

    def _release(self, key: tuple[str, str, int], connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < MAX_IDLE_PER_ORIGIN:
                idle.append(connection)
                return
        connection.close()

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if not bundle:
                import certifi

                bundle = certifi.where()
            self._tls = ssl.create_default_context(cafile=bundle)
        return self._tls

    # --- origins behind a proxy ---
    def _through_proxy(self, key: tuple[str, str, int]) -> bool:
        proxied = self._proxied.get(key)
        if proxied is None:
            import requests.utils

            scheme, host, port = key
            proxies = requests.utils.get_environ_proxies(f"{scheme}://{host}:{port}", no_proxy=None)
            proxied = self._proxied[key] = bool(proxies.get(scheme) or proxies.get("all"))
        return proxied

    def _via_requests(
        self, method: str, url: str, headers: CaseInsensitiveDict, body: bytes | None, timeout: float
    ) -> Response:
        import requests

        with self._lock:
            if self._requests is None:
                self._requests = requests.Session()
            session = self._requests
        answer = session.request(method, url, headers=dict(headers), data=body, timeout=timeout)
        return Response(answer.status_code, answer.reason, answer.headers, answer.content, answer.url)


def _encode(values: Mapping[str, Any]) -> str:
    pairs = values.items() if isinstance(values, Mapping) else values
    return urlencode([(k, v) for k, v in pairs if v is not None], doseq=True)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _decoded(content: bytes, encoding: str | None) -> bytes:
    if not encoding or not content:
        return content
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return _decompress(content, zlib.MAX_WBITS | 16)
    if encoding == "deflate":  # zlib-wrapped, or raw deflate from some servers
        try:
            return _decompress(content, zlib.MAX_WBITS)
        except zlib.error:
            return _decompress(content, -zlib.MAX_WBITS)
    return content


def _decompress(content: bytes, wbits: int) -> bytes:
    decompressor = zlib.decompressobj(wbits)
    out = decompressor.decompress(content) + decompressor.flush()
    if not decompressor.eof:
        raise zlib.error("the compressed body ends early (truncated)")
    return out


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """True when an idle connection cannot be reused: closed, or the server closed it (readable
    while idle means end of stream or an answer nobody asked for)."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)
    except (OSError, ValueError):
        return True
