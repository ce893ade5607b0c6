"""Truth test: mart_campaign_halo recovers the halo the sandbox planted around the Meta flight.

The sandbox plants (connectors/sandbox/brand.py, effects d. and h.) branded search clicks +35%
(GSC_BRANDED_LIFT) and deep-link direct sessions +15% during "Spring brand awareness"
(2026-03-02 .. 2026-03-29) and the 7 days after. The 35-day end-to-end fixture does not reach
back to March 2026; the spring refresh does (tests/orchestration/spring_refresh.py, shared with the
report's browser test): every source at the small scale over 2026-02-02 .. 2026-04-05, the flight's
28-day baseline, the flight and its 7 days after, loaded through the real assets and built by the
job's own `dbt build`, checks included. The marts' unit tests run in tests/dbt/test_unit_tests.py.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from connectors.sandbox import PLANTED
from connectors.sandbox.brand import GSC_BRANDED_LIFT
from tests.orchestration.spring_refresh import SPRING_FIRST_DAY, SPRING_LAST_DAY

FIRST_DAY = SPRING_FIRST_DAY  # the 28 days before the flight
LAST_DAY = SPRING_LAST_DAY  # the 7 days after the flight
HALO_MARTS = ("mart_campaign_halo", "mart_branded_search_daily")


@pytest.fixture(scope="module")
def warehouse(spring_refresh) -> Path:
    """The spring refresh's warehouse, after a run whose every dbt check of the two marts passed."""
    settings, result, _ = spring_refresh
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    checks = [
        (e.asset_key.path[-1], e.check_name, e.passed)
        for e in result.get_asset_check_evaluations()
        if e.asset_key.path[-1] in HALO_MARTS
    ]
    assert {mart for mart, _, _ in checks} == set(HALO_MARTS)
    assert [c for c in checks if not c[2]] == [], "every dbt check of the two marts passed"
    return settings.warehouse_path


def _query(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as conn:
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
