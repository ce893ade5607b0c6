"""dbt build of the dark social spine against a crafted raw GA4 warehouse.

One `dbt build` per module (seeds, models and data tests) into a temporary DuckDB file whose
raw_ga4 tables hold hand-made rows covering every traffic class of docs/metrics.md §1; the tests
then assert on the values the models produced. The models' unit tests do not read the warehouse:
tests/dbt/test_unit_tests.py runs every unit test of the project (these models' 20 included).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from orchestration.settings import DEFAULT_HISTORY_START

D1 = dt.date(2025, 7, 1)
D2 = dt.date(2025, 7, 2)  # no rows at all: the mart's date spine must still give it a row
D3 = dt.date(2025, 7, 3)

# The raw layout orchestration writes (see /tmp/spec.md "Warehouse"): the connector's columns plus
# the load metadata columns.
CREATE_RAW = """
create schema raw_ga4;

create table raw_ga4.sessions_daily (
    date date,
    session_source varchar,
    session_medium varchar,
    session_campaign_name varchar,
    landing_page_plus_query_string varchar,
    device_category varchar,
    sessions bigint,
    engaged_sessions bigint,
    key_events double,
    total_users bigint,
    new_users bigint,
    _property_id varchar,
    _subject_to_thresholding boolean,
    _data_loss_from_other_row boolean,
    _loaded_at timestamp,
    _run_id varchar
);

create table raw_ga4.leads_daily (
    date date,
    how_heard varchar,
    session_source varchar,
    session_medium varchar,
    session_campaign_name varchar,
    landing_page_plus_query_string varchar,
    leads double,
    _property_id varchar,
    _subject_to_thresholding boolean,
    _data_loss_from_other_row boolean,
    _loaded_at timestamp,
    _run_id varchar
);
"""

# (date, source, medium, campaign, landing page as GA4 reports it, sessions, key events,
#  subject to thresholding, expected traffic_class). Landing pages are unique: they key the rows.
SESSION_ROWS = [
    (D1, "google", "CPC", "Spring_Launch", "/pricing?gclid=abc", 10, 1.0, False, "paid"),
    (
        D1,
        "newsletter",
        "Email",
        "july-digest",
        "/blog/july-roundup?utm_medium=email",
        8,
        1.0,
        False,
        "email_campaign",
    ),
    (
        D1,
        "Locally-Optimistic",
        "referral",
        "(not set)",
        "/blog/dark-social",
        4,
        0.0,
        False,
        "partner_community",
    ),
    (
        D1,
        "community.northwind-analytics.com",
        "referral",
        "(not set)",
        "/docs/setup",
        6,
        0.0,
        False,
        "community",
    ),
    (D1, "chatgpt.com", "referral", "(not set)", "/blog/attribution-gap", 3, 0.0, False, "ai_assistant"),
    (
        D1,
        "android-app://com.slack",
        "referral",
        "(not set)",
        "/Blog/Dark-Social/",
        7,
        2.0,
        False,
        "dark_social_messaging",
    ),
    (
        D1,
        "Web.WhatsApp.com",
        "referral",
        "(not set)",
        "/blog/whatsapp-share",
        5,
        0.0,
        False,
        "dark_social_messaging",
    ),
    (D1, "google", "organic", "(organic)", "/", 13, 2.0, False, "organic_search"),
    (D1, "www.linkedin.com", "referral", "(not set)", "/blog/post", 9, 0.0, False, "public_social"),
    (
        D1,
        "(direct)",
        "(none)",
        "(direct)",
        "/Blog/Dark-Social-Guide/?ref=share",
        12,
        3.0,
        False,
        "dark_social_direct",
    ),
    # 20 characters: long enough to be a deep link; 19 is not
    (D1, "(direct)", "(none)", "(direct)", "/abcdefghijklmnopqrs", 2, 0.0, False, "dark_social_direct"),
    (D1, "(direct)", "(none)", "(direct)", "/abcdefghijklmnopqr", 1, 0.0, False, "direct_typed"),
    (D1, "(direct)", "(none)", "(direct)", "/Pricing/", 15, 1.0, False, "direct_typed"),
    (D1, "(direct)", "(not set)", "(direct)", "(not set)", 2, 0.0, False, "direct_typed"),
    (D1, "example.org", "referral", "(not set)", "/blog/example", 3, 0.0, False, "referral"),
    (
        D3,
        "l.messenger.com",
        "referral",
        "(not set)",
        "/blog/messenger-share",
        4,
        1.0,
        False,
        "dark_social_messaging",
    ),
    (D3, "example.org", "referral", "(not set)", "/blog/thresholded", 6, 0.0, True, "referral"),
]

# (date, how_heard, source, medium, landing page, leads, expected traffic_class)
LEAD_ROWS = [
    (
        D1,
        "A friend sent me a link",
        "(direct)",
        "(none)",
        "/blog/dark-social-guide",
        1.0,
        "dark_social_direct",
    ),
    (D1, "Google", "google", "organic", "/", 2.0, "organic_search"),
    (
        D3,
        "Our Slack group",
        "android-app://com.slack",
        "referral",
        "/docs/setup?x=1",
        1.0,
        "dark_social_messaging",
    ),
]


def _load_raw(path: Path) -> None:
    loaded_at = dt.datetime(2025, 7, 4, 3, 0, 0)
    with duckdb.connect(str(path)) as con:
        con.execute(CREATE_RAW)
        con.executemany(
            "insert into raw_ga4.sessions_daily values (?, ?, ?, ?, ?, 'desktop', ?, ?, ?, ?, ?, "
            "'412345678', ?, false, ?, 'test-run')",
            [
                (
                    day,
                    source,
                    medium,
                    campaign,
                    page,
                    sessions,
                    sessions,
                    key_events,
                    sessions,
                    sessions,
                    thresholded,
                    loaded_at,
                )
                for day, source, medium, campaign, page, sessions, key_events, thresholded, _ in SESSION_ROWS
            ],
        )
        con.executemany(
            "insert into raw_ga4.leads_daily values (?, ?, ?, ?, '(not set)', ?, ?, "
            "'412345678', false, false, ?, 'test-run')",
            [
                (day, how_heard, source, medium, page, leads, loaded_at)
                for day, how_heard, source, medium, page, leads, _ in LEAD_ROWS
            ],
        )


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory, dbt_invoke) -> Path:
    """A temporary warehouse after one successful `dbt build`."""
    tmp = tmp_path_factory.mktemp("dbt_build")
    path = tmp / "warehouse.duckdb"
    _load_raw(path)
    # Only GA4 is loaded here: build what depends on GA4 alone (and its upstream seeds). An empty
    # HISTORY_START_DATE is unset (as in orchestration/settings.py): var start_date is its default.
    dbt_invoke(
        [
            "build",
            "--select",
            "+mart_dark_social_daily +mart_attribution_gap",
            "--exclude-resource-type",
            "unit_test",
        ],
        tmp,
        path,
        HISTORY_START_DATE="",
    )
    return path


# Not read_only: dbt-duckdb keeps the file open in this process after the build, and DuckDB refuses a
# second connection to the same file with a different configuration.
def _rows(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path)) as con:
        return con.execute(sql).fetchall()


def _mart(path: Path) -> dict[dt.date, dict]:
    with duckdb.connect(str(path)) as con:
        cursor = con.execute('select * from marts.mart_dark_social_daily order by "date"')
        names = [d[0] for d in cursor.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def test_every_crafted_session_gets_its_traffic_class(warehouse: Path) -> None:
    got = dict(
        _rows(
            warehouse,
            "select landing_page_plus_query_string, traffic_class from intermediate.int_sessions_classified",
        )
    )
    expected = {row[4]: row[8] for row in SESSION_ROWS}
    assert got == expected
    assert {row[8] for row in SESSION_ROWS} == {
        "paid",
        "email_campaign",
        "partner_community",
        "community",
        "ai_assistant",
        "dark_social_messaging",
        "organic_search",
        "public_social",
        "dark_social_direct",
        "direct_typed",
        "referral",
    }


def test_staging_normalises_source_and_landing_path(warehouse: Path) -> None:
    got = dict(
        _rows(
            warehouse,
            "select landing_page_plus_query_string, source || ' ' || landing_path"
            " from staging.stg_ga4__sessions",
        )
    )
    assert got["/Blog/Dark-Social/"] == "com.slack /blog/dark-social"
    assert got["/blog/whatsapp-share"] == "web.whatsapp.com /blog/whatsapp-share"
    assert got["/blog/post"] == "linkedin.com /blog/post"
    assert got["/Blog/Dark-Social-Guide/?ref=share"] == "(direct) /blog/dark-social-guide"
    assert got["/Pricing/"] == "(direct) /pricing"
    assert got["(not set)"] == "(direct) (not set)"
    assert got["/pricing?gclid=abc"] == "google /pricing"


def test_leads_get_the_traffic_class_of_their_session(warehouse: Path) -> None:
    got = dict(_rows(warehouse, "select how_heard, traffic_class from intermediate.int_leads_classified"))
    assert got == {how_heard: expected for _, how_heard, _, _, _, _, expected in LEAD_ROWS}


def test_mart_has_a_row_per_day_including_days_without_sessions(warehouse: Path) -> None:
    mart = _mart(warehouse)
    assert list(mart) == [D1, D2, D3]
    empty = mart[D2]
    assert empty["total_sessions"] == 0
    assert empty["dark_social_sessions"] == 0
    assert empty["dark_social_share"] == 0.0
    assert empty["dark_social_share_low"] == 0.0
    assert empty["dark_social_key_event_rate"] is None
    assert empty["all_key_event_rate"] is None
    assert empty["is_ga4_sampled_or_thresholded"] is False
    # the zero day still sits inside the 28-day window, which reaches back to D1
    assert empty["dark_social_share_28d"] == pytest.approx(26 / 100)


def test_mart_daily_totals_and_dark_social_range(warehouse: Path) -> None:
    day = _mart(warehouse)[D1]
    assert day["total_sessions"] == 100
    assert day["dark_messaging_sessions"] == 12  # slack app + whatsapp web
    assert day["dark_direct_sessions"] == 14  # two deep direct landings
    assert day["dark_social_sessions"] == 26
    assert day["dark_social_share"] == pytest.approx(0.26)
    assert day["dark_social_share_low"] == pytest.approx(0.12)
    assert day["dark_social_key_events"] == 5.0
    assert day["dark_social_key_event_rate"] == pytest.approx(5 / 26)
    assert day["total_key_events"] == 10.0
    assert day["all_key_event_rate"] == pytest.approx(0.10)
    assert day["dark_social_share_28d"] == pytest.approx(0.26)
    assert day["is_ga4_sampled_or_thresholded"] is False


def test_mart_flags_thresholded_days_and_keeps_the_range_ordered(warehouse: Path) -> None:
    mart = _mart(warehouse)
    day = mart[D3]
    assert day["total_sessions"] == 10
    assert day["dark_social_sessions"] == day["dark_messaging_sessions"] == 4
    assert day["dark_social_share"] == pytest.approx(0.4)
    assert day["dark_social_share_28d"] == pytest.approx(30 / 110)
    assert day["is_ga4_sampled_or_thresholded"] is True
    for row in mart.values():
        assert 0 <= row["dark_social_share_low"] <= row["dark_social_share"] <= 1
        assert row["dark_messaging_sessions"] + row["dark_direct_sessions"] == row["dark_social_sessions"]


def test_mart_total_sessions_equal_raw_sessions(warehouse: Path) -> None:
    mart = _mart(warehouse)
    raw = dict(_rows(warehouse, 'select "date", sum(sessions) from raw_ga4.sessions_daily group by 1'))
    assert {d: r["total_sessions"] for d, r in mart.items() if r["total_sessions"]} == raw


def test_attribution_gap_maps_answers_and_measures_the_dark_funnel(warehouse: Path) -> None:
    rows = _rows(
        warehouse,
        "select self_reported_channel, tracked_traffic_class, leads, dark_funnel_share "
        "from marts.mart_attribution_gap",
    )
    # D1 and D3 share an ISO week: 4 answered leads, of which the friend's (word of mouth, tracked
    # as deep-link direct) is the dark funnel; the Slack answer is word of mouth but tracking saw
    # the messaging referrer, so it is not hidden.
    by_channel: dict[str, float] = {}
    for channel, _, leads, _ in rows:
        by_channel[channel] = by_channel.get(channel, 0.0) + leads
    assert by_channel == {"colleague_or_friend": 1.0, "search": 2.0, "slack_or_discord": 1.0}
    assert [share for *_, share in rows] == [pytest.approx(0.25)] * len(rows)


def test_start_date_defaults_to_the_history_setting_default(warehouse: Path) -> None:
    # dbt's var start_date and the orchestration's first partition fall back to the same day.
    compiled = next(
        (warehouse.parent / "target" / "compiled").rglob("mart_dark_social_daily.sql")
    ).read_text()
    assert f"cast('{DEFAULT_HISTORY_START}' as date)" in compiled


EARLY = dt.date(2025, 6, 20)


@pytest.fixture(scope="module")
def early_history(tmp_path_factory: pytest.TempPathFactory, dbt_invoke) -> Path:
    """A warehouse whose GA4 history starts on EARLY, before the default start 2025-07-01, built
    with HISTORY_START_DATE set to a day before it (models and data tests)."""
    tmp = tmp_path_factory.mktemp("dbt_early_history")
    path = tmp / "warehouse.duckdb"
    loaded_at = dt.datetime(2025, 7, 2, 3, 0, 0)
    with duckdb.connect(str(path)) as con:
        con.execute(CREATE_RAW)
        con.executemany(
            "insert into raw_ga4.sessions_daily values (?, ?, ?, '(not set)', ?, 'desktop', ?, ?, 0, ?, ?, "
            "'412345678', false, false, ?, 'test-run')",
            [
                (EARLY, "web.whatsapp.com", "referral", "/blog/early", 7, 7, 7, 7, loaded_at),
                (D1, "google", "organic", "/", 5, 5, 5, 5, loaded_at),
            ],
        )
    dbt_invoke(
        [
            "build",
            "--select",
            "+mart_dark_social_daily",
            "--exclude-resource-type",
            "unit_test",
            # only the data tests whose every input is built (leads are not loaded here)
            "--indirect-selection",
            "cautious",
        ],
        tmp,
        path,
        HISTORY_START_DATE="2025-06-01",
    )
    return path


def test_a_history_loaded_before_the_default_start_reaches_the_mart(early_history: Path) -> None:
    mart = _mart(early_history)
    # every day from the first loaded day (not 2025-07-01) to the last, the early day with its visits
    assert min(mart) == EARLY
    assert len(mart) == (D1 - EARLY).days + 1
    assert mart[EARLY]["total_sessions"] == 7
    assert mart[EARLY]["dark_messaging_sessions"] == 7
    assert mart[dt.date(2025, 6, 21)]["total_sessions"] == 0
    assert mart[D1]["total_sessions"] == 5
