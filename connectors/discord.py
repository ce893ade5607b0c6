"""Discord API connector (optional source): the messages of chosen channels, one UTC day at a time.

Endpoint: `GET {base_url}/channels/{channel_id}/messages?after=<snowflake>&limit=100` (base_url
https://discord.com/api/v10, overridable with DISCORD_BASE_URL), `Authorization: Bot <token>`
(DISCORD_BOT_TOKEN; the bot must be in the server with View Channel and Read Message History).
Channels: DISCORD_CHANNEL_IDS, comma-separated.

A day's window is a snowflake range: `(unix_ms - 1420070400000) << 22` of the day's UTC start and
of the next day's start. Paging (`pages()`): `after` = the window start - 1, then the largest id
of each page, until a page is short or passes the window's end; messages past the end are dropped.

Rate limits: Discord answers 429 with `{"message", "retry_after": <float seconds>, "global"}` and
the headers `Retry-After`, `X-RateLimit-Reset-After`; the connector waits that long (through
`connectors.http.call_with_retries`, which also retries 5xx, dropped connections and cut bodies).
When `X-RateLimit-Remaining` is 0 it waits `X-RateLimit-Reset-After` before the next request.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, ClassVar

import pyarrow as pa
import requests

from connectors.errors import ConnectorConfigError, ConnectorError
from connectors.http import (
    ApiError,
    ApiSession,
    RetryPolicy,
    TransientError,
    call_with_retries,
    json_body,
    parse_retry_after,
    pool_size_from_env,
    raise_for_transient_status,
    redact,
    send,
)
from connectors.ratelimit import RateLimits, RouteBuckets
from connectors.secrets import register_secret

log = logging.getLogger(__name__)

SOURCE = "discord"
DISCORD_EPOCH_MS = 1420070400000
MAX_LIMIT = 100

MESSAGES_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32()),
        pa.field("channel_id", pa.string()),
        pa.field("message_id", pa.string()),
        pa.field("author_id", pa.string()),
        pa.field("author_username", pa.string()),
        pa.field("author_is_bot", pa.bool_()),
        pa.field("type", pa.int64()),  # 0 default, 19 reply, 7 user join, 21 thread starter, ...
        pa.field("content", pa.string()),
        pa.field("timestamp", pa.timestamp("us", tz="UTC")),
        pa.field("edited_timestamp", pa.timestamp("us", tz="UTC")),
        pa.field("message_reference_id", pa.string()),
        pa.field("thread_id", pa.string()),
        pa.field("reactions", pa.string()),  # JSON: [{"emoji": name or id, "count": n}]
    ]
)

_NEEDS = ("id", "type", "content", "timestamp", "author", "channel_id")
_KNOWN = set(
    "type content mentions mention_roles attachments embeds timestamp edited_timestamp flags components "
    "stickers sticker_items id channel_id author pinned mention_everyone tts call activity application "
    "application_id interaction nonce webhook_id message_reference thread mention_channels "
    "role_subscription_data purchase_notification position resolved poll shared_client_theme "
    "interaction_metadata message_snapshots lobby_member reactions referenced_message".split()
)


class DiscordConfigError(ConnectorConfigError):
    """A Discord setting is missing or malformed (raised before any request)."""


class DiscordSchemaError(ConnectorError):
    """A message lacks a field the connector needs."""


def snowflake_at(moment: datetime) -> int:
    """The smallest snowflake of a moment: (unix ms - Discord epoch) << 22."""
    ms = int(moment.timestamp() * 1000)
    return max(0, ms - DISCORD_EPOCH_MS) << 22


def day_window(day: date) -> tuple[int, int]:
    """[first, end) snowflakes of a UTC day."""
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return snowflake_at(start), snowflake_at(start + timedelta(days=1))


def _channel_ids(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
    else:
        parts = [str(p).strip() for p in (value or ())]
    parts = [p for p in parts if p]
    if not parts:
        raise DiscordConfigError(
            "DISCORD_CHANNEL_IDS is not set: list the channel ids to load, comma-separated (Discord "
            "settings > Advanced > Developer Mode, then right-click a channel > Copy Channel ID)."
        )
    bad = [p for p in parts if not re.fullmatch(r"[1-9][0-9]{5,19}", p)]
    if bad:
        raise DiscordConfigError(
            f"DISCORD_CHANNEL_IDS holds {', '.join(repr(b) for b in bad)}: a channel id is a number "
            "(a snowflake such as 1261000000000000001), not a name or a #mention."
        )
    return tuple(dict.fromkeys(parts))


@dataclass(frozen=True)
class DiscordConfig:
    """Settings of the Discord connector, validated on construction (the token is never shown)."""

    DEFAULT_BASE_URL: ClassVar[str] = "https://discord.com/api/v10"

    bot_token: str = field(repr=False)
    channel_ids: tuple[str, ...] | str
    base_url: str = DEFAULT_BASE_URL
    timeout_seconds: float = 30.0
    page_size: int = MAX_LIMIT
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limits: RateLimits = field(default_factory=RateLimits.from_env)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        token = str(self.bot_token or "").strip()
        if token.lower().startswith("bot "):
            raise DiscordConfigError(
                "DISCORD_BOT_TOKEN starts with 'Bot ': give the token alone; the connector adds the prefix."
            )
        if not token or any(c.isspace() for c in token):
            raise DiscordConfigError(
                "DISCORD_BOT_TOKEN is not set or holds whitespace: copy the bot's token from the Developer "
                "Portal (your application > Bot > Reset Token)."
            )
        set_(self, "bot_token", token)
        register_secret(token)
        set_(self, "channel_ids", _channel_ids(self.channel_ids))
        base = str(self.base_url or "").strip().rstrip("/")
        if not re.match(r"^https?://[^/\s]+", base):
            raise DiscordConfigError(
                f"DISCORD_BASE_URL={base!r} is not an http(s) URL (default https://discord.com/api/v10)."
            )
        set_(self, "base_url", base)
        try:
            timeout = float(self.timeout_seconds)
        except (TypeError, ValueError):
            timeout = -1.0
        if not timeout > 0:
            raise DiscordConfigError(f"DISCORD_TIMEOUT_SECONDS={self.timeout_seconds!r} must be positive.")
        set_(self, "timeout_seconds", timeout)
        if not 1 <= int(self.page_size) <= MAX_LIMIT:
            raise DiscordConfigError(f"page_size={self.page_size} must be 1..100 (Discord's limit).")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DiscordConfig:
        """DISCORD_BOT_TOKEN, DISCORD_CHANNEL_IDS, DISCORD_BASE_URL, DISCORD_TIMEOUT_SECONDS."""
        env = os.environ if environ is None else environ
        return cls(
            bot_token=env.get("DISCORD_BOT_TOKEN", ""),
            channel_ids=env.get("DISCORD_CHANNEL_IDS", ""),
            base_url=env.get("DISCORD_BASE_URL") or cls.DEFAULT_BASE_URL,
            timeout_seconds=env.get("DISCORD_TIMEOUT_SECONDS") or 30.0,
            retry=RetryPolicy.from_env(env),
            rate_limits=RateLimits.from_env(env),
        )


def _time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


class DiscordClient:
    """A Discord bot's reader of channel messages."""

    def __init__(self, config: DiscordConfig, sleep: Callable[[float], None] | None = None):
        self.config = config
        self._sleep = time.sleep if sleep is None else sleep
        self._session = ApiSession(pool_size_from_env())
        self._session.headers.update(
            {
                "Authorization": f"Bot {config.bot_token}",
                "User-Agent": "DiscordBot (https://github.com/darksocial-warehouse, 1.0)",
            }
        )
        self._warned: set[str] = set()
        # the route buckets of this bot, shared with its other clients in the process
        self._buckets = config.rate_limits.shared("discord.buckets", config.bot_token, RouteBuckets)
        self.requests = 0

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> DiscordClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get(self, path: str, params: Mapping[str, Any]) -> Any:
        endpoint = re.sub(r"/\d{6,}", "/{id}", path)

        def attempt() -> Any:
            self.config.rate_limits.acquire("discord.global", self.config.bot_token)
            self._buckets.wait(endpoint, self._sleep)
            self.requests += 1
            response = send(
                self._session,
                "GET",
                self.config.base_url + path,
                timeout=self.config.timeout_seconds,
                params=params,
            )
            self._buckets.update(endpoint, response.headers)
            if 200 <= response.status_code < 300:
                return json_body(response)
            message, wait = _error_details(response)
            if response.status_code == 429:
                raise TransientError(429, message, wait)
            raise_for_transient_status(response, message)
            if response.status_code == 401:
                message += " (check DISCORD_BOT_TOKEN: reset it in the Developer Portal if it was revoked)"
            elif response.status_code == 403:
                message += (
                    f" (no access to {path}: grant the app's role View Channel and Read Message History)"
                )
            raise ApiError(SOURCE, endpoint, response.status_code, message)

        return call_with_retries(
            attempt, source=SOURCE, endpoint=endpoint, policy=self.config.retry, sleep=self._sleep
        )

    def pages(self, channel_id: str, after: int, before: int) -> Iterator[list[dict]]:
        """Messages of a channel with after < id < before, oldest page first, a list per page."""
        path = f"/channels/{channel_id}/messages"
        cursor = after
        while True:
            answer = self.get(path, {"after": str(cursor), "limit": self.config.page_size})
            if not isinstance(answer, list):
                raise DiscordSchemaError(f"discord: {path}: expected a JSON list of messages")
            messages = [self._check(m, path) for m in answer]
            ids = [int(m["id"]) for m in messages]
            yield [m for m, i in zip(messages, ids, strict=True) if i < before]
            if len(messages) < self.config.page_size or not ids or max(ids) >= before:
                return
            if max(ids) <= cursor:
                raise ApiError(SOURCE, path, 200, f"paging does not advance past after={cursor}")
            cursor = max(ids)

    def _check(self, message: Any, where: str) -> dict:
        if not isinstance(message, dict):
            raise DiscordSchemaError(f"discord: {where}: a message is not a JSON object")
        for name in _NEEDS:
            if name not in message:
                raise DiscordSchemaError(
                    f"discord: {where}: message {message.get('id', '?')} has no field {name!r} (renamed or "
                    "removed in this API version?)"
                )
        for name in message.keys() - _KNOWN:
            if name not in self._warned:
                self._warned.add(name)
                log.warning("discord: %s: new field %r in a message, ignored", where, name)
        return message

    def messages(self, channel_id: str, day: date) -> Iterator[pa.RecordBatch]:
        """A channel's messages of one UTC day, a batch (MESSAGES_SCHEMA) per page."""
        first, end = day_window(day)
        for page in self.pages(channel_id, first - 1, end):
            rows = [_row(m, day, channel_id) for m in sorted(page, key=lambda m: int(m["id"]))]
            yield pa.RecordBatch.from_pylist(rows, schema=MESSAGES_SCHEMA)


def _row(message: dict, day: date, channel_id: str) -> dict:
    author = message["author"] or {}
    reference = message.get("message_reference") or {}
    thread = message.get("thread") or {}
    reactions = [
        {
            "emoji": (r.get("emoji") or {}).get("name") or (r.get("emoji") or {}).get("id"),
            "count": int(r.get("count") or 0),
        }
        for r in message.get("reactions") or []
    ]
    return {
        "date": day,
        "channel_id": str(message.get("channel_id") or channel_id),
        "message_id": str(message["id"]),
        "author_id": str(author.get("id")) if author.get("id") is not None else None,
        "author_username": author.get("username"),
        "author_is_bot": bool(author.get("bot", False)),
        "type": int(message["type"]),
        "content": message["content"],
        "timestamp": _time(message["timestamp"]),
        "edited_timestamp": _time(message.get("edited_timestamp")),
        "message_reference_id": reference.get("message_id"),
        "thread_id": thread.get("id"),
        "reactions": json.dumps(reactions, ensure_ascii=False) if reactions else None,
    }


def _error_details(response: requests.Response) -> tuple[str, float | None]:
    wait = parse_retry_after(response.headers.get("Retry-After"))
    reset_after = parse_retry_after(response.headers.get("X-RateLimit-Reset-After"))
    message = ""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        message = str(payload.get("message") or "")
        if payload.get("code"):
            message = f"{message} (code {payload['code']})"
        retry_after = payload.get("retry_after")
        if isinstance(retry_after, (int, float)):
            wait = float(retry_after)
        if payload.get("global"):
            message += " [global rate limit]"
    if wait is None and response.status_code == 429:
        wait = reset_after
    if not message:
        message = re.sub(r"\s+", " ", response.text or "").strip()[:300] or response.reason or "no message"
    return redact(message), wait
