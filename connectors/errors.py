"""Errors shared by every connector: a bad setting, and a failed API call."""

from __future__ import annotations

from connectors.secrets import redact_values


class ConnectorError(Exception):
    """An API call failed. Messages name what failed and never carry tokens or keys."""

    def __str__(self) -> str:
        # By value: a configured secret a server echoed, or a user pasted into a setting.
        return redact_values(super().__str__())


class ConnectorConfigError(ConnectorError, ValueError):
    """A setting is missing or malformed; the message names the setting and the fix.

    Raised before any request is sent.
    """
