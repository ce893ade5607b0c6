"""Crash recovery on the embedded instance: a run killed with SIGKILL while it holds the warehouse
pool slot is failed, its slot freed and a dead publish's temporary file removed when the next run
starts, so that run completes instead of waiting for the slot forever; a live run is left alone."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from orchestration.fetching import api_pool
from orchestration.recovery import recover_after_crash
from orchestration.settings import PROJECT_ROOT

# One day of GA4 sessions through the project's own definitions (whose load runs the recovery) and
# job, on the instance of DAGSTER_HOME: the smallest real refresh that takes a pool slot (GA4's).
GA4_POOL = api_pool("ga4")
RUN_ONE_DAY = """
import sys
from datetime import date, timedelta

import dagster as dg

from orchestration.definitions import defs
from orchestration.jobs import range_tags

day = (date.today() - timedelta(days=1)).isoformat()
job = defs.resolve_job_def("refresh_warehouse")
with dg.DagsterInstance.get() as instance:
    result = job.execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey(["ga4", "sessions_daily"])],
        tags=range_tags(day, day),
        raise_on_error=False,
    )
print("run", result.run_id, "succeeded" if result.success else "failed", flush=True)
sys.exit(0 if result.success else 1)
"""


class SilentServer:
    """A loopback server that accepts connections and never answers: a step calling it blocks
    while it holds its pool slot, until its process is killed."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_killed_run_is_failed_and_its_slot_freed_so_the_next_run_completes(
    tmp_path: Path, monkeypatch
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # where the project's event log storage keeps its files
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    serving = tmp_path / "serving" / "marts.duckdb"
    serving.parent.mkdir()
    dead_tmp = serving.parent / f".marts.duckdb.{_dead_pid()}.tmp"
    live_tmp = serving.parent / f".marts.duckdb.{os.getpid()}.tmp"
    env = {
        **{k: v for k, v in os.environ.items() if k != "SANDBOX_URL"},
        "DAGSTER_HOME": str(home),
        "WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"),
        "SERVING_PATH": str(serving),
        "HISTORY_START_DATE": (date.today() - timedelta(days=3)).isoformat(),
        "SANDBOX_SOURCES": "ga4",
        "SANDBOX_SCALE": "small",
        "CRASH_RECOVERY": "auto",
    }

    silent = SilentServer()
    first = subprocess.Popen(
        [sys.executable, "-c", RUN_ONE_DAY],
        env={**env, "SANDBOX_URL": silent.url},
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            deadline = time.monotonic() + 120
            claimed = []
            while not claimed and time.monotonic() < deadline and first.poll() is None:
                time.sleep(0.2)
                claimed = instance.event_log_storage.get_concurrency_info(GA4_POOL).claimed_slots
            assert claimed, "the first run never took the GA4 pool slot"
            dead_run_id = claimed[0].run_id
            # While its process lives, the run is left alone.
            assert not recover_after_crash(instance, serving)
            assert instance.get_run_by_id(dead_run_id).status == dg.DagsterRunStatus.STARTED
            assert instance.event_log_storage.get_concurrency_info(GA4_POOL).claimed_slots == claimed
            os.kill(first.pid, signal.SIGKILL)
            # A publish killed half-way, and one in progress in a live process (this one).
            dead_tmp.write_bytes(b"half a snapshot")
            live_tmp.write_bytes(b"being written")
            first.wait()
            assert instance.get_run_by_id(dead_run_id).status == dg.DagsterRunStatus.STARTED

            second = subprocess.run(
                [sys.executable, "-c", RUN_ONE_DAY],
                env=env,
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
                timeout=240,  # without recovery it waits for the dead run's slot forever
            )
            output = second.stdout + second.stderr
            assert second.returncode == 0, output[-3000:]
            assert "succeeded" in second.stdout

            dead_run = instance.get_run_by_id(dead_run_id)
            assert dead_run.status == dg.DagsterRunStatus.FAILURE
            failure = instance.get_records_for_run(
                dead_run_id, of_type=dg.DagsterEventType.RUN_FAILURE
            ).records
            assert f"process {first.pid} is gone" in failure[-1].event_log_entry.dagster_event.message
            info = instance.event_log_storage.get_concurrency_info(GA4_POOL)
            assert info.claimed_slots == [] and info.pending_steps == []
            # One log line says what was recovered.
            lines = [line for line in output.splitlines() if line.startswith("Crash recovery:")]
            assert len(lines) == 1, output[-3000:]
            assert dead_run_id[:8] in lines[0] and dead_tmp.name in lines[0]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        silent.close()
    assert not dead_tmp.exists()
    assert live_tmp.exists()
