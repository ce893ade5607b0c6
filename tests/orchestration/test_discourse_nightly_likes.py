"""The Discourse nightly looks up likers only for the posts whose like count moved since the last
load, and its raw likes are exactly those a full load of the same days finds (real Dagster runs
against a sandbox forum whose likes are edited between the loads)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import duckdb
import pytest

from connectors.sandbox import SandboxServer, community
from connectors.sandbox.discourse_api import (
    SANDBOX_DISCOURSE_API_KEY,
    WAS_LIKED,
    liker_person_ids,
    likes_in_streams,
)
from orchestration.discourse.assets import build_discourse_assets
from orchestration.discourse.resources import DiscourseResource, discourse_resource_from_env
from tests.connectors.test_discourse_calls import _pages_then_posts, _wire
from tests.orchestration.range_load import load_range

TODAY = date(2026, 11, 21)
FIRST, LAST = TODAY - timedelta(days=8), TODAY - timedelta(days=1)  # the nightly's 8 days
LIKER_METHODS = ("/user_actions.json", "/post_action_users.json")


@pytest.fixture
def forum():
    with SandboxServer(seed=42, scale="small", today=TODAY) as server:
        yield server


def _load(forum, folder, nightly=False, all_likers=False):
    resource = DiscourseResource(
        url=f"{forum.base_url}/discourse", api_key=SANDBOX_DISCOURSE_API_KEY, nightly_all_likers=all_likers
    )
    before = len(forum.requests_to("/discourse/"))
    settings = load_range(
        folder, build_discourse_assets, {"discourse": resource}, FIRST, LAST, FIRST, nightly=nightly
    )
    records = forum.requests_to("/discourse/")[before:]
    calls = Counter(r.path.split("?")[0][len("/discourse") :] for r in records)
    return settings, calls


def _likes(settings) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return conn.execute(
            "select date, post_id, user_id, created_at from raw_discourse.post_likes order by all"
        ).fetchall()


def _liked_posts() -> list[community.Post]:
    days = [FIRST + timedelta(days=d) for d in range((LAST - FIRST).days + 1)]
    return [p for day in days for p in community.posts_on(42, "small", "discourse", day) if p.reactions]


def _author(post: community.Post) -> int:
    return int(community.member(42, "small", post.author_person_id).user_id("discourse"))


def test_a_nightly_looks_up_only_changed_like_counts_and_lands_the_likes_a_full_load_finds(forum, tmp_path):
    first_load, _ = _load(forum, tmp_path / "night")
    loaded = _likes(first_load)
    liked = _liked_posts()
    assert len({p.post_id for p in liked}) == len({post_id for _, post_id, *_ in loaded}) > 10

    # Between the loads, three posts of three authors change: two gain a like, one loses one.
    members = sorted({pid for p in liked for pid, _ in p.reactions})
    picked, authors = [], set()
    for post in sorted(liked, key=lambda p: p.post_id):
        if len(post.reactions) >= 2 and _author(post) not in authors:
            picked.append(post)
            authors.add(_author(post))
        if len(picked) == 3:
            break
    assert len(picked) == 3
    edits = {}
    for post in picked[:2]:
        current = liker_person_ids(42, "small", TODAY, int(post.post_id))
        newcomer = next(m for m in members if m not in current and m != post.author_person_id)
        edits[int(post.post_id)] = (*current, newcomer)
    dropped = picked[2]
    edits[int(dropped.post_id)] = liker_person_ids(42, "small", TODAY, int(dropped.post_id))[1:]
    forum.discourse_likers.update(edits)

    _, night_calls = _load(forum, tmp_path / "night", nightly=True)
    night = _likes(first_load)
    fresh, full_calls = _load(forum, tmp_path / "fresh")

    # the raw likes equal a full load's, edits included, and differ from the first load's
    assert night == _likes(fresh)
    assert night != loaded
    assert len(night) == len(loaded) + 2 - 1
    # the posts and topics cost the same calls as a full load; the likers only those of the
    # three changed posts: per author, the documented rule on their stream for that one post
    for method in ("/latest.json", "/posts.json", "/categories.json"):
        assert night_calls[method] == full_calls[method], method
    received = likes_in_streams(42, "small", TODAY, WAS_LIKED, edits)
    expected = Counter()
    for post in picked:
        pages, per_post = _pages_then_posts(received[_author(post)], [_wire(post.created_at)])
        expected["/user_actions.json"] += pages
        expected["/post_action_users.json"] += per_post
    assert {m: night_calls[m] for m in LIKER_METHODS} == {m: expected[m] for m in LIKER_METHODS}
    assert sum(night_calls[m] for m in LIKER_METHODS) <= 6 < sum(full_calls[m] for m in LIKER_METHODS)
    assert not any(m.startswith("/t/") for m in night_calls)


def test_a_nightly_whose_counts_did_not_move_looks_up_no_likers_unless_told_to_look_up_all(
    forum, tmp_path, monkeypatch
):
    settings, full = _load(forum, tmp_path)
    loaded = _likes(settings)
    _, calls = _load(forum, tmp_path, nightly=True)
    assert _likes(settings) == loaded and loaded
    assert not any(calls[m] for m in LIKER_METHODS)
    # DISCOURSE_NIGHTLY_ALL_LIKERS=1: the nightly looks every liked post up, as the first load did
    monkeypatch.setenv("DISCOURSE_NIGHTLY_ALL_LIKERS", "1")
    assert discourse_resource_from_env(sandbox=True).nightly_all_likers
    _, calls = _load(forum, tmp_path, nightly=True, all_likers=True)
    assert _likes(settings) == loaded
    assert {m: calls[m] for m in LIKER_METHODS} == {m: full[m] for m in LIKER_METHODS}
    assert sum(full[m] for m in LIKER_METHODS) > 0
