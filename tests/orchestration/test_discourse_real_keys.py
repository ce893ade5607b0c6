"""What a real forum does to a Discourse load (issue 16, point 4), on the sandbox forum: a key that
may not list users, and one lookup of one item that fails while the rest of the day loads."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import dagster as dg
import duckdb
import pyarrow as pa
import pytest

from connectors.sandbox import community, ensure_sandbox
from connectors.sandbox.discourse_api import SANDBOX_DISCOURSE_USER_KEY, topics_between
from orchestration.discourse.assets import build_discourse_assets
from orchestration.discourse.resources import DiscourseResource
from orchestration.partitions import daily_partitions
from orchestration.registry import tables_of
from orchestration.warehouse import DuckDBWarehouse

DAY = date.today() - timedelta(days=2)


def _rows(path, sql):
    with duckdb.connect(str(path)) as conn:
        return conn.execute(sql).fetchall()


def _metadata(result, node: str, asset: str) -> dict:
    (found,) = [m for m in result.asset_materializations_for_node(node) if m.asset_key.path[-1] == asset]
    return {k: v.value for k, v in found.metadata.items()}


def _warnings(instance: dg.DagsterInstance, result) -> str:
    """The warnings the run logged (context.log.warning)."""
    entries = instance.all_logs(result.run_id)
    return "\n".join(e.user_message for e in entries if e.level == logging.WARNING)


@pytest.fixture
def loaded(tmp_path, settings_for):
    settings = settings_for(tmp_path, days=10)
    activity, categories, users = build_discourse_assets(daily_partitions(settings))
    warehouse = DuckDBWarehouse(path=str(settings.warehouse_path))
    return settings, activity, categories, users, warehouse


def test_a_key_that_cannot_list_users_derives_them_from_posts_and_the_marts_build(
    loaded, dbt_invoke, tmp_path
):
    settings, activity, categories, users, warehouse = loaded
    sandbox = ensure_sandbox()
    # a user-level key: it reads the forum, and /admin/users/list answers it 403 invalid_access
    resources = {
        "warehouse": warehouse,
        "discourse": DiscourseResource(
            url=f"{sandbox.base_url}/discourse", api_key=SANDBOX_DISCOURSE_USER_KEY
        ),
    }
    days = [DAY - timedelta(days=n) for n in range(2, -1, -1)]
    tags = {"dagster/asset_partition_range_start": days[0].isoformat(),
            "dagster/asset_partition_range_end": days[-1].isoformat()}  # fmt: skip
    assert dg.materialize([activity], tags=tags, resources=resources).success
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([categories, users], resources=resources, instance=instance)
        assert result.success
        warnings = _warnings(instance, result)
    (record,) = [m for m in result.get_asset_materialization_events() if m.asset_key.path[-1] == "users"]
    meta = {k: v.value for k, v in record.step_materialization_data.materialization.metadata.items()}
    posts = [p for d in days for p in community.posts_on(sandbox.seed, sandbox.scale, "discourse", d)]
    authors = {community.member(sandbox.seed, sandbox.scale, p.author_person_id) for p in posts}
    assert meta["users_source"] == "posts" and meta["rows"] == len(authors)
    assert "403" in warnings and "admin API key" in warnings and "DISCOURSE_API_KEY" in warnings
    got = _rows(settings.warehouse_path,
                "select user_id, username, email, admin from raw_discourse.users order by 1")  # fmt: skip
    assert got == sorted((int(m.user_id("discourse")), m.handle, None, None) for m in authors)
    # the marts still build: the other community sources empty, as for a forum-only brand
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        for source in ("slack", "discord"):
            for table in tables_of(source):
                conn.execute(f"create schema if not exists raw_{source}")
                empty = pa.Table.from_pylist([], schema=table.schema)
                conn.register("empty", empty)
                conn.execute(f"create table if not exists {table.name} as select * from empty")
                conn.unregister("empty")
    select = ["--select", "+mart_member_engagement", "+mart_community_health_weekly"]
    no_tests = ["--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
    dbt_invoke(
        ["build", *select, *no_tests], tmp_path, settings.warehouse_path, MEMBER_HASH_KEY="k-real-keys"
    )
    members, activities = _rows(
        settings.warehouse_path,
        "select count(*), sum(activities) from marts.mart_member_engagement where platform = 'discourse'",
    )[0]
    # every author and every liker is a member (likers have no row in the derived users)
    (people,) = _rows(
        settings.warehouse_path,
        "select count(distinct user_id) from (select user_id from raw_discourse.posts "
        "union all select user_id from raw_discourse.post_likes)",
    )[0]
    assert members == people > len(authors) and activities >= len(posts)


def test_a_deleted_posts_likers_404_is_skipped_and_counted_and_the_day_loads(loaded):
    settings, activity, _, _, warehouse = loaded
    sandbox = ensure_sandbox()
    liked = [p for p in community.posts_on(sandbox.seed, sandbox.scale, "discourse", DAY) if p.reactions]
    gone = liked[0]
    author = community.member(sandbox.seed, sandbox.scale, gone.author_person_id)
    # the author's likes received are refused (a renamed or deleted author): their liked posts are
    # looked up one by one, and the deleted one answers 404
    sandbox.inject_fault(f"/discourse/user_actions.json?username={author.handle}&", 404, times=None)
    sandbox.inject_fault(f"/discourse/post_action_users.json?id={gone.post_id}&", 404, times=None)
    try:
        resources = {"warehouse": warehouse, "discourse": DiscourseResource()}
        result = dg.materialize([activity], partition_key=DAY.isoformat(), resources=resources)
    finally:
        sandbox.clear_faults()
    assert result.success
    for asset in ("posts", "topics", "post_likes"):
        assert _metadata(result, "discourse_activity", asset)["skipped_lookups"] == 1
    likes = dict(
        _rows(settings.warehouse_path, "select post_id, count(*) from raw_discourse.post_likes group by 1")
    )
    assert int(gone.post_id) not in likes and likes
    assert sum(likes.values()) == sum(len(p.reactions) for p in liked[1:])
    assert len(sandbox.requests_to(f"/discourse/post_action_users.json?id={gone.post_id}&")) >= 1
    posts = _rows(settings.warehouse_path, "select count(*) from raw_discourse.posts")[0][0]
    assert posts == len(community.posts_on(sandbox.seed, sandbox.scale, "discourse", DAY))


def test_a_topic_that_turned_private_is_skipped_and_counted_and_the_day_loads(loaded):
    settings, activity, _, _, warehouse = loaded
    sandbox = ensure_sandbox()
    topic = next(t for t in topics_between(sandbox.seed, sandbox.scale, sandbox.today(), DAY, DAY)
                 if t.created_at.date() == DAY)  # fmt: skip

    def a_post_not_listed(payload):  # /latest counts a post /posts.json does not list (a whisper)
        for summary in payload["topic_list"]["topics"]:
            if summary["id"] == topic.topic_id:
                summary["highest_post_number"] += 1
        return payload

    sandbox.inject_fault(
        "/discourse/latest.json", 200, times=None, kind="transform", transform=a_post_not_listed
    )
    sandbox.inject_fault(f"/discourse/t/{topic.topic_id}.json", 403, times=None)
    try:
        resources = {"warehouse": warehouse, "discourse": DiscourseResource()}
        result = dg.materialize([activity], partition_key=DAY.isoformat(), resources=resources)
    finally:
        sandbox.clear_faults()
    assert result.success
    assert _metadata(result, "discourse_activity", "posts")["skipped_lookups"] == 1
    assert len(sandbox.requests_to(f"/discourse/t/{topic.topic_id}.json")) >= 1  # it was asked, once a run
    posts = _rows(settings.warehouse_path, "select count(*) from raw_discourse.posts")[0][0]
    assert posts == len(community.posts_on(sandbox.seed, sandbox.scale, "discourse", DAY))
    topics = [t for (t,) in _rows(settings.warehouse_path, "select topic_id from raw_discourse.topics")]
    assert topic.topic_id in topics  # its row comes from /latest


def test_users_derived_from_posts_read_each_authors_first_and_last_post_only(tmp_path):
    from datetime import datetime

    from connectors.discourse import users_from_posts
    from orchestration.discourse.assets import _loaded_posts

    path = tmp_path / "warehouse.duckdb"
    posts = [  # author 7 renamed between posts; author 9 has one post; an author-less post
        (7, "old_name", datetime(2025, 1, 3, 9)),
        (7, "mid_name", datetime(2025, 6, 1, 12)),
        (7, "new_name", datetime(2026, 2, 1, 8)),
        (9, "only", datetime(2025, 3, 4, 5)),
        (None, "system", datetime(2025, 3, 4, 6)),
    ]
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema raw_discourse")
        conn.execute(
            "create table raw_discourse.posts (user_id bigint, username varchar, created_at timestamp)"
        )
        conn.executemany("insert into raw_discourse.posts values (?, ?, ?)", posts)
    read = _loaded_posts(DuckDBWarehouse(path=str(path)))
    assert read.num_rows == 4  # two rows per author, not one per post
    every_post = pa.table(
        {k: [p[i] for p in posts] for i, k in enumerate(["user_id", "username", "created_at"])}
    )
    users = users_from_posts(read).to_pylist()
    assert users == users_from_posts(every_post).to_pylist()
    assert [(u["user_id"], u["username"], u["created_at"].year, u["last_seen_at"].year) for u in users] == [
        (7, "new_name", 2025, 2026),
        (9, "only", 2025, 2025),
    ]
