"""The Discourse connector against the sandbox forum: paging, missing post ids, every fault mode."""

from __future__ import annotations

import logging
import math
from datetime import date, datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

import pytest

from connectors import discourse
from connectors.discourse import (
    DiscourseClient,
    DiscourseConfig,
    DiscourseConfigError,
    DiscourseSchemaError,
)
from connectors.http import ApiError, RetryPolicy
from connectors.sandbox import community
from connectors.sandbox.discourse_api import SANDBOX_DISCOURSE_API_KEY, latest_post, topics_between

TODAY = date(2026, 11, 21)  # the connector conftest's sandbox "today"
DAY = TODAY - timedelta(days=3)
FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=60.0, max_total_seconds=90.0)


@pytest.fixture
def make(sandbox):
    clients = []

    def make(sleep=None, **overrides) -> DiscourseClient:
        settings = dict(
            url=f"{sandbox.base_url}/discourse",
            api_key=SANDBOX_DISCOURSE_API_KEY,
            retry=FAST,
            timeout_seconds=10,
        )
        settings.update(overrides)
        client = DiscourseClient(DiscourseConfig(**settings), sleep=sleep)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


class Waits(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _day_posts(client: DiscourseClient, day: date):
    (activity,) = list(client.activity([day]))
    return activity


def _expected(day: date) -> list[community.Post]:
    return list(community.posts_on(42, "small", "discourse", day))


# --- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", "DISCOURSE_URL is not set"),
        ("forum.example.com", "is not a URL"),
        ("http://forum.example.com", "use https"),
        ("https://forum.example.com/latest.json", "forum's root"),
    ],
)
def test_a_bad_forum_url_is_refused_before_any_request(url, words):
    with pytest.raises(DiscourseConfigError, match=words) as info:
        DiscourseConfig(url=url, api_key="k")
    assert "DISCOURSE_URL" in str(info.value) and "https://forum.example.com" in str(info.value)


def test_the_key_is_required_and_never_shown():
    with pytest.raises(DiscourseConfigError, match="DISCOURSE_API_KEY is not set"):
        DiscourseConfig.from_env({"DISCOURSE_URL": "https://forum.example.com"})
    config = DiscourseConfig.from_env(
        {"DISCOURSE_URL": "https://forum.example.com/", "DISCOURSE_API_KEY": "secret-key-123"}
    )
    assert config.url == "https://forum.example.com" and config.api_username == "system"
    assert "secret-key-123" not in repr(config)


# --- paging ----------------------------------------------------------------------------------------


def test_latest_follows_more_topics_url_until_it_is_absent(sandbox, make):
    client = make()
    pages = list(client.latest_pages("activity"))
    ids = [t["id"] for page in pages for t in page]
    total = len(topics_between(42, "small", TODAY, date(2025, 7, 1), TODAY))
    assert len(ids) == len(set(ids)) == total
    assert len(pages) == math.ceil(total / 100)  # per_page=100
    requested = sandbox.requests_to("/discourse/latest.json")[-len(pages) :]
    pages_asked = [dict(parse_qsl(urlsplit(r.path).query)).get("page", "0") for r in requested]
    assert pages_asked == [str(n) for n in range(len(pages))]


def test_a_day_holds_exactly_the_posts_created_that_day(make):
    activity = _day_posts(make(), DAY)
    expected = _expected(DAY)
    assert sorted(activity.posts.column("post_id").to_pylist()) == sorted(int(p.post_id) for p in expected)
    assert activity.post_likes.num_rows == sum(len(p.reactions) for p in expected)
    roots = [p for p in expected if p.thread_root_id is None]
    assert activity.topics.num_rows == len(roots)
    assert set(activity.posts.column("date").to_pylist()) == {DAY}


def test_post_ids_the_first_page_leaves_out_are_fetched(sandbox, make):
    topic = max(topics_between(42, "small", TODAY, DAY, DAY), key=lambda t: len(t.posts))
    assert len(topic.posts) >= 4

    def first_two(payload):
        payload["post_stream"]["posts"] = payload["post_stream"]["posts"][:2]
        return payload

    sandbox.inject_fault(f"/discourse/t/{topic.topic_id}.json", 200, kind="transform", transform=first_two)
    client = make()
    summary, pages = client.topic(topic.topic_id)
    posts = [p for page in pages for p in page]
    assert [p["id"] for p in posts] == [int(p.post_id) for p in topic.posts]
    asked = sandbox.requests_to(f"/discourse/t/{topic.topic_id}/posts.json")
    assert asked and "post_ids" in asked[-1].path


def _first_page_only(n: int):
    """A transform fault: /t/{id}.json answers only its first n posts (the rest by post_ids[])."""

    def transform(payload):
        if "stream" in payload.get("post_stream", {}):
            payload["post_stream"]["posts"] = payload["post_stream"]["posts"][:n]
        return payload

    return transform


def test_a_long_topic_is_read_newest_first_down_to_the_days_asked(sandbox, make, monkeypatch):
    monkeypatch.setattr(discourse, "POST_IDS_PER_REQUEST", 2)
    topics = topics_between(42, "small", TODAY, DAY - timedelta(days=30), DAY)
    topic = max(topics, key=lambda t: len(t.posts))
    assert len(topic.posts) >= 6 and topic.posts[-1].created_at > topic.posts[-2].created_at
    since = topic.posts[-1].created_at
    sandbox.inject_fault(f"/discourse/t/{topic.topic_id}.json", 200, times=None, kind="transform",
                         transform=_first_page_only(1))  # fmt: skip
    client = make()

    _, pages = client.topic(topic.topic_id, since=since)
    got = [p["id"] for page in pages for p in page]
    asked = sandbox.requests_to(f"/discourse/t/{topic.topic_id}/posts.json")
    everything = [int(p.post_id) for p in topic.posts]
    # every post created since `since` is there, in stream order; older ones are mostly skipped
    assert got == sorted(got) and set(got) <= set(everything)
    assert {int(p.post_id) for p in topic.posts if p.created_at >= since} <= set(got)
    chunks = math.ceil((len(everything) - 1) / 2)
    assert 1 <= len(asked) <= 2 < chunks
    assert len(got) <= 1 + 2 * len(asked) < len(everything)

    _, pages = client.topic(topic.topic_id)  # without `since`: every post, every chunk asked
    assert [p["id"] for page in pages for p in page] == everything
    assert len(sandbox.requests_to(f"/discourse/t/{topic.topic_id}/posts.json")) == len(asked) + chunks


def test_a_day_is_complete_when_long_topics_are_read_newest_first(sandbox, make, monkeypatch):
    monkeypatch.setattr(discourse, "POST_IDS_PER_REQUEST", 1)

    def a_whisper_in_every_topic(payload):  # /latest counts a post /posts.json does not list
        for summary in payload["topic_list"]["topics"]:
            summary["highest_post_number"] += 1
        return payload

    # every active topic is then read whole, through /t/{id}.json and its posts newest first
    sandbox.inject_fault("/discourse/latest.json", 200, times=None, kind="transform",
                         transform=a_whisper_in_every_topic)  # fmt: skip
    sandbox.inject_fault("/discourse/t/", 200, times=None, kind="transform", transform=_first_page_only(1))
    before = len(sandbox.requests_to("/discourse/t/"))
    activity = _day_posts(make(), DAY)
    expected = _expected(DAY)
    assert sorted(activity.posts.column("post_id").to_pylist()) == sorted(int(p.post_id) for p in expected)
    assert activity.post_likes.num_rows == sum(len(p.reactions) for p in expected)
    # without the skip: one request per post after the first of every topic read
    made = [r.path for r in sandbox.requests_to("/discourse/t/")[before:]]
    read = {path.split("/t/")[1].split(".json")[0] for path in made if "/posts.json" not in path}
    every = {str(t.topic_id): t for t in topics_between(42, "small", TODAY, DAY - timedelta(days=400), TODAY)}
    replies = sum(len(every[t].posts) - 1 for t in read)
    asked = len([path for path in made if "/posts.json" in path])
    assert 0 < asked < replies


# A post id larger than any of the sandbox forum's: the first post a move re-creates in a topic.
MOVED_ID_OFFSET = 10**15


def _first_post_recreated_by_a_move(n: int):
    """A transform fault: /t/{id}.json answers its first n posts, and its first post carries a new,
    larger id, in the posts and in the stream, as when a move re-creates a topic's first post: it
    keeps its old created_at. The topic's ids then no longer grow with time in stream order."""

    def transform(payload):
        stream = payload.get("post_stream", {})
        if "stream" in stream:
            stream["posts"] = stream["posts"][:n]
            old = stream["posts"][0]["id"]
            # a new post: the likes stay with the old one (the sandbox knows no likers for this id)
            stream["posts"][0].update(id=old + MOVED_ID_OFFSET, like_count=0, actions_summary=[])
            stream["stream"] = [i + MOVED_ID_OFFSET if i == old else i for i in stream["stream"]]
        return payload

    return transform


def test_a_topic_whose_ids_do_not_grow_with_time_is_read_whole_since_a_day(sandbox, make, monkeypatch):
    monkeypatch.setattr(discourse, "POST_IDS_PER_REQUEST", 2)
    topics = topics_between(42, "small", TODAY, DAY - timedelta(days=30), DAY)
    topic = max(topics, key=lambda t: len(t.posts))
    assert len(topic.posts) >= 6 and topic.posts[-1].created_at > topic.posts[1].created_at
    since = topic.posts[-1].created_at
    sandbox.inject_fault(f"/discourse/t/{topic.topic_id}.json", 200, times=None, kind="transform",
                         transform=_first_post_recreated_by_a_move(1))  # fmt: skip

    before = len(sandbox.requests_to(f"/discourse/t/{topic.topic_id}/posts.json"))
    _, pages = make().topic(topic.topic_id, since=since)
    got = [p["id"] for page in pages for p in page]
    everything = [int(p.post_id) for p in topic.posts]
    # the re-created first post (created long before `since`, with the largest id) no longer hides
    # the newer posts of smaller ids: every post once, in stream order
    assert got == [everything[0] + MOVED_ID_OFFSET, *everything[1:]]
    asked = sandbox.requests_to(f"/discourse/t/{topic.topic_id}/posts.json")[before:]
    assert len(asked) == math.ceil((len(everything) - 1) / 2)


def _first_posts_recreated_in_latest_posts(roots: dict[int, dict]):
    """A transform fault of /posts.json matching `_first_post_recreated_by_a_move`: the first posts
    `roots` (old id -> its /posts.json form) are gone from their place and head the newest page
    with their new, largest ids and their old created_at, as the forum lists them after a move."""
    calls = []

    def transform(payload):
        posts = [p for p in payload["latest_posts"] if p["id"] not in roots]
        if not calls:  # the first page asked: the newest ids
            moved = [{**p, "id": i + MOVED_ID_OFFSET, "actions_summary": []} for i, p in roots.items()]
            posts = sorted(moved, key=lambda p: p["id"], reverse=True) + posts
        calls.append(1)
        payload["latest_posts"] = posts
        return payload

    return transform


def test_a_day_holds_every_post_once_when_topics_ids_do_not_grow_with_time(sandbox, make, monkeypatch):
    monkeypatch.setattr(discourse, "POST_IDS_PER_REQUEST", 1)
    expected = _expected(DAY)
    roots = {int(p.post_id): latest_post(42, "small", TODAY, int(p.post_id)) for p in expected
             if p.thread_root_id is None}  # fmt: skip
    sandbox.inject_fault("/discourse/t/", 200, times=None, kind="transform",
                         transform=_first_post_recreated_by_a_move(1))  # fmt: skip
    sandbox.inject_fault("/discourse/posts.json", 200, times=None, kind="transform",
                         transform=_first_posts_recreated_in_latest_posts(roots))  # fmt: skip
    activity = _day_posts(make(), DAY)
    got = activity.posts.column("post_id").to_pylist()
    assert len(got) == len(set(got))  # each post once, counted by id
    want = {int(p.post_id) + (MOVED_ID_OFFSET if p.thread_root_id is None else 0) for p in expected}
    assert roots and set(got) == want
    assert sum(p.thread_root_id is not None for p in expected) > 0  # replies that a skip by id would lose
    # the re-created first posts (newest ids, old created_at) did not end the paging early
    (row,) = [r for r in activity.posts.to_pylist() if r["post_id"] == min(roots) + MOVED_ID_OFFSET]
    assert row["date"] == DAY and row["post_number"] == 1


def test_a_post_moved_into_a_newer_topic_is_loaded_once_with_that_topic(sandbox, make):
    """A moderator moves an older post into a topic started on DAY: the post keeps its small id
    and its created_at, days before the topic existed. The days it was written no longer find it
    (its old topic lost it); it is loaded once, filed with its new topic's day."""
    topic = next(t for t in topics_between(42, "small", TODAY, DAY, DAY) if t.created_at.date() == DAY)
    written = datetime(2026, 11, 13, 9, 0, tzinfo=timezone.utc)
    assert written.date() == DAY - timedelta(days=5)
    moved_id = 7  # smaller than any id of the sandbox forum: it was written long ago

    def moved_in(payload):
        stream = payload.get("post_stream", {})
        if "stream" in stream:
            moved = {**stream["posts"][0], "id": moved_id, "post_number": len(stream["stream"]) + 1,
                     "created_at": written.isoformat().replace("+00:00", "Z"), "like_count": 0,
                     "actions_summary": [], "reply_to_post_number": None}  # fmt: skip
            stream["posts"].append(moved)
            stream["stream"].append(moved_id)
        return payload

    def one_more_post(payload):  # /latest counts the moved post in its new topic
        for summary in payload["topic_list"]["topics"]:
            if summary["id"] == topic.topic_id:
                summary["highest_post_number"] += 1
                summary["posts_count"] += 1
        return payload

    sandbox.inject_fault(f"/discourse/t/{topic.topic_id}.json", 200, times=None, kind="transform",
                         transform=moved_in)  # fmt: skip
    sandbox.inject_fault("/discourse/latest.json", 200, times=None, kind="transform",
                         transform=one_more_post)  # fmt: skip
    days = [DAY - timedelta(days=n) for n in range(6, -1, -1)]
    # one day at a time, as the daily partitions load them (a range in one call reads the topic
    # with every day of the range wanted)
    client = make()
    activities = [a for day in days for a in client.activity([day])]
    got = [(a.day, i) for a in activities for i in a.posts.column("post_id").to_pylist()]
    ids = [i for _, i in got]
    assert len(ids) == len(set(ids))  # every post once, counted by id
    assert [(day, i) for day, i in got if i == moved_id] == [(DAY, moved_id)]
    expected = {int(p.post_id) for day in days for p in _expected(day)}
    assert set(ids) == expected | {moved_id}
    (row,) = [r for a in activities for r in a.posts.to_pylist() if r["post_id"] == moved_id]
    assert row["created_at"] == written and row["topic_id"] == topic.topic_id


def test_subcategories_are_flattened_with_their_parent(sandbox, make):
    def with_child(payload):
        first = payload["category_list"]["categories"][0]
        first["subcategory_list"] = [{**first, "id": 99, "name": "Office hours", "slug": "office-hours"}]
        first["subcategory_list"][0]["subcategory_list"] = []
        return payload

    sandbox.inject_fault("/discourse/categories.json", 200, kind="transform", transform=with_child)
    rows = {r["category_id"]: r for r in make().categories().to_pylist()}
    assert rows[99]["parent_category_id"] == 1 and rows[1]["parent_category_id"] is None
    assert "include_subcategories=true" in sandbox.requests_to("/discourse/categories.json")[-1].path


def test_users_page_until_a_page_shorter_than_100(sandbox, make):
    before = len(sandbox.requests_to("/discourse/admin/users/list/"))
    batches = list(make().users())
    users = [u for b in batches for u in b.to_pylist()]
    assert 0 < batches[-1].num_rows < 100 and all(b.num_rows == 100 for b in batches[:-1])
    assert len(users) > 100 and len(sandbox.requests_to("/discourse/admin/users/list/")) - before == len(
        batches
    )
    assert len({u["user_id"] for u in users}) == len(users)
    assert all(u["email_domain"] == u["email"].split("@")[1] for u in users)


def test_like_lookups_are_bounded(make):
    client = make(max_like_lookups=1)
    activity = _day_posts(client, DAY)
    assert client.like_lookups == 1 and client.like_lookups_skipped > 0
    assert activity.post_likes.num_rows < sum(len(p.reactions) for p in _expected(DAY))


# --- faults ----------------------------------------------------------------------------------------


def test_rate_limit_wait_seconds_is_honoured(sandbox, make):
    body = {"errors": ["Slow down."], "error_type": "rate_limit", "extras": {"wait_seconds": 7}}
    sandbox.inject_fault("/discourse/latest.json", 429, body=body)
    waits = Waits()
    page = next(make(sleep=waits).latest_pages())
    assert waits == [7.0] and page


def test_429_with_retry_after_and_the_default_body_waits_the_longer_hint(sandbox, make):
    sandbox.inject_fault("/discourse/posts.json", 429, headers={"Retry-After": "3"})
    waits = Waits()
    assert _day_posts(make(sleep=waits), DAY).posts.num_rows == len(_expected(DAY))
    assert waits == [3.0]


def test_text_plain_429_from_the_global_limiter_is_retried(sandbox, make):
    sandbox.inject_fault(
        "/discourse/latest.json",
        429,
        body="Slow down, too Many Requests from this IP Address",
        headers={"Retry-After": "2"},
    )
    waits = Waits()
    assert next(make(sleep=waits).latest_pages())
    assert waits == [2.0]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried_and_loaded(sandbox, make, status):
    sandbox.inject_fault("/discourse/posts.json", status, times=2)
    assert _day_posts(make(), DAY).posts.num_rows == len(_expected(DAY))


@pytest.mark.parametrize("kind", ["drop", "truncate"])
def test_dropped_connections_and_cut_bodies_are_retried(sandbox, make, kind):
    sandbox.inject_fault("/discourse/posts.json", 200, kind=kind)
    assert _day_posts(make(), DAY).posts.num_rows == len(_expected(DAY))


def test_a_response_slower_than_the_timeout_is_retried(sandbox, make):
    sandbox.inject_fault("/discourse/latest.json", 200, kind="slow", delay=1.0)
    client = make(timeout_seconds=0.3)
    assert next(client.latest_pages())
    assert client.requests == 2


def test_after_the_last_attempt_the_error_names_source_endpoint_status_and_message(sandbox, make, caplog):
    sandbox.inject_fault("/discourse/latest.json", 503, times=None)
    with pytest.raises(ApiError) as info:
        next(make(retry=RetryPolicy(max_attempts=3, base_delay=0.01)).latest_pages())
    text = str(info.value)
    assert "discourse" in text and "/latest.json" in text and "503" in text and "after 3 attempts" in text
    assert "Service Unavailable" in text


def test_a_revoked_key_fails_at_once_without_leaking_the_key(sandbox, make, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.inject_fault("/discourse/latest.json", 429, times=1, headers={"Retry-After": "0"})
    client = make(api_key="not-the-sandbox-key-4711", sleep=Waits())
    with pytest.raises(ApiError) as info:
        next(client.latest_pages())
    text = str(info.value)
    assert info.value.status == 403 and "invalid_access" in text and "DISCOURSE_API_KEY" in text
    assert "not-the-sandbox-key-4711" not in text
    assert "not-the-sandbox-key-4711" not in caplog.text and "retry" in caplog.text
    assert client.requests == 2  # the 429 was retried, the 403 was not


def test_an_extra_field_is_tolerated_with_a_warning(sandbox, make, caplog):
    def extra(payload):
        for post in payload["latest_posts"]:
            post["reaction_users_count"] = 3
        return payload

    sandbox.inject_fault("/discourse/posts.json", 200, kind="transform", transform=extra, times=None)
    with caplog.at_level(logging.WARNING, logger="connectors.discourse"):
        activity = _day_posts(make(), DAY)
    assert activity.posts.num_rows == len(_expected(DAY))
    assert "reaction_users_count" in caplog.text
    assert caplog.text.count("reaction_users_count") == 1  # once, not per post


@pytest.mark.parametrize("field", ["cooked", "created_at"])
def test_a_removed_field_fails_and_names_it(sandbox, make, field):
    def removed(payload):
        for post in payload["latest_posts"]:
            post.pop(field, None)
        return payload

    sandbox.inject_fault("/discourse/posts.json", 200, kind="transform", transform=removed, times=None)
    with pytest.raises(DiscourseSchemaError, match=f"'{field}'"):
        _day_posts(make(), DAY)


def test_a_renamed_paging_field_fails_and_names_it(sandbox, make):
    def renamed(payload):
        payload["topic_list"]["topic_rows"] = payload["topic_list"].pop("topics")
        return payload

    sandbox.inject_fault("/discourse/latest.json", 200, kind="transform", transform=renamed)
    with pytest.raises(DiscourseSchemaError, match="topic_list.topics"):
        next(make().latest_pages())


def test_topic_spans_keep_ids_and_microsecond_times_and_filter_by_activity():
    base = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    spans = discourse.TopicSpans()
    rows = [
        (7, base, base + timedelta(days=2)),
        (8, base + timedelta(days=5), base + timedelta(days=5)),
        (9, base - timedelta(days=40), base - timedelta(microseconds=1)),
    ]
    for row in rows:
        spans.append(*row)
    assert len(spans) == 3 and [tuple(s) for s in spans] == rows and spans[1].topic_id == 8
    assert list(spans.active(base, base + timedelta(days=1))) == [7]  # created before end, bumped since start
    assert list(spans.active(base + timedelta(days=2), base + timedelta(days=6))) == [7, 8]
    assert list(spans.active(base - timedelta(microseconds=1), base)) == [9]  # end excluded, start included
    assert list(spans.active(base + timedelta(days=6), base + timedelta(days=9))) == []
