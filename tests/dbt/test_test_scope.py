"""Data tests scoped to what a night wrote (dbt_project/macros/test_scope.sql).

A warehouse whose raw Search Console table holds two days: an old one loaded long ago with a row
that breaks `not_null` on the query, and a new one loaded later, clean. `dbt build` of the staging
view and its tests, through the project's `where` config: with DBT_DATA_TESTS_SINCE between the
two loads (a night that loaded only the new day) the old row is not read and the build passes;
unset (the weekly full-test night, `make test`), or set before the old load, the test reads every
row and fails on it. A malformed time stops the build with the variable's name.
"""

from __future__ import annotations

import duckdb
import pytest

from orchestration.sources import create_missing_raw_tables

OLD_LOAD = "2026-01-02 02:00:00"
NEW_LOAD = "2026-06-02 02:00:00"
NOT_NULL_QUERY = "not_null_stg_gsc__queries_query"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("test_scope")
    path = tmp / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        create_missing_raw_tables(conn)
        for day, query, loaded_at in (
            ("2026-01-01", None, OLD_LOAD),
            ("2026-06-01", "northwind", NEW_LOAD),
        ):
            conn.execute(
                "insert into raw_gsc.queries_daily "
                "(date, query, page, device, country, clicks, impressions, ctr, position, _loaded_at) "
                "values (?, ?, 'https://example.org/a', 'mobile', 'usa', 1, 10, 0.1, 3.0, ?)",
                [day, query, loaded_at],
            )
    return tmp, path


def _build(dbt_invoke, warehouse, **env):
    tmp, path = warehouse
    result = dbt_invoke(
        ["build", "--select", "stg_gsc__queries", "stg_gsc__totals", "--indirect-selection", "buildable"],
        tmp,
        path,
        check=False,
        **env,
    )
    statuses = {r.node.name: str(r.status) for r in (result.result or [])}
    return result, statuses


def test_a_night_tests_only_the_rows_loaded_since_it_started(dbt_invoke, warehouse):
    result, statuses = _build(dbt_invoke, warehouse, DBT_DATA_TESTS_SINCE="2026-06-02 01:00:00")
    assert statuses[NOT_NULL_QUERY] == "pass"
    assert result.success


def test_without_the_variable_every_row_is_tested(dbt_invoke, warehouse, monkeypatch):
    monkeypatch.delenv("DBT_DATA_TESTS_SINCE", raising=False)
    result, statuses = _build(dbt_invoke, warehouse)
    assert statuses[NOT_NULL_QUERY] == "fail"
    assert not result.success


def test_a_time_before_the_old_load_reads_the_old_row(dbt_invoke, warehouse):
    _, statuses = _build(dbt_invoke, warehouse, DBT_DATA_TESTS_SINCE="2026-01-01 00:00:00")
    assert statuses[NOT_NULL_QUERY] == "fail"


def test_a_malformed_time_names_the_variable(dbt_invoke, warehouse):
    result, _ = _build(dbt_invoke, warehouse, DBT_DATA_TESTS_SINCE="yesterday")
    assert not result.success
    assert "DBT_DATA_TESTS_SINCE=yesterday" in str(result.exception or "") + "".join(
        str(r.message) for r in (result.result or [])
    )
