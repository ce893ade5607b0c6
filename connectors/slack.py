"""Slack connector: the Web API (bot token) and the workspace export (zip), into the same Arrow rows.

Web API: `GET {base_url}/{method}` (base_url https://slack.com/api, overridable with
SLACK_BASE_URL), `Authorization: Bearer xoxb-...` (SLACK_BOT_TOKEN, never logged).
- `conversations.list` (types=public_channel,private_channel) -> CHANNELS_SCHEMA
- `users.list` -> USERS_SCHEMA (e-mail and its domain, and the admin/owner flags, kept for staging,
  which derives is_employee: staff)
- `conversations.history` per channel over the whole range of days a load asks for: one
  cursor-paged scan per channel (`scan`, pages of SLACK_PAGE_SIZE, 200 by default), bounded by
  oldest = the first day's 00:00 and latest = the day after the last (a message at exactly 00:00
  belongs to its own day only; Slack excludes `oldest` itself unless inclusive, so oldest is moved
  back by one microsecond). A channel the bot is not in (not_in_channel, channel_not_found) is
  skipped with a warning and listed in the scan's `skipped`; the other channels load.
- `conversations.replies` only for parents with replies, and, given the latest_reply of each
  thread as loaded, only for parents whose latest_reply moved since -> the replies, `thread_ts` set
Rows land with `date` = the UTC day of the thread's parent (the message's own day when it is not
a reply): a day's rows are its parents and every reply to them, so reloading a day replaces
whole threads.

Paging: every method pages with `cursor` = `response_metadata.next_cursor` until it is empty;
pages are parsed one at a time into Arrow batches (`pages()` owns the loop).

Faults: each request runs inside `connectors.http.call_with_retries`. Retried: HTTP 429 with
Retry-After (Slack's `ratelimited`), 5xx, a dropped connection, a truncated body, a timeout, and
`{"ok":false}` answers Slack documents as transient (internal_error, fatal_error,
service_unavailable, request_timeout, ratelimited). At once: every other `{"ok":false,"error":...}`
(HTTP 200) as SlackError naming the method and error; invalid_auth / not_authed /
token_revoked / token_expired / account_inactive say to reinstall the app or recreate the bot
token. Response shape: a missing required field raises SlackError naming it; an unknown field is
ignored with one logging WARNING per field per client.

Export: `SlackExport(path)` reads a workspace export zip (channels.json, groups.json if present,
users.json, <channel>/<YYYY-MM-DD>.json) into the same schemas.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import requests

from connectors.errors import ConnectorConfigError
from connectors.http import (
    RETRYABLE_STATUSES,
    ApiError,
    ApiSession,
    RetryPolicy,
    TransientError,
    call_with_retries,
    json_body,
    parse_retry_after,
    pool_size_from_env,
    redact,
    send,
)
from connectors.ratelimit import SLACK_METHOD_TIERS, RateLimits
from connectors.secrets import register_secret
from connectors.slack_export_check import check_export, load_member

log = logging.getLogger(__name__)

CHANNELS_SCHEMA = pa.schema(
    [
        pa.field("channel_id", pa.string()),
        pa.field("name", pa.string()),
        pa.field("is_private", pa.bool_()),
        pa.field("is_archived", pa.bool_()),
        pa.field("created_at", pa.timestamp("us", tz="UTC")),
        pa.field("topic", pa.string()),
        pa.field("purpose", pa.string()),
    ]
)
USERS_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string()),
        pa.field("team_id", pa.string()),
        pa.field("name", pa.string()),
        pa.field("real_name", pa.string()),
        pa.field("display_name", pa.string()),
        pa.field("email", pa.string()),
        pa.field("email_domain", pa.string()),
        pa.field("is_bot", pa.bool_()),
        pa.field("is_deleted", pa.bool_()),
        pa.field("tz", pa.string()),
        # workspace admins and owners are staff even without a company e-mail (never advocates)
        pa.field("is_admin", pa.bool_()),
        pa.field("is_owner", pa.bool_()),
        pa.field("is_primary_owner", pa.bool_()),
    ]
)
MESSAGES_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32()),
        pa.field("channel_id", pa.string()),
        pa.field("ts", pa.string()),
        pa.field("thread_ts", pa.string()),
        pa.field("user_id", pa.string()),
        pa.field("bot_id", pa.string()),
        pa.field("subtype", pa.string()),
        pa.field("text", pa.string()),
        pa.field("reply_count", pa.int64()),
        pa.field("latest_reply", pa.string()),
        pa.field("reactions", pa.string()),  # JSON [{name, users, count}]
        pa.field("files_count", pa.int64()),
        pa.field("edited_ts", pa.string()),
    ]
)

# Errors Slack documents as worth a retry; the auth ones need a person.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"})

# Fields of the objects the connector reads; anything else is tolerated with one warning.
MESSAGE_FIELDS = frozenset(
    "type subtype ts user bot_id bot_profile username text thread_ts parent_user_id reply_count "
    "reply_users reply_users_count latest_reply reactions files file upload edited attachments blocks "
    "team client_msg_id is_locked subscribed last_read unread_count inviter app_id icons display_as_bot "
    "comment is_intro hidden pinned_to topic purpose old_name name channel is_starred permalink "
    "x_files is_thread_broadcast".split()
)
CHANNEL_FIELDS = frozenset(
    "id name name_normalized is_channel is_group is_im is_mpim is_private is_archived is_general "
    "created creator updated unlinked is_shared is_ext_shared is_org_shared is_pending_ext_shared "
    "pending_shared pending_connected_team_ids context_team_id shared_team_ids parent_conversation "
    "is_member num_members members topic purpose previous_names properties locale".split()
)
USER_FIELDS = frozenset(
    "id team_id name deleted color real_name tz tz_label tz_offset profile is_admin is_owner "
    "is_primary_owner is_restricted is_ultra_restricted is_bot is_app_user is_email_confirmed "
    "updated has_2fa who_can_share_contact_info locale enterprise_user is_invited_user "
    "is_workflow_bot always_active".split()
)


class SlackConfigError(ConnectorConfigError):
    """A Slack setting is missing or malformed (raised before any request)."""


class SlackError(ApiError):
    """Slack answered with an error (or could not be reached), for good. Attributes: method, error."""

    def __init__(
        self, method: str, status: int | None, error: str, message: str | None = None, attempts: int = 1
    ):
        self.method = method
        self.error = error
        super().__init__("slack", method, status, message or error, attempts)

    def __str__(self) -> str:
        status = f"HTTP {self.status}" if self.status is not None else "no HTTP answer"
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return f"Slack {self.method} failed{tries} ({status}): {self.message}"


def _url(value: object, name: str) -> str:
    text = str(value or "").strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", text):
        raise SlackConfigError(f"{name}={text!r} is not an http(s) URL (for example https://slack.com/api).")
    return text


@dataclass(frozen=True)
class SlackConfig:
    """Settings of the Slack Web API connector, validated on construction."""

    DEFAULT_BASE_URL: ClassVar[str] = "https://slack.com/api"

    token: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    page_size: int = 200
    # conversations.list and users.list: Slack allows up to 1,000 a page (history: 200 advised)
    list_page_size: int = 1000
    timeout_seconds: float = 30.0
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy.from_env)
    rate_limits: RateLimits = field(default_factory=RateLimits.from_env)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        token = str(self.token or "").strip()
        if not token:
            raise SlackConfigError(
                "SLACK_BOT_TOKEN is not set: create a Slack app, add the bot scopes channels:read, "
                "groups:read, channels:history, groups:history, users:read, users:read.email, install it "
                "and copy the Bot User OAuth Token (xoxb-...) from OAuth & Permissions; or set "
                "SLACK_EXPORT_PATH to a workspace export zip instead."
            )
        if not token.startswith("xoxb-"):
            kind = token[:5] if re.match(r"xox[a-z]-", token) else "not a Slack token"
            raise SlackConfigError(
                f"SLACK_BOT_TOKEN is {kind!r}, not a bot token: use the Bot User OAuth Token, which starts "
                "with xoxb- (Slack app settings > OAuth & Permissions)."
            )
        set_(self, "token", token)
        register_secret(token)
        set_(self, "base_url", _url(self.base_url, "SLACK_BASE_URL"))
        try:
            page_size = int(self.page_size)
        except (TypeError, ValueError):
            page_size = 0
        if not 1 <= page_size <= 1000:
            raise SlackConfigError(f"SLACK_PAGE_SIZE={self.page_size!r} must be a whole number in 1..1000.")
        set_(self, "page_size", page_size)
        try:
            list_page_size = int(self.list_page_size)
        except (TypeError, ValueError):
            list_page_size = 0
        if not 1 <= list_page_size <= 1000:
            raise SlackConfigError(
                f"SLACK_LIST_PAGE_SIZE={self.list_page_size!r} must be a whole number in 1..1000."
            )
        set_(self, "list_page_size", list_page_size)
        try:
            timeout = float(self.timeout_seconds)
        except (TypeError, ValueError):
            timeout = -1.0
        if not timeout > 0:
            raise SlackConfigError(
                f"SLACK_TIMEOUT_SECONDS={self.timeout_seconds!r} must be a positive number."
            )
        set_(self, "timeout_seconds", timeout)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SlackConfig:
        """SLACK_BOT_TOKEN, SLACK_BASE_URL, SLACK_PAGE_SIZE, SLACK_LIST_PAGE_SIZE, SLACK_TIMEOUT_SECONDS,
        HTTP_MAX_*."""
        env = os.environ if environ is None else environ
        return cls(
            token=env.get("SLACK_BOT_TOKEN", ""),
            base_url=env.get("SLACK_BASE_URL") or cls.DEFAULT_BASE_URL,
            page_size=env.get("SLACK_PAGE_SIZE") or 200,
            list_page_size=env.get("SLACK_LIST_PAGE_SIZE") or 1000,
            timeout_seconds=env.get("SLACK_TIMEOUT_SECONDS") or 30.0,
            retry_policy=RetryPolicy.from_env(env),
            rate_limits=RateLimits.from_env(env),
        )


# --- conversions shared by the API and the export ----------------------------------------------


def ts_to_datetime(ts: str) -> datetime:
    return datetime.fromtimestamp(float(Decimal(ts)), UTC)


_EPOCH = date(1970, 1, 1)


def ts_day(ts: str) -> date:
    """The UTC day of a Slack timestamp ("1700000000.000100")."""
    seconds, _, _ = ts.partition(".")
    try:
        whole = int(seconds)
    except ValueError:  # not the usual form
        whole = int(Decimal(ts))
    return _day(whole // 86400)


@functools.lru_cache(maxsize=4096)
def _day(epoch_day: int) -> date:
    return _EPOCH + timedelta(days=epoch_day)


def day_bounds(day: date) -> tuple[str, str]:
    """conversations.history oldest/latest for a UTC day (oldest one microsecond early: Slack
    excludes `oldest` itself unless inclusive=true; latest is the next day's start, excluded)."""
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    end = start + 86400
    return f"{start - 1}.999999", f"{end}.000000"


def _domain(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    return email.rsplit("@", 1)[1].strip().lower() or None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def channel_row(c: Mapping[str, Any], *, private: bool | None = None) -> dict:
    created = c.get("created")
    topic, purpose = c.get("topic") or {}, c.get("purpose") or {}
    return {
        "channel_id": c["id"],
        "name": c.get("name"),
        "is_private": bool(c.get("is_private", private if private is not None else c.get("is_group", False))),
        "is_archived": bool(c.get("is_archived", False)),
        "created_at": datetime.fromtimestamp(int(created), UTC) if created not in (None, "") else None,
        "topic": topic.get("value") if isinstance(topic, dict) else _str(topic),
        "purpose": purpose.get("value") if isinstance(purpose, dict) else _str(purpose),
    }


def user_row(u: Mapping[str, Any]) -> dict:
    profile = u.get("profile") or {}
    email = profile.get("email")
    return {
        "user_id": u["id"],
        "team_id": u.get("team_id") or profile.get("team"),
        "name": u.get("name"),
        "real_name": u.get("real_name") or profile.get("real_name"),
        "display_name": profile.get("display_name"),
        "email": email,
        "email_domain": _domain(email),
        "is_bot": bool(u.get("is_bot", False)) or u.get("id") == "USLACKBOT",
        "is_deleted": bool(u.get("deleted", False)),
        "tz": u.get("tz"),
        "is_admin": bool(u.get("is_admin", False)),
        "is_owner": bool(u.get("is_owner", False)),
        "is_primary_owner": bool(u.get("is_primary_owner", False)),
    }


# json.dumps with separators builds a new encoder per call (a third of its cost for a reactions list)
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def message_row(m: Mapping[str, Any], channel_id: str) -> dict:
    ts = m["ts"]
    thread_ts = m.get("thread_ts")
    reactions = [
        {"name": r.get("name"), "users": list(r.get("users") or []), "count": int(r.get("count") or 0)}
        for r in (m.get("reactions") or [])
    ]
    files = m.get("files") or ([m["file"]] if m.get("file") else [])
    edited = m.get("edited") or {}
    return {
        "date": ts_day(thread_ts or ts),
        "channel_id": channel_id,
        "ts": ts,
        "thread_ts": thread_ts,
        "user_id": m.get("user"),
        "bot_id": m.get("bot_id"),
        "subtype": m.get("subtype"),
        "text": m.get("text"),
        "reply_count": int(m.get("reply_count") or 0),
        "latest_reply": m.get("latest_reply"),
        "reactions": _COMPACT_JSON.encode(reactions) if reactions else None,
        "files_count": len(files),
        "edited_ts": edited.get("ts") if isinstance(edited, dict) else None,
    }


def _batch(rows: list[dict], schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(rows, schema=schema)


# --- the Web API client ---------------------------------------------------------------------------


class SlackClient:
    """A Slack Web API client for one workspace (one bot token)."""

    def __init__(self, config: SlackConfig):
        self.config = config
        self._session = ApiSession(pool_size_from_env())
        self._session.headers["Authorization"] = f"Bearer {config.token}"
        self._session.headers["User-Agent"] = "darksocial-warehouse slack-connector"
        self._warned: set[str] = set()

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> SlackClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- requests ---
    def _call(self, method: str, params: Mapping[str, Any]) -> dict:
        url = f"{self.config.base_url}/{method}"

        tier = SLACK_METHOD_TIERS.get(method, "slack.tier3")

        def attempt() -> dict:
            self.config.rate_limits.acquire(tier, self.config.token, scope=method)
            response = send(
                self._session, "GET", url, params=dict(params), timeout=self.config.timeout_seconds
            )
            if response.status_code in RETRYABLE_STATUSES:
                error = _error_name(response) or response.reason or "error"
                raise TransientError(
                    response.status_code, error, parse_retry_after(response.headers.get("Retry-After"))
                )
            if response.status_code >= 400:
                error = _error_name(response) or response.reason or "error"
                raise self._error(method, response.status_code, error)
            payload = json_body(response)
            if not isinstance(payload, dict) or "ok" not in payload:
                raise self._changed(method, "ok")
            if payload["ok"] is not True:
                error = str(payload.get("error") or "unknown_error")
                if error in TRANSIENT_ERRORS:
                    raise TransientError(
                        response.status_code, error, parse_retry_after(response.headers.get("Retry-After"))
                    )
                raise self._error(method, response.status_code, error)
            return payload

        try:
            return call_with_retries(
                attempt, source="slack", endpoint=method, policy=self.config.retry_policy
            )
        except SlackError:
            raise
        except ApiError as exc:
            raise SlackError(method, exc.status, exc.message, attempts=exc.attempts) from None

    def _error(self, method: str, status: int | None, error: str) -> SlackError:
        message = error
        if error in AUTH_ERRORS:
            message = (
                f"{error}: Slack rejected the bot token. Reinstall the Slack app to the workspace or "
                "recreate the bot token, then set SLACK_BOT_TOKEN to the new Bot User OAuth Token (xoxb-...)."
            )
        elif error == "missing_scope":
            message = (
                "missing_scope: add the bot scopes channels:read, groups:read, channels:history, "
                "groups:history, users:read, users:read.email and reinstall the app."
            )
        elif error == "not_in_channel":
            message = "not_in_channel: invite the bot to the channel (/invite @your-bot)."
        return SlackError(method, status, error, redact(message))

    def _changed(self, method: str, name: str) -> SlackError:
        return SlackError(
            method,
            200,
            "response_changed",
            f"the API response changed: the required field {name!r} is missing. Update connectors/slack.py.",
        )

    def _warn_unknown(self, where: str, obj: Mapping[str, Any], known: frozenset) -> None:
        for name in obj:
            if name not in known and f"{where}.{name}" not in self._warned:
                self._warned.add(f"{where}.{name}")
                log.warning(
                    "Slack %s: the answer has a field the connector does not know, %s; ignored", where, name
                )

    def pages(
        self, method: str, params: Mapping[str, Any], key: str, limit: int | None = None
    ) -> Iterator[list[dict]]:
        """Every page of a cursor-paged method: the list under `key`, one page at a time, `limit`
        (default: the page size) a page."""
        cursor = ""
        while True:
            request = {**params, "limit": limit or self.config.page_size}
            if cursor:
                request["cursor"] = cursor
            payload = self._call(method, request)
            if key not in payload or not isinstance(payload[key], list):
                raise self._changed(method, key)
            items = payload[key]
            log.info("Slack %s: page of %d %s", method, len(items), key)
            yield items
            cursor = ((payload.get("response_metadata") or {}).get("next_cursor") or "").strip()
            if not cursor:
                break

    def auth_test(self) -> dict:
        """auth.test: who the token is (team, bot user); raises SlackError for a rejected token."""
        return self._call("auth.test", {})

    def first_page(self, method: str, key: str, limit: int, **params: Any) -> list[dict]:
        """The first `limit` items of a cursor-paged method (a cheap read for a settings check)."""
        payload = self._call(method, {**params, "limit": limit})
        if key not in payload or not isinstance(payload[key], list):
            raise self._changed(method, key)
        return payload[key]

    # --- streams ---
    def channels(self) -> Iterator[pa.RecordBatch]:
        for items in self.pages(
            "conversations.list",
            {"types": "public_channel,private_channel"},
            "channels",
            self.config.list_page_size,
        ):
            rows = []
            for c in items:
                self._warn_unknown("conversations.list channel", c, CHANNEL_FIELDS)
                if "id" not in c:
                    raise self._changed("conversations.list", "channels[].id")
                rows.append(channel_row(c))
            yield _batch(rows, CHANNELS_SCHEMA)

    def channel_ids(self) -> list[str]:
        return [cid for batch in self.channels() for cid in batch.column("channel_id").to_pylist()]

    def users(self) -> Iterator[pa.RecordBatch]:
        for items in self.pages("users.list", {}, "members", self.config.list_page_size):
            rows = []
            for u in items:
                self._warn_unknown("users.list member", u, USER_FIELDS)
                if "id" not in u:
                    raise self._changed("users.list", "members[].id")
                rows.append(user_row(u))
            yield _batch(rows, USERS_SCHEMA)

    def _messages(self, method: str, params: Mapping[str, Any]) -> Iterator[list[dict]]:
        for items in self.pages(method, params, "messages"):
            for m in items:
                self._warn_unknown(f"{method} message", m, MESSAGE_FIELDS)
                if "ts" not in m:
                    raise self._changed(method, "messages[].ts")
            yield items

    def history(self, channel_id: str, oldest: str, latest: str) -> Iterator[list[dict]]:
        params = {"channel": channel_id, "oldest": oldest, "latest": latest, "inclusive": "false"}
        yield from self._messages("conversations.history", params)

    def replies(self, channel_id: str, thread_ts: str) -> Iterator[list[dict]]:
        yield from self._messages("conversations.replies", {"channel": channel_id, "ts": thread_ts})

    def scan(self, channel_ids: Iterable[str], days: Iterable[date]) -> HistoryScan:
        """The history of `days` (read newest day first): one cursor-paged conversations.history
        scan per channel over the whole range, pages of `page_size` (see HistoryScan)."""
        return HistoryScan(self, list(channel_ids), sorted(set(days)))

    def messages(
        self,
        day: date,
        channel_ids: Iterable[str],
        *,
        scan: HistoryScan | None = None,
        loaded: Mapping[tuple[str, str], str | None] | None = None,
        unchanged: list[tuple[str, str]] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """A day's rows: every channel's messages of the UTC day, plus the replies to its parents.

        History comes from `scan` (which must cover `day`), else from a window of the day. Replies
        are asked only for parents with replies; with `loaded` ({(channel_id, thread_ts):
        latest_reply as loaded}), only for those whose latest_reply differs from the loaded one:
        the others are appended to `unchanged` (their replies as loaded still hold) and left out.
        One batch per channel: building an Arrow batch has a fixed cost (~1 ms).
        """
        channel_ids = list(channel_ids)
        if scan is not None:
            by_channel = scan.day(day)
        else:
            oldest, latest = day_bounds(day)
            by_channel = {}
            for channel_id in channel_ids:
                by_channel[channel_id] = [
                    m for items in self.history(channel_id, oldest, latest) for m in items
                ]
        for channel_id in channel_ids:
            history = by_channel.get(channel_id)
            if not history:
                continue
            seen: set[str] = set()
            parents: list[str] = []
            rows: list[dict] = []
            for m in history:
                if m["ts"] in seen:
                    continue
                seen.add(m["ts"])
                if m.get("thread_ts") and m["thread_ts"] != m["ts"]:
                    continue  # a reply broadcast to the channel: loaded with its thread
                rows.append(message_row(m, channel_id))
                if int(m.get("reply_count") or 0) > 0 and m.get("thread_ts", m["ts"]) == m["ts"]:
                    key = (channel_id, m["ts"])
                    if loaded is not None and key in loaded and loaded[key] == m.get("latest_reply"):
                        if unchanged is not None:
                            unchanged.append(key)
                        continue
                    parents.append(m["ts"])
            for thread_ts in parents:
                for items in self.replies(channel_id, thread_ts):
                    for m in items:
                        if m["ts"] == thread_ts or m["ts"] in seen:
                            continue
                        seen.add(m["ts"])
                        row = message_row(m, channel_id)
                        row["thread_ts"] = row["thread_ts"] or thread_ts
                        row["date"] = day
                        rows.append(row)
            if rows:
                yield _batch(rows, MESSAGES_SCHEMA)


# Answers to conversations.history for a channel the bot is not in (a public channel it left:
# not_in_channel; a private one: channel_not_found): the channel is skipped, the rest loads.
NOT_A_MEMBER = frozenset({"not_in_channel", "channel_not_found"})


class HistoryScan:
    """conversations.history of several channels over a range of days, one cursor-paged scan per
    channel, handed out a day at a time.

    Slack pages history newest first, so days are best asked newest first: a channel's scan is
    read only as far as the day asked, and only messages of the days planned are held until asked
    for (a year's scan holds a few days, not the year). Days may be asked in any order; asking an
    old day first reads every channel that far. Thread-safe: fetch workers share one scan.

    A channel the bot is not in (NOT_A_MEMBER) is skipped with a warning and listed in `skipped`.
    """

    def __init__(self, client: SlackClient, channel_ids: list[str], days: list[date]):
        self.skipped: list[str] = []
        self._wanted = set(days)
        self._lock = threading.Lock()
        self._channels = channel_ids
        self._pages: dict[str, Iterator[list[dict]]] = {}
        self._held: dict[str, dict[date, list[dict]]] = {cid: defaultdict(list) for cid in channel_ids}
        self._reached: dict[str, date | None] = dict.fromkeys(channel_ids)
        self._done: set[str] = set()
        if days:
            oldest, _ = day_bounds(days[0])
            _, latest = day_bounds(days[-1])
            self._pages = {cid: client.history(cid, oldest, latest) for cid in channel_ids}
        else:
            self._done = set(channel_ids)

    def day(self, day: date) -> dict[str, list[dict]]:
        """Every channel's top-level messages of `day` (as history returns them), by channel."""
        with self._lock:
            out = {}
            for channel_id in self._channels:
                self._read_to(channel_id, day)
                held = self._held[channel_id]
                out[channel_id] = held.pop(day, [])
            return out

    def _read_to(self, channel_id: str, day: date) -> None:
        while channel_id not in self._done:
            reached = self._reached[channel_id]
            if reached is not None and reached < day:
                return  # older than `day` already: every message of it is held
            try:
                items = next(self._pages[channel_id])
            except StopIteration:
                self._done.add(channel_id)
                return
            except SlackError as exc:
                if exc.error not in NOT_A_MEMBER or reached is not None:
                    raise
                log.warning(
                    "Slack conversations.history: %s for channel %s (the bot is not a member); the "
                    "channel is skipped, the others load. Invite the bot (/invite @your-bot) to load it.",
                    exc.error,
                    channel_id,
                )
                self.skipped.append(channel_id)
                self._done.add(channel_id)
                return
            held = self._held[channel_id]
            for m in items:
                message_day = ts_day(m["ts"])
                if message_day in self._wanted:
                    held[message_day].append(m)
                if reached is None or message_day < reached:
                    reached = message_day
            self._reached[channel_id] = reached if reached is not None else day
            if not items:
                self._done.add(channel_id)


def _error_name(response: requests.Response) -> str | None:
    try:
        payload = json.loads(response.content)
    except ValueError:
        return None
    return str(payload.get("error")) if isinstance(payload, dict) and payload.get("error") else None


# --- the workspace export ------------------------------------------------------------------------

_DAY_FILE = re.compile(r"^(?:.*/)?([^/]+)/(\d{4}-\d{2}-\d{2})\.json$")


class SlackExport:
    """A Slack workspace export zip (Workspace settings > Import/Export Data > Export).

    Args:
        path: the zip (SLACK_EXPORT_PATH). channels.json (public), groups.json (private, in
            Business+ exports), users.json, and <channel name>/<YYYY-MM-DD>.json per channel and day.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise SlackConfigError(
                f"SLACK_EXPORT_PATH={str(self.path)!r} does not exist or is not a file: point it to the zip "
                "Slack sends after Workspace settings > Import/Export Data > Export."
            )
        try:
            self._zip = zipfile.ZipFile(self.path)
        except zipfile.BadZipFile:
            raise SlackConfigError(
                f"SLACK_EXPORT_PATH={str(self.path)!r} is not a zip file: use the export zip as downloaded."
            ) from None
        names = self._zip.namelist()
        self._prefix = ""
        if "channels.json" not in names:
            nested = [n for n in names if n.endswith("/channels.json") and n.count("/") == 1]
            if not nested:
                raise SlackConfigError(
                    f"SLACK_EXPORT_PATH={str(self.path)!r} has no channels.json: "
                    "it is not a Slack workspace export."
                )
            self._prefix = nested[0][: -len("channels.json")]
        self._names = names

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> SlackExport:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def validate(self) -> int:
        """Check every file of the export before any of it is used (connectors/slack_export_check.py);
        returns the number of day files. Raises SlackExportError naming the file, where, and the fix."""
        return check_export(self._zip, self._prefix, str(self.path))

    def _json(self, name: str, required: bool = True) -> Any:
        full = self._prefix + name
        if full not in self._names:
            if required:
                raise SlackConfigError(f"SLACK_EXPORT_PATH: the export has no {name}.")
            return []
        return load_member(self._zip, full, str(self.path))

    def _channel_objects(self) -> list[tuple[dict, bool]]:
        out = [(c, False) for c in self._json("channels.json")]
        out += [(g, True) for g in self._json("groups.json", required=False)]
        return out

    def channels(self) -> Iterator[pa.RecordBatch]:
        yield _batch(
            [channel_row(c, private=private) for c, private in self._channel_objects()], CHANNELS_SCHEMA
        )

    def users(self) -> Iterator[pa.RecordBatch]:
        yield _batch([user_row(u) for u in self._json("users.json")], USERS_SCHEMA)

    def day_files(self) -> list[tuple[str, str, date]]:
        """(zip member, channel name, file day) of every per-day file."""
        out = []
        for name in self._names:
            if not name.startswith(self._prefix):
                continue
            match = _DAY_FILE.match(name[len(self._prefix) :])
            if match:
                out.append((name, match.group(1), date.fromisoformat(match.group(2))))
        return sorted(out, key=lambda t: (t[2], t[1]))

    def days(self) -> list[date]:
        return sorted({d for _, _, d in self.day_files()})

    def messages(
        self, first_day: date | None = None, last_day: date | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Rows whose `date` (the thread parent's UTC day) is in first_day..last_day (all by default).

        Replies come from the per-day files of the days they were posted, which may be after the
        parent's day; files up to 31 days after last_day are read for them.
        """
        ids = {c.get("name"): c["id"] for c, _ in self._channel_objects()}
        horizon = last_day + timedelta(days=31) if last_day else None
        for member, channel_name, file_day in self.day_files():
            if first_day and file_day < first_day - timedelta(days=1):
                continue
            if horizon and file_day > horizon:
                continue
            channel_id = ids.get(channel_name)
            if channel_id is None:
                log.warning("Slack export: %s has no entry in channels.json; skipped", member)
                continue
            rows = []
            for m in load_member(self._zip, member, str(self.path)):
                if "ts" not in m:
                    raise SlackError(
                        "export", None, "response_changed", f"{member}: a message has no 'ts' field"
                    )
                row = message_row(m, channel_id)
                if (first_day and row["date"] < first_day) or (last_day and row["date"] > last_day):
                    continue
                rows.append(row)
            if rows:
                yield _batch(rows, MESSAGES_SCHEMA)


__all__ = [
    "CHANNELS_SCHEMA",
    "MESSAGES_SCHEMA",
    "USERS_SCHEMA",
    "HistoryScan",
    "NOT_A_MEMBER",
    "SlackClient",
    "SlackConfig",
    "SlackConfigError",
    "SlackError",
    "SlackExport",
    "day_bounds",
    "ts_day",
]
