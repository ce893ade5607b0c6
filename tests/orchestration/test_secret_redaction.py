"""Secrets redacted by value: with every source configured against a server that echoes every
credential it receives (headers, URL, body) in its error answers, and a key pasted into a URL
setting, `make demo`'s run fails everywhere and no configured secret appears in its stdout, its
stderr, the Dagster storage or the warehouse."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from orchestration.settings import PROJECT_ROOT

SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-0000-slacksecretvalue",
    "DISCOURSE_API_KEY": "d1sc0urse5ecretKEYvalue",
    "META_ACCESS_TOKEN": "M3taS3cretTokenValue99",
    "DISCORD_BOT_TOKEN": "d1sc0rdS3cretBotTokenValue",
    "MEMBER_HASH_KEY": "member-hash-secret-key-42",
}
PROXY_USER, PROXY_PASSWORD = "proxyuser", "Pr0xyPassw0rdSecret"
PASTED_KEY = "PastedQueryKey12345"
JSON = "application/json"


class EchoHandler(BaseHTTPRequestHandler):
    """Answers every request with an error that repeats everything it received, in the error shape
    of the API the path belongs to (`form` "json"), or as plain text (`form` "text"). Google's token
    endpoint grants a token, so the data calls carry it."""

    form = "json"

    def _echo(self) -> str:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        headers = "; ".join(f"{k}: {v}" for k, v in self.headers.items())
        return f"{self.command} {self.path} | {headers} | {body}"

    def _send(self, status: int, payload: str, content_type: str) -> None:
        data = payload.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self) -> None:
        echo = self._echo()
        path = urlsplit(self.path).path
        if path.endswith("/token"):
            token = {
                "access_token": "ya29.echo-test-access-token",
                "expires_in": 3600,
                "token_type": "Bearer",
            }
            return self._send(200, json.dumps(token), JSON)
        if self.form == "text":
            return self._send(403, f"Forbidden. You sent: {echo}", "text/plain")
        if path.startswith("/slack"):
            return self._send(
                200, json.dumps({"ok": False, "error": "invalid_auth", "detail": echo}), "application/json"
            )
        if path.startswith("/discourse"):
            return self._send(
                403, json.dumps({"errors": [echo], "error_type": "invalid_access"}), "application/json"
            )
        if path.startswith("/discord"):
            return self._send(401, json.dumps({"message": echo, "code": 0}), JSON)
        # Google's and Meta's error objects
        error = {
            "error": {"code": 400, "message": echo, "status": "INVALID_ARGUMENT", "type": "OAuthException"}
        }
        return self._send(400, json.dumps(error), JSON)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:  # keep the test's output quiet
        pass


@pytest.fixture
def echo_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _service_account_key(path: Path, token_uri: str) -> dict:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "echo-test",
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": pem,
        "client_email": "loader@echo-test.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info))
    return info


def _scan(blob: bytes, needles: dict[str, str]) -> list[str]:
    return [name for name, value in needles.items() if value.encode() in blob]


@pytest.mark.parametrize("form", ["json", "text"])
def test_no_configured_secret_reaches_output_storage_or_warehouse(
    tmp_path: Path, echo_server, form: str, monkeypatch
):
    EchoHandler.form = form
    url = f"http://127.0.0.1:{echo_server.server_address[1]}"
    key = _service_account_key(tmp_path / "service-account.json", f"{url}/google/token")
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # where the project's event log storage keeps its files
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text())
    proxy = f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{echo_server.server_address[1]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SANDBOX", "HTTP", "HTTPS", "NO_PROXY"))},
        **SECRETS,
        "DAGSTER_HOME": str(home),
        "WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"),
        "SERVING_PATH": str(tmp_path / "serving" / "marts.duckdb"),
        "HISTORY_START_DATE": (date.today() - timedelta(days=2)).isoformat(),
        "SANDBOX": "off",
        "HTTP_MAX_ATTEMPTS": "1",
        # Every request goes through the echo server as a proxy, with the proxy's password.
        "HTTP_PROXY": proxy,
        "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "service-account.json"),
        "GA4_PROPERTY_ID": "123456789",
        "GA4_BASE_URL": f"{url}/ga4",
        "GA4_TOKEN_URI": f"{url}/google/token",
        "GSC_SITE_URL": "sc-domain:example.com",
        "GSC_BASE_URL": f"{url}/gsc",
        "GSC_TOKEN_URI": f"{url}/google/token",
        "META_AD_ACCOUNT_ID": "act_1234567",
        "META_PIXEL_ID": "7654321",
        "META_BASE_URL": f"{url}/meta",
        "SLACK_BASE_URL": f"{url}/slack",
        "DISCORD_CHANNEL_IDS": "111111111111111111",
        "DISCORD_BASE_URL": f"{url}/discord",
        # The JSON run: the forum answers with the key echoed. The text run: the user pasted a URL
        # holding an api_key, which the connector refuses, naming the setting.
        "DISCOURSE_URL": f"{url}/discourse" if form == "json" else f"{url}/discourse/?api_key={PASTED_KEY}",
    }
    demo = subprocess.run(
        [sys.executable, "-m", "orchestration.demo"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        timeout=600,
    )
    output = demo.stdout + demo.stderr
    text = output.decode("utf-8", "replace")
    assert demo.returncode == 1, text[-3000:]
    # Every source failed (the echo server answers nothing else), so every secret was sent or refused.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        failures = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
        failed_steps = {r.event_log_entry.step_key for r in failures}
        messages = " ".join(str(r.event_log_entry.dagster_event.event_specific_data.error) for r in failures)
    for source in ("ga4", "gsc", "meta", "slack", "discourse", "discord"):
        assert any(step.startswith(source) for step in failed_steps), (source, failed_steps)
    assert "[redacted]" in messages

    needles = {
        **SECRETS,
        "proxy password": PROXY_PASSWORD,
        "proxy credentials (base64)": base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode(),
        "private_key_id": key["private_key_id"],
        **{f"private_key line {i}": line for i, line in enumerate(key["private_key"].splitlines()[1:-1])},
    }
    if form == "text":
        needles["pasted api_key"] = PASTED_KEY
    leaks = {"stdout/stderr": _scan(output, needles)}
    for path in [*home.rglob("*"), tmp_path / "warehouse.duckdb", tmp_path / "serving" / "marts.duckdb"]:
        if path.is_file():
            leaks[str(path.relative_to(tmp_path))] = _scan(path.read_bytes(), needles)
    assert (tmp_path / "warehouse.duckdb").exists()
    assert any(p.suffix == ".db" for p in home.rglob("*")), "no Dagster storage was written"
    assert {where: found for where, found in leaks.items() if found} == {}


def test_secret_values_are_the_secret_settings_proxy_passwords_and_pasted_query_keys() -> None:
    from orchestration.redaction import secret_values

    values = secret_values(
        {
            "HTTPS_PROXY": "http://alice:pr0xy-secret@proxy.example:8080",
            "DISCOURSE_URL": "https://forum.example.com/?api_key=abcdefgh123&page=2",
            "SLACK_BOT_TOKEN": "xoxb-1-abc",
            "META_BASE_URL": "https://graph.example.com/v1",
            "HISTORY_START_DATE": "2025-07-01",
        }
    )
    assert values == {"pr0xy-secret", "alice:pr0xy-secret", "abcdefgh123", "xoxb-1-abc"}
