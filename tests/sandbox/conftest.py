"""Fixtures for the sandbox tests: a small-scale sandbox on loopback and a raw GA4 caller.

The raw caller speaks HTTP with `requests` and a token from google-auth, so these tests see the
wire format exactly as a client does. `classify` is the test's own reading of docs/metrics.md §1, kept
independent of the generator so that a planted effect is measured, not echoed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import google.auth.transport.requests
import jsonschema
import pytest
import requests
from google.oauth2 import service_account

from connectors.sandbox import SANDBOX_GA4_PROPERTY_ID, SandboxServer, google_service_account_info

# "Today" for the test sandbox: its history is 2025-07-01 .. 2026-11-20 whatever the clock says.
TODAY = date(2026, 11, 21)
SEED = 42
SCOPE = "https://www.googleapis.com/auth/analytics.readonly"

SESSIONS_DIMENSIONS = [
    "date",
    "sessionSource",
    "sessionMedium",
    "sessionCampaignName",
    "landingPagePlusQueryString",
    "deviceCategory",
]
SESSIONS_METRICS = ["sessions", "engagedSessions", "keyEvents", "totalUsers", "newUsers"]
LEADS_DIMENSIONS = [
    "date",
    "customEvent:how_heard",
    "sessionSource",
    "sessionMedium",
    "sessionCampaignName",
    "landingPagePlusQueryString",
]


def sessions_body(start: date, end: date | None = None, **extra) -> dict:
    end = end or start
    return {
        "dateRanges": [{"startDate": start.isoformat(), "endDate": end.isoformat()}],
        "dimensions": [{"name": n} for n in SESSIONS_DIMENSIONS],
        "metrics": [{"name": n} for n in SESSIONS_METRICS],
        **extra,
    }


def leads_body(start: date, end: date | None = None, **extra) -> dict:
    end = end or start
    return {
        "dateRanges": [{"startDate": start.isoformat(), "endDate": end.isoformat()}],
        "dimensions": [{"name": n} for n in LEADS_DIMENSIONS],
        "metrics": [{"name": "keyEvents"}],
        "dimensionFilter": {
            "filter": {
                "fieldName": "eventName",
                "stringFilter": {"matchType": "EXACT", "value": "generate_lead"},
            }
        },
        **extra,
    }


class RawGA4:
    """runReport over plain HTTP, returning the response as sent."""

    def __init__(self, sandbox: SandboxServer, token: str):
        self.sandbox = sandbox
        self.token = token
        self.http = requests.Session()

    def post(self, body: object, property_id: str = SANDBOX_GA4_PROPERTY_ID, token: str | None = None):
        url = f"{self.sandbox.ga4_base_url}/v1beta/properties/{property_id}:runReport"
        headers = {"Authorization": f"Bearer {token if token is not None else self.token}"}
        return self.http.post(url, json=body, headers=headers, timeout=30)

    def report(self, body: dict) -> dict:
        response = self.post({**body, "limit": "250000"})
        assert response.status_code == 200, response.text
        return response.json()

    def rows(self, body: dict) -> list[dict]:
        """The report's rows as dicts keyed by dimension and metric names (metric values as int)."""
        payload = self.report(body)
        dims = [h["name"] for h in payload["dimensionHeaders"]]
        metrics = [h["name"] for h in payload["metricHeaders"]]
        out = []
        for row in payload.get("rows", []):
            record = {n: v["value"] for n, v in zip(dims, row["dimensionValues"], strict=True)}
            record.update({n: int(v["value"]) for n, v in zip(metrics, row["metricValues"], strict=True)})
            out.append(record)
        return out


@pytest.fixture(scope="session")
def sandbox():
    with SandboxServer(seed=SEED, scale="small", today=TODAY) as server:
        yield server


@pytest.fixture(scope="session")
def service_account_info(sandbox) -> dict:
    return google_service_account_info(sandbox.google_token_uri)


@pytest.fixture(scope="session")
def ga4(sandbox, service_account_info) -> RawGA4:
    credentials = service_account.Credentials.from_service_account_info(service_account_info, scopes=[SCOPE])
    credentials.refresh(google.auth.transport.requests.Request())
    return RawGA4(sandbox, credentials.token)


# --- docs/metrics.md §1, written independently of the generator -----------------------------------------

PAID_MEDIA = {
    "cpc",
    "ppc",
    "paid",
    "paidsocial",
    "paid_social",
    "paid-social",
    "display",
    "cpm",
    "cpv",
    "retargeting",
}
EMAIL_MEDIA = {"email", "e-mail", "newsletter"}
COMMUNITY_DOMAINS = {"community.northwind-analytics.com"}
AI = {
    "chatgpt.com",
    "chat.openai.com",
    "perplexity.ai",
    "claude.ai",
    "gemini.google.com",
    "copilot.microsoft.com",
    "you.com",
    "phind.com",
    "meta.ai",
}
MESSAGING = {
    "lm.facebook.com",
    "l.messenger.com",
    "messenger.com",
    "m.me",
    "web.whatsapp.com",
    "api.whatsapp.com",
    "wa.me",
    "whatsapp.com",
    "com.whatsapp",
    "slack.com",
    "app.slack.com",
    "slack-redir.net",
    "com.slack",
    "teams.microsoft.com",
    "teams.live.com",
    "statics.teams.cdn.office.net",
    "discord.com",
    "discordapp.com",
    "com.discord",
    "t.me",
    "web.telegram.org",
    "org.telegram.messenger",
    "mail.google.com",
    "com.google.android.gm",
    "outlook.live.com",
    "outlook.office.com",
    "outlook.office365.com",
    "mail.yahoo.com",
    "com.linkedin.android.messaging",
    "signal.org",
    "org.thoughtcrime.securesms",
}
SEARCH_ENGINES = {"google", "bing", "duckduckgo", "yahoo", "baidu", "yandex", "ecosia", "qwant", "brave"}
PUBLIC_SOCIAL = {
    "facebook.com",
    "m.facebook.com",
    "l.facebook.com",
    "lnkd.in",
    "linkedin.com",
    "t.co",
    "twitter.com",
    "x.com",
    "reddit.com",
    "old.reddit.com",
    "news.ycombinator.com",
    "youtube.com",
    "instagram.com",
    "l.instagram.com",
    "tiktok.com",
    "threads.net",
    "bsky.app",
    "mastodon.social",
    "meetup.com",
}
TYPEABLE = {
    "/",
    "/pricing",
    "/about",
    "/contact",
    "/login",
    "/signin",
    "/signup",
    "/register",
    "/careers",
    "/jobs",
    "/blog",
    "/docs",
    "/search",
    "/demo",
    "/product",
    "/features",
    "/cart",
    "/checkout",
    "/account",
    "/home",
}


def normalise_source(source: str) -> str:
    s = source.lower()
    for prefix in ("android-app://", "www."):
        if s.startswith(prefix):
            s = s[len(prefix) :]
    return s.rstrip("/")


def normalise_landing(landing: str) -> str:
    if landing == "(not set)":
        return landing
    path = landing.split("?")[0].split("#")[0].lower()
    return path.rstrip("/") or "/"


def _matches(source: str, domains: set[str]) -> bool:
    return any(source == d or source.endswith("." + d) for d in domains)


def classify_fields(source: str, medium: str, campaign: str, landing: str) -> str:
    s, m, path = normalise_source(source), medium.lower(), normalise_landing(landing)
    if m in PAID_MEDIA or m.startswith("paid"):
        return "paid"
    if m in EMAIL_MEDIA:
        return "email_campaign"
    if m == "partner":
        return "partner_community"
    if s in COMMUNITY_DOMAINS or m == "community":
        return "community"
    if _matches(s, AI):
        return "ai_assistant"
    if _matches(s, MESSAGING):
        return "dark_social_messaging"
    if m == "organic" or s in SEARCH_ENGINES:
        return "organic_search"
    if _matches(s, PUBLIC_SOCIAL) or m in ("social", "social-network", "sm"):
        return "public_social"
    if s == "(direct)" and m in ("(none)", "(not set)"):
        deep = path != "(not set)" and path not in TYPEABLE and (path.count("/") >= 2 or len(path) >= 20)
        return "dark_social_direct" if deep else "direct_typed"
    return "referral"


def classify_row(row: dict) -> str:
    return classify_fields(
        row["sessionSource"],
        row["sessionMedium"],
        row["sessionCampaignName"],
        row["landingPagePlusQueryString"],
    )


DARK = {"dark_social_messaging", "dark_social_direct"}


# Test modules get the helpers through fixtures (no imports between test files).


@pytest.fixture(scope="session")
def classify() -> Callable[[dict], str]:
    """Row (dict with GA4 dimension names) -> docs/metrics.md §1 traffic class."""
    return classify_row


@pytest.fixture(scope="session")
def make_sessions_body() -> Callable[..., dict]:
    return sessions_body


@pytest.fixture(scope="session")
def make_leads_body() -> Callable[..., dict]:
    return leads_body


@pytest.fixture(scope="session")
def today() -> date:
    return TODAY


# --- Google discovery documents as JSON Schema (every Google API's contract test uses these) --------


def discovery_to_json_schema(doc: dict, schema_id: str, strict: bool = True) -> dict:
    """Google discovery schemas ($ref by id, properties, items, enum, int64-as-string) as JSON Schema.

    strict: objects with declared properties reject undeclared ones (Google rejects unknown request
    fields, and the sandbox should send only documented response fields).
    """

    def convert(s: dict) -> dict:
        if "$ref" in s:
            return {"$ref": f"#/$defs/{s['$ref']}"}
        kind = s.get("type")
        if kind == "object" or "properties" in s:
            out: dict = {"type": "object"}
            if "properties" in s:
                out["properties"] = {k: convert(v) for k, v in s["properties"].items()}
                if strict:
                    out["additionalProperties"] = False
            if "additionalProperties" in s:
                out["additionalProperties"] = convert(s["additionalProperties"])
            return out
        if kind == "array":
            return {"type": "array", "items": convert(s.get("items", {}))}
        if kind == "string":
            out = {"type": "string"}
            if "enum" in s:
                out["enum"] = s["enum"]
            if s.get("format") in ("int64", "uint64"):
                out["pattern"] = r"^-?[0-9]+$"
            return out
        if kind == "integer":
            return {"type": "integer"}
        if kind == "number":
            return {"type": "number"}
        if kind == "boolean":
            return {"type": "boolean"}
        return {}  # "any"

    defs = {sid: convert(s) for sid, s in doc["schemas"].items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": defs,
        "$ref": f"#/$defs/{schema_id}",
    }


def validate_against_discovery(doc: dict, schema_id: str, instance: object, strict: bool = True) -> None:
    schema = discovery_to_json_schema(doc, schema_id, strict)
    jsonschema.Draft202012Validator(schema).validate(instance)


@pytest.fixture(scope="session")
def validate_discovery() -> Callable[..., None]:
    """`validate_discovery(doc, schema_id, instance, strict=True)`: raise jsonschema.ValidationError
    unless `instance` keeps the discovery document's schema `schema_id`."""
    return validate_against_discovery
