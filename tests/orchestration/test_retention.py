"""Retention as the in-process commands apply it (orchestration/retention.py `apply_retention`):
runs older than the period by the clock the caller passes are deleted with their event database
file, compute logs and dbt build folders, old run logs go, and everything newer stays. A real
instance (Dagster's embedded SQLite layout in a temporary DAGSTER_HOME) and real runs that
materialize an asset and evaluate its check."""

import logging
import os
import sqlite3
import time
import uuid
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from orchestration.retention import (
    CHECK_EXECUTIONS_TABLE,
    KEEP_RUN_LOGS,
    apply_retention,
    delete_check_results_of_deleted_runs,
    prune_run_logs,
)
from orchestration.serve import postgres_url
from tests.orchestration.test_deployment import postgres  # noqa: F401 - the PostgreSQL server fixture


@dg.asset(check_specs=[dg.AssetCheckSpec("has_rows", asset="tiny_table")])
def tiny_table():
    yield dg.MaterializeResult(
        metadata={"rows": 3}, check_results=[dg.AssetCheckResult(check_name="has_rows", passed=True)]
    )


tiny = dg.define_asset_job("tiny").resolve(
    asset_graph=dg.Definitions(assets=[tiny_table]).resolve_asset_graph()
)


CHECK = dg.AssetCheckKey(dg.AssetKey("tiny_table"), "has_rows")


def _check_history(instance: dg.DagsterInstance) -> list[str]:
    """The run ids of every stored result of the check, sorted."""
    history = instance.event_log_storage.get_asset_check_execution_history(CHECK, limit=100)
    return sorted(e.run_id for e in history)


def _touch(path, written: datetime, text: str = "x\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (written.timestamp(), written.timestamp()))
    return path


def test_apply_retention_removes_runs_files_and_logs_older_than_the_period_and_keeps_newer(tmp_path):
    home, logs, target = tmp_path / "home", tmp_path / "logs", tmp_path / "target"
    home.mkdir()
    events = home / "history" / "runs"
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        old = tiny.execute_in_process(instance=instance).run_id
        time.sleep(0.05)
        boundary = datetime.now(timezone.utc)
        time.sleep(0.05)
        recent = tiny.execute_in_process(instance=instance).run_id
        assert (events / f"{old}.db").stat().st_size > 0 and (home / "storage" / old).is_dir()
        # A run deleted earlier by other means (the UI, `dagster run delete`): Dagster left its file.
        gone = str(uuid.uuid4())
        orphan = _touch(events / f"{gone}.db", boundary - timedelta(days=1))
        not_a_run = _touch(events / "notes.db", boundary - timedelta(days=90))
        old_log = _touch(logs / "demo-20261101T020000Z.log", boundary - timedelta(hours=1))
        recent_log = _touch(logs / "demo-20261201T020000Z.log", boundary + timedelta(hours=1))
        service_log = _touch(logs / "daemon.log", boundary - timedelta(days=90))
        # dbt's target/: one build folder per run (dagster-dbt's naming), beside the manifest.
        old_build = target / f"dbt_models-{old[:7]}-1a2b3c4"
        recent_build = target / f"dbt_models-{recent[:7]}-5d6e7f8"
        for folder in (old_build, recent_build):
            _touch(folder / "run_results.json", boundary, "{}")
        manifest = _touch(target / "manifest.json", boundary, "{}")

        # A clock 3 days after the boundary, with 3 days of retention: the cutoff is the boundary.
        removed = apply_retention(
            instance, boundary + timedelta(days=3), days=3, log_dir=logs, dbt_target_dir=target
        )

        assert removed.cutoff == boundary
        assert removed.runs == [old]
        assert [r.dagster_run.run_id for r in instance.get_run_records()] == [recent]
        assert instance.get_run_by_id(old) is None and instance.all_logs(recent) != []
        assert sorted(removed.event_files) == sorted([events / f"{old}.db", orphan])
        assert not (events / f"{old}.db").exists(), "the deleted run's event database is left behind"
        assert not orphan.exists()
        assert (events / f"{recent}.db").stat().st_size > 0 and (events / "index.db").is_file()
        assert not_a_run.exists(), "a file not named by a run id is not a run's database"
        assert not (home / "storage" / old).exists() and (home / "storage" / recent).is_dir()
        assert removed.dbt_folders == [old_build]
        assert not old_build.exists() and recent_build.is_dir() and manifest.exists()
        assert removed.logs == [old_log]
        assert not old_log.exists() and recent_log.exists()
        assert service_log.exists(), "the services' logs are rotated by size, not pruned here"
        materialized = instance.get_latest_materialization_event(dg.AssetKey("tiny_table"))
        assert materialized is not None and materialized.run_id == recent
        # Dagster's delete keeps the run's check result; retention deletes it, not the kept run's.
        assert _check_history(instance) == [recent]
        assert removed.check_results == 1
        line = removed.describe()
        assert "deleted 1 runs" in line and "2 run event files" in line and "1 dbt build folders" in line
        assert "1 asset check results of deleted runs" in line
        assert "1 run logs" in line and "DAGSTER_RETENTION_DAYS=3" in line

        # By the wall clock nothing is 3 days old: a second pass removes nothing.
        again = apply_retention(instance, days=3, log_dir=logs, dbt_target_dir=target)
        assert not again.removed_anything
        assert [r.dagster_run.run_id for r in instance.get_run_records()] == [recent]
        assert (events / f"{recent}.db").is_file() and recent_build.is_dir() and recent_log.exists()


def test_prune_run_logs_keeps_the_newest_n_however_young(tmp_path):
    now = datetime.now(timezone.utc)
    written = [
        _touch(tmp_path / f"demo-{i:02d}.log", now - timedelta(minutes=i)) for i in range(KEEP_RUN_LOGS + 3)
    ]
    other = _touch(tmp_path / "notes.txt", now - timedelta(days=400))

    removed = prune_run_logs(tmp_path, cutoff=now - timedelta(days=30))

    assert removed == written[KEEP_RUN_LOGS:]  # the three oldest, newest first
    assert sorted(p.name for p in tmp_path.glob("*.log")) == [p.name for p in written[:KEEP_RUN_LOGS]]
    assert other.exists()
    assert prune_run_logs(tmp_path / "missing", cutoff=now) == []


def test_run_event_files_are_left_alone_when_the_instance_does_not_keep_one_file_per_run(tmp_path):
    # One SQLite file for every run (as PostgreSQL keeps one database): a history/runs folder left
    # by an earlier per-run SQLite instance under the same DAGSTER_HOME is not this instance's.
    home = tmp_path / "home"
    consolidated = {
        "module": "dagster.core.storage.event_log",
        "class": "ConsolidatedSqliteEventLogStorage",
        "config": {"base_dir": str(home / "consolidated")},
    }
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home), overrides={"event_log_storage": consolidated}) as instance:
        run = tiny.execute_in_process(instance=instance).run_id
        earlier = home / "history" / "runs"
        index = _touch(earlier / "index.db", datetime.now(timezone.utc) - timedelta(days=90))
        leftover = _touch(earlier / f"{uuid.uuid4()}.db", datetime.now(timezone.utc) - timedelta(days=90))

        removed = apply_retention(
            instance,
            datetime.now(timezone.utc) + timedelta(days=1),
            days=1,
            log_dir=tmp_path / "logs",
            dbt_target_dir=tmp_path / "target",
        )

        assert removed.runs == [run] and removed.event_files == []
        assert instance.get_run_records() == []
        assert index.exists() and leftover.exists()


def _runs_before_and_after_a_boundary(instance: dg.DagsterInstance) -> tuple[list[str], datetime, list[str]]:
    """Two runs before a boundary and two after it, each with its check result."""
    old = [tiny.execute_in_process(instance=instance).run_id for _ in range(2)]
    time.sleep(0.05)
    boundary = datetime.now(timezone.utc)
    time.sleep(0.05)
    recent = [tiny.execute_in_process(instance=instance).run_id for _ in range(2)]
    return old, boundary, recent


def _prove_check_results_of_deleted_runs_go_and_kept_runs_stay(instance, tmp_path) -> list[str]:
    old, boundary, recent = _runs_before_and_after_a_boundary(instance)
    # A run deleted earlier by other means (the UI, `dagster run delete`): Dagster kept its result.
    earlier = tiny.execute_in_process(instance=instance).run_id
    instance.delete_run(earlier)
    # A run created and not started yet: Dagster records its check as planned, and it is kept.
    queued = instance.create_run_for_job(tiny).run_id
    assert _check_history(instance) == sorted([*old, *recent, earlier, queued])

    removed = apply_retention(
        instance,
        boundary + timedelta(days=2),
        days=2,
        log_dir=tmp_path / "logs",
        dbt_target_dir=tmp_path / "t",
    )

    assert sorted(removed.runs) == sorted(old)
    assert removed.check_results == 3
    assert _check_history(instance) == sorted([*recent, queued])
    assert {r.dagster_run.run_id for r in instance.get_run_records()} == {*recent, queued}
    # The kept runs' results still say what the UI shows: passed, against their materialization.
    history = instance.event_log_storage.get_asset_check_execution_history(CHECK, limit=100)
    assert {e.run_id: e.status.value for e in history} == {
        **dict.fromkeys(recent, "SUCCEEDED"),
        queued: "PLANNED",
    }
    # A second pass finds nothing more to delete.
    assert delete_check_results_of_deleted_runs(instance) == 0
    assert _check_history(instance) == sorted([*recent, queued])
    return [*recent, queued]


def test_retention_deletes_the_check_results_of_deleted_runs_on_sqlite(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        kept = _prove_check_results_of_deleted_runs_go_and_kept_runs_stay(instance, tmp_path)
        # Gone from Dagster's SQLite index itself, not only from what its API shows.
        with sqlite3.connect(home / "history" / "runs" / "index.db") as conn:
            stored = {r for (r,) in conn.execute(f"select run_id from {CHECK_EXECUTIONS_TABLE}")}
        assert stored == set(kept)


def test_retention_deletes_the_check_results_of_deleted_runs_on_postgresql(tmp_path, postgres):  # noqa: F811
    url = postgres_url({"DAGSTER_PG_URL": postgres})
    overrides = {"storage": {"postgres": {"postgres_url": url}}}
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home"), overrides=overrides) as instance:
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        instance.wipe()
        _prove_check_results_of_deleted_runs_go_and_kept_runs_stay(instance, tmp_path)


@pytest.mark.parametrize(
    "change",
    [
        f"alter table {CHECK_EXECUTIONS_TABLE} rename to check_runs",
        f"alter table {CHECK_EXECUTIONS_TABLE} rename column run_id to run_key",
    ],
    ids=["table renamed", "run_id column renamed"],
)
def test_a_future_dagster_without_the_table_or_column_gets_one_warning_and_retention_still_runs(
    tmp_path, caplog, change
):
    home = tmp_path / "home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        old, boundary, recent = _runs_before_and_after_a_boundary(instance)
        with sqlite3.connect(home / "history" / "runs" / "index.db") as conn:
            conn.execute(change)
        caplog.set_level(logging.WARNING)

        removed = apply_retention(
            instance,
            boundary + timedelta(days=2),
            days=2,
            log_dir=tmp_path / "logs",
            dbt_target_dir=tmp_path / "t",
        )

        assert sorted(removed.runs) == sorted(old) and removed.check_results == 0
        assert {r.dagster_run.run_id for r in instance.get_run_records()} == set(recent)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, warnings
        assert CHECK_EXECUTIONS_TABLE in warnings[0] and "left in place" in warnings[0]
