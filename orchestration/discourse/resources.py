"""The Discourse client as a Dagster resource, on a real forum or on the built-in sandbox."""

from __future__ import annotations

import os

import dagster as dg

from connectors.discourse import DiscourseClient, DiscourseConfig
from connectors.http import RetryPolicy
from connectors.sandbox import ensure_sandbox
from connectors.sandbox.discourse_api import PREFIX, SANDBOX_DISCOURSE_API_KEY
from orchestration.settings import bool_setting, float_setting, int_setting


class DiscourseResource(dg.ConfigurableResource):
    """Discourse API settings. With neither DISCOURSE_URL nor DISCOURSE_API_KEY set, the in-process
    sandbox serves the brand's forum.

    The key arrives through `EnvVar`, so the UI never shows it; the URL and username are shown.
    """

    url: str | None = None
    api_key: str | None = None
    api_username: str = "system"
    max_like_lookups: int = 20_000
    timeout_seconds: float = 60.0
    # the nightly looks up every liked post, not only those whose like count moved
    nightly_all_likers: bool = False

    @property
    def uses_sandbox(self) -> bool:
        return not self.api_key and not self.url

    def client(self) -> DiscourseClient:
        options = dict(
            api_username=self.api_username,
            max_like_lookups=self.max_like_lookups,
            timeout_seconds=self.timeout_seconds,
            retry=RetryPolicy.from_env(),
        )
        if self.uses_sandbox:
            sandbox = ensure_sandbox()
            config = DiscourseConfig(
                url=sandbox.base_url + PREFIX, api_key=SANDBOX_DISCOURSE_API_KEY, **options
            )
        else:
            config = DiscourseConfig(url=self.url or "", api_key=self.api_key or "", **options)
        return DiscourseClient(config)


def discourse_resource_from_env(sandbox: bool = False) -> DiscourseResource:
    """The resource from DISCOURSE_URL, DISCOURSE_API_KEY (as an EnvVar: never shown),
    DISCOURSE_API_USERNAME, DISCOURSE_MAX_LIKE_LOOKUPS, DISCOURSE_TIMEOUT_SECONDS and
    DISCOURSE_NIGHTLY_ALL_LIKERS; with
    `sandbox`, the sandbox's forum whatever the URL and key say."""
    real = not sandbox

    return DiscourseResource(
        url=(real and os.getenv("DISCOURSE_URL")) or None,
        api_key=dg.EnvVar("DISCOURSE_API_KEY") if real and os.getenv("DISCOURSE_API_KEY") else None,
        api_username=os.getenv("DISCOURSE_API_USERNAME") or "system",
        max_like_lookups=int_setting("DISCOURSE_MAX_LIKE_LOOKUPS", 20_000, low=0),
        timeout_seconds=float_setting("DISCOURSE_TIMEOUT_SECONDS", 60.0, low=0),
        nightly_all_likers=bool_setting(
            "DISCOURSE_NIGHTLY_ALL_LIKERS", False, meaning="1: the nightly looks up every liked post"
        ),
    )
