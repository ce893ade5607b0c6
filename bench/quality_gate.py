"""What Great Expectations on every batch would cost, against the gate as it runs (README, data quality).

    python -m bench.quality_gate --scale large --days 10    # ~3 minutes

Per GA4 sessions day (fetched once through the connector from a sandbox in its own process):
- fetch + parse: the connector's pages of one day into an Arrow table
- validate, screen: `validate_batch` as it runs (the suite in Arrow; GE only on a flagged batch)
- validate, GE: `validate_batch` with QUALITY_ENGINE=gx (GE on every batch)
- replace_days: the commit with either gate (QualityGate.check, then replace_days), into a
  warehouse holding the 8 days before
Medians of wall and CPU ms per day, the two gates interleaved, after a warm-up that pays GE's
import and context (seconds, once per process).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import date, datetime, timezone

HISTORY_DAYS = 8  # loaded first, so the volume check runs as it does every night
TABLE = "raw_ga4.sessions_daily"


def _timed(function, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    out = function(*args)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _fetch_days(scale: str, n_days: int) -> tuple[dict, list[float], list[float]]:
    from bench.ingest import SandboxProcess, Target, _ga4_client, _window
    from connectors.ga4 import SESSIONS_SCHEMA, GA4Client
    from orchestration.ga4.assets import _day_table

    work = tempfile.mkdtemp(prefix="quality_gate_")
    sandbox = SandboxProcess(scale, work)
    stamp = {"property_id": "bench", "loaded_at": datetime.now(timezone.utc).replace(tzinfo=None)}
    stamp["run_id"] = "bench"
    tables, walls, cpus = {}, [], []
    try:
        days = _window(n_days + HISTORY_DAYS)
        with _ga4_client(Target(sandbox.base_url, sandbox.key_file, days, work)) as client:
            for text in days:
                day = date.fromisoformat(text)
                (table, _, _), wall, cpu = _timed(
                    lambda d: _day_table(GA4Client.sessions(client, d), SESSIONS_SCHEMA, stamp), day
                )
                tables[day] = table
                walls.append(wall)
                cpus.append(cpu)
    finally:
        sandbox.stop()
    return tables, walls[HISTORY_DAYS:], cpus[HISTORY_DAYS:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.quality_gate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--scale", default="large", help="sandbox scale (default: large)")
    parser.add_argument("--days", type=int, default=10, help="days measured (default: 10)")
    parser.add_argument("--reps", type=int, default=3, help="passes over those days (default: 3)")
    args = parser.parse_args(argv)

    import duckdb

    from orchestration.quality.gate import QualityGate
    from orchestration.quality.validate import _gx, validate_batch
    from orchestration.warehouse import replace_days

    def commit(conn, day, table) -> int:
        # What a day batch goes through in the assets: the gate, then the swap.
        QualityGate().check(TABLE, table, [day], conn)
        return replace_days(conn, TABLE, [day], table)

    tables, fetch_wall, fetch_cpu = _fetch_days(args.scale, args.days)
    ordered = sorted(tables)
    history, measured = ordered[:HISTORY_DAYS], ordered[HISTORY_DAYS:]
    rows = [tables[d].num_rows for d in measured]
    print(f"scale {args.scale}: {len(measured)} GA4 sessions days of {min(rows):,}-{max(rows):,} rows")
    _, wall, _ = _timed(_gx)
    print(f"GE import and ephemeral context: {wall:.1f} s, once per process")

    engines = {"screen": "", "GE": "gx"}
    samples: dict[str, list[tuple[float, float, int]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        conns = {name: duckdb.connect(f"{tmp}/{name}.duckdb") for name in engines}
        for conn in conns.values():
            for day in history:
                replace_days(conn, TABLE, [day], tables[day])
        try:
            for name, engine in engines.items():  # warm: the suite and batch definition, once
                os.environ["QUALITY_ENGINE"] = engine
                validate_batch(TABLE, tables[measured[0]], [measured[0]], conns[name])
            for _ in range(args.reps):
                for day in measured:
                    for name, engine in engines.items():
                        os.environ["QUALITY_ENGINE"] = engine
                        table, conn = tables[day], conns[name]
                        result, wall, cpu = _timed(validate_batch, TABLE, table, [day], conn)
                        assert result.passed, result.describe()
                        samples.setdefault(f"validate, {name}", []).append((wall, cpu, table.num_rows))
                        _, wall, cpu = _timed(commit, conn, day, table)
                        samples.setdefault(f"replace_days, {name}", []).append((wall, cpu, table.num_rows))
        finally:
            os.environ.pop("QUALITY_ENGINE", None)
            for conn in conns.values():
                conn.close()

    def median(label: str, i: int) -> float:
        return statistics.median(s[i] for s in samples[label])

    fetch = (statistics.median(fetch_wall), statistics.median(fetch_cpu))
    print(f"\n{'per day':24}{'wall ms':>10}{'CPU ms':>10}{'rows/CPU s':>12}")
    print(f"{'fetch + parse':24}{fetch[0] * 1000:10.0f}{fetch[1] * 1000:10.0f}")
    for label in samples:
        n = statistics.median(s[2] for s in samples[label])
        wall, cpu = median(label, 0), median(label, 1)
        print(f"{label:24}{wall * 1000:10.0f}{cpu * 1000:10.0f}{n / cpu:12,.0f}")
    now = [fetch[i] + median("replace_days, screen", i) for i in (0, 1)]
    ge = [fetch[i] + median("replace_days, GE", i) for i in (0, 1)]
    print(f"\nday load as it runs (fetch + parse + replace_days): {now[0] * 1000:.0f} ms wall, ", end="")
    print(f"{now[1] * 1000:.0f} ms CPU")
    print(f"day load with GE on every batch: {ge[0] * 1000:.0f} ms wall, {ge[1] * 1000:.0f} ms CPU")
    print(
        f"GE on every batch adds {(ge[0] - now[0]) * 1000:.0f} ms wall ({ge[0] / now[0] - 1:+.0%}) and "
        f"{(ge[1] - now[1]) * 1000:.0f} ms CPU ({ge[1] / now[1] - 1:+.0%}) per day"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
