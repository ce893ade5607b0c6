"""Fewer calls, same rows: every raw table of Slack, GA4, Search Console, Meta and Discourse holds
the rows main's code loaded for the same sandbox range before the fewest-calls change (issue 15
point 3).

tests/fixtures/raw_rows/ was written by tests/orchestration/raw_rows_load.py run on a copy of main
(commit db6d620; the raw_discourse tables at commit 9edb594, before the likers came per author);
this test runs the same script with this branch's code and compares the tables row for row (load
stamps aside)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from raw_rows_load import load

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "raw_rows"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("raw-rows-now")
    load(out, tmp_path_factory.mktemp("raw-rows-warehouse"))
    return out


def test_the_fixture_covers_every_raw_table_of_the_five_sources():
    names = sorted(p.stem for p in FIXTURE.glob("*.parquet"))
    assert {n.split(".")[0] for n in names} == {
        "raw_slack",
        "raw_ga4",
        "raw_gsc",
        "raw_meta",
        "raw_discourse",
    }
    assert "raw_slack.messages" in names and "raw_discourse.post_likes" in names and len(names) == 14


@pytest.mark.parametrize("table", sorted(p.stem for p in FIXTURE.glob("*.parquet")))
def test_the_branch_loads_the_rows_main_loaded(loaded, table):
    before, after = str(FIXTURE / f"{table}.parquet"), str(loaded / f"{table}.parquet")
    with duckdb.connect() as conn:
        n_before = conn.execute(f"select count(*) from '{before}'").fetchone()[0]
        n_after = conn.execute(f"select count(*) from '{after}'").fetchone()[0]
        missing = conn.execute(
            f"select count(*) from (from '{before}' except all from '{after}')"
        ).fetchone()[0]
        extra = conn.execute(f"select count(*) from (from '{after}' except all from '{before}')").fetchone()[
            0
        ]
    assert n_before > 0
    assert (n_after, missing, extra) == (n_before, 0, 0)
