"""`python -m connectors.sandbox serve` starts a server, prints where, and stops cleanly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import requests

from connectors.ga4 import GA4Client, GA4Config
from connectors.sandbox.real_mode import real_mode_settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}


def test_serve_prints_its_urls_and_answers_until_terminated(tmp_path):
    key_file = tmp_path / "sandbox-key.json"
    command = ["serve", "--port", "0", "--scale", "small", "--seed", "7", "--credentials-file", str(key_file)]
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.sandbox", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=REPO_ROOT,
    )
    try:
        first = process.stdout.readline()
        match = re.search(r"serving at (http://127\.0\.0\.1:(\d+))", first)
        assert match, first + process.stderr.read()
        base_url = match.group(1)
        assert int(match.group(2)) > 0
        printed = [process.stdout.readline().strip() for _ in range(3)]
        assert printed[0] == f"GA4_BASE_URL={base_url}/ga4"
        assert printed[1] == f"GA4_TOKEN_URI={base_url}/google/token"
        assert printed[2] == "GA4_PROPERTY_ID=412345678"

        described = requests.get(base_url + "/", timeout=10).json()
        assert (described["seed"], described["scale"]) == (7, "small")
        assert requests.get(base_url + "/healthz", timeout=10).json() == {"status": "ok"}
        unauthorised = requests.post(
            f"{base_url}/ga4/v1beta/properties/412345678:runReport", json={}, timeout=10
        )
        assert unauthorised.status_code == 401

        # What it printed is all a user needs to point the connector at it.
        assert process.stdout.readline().strip() == f"GOOGLE_APPLICATION_CREDENTIALS={key_file}"
        # then every other source's settings as a real source's, as the doctor test uses them
        rest = []
        while "=" in (line := process.stdout.readline().strip()):  # up to the list of APIs
            rest.append(line)
        expected = real_mode_settings(base_url, f"{base_url}/google/token", key_file)
        shown = ("GOOGLE_APPLICATION_CREDENTIALS", "GA4_BASE_URL", "GA4_TOKEN_URI", "GA4_PROPERTY_ID")
        assert dict(line.split("=", 1) for line in rest) == {
            name: value for name, value in expected.items() if name not in shown
        }
        assert f"SLACK_BASE_URL={base_url}/slack" in rest
        assert "DISCOURSE_API_KEY=sandbox-discourse-key" in rest
        env = dict(line.split("=", 1) for line in printed)
        env["GOOGLE_APPLICATION_CREDENTIALS"] = str(key_file)
        with GA4Client(GA4Config.from_env(env)) as client:
            pages = list(client.sessions(date(2026, 2, 4)))
        assert pages[0].row_count == pages[0].batch.num_rows > 50
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0


def test_help_explains_the_options():
    result = subprocess.run(
        [sys.executable, "-m", "connectors.sandbox", "serve", "--help"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO_ROOT,
        timeout=30,
    )
    assert result.returncode == 0
    for option in ("--port", "--seed", "--scale", "--credentials-file", "Ctrl-C"):
        assert option in result.stdout
