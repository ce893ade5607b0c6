"""Data-quality gates: each bad-data mode of the sandbox is refused or flagged; BI keeps its snapshot.

One good load of 12 days of the streams under test publishes a snapshot; each test then drives one
mode through a real Dagster run of the affected raw asset plus the serving publish, and asserts
that the batch was refused or flagged, that the check says why, and that the snapshot is untouched.
One test goes through dbt: data every raw suite accepts but a dbt reconciliation refuses. The last
test asks the Dagster webserver what the asset pages show of all those runs (run the whole module).
"""

from __future__ import annotations

import copy
import hashlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import requests
import yaml
from dagster_dbt import DbtCliResource

from connectors.sandbox import ensure_sandbox
from orchestration.dbt.assets import DBT_PROJECT, dbt_models
from orchestration.definitions import build_definitions, source_assets, source_resources
from orchestration.jobs import range_tags
from orchestration.partitions import daily_partitions
from orchestration.quality.checks import build_freshness_checks
from orchestration.serving.assets import build_serving_asset, failed_gates, upstream_check_keys
from orchestration.settings import PROJECT_ROOT
from orchestration.warehouse import DuckDBWarehouse

DAYS = 12
SERVING = dg.AssetKey(["serving", "marts_snapshot"])
GSC_QUERIES = dg.AssetKey(["gsc", "queries_daily"])
GSC_TOTALS = dg.AssetKey(["gsc", "totals_daily"])
GA4_SESSIONS = dg.AssetKey(["ga4", "sessions_daily"])
META_INSIGHTS = dg.AssetKey(["meta", "ad_insights_daily"])
SLACK_MESSAGES = dg.AssetKey(["slack", "messages"])
MART_KEYS = [key for key in dbt_models.keys if dbt_models.group_names_by_key.get(key) == "marts"]


@pytest.fixture(scope="module")
def good(tmp_path_factory, settings_for):
    """A 12-day warehouse and a published snapshot from one good refresh."""
    settings = settings_for(tmp_path_factory.mktemp("quality"), days=DAYS)
    defs = build_definitions(settings)
    partitions = daily_partitions(settings)
    keys = defs.resolve_job_def("refresh_warehouse").partitions_def.get_partition_keys()
    config = yaml.safe_load((PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text())
    with dg.instance_for_test(overrides=config) as instance:
        # Probe runs define only the assets under test (the dbt graph alone takes seconds to
        # resolve), with the serving asset built exactly as the definitions build it.
        serving = defs.resolve_assets_def(SERVING)
        gate_keys = upstream_check_keys(MART_KEYS, [*source_assets(partitions), dbt_models])
        wanted = {GA4_SESSIONS, GSC_QUERIES, GSC_TOTALS, META_INSIGHTS}
        streams = [
            a
            for a in source_assets(partitions)
            if isinstance(a, dg.AssetsDefinition) and a.keys & (wanted | {SLACK_MESSAGES})
        ]
        publish = build_serving_asset(MART_KEYS, settings.serving_path, gate_keys)
        parts = {
            "assets": [*streams, publish],
            "asset_checks": build_freshness_checks(streams),
            "resources": {
                "warehouse": DuckDBWarehouse(path=str(settings.warehouse_path)),
                **source_resources(),
            },
        }
        # The same with the real dbt project, for the runs that build models (its graph takes
        # seconds to resolve, so only the dbt test pays for it).
        dbt_parts = {
            **parts,
            "assets": [*streams, dbt_models, publish],
            "resources": {**parts["resources"], "dbt": DbtCliResource(project_dir=DBT_PROJECT)},
        }
        assert serving.keys == publish.keys
        assert {
            dg.AssetCheckKey(GSC_QUERIES, "queries_daily_expectations"),
            dg.AssetCheckKey(GA4_SESSIONS, "sessions_daily_expectations"),
        } <= set(gate_keys)
        good = {
            "settings": settings,
            "parts": parts,
            "dbt_parts": dbt_parts,
            "instance": instance,
            "keys": keys,
            "gate_keys": gate_keys,
        }
        loaded = run(good, sorted(wanted, key=str), tags=range_tags(keys[0], keys[-1]))
        assert loaded.success
        # Building every model is the end-to-end test's business (minutes); a stand-in mart built
        # from the raw rows gives the publish something real to copy, through the real serving asset.
        with duckdb.connect(str(settings.warehouse_path)) as conn:
            conn.execute("create schema if not exists marts")
            conn.execute(
                "create table marts.mart_search_daily as select date, sum(clicks) as clicks, "
                "sum(impressions) as impressions from raw_gsc.queries_daily group by date"
            )
        assert run(good, [SERVING]).success
        yield good


@pytest.fixture
def sandbox():
    server = ensure_sandbox()
    server.clear_faults()
    yield server
    server.clear_faults()


def run(
    good, selection, partition_key: str | None = None, tags=None, dbt: bool = False
) -> dg.ExecuteInProcessResult:
    job = dg.define_asset_job("quality_probe", selection=selection)
    defs = dg.Definitions(**good["dbt_parts" if dbt else "parts"], jobs=[job])
    return defs.resolve_job_def("quality_probe").execute_in_process(
        instance=good["instance"], partition_key=partition_key, tags=tags, raise_on_error=False
    )


def snapshot_state(good) -> tuple[str, str]:
    """The snapshot's run id and a digest of every table's contents."""
    with duckdb.connect(str(good["settings"].serving_path), read_only=True) as conn:
        run_id = conn.execute("select run_id from _snapshot_info").fetchone()[0]
        digest = hashlib.sha256()
        tables = [
            r[0]
            for r in conn.execute("select table_name from information_schema.tables order by 1").fetchall()
        ]
        for table in tables:
            if table == "_snapshot_info":
                continue
            rows = conn.execute(f"select * from {table} order by all").fetchall()
            digest.update(f"{table}:{rows!r}".encode())
    return run_id, digest.hexdigest()


def day_rows(good, table: str, day: str) -> tuple[int, set[str]]:
    with duckdb.connect(str(good["settings"].warehouse_path), read_only=True) as conn:
        n, runs = conn.execute(
            f"select count(*), list(distinct _run_id) from {table} where date = ?", [day]
        ).fetchone()
    return n, set(runs or [])


def check_result(result: dg.ExecuteInProcessResult, name: str):
    found = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    assert found, f"no evaluation of {name}"
    return found[-1]


def gsc_rows(key_count: int, change):
    """A transform of Search Console answers that changes only the answers whose rows have
    `key_count` keys."""

    def transform(payload):
        rows = payload.get("rows") or []
        if rows and len(rows[0].get("keys", [])) == key_count:
            payload = copy.deepcopy(payload)
            payload["rows"] = change(payload["rows"])
        return payload

    return transform


def gsc_query_rows(change):
    """A transform of Search Console answers that changes only the query rows (5 keys), not totals."""
    return gsc_rows(5, change)


def gsc_total_rows(change):
    """A transform of Search Console answers that changes only the date totals (1 key)."""
    return gsc_rows(1, change)


def inject(sandbox, path: str, transform) -> None:
    """Every sandbox answer on `path` goes through `transform` until the faults are cleared."""
    sandbox.inject_fault(path, 200, times=None, kind="transform", transform=transform)


def failure_messages(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """Each failed step's key and its error message with the failure's metadata."""
    return {
        e.step_key: e.step_failure_data.error.message + str(e.step_failure_data.user_failure_data)
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE"
    }


def ga4_session_rows(change):
    def transform(payload):
        names = [h.get("name") for h in payload.get("dimensionHeaders", [])]
        if "deviceCategory" in names:
            payload = copy.deepcopy(payload)
            payload["rows"] = change(payload.get("rows") or [])
            payload["rowCount"] = len(payload["rows"])
        return payload

    return transform


@dataclass(frozen=True)
class Gate:
    """A raw asset's blocking suite: the table it guards, the sandbox path its answers come from,
    and the day of the good load (an index into its partition keys) the tests refuse a batch for."""

    asset: dg.AssetKey
    table: str
    path: str
    check_name: str
    day: int


GSC_GATE = Gate(GSC_QUERIES, "raw_gsc.queries_daily", "searchAnalytics", "queries_daily_expectations", -4)
GA4_GATE = Gate(GA4_SESSIONS, "raw_ga4.sessions_daily", ":runReport", "sessions_daily_expectations", -1)


def assert_refused(good, sandbox, gate: Gate, transform, expectation: str, words: list[str]):
    """Run the gate's asset and the publish on answers changed by `transform`: the check fails with
    `expectation` and `words` in its description, and neither the day nor the snapshot changes."""
    day = good["keys"][gate.day]
    before_snapshot = snapshot_state(good)
    before_day = day_rows(good, gate.table, day)
    assert before_day[0] > 0
    inject(sandbox, gate.path, transform)
    result = run(good, [gate.asset, SERVING], partition_key=day)
    assert not result.success
    # Nothing downstream ran: the publish was skipped in this run.
    assert SERVING not in {e.asset_key for e in result.get_asset_materialization_events()}
    evaluation = check_result(result, gate.check_name)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["expectation"].value == expectation
    for word in words:
        assert word in evaluation.description, evaluation.description
    # The batch was not committed: the day keeps the rows of the good run, and BI its snapshot.
    assert day_rows(good, gate.table, day) == before_day
    assert snapshot_state(good) == before_snapshot
    return evaluation


def test_a_failed_gate_keeps_the_snapshot_until_a_good_run_across_runs(good, sandbox):
    day = good["keys"][-4]
    before = snapshot_state(good)
    inject(sandbox, "searchAnalytics", gsc_query_rows(lambda rows: [{**rows[0], "clicks": -3}, *rows[1:]]))
    assert not run(good, [GSC_QUERIES, SERVING], partition_key=day).success
    sandbox.clear_faults()

    # A later run of the publish alone still refuses: Dagster's blocking covers one run only.
    refused = run(good, [SERVING])
    assert not refused.success
    failure = next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.step_failure_data.error.message + str(failure.step_failure_data.user_failure_data)
    assert "queries_daily_expectations" in message and "clicks" in message
    assert snapshot_state(good) == before

    # The source is fixed and the day re-run: the check passes and the publish goes through.
    fixed = run(good, [GSC_QUERIES, SERVING], partition_key=day)
    assert fixed.success
    assert check_result(fixed, "queries_daily_expectations").passed
    assert snapshot_state(good)[0] == fixed.run_id


GSC_MODELS = [
    dg.AssetKey(["staging", "stg_gsc__queries"]),
    dg.AssetKey(["staging", "stg_gsc__totals"]),
    dg.AssetKey(["intermediate", "int_search_queries_branded"]),
    dg.AssetKey(["marts", "mart_branded_search_daily"]),
]
RECONCILIATION = "assert_gsc_query_clicks_within_date_totals"


def test_a_failed_dbt_reconciliation_stops_the_publish_in_its_run_and_in_later_runs(good, sandbox):
    day = good["keys"][-4]
    with duckdb.connect(str(good["settings"].warehouse_path), read_only=True) as conn:
        query_clicks = conn.execute(
            "select sum(clicks) from raw_gsc.queries_daily where date = ?", [day]
        ).fetchone()[0]
    assert query_clicks > 0
    before = snapshot_state(good)
    # Search Console's date total drops to 0 clicks: every row of both streams still meets its raw
    # suite (0 clicks is in range and below impressions); only dbt sees the query rows exceed it.
    inject(
        sandbox,
        "searchAnalytics",
        gsc_total_rows(lambda rows: [{**row, "clicks": 0, "ctr": 0.0} for row in rows]),
    )
    # Of the dbt data tests on these models, only the reconciliation: the others (~40) are not what
    # this test checks, and the reconciliation alone stops dbt before the models after it.
    others = [c for c in dbt_models.check_keys if c.asset_key in GSC_MODELS and c.name != RECONCILIATION]
    selection = dg.AssetSelection.assets(GSC_TOTALS, *GSC_MODELS, SERVING) - dg.AssetSelection.checks(*others)
    broken = run(good, selection, partition_key=day, dbt=True)
    sandbox.clear_faults()
    assert not broken.success
    assert check_result(broken, "totals_daily_expectations").passed  # the raw gate let it through
    assert {e.check_name for e in broken.get_asset_check_evaluations() if e.asset_key in GSC_MODELS} == {
        RECONCILIATION
    }
    evaluation = check_result(broken, RECONCILIATION)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["dagster_dbt/failed_row_count"].value == 1
    # dbt stopped at the failed test (the models after it were skipped) and so did the publish.
    materialized = {e.asset_key for e in broken.get_asset_materialization_events()}
    assert GSC_TOTALS in materialized and SERVING not in materialized
    assert dg.AssetKey(["marts", "mart_branded_search_daily"]) not in materialized
    failures = failure_messages(broken)
    assert list(failures) == ["dbt_models"] and RECONCILIATION in failures["dbt_models"]
    assert snapshot_state(good) == before

    # A later run that builds something else (a seed the user edited) and not these models: dbt
    # passes, the publish still refuses: the reconciliation's last evaluation stands failed.
    later = run(good, [dg.AssetKey(["seeds", "paid_mediums"]), SERVING], dbt=True)
    assert not later.success
    failures = failure_messages(later)
    assert list(failures) == ["serving__marts_snapshot"]
    message = failures["serving__marts_snapshot"]
    assert f"staging/stg_gsc__queries:{RECONCILIATION}" in message
    assert broken.run_id[:8] in message and "dbt test failed on 1 row(s)" in message
    assert snapshot_state(good) == before
    # (Lifting the gate once the check passes again is the same code path as for a raw check: see
    # test_a_failed_gate_keeps_the_snapshot_until_a_good_run_across_runs.)


def test_null_keys_are_refused(good, sandbox):
    def null_query(rows):
        rows[1]["keys"][1] = None
        return rows

    nulls = gsc_query_rows(null_query)
    evaluation = assert_refused(
        good, sandbox, GSC_GATE, nulls, "expect_column_values_to_not_be_null", ["query"]
    )
    assert evaluation.metadata["bad_rows"].value == 1


def test_negative_clicks_are_refused(good, sandbox):
    negative = gsc_query_rows(lambda rows: [{**rows[0], "clicks": -7}, *rows[1:]])
    evaluation = assert_refused(
        good, sandbox, GSC_GATE, negative, "expect_column_values_to_be_between", ["clicks"]
    )
    assert evaluation.metadata["samples"].value == ["-7"]


def test_duplicate_rows_are_refused(good, sandbox):
    doubled = gsc_query_rows(lambda rows: rows + copy.deepcopy(rows[:2]))
    evaluation = assert_refused(
        good, sandbox, GSC_GATE, doubled, "expect_compound_columns_to_be_unique", ["duplicate keys"]
    )
    assert evaluation.metadata["bad_rows"].value == 4  # both copies of each duplicated row


def test_dates_outside_the_partition_are_refused(good, sandbox):
    """Search Console is asked for a range of days with the date dimension and its rows are split
    into days on our side: a row dated outside the days asked breaks the connector's contract and
    the answer is refused whole, naming the range asked and the dates it held (the gate's
    in-partition expectation stays behind it)."""
    day = good["keys"][GSC_GATE.day]
    stray = (date.fromisoformat(day) - timedelta(days=30)).isoformat()

    def move(rows):
        rows[0]["keys"][0] = stray
        return rows

    moved = gsc_query_rows(move)
    evaluation = assert_refused(
        good, sandbox, GSC_GATE, moved, "api_answer_matches_contract", [f"query of {day}..{day}", stray]
    )
    assert f"holds rows of {stray}..{day}" in evaluation.metadata["detail"].value


def test_a_renamed_column_is_refused(good, sandbox):
    def rename(rows):
        return [{("clickCount" if k == "clicks" else k): v for k, v in row.items()} for row in rows]

    evaluation = assert_refused(
        good, sandbox, GSC_GATE, gsc_query_rows(rename), "api_answer_matches_contract", ["'clicks'"]
    )
    assert "clicks" in evaluation.metadata["detail"].value


def test_a_missing_day_is_refused(good, sandbox):
    empty = ga4_session_rows(lambda rows: [])
    words = ["missing day", "0 rows"]
    evaluation = assert_refused(good, sandbox, GA4_GATE, empty, "expect_table_row_count_to_be_between", words)
    assert evaluation.metadata["bad_rows"].value == 0


def test_a_volume_collapse_is_refused(good, sandbox):
    collapsed = ga4_session_rows(lambda rows: rows[: max(1, len(rows) // 10)])
    words = ["volume collapse", "trailing median"]
    assert_refused(good, sandbox, GA4_GATE, collapsed, "expect_table_row_count_to_be_between", words)


def slack_messages_before(cutoff: datetime):
    """A transform of Slack answers that drops every message posted at or after `cutoff`."""
    last_ts = cutoff.timestamp()

    def transform(payload):
        if isinstance(payload, dict) and isinstance(payload.get("messages"), list):
            payload = {**payload, "messages": [m for m in payload["messages"] if float(m["ts"]) < last_ts]}
        return payload

    return transform


def test_a_stale_source_warns_without_blocking(good, sandbox):
    # Slack stops delivering: nothing posted in the last 5 days reaches the API (a bot removed from
    # the channels, a workspace export that stopped). A community has quiet days, so the empty days
    # pass the suite (it has no volume check) and only the freshness check can notice.
    stale_from = date.today() - timedelta(days=5)
    cutoff = datetime(stale_from.year, stale_from.month, stale_from.day, tzinfo=timezone.utc)
    for method in ("conversations.history", "conversations.replies"):
        inject(sandbox, method, slack_messages_before(cutoff))
    before = snapshot_state(good)
    keys = good["keys"]
    result = run(good, [SLACK_MESSAGES], tags=range_tags(keys[0], keys[-1]))
    assert result.success
    assert check_result(result, "messages_expectations").passed
    evaluation = check_result(result, "messages_freshness")
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    last_day = date.fromisoformat(evaluation.metadata["last_loaded_day"].value)
    assert last_day < stale_from and evaluation.metadata["days_behind"].value >= 5
    assert evaluation.description.startswith(f"raw_slack.messages is stale: last loaded day {last_day}")
    assert "(allowed 3)" in evaluation.description
    # Stale data is old, not wrong: the publish gate does not count a warning.
    assert not [f for f in failed_gates(good["instance"], good["gate_keys"]) if "messages_freshness" in f]
    assert snapshot_state(good) == before


# --- What the Dagster UI shows ----------------------------------------------------------------------
# The asset pages read the webserver's GraphQL API; this test starts `dagster-webserver` on the
# instance the runs above wrote to, with the real code location (workspace.yaml), and asks it what
# the Checks tab shows: every check, its last result and its history.

CHECKS_QUERY = """
query {
  assetNodes {
    assetKey { path }
    assetChecksOrError {
      ... on AssetChecks { checks { name blocking description } }
    }
  }
}
"""

LATEST_QUERY = """
query Latest($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode {
      assetChecksOrError {
        ... on AssetChecks {
          checks {
            name
            executionForLatestMaterialization { runId status evaluation { success severity description } }
          }
        }
      }
    }
  }
}
"""

HISTORY_QUERY = """
query History($key: AssetKeyInput!, $check: String!) {
  assetCheckExecutions(assetKey: $key, checkName: $check, limit: 50) {
    runId
    status
    evaluation { success severity description metadataEntries { label } }
  }
}
"""


@pytest.fixture
def webserver(good, tmp_path):
    """`dagster-webserver` over the module's instance and the project's code location; its /graphql URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = good["settings"]
    env = {
        **os.environ,
        "DAGSTER_HOME": good["instance"].root_directory,
        "WAREHOUSE_PATH": str(settings.warehouse_path),
        "SERVING_PATH": str(settings.serving_path),
        "HISTORY_START_DATE": settings.history_start.isoformat(),
        "NIGHTLY_SCHEDULE_STATUS": "stopped",
    }
    log = (tmp_path / "webserver.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml"]
        + ["-h", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline = time.monotonic() + 180
        while True:  # up, and the code location loaded (its assets listed)
            assert server.poll() is None, (tmp_path / "webserver.log").read_text()[-3000:]
            try:
                nodes = graphql(url, CHECKS_QUERY)["assetNodes"]
                if nodes:
                    break
            except (requests.ConnectionError, KeyError):
                pass
            assert time.monotonic() < deadline, (tmp_path / "webserver.log").read_text()[-3000:]
            time.sleep(1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def graphql(url: str, query: str, **variables) -> dict:
    answer = requests.post(url, json={"query": query, "variables": variables}, timeout=60).json()
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


def test_every_check_with_its_last_result_and_history_shows_on_the_asset_pages(good, webserver):
    shown = {
        (tuple(node["assetKey"]["path"]), check["name"]): check
        for node in graphql(webserver, CHECKS_QUERY)["assetNodes"]
        for check in (node["assetChecksOrError"] or {}).get("checks", [])
    }
    # Every check of the code location is listed, blocking as defined, with its description.
    defs = build_definitions(good["settings"])
    specs = [
        spec for item in defs.assets if isinstance(item, dg.AssetsDefinition) for spec in item.check_specs
    ]
    specs += [spec for checks in defs.asset_checks for spec in checks.check_specs]
    assert len(specs) > 300
    for spec in specs:
        check = shown[(tuple(spec.asset_key.path), spec.name)]
        assert check["blocking"] == spec.blocking, spec.key
        assert check["description"] == spec.description, spec.key
    assert shown[("gsc", "queries_daily"), "queries_daily_expectations"]["blocking"] is True
    assert shown[("slack", "messages"), "messages_freshness"]["blocking"] is False
    assert shown[("staging", "stg_gsc__queries"), RECONCILIATION]["blocking"] is True

    def history(path, check):
        return graphql(webserver, HISTORY_QUERY, key={"path": path}, check=check)["assetCheckExecutions"]

    def latest(path):
        node = graphql(webserver, LATEST_QUERY, key={"path": path})["assetNodeOrError"]
        return {
            c["name"]: c["executionForLatestMaterialization"] for c in node["assetChecksOrError"]["checks"]
        }

    # A raw gate: its history holds the good loads and each refused batch with what was wrong.
    runs = history(["gsc", "queries_daily"], "queries_daily_expectations")
    statuses = [r["status"] for r in runs]
    assert "SUCCEEDED" in statuses and statuses.count("FAILED") >= 5
    refused = [r["evaluation"] for r in runs if r["status"] == "FAILED"]
    assert all(e["severity"] == "ERROR" and "nothing committed" in e["description"] for e in refused)
    assert {"expectation", "bad_rows", "samples"} <= {m["label"] for m in refused[-1]["metadataEntries"]}
    # Its last result is the last refusal (the renamed column), not the older good load.
    last = latest(["gsc", "queries_daily"])["queries_daily_expectations"]
    assert last["status"] == "FAILED" and last["runId"] == runs[0]["runId"]
    assert "broke the connector's contract" in last["evaluation"]["description"]

    # A dbt test: its failure is the last result of the model it guards.
    runs = history(["staging", "stg_gsc__queries"], RECONCILIATION)
    assert runs[0]["status"] == "FAILED" and runs[0]["evaluation"]["severity"] == "ERROR"
    last = latest(["staging", "stg_gsc__queries"])[RECONCILIATION]
    assert last["status"] == "FAILED" and last["runId"] == runs[0]["runId"]

    # A freshness warning.
    last = latest(["slack", "messages"])["messages_freshness"]
    assert last["status"] == "FAILED" and last["evaluation"]["severity"] == "WARN"
    assert "raw_slack.messages is stale" in last["evaluation"]["description"]
