"""connectors.http.ApiSession (requests) against real HTTP servers on loopback: what the connectors
keep from requests besides the retry loop (covered in test_http_retries.py): credentials stay on
their origin across redirects, proxies and the CA bundle come from the environment, a cut body is
retryable, and the threads of a client share one pool."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from connectors.discourse import DiscourseClient, DiscourseConfig
from connectors.http import ApiSession, TransientError, send


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


def test_credentials_follow_a_redirect_on_their_origin_and_never_leave_it(serve):
    other = serve({"/landing": _json({"where": "other"})})
    home = serve(
        {
            "/old": lambda h: (301, {"Location": "/new"}, b""),
            "/new": _json({"where": "home"}),
            "/away": lambda h: (302, {"Location": f"{other.url}/landing"}, b""),
        }
    )
    with ApiSession(pool_size=1, credential_headers=("Api-Key", "Api-Username")) as session:
        session.headers.update(
            {
                "Authorization": "Bearer secret-1",
                "Api-Key": "secret-2",
                "Api-Username": "system",
                "User-Agent": "ua",
            }
        )
        assert send(session, "GET", home.url + "/old", timeout=5).json() == {"where": "home"}
        assert send(session, "GET", home.url + "/away", timeout=5).json() == {"where": "other"}
    same_origin = home.seen[1]["headers"]
    assert home.seen[1]["path"] == "/new"
    assert (same_origin["Authorization"], same_origin["Api-Key"]) == ("Bearer secret-1", "secret-2")
    landed = other.seen[0]["headers"]
    assert not {"Authorization", "Api-Key", "Api-Username"} & set(landed)
    assert landed["User-Agent"] == "ua"


def test_the_discourse_client_keeps_its_api_key_on_the_forum(serve):
    other = serve({"/latest.json": _json({"topic_list": {"topics": []}})})
    forum = serve({"/latest.json": lambda h: (302, {"Location": f"{other.url}/latest.json"}, b"")})
    config = DiscourseConfig(url=forum.url, api_key="forum-key-123", api_username="system")
    with DiscourseClient(config) as client:
        assert client.get("/latest.json") == {"topic_list": {"topics": []}}
    assert forum.seen[0]["headers"]["Api-Key"] == "forum-key-123"
    assert "Api-Key" not in other.seen[0]["headers"] and "Api-Username" not in other.seen[0]["headers"]


def test_an_origin_behind_a_proxy_goes_through_the_proxy_and_no_proxy_is_honoured(serve, monkeypatch):
    proxy = serve({"/v1/x": _json({"via": "proxy"})})  # routed on the path of the absolute URI it gets
    direct = serve({"/v1/x": _json({"via": "direct"})})
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with ApiSession(pool_size=1) as session:
        answer = send(session, "GET", "http://api.example.test/v1/x", params={"q": 1}, timeout=5)
        assert send(session, "GET", direct.url + "/v1/x", timeout=5).json() == {"via": "direct"}
    assert answer.json() == {"via": "proxy"}
    assert [seen["path"] for seen in proxy.seen] == ["http://api.example.test/v1/x?q=1"]


def test_https_is_verified_against_requests_ca_bundle(serve, tmp_path, monkeypatch):
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
    with ApiSession(pool_size=1) as session:  # certifi's roots do not know this certificate
        with pytest.raises(TransientError, match="CERTIFICATE_VERIFY_FAILED"):
            send(session, "GET", server.url + "/secure", timeout=5)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_file))
    with ApiSession(pool_size=1) as session:
        assert send(session, "GET", server.url + "/secure", timeout=5).json() == {"tls": True}


def test_a_body_shorter_than_its_content_length_and_a_silent_server_are_retryable(serve):
    def short(handler):
        return 200, {"Content-Length": "1000", "X-Close-Silently": "1"}, b'{"ok": tr'

    def silent(handler):
        threading.Event().wait(2)
        return 200, {}, b"{}"

    server = serve({"/short": short, "/silent": silent, "/ok": _json({"ok": 1})})
    with ApiSession(pool_size=1) as session:
        with pytest.raises(TransientError, match="connection failed: IncompleteRead"):
            send(session, "GET", server.url + "/short", timeout=5)
        with pytest.raises(TransientError, match=r"no answer within 0.3s \(timeout\)"):
            send(session, "GET", server.url + "/silent", timeout=0.3)
        assert send(session, "GET", server.url + "/ok", timeout=5).json() == {"ok": 1}


def test_the_threads_of_a_client_share_its_pool(serve):
    server = serve({"/n": lambda h: (200, {}, urlsplit(h.path).query.encode())})
    results: dict[int, bytes] = {}
    with ApiSession(pool_size=3) as session:

        def work(thread: int) -> None:
            for i in range(30):
                results[thread * 1000 + i] = send(
                    session, "GET", f"{server.url}/n?{thread}-{i}", timeout=5
                ).content

        threads = [threading.Thread(target=work, args=(t,)) for t in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == {t * 1000 + i: f"{t}-{i}".encode() for t in range(3) for i in range(30)}
    assert len({seen["port"] for seen in server.seen}) <= 3  # kept connections, not one per request
