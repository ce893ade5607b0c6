"""The brand's Discord server as the sandbox serves it (the optional Discord source).

Base URL (DISCORD_BASE_URL): `sandbox.base_url + "/discord"`. Every request needs
`Authorization: Bot sandbox-discord-token`; otherwise Discord's 401 `{"message": "401:
Unauthorized", "code": 0}`. The channels are the `discord` spaces of
`connectors.sandbox.community` (ids 1261000000000000001..6); messages are that platform's posts,
ids their snowflakes, replies carry `message_reference` (type 19), reactions are grouped by emoji.
Only what was posted before the sandbox's "today" (UTC) exists.

Route (wire format of Discord's published OpenAPI document, `list_messages`; tests/contracts/discord.json):
`GET /channels/{channel_id}/messages?before=|after=|around=&limit=1..100` (default 50), newest
first, with X-RateLimit-* headers. A bare 429 fault answers `{"message": "You are being rate
limited.", "retry_after": 0.25, "global": false}`.
"""

from __future__ import annotations

import bisect
import functools
import re
from datetime import UTC, date, datetime, timedelta

from connectors.sandbox import brand, community
from connectors.sandbox.routes import SandboxApi, SandboxRequest, SandboxResponse

PREFIX = "/discord"
PLATFORM = "discord"
SANDBOX_DISCORD_BOT_TOKEN = "sandbox-discord-token"
GUILD_ID = "1260999999999999999"
_MESSAGES = re.compile(r"^/channels/(\d+)/messages$")
_EMOJI = {
    "+1": "👍",
    "heart": "❤️",
    "raised_hands": "🙌",
    "eyes": "👀",
    "tada": "🎉",
    "100": "💯",
    "pray": "🙏",
    "rocket": "🚀",
    "joy": "😂",
    "bulb": "💡",
}


def error_body(status: int) -> dict:
    if status == 429:
        return {"message": "You are being rate limited.", "retry_after": 0.25, "global": False, "code": 0}
    messages = {
        401: ("401: Unauthorized", 0),
        403: ("Missing Access", 50001),
        404: ("Unknown Channel", 10003),
        400: ("Invalid Form Body", 50035),
    }
    message, code = messages.get(status, ("Internal Server Error", 0))
    return {"message": message, "code": code}


def _rate_headers(bucket: str) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "4",
        "X-RateLimit-Reset": "1700000000.0",
        "X-RateLimit-Reset-After": "1.0",
        "X-RateLimit-Bucket": bucket,
    }


@functools.cache
def _channels(
    seed: int, scale: str, today: date
) -> dict[str, tuple[tuple[int, ...], tuple[community.Post, ...]]]:
    """Per channel: sorted message ids and their posts (visible before `today`)."""
    cutoff = datetime(today.year, today.month, today.day, tzinfo=UTC)
    per: dict[str, list[community.Post]] = {s.native_id: [] for s in community.spaces(PLATFORM)}
    day = brand.COMMUNITY_START_DATE
    while day < today:
        for thread in community.threads_started_on(seed, scale, PLATFORM, day):
            for post in thread:
                if post.created_at < cutoff:
                    per[post.space_id].append(post)
        day += timedelta(days=1)
    out = {}
    for channel, posts in per.items():
        posts.sort(key=lambda p: int(p.post_id))
        out[channel] = (tuple(int(p.post_id) for p in posts), tuple(posts))
    return out


def _user(member: community.Member) -> dict:
    out = {
        "id": member.user_id(PLATFORM),
        "username": member.handle,
        "avatar": None,
        "discriminator": "0",
        "public_flags": 0,
        "flags": 0,
        "global_name": member.name,
        "primary_guild": None,
    }
    if member.is_bot:
        out["bot"] = True
    return out


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _message(post: community.Post, seed: int, scale: str) -> dict:
    author = community.member(seed, scale, post.author_person_id)
    handles = {}
    content = post.text

    def mention(match: re.Match) -> str:
        handle = match.group(1)
        for m in community.members(seed, scale):
            if m.handle == handle and PLATFORM in m.platforms:
                handles[handle] = m
                return f"<@{m.user_id(PLATFORM)}>"
        return match.group(0)

    content = re.sub(r"(?<![\w/])@([a-z0-9][a-z0-9_.\-]*[a-z0-9])", mention, content)
    counts: dict[str, int] = {}
    for _pid, emoji in post.reactions:
        name = _EMOJI.get(emoji, emoji)
        counts[name] = counts.get(name, 0) + 1
    message = {
        "type": 19 if post.reply_to_post_id else 0,
        "content": content,
        "mentions": [_user(m) for m in handles.values()],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "timestamp": _iso(post.created_at),
        "edited_timestamp": None,
        "flags": 0,
        "components": [],
        "id": post.post_id,
        "channel_id": post.space_id,
        "author": _user(author),
        "pinned": False,
        "mention_everyone": False,
        "tts": False,
    }
    if counts:
        message["reactions"] = [
            {
                "emoji": {"id": None, "name": name},
                "count": n,
                "count_details": {"burst": 0, "normal": n},
                "burst_colors": [],
                "me_burst": False,
                "me": False,
            }
            for name, n in counts.items()
        ]
    if post.reply_to_post_id:
        message["message_reference"] = {
            "type": 0,
            "channel_id": post.space_id,
            "message_id": post.reply_to_post_id,
            "guild_id": GUILD_ID,
        }
    return message


def _snowflake(request: SandboxRequest, name: str) -> int | None | bool:
    text = request.param(name)
    if text is None:
        return None
    if not re.fullmatch(r"0|[1-9][0-9]*", text):
        return False
    return int(text)


def handle(request: SandboxRequest) -> SandboxResponse:
    sandbox = request.sandbox
    path = request.path[len(PREFIX) :]
    auth = request.headers.get("Authorization") or ""
    if auth != f"Bot {SANDBOX_DISCORD_BOT_TOKEN}":
        return SandboxResponse(401, error_body(401))
    match = _MESSAGES.match(path)
    if not match or request.method != "GET":
        return SandboxResponse(404, {"message": "404: Not Found", "code": 0})
    channels = _channels(sandbox.seed, sandbox.scale, sandbox.today())
    if match.group(1) not in channels:
        return SandboxResponse(404, error_body(404))
    ids, posts = channels[match.group(1)]
    limit_text = request.param("limit") or "50"
    before, after, around = (_snowflake(request, n) for n in ("before", "after", "around"))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 100 or False in (before, after, around):
        return SandboxResponse(400, error_body(400))
    limit = int(limit_text)
    if after is not None:
        start = bisect.bisect_right(ids, after)
        chosen = posts[start : start + limit]
    elif before is not None:
        end = bisect.bisect_left(ids, before)
        chosen = posts[max(0, end - limit) : end]
    elif around is not None:
        middle = bisect.bisect_left(ids, around)
        chosen = posts[max(0, middle - limit // 2) : max(0, middle - limit // 2) + limit]
    else:
        chosen = posts[-limit:]
    body = [_message(p, sandbox.seed, sandbox.scale) for p in reversed(chosen)]
    return SandboxResponse(200, body, _rate_headers(f"messages-{match.group(1)}"))


def describe(sandbox) -> dict:
    return {
        "base_url": f"{sandbox.base_url}{PREFIX}",
        "bot_token": SANDBOX_DISCORD_BOT_TOKEN,
        "channel_ids": [s.native_id for s in community.spaces(PLATFORM)],
    }


API = SandboxApi(name="discord", prefix=PREFIX, handle=handle, error_body=error_body, describe=describe)
