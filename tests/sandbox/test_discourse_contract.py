"""The sandbox's Discourse answers validate against the published OpenAPI contract.

Each response is checked with jsonschema against the 200 schema of its path in Discourse's
OpenAPI document (as derived into tests/contracts/discourse.json; $ref resolved within it).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import jsonschema
import pytest
import requests

from connectors.sandbox import COMMUNITY_DOMAIN, SandboxServer, community
from connectors.sandbox.discourse_api import (
    SANDBOX_DISCOURSE_API_KEY,
    SANDBOX_DISCOURSE_USER_KEY,
    topics_between,
)

TODAY = date(2026, 11, 21)
HEADERS = {"Api-Key": SANDBOX_DISCOURSE_API_KEY, "Api-Username": "system"}


@pytest.fixture(scope="module")
def forum():
    with SandboxServer(seed=42, scale="small", today=TODAY) as server:
        yield server


@pytest.fixture(scope="module")
def contract(contract):
    # overrides the session fixture of the same name (tests/conftest.py) with Discourse's document
    return contract("discourse")


def _schema(contract: dict, path: str) -> dict:
    return contract["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]


def _validate(contract: dict, path: str, payload) -> None:
    document = {**_schema(contract, path), "components": contract.get("components", {})}
    jsonschema.Draft202012Validator(document).validate(_like_counts_checked(contract, payload))


def _like_counts_checked(contract: dict, payload):
    """`payload` with its posts' like counts taken out, once each post's actions_summary validates
    against /posts/{id}.json's. Discourse writes every post with one serializer, which keeps `count`
    (for a staff key) while above 0; the published examples of /posts.json and /t/{id}.json hold no
    liked post, so their schemas lack `count`, and /posts/{id}.json's has it."""
    entry = jsonschema.Draft202012Validator(
        _schema(contract, "/posts/{id}.json")["properties"]["actions_summary"]
    )

    def walk(node):
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "post_number" in node and isinstance(node.get("actions_summary"), list):
            entry.validate(node["actions_summary"])
            summary = [{k: v for k, v in a.items() if k != "count"} for a in node["actions_summary"]]
            node = {**node, "actions_summary": summary}
        return {key: walk(value) for key, value in node.items()}

    return walk(payload)


def _get(forum, path: str, params=None, headers=HEADERS):
    return requests.get(f"{forum.base_url}/discourse{path}", params=params, headers=headers, timeout=30)


def test_categories_match_the_contract_and_the_community_spaces(forum, contract):
    answer = _get(forum, "/categories.json", {"include_subcategories": "true"})
    assert answer.status_code == 200
    _validate(contract, "/categories.json", answer.json())
    names = {c["name"] for c in answer.json()["category_list"]["categories"]}
    assert names == {s.name for s in community.spaces("discourse")}


def test_latest_pages_match_the_contract_and_end_without_more_topics_url(forum, contract):
    first = _get(forum, "/latest.json", {"order": "activity", "per_page": 100})
    assert first.status_code == 200
    _validate(contract, "/latest.json", first.json())
    topic_list = first.json()["topic_list"]
    assert topic_list["more_topics_url"].startswith("/latest?")
    bumped = [t["bumped_at"] for t in topic_list["topics"]]
    assert bumped == sorted(bumped, reverse=True)
    # The last page has no more_topics_url.
    page, pages = 0, 0
    while True:
        answer = _get(forum, "/latest.json", {"order": "activity", "per_page": 100, "page": page}).json()
        pages += 1
        if "more_topics_url" not in answer["topic_list"]:
            break
        page += 1
    assert pages > 3 and answer["topic_list"]["topics"]


def test_topic_lists_every_post_id_but_at_most_twenty_posts(forum, contract):
    # The small brand's threads are shorter than Discourse's chunk of 20; the longest one is used,
    # and its later posts are asked for by id as a client does for the ids left out.
    topics = topics_between(42, "small", TODAY, date(2025, 7, 1), TODAY)
    long = max(topics, key=lambda t: len(t.posts))
    answer = _get(forum, f"/t/{long.topic_id}.json")
    assert answer.status_code == 200
    payload = answer.json()
    _validate(contract, "/t/{id}.json", payload)
    stream, posts = payload["post_stream"]["stream"], payload["post_stream"]["posts"]
    assert len(stream) == len(long.posts) > 10 and len(posts) == min(20, len(stream))
    assert payload["chunk_size"] == 20
    rest = _get(forum, f"/t/{long.topic_id}/posts.json", [("post_ids[]", i) for i in stream[5:]])
    assert rest.status_code == 200
    _validate(contract, "/t/{id}/posts.json", rest.json())
    assert [p["id"] for p in rest.json()["post_stream"]["posts"]] == stream[5:]


def test_posts_are_cooked_html_with_links(forum):
    topics = topics_between(42, "small", TODAY, TODAY - timedelta(days=40), TODAY - timedelta(days=1))
    cooked = []
    for topic in topics[:40]:
        cooked += [
            p["cooked"] for p in _get(forum, f"/t/{topic.topic_id}.json").json()["post_stream"]["posts"]
        ]
    assert all(c.startswith("<p>") for c in cooked)
    assert any('<a href="https://' in c and "northwind-analytics.com" in c for c in cooked)


def test_admin_users_list_matches_the_contract_and_pages_until_empty(forum, contract):
    seen, page = [], 1
    while True:
        answer = _get(forum, "/admin/users/list/active.json", {"page": page, "show_emails": "true"})
        assert answer.status_code == 200
        _validate(contract, "/admin/users/list/{flag}.json", answer.json()) if answer.json() else None
        if not answer.json():
            break
        seen += answer.json()
        page += 1
    assert len(seen) == len({u["id"] for u in seen}) > 100
    assert all("@" in u["email"] for u in seen)
    assert any(u["email"].endswith("@northwind-analytics.com") for u in seen)


def test_likers_are_the_reactions_of_the_post(forum):
    topic = next(
        t for t in topics_between(42, "small", TODAY, TODAY - timedelta(days=5), TODAY) if t.root.reactions
    )
    answer = _get(forum, "/post_action_users.json", {"id": topic.root.post_id, "post_action_type_id": 2})
    assert answer.status_code == 200
    likers = answer.json()["post_action_users"]
    assert len(likers) == len(topic.root.reactions)
    assert all(COMMUNITY_DOMAIN in u["avatar_template"] for u in likers)


def test_without_the_api_key_discourse_answers_invalid_access(forum):
    answer = _get(forum, "/latest.json", headers={"Api-Username": "system"})
    assert answer.status_code == 403
    assert answer.json()["error_type"] == "invalid_access"
    wrong = _get(forum, "/latest.json", headers={"Api-Key": "nope", "Api-Username": "system"})
    assert wrong.status_code == 403


def test_the_rate_limit_fault_has_discourses_body(forum):
    forum.inject_fault("/discourse/latest", 429, headers={"Retry-After": "1"})
    answer = _get(forum, "/latest.json")
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"
    body = answer.json()
    assert body["error_type"] == "rate_limit" and body["extras"]["wait_seconds"] >= 1
    assert _get(forum, "/latest.json").status_code == 200


def test_latest_posts_match_the_contract_and_page_by_id_across_topics(forum, contract):
    first = _get(forum, "/posts.json")
    assert first.status_code == 200
    _validate(contract, "/posts.json", first.json())
    page = first.json()["latest_posts"]
    ids = [p["id"] for p in page]
    assert len(page) == 50 and ids == sorted(ids, reverse=True)
    assert len({p["topic_id"] for p in page}) > 1  # across topics
    # ids grow with time, as the forum's do: newest id first is newest post first
    created = [p["created_at"] for p in page]
    assert created == sorted(created, reverse=True)
    second = _get(forum, "/posts.json", {"before": ids[-1]}).json()["latest_posts"]
    _validate(contract, "/posts.json", {"latest_posts": second})
    # a liked post gives its like count (a staff key's view), a post without likes no entry
    reactions = {
        int(p.post_id): len(p.reactions)
        for t in topics_between(42, "small", TODAY, date(2025, 1, 1), TODAY)
        for p in t.posts
    }
    summaries = {p["id"]: p["actions_summary"] for p in page + second}
    assert any(summaries.values()) and not all(summaries.values())
    assert summaries == {
        i: [{"id": 2, "count": reactions[i], "can_act": True}] if reactions[i] else [] for i in summaries
    }
    assert second[0]["id"] < ids[-1] and len(second) == 50  # `before` excludes its own id
    # every post of the forum, each once, when paged down to the empty page
    seen, before = [], None
    while True:
        batch = _get(forum, "/posts.json", {"before": before} if before else None).json()["latest_posts"]
        if not batch:
            break
        seen += [p["id"] for p in batch]
        before = batch[-1]["id"]
    expected = [
        int(p.post_id) for t in topics_between(42, "small", TODAY, date(2025, 1, 1), TODAY) for p in t.posts
    ]
    assert len(seen) == len(set(seen)) and sorted(seen) == sorted(expected)


def _stream(forum, username: str, action: int, headers=HEADERS) -> tuple[list[dict], int]:
    """Every item of `username`'s stream of `action`, paged by offset to the short page; pages."""
    items, pages = [], 0
    while True:
        answer = _get(forum, "/user_actions.json",
                      {"username": username, "filter": action, "offset": len(items)}, headers)  # fmt: skip
        assert answer.status_code == 200
        pages += 1
        page = answer.json()["user_actions"]
        items += page
        if len(page) < 30:
            return items, pages


def test_user_actions_list_likes_received_and_given_newest_first_within_the_contract(forum, contract):
    posts = [p for t in topics_between(42, "small", TODAY, date(2025, 1, 1), TODAY) for p in t.posts]
    received = Counter(p.author_person_id for p in posts for _ in p.reactions)
    given = Counter(pid for p in posts for pid, _ in p.reactions)
    author = community.member(42, "small", max(received, key=received.get))
    assert received[author.person_id] > 60  # a stream of three pages or more
    items, pages = _stream(forum, author.handle, 2)
    _validate(contract, "/user_actions.json", {"user_actions": items})
    assert len(items) == received[author.person_id] and pages == len(items) // 30 + 1
    assert {i["action_type"] for i in items} == {2}
    assert {(i["user_id"], i["target_username"]) for i in items} == {
        (int(author.user_id("discourse")), author.handle)
    }
    moments = [i["created_at"] for i in items]
    assert moments == sorted(moments, reverse=True)  # newest like first, across pages
    by_id = {p.post_id: p for p in posts}
    for item in items:  # each like after its post and before the sandbox's today
        post = by_id[item["post_id"]]
        assert post.created_at.isoformat()[:23] <= item["created_at"][:23] < TODAY.isoformat()
        likers = [community.member(42, "small", pid).user_id("discourse") for pid, _ in post.reactions]
        assert str(item["acting_user_id"]) in likers
    # the same likes, seen from the likers' side (filter=1: likes given)
    liker = community.member(42, "small", max(given, key=given.get))
    mine, _ = _stream(forum, liker.handle, 1)
    _validate(contract, "/user_actions.json", {"user_actions": mine})
    assert len(mine) == given[liker.person_id] and {i["acting_username"] for i in mine} == {liker.handle}


def test_likes_received_are_private_to_their_user_and_admins(forum):
    author = community.member(42, "small", topics_between(42, "small", TODAY, date(2025, 1, 1), TODAY)[0]
                              .root.author_person_id)  # fmt: skip
    params = {"username": author.handle, "filter": 2, "offset": 0}
    user_key = {"Api-Key": SANDBOX_DISCOURSE_USER_KEY, "Api-Username": "system"}
    refused = _get(forum, "/user_actions.json", params, user_key)
    assert refused.status_code == 404 and refused.json()["error_type"] == "not_found"
    own = _get(forum, "/user_actions.json", params, {**user_key, "Api-Username": author.handle})
    assert own.status_code == 200
    assert own.json() == _get(forum, "/user_actions.json", params).json()  # as the admin key sees it
    assert _get(forum, "/user_actions.json", {**params, "filter": 1}, user_key).status_code == 200
    unknown = _get(forum, "/user_actions.json", {**params, "username": "nobody-here"})
    assert unknown.status_code == 404


def test_with_likes_arriving_recent_posts_count_only_the_likes_given_before_today(forum):
    def counts(server, down_to: int | None = None) -> dict[int, int]:
        """Each post's like count, from the newest 50 posts (down to id `down_to`)."""
        out, before = {}, None
        while not out or (down_to is not None and before > down_to):
            page = _get(server, "/posts.json", {"before": before} if before else None).json()["latest_posts"]
            out.update(
                {p["id"]: sum(a.get("count", 0) for a in p["actions_summary"] if a["id"] == 2) for p in page}
            )
            before = page[-1]["id"]
        return out

    generated = {
        int(p.post_id): (len(p.reactions), p.created_at)
        for t in topics_between(42, "small", TODAY, date(2025, 1, 1), TODAY)
        for p in t.posts
    }
    with SandboxServer(seed=42, scale="small", today=TODAY, discourse_likes_arrive=True) as today:
        now = counts(today)
    with SandboxServer(
        seed=42, scale="small", today=TODAY + timedelta(days=1), discourse_likes_arrive=True
    ) as later:
        next_day = counts(later, down_to=min(now))
    assert counts(forum) == {i: generated[i][0] for i in now}  # without the option: every like at once
    assert all(now[i] <= next_day[i] <= generated[i][0] for i in now)
    assert any(now[i] < next_day[i] for i in now)  # likes given during the day
    cutoff = datetime(TODAY.year, TODAY.month, TODAY.day, tzinfo=UTC) - timedelta(days=3)
    assert all(now[i] == generated[i][0] for i in now if generated[i][1] < cutoff)
