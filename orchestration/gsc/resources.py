"""The Search Console client as a Dagster resource, on a real property or on the built-in sandbox."""

from __future__ import annotations

import os

import dagster as dg

from connectors.gsc import MAX_ROW_LIMIT, GSCClient, GSCConfig
from connectors.sandbox import ensure_sandbox, shared_service_account_info
from connectors.sandbox.brand import SANDBOX_GSC_SITE_URL
from orchestration.settings import float_setting, int_setting


class GSCResource(dg.ConfigurableResource):
    """Search Console settings. With no credentials file the in-process sandbox serves the API.

    The credentials path arrives through `EnvVar`, so the UI never shows it; the site is not
    secret and is shown on purpose.
    """

    site_url: str | None = None
    credentials_file: str | None = None
    base_url: str | None = None
    token_uri: str | None = None
    row_limit: int = MAX_ROW_LIMIT
    timeout_seconds: float = 60.0

    @property
    def uses_sandbox(self) -> bool:
        return not self.credentials_file

    def client(self) -> GSCClient:
        options = dict(row_limit=self.row_limit, timeout_seconds=self.timeout_seconds)
        if self.uses_sandbox:
            sandbox = ensure_sandbox()
            config = GSCConfig(
                site_url=self.site_url or SANDBOX_GSC_SITE_URL,
                credentials_info=shared_service_account_info(sandbox.google_token_uri),
                base_url=f"{sandbox.base_url}/gsc",
                **options,
            )
        else:
            config = GSCConfig(
                site_url=self.site_url or "",
                credentials_file=self.credentials_file,
                base_url=self.base_url or GSCConfig.DEFAULT_BASE_URL,
                token_uri=self.token_uri,
                **options,
            )
        return GSCClient(config)


def gsc_resource_from_env(sandbox: bool = False) -> GSCResource:
    """The resource from the environment: GSC_SITE_URL, GOOGLE_APPLICATION_CREDENTIALS (EnvVar),
    GSC_BASE_URL, GSC_TOKEN_URI, GSC_ROW_LIMIT, GSC_TIMEOUT_SECONDS; the sandbox when no key is set.

    `sandbox`: serve the sandbox's site even though the key is set (for GA4: orchestration/sources.py).
    """
    credentials = (
        dg.EnvVar("GOOGLE_APPLICATION_CREDENTIALS")
        if os.getenv("GOOGLE_APPLICATION_CREDENTIALS") and not sandbox
        else None
    )
    return GSCResource(
        site_url=None if sandbox else os.getenv("GSC_SITE_URL") or None,
        credentials_file=credentials,
        base_url=os.getenv("GSC_BASE_URL") or None,
        token_uri=os.getenv("GSC_TOKEN_URI") or None,
        row_limit=int_setting("GSC_ROW_LIMIT", MAX_ROW_LIMIT),
        timeout_seconds=float_setting("GSC_TIMEOUT_SECONDS", 60.0, low=0),
    )
