"""The marketer's report, opened in a real headless Chromium after a real refresh.

One refresh of the small sandbox brand over 2026-02-02 .. 2026-04-05 (nine weeks: the 28 days
before the Meta flight "Spring brand awareness", the flight and the 7 days after it) runs the whole
job, snapshot and report asset included. The page is then opened from disk in Debian's chromium
(driven by Playwright, which never downloads a browser of its own), with every request that is not
a file: URL refused and recorded. Each section's chart must carry one mark per figure the snapshot
holds, and the figures the page prints must be the snapshot's.

The screenshots land in the test's tmp directory; with UPDATE_REPORT_SCREENSHOT=1 the top of the
page is also written to docs/report.png, the picture the README shows.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.report import build_report
from orchestration.settings import PROJECT_ROOT
from tests.orchestration.spring_refresh import SPRING_FIRST_DAY, SPRING_LAST_DAY

FIRST_DAY = SPRING_FIRST_DAY
LAST_DAY = SPRING_LAST_DAY
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPORT_KEY = dg.AssetKey(["serving", "report"])
# Vega-Lite names a layer's mark group `<name>_marks`, and `<name>_<index>_marks` inside a
# concatenation; every child of the group is one mark.
LAYER_MARKS = r"""(groups, layer) => groups
    .filter(g => [...g.classList].some(c => new RegExp(`^${layer}(_\\d+)?_marks$`).test(c)))
    .flatMap(g => [...g.children])
    .map(e => e.getAttribute('aria-label') || '')"""


@pytest.fixture(scope="module")
def refreshed(spring_refresh):
    """The spring refresh (tests/orchestration/spring_refresh.py): every source from the sandbox,
    dbt, checks, snapshot, report, over FIRST_DAY .. LAST_DAY."""
    _, result, _ = spring_refresh
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return spring_refresh


@pytest.fixture(scope="module")
def snapshot(refreshed):
    settings, _, _ = refreshed
    with duckdb.connect(str(settings.serving_path), read_only=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does it)"
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield context
        context.close()


class OpenedPage:
    def __init__(self, page, console: list[str], requests: list[str]):
        self.page, self.console, self.requests = page, console, requests

    def marks(self, chart: str, layer: str, variant: str = "wide") -> list[str]:
        """The aria-labels of the marks a named layer drew: one per datum, or one per line of a line
        chart ('' when unlabelled)."""
        selector = f'[data-chart="{chart}"] .{variant} g.role-mark'
        return self.page.eval_on_selector_all(selector, LAYER_MARKS, layer)

    def figure(self, name: str) -> str:
        return self.page.inner_text(f'[data-figure="{name}"]')


def _open(context, path: Path, width: int) -> OpenedPage:
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": 900})
    console, requests = [], []
    page.on(
        "console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))

    def refuse_network(route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            requests.append(route.request.url)
            route.abort()

    page.route("**/*", refuse_network)
    page.goto(path.resolve().as_uri(), wait_until="load")
    return OpenedPage(page, console, requests)


@pytest.fixture(scope="module")
def laptop(refreshed, browser, tmp_path_factory):
    settings, _, _ = refreshed
    opened = _open(browser, settings.report_path, 1280)
    shots = tmp_path_factory.mktemp("screenshots")
    opened.page.screenshot(path=str(shots / "report-laptop.png"), full_page=True)
    if os.environ.get("UPDATE_REPORT_SCREENSHOT") == "1":
        _readme_screenshot(opened.page)
    yield opened
    opened.page.close()


def _readme_screenshot(page) -> None:
    """The header and the first sections at a laptop width, kept small for the repository."""
    target = PROJECT_ROOT / "docs" / "report.png"
    target.parent.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1040, "height": 900})
    page.screenshot(path=str(target), clip={"x": 0, "y": 0, "width": 1040, "height": 1500}, full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def _pct(value: float) -> str:
    return f"{value:.1%}"


def _labels(labels: list[str], field: str) -> list[str]:
    """One field of each mark's aria-label ("week of: 2026-02-02; low: 12.3%; high: 30.1%")."""
    found = []
    for label in labels:
        match = re.search(rf"(?:^|; ){re.escape(field)}: ([^;]+)", label)
        assert match, f"{field!r} not in mark label {label!r}"
        found.append(match.group(1))
    return found


def test_the_refresh_publishes_the_report_with_its_path_and_headline_in_metadata(refreshed, snapshot):
    settings, result, _ = refreshed
    [materialization] = [
        e.event_specific_data.materialization
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key == REPORT_KEY
    ]
    metadata = materialization.metadata
    assert metadata["path"].value == str(settings.report_path)
    assert settings.report_path.stat().st_size > 50_000
    share_28d = snapshot.execute(
        "select arg_max(dark_social_share_28d, date) from mart_dark_social_daily"
    ).fetchone()[0]
    assert metadata["headline.dark_social_share_28d"].value == pytest.approx(share_28d)
    advocates = snapshot.execute(
        "select count(*) from mart_member_engagement where is_advocate_candidate"
    ).fetchone()[0]
    assert metadata["headline.advocates"].value == advocates > 0
    assert metadata["marts_not_loaded"].value == "none"


def test_the_page_loads_from_disk_without_network_or_console_errors(laptop):
    assert laptop.requests == []
    assert laptop.console == []
    html = laptop.page.content()
    assert "<script" not in html
    assert not re.search(r'(?:href|src)="https?:', html)


def test_the_header_prints_the_snapshots_period_refresh_sources_and_checks(laptop, snapshot, refreshed):
    first, last = snapshot.execute("select min(date), max(date) from mart_dark_social_daily").fetchone()
    assert (laptop.figure("period_start"), laptop.figure("period_end")) == (str(first), str(last))
    assert (first, last) == (FIRST_DAY, LAST_DAY)
    published, passed, total = snapshot.execute(
        "select published_at, checks_passed, checks_total from _snapshot_info"
    ).fetchone()
    assert laptop.figure("published_at") == published.strftime("%Y-%m-%d %H:%M UTC")
    assert (laptop.figure("checks_passed"), laptop.figure("checks_total")) == (str(passed), str(total))
    # The run's own results of the checks on every asset the snapshot is built from (the freshness
    # checks warn, as a window that ended months ago is not fresh).
    _, result, defs = refreshed
    graph = defs.resolve_asset_graph()
    upstream, frontier = set(), {dg.AssetKey(["serving", "marts_snapshot"])}
    while frontier:
        frontier = {p for key in frontier for p in graph.get(key).parent_keys} - upstream
        upstream |= frontier
    evaluations = [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.asset_key in upstream
    ]
    assert (passed, total) == (sum(c.passed for c in evaluations), len(evaluations))
    assert total > 100
    loaded = laptop.page.inner_text('[data-sources="loaded"]')
    assert all(f"{s} (sandbox)" in loaded for s in ("GA4", "Search Console", "Meta", "Slack", "Discourse"))
    assert "Discord" in laptop.page.inner_text('[data-sources="not-loaded"]')


def test_headline_figures_equal_the_snapshots(laptop, snapshot):
    low, high, dark_key_events = snapshot.execute(
        """
        select sum(dark_messaging_sessions) / sum(total_sessions),
               sum(dark_social_sessions) / sum(total_sessions),
               sum(dark_social_key_events)
        from mart_dark_social_daily
        """
    ).fetchone()
    assert laptop.figure("dark_social_share_low") == _pct(low)
    assert laptop.figure("dark_social_share_high") == _pct(high)
    assert laptop.figure("dark_social_key_events") == f"{dark_key_events:,.0f}"
    trend = snapshot.execute(
        "select dark_social_share_28d from mart_dark_social_daily order by date"
    ).fetchall()
    assert laptop.figure("dark_social_share_first_28d") == _pct(trend[27][0])
    assert laptop.figure("dark_social_share_28d") == _pct(trend[-1][0])
    branded = snapshot.execute("select sum(branded_clicks) from mart_branded_search_daily").fetchone()[0]
    assert laptop.figure("branded_clicks") == f"{branded:,}"
    advocates = snapshot.execute(
        "select count(*) from mart_member_engagement where is_advocate_candidate"
    ).fetchone()[0]
    assert laptop.figure("advocates") == str(advocates)


def test_dark_social_band_has_one_range_per_loaded_week_with_the_snapshots_shares(laptop, snapshot):
    weeks = snapshot.execute(
        """
        select strftime(date_trunc('week', date), '%Y-%m-%d'),
               sum(dark_messaging_sessions) / sum(total_sessions),
               sum(dark_social_sessions) / sum(total_sessions),
               sum(dark_social_key_events)
        from mart_dark_social_daily group by 1 order by 1
        """
    ).fetchall()
    ranges = laptop.marks("dark_social_over_time", "weekly_range")
    assert len(ranges) == len(weeks) == 9  # 2026-02-02 is a Monday, 2026-04-05 a Sunday
    assert _labels(ranges, "week of") == [w[0] for w in weeks]
    assert _labels(ranges, "low") == [_pct(w[1]) for w in weeks]
    assert _labels(ranges, "high") == [_pct(w[2]) for w in weeks]
    assert len(laptop.marks("dark_social_over_time", "trend_28d")) == 1
    flagged = snapshot.execute(
        """
        select strftime(date, '%Y-%m-%d') from mart_dark_social_daily
        where is_ga4_sampled_or_thresholded order by 1
        """
    ).fetchall()
    triangles = laptop.marks("dark_social_over_time", "ga4_flagged")
    assert _labels(triangles, "GA4 marked incomplete") == [f[0] for f in flagged]
    assert laptop.figure("ga4_flagged_days") == str(len(flagged))
    bars = laptop.marks("dark_social_conversions", "dark_conversions")
    assert _labels(bars, "conversions") == [f"{w[3]:,.0f}" for w in weeks]


def test_shared_pages_rank_the_snapshots_top_pages_with_their_shares(laptop, snapshot):
    top = snapshot.execute(
        """
        select landing_path, sum(dark_social_sessions) as dark, sum(community_shares)
        from mart_dark_social_content group by 1 having dark > 0 order by dark desc, landing_path limit 10
        """
    ).fetchall()
    bars = laptop.marks("shared_pages", "shared_pages")
    assert _labels(bars, "page") == [t[0] for t in top]
    assert _labels(bars, "community shares") == [f"{t[2]:,}" for t in top]
    # The planted page the communities share every 21 days is among the most shared privately.
    assert "/blog/dark-social-measurement-playbook" in [t[0] for t in top]


def test_branded_search_marks_each_campaign_flight_and_its_halo(laptop, snapshot):
    days = snapshot.execute("select count(*) from mart_branded_search_daily").fetchone()[0]
    assert days > 50
    assert len(laptop.marks("branded_search", "branded_clicks")) == 1
    campaigns = snapshot.execute(
        f"""
        select campaign_name, branded_clicks_per_day_before, branded_clicks_per_day_during,
               branded_search_lift
        from mart_campaign_halo
        where flight_start <= date '{LAST_DAY}' and flight_end >= date '{FIRST_DAY}'
        order by flight_start, campaign_name
        """
    ).fetchall()
    flights = laptop.marks("branded_search", "flights")
    assert _labels(flights, "campaign") == [c[0] for c in campaigns]
    assert len(laptop.marks("branded_search", "branded_impressions")) == 1
    halo = laptop.marks("campaign_halo", "halo_bars")
    expected = [(c[0], f"{v:.1f}") for c in campaigns for v in (c[1], c[2]) if v is not None]
    assert sorted(
        zip(_labels(halo, "campaign"), _labels(halo, "branded clicks a day"), strict=True)
    ) == sorted(expected)
    # The sandbox's flight: a full 28 days before it, so both bars and its lift are drawn.
    spring = next(c for c in campaigns if c[0] == "Spring brand awareness")
    assert spring[1] is not None and spring[3] > 0.15
    lifts = laptop.page.eval_on_selector_all(
        '[data-chart="campaign_halo"] .wide g.halo_lift_marks > text', "els => els.map(e => e.textContent)"
    )
    assert f"{spring[3]:+.0%}" in lifts


def test_attribution_gap_draws_every_month_and_channel_of_the_snapshot(laptop, snapshot):
    def cells(column: str) -> int:
        return snapshot.execute(
            f"""
            select count(*) from (
                select date_trunc('month', week_start), {column} from mart_attribution_gap
                where self_reported_channel != 'no_answer' group by all having sum(leads) > 0
            )
            """
        ).fetchone()[0]

    assert len(laptop.marks("attribution_gap", "said_bars")) == cells("self_reported_channel")
    assert len(laptop.marks("attribution_gap", "tracked_bars")) == cells("tracked_traffic_class")
    months = snapshot.execute(
        "select count(distinct date_trunc('month', week_start)) from mart_attribution_gap"
    ).fetchone()[0]
    assert len(laptop.marks("dark_funnel", "dark_funnel_points")) == months == 2  # weeks from Feb and Mar


def test_communities_section_draws_health_interests_advocates_partners_and_fit(laptop, snapshot):
    def count(sql: str) -> int:
        return snapshot.execute(sql).fetchone()[0]

    communities = count(
        "select count(distinct community) from mart_community_health_weekly where community != 'all'"
    )
    assert len(laptop.marks("community_activity", "active_members")) == communities >= 2
    interests = count("select count(distinct interest) from mart_community_interests_weekly")
    assert len(laptop.marks("interests", "interest_lines")) == interests >= 5
    members = count("select count(*) from mart_member_engagement where love > 0 and not is_employee")
    assert len(laptop.marks("members", "member_points")) == members
    partners = count("select count(*) from mart_partner_referrals where sessions > 0")
    assert len(laptop.marks("partners", "partner_bars")) == partners > 0
    cells = count("select count(*) from mart_content_channel_fit where index_vs_site is not null")
    assert len(laptop.marks("content_fit", "fit_cells")) == cells > 0

    # Health: the mean of the last four complete weeks of the period, per community.
    health = snapshot.execute(
        f"""
        with weeks as (
            select distinct week_start from mart_community_health_weekly
            where week_start + 6 <= date '{LAST_DAY}' order by week_start desc limit 4
        )
        select community, avg(active_members), avg(threads_answered_pct), avg(retention_4w)
        from mart_community_health_weekly join weeks using (week_start)
        group by community order by community = 'all', community
        """
    ).fetchall()
    table = laptop.page.eval_on_selector_all(
        '[data-table="community_health"] tbody tr',
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))",
    )
    assert [(r[0], r[1], r[3], r[5]) for r in table] == [
        (h[0], f"{h[1]:,.1f}", f"{h[2]:.0%}", f"{h[3]:.0%}") for h in health
    ]

    top = snapshot.execute(
        """
        select left(member_key, 12), level, love, reach from mart_member_engagement
        where love > 0 and not is_employee order by level, love desc, member_key limit 15
        """
    ).fetchall()
    rows = laptop.page.eval_on_selector_all(
        '[data-table="advocates"] tbody tr', "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert [(r[0], r[2], r[3], r[4]) for r in rows] == [
        (t[0], t[1], f"{t[2]:,.1f}", f"{t[3]:,}") for t in top
    ]
    assert rows[0][2] == "1_advocate"


def test_every_section_has_a_chart_and_a_sentence_and_none_is_missing(laptop):
    sections = laptop.page.eval_on_selector_all(
        "section",
        "els => els.map(s => [s.id, s.querySelectorAll('figure .wide svg').length, "
        "s.querySelectorAll('figcaption').length, s.querySelectorAll('.not-loaded').length])",
    )
    assert [s[0] for s in sections] == ["dark-social", "shared", "branded", "attribution", "communities"]
    for name, svgs, captions, not_loaded in sections:
        assert svgs >= 1 and captions == svgs and not_loaded == 0, name


def test_on_a_phone_the_narrow_charts_show_and_nothing_overflows_sideways(
    refreshed, browser, laptop, tmp_path
):
    settings, _, _ = refreshed
    phone = _open(browser, settings.report_path, 390)
    try:
        visible = phone.page.eval_on_selector_all(
            "figure",
            "els => els.map(f => [f.querySelector('.wide').offsetWidth, "
            "f.querySelector('.narrow').offsetWidth])",
        )
        assert visible and all(wide == 0 and 0 < narrow <= 390 for wide, narrow in visible)
        assert phone.page.evaluate("document.documentElement.scrollWidth") <= 390
        weeks = len(laptop.marks("dark_social_over_time", "weekly_range"))
        assert len(phone.marks("dark_social_over_time", "weekly_range", variant="narrow")) == weeks
        assert phone.console == [] and phone.requests == []
        phone.page.screenshot(path=str(tmp_path / "report-phone.png"), full_page=True)
    finally:
        phone.page.close()


def test_empty_marts_give_not_loaded_sections_instead_of_a_failure(refreshed, tmp_path):
    settings, _, _ = refreshed
    empty = tmp_path / "empty.duckdb"
    shutil.copy(settings.serving_path, empty)
    with duckdb.connect(str(empty)) as conn:
        for (table,) in conn.execute("select table_name from information_schema.tables").fetchall():
            if table.startswith("mart_"):
                conn.execute(f"delete from {table}")
    report = build_report(empty, tmp_path / "report.html")
    html = report.path.read_text()
    assert "<svg" not in html
    not_loaded = re.findall(r'data-not-loaded="([^"]+)"', html)
    assert set(not_loaded) >= {"dark_social", "shared", "branded", "attribution", "communities"}
    assert report.sections_not_loaded == [
        "mart_dark_social_daily",
        "mart_dark_social_content",
        "mart_branded_search_daily",
        "mart_campaign_halo",
        "mart_attribution_gap",
        "mart_community_health_weekly",
        "mart_community_interests_weekly",
        "mart_member_engagement",
        "mart_partner_referrals",
        "mart_content_channel_fit",
    ]
    assert "no data loaded yet" in html
