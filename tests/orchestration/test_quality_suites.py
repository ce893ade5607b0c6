"""The raw suites on crafted batches: what passes, what is refused, and what the report says."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import duckdb
import pyarrow as pa
import pytest

from connectors.gsc import QUERIES_SCHEMA
from orchestration.fetching import DayBatches
from orchestration.quality import SUITES, QualityGateError, validate_batch
from orchestration.quality.gate import QualityGate, write_snapshot
from orchestration.quality.validate import screen_batch
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


def test_a_refused_day_keeps_the_rows_already_loaded_and_the_gate_keeps_both_results(tmp_path):
    gate = QualityGate()
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        first = DayBatches(conn, TABLE, gate=gate)
        first.add(DAY, gsc_batch())
        first.flush()
        again = DayBatches(conn, TABLE, gate=gate)
        again.add(DAY, gsc_batch(n=5, clicks=[-1, 1, 1, 1, 1]))
        with pytest.raises(QualityGateError, match=r"raw_gsc.queries_daily .*clicks: 1 bad row"):
            again.flush()
        assert conn.execute(f"select count(*) from {TABLE}").fetchone()[0] == 50
    assert [(r.table, r.rows, r.passed) for r in gate.results] == [(TABLE, 50, True), (TABLE, 5, False)]
    assert again.rows_written == 0 and gate.results_for("raw_gsc.totals_daily") == []


def test_a_refused_snapshot_leaves_the_table_as_it_was(tmp_path):
    table = "raw_slack.users"
    users = clean_batch(table)
    gate = QualityGate()
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        assert write_snapshot(conn, gate, table, users) == users.num_rows
        duplicated = with_value(users, "user_id", 1, users.column("user_id")[0].as_py())
        with pytest.raises(QualityGateError, match="user_id"):
            write_snapshot(conn, gate, table, duplicated)
        stored = conn.execute(f"select user_id from {table} order by 1").fetchall()
    assert [r[0] for r in stored] == sorted(users.column("user_id").to_pylist())
    assert [r.passed for r in gate.results] == [True, False]


def test_volume_is_judged_against_the_trailing_median_once_a_week_is_loaded(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        days = [DAY - timedelta(days=i) for i in range(8, 0, -1)]
        for i, day in enumerate(days):
            replace_days(conn, TABLE, [day], gsc_batch(day))
            if i < 6:
                early = validate_batch(TABLE, gsc_batch(days[i + 1], n=1), [days[i + 1]], conn)
                assert early.passed and "not checked" in early.notes[-1]
        collapsed = validate_batch(TABLE, gsc_batch(DAY, n=5), [DAY], conn)
        dipped = validate_batch(TABLE, gsc_batch(DAY, n=12), [DAY], conn)
    assert not collapsed.passed and "volume collapse" in collapsed.errors[0].detail
    assert dipped.passed and dipped.warnings and "below 30%" in dipped.warnings[0].detail


# --- The Arrow screen and Great Expectations agree, expectation by expectation -------------------
# Every batch is screened in Arrow and only a flagged one goes through GE (validate.py says why),
# so the screen must flag exactly what GE would refuse: a batch it passes is never seen by GE.

ARROW_TYPES = {
    "string": pa.string(),
    "date32[day]": pa.date32(),
    "int64": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "timestamp[us]": pa.timestamp("us"),
    "timestamp[us, tz=UTC]": pa.timestamp("us", tz="UTC"),
}


def clean_batch(table_name: str) -> pa.Table:
    """A batch of `table_name` for DAY that meets every expectation of its suite."""
    spec = SUITES[table_name]
    n = 1 if spec["keys"] == [spec["date_column"]] else 6
    columns = {}
    for name, kind in spec["columns"].items():
        low, high = spec["ranges"].get(name, (None, None))
        bound = low if low is not None else high
        if kind == "date32[day]":
            values = [DAY] * n
        elif kind == "string":
            values = [f"{name}-{i}" for i in range(n)]
        elif kind == "int64":
            values = (
                list(range(1, n + 1)) if name in spec["keys"] else [bound if bound is not None else 1] * n
            )
        elif kind == "double":
            values = [float(bound) if bound is not None else 0.5] * n
        elif kind == "bool":
            values = [False] * n
        else:  # timestamps: an hour apart (hour_start is a key)
            tz = timezone.utc if "UTC" in kind else None
            values = [datetime(DAY.year, DAY.month, DAY.day, i, tzinfo=tz) for i in range(n)]
        columns[name] = values
    schema = pa.schema([(name, ARROW_TYPES[kind]) for name, kind in spec["columns"].items()])
    return pa.Table.from_pydict(columns, schema=schema)


def with_value(table: pa.Table, column: str, row: int, value) -> pa.Table:
    values = table.column(column).to_pylist()
    values[row] = value
    i = table.schema.get_field_index(column)
    return table.set_column(i, table.field(i), pa.array(values, table.field(i).type))


def bad_batches() -> list:
    """One batch per expectation of every suite, breaking that expectation on one row."""
    cases = []
    for table_name, spec in SUITES.items():
        clean = clean_batch(table_name)
        row = min(1, clean.num_rows - 1)
        for column in spec["not_null"]:
            cases.append((table_name, f"not_null:{column}", with_value(clean, column, row, None)))
        cases.append(
            (table_name, "unique:" + "+".join(spec["keys"]), pa.concat_tables([clean, clean.slice(0, 1)]))
        )
        for column, (low, high) in spec["ranges"].items():
            value = low - 1 if low is not None else high + 1
            cases.append((table_name, f"between:{column}", with_value(clean, column, row, value)))
        for a, b in spec["pairs"]:
            above = clean.column(a)[row].as_py() + 1
            cases.append((table_name, f"pair:{a}>={b}", with_value(clean, b, row, above)))
        if spec["date_column"]:
            stray = DAY - timedelta(days=30)
            cases.append((table_name, "in_partition", with_value(clean, spec["date_column"], row, stray)))
    return cases


def missing_values() -> list:
    """Batches where GE's treatment of missing values decides: nulls and NaN outside not_null."""
    cases = []
    for table_name, spec in SUITES.items():
        clean = clean_batch(table_name)
        row = min(1, clean.num_rows - 1)
        for column, kind in spec["columns"].items():
            if column in spec["not_null"]:
                continue
            if column in spec["ranges"] or column in spec["keys"] or column == spec["date_column"]:
                cases.append((table_name, f"null:{column}", with_value(clean, column, row, None)))
            if kind == "double" and column in spec["ranges"]:
                cases.append((table_name, f"nan:{column}", with_value(clean, column, row, float("nan"))))
        nullable_keys = [k for k in spec["keys"] if k not in spec["not_null"]]
        if nullable_keys and clean.num_rows > 1:
            # two rows that differ only in a key part the suite allows to be empty, both empty
            twin = clean.slice(0, 1)
            for key in nullable_keys:
                twin = with_value(twin, key, 0, None)
            cases.append(
                (table_name, "duplicate_with_empty_key_parts", pa.concat_tables([clean, twin, twin]))
            )
        if spec["date_column"]:
            cases.append((table_name, "null_date", with_value(clean, spec["date_column"], row, None)))
    return cases


def both_verdicts(monkeypatch, table_name: str, batch: pa.Table) -> tuple[list, list]:
    monkeypatch.setenv("QUALITY_ENGINE", "gx")
    result = validate_batch(table_name, batch, [DAY], None)
    assert not [n for n in result.notes if "Arrow screen" in n], result.notes
    ge = sorted((f.expectation, f.column or "") for f in result.failures)
    return sorted(screen_batch(table_name, batch, [DAY])), ge


@pytest.mark.parametrize("table_name", list(SUITES))
def test_a_clean_batch_passes_the_screen_and_great_expectations(monkeypatch, table_name):
    assert both_verdicts(monkeypatch, table_name, clean_batch(table_name)) == ([], [])


@pytest.mark.parametrize(
    ("table_name", "broken", "batch"), bad_batches(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_the_screen_flags_each_broken_expectation_exactly_as_great_expectations(
    monkeypatch, table_name, broken, batch
):
    screened, ge = both_verdicts(monkeypatch, table_name, batch)
    assert ge, f"GE passed a batch breaking {broken}"
    assert screened == ge


@pytest.mark.parametrize(
    ("table_name", "case", "batch"), missing_values(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_the_screen_judges_missing_values_as_great_expectations_does(monkeypatch, table_name, case, batch):
    screened, ge = both_verdicts(monkeypatch, table_name, batch)
    assert screened == ge
