"""The Discourse day loop as it was before /posts.json: kept only for the test that compares the
raw rows of both paths (test_discourse_same_rows.py), never used by the warehouse.

Per chunk of 31 days, every topic active in the chunk (from one pass over /latest.json) is read
through /t/{id}.json and /t/{id}/posts.json, each post is filed on the later of its own day and its
topic's day, and every post whose actions_summary shows a like has its likers looked up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date

import pyarrow as pa

from connectors.discourse import (
    POST_LIKES_SCHEMA,
    POSTS_SCHEMA,
    TOPICS_SCHEMA,
    DayActivity,
    DiscourseClient,
    _post_row,
    _topic_row,
    day_bounds,
    parse_time,
)


def topic_path_activity(
    client: DiscourseClient, days: Iterable[date], chunk_days: int = 31
) -> Iterator[DayActivity]:
    days = sorted(set(days))
    if not days:
        return
    candidates = client.topics_active(days[0], days[-1])
    for n in range(0, len(days), chunk_days):
        yield from _chunk(client, days[n : n + chunk_days], candidates)


def _chunk(client: DiscourseClient, chunk: list[date], candidates) -> Iterator[DayActivity]:
    wanted = set(chunk)
    start, _ = day_bounds(chunk[0])
    _, end = day_bounds(chunk[-1])
    topics: dict[date, list[dict]] = defaultdict(list)
    posts: dict[date, list[dict]] = defaultdict(list)
    likes: dict[date, list[dict]] = defaultdict(list)
    for topic_id in candidates.active(start, end):
        topic, pages = client.topic(topic_id, since=start)
        created = parse_time(topic["created_at"])
        if created.date() in wanted:
            topics[created.date()].append(_topic_row(topic, created))
        for page in pages:
            for post in page:
                moment = parse_time(post["created_at"])
                day = max(moment.date(), created.date())
                if day not in wanted:
                    continue
                row = {**_post_row(post, moment), "date": day}
                if client.like_hint(post) != 0:
                    likers = client.post_likers(int(post["id"]))
                    if row["like_count"] is None:
                        row["like_count"] = len(likers)
                    likes[day].extend(
                        {"date": day, "post_id": int(post["id"]), "user_id": int(u["id"]),
                         "created_at": parse_time(u.get("created_at"))}
                        for u in likers
                    )  # fmt: skip
                posts[day].append(row)
    for day in chunk:
        yield DayActivity(
            day,
            pa.Table.from_pylist(topics[day], schema=TOPICS_SCHEMA),
            pa.Table.from_pylist(posts[day], schema=POSTS_SCHEMA),
            pa.Table.from_pylist(likes[day], schema=POST_LIKES_SCHEMA),
        )
