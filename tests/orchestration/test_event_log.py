"""orchestration.event_log: the project's instance (dagster_home/dagster.yaml) records events through
SqliteEventLogKeepingEngines; what it writes is Dagster's own SQLite event log, readable as such."""

import os
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from orchestration import event_log
from orchestration.event_log import SqliteEventLogKeepingEngines

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-03-01")


@dg.asset(key=["demo", "daily"], partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def daily(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"days": len(context.partition_keys)})


def _project_instance():
    config = yaml.safe_load((PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text())
    return dg.instance_for_test(overrides=config)


def _range(first: str, last: str) -> dict:
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def test_the_project_instance_records_a_range_in_dagsters_own_files():
    with _project_instance() as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, SqliteEventLogKeepingEngines)
        # Dagster's default place, under this instance's DAGSTER_HOME
        assert storage._base_dir == os.path.join(os.environ["DAGSTER_HOME"], "history", "runs")
        result = dg.materialize([daily], instance=instance, tags=_range("2026-01-01", "2026-01-31"))
        assert result.success
        records = instance.fetch_materializations(dg.AssetKey(["demo", "daily"]), limit=100).records
        assert sorted(r.partition_key for r in records) == [f"2026-01-{d:02d}" for d in range(1, 32)]

        # The same files through Dagster's own class: nothing our class wrote is foreign to it.
        plain = SqliteEventLogStorage(storage._base_dir)
        logs = plain.get_logs_for_run(result.run_id)
        assert sum(1 for e in logs if e.dagster_event and e.dagster_event.is_step_materialization) == 31
        assert plain.get_materialized_partitions(dg.AssetKey(["demo", "daily"])) == {
            f"2026-01-{d:02d}" for d in range(1, 32)
        }
        plain.dispose()


def test_engines_are_kept_per_file_and_bounded(monkeypatch):
    monkeypatch.setattr(event_log, "MAX_ENGINES", 3)
    with _project_instance() as instance:
        storage = instance.event_log_storage
        runs = [
            dg.materialize(
                [daily], instance=instance, tags=_range(f"2026-02-{d:02d}", f"2026-02-{d:02d}")
            ).run_id
            for d in range(1, 6)
        ]
        kept = list(storage._engines)
        assert len(kept) == 3  # the index and the newest runs' files, no more
        assert kept[-1] in ("index", runs[-1])
        # every run is still readable after its engine was let go
        for run_id in runs:
            assert any(
                e.dagster_event and e.dagster_event.is_step_materialization for e in instance.all_logs(run_id)
            )
        assert instance.get_materialized_partitions(dg.AssetKey(["demo", "daily"])) == {
            f"2026-02-{d:02d}" for d in range(1, 6)
        }
