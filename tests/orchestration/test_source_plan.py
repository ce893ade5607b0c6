"""Real data or the sandbox, per source: fictional rows never land beside real ones by default.

The rule (orchestration/sources.py): no credentials anywhere -> the sandbox serves every source;
one real source -> only real sources load, unless SANDBOX_SOURCES opts a source in. Each case
builds the real Definitions from the environment, as `dagster dev` does.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import dagster as dg
import duckdb
import pytest

from connectors.sandbox import SANDBOX_GA4_PROPERTY_ID, ensure_sandbox, google_service_account_info
from orchestration.definitions import build_definitions, source_assets, source_resources
from orchestration.jobs import range_tags
from orchestration.partitions import daily_partitions
from orchestration.settings import SettingsError
from orchestration.sources import RAW_TABLES, SOURCE_NAMES, create_missing_raw_tables, source_plan
from orchestration.warehouse import DuckDBWarehouse

SETTINGS = (
    "SANDBOX",
    "SANDBOX_SOURCES",
    "DISCORD_SANDBOX",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GA4_PROPERTY_ID",
    "GA4_BASE_URL",
    "GA4_TOKEN_URI",
    "GSC_SITE_URL",
    "META_ACCESS_TOKEN",
    "META_AD_ACCOUNT_ID",
    "SLACK_BOT_TOKEN",
    "SLACK_EXPORT_PATH",
    "DISCOURSE_URL",
    "DISCOURSE_API_KEY",
    "DISCORD_BOT_TOKEN",
    "DISCORD_CHANNEL_IDS",
    "MEMBER_HASH_KEY",
)
INGEST_GROUPS = {f"ingest_{name}": name for name in SOURCE_NAMES}


@pytest.fixture
def env(monkeypatch):
    """A clean slate of every source setting; returns a setter."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)

    def set_(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_


@pytest.fixture
def ga4_credentials(tmp_path, env):
    """Real GA4 settings (a service-account key file and a property), pointed at the sandbox's API."""
    sandbox = ensure_sandbox()
    key = tmp_path / "ga4-key.json"
    key.write_text(json.dumps(google_service_account_info(sandbox.google_token_uri)))
    env(
        GOOGLE_APPLICATION_CREDENTIALS=str(key),
        GA4_PROPERTY_ID=SANDBOX_GA4_PROPERTY_ID,
        GA4_BASE_URL=sandbox.ga4_base_url,
        GA4_TOKEN_URI=sandbox.google_token_uri,
    )


def _sources_by_mode(defs: dg.Definitions) -> dict[str, set[str]]:
    """Source name -> 'loaded' when it has materializable ingest assets, else 'external'."""
    graph = defs.resolve_asset_graph()
    found: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        source = INGEST_GROUPS.get(node.group_name or "")
        if source and key.path[-1] != "data_api":
            found.setdefault(source, set()).add("loaded" if node.is_materializable else "external")
    return found


def _sandboxed(defs: dg.Definitions) -> dict[str, bool]:
    resources = defs.resources or {}
    return {
        name: resources[name].uses_sandbox
        for name in ("ga4", "gsc", "meta", "discourse")
        if name in resources
    }


def test_without_credentials_the_sandbox_serves_every_source(env, settings_for, tmp_path):
    defs = build_definitions(settings_for(tmp_path, days=3))
    assert _sources_by_mode(defs) == {
        name: {"loaded"} for name in ("ga4", "gsc", "meta", "slack", "discourse")
    }  # Discord is optional: not even shown until asked for
    assert _sandboxed(defs) == {"ga4": True, "gsc": True, "meta": True, "discourse": True}
    assert defs.resources["slack"].source == "sandbox"


def test_discord_sandbox_still_adds_the_sandboxs_discord(env, settings_for, tmp_path):
    env(DISCORD_SANDBOX="1")
    defs = build_definitions(settings_for(tmp_path, days=3))
    assert _sources_by_mode(defs)["discord"] == {"loaded"}
    assert defs.resources["discord"].uses_sandbox


def test_sandbox_sources_opts_sources_in_beside_a_real_one(env, ga4_credentials, settings_for, tmp_path):
    env(SANDBOX_SOURCES="meta, slack")
    defs = build_definitions(settings_for(tmp_path, days=3))
    modes = _sources_by_mode(defs)
    assert {name for name, mode in modes.items() if mode == {"loaded"}} == {"ga4", "meta", "slack"}
    assert modes["gsc"] == modes["discourse"] == {"external"}
    # GA4 reads the configured property; Meta the sandbox's account, not an empty real one.
    assert _sandboxed(defs) == {"ga4": False, "meta": True}
    assert defs.resources["slack"].source == "sandbox"


def test_sandbox_on_serves_every_source_without_credentials_beside_a_real_one(
    env, ga4_credentials, settings_for, tmp_path
):
    env(SANDBOX="on")
    defs = build_definitions(settings_for(tmp_path, days=3))
    assert _sandboxed(defs) == {"ga4": False, "gsc": True, "meta": True, "discourse": True}


def test_a_sandbox_source_ignores_the_shared_google_key(env, ga4_credentials):
    # The key is GA4's; Search Console on the sandbox must not try it on an empty site.
    env(SANDBOX_SOURCES="gsc")
    resources = source_resources()
    assert not resources["ga4"].uses_sandbox and resources["gsc"].uses_sandbox
    assert resources["gsc"].site_url is None


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"SANDBOX": "yes"}, "SANDBOX='yes' is not valid; use auto"),
        ({"SANDBOX_SOURCES": "meta,facebook"}, "'facebook', not a source; use a comma-separated list of ga4"),
        ({"SANDBOX": "off", "SANDBOX_SOURCES": "meta", "META_ACCESS_TOKEN": "t"}, "SANDBOX=off contradicts"),
        ({"SANDBOX": "off"}, "nothing would be loaded"),
        ({"DISCORD_SANDBOX": "maybe"}, "DISCORD_SANDBOX='maybe' is not valid"),
        ({"META_ACCESS_TOKEN": "t", "SANDBOX_SOURCES": "meta"}, "remove meta from SANDBOX_SOURCES"),
        (
            {"GOOGLE_APPLICATION_CREDENTIALS": "/k.json"},
            "GA4 needs GOOGLE_APPLICATION_CREDENTIALS and GA4_PROPERTY_ID",
        ),
    ],
)
def test_bad_sandbox_settings_name_the_setting_and_the_fix(env, values, fragment):
    env(**values)
    with pytest.raises(SettingsError) as caught:
        source_plan()
    assert fragment in str(caught.value)


def test_a_bad_value_stops_the_definitions_from_loading(env, settings_for, tmp_path):
    env(SANDBOX="sometimes")
    with pytest.raises(SettingsError, match="SANDBOX='sometimes'"):
        build_definitions(settings_for(tmp_path, days=3))


def test_with_ga4_credentials_only_ga4_loads_and_every_model_still_builds(
    env, ga4_credentials, settings_for, tmp_path
):
    """One refresh with real GA4 only: the other sources are absent, their raw tables empty, dbt green."""
    settings = settings_for(tmp_path, days=3)
    defs = build_definitions(settings)
    modes = _sources_by_mode(defs)
    assert modes == {
        "ga4": {"loaded"},
        **{name: {"external"} for name in ("gsc", "meta", "slack", "discourse")},
    }
    meta_spec = defs.resolve_asset_graph().get(dg.AssetKey(["meta", "ad_insights_daily"]))
    assert "Set META_ACCESS_TOKEN to load it, or add meta to SANDBOX_SOURCES" in meta_spec.description
    assert set(defs.resources) == {"warehouse", "ga4", "dbt"}

    job = defs.resolve_job_def("refresh_warehouse")
    keys = job.partitions_def.get_partition_keys()
    # Dagster's in-memory instance: the run's storage is not what is checked, and the SQLite one
    # reopens its files for each of the run's events
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance, tags=range_tags(keys[0], keys[-1]), raise_on_error=False
        )
    failures = [e.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert result.success, failures
    ran = {e.asset_key.path[0] for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}
    assert {"ga4", "staging", "marts", "serving"} <= ran and not ran & {"gsc", "meta", "slack", "discourse"}

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        counts = {
            table: conn.execute(f"select count(*) from {table}").fetchone()[0]
            for tables in RAW_TABLES.values()
            for table in tables
        }
        marts = conn.execute("select count(*) from marts.mart_dark_social_daily").fetchone()[0]
    assert counts.pop("raw_ga4.sessions_daily") > 0 and counts.pop("raw_ga4.leads_daily") > 0
    assert set(counts.values()) == {0}  # created empty for dbt, never filled with sandbox rows
    assert marts == len(keys)


def test_empty_raw_tables_have_the_columns_their_assets_write(env, settings_for, tmp_path):
    """A later real load writes into a table created empty (insert by name): the columns must match."""
    env(DISCORD_SANDBOX="1")
    settings = settings_for(tmp_path, days=3)
    partitions = daily_partitions(settings)
    assets = [item for item in source_assets(partitions) if isinstance(item, dg.AssetsDefinition)]
    loaded = tmp_path / "loaded.duckdb"
    result = dg.materialize(
        assets,
        # A day every source has final: Search Console does not write a day it is still collecting.
        partition_key=(date.today() - timedelta(days=3)).isoformat(),
        resources={"warehouse": DuckDBWarehouse(path=str(loaded)), **source_resources()},
    )
    assert result.success
    created = tmp_path / "created.duckdb"
    with duckdb.connect(str(created)) as conn:
        made = create_missing_raw_tables(conn)
        assert create_missing_raw_tables(conn) == []  # only what is missing
    assert sorted(table for _, table in made) == sorted(t for tables in RAW_TABLES.values() for t in tables)

    def columns(path) -> dict[str, list[tuple[str, str]]]:
        with duckdb.connect(str(path), read_only=True) as conn:
            rows = conn.execute(
                "select table_schema || '.' || table_name, column_name, data_type "
                "from information_schema.columns where table_schema like 'raw_%' order by 1, ordinal_position"
            ).fetchall()
        found: dict[str, list[tuple[str, str]]] = {}
        for table, column, kind in rows:
            found.setdefault(table, []).append((column, kind))
        return found

    assert columns(created) == columns(loaded)


def test_an_earlier_demos_rows_stop_dbt_once_real_sources_are_configured(env, tmp_path):
    """`make demo` then real credentials: the demo's fictional rows must not reach the marts."""
    from connectors.sandbox.brand import SANDBOX_META_AD_ACCOUNT_ID
    from orchestration.sources import check_no_sandbox_rows

    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    create_missing_raw_tables(conn)
    conn.execute(
        "insert into raw_ga4.sessions_daily (date, _property_id) values "
        "('2026-01-01', ?), ('2026-01-02', ?), ('2026-02-01', '999')",
        [SANDBOX_GA4_PROPERTY_ID, SANDBOX_GA4_PROPERTY_ID],
    )
    conn.execute(
        "insert into raw_meta.ad_insights_daily (date, _account_id) values ('2026-01-01', ?)",
        [SANDBOX_META_AD_ACCOUNT_ID],
    )
    check_no_sandbox_rows(conn, source_plan())  # the demo itself: nothing real, nothing to refuse

    env(GOOGLE_APPLICATION_CREDENTIALS="/k.json", GA4_PROPERTY_ID="999")
    with pytest.raises(RuntimeError) as caught:
        check_no_sandbox_rows(conn, source_plan())
    message = str(caught.value)
    fix = f"delete from raw_ga4.sessions_daily where _property_id = '{SANDBOX_GA4_PROPERTY_ID}'"
    assert f"raw_ga4.sessions_daily (2 rows: {fix})" in message
    assert "raw_meta.ad_insights_daily (1 rows" in message and "WAREHOUSE_PATH=" in message

    env(SANDBOX_SOURCES="meta")  # Meta from the sandbox on purpose: only GA4's stale rows count
    with pytest.raises(RuntimeError) as caught:
        check_no_sandbox_rows(conn, source_plan())
    assert "raw_ga4.sessions_daily" in str(caught.value) and "raw_meta" not in str(caught.value)

    conn.execute("delete from raw_ga4.sessions_daily where _property_id = ?", [SANDBOX_GA4_PROPERTY_ID])
    check_no_sandbox_rows(conn, source_plan())
    conn.close()
