"""The Discourse assets land the forum in raw_discourse.* through the sandbox's real HTTP API."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import duckdb
import pytest

from connectors.sandbox import community, ensure_sandbox
from connectors.sandbox.discourse_api import SANDBOX_DISCOURSE_API_KEY
from orchestration import fetching
from orchestration.discourse.assets import build_discourse_assets
from orchestration.discourse.resources import DiscourseResource
from orchestration.partitions import daily_partitions
from orchestration.warehouse import DuckDBWarehouse

DAY = date.today() - timedelta(days=2)


@pytest.fixture
def setup(tmp_path, settings_for):
    settings = settings_for(tmp_path, days=10)
    activity, categories, users = build_discourse_assets(daily_partitions(settings))
    resources = {
        "warehouse": DuckDBWarehouse(path=str(settings.warehouse_path)),
        "discourse": DiscourseResource(),
    }
    return settings, activity, categories, users, resources


def _rows(path, sql):
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def _expected_posts(day: date) -> list[str]:
    sandbox = ensure_sandbox()
    return sorted(p.post_id for p in community.posts_on(sandbox.seed, sandbox.scale, "discourse", day))


def test_a_partition_lands_the_days_posts_topics_and_likes(setup):
    settings, activity, _, _, resources = setup
    result = dg.materialize([activity], partition_key=DAY.isoformat(), resources=resources)
    assert result.success
    posts = _rows(settings.warehouse_path, "select post_id::varchar from raw_discourse.posts order by 1")
    assert sorted(p for (p,) in posts) == _expected_posts(DAY) and posts
    (days, run_ids, forum) = _rows(
        settings.warehouse_path,
        "select count(distinct date), count(distinct _run_id), any_value(_forum_url) "
        "from raw_discourse.posts",
    )[0]
    assert days == 1 and run_ids == 1 and forum.endswith("/discourse")
    topics = _rows(
        settings.warehouse_path, "select count(*), count(distinct date) from raw_discourse.topics"
    )[0]
    assert topics[0] > 0 and topics[1] == 1
    sandbox = ensure_sandbox()
    expected_likes = sum(
        len(p.reactions) for p in community.posts_on(sandbox.seed, sandbox.scale, "discourse", DAY)
    )
    likes = _rows(settings.warehouse_path, "select count(*) from raw_discourse.post_likes")[0][0]
    assert likes == expected_likes
    metadata = result.asset_materializations_for_node("discourse_activity")
    assert {m.asset_key.path[-1] for m in metadata} == {"posts", "topics", "post_likes"}


def test_rerunning_a_partition_replaces_the_day_without_duplicates(setup):
    settings, activity, _, _, resources = setup
    dg.materialize([activity], partition_key=DAY.isoformat(), resources=resources)
    before = _rows(
        settings.warehouse_path,
        "select * exclude (_loaded_at, _run_id) from raw_discourse.posts order by all",
    )
    dg.materialize([activity], partition_key=DAY.isoformat(), resources=resources)
    after = _rows(
        settings.warehouse_path,
        "select * exclude (_loaded_at, _run_id) from raw_discourse.posts order by all",
    )
    assert before == after and after
    dupes = _rows(
        settings.warehouse_path,
        "select count(*) from (select post_id from raw_discourse.posts group by 1 having count(*) > 1)",
    )[0][0]
    assert dupes == 0


def test_a_failed_load_keeps_the_day_already_loaded(setup):
    settings, activity, _, _, resources = setup
    assert dg.materialize([activity], partition_key=DAY.isoformat(), resources=resources).success
    good = _rows(settings.warehouse_path, "select count(*), sum(post_id) from raw_discourse.posts")[0]
    sandbox = ensure_sandbox()
    # The posts list is refused for good (a key revoked mid-run): nothing of the half-fetched day may
    # replace it. (A 403 on one item, a topic or a post's likers, is skipped instead: see below.)
    sandbox.inject_fault("/discourse/posts.json", 403, times=1)
    try:
        result = dg.materialize(
            [activity], partition_key=DAY.isoformat(), resources=resources, raise_on_error=False
        )
    finally:
        sandbox.clear_faults()
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    assert "discourse" in message and "403" in message and "invalid_access" in message
    assert SANDBOX_DISCOURSE_API_KEY not in message
    assert not any(SANDBOX_DISCOURSE_API_KEY in str(e) for e in result.all_events)
    after = _rows(settings.warehouse_path, "select count(*), sum(post_id) from raw_discourse.posts")[0]
    assert after == good


def test_categories_and_users_replace_their_tables(setup):
    settings, _, categories, users, resources = setup
    for _ in range(2):
        assert dg.materialize([categories, users], resources=resources).success
    (n_categories,) = _rows(settings.warehouse_path, "select count(*) from raw_discourse.categories")[0]
    assert n_categories == len(community.spaces("discourse"))
    n_users, distinct, employees = _rows(
        settings.warehouse_path,
        "select count(*), count(distinct user_id), "
        "count(*) filter (email_domain = 'northwind-analytics.com') from raw_discourse.users",
    )[0]
    assert n_users == distinct > 100 and employees > 0


def test_the_resource_uses_the_sandbox_only_when_unset():
    assert DiscourseResource().uses_sandbox
    assert not DiscourseResource(url="https://forum.example.com", api_key="k").uses_sandbox


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_backfill_short_of_like_lookups_names_the_days_it_left_incomplete(
    tmp_path, settings_for, monkeypatch, concurrency
):
    monkeypatch.setattr(fetching, "FETCH_CONCURRENCY", concurrency)
    settings = settings_for(tmp_path, days=40)
    activity, _, _ = build_discourse_assets(daily_partitions(settings))
    days = [settings.history_start + timedelta(days=i) for i in range(40)]  # chunks: 31 days, then 9
    oldest, newest = days[:31], days[31:]
    sandbox = ensure_sandbox()

    def liked(day: date) -> list[community.Post]:
        return [p for p in community.posts_on(sandbox.seed, sandbox.scale, "discourse", day) if p.reactions]

    expected = {d: sum(len(p.reactions) for p in liked(d)) for d in days}
    # the budget: the like lookups the newest chunk (loaded first) takes by itself
    with DiscourseResource().client() as alone:
        list(alone.activity(newest))
        budget = alone.like_lookups
    assert budget > 0 and any(expected[d] for d in oldest)
    resources = {
        "warehouse": DuckDBWarehouse(path=str(settings.warehouse_path)),
        "discourse": DiscourseResource(max_like_lookups=budget),
    }
    tags = {
        "dagster/asset_partition_range_start": days[0].isoformat(),
        "dagster/asset_partition_range_end": days[-1].isoformat(),
    }
    result = dg.materialize([activity], tags=tags, resources=resources)
    assert result.success
    rows = _rows(settings.warehouse_path, "select date, count(*) from raw_discourse.post_likes group by 1")
    likes = {d: dict(rows).get(d, 0) for d in days}
    posts = _rows(settings.warehouse_path, "select count(*) from raw_discourse.posts")[0][0]
    assert posts == sum(len(_expected_posts(d)) for d in days)  # posts are complete either way
    recorded = [  # one per partition of the range, all with the run's figures
        {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node("discourse_activity")
        if m.asset_key.path[-1] == "post_likes"
    ]
    assert len(recorded) == len(days) and all(r == recorded[0] for r in recorded)
    metadata = recorded[0]
    assert metadata["like_lookups"] == budget
    # a liked post gets all its likers or none: the skipped ones are the liked posts without a like
    with_likes = {
        i for (i,) in _rows(settings.warehouse_path, "select distinct post_id from raw_discourse.post_likes")
    }
    without = [p for d in days for p in liked(d) if int(p.post_id) not in with_likes]
    assert metadata["like_lookups_skipped"] == len(without) > 0
    incomplete = [d for d in days if likes[d] < expected[d]]
    assert incomplete and all(likes[d] == expected[d] for d in days if d not in incomplete)
    assert incomplete == sorted({p.created_at.date() for p in without})
    assert metadata["days_missing_likes"] == f"{len(incomplete)}: {incomplete[0]}..{incomplete[-1]}"
    if concurrency == 1:  # one chunk at a time, newest first: the budget covers the newest chunk
        assert all(likes[d] == expected[d] for d in newest)
        # the older chunk keeps only the likes the streams already read held (no lookup left)
        assert set(incomplete) <= set(oldest)
