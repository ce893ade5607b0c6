"""Publish benchmark: what writing the serving snapshot costs on a long history and a short one.

    python -m bench.publish --cache-dir /work/cache-history20          # large-30d and large-365d
    python -m bench.publish --cache-dir /work/cache-history20 --repeats 5 --nights 20

Not a test. Reads the cached histories bench.nightly builds (`<cache-dir>/<history>/warehouse.duckdb`)
and never writes them: each is copied to a temporary directory first. On each copy:

1. A first publish writes the snapshot whole (it carries the fingerprints later publishes compare).
2. One synthetic night changes the marts as a nightly run does: in every dated table the rows of
   the 8 newest days (by its first DATE column) and of one old day (a late correction) get a new
   value, every undated table every row (so every small mart counts as changed, the worst case).
3. The same publish is timed `--repeats` times per variant, alternating the variants and the
   histories, each from a fresh copy of the snapshot of step 1: `rewrite` (the whole file from the
   warehouse, as every publish did before) and `changes` (a copy of the last snapshot with the
   changed tables and days replaced). The 1-minute load average is printed beside each.
4. `--nights` successive synthetic nights (a different old day each) publish changes only, each
   from the last; the file's size and free blocks after each, and the size of a fresh rewrite of
   the same marts at the end: the file must not grow night after night.

Last line: `publish rewrite 365d/30d=X.XX changes 365d/30d=Y.YY`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from orchestration.serving.publish import MARTS_SCHEMA, publish_snapshot

VARIANTS = ("rewrite", "changes")


def _copy_history(cache: Path, into: Path) -> Path:
    into.mkdir(parents=True)
    for name in ("warehouse.duckdb", "warehouse.duckdb.wal"):
        if (cache / name).exists():
            shutil.copyfile(cache / name, into / name)
    return into / "warehouse.duckdb"


def _night(warehouse: Path, night: int) -> str:
    """Change the marts as night `night` would (see the module's docstring); says what changed."""
    changed = []
    with duckdb.connect(str(warehouse)) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = ? "
                "and table_type = 'BASE TABLE' order by 1",
                [MARTS_SCHEMA],
            ).fetchall()
        ]
        for table in tables:
            columns = conn.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [MARTS_SCHEMA, table],
            ).fetchall()
            day = next((c for c, kind in columns if kind == "DATE"), None)
            value = next((c for c, kind in columns if c == "built_at"), None) or next(
                (c for c, kind in columns if kind in ("BIGINT", "INTEGER", "DOUBLE")), None
            )
            if value is None:
                continue
            step = "interval 1 second" if value == "built_at" else "1"
            where = "true"
            if day is not None:
                # the trailing 8 days, and one old day (a late correction), another each night
                where = (
                    f'"{day}" >= (select max("{day}") from {MARTS_SCHEMA}.{table}) - 7 or "{day}" = '
                    f'(select min("{day}") from {MARTS_SCHEMA}.{table}) + {night}'
                )
            n = conn.execute(
                f'update {MARTS_SCHEMA}.{table} set "{value}" = "{value}" + {step} where {where}'
            ).fetchone()[0]
            changed.append(f"{table} {n}")
    return ", ".join(changed)


def _timed(warehouse: Path, serving: Path, start: Path, variant: str) -> tuple[float, float, str]:
    shutil.copyfile(start, serving)
    load = os.getloadavg()[0]
    began = time.perf_counter()
    published = publish_snapshot(str(warehouse), serving, f"bench-{variant}", rewrite=variant == "rewrite")
    return time.perf_counter() - began, load, published.summary()


def _blocks(path: Path) -> tuple[int, int]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute("select total_blocks, free_blocks from pragma_database_size()").fetchone()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cache-dir", type=Path, default=Path("data/bench-nightly"))
    parser.add_argument(
        "--histories", nargs=2, default=["large-30d", "large-365d"], metavar=("SHORT", "LONG")
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--nights", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        work = {}
        for history in args.histories:
            warehouse = _copy_history(args.cache_dir / history, Path(tmp) / history)
            serving = warehouse.parent / "serving" / "marts.duckdb"
            began = time.perf_counter()
            publish_snapshot(str(warehouse), serving, "bench-first")
            first = time.perf_counter() - began
            start = warehouse.parent / "last-night.duckdb"
            shutil.copyfile(serving, start)
            print(f"{history}: first publish (whole, with fingerprints) {first:.2f} s")
            print(f"  night 0 changed rows: {_night(warehouse, 0)}")
            work[history] = (warehouse, serving, start)

        times: dict[tuple[str, str], list[float]] = {}
        loads: list[float] = []
        for repeat in range(args.repeats):
            for history in args.histories:
                for variant in VARIANTS if repeat % 2 == 0 else VARIANTS[::-1]:
                    seconds, load, summary = _timed(*work[history], variant)
                    times.setdefault((history, variant), []).append(seconds)
                    loads.append(load)
                    print(f"  {history} {variant:8} {seconds:6.2f} s  load {load:4.1f}  {summary}")

        print(f"\nmedian of {args.repeats}, 1-minute load {min(loads):.1f}-{max(loads):.1f}")
        print(f"{'history':12} {'rewrite s':>10} {'changes s':>10} {'changes/rewrite':>16}")
        medians = {key: statistics.median(values) for key, values in times.items()}
        for history in args.histories:
            rewrite, changes = medians[(history, "rewrite")], medians[(history, "changes")]
            print(f"{history:12} {rewrite:10.2f} {changes:10.2f} {changes / rewrite:16.2f}")

        for history in args.histories:
            warehouse, serving, start = work[history]
            shutil.copyfile(start, serving)
            print(f"\n{history}: {args.nights} nights of changes-only publishes")
            for night in range(1, args.nights + 1):
                _night(warehouse, night)
                began = time.perf_counter()
                published = publish_snapshot(str(warehouse), serving, f"bench-night-{night}")
                seconds = time.perf_counter() - began
                total, free = _blocks(serving)
                size = serving.stat().st_size / 2**20
                print(
                    f"  night {night:2}: {size:6.1f} MiB, {free:3}/{total} blocks free, {seconds:5.2f} s, "
                    f"{published.summary()}"
                )
            fresh = warehouse.parent / "fresh.duckdb"
            publish_snapshot(str(warehouse), fresh, "bench-fresh", rewrite=True)
            print(f"  a fresh rewrite of the same marts: {fresh.stat().st_size / 2**20:.1f} MiB")

        short, long = args.histories
        ratio = {v: medians[(long, v)] / medians[(short, v)] for v in VARIANTS}
        days = [h.rsplit("-", 1)[-1] for h in args.histories]
        print(
            f"publish rewrite {days[1]}/{days[0]}={ratio['rewrite']:.2f} "
            f"changes {days[1]}/{days[0]}={ratio['changes']:.2f}"
        )


if __name__ == "__main__":
    main()
