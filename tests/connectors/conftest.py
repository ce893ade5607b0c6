"""Fixtures for connector tests: a small-scale sandbox on loopback and configs that point at it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from connectors.ga4 import GA4Client, GA4Config
from connectors.gsc import GSCClient, GSCConfig
from connectors.http import RetryPolicy
from connectors.sandbox import SANDBOX_GA4_PROPERTY_ID, SandboxServer, google_service_account_info
from connectors.sandbox.brand import SANDBOX_GSC_SITE_URL

TODAY = date(2026, 11, 21)


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(seed=42, scale="small", today=TODAY) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_leftover_faults(request):
    yield
    if "sandbox" in request.fixturenames:
        request.getfixturevalue("sandbox").clear_faults()


@pytest.fixture(scope="module")
def service_account_info(sandbox) -> dict:
    return google_service_account_info(sandbox.google_token_uri)


@pytest.fixture(scope="module")
def key_file(tmp_path_factory, service_account_info) -> Path:
    """A key file as Google issues it: its token_uri is Google's, so GA4_TOKEN_URI must override it."""
    path = tmp_path_factory.mktemp("keys") / "service-account.json"
    path.write_text(json.dumps({**service_account_info, "token_uri": "https://oauth2.googleapis.com/token"}))
    return path


@pytest.fixture
def make_client(sandbox, service_account_info) -> Callable[..., GA4Client]:
    clients = []

    def make(**overrides) -> GA4Client:
        settings = dict(
            property_id=SANDBOX_GA4_PROPERTY_ID,
            credentials_info=service_account_info,
            base_url=sandbox.ga4_base_url,
            page_size=1000,
            timeout_seconds=10,
        )
        settings.update(overrides)
        client = GA4Client(GA4Config(**settings))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def make_gsc(sandbox, service_account_info):
    """`make_gsc(**overrides) -> GSCClient` on the sandbox's Search Console, retrying fast."""
    clients = []

    def make(**overrides) -> GSCClient:
        settings = dict(
            site_url=SANDBOX_GSC_SITE_URL,
            credentials_info=service_account_info,
            base_url=f"{sandbox.base_url}/gsc",
            timeout_seconds=10,
            retry_policy=RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=1.0, max_total_seconds=20.0),
        )
        settings.update(overrides)
        client = GSCClient(GSCConfig(**settings))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
