"""The GA4 client as a Dagster resource, on a real property or on the built-in sandbox."""

from __future__ import annotations

import os

import dagster as dg

from connectors.ga4 import GA4Client, GA4Config
from connectors.sandbox import SANDBOX_GA4_PROPERTY_ID, ensure_sandbox, shared_service_account_info
from orchestration.settings import float_setting, int_setting


class GA4Resource(dg.ConfigurableResource):
    """GA4 Data API settings. With no credentials file the in-process sandbox serves the API.

    The credentials path arrives through `EnvVar`, so the UI never shows it; the property id and
    the report options are not secret and are shown on purpose.
    """

    property_id: str | None = None
    credentials_file: str | None = None
    base_url: str | None = None
    token_uri: str | None = None
    page_size: int = 250_000
    timeout_seconds: float = 60.0
    how_heard_parameter: str = "how_heard"
    lead_event: str = "generate_lead"

    @property
    def uses_sandbox(self) -> bool:
        return not self.credentials_file

    def client(self) -> GA4Client:
        options = dict(
            page_size=self.page_size,
            timeout_seconds=self.timeout_seconds,
            how_heard_parameter=self.how_heard_parameter,
            lead_event=self.lead_event,
        )
        if self.uses_sandbox:
            sandbox = ensure_sandbox()
            config = GA4Config(
                property_id=self.property_id or SANDBOX_GA4_PROPERTY_ID,
                credentials_info=shared_service_account_info(sandbox.google_token_uri),
                base_url=f"{sandbox.base_url}/ga4",
                **options,
            )
        else:
            config = GA4Config(
                property_id=self.property_id or "",
                credentials_file=self.credentials_file,
                base_url=self.base_url or GA4Config.DEFAULT_BASE_URL,
                token_uri=self.token_uri,
                **options,
            )
        return GA4Client(config)


def ga4_resource_from_env(sandbox: bool = False) -> GA4Resource:
    """The resource from GA4_PROPERTY_ID, GOOGLE_APPLICATION_CREDENTIALS (as an EnvVar: never
    shown), GA4_BASE_URL, GA4_TOKEN_URI, GA4_PAGE_SIZE, GA4_TIMEOUT_SECONDS, GA4_HOW_HEARD_PARAMETER
    and GA4_LEAD_EVENT; with `sandbox`, the sandbox's property even if the (shared Google) key is
    set for Search Console."""
    real = not sandbox
    return GA4Resource(
        property_id=(real and os.getenv("GA4_PROPERTY_ID")) or None,
        credentials_file=(
            dg.EnvVar("GOOGLE_APPLICATION_CREDENTIALS")
            if real and os.getenv("GOOGLE_APPLICATION_CREDENTIALS")
            else None
        ),
        base_url=os.getenv("GA4_BASE_URL") or None,
        token_uri=os.getenv("GA4_TOKEN_URI") or None,
        page_size=int_setting("GA4_PAGE_SIZE", 250_000, low=1),
        timeout_seconds=float_setting("GA4_TIMEOUT_SECONDS", 60.0, low=0),
        how_heard_parameter=os.getenv("GA4_HOW_HEARD_PARAMETER") or "how_heard",
        lead_event=os.getenv("GA4_LEAD_EVENT") or "generate_lead",
    )
