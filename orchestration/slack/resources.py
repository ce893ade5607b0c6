"""The Slack source as a Dagster resource: the Web API, a workspace export, or the sandbox."""

from __future__ import annotations

import os

import dagster as dg

from connectors.sandbox import ensure_sandbox
from connectors.sandbox.brand import SANDBOX_SLACK_BOT_TOKEN
from connectors.slack import SlackClient, SlackConfig, SlackExport
from orchestration.settings import float_setting, int_setting


class SlackResource(dg.ConfigurableResource):
    """Slack settings. SLACK_EXPORT_PATH set: import that export zip. Else SLACK_BOT_TOKEN: the
    Web API. Neither: the in-process sandbox's Web API. The token arrives through EnvVar."""

    bot_token: str | None = None
    export_path: str | None = None
    base_url: str | None = None
    page_size: int = 200
    list_page_size: int = 1000
    timeout_seconds: float = 30.0

    @property
    def source(self) -> str:
        if self.export_path:
            return "export"
        return "api" if self.bot_token else "sandbox"

    def client(self) -> SlackClient:
        if self.bot_token:
            config = SlackConfig(
                token=self.bot_token,
                base_url=self.base_url or SlackConfig.DEFAULT_BASE_URL,
                page_size=self.page_size,
                list_page_size=self.list_page_size,
                timeout_seconds=self.timeout_seconds,
            )
        else:
            sandbox = ensure_sandbox()
            config = SlackConfig(
                token=SANDBOX_SLACK_BOT_TOKEN,
                base_url=self.base_url or f"{sandbox.base_url}/slack",
                page_size=self.page_size,
                list_page_size=self.list_page_size,
                timeout_seconds=self.timeout_seconds,
            )
        return SlackClient(config)

    def export(self) -> SlackExport:
        """The export, every file of it checked first: a broken file fails the load before the
        channels, users or any day of it is written."""
        export = SlackExport(self.export_path or "")
        try:
            export.validate()
        except BaseException:
            export.close()
            raise
        return export


def slack_resource_from_env(sandbox: bool = False) -> SlackResource:
    """The resource from SLACK_EXPORT_PATH (set: import the export), SLACK_BOT_TOKEN (as an EnvVar:
    never shown; set: the Web API), SLACK_BASE_URL, SLACK_PAGE_SIZE, SLACK_LIST_PAGE_SIZE and
    SLACK_TIMEOUT_SECONDS;
    neither, or `sandbox`: the sandbox's workspace."""
    real = not sandbox
    return SlackResource(
        bot_token=dg.EnvVar("SLACK_BOT_TOKEN") if real and os.getenv("SLACK_BOT_TOKEN") else None,
        export_path=(real and os.getenv("SLACK_EXPORT_PATH")) or None,
        base_url=os.getenv("SLACK_BASE_URL") or None,
        page_size=int_setting("SLACK_PAGE_SIZE", 200, low=1),
        list_page_size=int_setting("SLACK_LIST_PAGE_SIZE", 1000, low=1, high=1000),
        timeout_seconds=float_setting("SLACK_TIMEOUT_SECONDS", 30.0, low=0),
    )
