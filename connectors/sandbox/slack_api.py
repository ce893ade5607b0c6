"""The sandbox's Slack Web API: the brand's Slack workspace from community.py, under /slack.

SLACK_BASE_URL = sandbox.base_url + "/slack", SLACK_BOT_TOKEN = "xoxb-sandbox-token".
Methods: conversations.list, conversations.history, conversations.replies, users.list (GET query
or POST form), with Slack's wire format: HTTP 200 {"ok": true, ...} or {"ok": false, "error"};
cursor paging via `limit` and `response_metadata.next_cursor`; ts strings ("1752570000.123456");
text with <url|label> links and <@U123> mentions; parents carry thread_ts, reply_count,
reply_users, reply_users_count, latest_reply; reactions [{name, users, count}]; subtypes
channel_join, channel_topic, bot_message. Only what was posted before the sandbox's "today"
(UTC midnight) is visible, so a parent's latest_reply grows as days pass.
Scopes: the sandbox token has every scope the connector needs; `xoxb-sandbox-token-without-email`
(SANDBOX_SLACK_TOKEN_WITHOUT_EMAIL) lacks users:read.email, so users.list answers profiles without
`email`, as Slack does. Every answer to a valid token carries Slack's `x-oauth-scopes` header.
History pages newest first; its cursor holds the ts the page ended at. A channel in
`sandbox.slack_left_channels` is listed with is_member false and answers history and replies with
`not_in_channel`, as Slack does for a channel the bot left.
Throttling: inject a fault with status 429 (body {"ok": false, "error": "ratelimited"}) and
headers {"Retry-After": "1"}.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from connectors.sandbox import brand, community
from connectors.sandbox.routes import SandboxApi, SandboxRequest, SandboxResponse

PREFIX = "/slack"
TOKEN = brand.SANDBOX_SLACK_BOT_TOKEN
SANDBOX_SLACK_TOKEN_WITHOUT_EMAIL = "xoxb-sandbox-token-without-email"
SCOPES = (
    "channels:read",
    "groups:read",
    "channels:history",
    "groups:history",
    "users:read",
    "users:read.email",
)
TOKEN_SCOPES = {
    TOKEN: SCOPES,
    SANDBOX_SLACK_TOKEN_WITHOUT_EMAIL: tuple(s for s in SCOPES if s != "users:read.email"),
}
TEAM_ID = brand.SLACK_TEAM_ID
_URL = re.compile(r"https?://[^\s<>|]+")
_MENTION = re.compile(r"(?<![\w<])@([a-z0-9][a-z0-9._-]*[a-z0-9])")

_TOPICS = {
    "general": "Say hi, ask anything about measuring what analytics can't see",
    "analytics_engineering": "dbt, SQL, warehouses and modelling",
    "attribution": "Attribution, UTMs, self-reported attribution, dark social",
    "ai": "LLMs, AI search and agents in analytics",
    "careers": "Jobs and gigs. One post per role, please",
    "announcements": "News from the Northwind team",
}


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# --- users -----------------------------------------------------------------------------------------


def bot_id(person_id: str) -> str:
    return "B0" + person_id[1:].rjust(8, "0")


def _deleted(m: community.Member) -> bool:
    return (
        not m.is_employee
        and not m.is_bot
        and m.person_id not in brand.COMMUNITY_ADVOCATE_PERSON_IDS
        and (int(m.person_id[1:]) % 37 == 0)
    )


def user_object(m: community.Member) -> dict:
    tz = ("Europe/Berlin", "America/New_York", "Europe/London", "America/Los_Angeles", "Asia/Kolkata")[
        int(m.person_id[1:]) % 5
    ]
    profile = {
        "real_name": m.name,
        "real_name_normalized": m.name,
        "display_name": m.handle,
        "display_name_normalized": m.handle,
        "first_name": m.name.split()[0],
        "last_name": m.name.split()[-1],
        "title": "",
        "phone": "",
        "skype": "",
        "fields": None,
        "status_text": "",
        "status_emoji": "",
        "avatar_hash": f"g{abs(hash(m.person_id)) % 16**11:011x}"[:12],
        "image_48": "https://secure.gravatar.com/avatar/00000000000000000000000000000000.jpg?s=48",
        "team": TEAM_ID,
    }
    user = {
        "id": m.user_id("slack"),
        "team_id": TEAM_ID,
        "name": m.handle,
        "deleted": _deleted(m),
        "color": "9f69e7",
        "real_name": m.name,
        "tz": tz,
        "tz_label": tz,
        "tz_offset": 0,
        "profile": profile,
        "is_admin": m.is_employee,
        "is_owner": False,
        "is_primary_owner": False,
        "is_restricted": False,
        "is_ultra_restricted": False,
        "is_bot": m.is_bot,
        "is_app_user": False,
        "updated": int(_day_start(m.joined).timestamp()),
    }
    if m.is_bot:
        profile["bot_id"] = bot_id(m.person_id)
        profile["always_active"] = True
    else:
        profile["email"] = m.email
    return user


@functools.cache
def slack_members(seed: int, scale: str) -> tuple[community.Member, ...]:
    return tuple(m for m in community.members(seed, scale) if "slack" in m.platforms)


@functools.cache
def _handles(seed: int, scale: str) -> dict[str, str]:
    return {m.handle: m.user_id("slack") for m in slack_members(seed, scale)}


def users_on(seed: int, scale: str, today: date) -> list[dict]:
    """Members who had joined before `today` (as users.list lists them)."""
    return [user_object(m) for m in slack_members(seed, scale) if m.joined < today]


# --- channels --------------------------------------------------------------------------------------


def channel_object(space: community.Space) -> dict:
    created = int(_day_start(brand.COMMUNITY_START_DATE).timestamp()) - 86400 * 30
    topic = _TOPICS.get(space.interest, "")
    return {
        "id": space.native_id,
        "name": space.name,
        "name_normalized": space.name,
        "is_channel": not space.is_private,
        "is_group": space.is_private,
        "is_im": False,
        "is_mpim": False,
        "is_private": space.is_private,
        "created": created,
        "creator": "U0" + "NWFOUNDER"[:8],
        "is_archived": False,
        "is_general": space.name == "general",
        "unlinked": 0,
        "is_shared": False,
        "is_ext_shared": False,
        "is_org_shared": False,
        "pending_shared": [],
        "is_pending_ext_shared": False,
        "is_member": True,
        "topic": {"value": topic, "creator": "", "last_set": created},
        "purpose": {"value": f"{space.name}: {topic}", "creator": "", "last_set": created},
        "previous_names": [],
        "num_members": 0,
    }


# --- messages --------------------------------------------------------------------------------------


def _label(url: str) -> str:
    return url.split("://", 1)[1].split("?", 1)[0]


def slack_text(seed: int, scale: str, text: str) -> str:
    """Slack markup: &, <, > escaped; URLs as <url> or <url|label>; @handle as <@U123>."""
    if text.startswith("<@"):  # system messages are already in Slack markup
        return text
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _URL.sub(
        lambda m: f"<{m.group(0)}|{_label(m.group(0))}>" if len(m.group(0)) % 2 else f"<{m.group(0)}>", text
    )
    handles = _handles(seed, scale)
    return _MENTION.sub(lambda m: f"<@{handles[m.group(1)]}>" if m.group(1) in handles else m.group(0), text)


def _reactions(seed: int, scale: str, post: community.Post) -> list[dict]:
    by_emoji: dict[str, list[str]] = {}
    for person_id, emoji in post.reactions:
        by_emoji.setdefault(emoji, []).append(community.member(seed, scale, person_id).user_id("slack"))
    return [{"name": name, "users": users, "count": len(users)} for name, users in by_emoji.items()]


def message_object(
    seed: int,
    scale: str,
    post: community.Post,
    replies: Iterable[community.Post] = (),
    with_replies: bool = True,
) -> dict:
    """A Slack message (as conversations.history / replies and the export show it)."""
    author = community.member(seed, scale, post.author_person_id)
    msg: dict = {"type": "message"}
    if post.subtype:
        msg["subtype"] = post.subtype
    msg["ts"] = post.post_id
    msg["user"] = author.user_id("slack")
    msg["text"] = slack_text(seed, scale, post.text)
    msg["team"] = TEAM_ID
    if post.subtype == "bot_message":
        msg["bot_id"] = bot_id(author.person_id)
        msg["username"] = author.name
    if post.thread_root_id:
        msg["thread_ts"] = post.thread_root_id
        msg["parent_user_id"] = _root_user(seed, scale, post)
    replies = list(replies)
    if with_replies and replies:
        users = list(
            dict.fromkeys(community.member(seed, scale, r.author_person_id).user_id("slack") for r in replies)
        )
        msg["thread_ts"] = post.post_id
        msg["reply_count"] = len(replies)
        msg["reply_users_count"] = len(users)
        msg["reply_users"] = users[:5]
        msg["latest_reply"] = replies[-1].post_id
        msg["is_locked"] = False
        msg["subscribed"] = False
    reactions = _reactions(seed, scale, post)
    if reactions:
        msg["reactions"] = reactions
    if post.subtype is None and int(post.post_id.split(".")[1]) % 29 == 0:
        msg["edited"] = {"user": msg["user"], "ts": f"{int(post.created_at.timestamp()) + 120}.000000"}
    return msg


def _root_user(seed: int, scale: str, post: community.Post) -> str:
    root = community.thread_posts(seed, scale, "slack", post.thread_root_id or post.post_id)
    pid = root[0].author_person_id if root else post.author_person_id
    return community.member(seed, scale, pid).user_id("slack")


def visible_replies(seed: int, scale: str, root_ts: str, today: date) -> list[community.Post]:
    cutoff = _day_start(today)
    thread = community.thread_posts(seed, scale, "slack", root_ts)
    return [p for p in thread[1:] if p.created_at < cutoff]


def _top_level(seed: int, scale: str, channel_id: str, day: date) -> list[community.Post]:
    """A channel's top-level posts of `day`, newest first."""
    posts = community.posts_on(seed, scale, "slack", day)
    return [p for p in reversed(posts) if p.space_id == channel_id and p.thread_root_id is None]


def history_page(
    seed: int,
    scale: str,
    channel_id: str,
    oldest: Decimal,
    latest: Decimal,
    include_oldest: bool,
    include_latest: bool,
    today: date,
    limit: int,
) -> tuple[list[dict], Decimal | None]:
    """One page of conversations.history: up to `limit` top-level messages in (oldest, latest),
    newest first, and the ts the next page ends before (None: no more). Only the days a page
    reaches are generated, so paging through a year costs a year once, not once per page."""
    first = max(brand.COMMUNITY_START_DATE, datetime.fromtimestamp(float(oldest), UTC).date())
    last = min(today - timedelta(days=1), datetime.fromtimestamp(min(float(latest), 2**40), UTC).date())
    found: list[community.Post] = []
    day = last
    while day >= first and len(found) <= limit:
        for post in _top_level(seed, scale, channel_id, day):
            ts = Decimal(post.post_id)
            if oldest < ts < latest or (include_oldest and ts == oldest) or (include_latest and ts == latest):
                found.append(post)
        day -= timedelta(days=1)
    page = found[:limit]
    items = [
        message_object(seed, scale, post, visible_replies(seed, scale, post.post_id, today)) for post in page
    ]
    return items, (Decimal(page[-1].post_id) if len(found) > limit else None)


def channel_messages_between(
    seed: int, scale: str, channel_id: str, oldest: Decimal, latest: Decimal, inclusive: bool, today: date
) -> list[dict]:
    """Top-level messages of a channel in (oldest, latest), newest first, as history returns them."""
    items, _ = history_page(seed, scale, channel_id, oldest, latest, inclusive, inclusive, today, 10**9)
    return items


# --- the HTTP layer --------------------------------------------------------------------------------


def _ok(payload: dict, next_cursor: str = "") -> SandboxResponse:
    return SandboxResponse(200, {"ok": True, **payload, "response_metadata": {"next_cursor": next_cursor}})


def _fail(error: str, status: int = 200, headers: dict | None = None) -> SandboxResponse:
    return SandboxResponse(status, {"ok": False, "error": error}, headers or {})


def _cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _offset(cursor: str | None) -> int | None:
    if not cursor:
        return 0
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
        return int(text.split(":", 1)[1]) if text.startswith("offset:") else None
    except (ValueError, UnicodeDecodeError):
        return None


def _page(request: SandboxRequest, items: list, key: str, extra: dict | None = None) -> SandboxResponse:
    try:
        limit = int(request.param("limit") or 100)
    except ValueError:
        return _fail("invalid_arguments")
    limit = max(1, min(limit, 1000))
    offset = _offset(request.param("cursor"))
    if offset is None or offset > len(items):
        return _fail("invalid_cursor")
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    payload = {key: page, **(extra or {})}
    if key == "messages":
        payload["has_more"] = more
    return _ok(payload, _cursor(offset + limit) if more else "")


def _cursor_before(ts: Decimal) -> str:
    return base64.b64encode(f"before:{ts}".encode()).decode()


def _history_cursor(cursor: str) -> Decimal | None:
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
        return Decimal(text.split(":", 1)[1]) if text.startswith("before:") else None
    except (ValueError, UnicodeDecodeError, InvalidOperation):
        return None


def _ts(value: str | None, default: Decimal) -> Decimal | None:
    if value in (None, ""):
        return default
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def handle(request: SandboxRequest) -> SandboxResponse:
    # Slack's header, lower-case charset as slack.com sends it.
    response = _authorised(request)
    response.headers.setdefault("Content-Type", "application/json; charset=utf-8")
    return response


def _authorised(request: SandboxRequest) -> SandboxResponse:
    token = request.bearer() or request.param("token") or ""
    if not token:
        return _fail("not_authed")
    if token not in TOKEN_SCOPES:
        return _fail("invalid_auth")
    scopes = TOKEN_SCOPES[token]
    response = _answer(request, scopes)
    response.headers.setdefault("x-oauth-scopes", ",".join(scopes))
    return response


def _answer(request: SandboxRequest, scopes: tuple[str, ...]) -> SandboxResponse:
    sandbox = request.sandbox
    method = request.path[len(PREFIX) :].strip("/")
    seed, scale, today = sandbox.seed, sandbox.scale, sandbox.today()
    channels = {s.native_id: s for s in community.spaces("slack")}

    if method == "conversations.list":
        types = (request.param("types") or "public_channel").split(",")
        items = [
            {**channel_object(s), "is_member": s.native_id not in sandbox.slack_left_channels}
            for s in channels.values()
            if ("private_channel" if s.is_private else "public_channel") in types
        ]
        return _page(request, items, "channels")
    if method == "users.list":
        users = users_on(seed, scale, today)
        if "users:read.email" not in scopes:
            users = [{**u, "profile": {k: v for k, v in u["profile"].items() if k != "email"}} for u in users]
        return _page(request, users, "members", {"cache_ts": int(_day_start(today).timestamp())})
    if method == "conversations.history":
        channel = request.param("channel")
        if not channel:
            return _fail("invalid_arguments")
        if channel not in channels:
            return _fail("channel_not_found")
        if channel in sandbox.slack_left_channels:
            return _fail("not_in_channel")
        now = Decimal(int(_day_start(today).timestamp()))
        oldest, latest = _ts(request.param("oldest"), Decimal(0)), _ts(request.param("latest"), now)
        if oldest is None or latest is None:
            return _fail("invalid_ts_oldest" if oldest is None else "invalid_ts_latest")
        inclusive = (request.param("inclusive") or "").lower() in ("1", "true")
        try:
            limit = max(1, min(int(request.param("limit") or 100), 1000))
        except ValueError:
            return _fail("invalid_arguments")
        include_latest = inclusive
        cursor = request.param("cursor")
        if cursor:
            # the cursor holds the ts the previous page ended at: the next page is older than it
            before = _history_cursor(cursor)
            if before is None or before > latest:
                return _fail("invalid_cursor")
            latest, include_latest = before, False
        items, next_before = history_page(
            seed, scale, channel, oldest, latest, inclusive, include_latest, today, limit
        )
        return _ok(
            {
                "messages": items,
                "has_more": next_before is not None,
                "pin_count": 0,
                "channel_actions_ts": None,
                "channel_actions_count": 0,
            },
            _cursor_before(next_before) if next_before is not None else "",
        )
    if method == "conversations.replies":
        channel, ts = request.param("channel"), request.param("ts")
        if not channel or not ts:
            return _fail("invalid_arguments")
        if channel not in channels:
            return _fail("channel_not_found")
        if channel in sandbox.slack_left_channels:
            return _fail("not_in_channel")
        thread = community.thread_posts(seed, scale, "slack", ts)
        if not thread or thread[0].space_id != channel or thread[0].created_at >= _day_start(today):
            return _fail("thread_not_found")
        replies = visible_replies(seed, scale, ts, today)
        items = [message_object(seed, scale, thread[0], replies)]
        items += [message_object(seed, scale, r) for r in replies]
        return _page(request, items, "messages")
    if method == "auth.test":
        return SandboxResponse(
            200,
            {
                "ok": True,
                "url": "https://northwind-community.slack.com/",
                "team": brand.SLACK_TEAM_NAME,
                "user": "northwind-bot",
                "team_id": TEAM_ID,
                "user_id": "U0NWBOT001",
                "bot_id": "B0NWBOT001",
            },
        )
    return SandboxResponse(404, {"ok": False, "error": "unknown_method", "req_method": method})


def error_body(status: int) -> dict:
    if status == 429:
        return {"ok": False, "error": "ratelimited"}
    if status >= 500:
        return {"ok": False, "error": "service_unavailable" if status == 503 else "internal_error"}
    return {"ok": False, "error": "invalid_request"}


def describe(sandbox) -> dict:
    return {
        "base_url": f"{sandbox.base_url}{PREFIX}",
        "SLACK_BOT_TOKEN": TOKEN,
        "team_id": TEAM_ID,
        "channels": [s.name for s in community.spaces("slack")],
    }


API = SandboxApi(name="slack", prefix=PREFIX, handle=handle, error_body=error_body, describe=describe)
