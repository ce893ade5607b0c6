"""The raw suites on crafted batches: what passes, what is refused, and what the report says."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pyarrow as pa
import pytest

from connectors.gsc import QUERIES_SCHEMA
from orchestration.quality import QualityGateError, validate_batch
from orchestration.warehouse import replace_days

DAY = date(2026, 3, 2)
TABLE = "raw_gsc.queries_daily"


def gsc_batch(day: date = DAY, n: int = 50, **changes) -> pa.Table:
    columns = {
        "date": [day] * n,
        "query": [f"query {i}" for i in range(n)],
        "page": ["https://example.com/"] * n,
        "device": ["DESKTOP"] * n,
        "country": ["usa"] * n,
        "clicks": [1] * n,
        "impressions": [10] * n,
        "ctr": [0.1] * n,
        "position": [2.0] * n,
    }
    columns.update(changes)
    table = pa.Table.from_pydict(columns, schema=QUERIES_SCHEMA)
    stamp = [
        ("_site_url", pa.string(), "sc-domain:example.com"),
        ("_loaded_at", pa.timestamp("us"), datetime(2026, 3, 3)),
        ("_run_id", pa.string(), "run"),
    ]
    for name, kind, value in stamp:
        table = table.append_column(pa.field(name, kind), pa.array([value] * n, kind))
    return table


@pytest.mark.parametrize("engine", ["", "gx"])
def test_a_clean_day_passes_every_expectation(monkeypatch, engine):
    monkeypatch.setenv("QUALITY_ENGINE", engine)
    result = validate_batch(TABLE, gsc_batch(), [DAY], None)
    assert result.passed and result.failures == []
    assert result.expectations > 20


def test_ctr_above_one_and_clicks_above_impressions_are_named():
    result = validate_batch(TABLE, gsc_batch(ctr=[1.5] + [0.1] * 49, clicks=[11] + [1] * 49), [DAY], None)
    assert not result.passed
    found = {(f.expectation, f.column): f for f in result.errors}
    assert found["expect_column_values_to_be_between", "ctr"].samples == ["1.5"]
    assert (
        found["expect_column_pair_values_a_to_be_greater_than_b", "impressions, clicks"].unexpected_count == 1
    )


def test_a_refused_day_keeps_the_rows_already_loaded(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        replace_days(conn, TABLE, [DAY], gsc_batch())
        with pytest.raises(QualityGateError, match=r"raw_gsc.queries_daily .*clicks: 1 bad row"):
            replace_days(conn, TABLE, [DAY], gsc_batch(n=5, clicks=[-1, 1, 1, 1, 1]))
        assert conn.execute(f"select count(*) from {TABLE}").fetchone()[0] == 50


def test_volume_is_judged_against_the_trailing_median_once_a_week_is_loaded(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        days = [DAY - timedelta(days=i) for i in range(8, 0, -1)]
        for i, day in enumerate(days):
            replace_days(conn, TABLE, [day], gsc_batch(day), validate=False)
            if i < 6:
                early = validate_batch(TABLE, gsc_batch(days[i + 1], n=1), [days[i + 1]], conn)
                assert early.passed and "not checked" in early.notes[-1]
        collapsed = validate_batch(TABLE, gsc_batch(DAY, n=5), [DAY], conn)
        dipped = validate_batch(TABLE, gsc_batch(DAY, n=12), [DAY], conn)
    assert not collapsed.passed and "volume collapse" in collapsed.errors[0].detail
    assert dipped.passed and dipped.warnings and "below 30%" in dipped.warnings[0].detail
