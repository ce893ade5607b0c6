"""The optional Discord connector against the sandbox server: snowflake windows, paging, faults."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta

import jsonschema
import pytest
import requests

from connectors.discord import (
    DiscordClient,
    DiscordConfig,
    DiscordConfigError,
    DiscordSchemaError,
    day_window,
    snowflake_at,
)
from connectors.http import ApiError, RetryPolicy
from connectors.sandbox import community
from connectors.sandbox.discord_api import SANDBOX_DISCORD_BOT_TOKEN

TODAY = date(2026, 11, 21)
DAY = TODAY - timedelta(days=3)
FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=60.0, max_total_seconds=90.0)


class Waits(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _busiest_channel(day: date) -> tuple[str, list[community.Post]]:
    posts = community.posts_on(42, "small", "discord", day)
    by_channel: dict[str, list] = {}
    for p in posts:
        by_channel.setdefault(p.space_id, []).append(p)
    return max(by_channel.items(), key=lambda kv: len(kv[1]))


@pytest.fixture
def make(sandbox):
    clients = []

    def make(sleep=None, **overrides) -> DiscordClient:
        settings = dict(
            bot_token=SANDBOX_DISCORD_BOT_TOKEN,
            channel_ids=",".join(s.native_id for s in community.spaces("discord")),
            base_url=f"{sandbox.base_url}/discord",
            retry=FAST,
            timeout_seconds=10,
        )
        settings.update(overrides)
        client = DiscordClient(DiscordConfig(**settings), sleep=Waits() if sleep is None else sleep)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_a_days_window_is_the_snowflakes_of_its_utc_bounds():
    first, end = day_window(date(2026, 1, 1))
    ms = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
    assert first == (ms - 1420070400000) << 22
    assert end == snowflake_at(datetime(2026, 1, 2, tzinfo=UTC))
    assert (end - first) >> 22 == 86_400_000


def test_settings_are_checked_before_any_request():
    with pytest.raises(DiscordConfigError, match="DISCORD_BOT_TOKEN"):
        DiscordConfig(bot_token="", channel_ids="1261000000000000001")
    with pytest.raises(DiscordConfigError, match="'Bot '"):
        DiscordConfig(bot_token="Bot abc", channel_ids="1261000000000000001")
    with pytest.raises(DiscordConfigError, match="#general"):
        DiscordConfig(bot_token="abc", channel_ids="1261000000000000001,#general")
    config = DiscordConfig.from_env(
        {"DISCORD_BOT_TOKEN": "tok-123", "DISCORD_CHANNEL_IDS": "1261000000000000001"}
    )
    assert config.base_url == "https://discord.com/api/v10" and "tok-123" not in repr(config)


def test_a_day_pages_with_after_snowflakes_and_keeps_exactly_that_day(sandbox, make):
    channel, expected = _busiest_channel(DAY)
    client = make(page_size=3)
    batches = list(client.messages(channel, DAY))
    rows = [r for b in batches for r in b.to_pylist()]
    assert sorted(r["message_id"] for r in rows) == sorted(p.post_id for p in expected)
    assert len(batches) >= 2 and all(r["date"] == DAY for r in rows)
    asked = sandbox.requests_to(f"/discord/channels/{channel}/messages")[-len(batches) :]
    first, _ = day_window(DAY)
    assert f"after={first - 1}" in asked[0].path
    replies = [r for r in rows if r["message_reference_id"]]
    assert all(r["type"] == 19 for r in replies)
    reacted = [r for r in rows if r["reactions"]]
    assert all(json.loads(r["reactions"])[0]["count"] >= 1 for r in reacted)


def test_retry_after_of_the_429_body_is_honoured(sandbox, make):
    sandbox.inject_fault(
        "/discord/channels/",
        429,
        body={"message": "You are being rate limited.", "retry_after": 1.75, "global": False},
        headers={"Retry-After": "2", "X-RateLimit-Reset-After": "1.75"},
    )
    waits = Waits()
    channel, expected = _busiest_channel(DAY)
    rows = [r for b in make(sleep=waits).messages(channel, DAY) for r in b.to_pylist()]
    assert waits[0] == 1.75 and len(rows) == len(expected)


def test_reset_after_header_is_used_when_the_body_has_no_hint(sandbox, make):
    sandbox.inject_fault(
        "/discord/channels/", 429, body="rate limited", headers={"X-RateLimit-Reset-After": "0.5"}
    )
    waits = Waits()
    channel, _ = _busiest_channel(DAY)
    list(make(sleep=waits).messages(channel, DAY))
    assert waits[0] == 0.5


@pytest.mark.parametrize(
    ("status", "kind"), [(503, "status"), (500, "status"), (200, "drop"), (200, "truncate")]
)
def test_server_errors_and_wire_failures_are_retried(sandbox, make, status, kind):
    sandbox.inject_fault("/discord/channels/", status, kind=kind)
    channel, expected = _busiest_channel(DAY)
    assert sum(b.num_rows for b in make().messages(channel, DAY)) == len(expected)


def test_a_bad_token_fails_at_once_without_leaking_it(sandbox, make, caplog):
    caplog.set_level(logging.DEBUG)
    client = make(bot_token="not-the-token-9876")
    with pytest.raises(ApiError) as info:
        list(client.messages("1261000000000000001", DAY))
    assert info.value.status == 401 and "DISCORD_BOT_TOKEN" in str(info.value)
    assert "not-the-token-9876" not in str(info.value) and "not-the-token-9876" not in caplog.text
    assert client.requests == 1


def test_a_removed_field_fails_naming_it_and_an_extra_one_is_logged(sandbox, make, caplog):
    channel, _ = _busiest_channel(DAY)
    sandbox.inject_fault(
        "/discord/channels/", 200, kind="transform", transform=lambda ms: [{**m, "soundboard": 1} for m in ms]
    )
    with caplog.at_level(logging.WARNING, logger="connectors.discord"):
        list(make().messages(channel, DAY))
    assert "soundboard" in caplog.text
    sandbox.inject_fault(
        "/discord/channels/",
        200,
        kind="transform",
        transform=lambda ms: [{k: v for k, v in m.items() if k != "timestamp"} for m in ms],
    )
    with pytest.raises(DiscordSchemaError, match="'timestamp'"):
        list(make().messages(channel, DAY))


def test_sandbox_messages_validate_against_the_contract(sandbox, contract):
    spec = contract("discord")
    operation = spec["paths"]["/channels/{channel_id}/messages"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    validator = jsonschema.Draft202012Validator({**schema, "components": spec["components"]})
    channel, _ = _busiest_channel(DAY)
    headers = {"Authorization": f"Bot {SANDBOX_DISCORD_BOT_TOKEN}"}
    url = f"{sandbox.base_url}/discord/channels/{channel}/messages"
    answer = requests.get(url, params={"limit": 100}, headers=headers, timeout=30)
    assert answer.status_code == 200 and answer.headers["X-RateLimit-Bucket"]
    validator.validate(answer.json())
    assert any("message_reference" in m for m in answer.json())
    limited = spec["components"]["schemas"]["RatelimitedResponse"]
    sandbox.inject_fault("/discord/channels/", 429)
    throttled = requests.get(url, headers=headers, timeout=30)
    assert throttled.status_code == 429
    jsonschema.Draft202012Validator({**limited, "components": spec["components"]}).validate(throttled.json())
