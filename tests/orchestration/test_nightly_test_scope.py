"""Which runs scope the dbt data tests to the rows they wrote (orchestration/dbt/assets.py
tests_since): real Dagster runs of a probe asset that asks, with the tags the nightly schedule,
a backfill and the weekly full-test night give a run."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg

# imported as a module: pytest would collect a function named test* as a test
from orchestration.dbt import assets as dbt_assets
from orchestration.jobs import range_tags
from orchestration.partitions import NIGHTLY_TAG


@dg.asset
def scope_probe(context) -> str:
    return dbt_assets.tests_since(context) or "every row"


def _scope(tags: dict[str, str]) -> str:
    result = dg.materialize([scope_probe], tags=tags)
    assert result.success
    return result.output_for_node("scope_probe")


def test_a_nightly_run_tests_the_rows_written_since_it_started():
    before = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
    # 2026-12-05 is a Saturday: not the full-test night
    since = _scope({**range_tags("2026-11-28", "2026-12-05"), NIGHTLY_TAG: "true"})
    after = datetime.now(timezone.utc).replace(tzinfo=None)
    started = datetime.strptime(since, "%Y-%m-%d %H:%M:%S")
    assert before <= started <= after


def test_the_night_whose_last_day_is_a_sunday_tests_every_row():
    assert dbt_assets.FULL_TESTS_WEEKDAY == 6
    assert _scope({**range_tags("2026-11-29", "2026-12-06"), NIGHTLY_TAG: "true"}) == "every row"


def test_a_backfill_tests_every_row():
    assert _scope(range_tags("2026-11-28", "2026-12-05")) == "every row"
