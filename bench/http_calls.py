"""Client CPU per HTTP call, layer by layer: `python -m bench.http_calls`.

Not a test. Starts the large sandbox in its own process, picks one Discourse topic and asks for
`/t/{id}.json` over and over from this process, timing the client's CPU per call at each layer
of the connector stack:

- floor: the same request bytes on a bare kept-alive socket, the answer framed by its
  Content-Length and nothing else (what any Python client pays for the socket calls);
- session: `ApiSession.request` (a requests Session, connectors/http.py);
- session + json: the same, the body decoded with `json.loads`;
- connector: `DiscourseClient.get` (retries, counting, error mapping, decoding).

Each layer runs `--calls` calls per round, layers alternating, for `--rounds` rounds; the
minimum per layer is printed (the least disturbed round: this machine's speed drifts).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from urllib.parse import urlsplit

from bench.ingest import SandboxProcess, Target, _discourse_client, _window


def _bare_exchange(url: str, headers: dict[str, str]) -> Callable[[], bytes]:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{lines}\r\n".encode()
    buffer = bytearray()

    def call() -> bytes:
        sock.sendall(request)
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            buffer.extend(sock.recv(65536))
        head = bytes(buffer[:end]).lower()
        at = head.index(b"content-length:") + len(b"content-length:")
        stop = head.find(b"\r\n", at)
        size = int(head[at : stop if stop > 0 else None])
        start = end + 4
        while len(buffer) < start + size:
            buffer.extend(sock.recv(65536))
        body = bytes(buffer[start : start + size])
        del buffer[: start + size]
        return body

    return call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http_calls", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls per layer and round (default 1000)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds (default 7)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-http-") as workdir:
        sandbox = SandboxProcess("large", workdir)
        try:
            target = Target(sandbox.base_url, sandbox.key_file, _window(3), workdir)
            with _discourse_client(target) as client:
                plan, _ = client.activity_plan([date.fromisoformat(d) for d in target.days])
                path = f"/t/{plan.topics[0].topic_id}.json"
                url = client.config.url + path
                session = client._session
                body = session.request("GET", url, timeout=30).content
                layers: dict[str, Callable[[], object]] = {
                    "floor (bare socket)": _bare_exchange(url, dict(session.headers.items())),
                    "session": lambda: session.request("GET", url, timeout=30),
                    "session + json": lambda: json.loads(session.request("GET", url, timeout=30).content),
                    "connector (DiscourseClient.get)": lambda: client.get(path),
                }
                best: dict[str, float] = {}
                for _ in range(args.rounds):
                    for name, call in layers.items():
                        call()
                        started = time.process_time()
                        for _ in range(args.calls):
                            call()
                        spent = (time.process_time() - started) / args.calls * 1e6
                        best[name] = min(best.get(name, spent), spent)
        finally:
            sandbox.stop()
    print(f"GET {path}, {len(body):,} bytes; CPU per call, least of {args.rounds} rounds x {args.calls}")
    for name, micros in best.items():
        print(f"  {name:<34} {micros:7.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
