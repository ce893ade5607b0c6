"""The Slack source as a Dagster resource: the Web API, a workspace export, or the sandbox."""

from __future__ import annotations

import dagster as dg

from connectors.sandbox import ensure_sandbox
from connectors.sandbox.brand import SANDBOX_SLACK_BOT_TOKEN
from connectors.slack import SlackClient, SlackConfig, SlackExport


class SlackResource(dg.ConfigurableResource):
    """Slack settings. SLACK_EXPORT_PATH set: import that export zip. Else SLACK_BOT_TOKEN: the
    Web API. Neither: the in-process sandbox's Web API. The token arrives through EnvVar."""

    bot_token: str | None = None
    export_path: str | None = None
    base_url: str | None = None
    page_size: int = 200
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
                timeout_seconds=self.timeout_seconds,
            )
        else:
            sandbox = ensure_sandbox()
            config = SlackConfig(
                token=SANDBOX_SLACK_BOT_TOKEN,
                base_url=self.base_url or f"{sandbox.base_url}/slack",
                page_size=self.page_size,
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
