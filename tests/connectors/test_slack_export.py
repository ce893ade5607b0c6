"""Slack workspace exports import into the same rows as the Web API."""

from __future__ import annotations

import json
import zipfile
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from connectors.http import RetryPolicy
from connectors.sandbox import SandboxServer
from connectors.sandbox.slack_export import write_export
from connectors.slack import MESSAGES_SCHEMA, SlackClient, SlackConfig, SlackConfigError, SlackExport

SAMPLE = (
    Path(__file__).resolve().parents[2].parent / "shared" / "samples" / "slack-export" / "testarchive.zip"
)


def test_the_sample_export_imports_with_the_counts_checked_by_hand():
    # By hand (unzip -l; python json.load per file): channels.json 2 channels (enrique C0JGLMMNX,
    # traveling-sailor C0JL6CGQ2), users.json 4 users, 17 per-day files holding 158 messages:
    # enrique 6+6+2+20+9+12+10+18+19 = 102, traveling-sailor 5+3+14+9+14+8+2+1 = 56; subtypes
    # bot_message 94, channel_join 8, bot_add 3, file_share 3, file_comment 1, none 49; 4 messages
    # carry a "file", 1 has reactions, no thread replies.
    with SlackExport(SAMPLE) as export:
        channels = pa.Table.from_batches(list(export.channels())).to_pylist()
        users = pa.Table.from_batches(list(export.users())).to_pylist()
        messages = pa.Table.from_batches(list(export.messages()), schema=MESSAGES_SCHEMA).to_pylist()
        assert len(export.day_files()) == 17
    assert {c["channel_id"]: c["name"] for c in channels} == {
        "C0JGLMMNX": "enrique",
        "C0JL6CGQ2": "traveling-sailor",
    }
    assert len(users) == 4 and {u["name"] for u in users} == {
        "abilinski",
        "doubledeez",
        "hamza",
        "heroeshannibal",
    }
    assert len(messages) == 158
    per_channel = {}
    for m in messages:
        per_channel[m["channel_id"]] = per_channel.get(m["channel_id"], 0) + 1
    assert per_channel == {"C0JGLMMNX": 102, "C0JL6CGQ2": 56}
    subtypes = {}
    for m in messages:
        subtypes[m["subtype"]] = subtypes.get(m["subtype"], 0) + 1
    assert subtypes == {
        "bot_message": 94,
        None: 49,
        "channel_join": 8,
        "bot_add": 3,
        "file_share": 3,
        "file_comment": 1,
    }
    assert sum(m["files_count"] for m in messages) == 4
    assert sum(1 for m in messages if m["reactions"]) == 1
    assert len({(m["channel_id"], m["ts"]) for m in messages}) == 158
    assert all(m["thread_ts"] is None for m in messages)


def test_a_generated_export_round_trips_to_the_api_rows(tmp_path):
    first, last = date(2026, 6, 1), date(2026, 6, 7)
    path = write_export(tmp_path / "export.zip", 42, "small", first, last)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert {"channels.json", "groups.json", "users.json"} <= set(names)
        assert "general/2026-06-01.json" in names
        day_file = json.loads(zf.read("general/2026-06-02.json"))
        assert all(m["type"] == "message" and "ts" in m for m in day_file)
    day = date(2026, 6, 3)
    with SlackExport(path) as export:
        from_export = pa.Table.from_batches(list(export.messages(day, day)), schema=MESSAGES_SCHEMA)
        export_users = pa.Table.from_batches(list(export.users())).sort_by("user_id")
        export_channels = pa.Table.from_batches(list(export.channels())).sort_by("channel_id")
    # The API on the morning after the export's last day sees the same replies.
    with SandboxServer(seed=42, scale="small", today=date(2026, 6, 8)) as sandbox:
        config = SlackConfig(
            token="xoxb-sandbox-token",
            base_url=f"{sandbox.base_url}/slack",
            retry_policy=RetryPolicy(base_delay=0.01),
        )
        with SlackClient(config) as client:
            channel_ids = client.channel_ids()
            from_api = pa.Table.from_batches(list(client.messages(day, channel_ids)), schema=MESSAGES_SCHEMA)
            api_users = pa.Table.from_batches(list(client.users())).sort_by("user_id")
            api_channels = pa.Table.from_batches(list(client.channels())).sort_by("channel_id")
    keys = [("channel_id", "ascending"), ("ts", "ascending")]
    assert from_export.num_rows > 20
    assert from_export.sort_by(keys).equals(from_api.sort_by(keys))
    assert export_users.equals(api_users)
    assert export_channels.equals(api_channels)


def test_a_bad_export_path_names_the_setting(tmp_path):
    with pytest.raises(SlackConfigError, match="SLACK_EXPORT_PATH"):
        SlackExport(tmp_path / "missing.zip")
    (tmp_path / "not.zip").write_text("hello")
    with pytest.raises(SlackConfigError, match="not a zip"):
        SlackExport(tmp_path / "not.zip")
