"""Discourse assets: the forum's activity by day, and its categories and users as snapshots.

- `["discourse", "posts"]`, `["discourse", "topics"]`, `["discourse", "post_likes"]`: daily (UTC)
  partitions, loaded together by one step (one pass over /latest and each active topic feeds all
  three) into raw_discourse.posts / topics / post_likes. A topic belongs to the day it was created,
  a post to the day it was created, a like to its post's day. Replies and likes keep arriving after
  their day, so the nightly run re-pulls the DISCOURSE_TRAILING_DAYS (7) days before yesterday.
- `["discourse", "categories"]`, `["discourse", "users"]`: unpartitioned; each run replaces the
  table whole in one transaction (raw_discourse.categories, raw_discourse.users; the users' e-mail
  lands in raw only, staging keeps its domain and the e-mail for the employee flag).

Every day is fetched in full before it replaces the day's rows, so a failed load leaves the rows
already loaded for that day untouched. Days are fetched a chunk (31 days) at a time; the next
chunks are fetched while one is written (orchestration/fetching.py).
"""

from collections.abc import Iterator
from datetime import date, datetime, timezone

import dagster as dg
import pyarrow as pa

from connectors.discourse import USERS_SCHEMA, DayActivity
from orchestration.discourse.resources import DiscourseResource, discourse_resource_from_env
from orchestration.fetching import load_items
from orchestration.partitions import days_in
from orchestration.quality.checks import expectations_spec, gated
from orchestration.quality.gate import QualityGate, write_snapshot
from orchestration.registry import raw_table
from orchestration.sources import SourcePlan, plan_defs
from orchestration.warehouse import WAREHOUSE_POOL, DuckDBWarehouse

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
                    "post_type: 1 regular, 2 moderator action, 3 small action), from /t/{id}.json and "
                    "/t/{id}/posts.json of every topic with activity. Lands in raw_discourse.posts."
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
                    "Who liked which post (/post_action_users.json, likes only), by the liked post's day. "
                    "Lands in raw_discourse.post_likes."
                ),
                **common,
            ),
        ],
        check_specs=[expectations_spec(["discourse", name]) for name in DAILY_TABLES],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
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
        with discourse.client() as client:
            forum = client.config.url
            candidates, chunks = client.activity_plan(days)

            def fetch_chunk(chunk: list[date]) -> list[DayActivity]:
                # Runs on a worker thread (orchestration/fetching.py) while the chunk before is written.
                return client.chunk_activity(chunk, candidates)

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
            missing = sorted(client.days_missing_likes)
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
                if missing:
                    metadata["days_missing_likes"] = f"{len(missing)}: {missing[0]}..{missing[-1]}"
            if name == "posts":
                metadata["requests"] = requests
            yield dg.MaterializeResult(asset_key=["discourse", name], metadata=metadata)

    @dg.asset(
        key=["discourse", "categories"],
        check_specs=[expectations_spec(["discourse", "categories"])],
        description="Discourse categories and subcategories (/categories.json). Replaced whole each run.",
        pool=WAREHOUSE_POOL,
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
        pool=WAREHOUSE_POOL,
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
        with discourse.client() as client:
            table = pa.Table.from_batches(list(client.users()), schema=USERS_SCHEMA)
            rows = _stamp(table, loaded_at, context.run.run_id, client.config.url)
        with warehouse.connect() as conn:
            n = write_snapshot(conn, gate, "raw_discourse.users", rows)
        context.log.info(f"discourse: {n:,} users loaded")
        return dg.MaterializeResult(metadata={"rows": n, "table": "raw_discourse.users"})

    return [discourse_activity, categories, users]


def build_defs(partitions_def: dg.PartitionsDefinition, plan: SourcePlan) -> dg.Definitions:
    """Discourse's assets and resource as its plan says (orchestration/sources.py, `plan_defs`)."""
    return plan_defs(plan, build_discourse_assets(partitions_def), discourse_resource_from_env)
