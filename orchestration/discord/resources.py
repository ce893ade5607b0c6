"""The optional Discord source: its resource, and whether it is switched on."""

from __future__ import annotations

import os

import dagster as dg

from connectors.discord import DiscordClient, DiscordConfig
from connectors.http import RetryPolicy
from connectors.sandbox import community, ensure_sandbox
from connectors.sandbox.discord_api import PREFIX, SANDBOX_DISCORD_BOT_TOKEN
from orchestration.settings import float_setting


def discord_enabled() -> bool:
    """On when DISCORD_BOT_TOKEN and DISCORD_CHANNEL_IDS are set, or the sandbox is asked to serve it
    (SANDBOX_SOURCES lists discord, or DISCORD_SANDBOX=1); off by default. See orchestration/sources.py."""
    from orchestration.sources import source_plan

    return source_plan()["discord"].loaded


class DiscordResource(dg.ConfigurableResource):
    """Discord settings; without a token the sandbox's server (all its channels) is read."""

    bot_token: str | None = None
    channel_ids: str | None = None
    base_url: str | None = None
    timeout_seconds: float = 30.0

    @property
    def uses_sandbox(self) -> bool:
        return not self.bot_token

    def client(self) -> DiscordClient:
        retry = RetryPolicy.from_env()
        if self.uses_sandbox:
            sandbox = ensure_sandbox()
            config = DiscordConfig(
                bot_token=SANDBOX_DISCORD_BOT_TOKEN,
                channel_ids=self.channel_ids or ",".join(s.native_id for s in community.spaces("discord")),
                base_url=sandbox.base_url + PREFIX,
                timeout_seconds=self.timeout_seconds,
                retry=retry,
            )
        else:
            config = DiscordConfig(
                bot_token=self.bot_token or "",
                channel_ids=self.channel_ids or "",
                base_url=self.base_url or DiscordConfig.DEFAULT_BASE_URL,
                timeout_seconds=self.timeout_seconds,
                retry=retry,
            )
        return DiscordClient(config)


def discord_resource_from_env(sandbox: bool = False) -> DiscordResource:
    """DISCORD_BOT_TOKEN (as an EnvVar: never shown), DISCORD_CHANNEL_IDS, DISCORD_BASE_URL,
    DISCORD_TIMEOUT_SECONDS; with `sandbox`, the sandbox's server whatever the token says."""
    return DiscordResource(
        bot_token=dg.EnvVar("DISCORD_BOT_TOKEN") if os.getenv("DISCORD_BOT_TOKEN") and not sandbox else None,
        channel_ids=os.getenv("DISCORD_CHANNEL_IDS") or None,
        base_url=os.getenv("DISCORD_BASE_URL") or None,
        timeout_seconds=float_setting("DISCORD_TIMEOUT_SECONDS", 30.0, low=0),
    )
