"""connectors.http_session.HttpSession against real HTTP servers on loopback: what the community and
ads connectors rely on besides the sandbox's own fault modes (covered in each connector's tests)."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import http.client
import ipaddress
import json
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from connectors.http import TransientError, send
from connectors.http_session import MAX_IDLE_PER_ORIGIN, HttpSession, _encode


class _Server:
    """A ThreadingHTTPServer whose answers come from `routes[path](handler) -> (status, headers,
    body)`; every request is recorded as (method, raw path, headers, body, client port)."""

    def __init__(self, routes: dict[str, Callable], tls: ssl.SSLContext | None = None):
        self.routes = routes
        self.seen: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.seen.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                        "port": self.client_address[1],
                    }
                )
                route = server.routes[urlsplit(self.path).path]
                status, headers, payload = route(self)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                if headers.get("X-Close-Silently"):  # close without saying so (a server's idle timeout)
                    self.close_connection = True

            do_GET = do_POST = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers: list[_Server] = []

    def start(routes, tls=None) -> _Server:
        servers.append(_Server(routes, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _json(payload, status=200, **headers):
    return lambda handler: (
        status,
        {"Content-Type": "application/json", **headers},
        json.dumps(payload).encode(),
    )


def test_params_and_form_data_are_encoded_as_requests_encodes_them(serve):
    server = serve({"/get": _json({"ok": True}), "/post": _json({"ok": True})})
    with HttpSession() as session:
        session.headers["Api-Key"] = "k1"
        answer = session.request(
            "GET", f"{server.url}/get?x=1", params={"a": [1, 2], "b": None, "c": "é d"}, timeout=5
        )
        session.request("POST", f"{server.url}/post", data={"level": "ad", "ids": ["7", "8"]}, timeout=5)
    assert answer.status_code == 200 and answer.json() == {"ok": True}
    get, post = server.seen
    assert parse_qsl(urlsplit(get["path"]).query) == [("x", "1"), ("a", "1"), ("a", "2"), ("c", "é d")]
    assert get["headers"]["Api-Key"] == "k1"
    assert post["body"] == b"level=ad&ids=7&ids=8"
    assert post["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


def test_connections_are_reused_and_a_connection_the_server_closed_while_idle_is_replaced(serve):
    server = serve(
        {
            "/keep": _json({"n": 1}),
            "/then-close": _json({"n": 2}, **{"X-Close-Silently": "1"}),
        }
    )
    with HttpSession() as session:
        for path in ("/keep", "/keep", "/then-close", "/keep"):
            assert send(session, "GET", server.url + path, timeout=5).status_code == 200
    ports = [seen["port"] for seen in server.seen]
    assert ports[0] == ports[1] == ports[2]  # one connection for the first three
    assert ports[3] != ports[2]  # the server closed it without a word: a new one, and no error


def test_gzip_answers_are_decoded_and_a_cut_gzip_body_is_retryable(serve):
    payload = json.dumps({"messages": [{"ts": str(i)} for i in range(500)]}).encode()
    packed = gzip.compress(payload)
    server = serve(
        {
            "/whole": lambda h: (200, {"Content-Encoding": "gzip"}, packed),
            "/cut": lambda h: (200, {"Content-Encoding": "gzip"}, packed[: len(packed) // 2]),
        }
    )
    with HttpSession() as session:
        assert send(session, "GET", server.url + "/whole", timeout=5).content == payload
        assert "gzip" in server.seen[0]["headers"]["Accept-Encoding"]
        with pytest.raises(TransientError, match="connection failed: error: .*truncated"):
            send(session, "GET", server.url + "/cut", timeout=5)


def test_a_body_shorter_than_its_content_length_and_a_silent_server_are_retryable(serve):
    def short(handler):
        return 200, {"Content-Length": "1000", "X-Close-Silently": "1"}, b'{"ok": tr'

    def silent(handler):
        threading.Event().wait(2)
        return 200, {}, b"{}"

    server = serve({"/short": short, "/silent": silent})
    with HttpSession() as session:
        with pytest.raises(TransientError, match="connection failed: IncompleteRead"):
            send(session, "GET", server.url + "/short", timeout=5)
        with pytest.raises(TransientError, match=r"no answer within 0.3s \(timeout\)"):
            send(session, "GET", server.url + "/silent", timeout=0.3)
        # the session still works after both
        server.routes["/ok"] = _json({"ok": 1})
        assert send(session, "GET", server.url + "/ok", timeout=5).json() == {"ok": 1}


def test_redirects_are_followed_and_credentials_stay_on_their_origin(serve):
    other = serve({"/landing": _json({"where": "other"})})
    home = serve(
        {
            "/old": lambda h: (301, {"Location": "/new"}, b""),
            "/new": _json({"where": "home"}),
            "/away": lambda h: (302, {"Location": f"{other.url}/landing"}, b""),
        }
    )
    with HttpSession() as session:
        session.headers.update(
            {"Authorization": "Bearer secret-1", "Api-Key": "secret-2", "User-Agent": "ua"}
        )
        assert session.request("GET", home.url + "/old", timeout=5).json() == {"where": "home"}
        assert session.request("GET", home.url + "/away", timeout=5).json() == {"where": "other"}
    assert home.seen[1]["path"] == "/new" and home.seen[1]["headers"]["Authorization"] == "Bearer secret-1"
    landed = other.seen[0]["headers"]
    assert "Authorization" not in landed and "Api-Key" not in landed
    assert landed["User-Agent"] == "ua"


def test_text_uses_the_declared_charset():
    from connectors.http_session import Response

    body = "café".encode("latin-1")
    assert Response(200, "OK", {"Content-Type": "text/plain; charset=ISO-8859-1"}, body, "u").text == "café"
    assert Response(200, "OK", {"Content-Type": "text/plain"}, "café".encode(), "u").text == "café"


def test_an_origin_behind_a_proxy_goes_through_the_proxy(serve, monkeypatch):
    proxy = serve({"/v1/x": _json({"via": "proxy"})})  # routed on the path of the absolute URI it gets
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with HttpSession() as session:
        answer = send(session, "GET", "http://api.example.test/v1/x", params={"q": 1}, timeout=5)
    assert answer.json() == {"via": "proxy"}
    assert proxy.seen[0]["path"] == "http://api.example.test/v1/x?q=1"


def test_threads_share_one_session(serve):
    server = serve({"/n": lambda h: (200, {}, urlsplit(h.path).query.encode())})
    session = HttpSession()
    results: dict[int, bytes] = {}

    def work(thread: int) -> None:
        for i in range(40):
            results[thread * 1000 + i] = send(
                session, "GET", f"{server.url}/n?{thread}-{i}", timeout=5
            ).content

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {t * 1000 + i: f"{t}-{i}".encode() for t in range(6) for i in range(40)}
    assert len(session._idle[("http", "127.0.0.1", int(server.url.rsplit(":", 1)[1]))]) <= MAX_IDLE_PER_ORIGIN
    assert len({seen["port"] for seen in server.seen}) <= 6  # connections reused, not one per request
    session.close()


def test_https_is_verified_against_the_configured_bundle(serve, tmp_path, monkeypatch):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    server = serve({"/secure": _json({"tls": True})}, tls=tls)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    with HttpSession() as session:  # certifi's roots do not know this certificate
        with pytest.raises(TransientError, match="CERTIFICATE_VERIFY_FAILED"):
            send(session, "GET", server.url + "/secure", timeout=5)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_file))
    with HttpSession() as session:
        assert send(session, "GET", server.url + "/secure", timeout=5).json() == {"tls": True}


def test_response_hooks_see_every_answer(serve):
    server = serve({"/a": _json({"a": 1}), "/b": _json({"b": 2})})
    bodies: list[bytes] = []
    with HttpSession() as session:
        session.hooks["response"].append(lambda response: bodies.append(response.content))
        send(session, "GET", server.url + "/a", timeout=5)
        send(session, "GET", server.url + "/b", timeout=5)
    assert [json.loads(b) for b in bodies] == [{"a": 1}, {"b": 2}]


# --- the wire layer against a raw socket server ------------------------------------------------------
#
# ThreadingHTTPServer only answers well-formed HTTP/1.1; these servers answer with the exact bytes a
# test gives, so framing, odd heads and connection reuse are tested byte for byte.

_HOLD = "hold"  # a script's last step: keep the connection open until the client closes it


class _RawServer:
    """A socket server on 127.0.0.1 whose connection i follows `script[i]`: for each step it reads
    one request (head up to a blank line, then a Content-Length body) and answers with the step's
    raw bytes (a list of byte strings is sent in several writes); a step of None closes without
    answering. After the last step the connection is closed, unless that step is `_HOLD`: then the
    server waits for the client to close it (a further request is recorded, then the connection
    closed unanswered). A connection beyond the script is recorded and closed unanswered.
    `connections[i]` lists the raw requests read on connection i."""

    def __init__(self, script: list[list]):
        self.script = script
        self.connections: list[list[bytes]] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.02)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._handlers: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            index = len(self.connections)
            requests: list[bytes] = []
            self.connections.append(requests)
            steps = self.script[index] if index < len(self.script) else []
            handler = threading.Thread(target=self._handle, args=(conn, steps, requests), daemon=True)
            self._handlers.append(handler)
            handler.start()

    @staticmethod
    def _handle(conn: socket.socket, steps: list, requests: list[bytes]) -> None:
        with conn:
            conn.settimeout(5)
            buffer = bytearray()
            try:
                if not steps:  # unscripted: record what comes, answer nothing
                    request = _read_request(conn, buffer)
                    if request is not None:
                        requests.append(request)
                    return
                for step in steps:
                    request = _read_request(conn, buffer)
                    if request is None:
                        return
                    requests.append(request)
                    if step is None:
                        return
                    if step == _HOLD:  # a request on a connection that should not be reused
                        return
                    parts = step if isinstance(step, list) else [step]
                    for i, part in enumerate(parts):
                        if i:
                            time.sleep(0.005)  # separate writes, so the client reads them separately
                        conn.sendall(part)
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._acceptor.join(5)
        for handler in self._handlers:
            handler.join(5)
        self.listener.close()


def _read_request(conn: socket.socket, buffer: bytearray) -> bytes | None:
    """One request from `conn` (None when the client closes first); bytes after it stay in
    `buffer`."""
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        data = conn.recv(65536)
        if not data:
            return None
        buffer += data
    head = bytes(buffer[: end + 4])
    found = re.search(rb"(?im)^content-length:[ \t]*(\d+)[ \t]*\r$", head)
    size = end + 4 + (int(found.group(1)) if found else 0)
    while len(buffer) < size:
        data = conn.recv(65536)
        if not data:
            return None
        buffer += data
    request = bytes(buffer[:size])
    del buffer[:size]
    return request


def _parse_request(raw: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    """(request line, [(name, value)] as sent, body) of a recorded request."""
    head, _, body = raw.partition(b"\r\n\r\n")
    line, *fields = head.decode("iso-8859-1").split("\r\n")
    return line, [tuple(field.split(": ", 1)) for field in fields], body


@pytest.fixture
def raw():
    servers: list[_RawServer] = []

    def start(*script: list) -> _RawServer:
        servers.append(_RawServer(list(script)))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _ok(body: bytes = b"ok", *extra: str) -> bytes:
    head = "".join(f"{line}\r\n" for line in extra)
    return f"HTTP/1.1 200 OK\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def test_a_chunked_answer_is_read_whole_and_its_connection_reused(raw):
    chunked = [
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhel",
        b"lo\r\n1\r\n \r\nA\r\n0123456789\r\n",
        b"0\r\nX-Trailer: t\r\n\r\n",
    ]
    server = raw([chunked, _ok(b"second")])
    with HttpSession() as session:
        first = session.request("GET", server.url + "/a", timeout=5)
        second = session.request("GET", server.url + "/b", timeout=5)
    assert (first.status_code, first.content) == (200, b"hello 0123456789")
    assert first.headers["Content-Type"] == "text/plain"
    assert second.content == b"second"
    assert [len(requests) for requests in server.connections] == [2]
    assert [_parse_request(r)[0] for r in server.connections[0]] == ["GET /a HTTP/1.1", "GET /b HTTP/1.1"]


def test_an_answer_without_length_is_read_until_close_and_the_next_request_opens_a_connection(raw):
    until_close = [b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nread until ", b"the end"]
    server = raw([until_close], [_ok(b"fresh")])
    with HttpSession() as session:
        first = session.request("GET", server.url + "/old", timeout=5)
        second = session.request("GET", server.url + "/new", timeout=5)
    assert (first.status_code, first.content) == (200, b"read until the end")
    assert second.content == b"fresh"
    assert [len(requests) for requests in server.connections] == [1, 1]


def test_a_head_with_bare_lf_line_endings_is_parsed(raw):
    server = raw([b"HTTP/1.1 200 OK\nContent-Length: 2\nX-Old: yes\n\nok", _ok(b"next")])
    with HttpSession() as session:
        answer = session.request("GET", server.url + "/", timeout=5)
        after = session.request("GET", server.url + "/", timeout=5)
    assert (answer.status_code, answer.reason, answer.content) == (200, "OK", b"ok")
    assert answer.headers["X-Old"] == "yes"
    assert after.content == b"next"
    assert [len(requests) for requests in server.connections] == [2]  # nothing was left unread


def test_interim_1xx_answers_are_skipped(raw):
    server = raw(
        [
            [
                b"HTTP/1.1 100 Continue\r\n\r\n",
                b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"
                b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\nX-Final: 1\r\n\r\nreal",
            ],
            _ok(b"next"),
        ]
    )
    with HttpSession() as session:
        answer = session.request("POST", server.url + "/", json={"a": 1}, timeout=5)
        after = session.request("GET", server.url + "/", timeout=5)
    assert (answer.status_code, answer.reason, answer.content) == (201, "Created", b"real")
    assert answer.headers.get("X-Final") == "1" and "Link" not in answer.headers
    assert after.content == b"next"
    assert [len(requests) for requests in server.connections] == [2]


def test_repeated_headers_are_joined_and_folded_lines_continue_their_header(raw):
    server = raw(
        [
            b"HTTP/1.1 200 OK\r\nX-Thing: a\r\nContent-Length: 2\r\nx-thing: b\r\n"
            b"X-Folded: first\r\n   second\r\n\tthird\r\nX-Thing: c\r\n\r\nok"
        ]
    )
    with HttpSession() as session:
        headers = session.request("GET", server.url + "/", timeout=5).headers
    assert headers["X-Thing"] == "a, b, c"
    assert headers.get("x-thing") == "a, b, c"
    assert "X-THING" in headers and "x-thing" in headers
    assert headers["X-FOLDED"] == "first second third"
    assert "X-Missing" not in headers and headers.get("X-Missing", "none") == "none"
    with pytest.raises(KeyError):
        headers["X-Missing"]


def test_head_204_and_304_answers_have_no_body_and_the_connection_stays_usable(raw):
    server = raw(
        [
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1234\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 999\r\n\r\n',
            _ok(b"next"),
        ]
    )
    with HttpSession() as session:
        head = session.request("HEAD", server.url + "/h", timeout=5)
        empty = session.request("GET", server.url + "/e", timeout=5)
        same = session.request("GET", server.url + "/s", timeout=5)
        after = session.request("GET", server.url + "/n", timeout=5)
    assert (head.status_code, head.content, head.headers["Content-Length"]) == (200, b"", "1234")
    assert (empty.status_code, empty.content) == (204, b"")
    assert (same.status_code, same.content) == (304, b"")
    assert (after.status_code, after.content) == (200, b"next")
    assert [len(requests) for requests in server.connections] == [4]
    assert _parse_request(server.connections[0][0])[0] == "HEAD /h HTTP/1.1"


@pytest.mark.parametrize(
    "closing",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nConnection: Upgrade, Close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",  # HTTP/1.0 without keep-alive
    ],
)
def test_an_answer_that_closes_its_connection_is_not_reused(raw, closing):
    # the server keeps the first connection open: only the client's reading of the answer closes it
    server = raw([closing, _HOLD], [_ok(b"fresh")])
    with HttpSession() as session:
        assert session.request("GET", server.url + "/", timeout=5).content == b"ok"
        assert session.request("GET", server.url + "/", timeout=5).content == b"fresh"
    assert [len(requests) for requests in server.connections] == [1, 1]


def test_an_http_1_0_keep_alive_answer_is_reused(raw):
    server = raw([b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", _ok(b"again")])
    with HttpSession() as session:
        assert session.request("GET", server.url + "/", timeout=5).content == b"ok"
        assert session.request("GET", server.url + "/", timeout=5).content == b"again"
    assert [len(requests) for requests in server.connections] == [2]


def test_a_body_shorter_than_its_content_length_raises_incomplete_read(raw):
    short = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"
    cut_chunk = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n01234"
    server = raw([short], [cut_chunk], [short], [_ok(b"fine")])
    with HttpSession() as session:
        with pytest.raises(http.client.IncompleteRead) as cut:
            session.request("GET", server.url + "/", timeout=5)
        assert (cut.value.partial, cut.value.expected) == (b"short", 95)
        with pytest.raises(http.client.IncompleteRead):
            session.request("GET", server.url + "/", timeout=5)
        with pytest.raises(
            TransientError,
            match=r"^connection failed: IncompleteRead: IncompleteRead\(5 bytes read, 95 more expected\)$",
        ):
            send(session, "GET", server.url + "/", timeout=5)
        assert session.request("GET", server.url + "/", timeout=5).content == b"fine"
    assert [len(requests) for requests in server.connections] == [1, 1, 1, 1]


@pytest.mark.parametrize(
    "garbled, line",
    [
        (b"HELLO\r\n\r\n", "HELLO"),
        (b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 20 OK"),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", "HTTP/1.1 2x0 OK"),
        (b"ICY 200 OK\r\n\r\n", "ICY 200 OK"),
    ],
)
def test_a_garbled_status_line_raises_bad_status_line(raw, garbled, line):
    server = raw([garbled], [garbled])
    with HttpSession() as session:
        with pytest.raises(http.client.BadStatusLine) as bad:
            session.request("GET", server.url + "/", timeout=5)
        assert bad.value.line == line
        with pytest.raises(TransientError, match=f"^connection failed: BadStatusLine: {re.escape(line)}$"):
            send(session, "GET", server.url + "/", timeout=5)


def test_a_server_that_closes_without_answering_raises_remote_disconnected(raw):
    server = raw([None], [None], [b"HTTP/1.1 200 OK\r\nContent-Le"], [_ok()])
    with HttpSession() as session:
        with pytest.raises(http.client.RemoteDisconnected):
            session.request("GET", server.url + "/", timeout=5)
        with pytest.raises(TransientError, match="^connection failed: RemoteDisconnected: "):
            send(session, "GET", server.url + "/", timeout=5)
        with pytest.raises(http.client.IncompleteRead):  # a head cut short is not "no answer"
            session.request("GET", server.url + "/", timeout=5)
        assert session.request("GET", server.url + "/", timeout=5).content == b"ok"
    assert [len(requests) for requests in server.connections] == [1, 1, 1, 1]


def test_a_large_body_arrives_byte_identical(raw):
    body = random.Random(7).randbytes(3 * 1024 * 1024 + 17)
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    writes = [head + body[:1000], body[1000:700_000], body[700_000:2_000_001], body[2_000_001:]]
    server = raw([writes, _ok(b"after")])
    with HttpSession() as session:
        answer = session.request("GET", server.url + "/big", timeout=5)
        after = session.request("GET", server.url + "/", timeout=5)
    assert len(answer.content) == len(body)
    assert hashlib.sha256(answer.content).hexdigest() == hashlib.sha256(body).hexdigest()
    assert after.content == b"after"
    assert [len(requests) for requests in server.connections] == [2]


def test_the_request_bytes_on_the_wire(raw):
    server = raw([_ok()] * 6)
    host = ("Host", f"127.0.0.1:{server.port}")
    defaults = [
        ("User-Agent", "darksocial-warehouse"),
        ("Accept", "*/*"),
        ("Accept-Encoding", "gzip, deflate"),
    ]
    with HttpSession() as session:
        session.headers["Api-Key"] = "k1"
        session.request("GET", server.url + "/p?a=1", params={"b": "x y"}, timeout=5)
        session.request("POST", server.url + "/j", json={"a": 1, "b": [1, "é"]}, timeout=5)
        session.request(
            "GET",
            server.url + "/o",
            headers={"user-agent": "mine", "API-KEY": None, "X-Extra": "e"},
            timeout=5,
        )
        session.request("POST", server.url + "/empty", timeout=5)
        session.request("GET", server.url + "/h", headers={"host": "api.example.test"}, timeout=5)
        session.request("GET", server.url + "/again", timeout=5)
    assert [len(requests) for requests in server.connections] == [6]
    get, post, override, empty, other_host, again = map(_parse_request, server.connections[0])

    assert get[0] == "GET /p?a=1&b=x+y HTTP/1.1"
    assert sorted(get[1]) == sorted([host, *defaults, ("Api-Key", "k1")]) and get[2] == b""

    assert post[0] == "POST /j HTTP/1.1"
    assert post[2] == b'{"a":1,"b":[1,"\\u00e9"]}'
    assert sorted(post[1]) == sorted(
        [
            host,
            *defaults,
            ("Api-Key", "k1"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(post[2]))),
        ]
    )

    # the request's headers replace the session's of the same name, whatever its case; None drops one
    assert sorted(override[1]) == sorted(
        [
            host,
            ("user-agent", "mine"),
            ("Accept", "*/*"),
            ("Accept-Encoding", "gzip, deflate"),
            ("X-Extra", "e"),
        ]
    )

    assert empty[0] == "POST /empty HTTP/1.1" and ("Content-Length", "0") in empty[1]
    assert [value for name, value in other_host[1] if name.lower() == "host"] == ["api.example.test"]
    # the session's own headers are as they were
    assert sorted(again[1]) == sorted([host, *defaults, ("Api-Key", "k1")])


def test_a_header_value_with_a_line_break_is_refused_without_echoing_it(raw):
    server = raw([_ok()])
    with HttpSession() as session:
        with pytest.raises(ValueError) as own:
            session.request(
                "GET", server.url + "/", headers={"X-Token": "tok-S3CRET\r\nX-Evil: 1"}, timeout=5
            )
        assert "X-Token" in str(own.value) and "S3CRET" not in str(own.value)
        assert "Evil" not in str(own.value)

        session.headers["Authorization"] = "Bearer sess-S3CRET\nX-Evil: 1"
        with pytest.raises(ValueError) as default:
            session.request("GET", server.url + "/", timeout=5)
        assert "Authorization" in str(default.value) and "S3CRET" not in str(default.value)
        assert "S3CRET" not in repr(session.headers)

        del session.headers["Authorization"]
        assert session.request("GET", server.url + "/", timeout=5).content == b"ok"
    assert [len(requests) for requests in server.connections] == [1]  # nothing sent before
    assert b"S3CRET" not in server.connections[0][0] and b"Evil" not in server.connections[0][0]


def test_session_headers_are_rendered_again_after_a_change(raw):
    server = raw([_ok()] * 6)
    with HttpSession() as session:
        session.headers["X-A"] = "1"
        session.request("GET", server.url + "/", timeout=5)
        session.headers["X-A"] = "2"
        session.request("GET", server.url + "/", timeout=5)
        session.request("GET", server.url + "/", headers={"X-A": "own"}, timeout=5)
        session.request("GET", server.url + "/", timeout=5)
        session.headers["x-a"] = "3"  # the same header, named in another case
        session.request("GET", server.url + "/", timeout=5)
        del session.headers["X-A"]
        session.request("GET", server.url + "/", timeout=5)
    seen = [
        [(name, value) for name, value in _parse_request(request)[1] if name.lower() == "x-a"]
        for request in server.connections[0]
    ]
    assert seen == [
        [("X-A", "1")],
        [("X-A", "2")],
        [("X-A", "own")],
        [("X-A", "2")],
        [("x-a", "3")],
        [],
    ]


@pytest.mark.parametrize(
    "values",
    [
        {"q": "a b&c=d/e?f#g+h%", "plain": "id_1.2~x-y"},
        {"u": "é 日本", "ключ": "значение"},
        {"b": b"\x00\xff raw", b"bk": "v"},
        {"i": 1, "neg": -5, "big": 10**20, "zero": 0},
        {"f": 1.5, "tiny": 1e-7, "inf": float("inf")},
        {"t": True, "f": False},
        {"l": [1, "a b", b"x&", 2.5], "t": ("p", "q r"), "empty": []},
        {"none": None, "k": "v", "blank": ""},
        [("a", "1"), ("a", "2"), ("b", None), ("c d", "é")],
        {1: "int key", "a b": "k"},
        {},
    ],
)
def test_encode_matches_urlencode_of_the_values_that_are_not_none(values):
    pairs = values.items() if isinstance(values, dict) else values
    assert _encode(values) == urlencode([(k, v) for k, v in pairs if v is not None], doseq=True)


@pytest.mark.parametrize(
    "values",
    [{"l": [None, 1]}, {"s": {"a"}}, {"r": range(3)}, {"t": ("a b", None, "é")}],
)
def test_encode_expands_iterables_and_drops_none_items_as_requests_does(values):
    import requests

    expected = requests.Request("GET", "http://h/", params=values).prepare().url.split("?", 1)[1]
    assert _encode(values) == expected


def test_non_ascii_and_spaces_in_a_url_are_percent_encoded_as_requests_does(raw):
    server = raw([_ok(b"1"), _ok(b"2"), _HOLD])
    with HttpSession() as session:
        session.request("GET", server.url + "/café?q=é ü", timeout=5)
        session.request("GET", server.url + "/日本/a b\r\nX-Injected: 1", timeout=5)
    lines = [_parse_request(request)[0] for request in server.connections[0][:2]]
    assert lines == [
        "GET /caf%C3%A9?q=%C3%A9%20%C3%BC HTTP/1.1",
        "GET /%E6%97%A5%E6%9C%AC/a%20b%0D%0AX-Injected:%201 HTTP/1.1",
    ]
    assert all(name != "X-Injected" for name, _ in _parse_request(server.connections[0][1])[1])


def test_a_head_mixing_crlf_and_bare_lf_endings_is_parsed(raw):
    server = raw([b"HTTP/1.1 200 OK\r\nContent-Length: 2\nX-Mixed: yes\r\n\nok", _ok(b"next")])
    with HttpSession() as session:
        answer = session.request("GET", server.url + "/", timeout=5)
        after = session.request("GET", server.url + "/", timeout=5)
    assert (answer.status_code, answer.content, answer.headers["x-mixed"]) == (200, b"ok", "yes")
    assert after.content == b"next"
    assert [len(requests) for requests in server.connections] == [2]
