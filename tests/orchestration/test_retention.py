"""Retention as the in-process commands apply it (orchestration/retention.py `apply_retention`):
runs older than the period by the clock the caller passes are deleted with their event database
file, compute logs and dbt build folders, old run logs go, and everything newer stays. A real
instance (Dagster's embedded SQLite layout in a temporary DAGSTER_HOME) and real runs that
materialize an asset and evaluate its check."""

import os
import time
import uuid
from datetime import datetime, timedelta, timezone

import dagster as dg

from orchestration.retention import KEEP_RUN_LOGS, apply_retention, prune_run_logs


@dg.asset(check_specs=[dg.AssetCheckSpec("has_rows", asset="tiny_table")])
def tiny_table():
    yield dg.MaterializeResult(
        metadata={"rows": 3}, check_results=[dg.AssetCheckResult(check_name="has_rows", passed=True)]
    )


tiny = dg.define_asset_job("tiny").resolve(
    asset_graph=dg.Definitions(assets=[tiny_table]).resolve_asset_graph()
)


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
        # What Dagster keeps and no public call deletes (bench/README.md measures it): the deleted
        # run's check result. If this fails, Dagster now deletes them: update retention's docstring.
        check = dg.AssetCheckKey(dg.AssetKey("tiny_table"), "has_rows")
        history = instance.event_log_storage.get_asset_check_execution_history(check, limit=10)
        assert sorted(e.run_id for e in history) == sorted([old, recent])
        line = removed.describe()
        assert "deleted 1 runs" in line and "2 run event files" in line and "1 dbt build folders" in line
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
