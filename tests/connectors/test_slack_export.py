"""Slack workspace exports import into the same rows as the Web API."""

from __future__ import annotations

import json
import zipfile
from datetime import date

import pyarrow as pa
import pytest

from connectors.http import RetryPolicy
from connectors.sandbox import SandboxServer
from connectors.sandbox.slack_export import write_export
from connectors.slack import MESSAGES_SCHEMA, SlackClient, SlackConfig, SlackConfigError, SlackExport


def _count(values) -> dict:
    out: dict = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def test_a_2016_layout_export_imports_with_the_counts_checked_by_hand(slack_export_2016):
    # By hand from tests/fixtures/slack_export_2016: channels.json 2 channels (lighthouse C0K1LHOUS,
    # tidepool C0K2TIDEP), users.json 5 users (1 bot user, beaker; nobody has an e-mail), 6 per-day
    # files named by the Pacific day, 27 messages: lighthouse 7 + 3 + 3 + 3 = 16, tidepool 8 + 3 =
    # 11; subtypes channel_join 7, none 9, bot_message 3, and 1 each of channel_purpose,
    # channel_topic, channel_leave, pinned_item, bot_add, file_share, file_comment, me_message;
    # 2 messages carry a "file" (the share and the comment), 3 have reactions, 2 were edited, no
    # thread replies.
    with SlackExport(slack_export_2016) as export:
        channels = pa.Table.from_batches(list(export.channels())).to_pylist()
        users = pa.Table.from_batches(list(export.users())).to_pylist()
        messages = pa.Table.from_batches(list(export.messages()), schema=MESSAGES_SCHEMA).to_pylist()
        assert len(export.day_files()) == 6
        assert export.days() == [
            date(2016, 1, 14),
            date(2016, 1, 15),
            date(2016, 1, 16),
            date(2016, 2, 8),
            date(2016, 2, 9),
            date(2016, 3, 17),
        ]
    assert {c["channel_id"]: (c["name"], c["topic"], c["purpose"]) for c in channels} == {
        "C0K1LHOUS": ("lighthouse", "", "Planning the spring lantern walk"),
        "C0K2TIDEP": ("tidepool", "Field notes and tide tables", ""),
    }
    assert not any(c["is_private"] or c["is_archived"] for c in channels)
    assert {u["user_id"]: (u["name"], u["is_bot"]) for u in users} == {
        "U0K1MARE1": ("maren", False),
        "U0K1TOMAS": ("tomas.v", False),
        "U0K1PRIYA": ("priya", False),
        "U0K1LURKR": ("quietfox", False),
        "U0K1BEAKR": ("beaker", True),
    }
    assert all(u["email"] is None and u["email_domain"] is None for u in users)
    assert {u["team_id"] for u in users} == {"T0K1LNTRN"}
    assert len(messages) == 27
    assert _count(m["channel_id"] for m in messages) == {"C0K1LHOUS": 16, "C0K2TIDEP": 11}
    assert _count(m["subtype"] for m in messages) == {
        "channel_join": 7,
        None: 9,
        "bot_message": 3,
        "channel_purpose": 1,
        "channel_topic": 1,
        "channel_leave": 1,
        "pinned_item": 1,
        "bot_add": 1,
        "file_share": 1,
        "file_comment": 1,
        "me_message": 1,
    }
    assert sum(m["files_count"] for m in messages) == 2
    assert sum(1 for m in messages if m["reactions"]) == 3
    assert {m["ts"]: m["edited_ts"] for m in messages if m["edited_ts"]} == {
        "1452879000.000001": "1452879210.000000",
        "1458238200.000001": "1458238500.000000",
    }
    assert _count(m["bot_id"] for m in messages if m["bot_id"]) == {"B0K1TRAVS": 3, "B0K1FEEDS": 1}
    # the file comment names its author only inside `comment`: the row has no user
    assert [m["user_id"] for m in messages if m["subtype"] == "file_comment"] == [None]
    assert len({(m["channel_id"], m["ts"]) for m in messages}) == 27
    assert all(m["thread_ts"] is None and m["reply_count"] == 0 for m in messages)


def test_export_days_are_utc_days_whatever_file_holds_them(slack_export_2016):
    # The per-day files are named by the workspace's (Pacific) day: lighthouse/2016-01-14.json
    # holds 7 messages of 03:10-03:20 UTC on the 15th, and tidepool/2016-02-09.json 3 messages of
    # 03:00-03:30 UTC on the 10th. Rows are dated by UTC day, as the Web API's are.
    with SlackExport(slack_export_2016) as export:

        def on(first: date, last: date | None = None) -> list[dict]:
            batches = list(export.messages(first, last or first))
            return pa.Table.from_batches(batches, schema=MESSAGES_SCHEMA).to_pylist()

        assert on(date(2016, 1, 14)) == []
        assert _count(m["date"] for m in on(date(2016, 1, 15))) == {date(2016, 1, 15): 10}
        assert len(on(date(2016, 1, 16))) == 3
        assert on(date(2016, 2, 9)) == []
        feb_10 = on(date(2016, 2, 10))
        assert [(m["user_id"], m["subtype"]) for m in feb_10] == [
            ("U0K1PRIYA", None),
            ("U0K1BEAKR", None),
            ("U0K1TOMAS", "channel_leave"),
        ]
        assert len(on(date(2016, 2, 8))) == 8
        assert len(on(date(2016, 1, 15), date(2016, 3, 17))) == 27


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
