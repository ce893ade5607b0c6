"""Whole-export validation of a Slack workspace export, before anything of it is written.

An export is one input: a broken file in it (an edited channels.json, a users.json left out, a day
file cut short) must fail the load before channels, users or any day reach the warehouse, with the
file inside the zip, the position and the fix, rather than a bare JSONDecodeError after a table was
already replaced. `check_export` reads every member the connector would read and checks its shape;
`load_member` is the one place members are parsed, so a read after the check fails the same way.
"""

from __future__ import annotations

import json
import re
import zipfile
from typing import Any

from connectors.errors import ConnectorConfigError

# [...]/<channel folder>/<YYYY-MM-DD>.json, as connectors/slack.py reads them
DAY_FILE = re.compile(r"^(?:.*/)?([^/]+)/(\d{4}-\d{2}-\d{2})\.json$")

_FIX = (
    "Nothing from this export was loaded. Download the export again (Workspace settings > "
    "Import/Export Data > Export) or repair that file in the zip, then re-run."
)


class SlackExportError(ConnectorConfigError):
    """A member of the export zip is missing or malformed; the message names it, where, and the fix."""


def load_member(archive: zipfile.ZipFile, member: str, label: str) -> Any:
    """The parsed JSON of `member`; `label` is the export's path for the message."""
    try:
        data = archive.read(member)
    except (KeyError, zipfile.BadZipFile, OSError) as exc:
        raise SlackExportError(
            f"SLACK_EXPORT_PATH={label!r}: {member} cannot be read ({exc}). {_FIX}"
        ) from None
    try:
        return json.loads(data)
    except UnicodeDecodeError as exc:
        raise SlackExportError(
            f"SLACK_EXPORT_PATH={label!r}: {member} is not UTF-8 text (byte {exc.start}). {_FIX}"
        ) from None
    except json.JSONDecodeError as exc:
        raise SlackExportError(
            f"SLACK_EXPORT_PATH={label!r}: {member} is not valid JSON at line {exc.lineno}, column "
            f"{exc.colno} ({exc.msg}). {_FIX}"
        ) from None


def _objects(value: Any, member: str, label: str, required_keys: tuple[str, ...]) -> list[dict]:
    if not isinstance(value, list):
        raise SlackExportError(
            f"SLACK_EXPORT_PATH={label!r}: {member} holds a JSON {type(value).__name__}, not the list "
            f"Slack writes. {_FIX}"
        )
    for index, item in enumerate(value):
        missing = [k for k in required_keys if not isinstance(item, dict) or k not in item]
        if missing:
            raise SlackExportError(
                f"SLACK_EXPORT_PATH={label!r}: {member}, item {index} (0-based) "
                + ("is not an object" if not isinstance(item, dict) else f"has no {', '.join(missing)}")
                + f". {_FIX}"
            )
    return value


def check_export(archive: zipfile.ZipFile, prefix: str, label: str) -> int:
    """Check every member the import reads: channels.json, groups.json if present, users.json and
    every day file. Returns the number of day files.

    Raises:
        SlackExportError: naming the member, the position (line and column, or the item) and the fix.
    """
    names = set(archive.namelist())
    for name, required in (("channels.json", True), ("groups.json", False), ("users.json", True)):
        member = prefix + name
        if member not in names:
            if required:
                raise SlackExportError(
                    f"SLACK_EXPORT_PATH={label!r}: the export has no {member} (Slack writes it beside "
                    f"channels.json). {_FIX}"
                )
            continue
        keys = ("id",) if name == "users.json" else ("id", "name")
        _objects(load_member(archive, member, label), member, label, keys)
    days = 0
    for member in sorted(names):
        if member.startswith(prefix) and DAY_FILE.match(member[len(prefix) :]):
            _objects(load_member(archive, member, label), member, label, ("ts",))
            days += 1
    return days
