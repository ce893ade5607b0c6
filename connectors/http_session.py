"""The HTTP client of every connector: a lean HTTP/1.1 session on sockets (GA4 and Search Console
use it through `connectors.google_auth.GoogleSession`).

Slack asks one `conversations.replies` per thread and Discourse one request per topic, so a
backfill makes hundreds of thousands of calls whose bodies are a few kilobytes. Through `requests`
each call costs ~0.5 ms of client CPU on loopback (request preparation, hooks, adapters, urllib3's
pool and response wrappers), through the standard library's `http.client` ~0.15 ms (half of it
parsing the header block with the e-mail parser). This session writes each request in one send
and reads the answer into one buffer, framed by Content-Length, chunked transfer coding or the end
of the connection: ~0.03 ms a call (a bare socket exchange with no parsing: ~0.02 ms), and a
large body (a GA4 or Search Console page) is received straight into one allocation. The session's
own headers are rendered once until they change. What it keeps from `requests`, because real
APIs need it:

- persistent connections per origin, shared safely by threads (each request takes an idle
  connection or opens one; a connection the server closed while idle is noticed before reuse);
- HTTPS verified against certifi's bundle, or REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE when set;
- gzip and deflate answers decoded (a cut compressed body is an error, like a cut plain one);
- redirects of GET followed (at most 5), without the session's credentials when the redirect
  leaves the origin;
- proxies: when HTTP_PROXY / HTTPS_PROXY / ALL_PROXY apply to an origin (NO_PROXY honoured), that
  origin's requests go through `requests` itself, which speaks to proxies;
- URLs and queries as requests writes them: non-ASCII text, spaces and control characters in a
  URL percent-encoded (UTF-8), internationalised host names in IDNA, `params` and form `data`
  encoded with iterables repeating their key and None left out.

Wire failures are raised as the standard library's classes (`TimeoutError` for a timeout,
`OSError` or `http.client.HTTPException` (RemoteDisconnected, IncompleteRead, BadStatusLine) for a
dropped, cut or garbled answer, `zlib.error` for a cut compressed body); `connectors.http.send`
turns them into `TransientError`. The session's `hooks` take `{"response": [callable]}` as
`requests` does (the ingest benchmark records bodies with it).
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import re
import select
import socket
import ssl
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any, NamedTuple
from urllib.parse import quote, quote_plus, urljoin, urlsplit, urlunsplit

MAX_REDIRECTS = 5
MAX_IDLE_PER_ORIGIN = 10  # as requests' default pool size: more threads than this reconnect
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# The only session headers that follow a redirect to another origin (credentials do not).
_PORTABLE_HEADERS = frozenset({"user-agent", "accept", "accept-encoding"})


class Response:
    """What the connectors read from an answer: status, reason, headers, the whole body."""

    __slots__ = ("status_code", "reason", "headers", "content", "url")

    def __init__(self, status_code: int, reason: str, headers: Mapping[str, str], content: bytes, url: str):
        self.status_code = status_code
        self.reason = reason
        self.headers = headers  # case-insensitive .get() and [] (Headers, or requests' dict via a proxy)
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


class SessionHeaders(MutableMapping):
    """A session's default headers: case-insensitive names, kept as given for the wire."""

    def __init__(self, values: Mapping[str, Any] | None = None):
        self.store: dict[str, tuple[str, Any]] = {}  # lower-cased name -> (name as given, value)
        self._block: tuple[str | None, str] | None = None  # header_block(store), until a change
        if values:
            self.update(values)

    def block(self) -> tuple[str | None, str]:
        """`header_block` of these headers, rendered once until they change."""
        if self._block is None:
            self._block = header_block(self.store)
        return self._block

    def __setitem__(self, name: str, value: Any) -> None:
        self.store[name.lower()] = (name, value)
        self._block = None

    def __getitem__(self, name: str) -> Any:
        return self.store[name.lower()][1]

    def __delitem__(self, name: str) -> None:
        del self.store[name.lower()]
        self._block = None

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self.store.values())

    def __len__(self) -> int:
        return len(self.store)

    def __repr__(self) -> str:  # names only: values may be credentials
        return f"SessionHeaders({sorted(self)!r})"


class HttpSession:
    """Persistent connections and default headers for one API client (see the module docstring)."""

    def __init__(self) -> None:
        self.headers = SessionHeaders(
            {"User-Agent": "darksocial-warehouse", "Accept": "*/*", "Accept-Encoding": "gzip, deflate"}
        )
        self.hooks: dict[str, list[Callable[[Response], Any]]] = {"response": []}
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
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
        encodes them (`_encode`): an iterable value repeats its key, None is left out.
        """
        where = _where(url)
        query = where.query
        if params:
            extra = _encode(params)
            if extra:
                query = f"{query}&{extra}" if query else extra
        # the request's own headers over the session's: lower-cased name -> (name, value)
        own: dict[str, tuple[str, Any]] | None = None
        body: bytes | None = None
        if data is not None:
            body = _encode(data).encode("ascii")
            own = {"content-type": ("Content-Type", "application/x-www-form-urlencoded")}
        elif json is not None:
            body = _dumps(json)
            own = {"content-type": ("Content-Type", "application/json")}
        if headers:
            own = own or {}
            for name, value in headers.items():
                own[name.lower()] = (name, value)
        block = self.headers.block() if own is None else header_block({**self.headers.store, **own})
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(method, where, query, block, body, timeout)
            location = response.headers.get("Location")
            if response.status_code not in _REDIRECTS or not location or method not in ("GET", "HEAD"):
                break
            target = _where(urljoin(response.url, location))
            if target.key != where.key:  # credentials stay with their origin
                sent = {**self.headers.store, **(own or {})}
                block = header_block({k: v for k, v in sent.items() if k in _PORTABLE_HEADERS})
            where, query = target, target.query
        for hook in self.hooks["response"]:
            hook(response)
        return response

    # --- one exchange ---
    def _send(
        self,
        method: str,
        where: _Where,
        query: str,
        block: tuple[str | None, str],
        body: bytes | None,
        timeout: float,
    ) -> Response:
        url = f"{where.base}?{query}" if query else where.base
        host, lines = block
        if self._through_proxy(where.key):
            sent = dict(line.split(": ", 1) for line in lines.split("\r\n") if line)
            return self._via_requests(method, url, sent, body, timeout)
        target = f"{where.path}?{query}" if query else where.path
        if body is not None:
            lines = f"{lines}Content-Length: {len(body)}\r\n"
        elif method in ("POST", "PUT", "PATCH"):
            lines = f"{lines}Content-Length: 0\r\n"
        head = f"{method} {target} HTTP/1.1\r\nHost: {host or where.host}\r\n{lines}\r\n".encode("iso-8859-1")
        connection = self._connection(where.key, timeout)
        try:
            status, reason, answer_headers, content, reusable = connection.exchange(method, head, body)
            encoding = dict.get(answer_headers, "content-encoding")
            if encoding:
                content = _decoded(content, encoding)
        except BaseException:
            connection.close()
            raise
        if reusable:
            self._release(where.key, connection)
        else:
            connection.close()
        return Response(status, reason, answer_headers, content, url)

    def _connection(self, key: tuple[str, str, int], timeout: float) -> _Connection:
        with self._lock:
            idle = self._idle.get(key)
            while idle:
                connection = idle.pop()
                if _dropped(connection):
                    connection.close()
                    continue
                connection.sock.settimeout(timeout)
                return connection
        scheme, host, port = key
        sock = socket.create_connection((host, port), timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                sock = self._tls_context().wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)

    def _release(self, key: tuple[str, str, int], connection: _Connection) -> None:
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
                import requests.certs  # certifi's bundle, as requests verifies with

                bundle = requests.certs.where()
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
        self, method: str, url: str, headers: dict[str, Any], body: bytes | None, timeout: float
    ) -> Response:
        import requests

        with self._lock:
            if self._requests is None:
                self._requests = requests.Session()
            session = self._requests
        answer = session.request(method, url, headers=headers, data=body, timeout=timeout)
        return Response(answer.status_code, answer.reason, answer.headers, answer.content, answer.url)


class _Where(NamedTuple):
    """Where a URL sends a request (parsed once per URL: connectors call a few URLs many times)."""

    key: tuple[str, str, int]  # (scheme, host, port): the idle connections' key
    host: str  # the Host header
    path: str
    query: str
    base: str  # the URL without its query (and fragment)


def _where(url: str) -> _Where:
    # the origin is parsed once (cached); the path and query split here: Discourse asks for a new
    # path per topic, so caching whole URLs would miss
    start = url.find("://")
    slash = url.find("/", start + 3) if start > 0 else -1
    if slash < 0 or "?" in url[:slash] or "#" in url[:slash]:
        return _where_parsed(url)
    key, host = _origin(url[:slash])
    path, _, query = _requoted(url[slash:].partition("#")[0]).partition("?")
    return _Where(key, host, path, query, url[:slash] + path)


@functools.lru_cache(maxsize=64)
def _origin(origin: str) -> tuple[tuple[str, str, int], str]:
    where = _where_parsed(origin + "/")
    return where.key, where.host


def _where_parsed(url: str) -> _Where:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {parts.scheme}://{parts.netloc}")
    port = parts.port or (443 if scheme == "https" else 80)
    netloc = parts.netloc
    if not netloc.isascii():  # an internationalised domain name, as the Host header carries it
        netloc = netloc.encode("idna").decode("ascii")
    path, query = _requoted(parts.path), _requoted(parts.query)
    base = urlunsplit((scheme, netloc, path, "", ""))
    host = netloc.rpartition("@")[2]
    return _Where((scheme, parts.hostname or "", port), host, path or "/", query, base)


def _requoted(text: str) -> str:
    """A URL's path or query with non-ASCII text, spaces and control characters as UTF-8
    percent-escapes (as requests does); what a request line can carry is left as it is."""
    if text.isascii() and not _UNSAFE_TARGET.search(text):
        return text
    return quote(text, safe=_URL_SAFE)


def _encode(values: Mapping[str, Any]) -> str:
    """The query (or form body) as `requests` encodes it: a value that is iterable and not text
    repeats its key once per item, None values and items are left out, text is quoted as
    `quote_plus` quotes it (what needs no quoting, such as ids and timestamps, is not touched)."""
    pairs = values.items() if isinstance(values, Mapping) else values
    out = []
    for key, value in pairs:
        if value is None:
            continue
        name = key if type(key) is str and _unreserved(key) else _quote(key)
        if type(value) is str and _unreserved(value):
            out.append(f"{name}={value}")
        elif isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            out.append(f"{name}={_quote(value)}")
        else:
            out.extend(f"{name}={_quote(item)}" for item in value if item is not None)
    return "&".join(out)


# what a URL's path and query keep as they are when other characters are percent-encoded: the
# reserved characters and "%" (an escape already made), as requests' requote_uri leaves them
_URL_SAFE = "!#$%&'()*+,/:;=?@[]~"
_unreserved = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch  # what quote_plus leaves as it is


def _quote(value: Any) -> str:
    if isinstance(value, bytes):
        return quote_plus(value)
    text = value if isinstance(value, str) else str(value)
    return text if _unreserved(text) else quote_plus(text)


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


def header_block(headers: Mapping[str, tuple[str, Any]]) -> tuple[str | None, str]:
    """(the Host header when one is given, the other headers as "Name: value" lines, each ending in
    CRLF) from lower-cased name -> (name, value); a None value leaves the header out.

    Raises:
        ValueError: a value holds a line break (it would end the header early).
    """
    host = None
    lines = []
    for key, (name, value) in headers.items():
        if value is None:
            continue
        value = str(value)
        if "\r" in value or "\n" in value:  # never echo the value: it may be a credential
            raise ValueError(f"the {name} header holds a line break")
        if key == "host":
            host = value
        else:
            lines.append(f"{name}: {value}\r\n")
    return host, "".join(lines)


def _dropped(connection: _Connection) -> bool:
    """True when an idle connection cannot be reused: closed, or the server closed it (readable
    while idle means end of stream or an answer nobody asked for)."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        if connection.poller is not None:
            return bool(connection.poller.poll(0))
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)
    except (OSError, ValueError):
        return True


# --- the wire: one HTTP/1.1 exchange on a socket ----------------------------------------------------
#
# http.client parses every answer's header block with the standard library's e-mail parser (about
# half of a small call's client CPU). Answers here are read from the socket into one buffer and
# framed by Content-Length, chunked transfer coding, or the end of the connection.

_RECV_SIZE = 65536
_MAX_HEAD_BYTES = 65536  # status line + header block, as http.client's per-line limit
_MAX_HEADERS = 100  # as http.client
_UNSAFE_TARGET = re.compile(r"[\x00-\x20\x7f]")  # control characters and spaces end a request line early


class Headers(dict):
    """An answer's headers: names lower-cased, `.get()` and `[]` case-insensitive; a header sent
    more than once has its values joined with ", " (RFC 9110, 5.3)."""

    __slots__ = ()

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return dict.get(self, name.lower(), default)


class _Connection:
    """A socket to one origin and the bytes read from it but not yet used."""

    __slots__ = ("sock", "buffer", "poller")

    def __init__(self, sock: socket.socket):
        self.sock: socket.socket | None = sock
        self.buffer = bytearray()
        self.poller = None  # select.poll() watching the socket for input, where poll exists
        if hasattr(select, "poll"):
            self.poller = select.poll()
            self.poller.register(sock, select.POLLIN)

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()

    def exchange(self, method: str, head: bytes, body: bytes | None) -> tuple[int, str, Headers, bytes, bool]:
        """Send one request, read its answer: (status, reason, headers, body, reusable)."""
        sock = self.sock
        if sock is None:
            raise http.client.NotConnected("the connection is closed")
        sock.sendall(head + body if body else head)
        while True:
            status, reason, headers, version = self._head()
            if not 100 <= status < 200 or status == 101:
                break  # 1xx answers before the final one are informational
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            content, framed = b"", True
        elif "chunked" in (dict.get(headers, "transfer-encoding") or "").lower():
            content, framed = self._chunked(), True
        elif (length := dict.get(headers, "content-length")) is not None:
            content, framed = self._exact(_content_length(length)), True
        else:
            content, framed = self._until_closed(), False
        tokens = (dict.get(headers, "connection") or "").lower()
        persistent = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
        return status, reason, headers, content, framed and persistent and not self.buffer

    # --- reading ---
    def _fill(self) -> bool:
        chunk = self.sock.recv(_RECV_SIZE)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    def _head(self) -> tuple[int, str, Headers, str]:
        buffer = self.buffer
        while True:
            # the head ends at its first empty line: CRLF CRLF, or a bare LF from an old server
            end = buffer.find(b"\r\n\r\n")
            bare = buffer.find(b"\n\n", 0, end if end >= 0 else len(buffer))
            if bare >= 0:
                end, skip = bare, 2
                break
            if end >= 0:
                skip = 4
                break
            if len(buffer) > _MAX_HEAD_BYTES:
                raise http.client.LineTooLong("header block")
            if not self._fill():
                if not buffer:
                    raise http.client.RemoteDisconnected("the server closed the connection without an answer")
                raise http.client.IncompleteRead(bytes(buffer))
        text = buffer[:end].decode("iso-8859-1")
        del buffer[: end + skip]
        if skip == 4 and text.count("\n") == text.count("\r\n"):
            lines = text.split("\r\n")
        else:  # bare LF endings, alone or mixed with CRLF
            lines = [line.rstrip("\r") for line in text.split("\n")]
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/") or len(code) != 3 or not code.isdigit():
            raise http.client.BadStatusLine(lines[0][:200])
        if len(lines) > _MAX_HEADERS + 1:
            raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")
        headers = Headers()
        put, get = dict.__setitem__, dict.get
        name = ""
        for line in lines[1:]:
            if line[:1] in (" ", "\t"):  # an obsolete folded continuation of the previous header
                if name:
                    put(headers, name, f"{get(headers, name)} {line.strip()}")
                continue
            name, colon, value = line.partition(":")
            name = name.strip().lower()
            if not colon or not name:
                name = ""
                continue
            value = value.strip()
            earlier = get(headers, name)
            put(headers, name, value if earlier is None else f"{earlier}, {value}")
        return int(code), reason.strip(), headers, version

    def _exact(self, size: int) -> bytes:
        buffer = self.buffer
        if len(buffer) >= size:
            content = bytes(buffer[:size])
            del buffer[:size]
            return content
        # a large body: one allocation, received straight into it
        content = bytearray(size)
        got = len(buffer)
        content[:got] = buffer
        buffer.clear()
        view = memoryview(content)
        while got < size:
            n = self.sock.recv_into(view[got:], size - got)
            if not n:
                raise http.client.IncompleteRead(bytes(content[:got]), size - got)
            got += n
        return bytes(content)

    def _line(self) -> bytes:
        buffer = self.buffer
        searched = 0
        while (end := buffer.find(b"\n", searched)) < 0:
            if len(buffer) > _MAX_HEAD_BYTES:
                raise http.client.LineTooLong("chunk size line")
            searched = len(buffer)
            if not self._fill():
                raise http.client.IncompleteRead(bytes(buffer))
        line = bytes(buffer[: end + 1])
        del buffer[: end + 1]
        return line

    def _chunked(self) -> bytes:
        parts = []
        while True:
            line = self._line()
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise http.client.HTTPException(f"invalid chunk size line {line[:40]!r}") from None
            if size == 0:
                while self._line().strip():  # trailer fields, then the empty line
                    pass
                return b"".join(parts)
            parts.append(self._exact(size))
            self._line()  # the CRLF after the chunk's data

    def _until_closed(self) -> bytes:
        while self._fill():
            pass
        content = bytes(self.buffer)
        self.buffer.clear()
        return content


def _content_length(value: str) -> int:
    # a length repeated by a proxy ("12, 12") is one length; anything else is not a length
    lengths = {v.strip() for v in value.split(",")}
    if len(lengths) != 1 or not (text := lengths.pop()).isdigit():
        raise http.client.HTTPException(f"invalid Content-Length {value[:40]!r}")
    return int(text)
