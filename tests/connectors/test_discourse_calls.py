"""How many calls a Discourse load makes, per method, and that the rows are those of the per-topic
path it replaced (tests/connectors/discourse_topic_path.py), on the sandbox forum; likers per
author (/user_actions.json), per post where the author's stream is refused or incomplete."""

from __future__ import annotations

import math
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest

from connectors.discourse import DiscourseClient, DiscourseConfig, day_bounds
from connectors.http import RetryPolicy
from connectors.sandbox import community
from connectors.sandbox.discourse_api import (
    SANDBOX_DISCOURSE_API_KEY,
    SANDBOX_DISCOURSE_USER_KEY,
    WAS_LIKED,
    likes_in_streams,
    topics_between,
)
from tests.connectors.discourse_topic_path import topic_path_activity

TODAY = date(2026, 11, 21)  # the connector conftest's sandbox "today"
FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=60.0, max_total_seconds=90.0)
FIRST = datetime(2025, 1, 1, tzinfo=timezone.utc)  # before the sandbox forum's first post


@pytest.fixture
def client(sandbox):
    with DiscourseClient(
        DiscourseConfig(url=f"{sandbox.base_url}/discourse", api_key=SANDBOX_DISCOURSE_API_KEY, retry=FAST)
    ) as client:
        yield client


def _calls(sandbox, since: int) -> Counter:
    """Requests to the forum after the first `since`, by path without the ids (one name a method)."""
    out = Counter()
    for record in sandbox.requests_to("/discourse/")[since:]:
        path = record.path.split("?")[0][len("/discourse") :]
        out["/t/{id}/posts.json" if path.endswith("/posts.json") and path.startswith("/t/") else
            "/t/{id}.json" if path.startswith("/t/") else path] += 1  # fmt: skip
    return out


def _days(n: int) -> list[date]:
    return [TODAY - timedelta(days=k) for k in range(n, 0, -1)]


def _wire(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)  # the forum sends ms


def _liked_by_author(days: list[date]) -> dict[int, list[datetime]]:
    """The creation moments of the range's liked posts, by their author's user id."""
    out: dict[int, list[datetime]] = {}
    for day in days:
        for post in community.posts_on(42, "small", "discourse", day):
            if post.reactions:
                author = int(community.member(42, "small", post.author_person_id).user_id("discourse"))
                out.setdefault(author, []).append(_wire(post.created_at))
    return out


def _pages_then_posts(stream: tuple, created: list[datetime]) -> tuple[int, int]:
    """The documented rule on one author's likes received (newest first) for their liked posts
    created at `created`: (pages of 30 read, posts left to ask one by one). The first page is read;
    a later one while, at the pace of the likes read, the j-th newest incomplete post is at most
    j pages away. A post is complete once a like older than it was read, or the stream ended."""
    pages = 0
    while True:
        read = stream[: pages * 30]
        ended = pages > 0 and len(stream) < pages * 30
        oldest = _wire(read[-1][0]) if read else None
        left = sorted((c for c in created if not ended and not (oldest and oldest < c)), reverse=True)
        if not left:
            return pages, 0
        if pages:
            span = (_wire(read[0][0]) - oldest).total_seconds()
            page_seconds = span * 30 / len(read) if span > 0 else None
            worth = any(
                max(1, math.ceil((oldest - c).total_seconds() / page_seconds)) <= j
                for j, c in enumerate(left, start=1)
            ) if page_seconds else len(left) >= 2  # fmt: skip
            if not worth:
                return pages, len(left)
        pages += 1


def _fewest_likers_calls(stream: tuple, created: list[datetime]) -> int:
    """The fewest calls for the same likers: k pages then one call per post left, the best k."""
    best = len(created)
    for k in range(1, len(stream) // 30 + 2):
        read, ended = stream[: k * 30], len(stream) < k * 30
        left = 0 if ended else sum(not (_wire(read[-1][0]) < c) for c in created)
        best = min(best, k + left)
    return best


def _expected_calls(days: list[date]) -> dict[str, int]:
    """The calls the sandbox's data asks for: /latest pages of 100 down to the first topic bumped
    before the range, /posts.json pages of 50 down to the first reply written before it, and the
    likers per author by the documented rule (none has more than 200 likers on a post)."""
    start, _ = day_bounds(days[0])
    topics = topics_between(42, "small", TODAY, FIRST.date(), TODAY)
    bumped_since = sum(t.bumped_at >= start for t in topics)
    latest = min(bumped_since // 100 + 1, math.ceil(len(topics) / 100))
    posts = sorted(((int(p.post_id), n, p) for t in topics for n, p in enumerate(t.posts, 1)), reverse=True)
    pages = 0
    while pages * 50 < len(posts):
        page = posts[pages * 50 : pages * 50 + 50]
        pages += 1
        # a reply written before the range proves every older id older; first posts (which a
        # move may re-create with a new id) prove only when the whole page is older
        if any(n > 1 and p.created_at < start for _, n, p in page) or all(
            p.created_at < start for *_, p in page
        ):
            break
    received = likes_in_streams(42, "small", TODAY, WAS_LIKED)
    by_author = [_pages_then_posts(received[a], created) for a, created in _liked_by_author(days).items()]
    out = {"/latest.json": latest, "/posts.json": pages}
    out["/user_actions.json"] = sum(k for k, _ in by_author)
    out["/post_action_users.json"] = sum(n for _, n in by_author)
    return {method: n for method, n in out.items() if n}


@pytest.mark.parametrize("n_days", [1, 3, 30])
def test_a_small_range_costs_exact_calls_per_method(sandbox, client, n_days):
    days = _days(n_days)
    before = len(sandbox.requests_to("/discourse/"))
    activities = list(client.activity(days))
    calls = _calls(sandbox, before)
    expected = _expected_calls(days)
    assert dict(calls) == expected  # no /t/{id}.json: /posts.json lists every post of these days
    assert client.requests == sum(expected.values())
    # the likers cost the fewest calls the two routes allow, far fewer than one per liked post
    received = likes_in_streams(42, "small", TODAY, WAS_LIKED)
    liked = _liked_by_author(days)
    fewest = sum(_fewest_likers_calls(received[a], created) for a, created in liked.items())
    likers_calls = calls["/user_actions.json"] + calls["/post_action_users.json"]
    assert likers_calls == fewest < sum(len(c) for c in liked.values())
    assert calls["/user_actions.json"] > 0
    posts = sum(a.posts.num_rows for a in activities)
    assert posts == sum(len(community.posts_on(42, "small", "discourse", d)) for d in days)
    # /posts.json within one page of its floor: ceil(posts written since the range began / 50)
    start, _ = day_bounds(days[0])
    written = sum(p.created_at >= start for t in topics_between(42, "small", TODAY, days[0], TODAY)
                  for p in t.posts)  # fmt: skip
    assert math.ceil(written / 50) <= calls["/posts.json"] <= math.ceil(written / 50) + 1


def test_every_raw_table_holds_the_same_rows_as_the_per_topic_path(sandbox, client):
    days = _days(30)
    before = len(sandbox.requests_to("/discourse/"))
    new = {a.day: a for a in client.activity(days)}
    new_calls = _calls(sandbox, before)
    with DiscourseClient(client.config) as old_client:
        before = len(sandbox.requests_to("/discourse/"))
        old = {a.day: a for a in topic_path_activity(old_client, days)}
        old_calls = _calls(sandbox, before)
    assert sorted(new) == sorted(old) == days
    for day in days:
        for table in ("topics", "posts", "post_likes"):
            key = {"topics": "topic_id", "posts": "post_id", "post_likes": "post_id"}[table]
            rows = [sorted(getattr(side[day], table).to_pylist(), key=lambda r: (r[key], str(r)))
                    for side in (old, new)]  # fmt: skip
            assert rows[0] == rows[1], (day, table)
    assert (
        sum(a.posts.num_rows for a in new.values()) > 300
        and sum(a.topics.num_rows for a in new.values()) > 50
    )
    assert sum(a.post_likes.num_rows for a in new.values()) > 100
    # far fewer calls for the likers (per author, not per post) and for the posts
    likers = new_calls["/user_actions.json"] + new_calls["/post_action_users.json"]
    assert likers * 2 < old_calls["/post_action_users.json"]
    post_calls = new_calls["/posts.json"] + new_calls["/t/{id}.json"] + new_calls["/t/{id}/posts.json"]
    assert post_calls * 5 < old_calls["/t/{id}.json"] + old_calls["/t/{id}/posts.json"]


def _likes(activities) -> list[tuple]:
    return sorted(
        (r["date"], r["post_id"], r["user_id"]) for a in activities for r in a.post_likes.to_pylist()
    )


def _expected_likes(days: list[date]) -> list[tuple]:
    out = []
    for day in days:
        for post in community.posts_on(42, "small", "discourse", day):
            for person_id, _ in post.reactions:
                liker = int(community.member(42, "small", person_id).user_id("discourse"))
                out.append((day, int(post.post_id), liker))
    return sorted(out)


def test_a_key_that_may_not_read_likes_received_looks_likers_up_per_post(sandbox):
    days = _days(3)
    config = DiscourseConfig(
        url=f"{sandbox.base_url}/discourse", api_key=SANDBOX_DISCOURSE_USER_KEY, retry=FAST
    )
    before = len(sandbox.requests_to("/discourse/"))
    with DiscourseClient(config) as client:
        activities = list(client.activity(days))
    calls = _calls(sandbox, before)
    liked = _liked_by_author(days)
    # two authors' streams refused (404, a private action type) and none read: per post from then on
    assert calls["/user_actions.json"] == 2 and client.likes_received_allowed is False
    assert calls["/post_action_users.json"] == sum(len(c) for c in liked.values())
    assert _likes(activities) == _expected_likes(days) and client.skipped_lookups == 0


def test_an_author_whose_stream_is_refused_has_their_likers_looked_up_per_post(sandbox, client):
    days = _days(3)
    liked = _liked_by_author(days)
    author_id = max(liked, key=lambda a: len(liked[a]))
    author = next(m for m in community.members(42, "small") if m.user_id("discourse") == str(author_id))
    assert len(liked[author_id]) >= 2
    # a renamed or deleted author: their stream answers 404
    sandbox.inject_fault(f"/discourse/user_actions.json?username={author.handle}&", 404, times=None)
    before = len(sandbox.requests_to("/discourse/"))
    activities = list(client.activity(days))
    calls = _calls(sandbox, before)
    expected = _expected_calls(days)
    pages, per_post = _pages_then_posts(
        likes_in_streams(42, "small", TODAY, WAS_LIKED)[author_id], liked[author_id]
    )
    assert calls["/user_actions.json"] == expected["/user_actions.json"] - pages + 1
    assert calls["/post_action_users.json"] == expected.get("/post_action_users.json", 0) - per_post + len(
        liked[author_id]
    )
    assert _likes(activities) == _expected_likes(days) and client.skipped_lookups == 0


def test_a_post_counting_more_likes_than_the_stream_showed_is_asked_by_itself(sandbox, client):
    days = _days(1)
    post = next(p for p in community.posts_on(42, "small", "discourse", days[0]) if p.reactions)

    def counted(payload):  # the forum counts one like more than the stream holds (one given since)
        for item in payload["latest_posts"]:
            if item["id"] == int(post.post_id):
                item["like_count"] = len(post.reactions) + 1
        return payload

    sandbox.inject_fault("/discourse/posts.json", 200, times=None, kind="transform", transform=counted)
    before = len(sandbox.requests_to(f"/discourse/post_action_users.json?id={post.post_id}&"))
    (activity,) = list(client.activity(days))
    assert len(sandbox.requests_to(f"/discourse/post_action_users.json?id={post.post_id}&")) - before == 1
    assert _likes([activity]) == _expected_likes(days)
