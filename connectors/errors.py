"""Errors shared by every connector: a bad setting, and a failed API call."""

from __future__ import annotations


class ConnectorError(Exception):
    """An API call failed. Messages name what failed and never carry tokens or keys."""


class ConnectorConfigError(ConnectorError, ValueError):
    """A setting is missing or malformed; the message names the setting and the fix.

    Raised before any request is sent.
    """
