"""Truth test: mart_campaign_halo recovers the halo the sandbox planted around the Meta flight.

The sandbox plants (connectors/sandbox/brand.py, effects d. and h.) branded search clicks +35%
(GSC_BRANDED_LIFT) and deep-link direct sessions +15% during "Spring brand awareness"
(2026-03-02 .. 2026-03-29) and the 7 days after. The 35-day end-to-end fixture does not reach
back to March 2026, so this module loads only what the halo needs (GA4 sessions, Search Console,
Meta insights) for 2026-01-25 .. 2026-04-10 at the small scale into its own warehouse through the
real assets, then runs `dbt build` on the two marts and everything upstream of them.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from connectors.sandbox import PLANTED
from connectors.sandbox.brand import GSC_BRANDED_LIFT
from orchestration.definitions import source_resources
from orchestration.ga4.assets import build_ga4_assets
from orchestration.gsc.assets import build_gsc_assets
from orchestration.jobs import range_tags
from orchestration.meta.assets import build_meta_assets
from orchestration.partitions import daily_partitions
from orchestration.settings import Settings
from orchestration.warehouse import DuckDBWarehouse

FIRST_DAY = date(2026, 1, 25)  # 28 days before the flight, plus a margin
LAST_DAY = date(2026, 4, 10)  # the 7 days after the flight, plus a margin
SELECTION = "+mart_campaign_halo +mart_branded_search_daily"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory, dbt_invoke) -> Path:
    tmp = tmp_path_factory.mktemp("halo")
    settings = Settings(
        warehouse_path=tmp / "warehouse.duckdb",
        serving_path=tmp / "serving" / "marts.duckdb",
        history_start=FIRST_DAY,
        nightly_timezone="UTC",
        nightly_cron="0 2 * * *",
        nightly_schedule_running=False,
    )
    partitions = daily_partitions(settings)
    _, sessions, _ = build_ga4_assets(partitions)
    queries, totals = build_gsc_assets(partitions)
    insights, _ = build_meta_assets(partitions)
    resources = {
        "warehouse": DuckDBWarehouse(path=str(settings.warehouse_path)),
        **{name: r for name, r in source_resources().items() if name in ("ga4", "gsc", "meta")},
    }
    job = dg.Definitions(
        assets=[sessions, queries, totals, insights],
        jobs=[dg.define_asset_job("load_halo_sources")],
        resources=resources,
    ).resolve_job_def("load_halo_sources")
    loaded = job.execute_in_process(tags=range_tags(FIRST_DAY.isoformat(), LAST_DAY.isoformat()))
    assert loaded.success

    result = dbt_invoke(
        [
            "build",
            "--select",
            SELECTION,
            # Only GA4 sessions, Search Console and Meta are loaded: skip tests that also read
            # models outside the selection (leads, the dark social marts).
            "--indirect-selection",
            "cautious",
            # The unit tests of GA4 staging and classification run in tests/dbt; keep this module fast.
            "--exclude",
            "test_type:unit,+int_sessions_classified",
        ],
        tmp,
        settings.warehouse_path,
    )
    ran = {r.node.unique_id for r in result.result}
    assert any(node.startswith("unit_test.") for node in ran), "the unit tests should run too"
    return settings.warehouse_path


# Not read_only: dbt-duckdb keeps the file open in this process after the build, and DuckDB refuses a
# second connection to the same file with a different configuration.
def _query(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path)) as conn:
        return conn.execute(sql).fetchall()


def test_spring_campaign_recovers_the_planted_branded_search_and_dark_direct_lift(warehouse):
    rows = _query(
        warehouse,
        f"""
        select flight_start, flight_end, spend, branded_search_lift, dark_direct_lift,
            cost_per_incremental_branded_click, has_full_baseline, has_complete_halo_window
        from marts.mart_campaign_halo
        where campaign_name = '{PLANTED.meta_campaign_name}'
        """,
    )
    assert len(rows) == 1
    start, end, spend, search_lift, dark_lift, cost, full_baseline, complete = rows[0]
    assert (start, end) == (PLANTED.meta_flight_start, PLANTED.meta_flight_end)
    assert spend > 0 and full_baseline and complete
    assert search_lift == pytest.approx(GSC_BRANDED_LIFT, abs=0.10)
    assert dark_lift > 0
    assert cost is not None and cost > 0


def test_campaigns_without_history_before_their_flight_have_no_lift(warehouse):
    # "Always-on retargeting" spends on the first loaded day: no 28 days before it are loaded.
    rows = _query(
        warehouse,
        "select branded_search_lift, dark_direct_lift, has_full_baseline from marts.mart_campaign_halo "
        "where campaign_name = 'Always-on retargeting'",
    )
    assert rows == [(None, None, False)]


def test_branded_search_daily_has_anonymized_clicks_and_a_plausible_branded_share(warehouse):
    rows = _query(
        warehouse,
        "select date, branded_click_share, anonymized_clicks, branded_clicks_baseline_28d "
        "from marts.mart_branded_search_daily order by date",
    )
    days = [r[0] for r in rows]
    assert days[0] == FIRST_DAY and days == sorted(set(days))
    assert len(days) == (LAST_DAY - FIRST_DAY).days + 1
    # 15-25% of each day's clicks are anonymized (planted); branded queries take ~30% of all
    # clicks, so ~35-45% of the visible ones, more during the halo. The small brand has ~50-100
    # visible clicks a day, so a single day's share is noisy: a wide band per day, a tight one overall.
    assert all(anonymized > 0 for _, _, anonymized, _ in rows)
    assert all(0.10 <= share <= 0.75 for _, share, _, _ in rows)
    ((overall,),) = _query(
        warehouse,
        "select sum(branded_clicks) / sum(branded_clicks + nonbranded_clicks) "
        "from marts.mart_branded_search_daily",
    )
    assert 0.33 <= overall <= 0.48
    assert all(baseline is None for day, _, _, baseline in rows if (day - FIRST_DAY).days < 28)
    assert all(baseline > 0 for day, _, _, baseline in rows if (day - FIRST_DAY).days >= 28)
