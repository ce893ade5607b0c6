"""Guards the DuckDB version pin: the engine must get this aggregate comparison right.

DuckDB 2.0.0 answers `sum(x) = 6` with false when the rows were filtered by a comparison with an
uncorrelated scalar subquery, although `sum(x)` itself is 6. Reconciliation tests use exactly
this shape, so the project pins `duckdb<2` until a fixed release.
"""

import duckdb


def test_sum_compared_after_a_scalar_subquery_filter_is_right():
    conn = duckdb.connect()
    conn.execute("create table t as select 1 as d, 3::bigint as x from range(2)")
    conn.execute("create table m as select 1 as d")
    total, equal = conn.execute(
        "select sum(x), sum(x) = 6 from t where d >= (select min(d) from m)"
    ).fetchone()
    assert total == 6
    assert equal is True
