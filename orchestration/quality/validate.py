"""Validate a raw batch against its suite before it is committed.

Columns, keys, nulls, ranges and dates run as a Great Expectations suite over the batch as an
in-memory pandas frame (GE's SQL datasource over DuckDB fails every expectation in GE 1.24, and the
batch is not in the warehouse yet anyway). Column types are read from the Arrow schema, which is
exact where pandas is not (an int column with a null becomes float in pandas). Row volume needs
the loaded history, so it is a query on the open connection.

GE does not see every batch. It takes ~10 s to import (once per process) and a fixed ~0.3-0.5 s of
CPU per batch (building the metric graph), against ~0.1-0.25 s of CPU to fetch, parse and commit a
GA4 day of 11k rows: on every batch it would add 55-106 % to a day's wall time and 180-420 % to
its CPU (`python -m bench.quality_gate`, README "Data-quality gates"). So every batch is screened
by the same expectations evaluated in Arrow with GE's own semantics (`screen_batch`, ~20 ms); a
batch the screen flags is validated by GE, whose result (expectation, bad-row count, samples) is
what the check and the error report. tests/orchestration/test_quality_suites.py holds the screen to
GE's verdict for every expectation of every suite. QUALITY_ENGINE=gx validates every batch with GE
too (an audit run) and notes any disagreement.
"""

from __future__ import annotations

import functools
import os
import statistics
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pyarrow as pa

from orchestration.quality.suites import VOLUME_DEFAULTS, suite_for

MAX_SAMPLES = 5


@dataclass
class Failure:
    """One expectation a batch did not meet."""

    expectation: str
    column: str | None
    unexpected_count: int
    samples: list[str]
    detail: str
    severity: str = "error"  # "error": the batch is refused; "warn": loaded, reported

    def describe(self) -> str:
        where = f" on {self.column}" if self.column else ""
        samples = f"; samples: {', '.join(self.samples)}" if self.samples else ""
        return f"{self.expectation}{where}: {self.unexpected_count} bad row(s) ({self.detail}){samples}"


@dataclass
class BatchResult:
    table: str
    days: list[date]
    rows: int
    expectations: int = 0
    failures: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Failure]:
        return [f for f in self.failures if f.severity == "error"]

    @property
    def warnings(self) -> list[Failure]:
        return [f for f in self.failures if f.severity == "warn"]

    @property
    def passed(self) -> bool:
        return not self.errors

    def describe(self) -> str:
        span = f"{self.days[0]}..{self.days[-1]}" if self.days else "snapshot"
        if self.passed:
            return f"{self.table} {span}: {self.rows} rows passed {self.expectations} expectations"
        return f"{self.table} {span}: batch of {self.rows} rows refused, nothing committed: " + "; ".join(
            f.describe() for f in self.errors
        )


class QualityGateError(RuntimeError):
    """A batch failed its suite; it was not written and the table keeps its previous rows."""

    def __init__(self, result: BatchResult):
        self.result = result
        super().__init__(
            result.describe() + ". The rows already loaded for these days stay; fix the source (or the "
            "suite in orchestration/quality/suites.py if the expectation is wrong) and re-run the days."
        )


def validate_batch(
    table_name: str, arrow_table: pa.Table, days: list[date] | None, conn: Any | None
) -> BatchResult:
    """Check `arrow_table` against the suite of `table_name` before it replaces `days`.

    Args:
        table_name: `schema.table` the batch is written to; a table with no suite passes.
        arrow_table: the batch as it would be inserted.
        days: the days it replaces (None for an unpartitioned snapshot).
        conn: the open warehouse connection, for the volume history (None: no volume check).

    Returns:
        The result: `passed`, and per failed expectation the bad-row count and up to 5 samples.
    """
    days = sorted(set(days or []))
    result = BatchResult(table_name, days, arrow_table.num_rows)
    suite = suite_for(table_name)
    if suite is None:
        result.notes.append("no suite for this table")
        return result
    if not _schema_ok(suite, arrow_table, result):
        return result  # a missing or retyped column makes every other expectation meaningless
    if arrow_table.num_rows:
        flagged = screen_batch(table_name, arrow_table, days)
        if flagged or os.getenv("QUALITY_ENGINE", "").lower() == "gx":
            found = len(result.failures)
            _run_expectations(table_name, suite, arrow_table, days, result)
            confirmed = [(f.expectation, f.column or "") for f in result.failures[found:]]
            if sorted(confirmed) != sorted(flagged):  # tests hold the screen to GE's verdicts
                result.notes.append(
                    f"the Arrow screen flagged {flagged or 'nothing'}, "
                    f"Great Expectations {confirmed or 'nothing'}"
                )
        else:
            result.expectations += _expectation_count(suite, days)
    if suite.get("volume") is not None and days and conn is not None:
        _check_volume(table_name, {**VOLUME_DEFAULTS, **suite["volume"]}, arrow_table, days, conn, result)
    return result


def _schema_ok(suite: dict, table: pa.Table, result: BatchResult) -> bool:
    present = {f.name: str(f.type) for f in table.schema}
    for name, expected in suite["columns"].items():
        result.expectations += 1
        if name not in present:
            others = sorted(set(present) - set(suite["columns"]))
            result.failures.append(
                Failure(
                    "expect_column_to_exist",
                    name,
                    table.num_rows,
                    others[:MAX_SAMPLES],
                    "column missing" + (f"; unexpected columns: {', '.join(others)}" if others else ""),
                )
            )
        elif present[name] != expected:
            result.failures.append(
                Failure(
                    "expect_column_values_to_be_of_type",
                    name,
                    table.num_rows,
                    [present[name]],
                    f"type {present[name]}, expected {expected}",
                )
            )
    return not result.failures


def _expectation_count(spec: dict, days: list[date]) -> int:
    dates = 1 if spec["date_column"] and days else 0
    return len(spec["not_null"]) + 1 + len(spec["ranges"]) + len(spec["pairs"]) + dates


def screen_batch(table_name: str, table: pa.Table, days: list[date]) -> list[tuple[str, str]]:
    """The suite's expectations evaluated in Arrow, with Great Expectations' own semantics.

    Returns:
        (expectation, column) of every expectation the batch fails, named as GE names them in a
        validation result (`column` is "a, b" for a compound key or a column pair), in suite order.
        Empty when the batch meets every expectation. Schema and volume are not screened: they
        are checked the same way on every batch already.
    """
    import pyarrow.compute as pc

    spec = suite_for(table_name)
    failed: list[tuple[str, str]] = []
    if spec is None or not table.num_rows:
        return failed
    # GE's pandas engine counts None and NaN alike as missing; a column map expectation (ranges,
    # sets, single-column uniqueness) never judges a missing value, a pair ignores a row where
    # either side is missing, and a compound key ignores a row whose key values are all missing.
    for column in spec["not_null"]:
        if pc.any(pc.is_null(table.column(column), nan_is_null=True)).as_py():
            failed.append(("expect_column_values_to_not_be_null", column))
    keys = spec["keys"]
    present = [pc.invert(pc.is_null(table.column(k), nan_is_null=True)) for k in keys]
    judged = table.select(keys).filter(functools.reduce(pc.or_, present) if len(keys) > 1 else present[0])
    if judged.num_rows:
        counts = judged.group_by(keys, use_threads=False).aggregate([([], "count_all")])
        if pc.max(counts.column("count_all")).as_py() > 1:
            kind = (
                "expect_column_values_to_be_unique"
                if len(keys) == 1
                else "expect_compound_columns_to_be_unique"
            )
            failed.append((kind, ", ".join(keys)))
    for column, (low, high) in spec["ranges"].items():
        values = table.column(column)
        below = low is not None and pc.any(pc.less(values, low)).as_py()
        above = high is not None and pc.any(pc.greater(values, high)).as_py()
        if below or above:  # comparisons with null or NaN are null or false: not judged, as in GE
            failed.append(("expect_column_values_to_be_between", column))
    for a, b in spec["pairs"]:
        if pc.any(pc.less(table.column(a), table.column(b))).as_py():
            failed.append(("expect_column_pair_values_a_to_be_greater_than_b", f"{a}, {b}"))
    if spec["date_column"] and days:
        values = table.column(spec["date_column"])
        outside = pc.and_(
            pc.is_valid(values), pc.invert(pc.is_in(values, value_set=pa.array(days, pa.date32())))
        )
        if pc.any(outside).as_py():
            failed.append(("expect_column_values_to_be_in_set", spec["date_column"]))
    return failed


@functools.cache
def _gx():
    """Great Expectations, its ephemeral context and one pandas datasource (once per process)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return gx, context, context.data_sources.add_pandas("raw_batches")


@functools.cache
def _batch_definition(table_name: str):
    _, _, datasource = _gx()
    asset = datasource.add_dataframe_asset(name=table_name)
    return asset.add_batch_definition_whole_dataframe("whole_batch")


@functools.cache
def _suite(table_name: str, days: tuple[date, ...]):
    gx, _, _ = _gx()
    spec = suite_for(table_name)
    e = gx.expectations
    expectations = [e.ExpectColumnValuesToNotBeNull(column=c) for c in spec["not_null"]]
    if len(spec["keys"]) == 1:
        expectations.append(e.ExpectColumnValuesToBeUnique(column=spec["keys"][0]))
    else:
        expectations.append(e.ExpectCompoundColumnsToBeUnique(column_list=spec["keys"]))
    for column, (low, high) in spec["ranges"].items():
        expectations.append(e.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high))
    for a, b in spec["pairs"]:
        expectations.append(
            e.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=a, column_B=b, or_equal=True, ignore_row_if="either_value_is_missing"
            )
        )
    if spec["date_column"] and days:
        expectations.append(
            e.ExpectColumnValuesToBeInSet(column=spec["date_column"], value_set=[d.isoformat() for d in days])
        )
    return gx.ExpectationSuite(name=f"{table_name}.suite", expectations=expectations)


def _run_expectations(
    table_name: str, spec: dict, table: pa.Table, days: list[date], result: BatchResult
) -> None:
    frame = table.select(list(spec["columns"])).to_pandas()
    date_column = spec["date_column"]
    if date_column:
        # Compared as ISO text: GE 1.x no longer parses dates in value sets.
        frame[date_column] = frame[date_column].map(lambda d: None if d is None else d.isoformat())
    suite = _suite(table_name, tuple(days) if date_column else ())
    batch = _batch_definition(table_name).get_batch(batch_parameters={"dataframe": frame})
    validation = batch.validate(
        suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": MAX_SAMPLES}
    )
    for outcome in validation.results:
        result.expectations += 1
        if outcome.success:
            continue
        config = outcome.expectation_config
        kwargs = config.kwargs
        column = kwargs.get("column") or ", ".join(
            kwargs.get("column_list") or [k for k in (kwargs.get("column_A"), kwargs.get("column_B")) if k]
        )
        info = outcome.result or {}
        exception = (outcome.exception_info or {}).get("exception_message")
        samples = [_sample(v) for v in (info.get("partial_unexpected_list") or [])[:MAX_SAMPLES]]
        result.failures.append(
            Failure(
                config.type,
                column or None,
                int(info.get("unexpected_count") or 0),
                samples,
                exception or _explain(config.type, kwargs),
            )
        )


def _explain(kind: str, kwargs: dict) -> str:
    if kind == "expect_column_values_to_be_between":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        if high is None:
            return f"values below {low}"
        if low is None:
            return f"values above {high}"
        return f"values outside [{low}, {high}]"
    if kind == "expect_column_values_to_be_in_set":
        days = kwargs.get("value_set") or []
        return f"dates outside the partition {days[0]}..{days[-1]}" if days else "values outside the set"
    if kind == "expect_column_values_to_not_be_null":
        return "empty key"
    if kind in ("expect_compound_columns_to_be_unique", "expect_column_values_to_be_unique"):
        return "duplicate keys within the partition"
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        return f"{kwargs.get('column_A')} < {kwargs.get('column_B')}"
    return kind


def _sample(value: Any) -> str:
    if isinstance(value, dict):
        return "(" + ", ".join(f"{k}={v}" for k, v in value.items()) + ")"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)


def _check_volume(
    table_name: str, volume: dict, table: pa.Table, days: list[date], conn: Any, result: BatchResult
) -> None:
    import pyarrow.compute as pc

    counts = {d: 0 for d in days}
    if table.num_rows:
        for row in pc.value_counts(table.column("date")).to_pylist():
            if row["values"] in counts:
                counts[row["values"]] = row["counts"]
    lookback = timedelta(days=volume["lookback_days"])
    try:
        history = dict(
            conn.execute(
                f"select date, count(*) from {table_name} where date >= ? and date < ? "
                "and date not in (select unnest(?::date[])) group by date",
                [days[0] - lookback, days[-1], days],
            ).fetchall()
        )
    except Exception:  # the table does not exist yet: a first load has no history
        history = {}
    empty_ok_after = _yesterday() - timedelta(days=volume["empty_ok_days"])
    result.expectations += 1
    for day in days:
        window = [n for d, n in history.items() if day - lookback <= d < day]
        if len(window) < volume["min_history_days"]:
            result.notes.append(
                f"volume of {day} not checked: {len(window)} loaded day(s) in the {volume['lookback_days']} "
                f"before it, {volume['min_history_days']} needed"
            )
            continue
        n = counts[day]
        if n == 0 and volume["empty_ok_days"] and day > empty_ok_after:
            result.notes.append(f"{day} is empty: the source has not published it yet")
            continue
        median = statistics.median(window)
        for severity, share in (("error", volume["fail_below"]), ("warn", volume["warn_below"])):
            if n < share * median:
                result.failures.append(
                    Failure(
                        "expect_table_row_count_to_be_between",
                        None,
                        n,
                        [f"{day}: {n} rows"],
                        f"{day} has {n} rows, below {share:.0%} of the trailing median {median:g} "
                        f"({'missing day' if n == 0 else 'volume collapse'})",
                        severity=severity,
                    )
                )
                break


def _yesterday() -> date:
    return date.today() - timedelta(days=1)
