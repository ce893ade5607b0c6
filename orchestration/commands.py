"""What the user's commands share (`make demo`, `make backfill`, `make refresh`): the `.env` file,
the sandbox in a second process when a source is served by it, one run of the `refresh_warehouse`
job over a range of days, its progress lines on the terminal while its whole log (every Dagster
event, every dbt node) goes to a file under data/logs/, and the closing summary by source.

The run's steps run one by one in this process when every source is served by the sandbox (it
answers at once), and each in its own process, at most REFRESH_PARALLEL_STEPS at once, when a
source loads from its real API (orchestration/jobs.py): then every source waits on its API at the
same time, as the nightly's launched runs do.

The summary reads what the run recorded (each asset's materialization metadata, its checks, its
failed steps) and the source plan, so it says what loaded, how many rows, and what was not loaded
and why; an empty mart is reported as empty, never as an error.
"""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from orchestration.settings import PROJECT_ROOT


def load_dotenv() -> None:
    """Read `.env` at the project root into the environment (set variables win), as `dagster dev` does."""
    env_file = PROJECT_ROOT / ".env"
    if env_file.exists():
        from dotenv import load_dotenv as read

        read(env_file, override=False)


def prepare_environment() -> None:
    """The instance and the run's bookkeeping, before Dagster is imported."""
    os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT / "dagster_home"))
    # Dagster announces a single-run backfill with one "planned" event per asset and partition
    # (~5,100 for the demo's range, each a SQLite write): ~55 s of CPU before the first step.
    # With this switch it records one event per asset naming the range. The price: if the run
    # fails, the UI shows its unfinished partitions as missing rather than failed.
    os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")


@contextmanager
def sandbox_process():
    """Serve the sandbox from a second process for the length of a run (SANDBOX_URL).

    Generating the brand's data is CPU work; in its own process it runs beside the loading
    instead of taking turns with it in one interpreter.
    """
    if os.environ.get("SANDBOX_URL"):
        yield
        return
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.sandbox", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = process.stdout.readline()
        match = re.search(r"serving at (http://\S+)", first_line)
        if not match:
            raise RuntimeError(f"the sandbox did not start: {first_line.strip() or 'no output'}")
        os.environ["SANDBOX_URL"] = match.group(1)
        yield
    finally:
        os.environ.pop("SANDBOX_URL", None)
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def sandbox_if_needed(plans: Mapping[str, Any]):
    """The sandbox process only when the plan serves a source from it: never beside real sources alone."""
    from orchestration.sources import SANDBOX

    return sandbox_process() if any(p.mode == SANDBOX for p in plans.values()) else nullcontext()


def history_job(settings, days: int):
    """The job a range of `days` days runs as when it is longer than
    BACKFILL_DAILY_PARTITIONS_MAX_DAYS: a history load (the refresh job built without partitions,
    orchestration/partitions.py); None when the daily-partitioned job serves it."""
    from orchestration.partitions import backfill_max_days

    if days <= backfill_max_days():
        return None
    return _unpartitioned_job(settings)


def _unpartitioned_job(settings):
    """The refresh job built without partitions: the job of a history load."""
    from orchestration.definitions import build_definitions

    return build_definitions(settings, partitioned=False).resolve_job_def("refresh_warehouse")


def refresh_job():
    """The refresh job of the definitions this environment builds (orchestration/definitions.py):
    what `dg.reconstructable` points each step's process at, so a step's process builds the same
    job from the same settings (the command's environment, `.env` and SANDBOX_URL included)."""
    from orchestration.definitions import defs

    return defs.resolve_job_def("refresh_warehouse")


def history_refresh_job():
    """The refresh job built without partitions (a history load, `history_job`), for
    `dg.reconstructable` as `refresh_job`."""
    from orchestration.settings import Settings

    return _unpartitioned_job(Settings.from_env())


def run_range(
    job, instance, first: str, last: str, extra_tags: Mapping[str, str] | None = None, steps: int = 1
):
    """Run `job` over the days `first`..`last` as one run; returns Dagster's result.

    `steps` (orchestration.jobs.parallel_steps): 1 runs the steps one by one in this process
    (`execute_in_process`); more runs each step in its own process, at most `steps` at once
    (`dg.execute_job` on the reconstructable `refresh_job` or `history_refresh_job`, as `job`
    is partitioned or not). Such a run needs the instance of DAGSTER_HOME (a persistent one), and
    its step processes are forked from a server started at the process's first such run, with the
    environment and the output (`steps_to_terminal`) of that moment: one parallel run per process,
    as the commands do.

    The console logger writes every event (DEBUG): the commands send it to the run's log file and
    show only the progress lines (`progress_to_terminal`, `steps_to_terminal`: each step as it
    starts, each source's days done of the total and rows so far, dbt's nodes); every event is in
    the run's log in the UI.
    """
    from datetime import date

    import dagster as dg

    from orchestration.jobs import execution_config, range_tags
    from orchestration.partitions import history_tags

    # A job over daily partitions takes Dagster's range tags; one built without partitions (a
    # history load) takes the range in its own tags (orchestration/partitions.py).
    if job.partitions_def is None:
        tags = history_tags(date.fromisoformat(first), date.fromisoformat(last))
    else:
        tags = range_tags(first, last)
    tags = {**tags, **(extra_tags or {})}
    loggers = {"loggers": {"console": {"config": {"log_level": "DEBUG"}}}}
    if steps <= 1:
        return job.execute_in_process(instance=instance, tags=tags, run_config=loggers, raise_on_error=False)
    factory = refresh_job if job.partitions_def is not None else history_refresh_job
    return dg.execute_job(
        dg.reconstructable(factory),
        instance=instance,
        run_config={**execution_config(steps), **loggers},
        tags=tags,
        raise_on_error=False,
    )


def apply_retention_after_run(instance) -> None:
    """The retention the daemon's dagster_retention job applies, for commands run without a daemon.

    Prints one line when it removed anything. A failure is reported and does not fail the command:
    the run itself is done.
    """
    from orchestration.retention import apply_retention

    try:
        removed = apply_retention(instance)
    except Exception as exc:  # noqa: BLE001 - the run's outcome stands; say why retention did not
        print(f"Retention not applied: {_first_line(str(exc))}", file=sys.stderr)
        return
    if removed.removed_anything:
        print(removed.describe())


# --- the terminal: progress lines there, the whole log in a file -------------------------------------

# Where each command's run log goes (`make demo`: demo-<time>.log, `make refresh`: refresh-<time>.log,
# `make backfill`: backfill-<time>.log); retention removes old ones (orchestration/retention.py).
LOG_DIR = PROJECT_ROOT / "data" / "logs"
# A long load at an API's pace can take hours between two quarters: its line is shown again after
# this long, so the terminal never sits silent while days are loading.
PROGRESS_EVERY_SECONDS = 60.0


def run_log_path(command: str, log_dir: Path | None = None) -> Path:
    """The file a command's run log goes to: `<log_dir>/<command>-<UTC time>.log`."""
    return (log_dir or LOG_DIR) / f"{command}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.log"


class Progress:
    """Turns the run's log lines into the few the terminal shows; None for every other line.

    - a source's load (orchestration/fetching.py): "raw_ga4.sessions_daily: 120/522 days loaded,
      250,000 rows so far" -> "ga4/sessions_daily: 120/522 days, 250,000 rows so far", at each
      quarter of its days, at least every PROGRESS_EVERY_SECONDS while it loads, and at the end
      (with the time left at the API's pace when the line has it);
    - dbt: "12 of 400 OK created ..." -> "dbt: 40/400 nodes", at each tenth and at the end, with
      dbt's closing tally ("Done. PASS=... WARN=... ERROR=...");
    - serving: "Published 12 tables to ..." -> "serving: published 12 tables";
    - each step as it starts (Dagster's STEP_START): "discourse_activity: started", so a step that
      says nothing for minutes (a forum's posts listed at the API key's pace) is named while it runs.
    """

    _LOAD = re.compile(r"(?:^| - )(?P<label>[\w.]+): (?P<done>\d+)/(?P<total>\d+) days loaded, (?P<rest>.+)$")
    _DBT_NODE = re.compile(r"\b(?P<n>\d+) of (?P<total>\d+) (?P<status>OK|PASS|WARN|ERROR|FAIL|SKIP|NO-OP)\b")
    _DBT_DONE = re.compile(r"\bDone\. (?P<tally>PASS=\d+.*)$")
    _PUBLISHED = re.compile(r"\bPublished (?P<n>\d+) tables\b")
    _STEP_START = re.compile(r" - (?P<step>[\w.]+) - STEP_START - ")

    def __init__(self, clock=time.monotonic, every_seconds: float = PROGRESS_EVERY_SECONDS) -> None:
        self._clock, self._every = clock, every_seconds
        self._quarters: dict[str, int] = {}
        self._shown_at: dict[str, float] = {}
        self._dbt_done = 0
        self._dbt_tenth = 0

    def line(self, text: str) -> str | None:
        text = text.rstrip()
        if match := self._LOAD.search(text):
            return self._load(match)
        if match := self._DBT_DONE.search(text):
            return f"dbt: {match['tally']}"
        if match := self._DBT_NODE.search(text):
            self._dbt_done += 1
            total = int(match["total"])
            tenth = 10 * self._dbt_done // total
            if tenth > self._dbt_tenth or self._dbt_done == total:
                self._dbt_tenth = tenth
                return f"dbt: {self._dbt_done}/{total} nodes"
            return None
        if match := self._PUBLISHED.search(text):
            return f"serving: published {match['n']} tables"
        if match := self._STEP_START.search(text):
            # The freshness checks' steps (quality/checks.py, FRESHNESS_SUFFIX) take a moment each
            # and their results are in the summary: not worth a line each.
            return None if match["step"].endswith("_freshness") else f"{match['step']}: started"
        return None

    def _load(self, match: re.Match) -> str | None:
        label, done, total = match["label"], int(match["done"]), int(match["total"])
        if label.startswith("raw_"):  # raw_ga4.sessions_daily -> ga4/sessions_daily, as the asset key
            label = label.removeprefix("raw_").replace(".", "/", 1)
        quarter = 4 * done // total if total else 4
        now = self._clock()
        # The clock starts at the label's first line: a quick load shows its quarters only.
        due = now - self._shown_at.setdefault(label, now) >= self._every
        if done < total and quarter <= self._quarters.get(label, 0) and not due:
            return None
        self._quarters[label] = max(quarter, self._quarters.get(label, 0))
        self._shown_at[label] = now
        return f"{label}: {done}/{total} days, {match['rest']}"


class _Tee(io.TextIOBase):
    """A stream for sys.stdout and sys.stderr during the run: every line to the log file, the
    progress lines (`Progress`) to the terminal."""

    def __init__(self, log_file, terminal, progress: Progress):
        self._log, self._terminal, self._progress = log_file, terminal, progress
        self._pending = ""
        self._lock = threading.Lock()  # fetch threads and the run's thread may write at once

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._log.write(text)
            lines = (self._pending + text).split("\n")
            self._pending = lines.pop()
            for line in lines:
                shown = self._progress.line(line)
                if shown:
                    self._terminal.write(shown + "\n")
                    self._terminal.flush()
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self._log.flush()


@contextmanager
def progress_to_terminal(log_path: Path, progress: Progress | None = None):
    """Send what the run prints to `log_path` and its progress lines to the terminal: sys.stdout and
    sys.stderr (Dagster's console log resolves sys.stderr per line; dbt's output goes to
    sys.stdout), and the logging handlers already bound to them (Python loggers that Dagster
    forwards, e.g. dagster-dbt's). The one filter of `make demo`, `make refresh` and `make backfill`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log_file:
        tee = _Tee(log_file, sys.stdout, progress or Progress())
        saved = sys.stdout, sys.stderr
        handlers = [
            (handler, handler.stream)
            for handler in logging.getLogger().handlers
            if isinstance(handler, logging.StreamHandler) and handler.stream in saved
        ]
        sys.stdout = sys.stderr = tee
        for handler, _ in handlers:
            handler.setStream(tee)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved
            for handler, stream in handlers:
                handler.setStream(stream)
            tee.flush()


class _LogFollower(threading.Thread):
    """Reads the run's log file as the run's processes append to it, and writes its progress lines
    (`Progress`) to the terminal; `stop` reads what is left and ends."""

    def __init__(self, log_path: Path, terminal, progress: Progress, every_seconds: float = 0.2):
        super().__init__(name="run-log-follower", daemon=True)
        self._path, self._terminal, self._progress = log_path, terminal, progress
        self._every = every_seconds
        self._done = threading.Event()

    def run(self) -> None:
        with self._path.open("r", encoding="utf-8", errors="replace") as log:
            pending = ""
            while True:
                finished = self._done.is_set()  # read once more after the run's last write
                lines = (pending + log.read()).split("\n")
                pending = lines.pop()
                for line in lines:
                    shown = self._progress.line(line)
                    if shown:
                        self._terminal.write(shown + "\n")
                        self._terminal.flush()
                if finished:
                    return
                self._done.wait(self._every)

    def stop(self) -> None:
        self._done.set()
        self.join()


def _terminal_stream(stream):
    """A stream to the terminal `stream` writes to that outlives fd 1 and 2 being redirected: a
    duplicate of its descriptor when it writes to one of them; else (a test's capture) itself."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return stream, False
    if fd not in (1, 2):
        return stream, False
    return open(os.dup(fd), "w", encoding=getattr(stream, "encoding", None) or "utf-8", buffering=1), True


@contextmanager
def steps_to_terminal(log_path: Path, progress: Progress | None = None):
    """`progress_to_terminal` for a run whose steps run in their own processes (`run_range` with
    steps > 1): they write to the standard output and error they inherit (descriptors 1 and 2), not
    through this process's streams. Both descriptors point at `log_path` for the run (so the
    step processes, forked from a server started during the run, write there too), this process's
    sys.stdout, sys.stderr and logging handlers as well, and a thread follows the file and shows
    its progress lines, the same lines `progress_to_terminal` shows."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    terminal, owned = _terminal_stream(sys.stdout)
    saved_fds = os.dup(1), os.dup(2)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    log_file = open(log_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed below
    saved = sys.stdout, sys.stderr
    handlers = [
        (handler, handler.stream)
        for handler in logging.getLogger().handlers
        if isinstance(handler, logging.StreamHandler) and handler.stream in saved
    ]
    follower = _LogFollower(log_path, terminal, progress or Progress())
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    sys.stdout = sys.stderr = log_file
    for handler, _ in handlers:
        handler.setStream(log_file)
    follower.start()
    try:
        yield
    finally:
        log_file.flush()
        follower.stop()
        sys.stdout, sys.stderr = saved
        for handler, stream in handlers:
            handler.setStream(stream)
        for fd, target in zip(saved_fds, (1, 2), strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.close(log_fd)
        log_file.close()
        if owned:
            terminal.close()


# --- the summary -----------------------------------------------------------------------------------


def _first_line(text: str | None, limit: int = 300) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else "no message"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def materializations(result) -> dict[tuple[str, ...], dict[str, Any]]:
    """Asset key path -> its materialization metadata (plain values) in this run."""
    found = {}
    for event in result.all_events:
        if event.event_type_value != "ASSET_MATERIALIZATION":
            continue
        materialization = event.event_specific_data.materialization
        found[tuple(materialization.asset_key.path)] = {
            name: getattr(value, "value", value) for name, value in materialization.metadata.items()
        }
    return found


def summarize_run(result, plans: Mapping[str, Any], titles: Mapping[str, str] | None = None) -> str:
    """What the run loaded by source, what it did not and why, the marts it published, its checks.

    Args:
        result: the run's ExecuteInProcessResult.
        plans: the source plan the definitions were built from (orchestration.sources.source_plan).
        titles: a display name per source name, when the plan's title is not enough.
    """
    loaded = materializations(result)
    lines = ["Summary by source:"]
    for name, plan in plans.items():
        title = (titles or {}).get(name) or plan.source.title
        if not plan.loaded:
            if plan.source.optional:
                continue
            lines.append(f"  {title}: {plan.reason}.")
            continue
        tables = [(key, meta) for key, meta in loaded.items() if key[0] == name and "rows" in meta]
        if not tables:
            lines.append(f"  {title} ({plan.mode}): nothing loaded in this run (see the failures below).")
            continue
        parts = []
        for key, meta in sorted(tables):
            table = meta.get("table") or ".".join(key)
            span = (
                f", {meta['days']} day(s) {meta['first_day']}..{meta['last_day']}"
                if "days" in meta and "first_day" in meta
                else ""
            )
            rescanned = int(meta.get("rescanned_days") or 0)
            if rescanned:  # Slack re-reads the loaded days before the asked ones for their threads
                span += f" ({meta['asked_days']} asked, {rescanned} re-read for replies to their threads)"
            if "history_days_loaded" in meta and int(meta.get("history_days_missing") or 0):
                span += (
                    f"; of {meta['history']}: {int(meta['history_days_loaded']):,} days loaded, "
                    f"{int(meta['history_days_missing']):,} missing ({meta['history_missing']})"
                )
            elif "history_days_loaded" in meta:
                span += f"; all {int(meta['history_days_loaded']):,} days of {meta['history']} loaded"
            waiting = int(meta.get("not_final_days") or 0)
            if waiting:  # Search Console's days still being collected: not loaded yet
                span += f" ({waiting} day(s) not final yet, not loaded: {meta.get('not_final')})"
            parts.append(f"{table} {int(meta['rows']):,} rows{span}")
        lines.append(f"  {title} ({plan.mode}): " + "; ".join(parts))

    serving = next((meta for key, meta in loaded.items() if key[0] == "serving"), None)
    if serving is not None:
        counts = {k.removeprefix("rows."): int(v) for k, v in serving.items() if k.startswith("rows.")}
        filled = [f"{n} ({c:,})" for n, c in sorted(counts.items()) if c]
        empty = [n for n, c in sorted(counts.items()) if not c]
        lines.append(f"Published {serving.get('path')}: {len(counts)} tables.")
        if filled:
            lines.append("  with rows: " + ", ".join(filled))
        if empty:
            lines.append(
                "  empty (their sources were not loaded, or had no rows in the range): " + ", ".join(empty)
            )
    else:
        lines.append("The serving snapshot was not published in this run.")

    checks = [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    failed_checks = [c for c in checks if not c.passed]
    lines.append(f"Checks: {len(checks) - len(failed_checks)} of {len(checks)} passed.")
    for check in failed_checks:
        severity = getattr(check.severity, "value", check.severity)
        lines.append(f"  {severity}: {check.asset_key.to_user_string()} {check.check_name}")
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    for event in failures:
        error = event.event_specific_data.error
        while error is not None and error.cause is not None:  # the asset's own error, not Dagster's wrapper
            error = error.cause
        message = error.message if error is not None else event.message
        source = _step_source(event.step_key, plans, titles)
        lines.append(f"FAILED {event.step_key}{f' ({source})' if source else ''}: {_first_line(message)}")
    if not result.success and not failures:
        # The run itself failed (its step processes could not start, say): Dagster's reason.
        run_failed = [e for e in result.all_events if e.event_type_value == "RUN_FAILURE"]
        lines.append(f"FAILED run: {_first_line(run_failed[-1].message if run_failed else None)}")
    if not result.success:
        lines.append(
            "What to do: fix what the FAILED line says, then run the same command again; the days "
            "already loaded are kept, and the marts and the serving snapshot stay as they were until "
            "a run builds them."
        )
    return "\n".join(lines)


def _step_source(
    step_key: str | None, plans: Mapping[str, Any], titles: Mapping[str, str] | None
) -> str | None:
    """The source whose step this is (`slack__messages`, `discourse_activity`), by its title."""
    name = (step_key or "").partition("_")[0]
    plan = plans.get(name)
    return None if plan is None else (titles or {}).get(name) or plan.source.title
