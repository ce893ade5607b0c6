"""A Slack workspace export of the sandbox's community, in Slack's real export format.

    write_export(path, seed, scale, first_day, last_day)

writes a zip with channels.json (public channels), groups.json (private channels, as Business+
exports have), users.json and <channel name>/<YYYY-MM-DD>.json: each day's messages in time order,
thread replies on the day they were posted (with thread_ts and parent_user_id), parents with
reply_count / reply_users / latest_reply / replies as of the export (the day after last_day, like
an export taken that morning). The messages are the same objects the sandbox's Web API serves
(connectors.sandbox.slack_api) with the sandbox's "today" = last_day + 1.
"""

from __future__ import annotations

import json
import os
import zipfile
from datetime import date, timedelta
from pathlib import Path

from connectors.sandbox import brand, community
from connectors.sandbox.slack_api import channel_object, message_object, users_on, visible_replies


def write_export(
    path: str | os.PathLike,
    seed: int = brand.DEFAULT_SEED,
    scale: str = "small",
    first_day: date | None = None,
    last_day: date | None = None,
) -> Path:
    """Write the export zip of first_day..last_day (UTC days) and return its path."""
    first_day = first_day or brand.COMMUNITY_START_DATE
    last_day = last_day or first_day
    if last_day < first_day:
        raise ValueError(f"last_day {last_day} is before first_day {first_day}")
    today = last_day + timedelta(days=1)
    spaces = community.spaces("slack")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        public = [channel_object(s) for s in spaces if not s.is_private]
        private = [channel_object(s) for s in spaces if s.is_private]
        zf.writestr("channels.json", json.dumps(public, indent=4))
        zf.writestr("groups.json", json.dumps(private, indent=4))
        zf.writestr("users.json", json.dumps(users_on(seed, scale, today), indent=4))
        names = {s.native_id: s.name for s in spaces}
        day = first_day
        while day <= last_day:
            by_channel: dict[str, list[dict]] = {}
            for post in community.posts_on(seed, scale, "slack", day):
                if post.thread_root_id is None:
                    replies = visible_replies(seed, scale, post.post_id, today)
                    msg = message_object(seed, scale, post, replies)
                    if replies:
                        msg["replies"] = [
                            {"user": message_object(seed, scale, r)["user"], "ts": r.post_id} for r in replies
                        ]
                else:
                    if (
                        community.thread_posts(seed, scale, "slack", post.thread_root_id)[0].created_at.date()
                        < first_day
                    ):
                        continue  # its parent is not in the export
                    msg = message_object(seed, scale, post)
                by_channel.setdefault(post.space_id, []).append(msg)
            for channel_id, messages in sorted(by_channel.items()):
                zf.writestr(f"{names[channel_id]}/{day.isoformat()}.json", json.dumps(messages, indent=4))
            day += timedelta(days=1)
    return path
