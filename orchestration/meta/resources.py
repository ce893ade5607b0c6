"""The Meta client as a Dagster resource, on a real ad account or on the built-in sandbox."""

from __future__ import annotations

import os

import dagster as dg

from connectors.http import RetryPolicy
from connectors.meta import MetaClient, MetaConfig
from connectors.sandbox import ensure_sandbox
from connectors.sandbox.brand import (
    SANDBOX_META_ACCESS_TOKEN,
    SANDBOX_META_AD_ACCOUNT_ID,
    SANDBOX_META_PIXEL_ID,
)
from orchestration.settings import float_setting, int_setting


class MetaResource(dg.ConfigurableResource):
    """Marketing API settings. With no access token the in-process sandbox serves the API.

    The token arrives through `EnvVar`, so the UI never shows it; the account and pixel ids are
    not secret and are shown on purpose.
    """

    access_token: str | None = None
    ad_account_id: str | None = None
    pixel_id: str | None = None
    base_url: str | None = None
    api_version: str = MetaConfig.DEFAULT_API_VERSION
    page_size: int = 5000
    timeout_seconds: float = 60.0
    async_min_days: int = 8
    async_poll_seconds: float = 5.0
    async_timeout_seconds: float = 3600.0

    @property
    def uses_sandbox(self) -> bool:
        return not self.access_token

    def config(self) -> MetaConfig:
        options = dict(
            api_version=self.api_version,
            page_size=self.page_size,
            timeout_seconds=self.timeout_seconds,
            async_min_days=self.async_min_days,
            async_timeout_seconds=self.async_timeout_seconds,
        )
        if self.uses_sandbox:
            sandbox = ensure_sandbox()
            return MetaConfig(
                access_token=SANDBOX_META_ACCESS_TOKEN,
                ad_account_id=self.ad_account_id or SANDBOX_META_AD_ACCOUNT_ID,
                pixel_id=self.pixel_id or SANDBOX_META_PIXEL_ID,
                base_url=f"{sandbox.base_url}/meta",
                async_poll_seconds=0.05,
                **options,
            )
        return MetaConfig(
            access_token=self.access_token or "",
            ad_account_id=self.ad_account_id or "",
            pixel_id=self.pixel_id,
            base_url=self.base_url or MetaConfig.DEFAULT_BASE_URL,
            async_poll_seconds=self.async_poll_seconds,
            **options,
        )

    def client(self) -> MetaClient:
        return MetaClient(self.config(), policy=RetryPolicy.from_env())


def meta_resource_from_env(sandbox: bool = False) -> MetaResource:
    """The resource from META_* settings; the token only through `EnvVar`, the sandbox when unset
    (or when `sandbox`: the sandbox's ad account then, whatever the ids say)."""
    real = not sandbox
    return MetaResource(
        access_token=dg.EnvVar("META_ACCESS_TOKEN") if real and os.getenv("META_ACCESS_TOKEN") else None,
        ad_account_id=(real and os.getenv("META_AD_ACCOUNT_ID")) or None,
        pixel_id=(real and os.getenv("META_PIXEL_ID")) or None,
        base_url=os.getenv("META_BASE_URL") or None,
        api_version=os.getenv("META_API_VERSION") or MetaConfig.DEFAULT_API_VERSION,
        page_size=int_setting("META_PAGE_SIZE", 5000, low=1),
        timeout_seconds=float_setting("META_TIMEOUT_SECONDS", 60.0, low=0),
        async_min_days=int_setting("META_ASYNC_MIN_DAYS", 8, low=1),
        async_poll_seconds=float_setting("META_ASYNC_POLL_SECONDS", 5.0, low=0),
        async_timeout_seconds=float_setting("META_ASYNC_TIMEOUT_SECONDS", 3600.0, low=0),
    )
