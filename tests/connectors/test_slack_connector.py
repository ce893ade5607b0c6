"""The Slack Web API connector against the sandbox's Slack on loopback: paging, threads, faults."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from connectors.http import RetryPolicy
from connectors.sandbox import SandboxServer, community
from connectors.sandbox.slack_api import users_on
from connectors.slack import (
    MESSAGES_SCHEMA,
    SlackClient,
    SlackConfig,
    SlackConfigError,
    SlackError,
    day_bounds,
)

TOKEN = "xoxb-sandbox-token"
DAY = date(2026, 6, 2)
FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=2.0, max_total_seconds=20)


@pytest.fixture
def client(sandbox):
    with SlackClient(
        SlackConfig(
            token=TOKEN,
            base_url=f"{sandbox.base_url}/slack",
            page_size=20,
            list_page_size=20,
            retry_policy=FAST,
        )
    ) as c:
        yield c


def _messages(client, day=DAY, channels=None) -> pa.Table:
    channels = channels or client.channel_ids()
    return pa.Table.from_batches(list(client.messages(day, channels)), schema=MESSAGES_SCHEMA)


def test_config_is_validated_before_any_request():
    with pytest.raises(SlackConfigError, match="SLACK_BOT_TOKEN is not set"):
        SlackConfig.from_env({})
    with pytest.raises(SlackConfigError, match="xoxb-"):
        SlackConfig(token="xoxp-123-456")
    with pytest.raises(SlackConfigError, match="SLACK_BASE_URL"):
        SlackConfig(token=TOKEN, base_url="slack.com/api")
    with pytest.raises(SlackConfigError, match="SLACK_PAGE_SIZE"):
        SlackConfig(token=TOKEN, page_size=0)
    with pytest.raises(SlackConfigError, match="SLACK_LIST_PAGE_SIZE"):
        SlackConfig(token=TOKEN, list_page_size=1001)
    assert TOKEN not in repr(SlackConfig(token=TOKEN))


def test_channels_and_users_page_through_every_cursor(client, sandbox):
    channels = pa.Table.from_batches(list(client.channels()))
    assert channels.num_rows == 7 and sum(channels.column("is_private").to_pylist()) == 1
    batches = list(client.users())
    users = pa.Table.from_batches(batches)
    expected = users_on(sandbox.seed, sandbox.scale, sandbox.today())
    assert len(batches) > 3  # 20 per page
    assert users.num_rows == len(expected)
    assert len(set(users.column("user_id").to_pylist())) == users.num_rows
    rows = users.to_pylist()
    assert any(r["email_domain"] == "northwind-analytics.com" for r in rows)
    assert any(r["is_bot"] and r["email"] is None for r in rows)


def test_a_day_is_its_parents_and_all_their_replies(client, sandbox):
    table = _messages(client)
    rows = table.to_pylist()
    posts = community.posts_on(sandbox.seed, sandbox.scale, "slack", DAY)
    roots = [p for p in posts if p.thread_root_id is None]
    replies = sum(
        len(community.thread_posts(sandbox.seed, sandbox.scale, "slack", r.post_id)) - 1 for r in roots
    )
    assert table.num_rows == len(roots) + replies
    assert {r["date"] for r in rows} == {DAY}
    assert len({(r["channel_id"], r["ts"]) for r in rows}) == len(rows)
    parents = [r for r in rows if r["reply_count"]]
    assert parents and all(r["thread_ts"] == r["ts"] and r["latest_reply"] for r in parents)
    reply_rows = [r for r in rows if r["thread_ts"] and r["thread_ts"] != r["ts"]]
    assert len(reply_rows) == replies and any(
        datetime.fromtimestamp(float(r["ts"]), UTC).date() > DAY for r in reply_rows
    )
    assert any(r["reactions"] and '"count"' in r["reactions"] for r in rows)
    assert any(r["subtype"] == "bot_message" and r["bot_id"] for r in rows)
    assert any("<https://" in (r["text"] or "") for r in rows)


def test_day_bounds_are_the_utc_day_exclusive_of_the_next():
    oldest, latest = day_bounds(date(2026, 6, 2))
    start = datetime(2026, 6, 2, tzinfo=UTC).timestamp()
    assert float(oldest) < start and oldest == f"{int(start) - 1}.999999"
    assert latest == f"{int(start) + 86400}.000000"


def test_ratelimited_429_with_retry_after_is_retried_and_loaded(client, sandbox):
    expected = _messages(client).num_rows
    sandbox.inject_fault("conversations.history", status=429, times=1, headers={"Retry-After": "1"})
    assert _messages(client).num_rows == expected
    faults = [r for r in sandbox.requests_to("conversations.history") if r.status == 429]
    assert faults


@pytest.mark.parametrize("kind,status", [("status", 500), ("status", 503), ("drop", 0), ("truncate", 0)])
def test_transient_failures_are_retried(client, sandbox, kind, status):
    expected = _messages(client).num_rows
    sandbox.inject_fault("conversations.replies", status=status or 200, times=1, kind=kind)
    assert _messages(client).num_rows == expected


def test_an_ok_false_transient_error_is_retried(client, sandbox):
    sandbox.inject_fault("users.list", status=200, times=1, body={"ok": False, "error": "internal_error"})
    assert pa.Table.from_batches(list(client.users())).num_rows > 0


def test_slow_answer_beyond_the_timeout_is_retried(sandbox):
    config = SlackConfig(
        token=TOKEN, base_url=f"{sandbox.base_url}/slack", timeout_seconds=0.3, retry_policy=FAST
    )
    sandbox.inject_fault("conversations.list", status=200, kind="slow", delay=1.0, times=1)
    with SlackClient(config) as c:
        assert len(c.channel_ids()) == 7


def test_invalid_auth_is_permanent_and_never_shows_the_token(sandbox, caplog):
    secret = "xoxb-1234-5678-TopSecretValue"
    config = SlackConfig(token=secret, base_url=f"{sandbox.base_url}/slack", retry_policy=FAST)
    caplog.set_level(logging.DEBUG)
    with SlackClient(config) as c, pytest.raises(SlackError) as info:
        list(c.channels())
    error = info.value
    assert error.error == "invalid_auth" and error.method == "conversations.list" and error.attempts == 1
    assert "reinstall" in str(error).lower() and "conversations.list" in str(error)
    assert secret not in str(error) and secret not in caplog.text


def test_errors_after_the_last_attempt_name_method_and_status_without_the_token(client, sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.inject_fault("conversations.list", status=503, times=None)
    with pytest.raises(SlackError) as info:
        client.channel_ids()
    assert "conversations.list" in str(info.value) and "503" in str(info.value)
    assert info.value.attempts == FAST.max_attempts
    assert TOKEN not in str(info.value) and TOKEN not in caplog.text


def test_an_ok_false_error_names_the_method_and_error(client):
    with pytest.raises(SlackError, match="conversations.history.*channel_not_found"):
        list(client.history("C0NOSUCHCH", *day_bounds(DAY)))


def test_a_missing_required_field_fails_naming_it(client, sandbox):
    def drop_ts(payload):
        for m in payload.get("messages", []):
            m.pop("ts", None)
        return payload

    sandbox.inject_fault("conversations.history", status=200, kind="transform", transform=drop_ts, times=1)
    with pytest.raises(SlackError, match="'messages\\[\\].ts'"):
        _messages(client, channels=["C07NW0GENRL"])
    renamed = lambda payload: {("items" if k == "members" else k): v for k, v in payload.items()}  # noqa: E731
    sandbox.inject_fault("users.list", status=200, kind="transform", transform=renamed, times=1)
    with pytest.raises(SlackError, match="'members'"):
        list(client.users())


def test_an_extra_field_is_tolerated_with_a_warning(client, sandbox, caplog):
    def add(payload):
        for c in payload.get("channels", []):
            c["brand_new_field"] = 1
        return payload

    sandbox.inject_fault("conversations.list", status=200, kind="transform", transform=add, times=1)
    caplog.set_level(logging.WARNING)
    assert len(client.channel_ids()) == 7
    assert "brand_new_field" in caplog.text


def _scanned(client, days, channels, **kwargs) -> dict[date, list[dict]]:
    scan = client.scan(channels, days)
    return {
        d: pa.Table.from_batches(
            list(client.messages(d, channels, scan=scan, **kwargs)), schema=MESSAGES_SCHEMA
        ).to_pylist()
        for d in sorted(days, reverse=True)
    }


def test_a_range_is_one_history_scan_per_channel_with_the_same_rows_as_day_windows(sandbox):
    """`scan(days)`: one conversations.history scan per channel over the whole range, pages of 200,
    not one window per channel and day; replies only for parents with replies; same rows."""
    days = [date(2026, 6, 1) + timedelta(days=i) for i in range(6)]

    def load(scanned: bool) -> tuple[dict, int, int, int]:
        config = SlackConfig(
            token=TOKEN, base_url=f"{sandbox.base_url}/slack", page_size=200, retry_policy=FAST
        )
        with SlackClient(config) as c:
            channels = c.channel_ids()
            history_before = len(sandbox.requests_to("conversations.history"))
            replies_before = len(sandbox.requests_to("conversations.replies"))
            if scanned:
                by_day = _scanned(c, days, channels)
            else:
                by_day = {
                    d: pa.Table.from_batches(
                        list(c.messages(d, channels)), schema=MESSAGES_SCHEMA
                    ).to_pylist()
                    for d in sorted(days, reverse=True)
                }
            history = len(sandbox.requests_to("conversations.history")) - history_before
            replies = len(sandbox.requests_to("conversations.replies")) - replies_before
        return by_day, history, replies, len(channels)

    per_day, per_day_history, per_day_replies, channels = load(scanned=False)
    scanned, scanned_history, scanned_replies, _ = load(scanned=True)
    assert scanned == per_day and sum(len(rows) for rows in scanned.values()) > 0
    assert per_day_history == channels * len(days)
    assert scanned_history == channels  # each channel's 6 days fit one page of 200
    parents_with_replies = sum(
        1
        for rows in scanned.values()
        for r in rows
        if r["reply_count"] > 0 and r["thread_ts"] in (None, r["ts"])
    )
    assert scanned_replies == per_day_replies == parents_with_replies


def test_a_scan_pages_through_a_long_range_in_pages_of_the_page_size(client, sandbox):
    """page_size 20 over three weeks: a channel's scan is ceil(parents / 20) calls (at least one)."""
    days = [date(2026, 5, 20) + timedelta(days=i) for i in range(21)]
    channels = client.channel_ids()
    before = len(sandbox.requests_to("conversations.history"))
    rows = _scanned(client, days, channels)
    calls = len(sandbox.requests_to("conversations.history")) - before
    parents = {c: 0 for c in channels}
    for day_rows in rows.values():
        for r in day_rows:
            if r["thread_ts"] in (None, r["ts"]):
                parents[r["channel_id"]] += 1
    assert calls == sum(max(1, -(-n // 20)) for n in parents.values())
    assert sum(parents.values()) > 100


def test_replies_are_asked_only_for_threads_whose_latest_reply_moved():
    day = date(2026, 6, 2)
    with SandboxServer(seed=42, scale="small", today=date(2026, 6, 4)) as early:
        with SlackClient(
            SlackConfig(token=TOKEN, base_url=f"{early.base_url}/slack", retry_policy=FAST)
        ) as c:
            channels = c.channel_ids()
            loaded_rows = _scanned(c, [day], channels)[day]
    loaded = {(r["channel_id"], r["ts"]): r["latest_reply"] for r in loaded_rows if r["reply_count"]}
    with SandboxServer(seed=42, scale="small", today=date(2026, 6, 20)) as late:
        with SlackClient(SlackConfig(token=TOKEN, base_url=f"{late.base_url}/slack", retry_policy=FAST)) as c:
            unchanged: list[tuple[str, str]] = []
            rows = _scanned(c, [day], channels, loaded=loaded, unchanged=unchanged)[day]
            asked = {r.path.split("ts=")[1].split("&")[0] for r in late.requests_to("conversations.replies")}
            full = _scanned(c, [day], channels)[day]
    now = {(r["channel_id"], r["ts"]): r["latest_reply"] for r in full if r["reply_count"]}
    moved = {key for key, latest in now.items() if loaded.get(key) != latest}
    assert moved and unchanged, "some threads of the day grew after the first load, some did not"
    assert {ts for _, ts in moved} == asked
    assert set(unchanged) == set(now) - moved
    # the rows: every parent fresh, and the replies of the moved threads (the rest are carried over)
    expected = [
        r for r in full if r["thread_ts"] in (None, r["ts"]) or (r["channel_id"], r["thread_ts"]) in moved
    ]
    key = lambda r: (r["channel_id"], r["ts"])  # noqa: E731
    assert sorted(rows, key=key) == sorted(expected, key=key)


def test_a_channel_the_bot_left_is_skipped_with_a_warning_and_the_rest_load(client, sandbox, caplog):
    channels = client.channel_ids()
    days = [date(2026, 6, 1), date(2026, 6, 2)]
    everything = _scanned(client, days, channels)
    left = channels[0]
    sandbox.slack_left_channels.add(left)
    try:
        caplog.set_level(logging.WARNING)
        scan = client.scan(channels, days)
        rows = {
            d: pa.Table.from_batches(
                list(client.messages(d, channels, scan=scan)), schema=MESSAGES_SCHEMA
            ).to_pylist()
            for d in sorted(days, reverse=True)
        }
    finally:
        sandbox.slack_left_channels.discard(left)
    assert scan.skipped == [left]
    assert "not_in_channel" in caplog.text and left in caplog.text
    for d in days:
        assert rows[d] == [r for r in everything[d] if r["channel_id"] != left]
    assert any(r["channel_id"] == left for d in days for r in everything[d])
