"""The community generator is deterministic and its planted facts are measurable."""

from __future__ import annotations

import collections
from datetime import date, timedelta

import pytest

from connectors.sandbox import brand, community

SEED, SCALE = 42, "small"
END = date(2026, 11, 20)


def test_deterministic_and_never_reads_the_clock():
    day = date(2026, 3, 3)
    for platform in community.PLATFORMS:
        a = community.posts_on(SEED, SCALE, platform, day)
        community._threads.cache_clear()
        community._thread_index.cache_clear()
        assert community.posts_on(SEED, SCALE, platform, day) == a and a
    assert community.posts_on(SEED + 1, SCALE, "slack", day) != community.posts_on(SEED, SCALE, "slack", day)
    assert community.members(SEED, SCALE) == community.members(SEED, SCALE)


def test_ids_are_platform_native_and_threads_resolve():
    members = community.members(SEED, SCALE)
    assert len({m.user_id("slack") for m in members}) == len(members)
    assert all(m.user_id("slack").startswith("U0") and 9 <= len(m.user_id("slack")) <= 11 for m in members)
    assert all(m.user_id("discourse").lstrip("-").isdigit() for m in members)
    assert all(m.user_id("discord").isdigit() for m in members)
    assert any(m.is_employee and m.email.endswith("@northwind-analytics.com") for m in members)
    assert 1 <= sum(m.is_bot for m in members) <= 2
    day = date(2026, 6, 2)
    for platform in community.PLATFORMS:
        posts = community.posts_on(SEED, SCALE, platform, day)
        assert all(p.created_at.date() == day and p.created_at.tzinfo for p in posts)
        assert len({p.post_id for p in posts}) == len(posts)
        roots = [p for p in posts if p.thread_root_id is None]
        thread = community.thread_posts(SEED, SCALE, platform, roots[0].post_id)
        assert thread[0] == roots[0] and all(r.thread_root_id == roots[0].post_id for r in thread[1:])
        assert any(p.thread_root_id and p.created_at.date() == day for p in posts)


def test_shared_page_is_linked_on_share_dates_only():
    share_dates = set(brand.PLANTED.share_dates(END))
    day = date(2026, 8, 1)
    while day <= date(2026, 10, 15):
        for platform in ("slack", "discourse"):
            hits = [
                p
                for p in community.posts_on(SEED, SCALE, platform, day)
                if brand.PLANTED.shared_page in p.text
            ]
            roots = [p for p in hits if p.thread_root_id is None]
            if day in share_dates:
                assert len(roots) >= brand.COMMUNITY_SHARED_PAGE_POSTS[platform]
            else:
                assert roots == []
        day += timedelta(days=1)


def _love_and_reach(platform: str, first: date, last: date):
    love, reach = collections.Counter(), collections.defaultdict(set)
    posts = []
    day = first
    while day <= last:
        posts += community.posts_on(SEED, SCALE, platform, day)
        day += timedelta(days=1)
    by_id = {p.post_id: p for p in posts}
    answered = {p.thread_root_id for p in posts if p.thread_root_id}
    for p in posts:
        if p.subtype:
            continue
        if p.thread_root_id:
            love[p.author_person_id] += 2
        elif p.post_id in answered or platform == "discourse":
            love[p.author_person_id] += 3
        else:
            love[p.author_person_id] += 1
        for who, _ in p.reactions:
            love[who] += 0.5
        parent = by_id.get(p.reply_to_post_id or "")
        if parent and parent.author_person_id != p.author_person_id:
            reach[p.author_person_id].add(parent.author_person_id)
            reach[parent.author_person_id].add(p.author_person_id)
    return love, reach


def test_advocates_lead_love_and_reach_over_90_days():
    members = {m.person_id: m for m in community.members(SEED, SCALE)}
    rows = []
    for platform in community.PLATFORMS:
        love, reach = _love_and_reach(platform, END - timedelta(days=89), END)
        for pid, value in love.items():
            if not members[pid].is_employee and not members[pid].is_bot:
                rows.append((value, platform, pid, len(reach[pid])))
    rows.sort(reverse=True)
    advocates = set(brand.COMMUNITY_ADVOCATE_PERSON_IDS)
    advocate_rows = [r for r in rows if r[2] in advocates]
    assert all(value >= 20 and n_reach >= 5 for value, _, _, n_reach in advocate_rows)
    top = rows[: max(1, len(rows) * 5 // 100)]  # the top 5% of non-employee member rows
    assert set(advocate_rows) <= set(top)
    assert {r[2] for r in rows[:5]} <= advocates
    for platform in community.PLATFORMS:  # on each platform the advocates there lead
        on = [r for r in rows if r[1] == platform]
        here = [r for r in advocate_rows if r[1] == platform]
        assert on[: len(here)] == here


def _weekly(interest_of, platform, monday):
    counts = collections.Counter()
    for i in range(7):
        for p in community.posts_on(SEED, SCALE, platform, monday + timedelta(days=i)):
            if p.subtype is None:
                counts[interest_of[p.space_id]] += 1
    return counts


@pytest.mark.parametrize("platform", ["slack"])
def test_ai_grows_60_percent_over_six_months_others_flat(platform):
    interest_of = {s.native_id: s.interest for s in community.spaces(platform)}
    late = date(2026, 11, 16) - timedelta(weeks=7)  # a Monday; 8 weeks ending mid-November
    early = late - timedelta(weeks=26)

    def total(start):
        c = collections.Counter()
        for w in range(8):
            c.update(_weekly(interest_of, platform, start + timedelta(weeks=w)))
        return c

    before, after = total(early), total(late)
    assert 1.35 < after["ai"] / before["ai"] < 1.9
    for interest in ("general", "attribution", "analytics_engineering"):
        assert 0.8 < after[interest] / before[interest] < 1.2


def test_thread_outcomes_and_weekday_seasonality():
    members = {m.person_id: m for m in community.members(SEED, SCALE)}
    outcomes = collections.Counter()
    weekday = collections.Counter()
    day = date(2026, 5, 4)
    for i in range(56):
        d = day + timedelta(days=i)
        for thread in community.threads_started_on(SEED, SCALE, "slack", d):
            root = thread[0]
            weekday[d.weekday()] += len(thread)
            if root.subtype or members[root.author_person_id].is_employee:
                continue
            others = [p for p in thread[1:] if p.author_person_id != root.author_person_id]
            if others and others[0].created_at - root.created_at <= timedelta(days=7):
                outcomes["answered"] += 1
            elif others:
                outcomes["late"] += 1
            elif len(thread) > 1:
                outcomes["self_only"] += 1
            else:
                outcomes["never"] += 1
    n = sum(outcomes.values())
    assert 0.5 < outcomes["answered"] / n < 0.72
    assert outcomes["self_only"] > 0 and outcomes["late"] > 0 and outcomes["never"] / n > 0.15
    assert weekday[5] + weekday[6] < 0.5 * (weekday[1] + weekday[2])


def test_volume_by_scale():
    day = date(2026, 6, 2)  # a Tuesday
    assert 20 <= len(community.posts_on(SEED, "small", "slack", day)) <= 80
    assert 90 <= len(community.posts_on(SEED, "demo", "slack", day)) <= 260
