"""How many calls a Discourse load makes, per method, and that the rows are those of the per-topic
path it replaced (tests/connectors/discourse_topic_path.py), on the sandbox forum."""

from __future__ import annotations

import math
from collections import Counter
from datetime import date, datetime, timedelta, timezone

import pytest

from connectors.discourse import DiscourseClient, DiscourseConfig, day_bounds
from connectors.http import RetryPolicy
from connectors.sandbox import community
from connectors.sandbox.discourse_api import SANDBOX_DISCOURSE_API_KEY, topics_between
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


def _expected_calls(days: list[date]) -> dict[str, int]:
    """The calls the sandbox's data asks for: /latest pages of 100 down to the first topic bumped
    before the range, /posts.json pages of 50 down to the first reply written before it,
    one likers call per liked post of the range (none has more than 200 likers)."""
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
    liked = sum(bool(p.reactions) for d in days for p in community.posts_on(42, "small", "discourse", d))
    return {"/latest.json": latest, "/posts.json": pages, "/post_action_users.json": liked}


@pytest.mark.parametrize("n_days", [1, 3])
def test_a_small_range_costs_exact_calls_per_method(sandbox, client, n_days):
    days = _days(n_days)
    before = len(sandbox.requests_to("/discourse/"))
    activities = list(client.activity(days))
    calls = _calls(sandbox, before)
    expected = _expected_calls(days)
    assert dict(calls) == expected  # no /t/{id}.json: /posts.json lists every post of these days
    assert client.requests == sum(expected.values())
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
    # the same likers lookups, far fewer calls for the posts
    assert new_calls["/post_action_users.json"] == old_calls["/post_action_users.json"]
    post_calls = new_calls["/posts.json"] + new_calls["/t/{id}.json"] + new_calls["/t/{id}/posts.json"]
    assert post_calls * 5 < old_calls["/t/{id}.json"] + old_calls["/t/{id}/posts.json"]
