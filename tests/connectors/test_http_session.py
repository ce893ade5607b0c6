"""connectors.http_session.HttpSession against real HTTP servers on loopback: what the community and
ads connectors rely on besides the sandbox's own fault modes (covered in each connector's tests)."""

from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import json
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from connectors.http import TransientError, send
from connectors.http_session import MAX_IDLE_PER_ORIGIN, HttpSession


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
