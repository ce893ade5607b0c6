"""Discourse assets: the forum's activity by day, and its categories and users as snapshots.

- `["discourse", "posts"]`, `["discourse", "topics"]`, `["discourse", "post_likes"]`: daily (UTC)
  partitions, loaded together by one step (one pass over /latest for the topics and one over
  /posts.json for the posts feed all three) into raw_discourse.posts / topics / post_likes. A topic
  belongs to the day it was created, a post to the day it was created, a like to its post's day.
  Replies and likes keep arriving after their day, so the nightly run re-pulls the
  DISCOURSE_TRAILING_DAYS (7) days before yesterday.
- `["discourse", "categories"]`, `["discourse", "users"]`: unpartitioned; each run replaces the
  table whole in one transaction (raw_discourse.categories, raw_discourse.users; the users' e-mail
  lands in raw only, staging keeps its domain and the e-mail for the employee flag). A key that may
  not list users (403): the users are derived from the posts loaded, with a warning naming the fix
  and `users_source: posts` in the run's metadata (`admin_users_list` otherwise).
- Likers come per author (/user_actions.json: the likes each author received, paged once a run
  down to the liked posts of the range), per post where that cannot answer (connectors/discourse.py).
  A nightly run reads the likers raw_discourse.post_likes already holds for the re-pulled days and
  looks up only the posts whose like count differs from them (`liked_posts_kept` and
  `liked_posts_looked_up` in post_likes' metadata); backfills and first loads look up every liked post.
- A lookup of one item that answers 403/404 (a deleted post's likers, a topic made private) is
  skipped with a warning; `skipped_lookups` in each daily asset's metadata counts them.

Every day is fetched in full before it replaces the day's rows, so a failed load leaves the rows
already loaded for that day untouched. Days are fetched a chunk (31 days) at a time; the next
chunks are fetched while one is written (orchestration/fetching.py).
"""

from collections.abc import Iterator
from datetime import date, datetime, timezone

import dagster as dg
import pyarrow as pa

from connectors.discourse import USERS_SCHEMA, DayActivity, users_from_posts
from connectors.http import ApiError
from orchestration.discourse.resources import DiscourseResource, discourse_resource_from_env
from orchestration.fetching import api_pool, load_items
from orchestration.partitions import NIGHTLY_TAG, days_in
from orchestration.quality.checks import expectations_spec, gated
from orchestration.quality.gate import QualityGate, write_snapshot
from orchestration.registry import raw_table
from orchestration.sources import SourcePlan, plan_defs
from orchestration.warehouse import DuckDBWarehouse

# Late replies and likes: re-pull yesterday and the 7 days before it on nightly runs.
DISCOURSE_TRAILING_DAYS = 7
GROUP = "ingest_discourse"
DAILY_TABLES = {
    "posts": "raw_discourse.posts",
    "topics": "raw_discourse.topics",
    "post_likes": "raw_discourse.post_likes",
}


def _stamp(table: pa.Table, loaded_at: datetime, run_id: str, forum: str) -> pa.Table:
    # Every Discourse table carries the same stamp (orchestration/registry.py).
    return raw_table("raw_discourse.posts").stamped(table, forum, loaded_at, run_id)


def build_discourse_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    common = dict(group_name=GROUP, kinds={"python", "duckdb"})

    @dg.multi_asset(
        name="discourse_activity",
        specs=[
            dg.AssetSpec(
                ["discourse", "posts"],
                description=(
                    "Discourse posts by the UTC day they were created (cooked HTML, reply_to_post_number, "
                    "post_type: 1 regular, 2 moderator action, 3 small action), from /posts.json "
                    "(topics whose posts it does not all list are read through /t/{id}.json). Lands in "
                    "raw_discourse.posts."
                ),
                **common,
            ),
            dg.AssetSpec(
                ["discourse", "topics"],
                description=(
                    "Discourse topics by the UTC day they were created, with the counts of their last "
                    "re-pull (posts, replies, likes, views). Lands in raw_discourse.topics."
                ),
                **common,
            ),
            dg.AssetSpec(
                ["discourse", "post_likes"],
                description=(
                    "Who liked which post (per author from /user_actions.json's likes received, per post "
                    "from /post_action_users.json where a stream is refused or incomplete), by the liked "
                    "post's day. Lands in raw_discourse.post_likes."
                ),
                **common,
            ),
        ],
        check_specs=[expectations_spec(["discourse", name]) for name in DAILY_TABLES],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=api_pool("discourse"),
        can_subset=False,
    )
    def discourse_activity(
        context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, discourse: DiscourseResource
    ):
        yield from gated(context, lambda gate: _load_activity(context, warehouse, gate, discourse))

    def _load_activity(
        context: dg.AssetExecutionContext,
        warehouse: DuckDBWarehouse,
        gate: QualityGate,
        discourse: DiscourseResource,
    ):
        days = days_in(context, trailing_days=DISCOURSE_TRAILING_DAYS)
        loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
        run_id = context.run.run_id
        nightly = context.run.tags.get(NIGHTLY_TAG) == "true" and not discourse.nightly_all_likers
        with discourse.client() as client:
            forum = client.config.url
            # A nightly re-pull looks up the likers only of posts whose like count moved since the
            # last load (DISCOURSE_NIGHTLY_ALL_LIKERS=1: all); a backfill or a first load looks up
            # every liked post.
            known = _loaded_likes(warehouse, days, forum, discourse.uses_sandbox) if nightly else None
            plan, chunks = client.activity_plan(days, known_likes=known)

            def fetch_chunk(chunk: list[date]) -> list[DayActivity]:
                # Runs on a worker thread (orchestration/fetching.py) while the chunk before is written;
                # the plan pages /posts.json once for every chunk, newest first.
                return client.chunk_activity(chunk, plan)

            def split(
                chunk: list[date], activities: list[DayActivity]
            ) -> Iterator[tuple[list[date], dict[str, pa.Table]]]:
                for activity in activities:
                    yield (
                        [activity.day],
                        {
                            table_name: _stamp(getattr(activity, name), loaded_at, run_id, forum)
                            for name, table_name in DAILY_TABLES.items()
                        },
                    )

            # Newest chunk first: when DISCOURSE_MAX_LIKE_LOOKUPS runs out in a long backfill, the
            # days left without their likes are the oldest, not the ones the trailing marts read.
            written = load_items(
                context,
                warehouse,
                list(DAILY_TABLES.values()),
                chunks[::-1],
                fetch_chunk,
                split,
                source="discourse",
                gate=gate,
                total_days=len(days),
                label="discourse",
                units={
                    DAILY_TABLES["posts"]: "posts",
                    DAILY_TABLES["topics"]: "topics",
                    DAILY_TABLES["post_likes"]: "likes",
                },
            )
            totals = {name: written[table_name] for name, table_name in DAILY_TABLES.items()}
            requests, lookups, skipped = client.requests, client.like_lookups, client.like_lookups_skipped
            kept, changed = client.likes_kept, client.likes_changed
            if known is not None:
                context.log.info(
                    f"discourse: {kept:,} liked posts kept their likers (like count unchanged since the "
                    f"last load), {changed:,} looked up"
                )
            skipped_lookups, skipped_items = client.skipped_lookups, list(client.skipped_items)
            missing = sorted(client.days_missing_likes)
            if skipped_lookups:
                context.log.warning(
                    f"discourse: {skipped_lookups} lookup(s) of one item answered 403/404 and were skipped "
                    f"({', '.join(skipped_items[:5])}{', ...' if len(skipped_items) > 5 else ''}): a post "
                    "deleted or a topic made private since it was listed; the rest of the days loaded. "
                    "An admin API key reads every category."
                )
            if missing:
                context.log.warning(
                    f"discourse: the likers of {skipped:,} liked posts were not looked up, on {len(missing)} "
                    f"day(s) between {missing[0]} and {missing[-1]}: DISCOURSE_MAX_LIKE_LOOKUPS="
                    f"{client.config.max_like_lookups:,} was reached. Those days' likes are incomplete in "
                    "raw_discourse.post_likes; raise the setting and re-run their partitions to load them."
                )
        for name, table_name in DAILY_TABLES.items():
            metadata = {
                "days": len(days),
                "first_day": days[0].isoformat(),
                "last_day": days[-1].isoformat(),
                "rows": totals[name],
                "table": table_name,
                "forum": forum,
            }
            if name == "post_likes":
                metadata.update({"like_lookups": lookups, "like_lookups_skipped": skipped})
                if known is not None:
                    metadata.update({"liked_posts_kept": kept, "liked_posts_looked_up": changed})
                if missing:
                    metadata["days_missing_likes"] = f"{len(missing)}: {missing[0]}..{missing[-1]}"
            if name == "posts":
                metadata["requests"] = requests
            metadata["skipped_lookups"] = skipped_lookups
            yield dg.MaterializeResult(asset_key=["discourse", name], metadata=metadata)

    @dg.asset(
        key=["discourse", "categories"],
        check_specs=[expectations_spec(["discourse", "categories"])],
        description="Discourse categories and subcategories (/categories.json). Replaced whole each run.",
        pool=api_pool("discourse"),
        **common,
    )
    def categories(
        context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, discourse: DiscourseResource
    ):
        yield from gated(context, lambda gate: _load_categories(context, warehouse, gate, discourse))

    def _load_categories(
        context: dg.AssetExecutionContext,
        warehouse: DuckDBWarehouse,
        gate: QualityGate,
        discourse: DiscourseResource,
    ) -> dg.MaterializeResult:
        loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
        with discourse.client() as client:
            rows = _stamp(client.categories(), loaded_at, context.run.run_id, client.config.url)
        with warehouse.connect() as conn:
            n = write_snapshot(conn, gate, "raw_discourse.categories", rows)
        return dg.MaterializeResult(metadata={"rows": n, "table": "raw_discourse.categories"})

    @dg.asset(
        key=["discourse", "users"],
        check_specs=[expectations_spec(["discourse", "users"])],
        description=(
            "Discourse users (/admin/users/list/active.json with e-mails: needs an admin API key). "
            "Replaced whole each run; the e-mail stays in raw and staging."
        ),
        pool=api_pool("discourse"),
        **common,
    )
    def users(context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, discourse: DiscourseResource):
        yield from gated(context, lambda gate: _load_users(context, warehouse, gate, discourse))

    def _load_users(
        context: dg.AssetExecutionContext,
        warehouse: DuckDBWarehouse,
        gate: QualityGate,
        discourse: DiscourseResource,
    ) -> dg.MaterializeResult:
        loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
        source = "admin_users_list"
        with discourse.client() as client:
            forum = client.config.url
            try:
                table = pa.Table.from_batches(list(client.users()), schema=USERS_SCHEMA)
            except ApiError as exc:
                if exc.status != 403:
                    raise
                # A key without admin rights: the forum's members are the authors of its posts.
                source = "posts"
                table = users_from_posts(_loaded_posts(warehouse))
                context.log.warning(
                    "discourse: DISCOURSE_API_KEY may not list users (403 on /admin/users/list/active.json): "
                    f"{table.num_rows:,} users are derived from the posts already loaded (ids and usernames "
                    "only: no e-mails, names, admin/moderator flags or trust levels, so staff are found "
                    "only through staff.ids.discourse in the brand file). Fix: use an admin API key "
                    "(Admin > API > New API Key, for all users or an admin user) and re-run discourse/users."
                )
            rows = _stamp(table, loaded_at, context.run.run_id, forum)
        with warehouse.connect() as conn:
            n = write_snapshot(conn, gate, "raw_discourse.users", rows)
        context.log.info(f"discourse: {n:,} users loaded (from {source})")
        return dg.MaterializeResult(
            metadata={"rows": n, "table": "raw_discourse.users", "users_source": source}
        )

    return [discourse_activity, categories, users]


def _loaded_likes(
    warehouse: DuckDBWarehouse, days: list[date], forum: str, sandbox: bool
) -> dict[int, list[dict]]:
    """The likers raw_discourse.post_likes holds for the posts of `days` from this forum, by post id
    ({} before the first load). The sandbox's forum is one whatever port it was served on."""
    if not days:
        return {}
    with warehouse.connect() as conn:
        if not _has_table(conn, "post_likes"):
            return {}
        # the sandbox's rows as the registry tells them apart (any loopback port)
        rule = raw_table(DAILY_TABLES["post_likes"]).sandbox
        same_forum, value = (rule.predicate, rule.value) if sandbox else ("_forum_url = ?", forum)
        rows = conn.execute(
            "select post_id, user_id, created_at from raw_discourse.post_likes "
            f"where date between ? and ? and {same_forum}",
            [days[0], days[-1], value],
        ).fetchall()
    known: dict[int, list[dict]] = {}
    for post_id, user_id, created_at in rows:
        if created_at is not None and created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=timezone.utc)
        known.setdefault(int(post_id), []).append({"id": int(user_id), "created_at": created_at})
    return known


def _loaded_posts(warehouse: DuckDBWarehouse) -> pa.Table:
    """user_id, username, created_at of each author's first and last post in raw_discourse.posts, the
    first posts before the last ones (none before the first load): all `users_from_posts` needs.

    Two rows per author, not every post: a year of a large forum's posts read into Python every
    night cost memory and time that grew with the history."""
    with warehouse.connect() as conn:
        if not _has_table(conn, "posts"):
            return pa.table({"user_id": [], "username": [], "created_at": []})
        return conn.execute(
            """
            with dated_posts as (
                select user_id, username, created_at from raw_discourse.posts
                where user_id is not null and created_at is not null
            ),
            first_and_last as (
                select 0 as position, user_id, arg_min(username, created_at) as username,
                    min(created_at) as created_at
                from dated_posts group by user_id
                union all
                select 1, user_id, arg_max(username, created_at), max(created_at)
                from dated_posts group by user_id
            )
            select user_id, username, created_at from first_and_last order by position, user_id
            """
        ).to_arrow_table()


def _has_table(conn, name: str) -> bool:
    """Whether raw_discourse.<name> exists yet (it does not before the first load)."""
    return bool(
        conn.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'raw_discourse' and table_name = ?",
            [name],
        ).fetchone()[0]
    )


def build_defs(partitions_def: dg.PartitionsDefinition, plan: SourcePlan) -> dg.Definitions:
    """Discourse's assets and resource as its plan says (orchestration/sources.py, `plan_defs`)."""
    return plan_defs(plan, build_discourse_assets(partitions_def), discourse_resource_from_env)
