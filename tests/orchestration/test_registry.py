"""The registry of raw tables (orchestration/registry.py) agrees with what declares a raw table
elsewhere: the dbt sources, the ingestion assets, the quality suites and the freshness checks."""

from __future__ import annotations

import re

import dagster as dg
import pytest
import yaml

from orchestration.definitions import source_assets
from orchestration.partitions import daily_partitions
from orchestration.quality.checks import build_freshness_checks
from orchestration.quality.suites import SUITES
from orchestration.registry import BY_NAME, TABLES, raw_table
from orchestration.settings import DBT_PROJECT_DIR, Settings
from orchestration.sources import source_plan

# Found by what they declare, not by name: the dbt project owns its YAML files' names and folders.
SOURCE_YAML = sorted(
    path
    for path in (DBT_PROJECT_DIR / "models").rglob("*.yml")
    if "sources" in (yaml.safe_load(path.read_text()) or {})
)


def dbt_sources() -> dict[str, tuple[str, list[str]]]:
    """`schema.table` -> (the YAML file, the columns it declares), for every dbt source table."""
    found: dict[str, tuple[str, list[str]]] = {}
    for path in SOURCE_YAML:
        for source in yaml.safe_load(path.read_text())["sources"] or []:
            schema = source.get("schema") or source["name"]
            for table in source.get("tables") or []:
                name = f"{schema}.{table['name']}"
                assert name not in found, f"{name} is declared in {found[name][0]} and {path.name}"
                found[name] = (path.name, [c["name"] for c in table.get("columns") or []])
    return found


def test_the_dbt_sources_declare_every_raw_table_and_no_other():
    assert SOURCE_YAML, "no YAML file under dbt_project/models declares sources"
    assert sorted(dbt_sources()) == sorted(BY_NAME)


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_a_dbt_source_lists_exactly_the_columns_the_asset_writes(table):
    path, columns = dbt_sources()[table.name]
    assert len(columns) == len(set(columns)), f"{path}: {table.name} lists a column twice"
    written = table.schema.names
    assert sorted(columns) == sorted(written), (
        f"{path}: {table.name} lists {sorted(set(columns) - set(written))} that the asset does not write "
        f"and misses {sorted(set(written) - set(columns))} (orchestration/registry.py)"
    )


def test_every_raw_asset_has_an_entry_and_every_entry_an_asset():
    env = {"DISCORD_SANDBOX": "1"}  # Discord is optional: asked for, so its asset is built too
    partitions = daily_partitions(Settings.from_env({}))
    keys = {
        key
        for item in source_assets(partitions, source_plan(env))
        if isinstance(item, dg.AssetsDefinition)
        for key in item.keys
    }
    expected = {dg.AssetKey(list(table.asset_key)) for table in TABLES}
    assert keys - {dg.AssetKey(["ga4", "data_api"])} == expected


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_the_suite_checks_the_key_date_and_stamp_with_the_types_written(table):
    suite = SUITES[table.name]
    assert suite["keys"] == list(table.key)
    assert suite["date_column"] == table.date_column
    assert {f.name for f in table.stamp} <= set(suite["columns"])
    assert all(str(table.schema.field(name).type) == kind for name, kind in suite["columns"].items())
    assert set(suite["not_null"]) <= set(table.schema.names)


def test_freshness_checks_follow_the_lags_of_the_daily_tables():
    lagged = [t for t in TABLES if t.freshness_lag_days is not None]
    assert all(t.daily for t in lagged)  # a snapshot has no last day to be late with
    specs = [dg.AssetSpec(list(t.asset_key)) for t in TABLES]
    checks = build_freshness_checks(specs)
    names = sorted(spec.key.to_user_string() for check in checks for spec in check.check_specs)
    assert names == sorted(f"{t.source}/{t.stream}:{t.stream}_freshness" for t in lagged)


@pytest.mark.parametrize("table", [t for t in TABLES if t.sandbox], ids=lambda t: t.name)
def test_a_sandbox_rule_reads_a_stamp_column(table):
    column = re.match(r"(\w+) ", table.sandbox.predicate).group(1)
    assert column in {f.name for f in table.stamp}
    assert table.sandbox.predicate.count("?") == 1


def test_an_unknown_table_names_the_known_ones():
    with pytest.raises(KeyError, match="raw_ga4.sessions_daily"):
        raw_table("raw_ga4.session_daily")
