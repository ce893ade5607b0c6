"""The GA4 client as a Dagster resource, on a real property or on the built-in sandbox."""

from __future__ import annotations

import dagster as dg

from connectors.ga4 import GA4Client, GA4Config
from connectors.sandbox import SANDBOX_GA4_PROPERTY_ID, ensure_sandbox, google_service_account_info


class GA4Resource(dg.ConfigurableResource):
    """GA4 Data API settings. With no credentials file the in-process sandbox serves the API.

    The credentials path arrives through `EnvVar`, so the UI never shows it; the property id and
    the report options are not secret and are shown on purpose.
    """

    property_id: str | None = None
    credentials_file: str | None = None
    base_url: str | None = None
    token_uri: str | None = None
    page_size: int = 100_000
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
                credentials_info=google_service_account_info(f"{sandbox.base_url}/google/token"),
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
