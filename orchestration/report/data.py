"""What the report shows, read from the serving snapshot alone (opened read-only).

Each section's figures are computed here, once, as small DataFrames: the charts draw them and the
page prints them, so a chart and the sentence beside it cannot disagree. A mart that is missing or
empty gives None, and the page says "not loaded" for it instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

# How many pages the "shared privately" chart ranks, and how many members the advocates table lists.
TOP_PAGES = 10
TOP_MEMBERS = 15


class SnapshotMissing(FileNotFoundError):
    """No serving snapshot to report on; the message says how to publish one."""


@dataclass
class SnapshotInfo:
    published_at: datetime | None
    run_id: str | None
    tables: list[str]
    sources_loaded: list[str] | None
    sources_not_loaded: list[str] | None
    checks_passed: int | None
    checks_total: int | None


@dataclass
class ReportData:
    """Every figure of the report; a None frame means its mart is missing or empty."""

    info: SnapshotInfo
    period: tuple[date, date] | None
    dark_weekly: pd.DataFrame | None = None
    dark_daily: pd.DataFrame | None = None
    shared_pages: pd.DataFrame | None = None
    branded_daily: pd.DataFrame | None = None
    campaigns: pd.DataFrame | None = None
    attribution_said: pd.DataFrame | None = None
    attribution_tracked: pd.DataFrame | None = None
    dark_funnel_monthly: pd.DataFrame | None = None
    health_weekly: pd.DataFrame | None = None
    health_all_weekly: pd.DataFrame | None = None
    # Per interest: the last complete week's activities against the mean of the 4 weeks before, - 1.
    interest_growth: dict[str, float] = field(default_factory=dict)
    health_latest: pd.DataFrame | None = None
    interests_weekly: pd.DataFrame | None = None
    members: pd.DataFrame | None = None
    advocates: pd.DataFrame | None = None
    partners: pd.DataFrame | None = None
    content_fit: pd.DataFrame | None = None
    headline: dict[str, float | int | str] = field(default_factory=dict)

    def empty_marts(self) -> list[str]:
        """The marts this report needs that are missing or empty in the snapshot."""
        frames = {
            "mart_dark_social_daily": self.dark_daily,
            "mart_dark_social_content": self.shared_pages,
            "mart_branded_search_daily": self.branded_daily,
            "mart_campaign_halo": self.campaigns,
            "mart_attribution_gap": self.attribution_said,
            "mart_community_health_weekly": self.health_weekly,
            "mart_community_interests_weekly": self.interests_weekly,
            "mart_member_engagement": self.members,
            "mart_partner_referrals": self.partners,
            "mart_content_channel_fit": self.content_fit,
        }
        return [name for name, frame in frames.items() if frame is None]


def _frame(conn: duckdb.DuckDBPyConnection, tables: set[str], table: str, sql: str) -> pd.DataFrame | None:
    if table not in tables:
        return None
    frame = conn.execute(sql).df()
    return frame if len(frame) else None


def _info(conn: duckdb.DuckDBPyConnection, tables: set[str]) -> SnapshotInfo:
    if "_snapshot_info" not in tables:
        return SnapshotInfo(
            None, None, sorted(t for t in tables if not t.startswith("_")), None, None, None, None
        )
    columns = {r[0] for r in conn.execute("select column_name from (describe _snapshot_info)").fetchall()}
    row = conn.execute("select * from _snapshot_info").df().iloc[0]

    def listed(name: str) -> list[str] | None:
        if name not in columns or row[name] is None or pd.isna(row[name]):
            return None
        return [part for part in str(row[name]).split(";") if part]

    def count(name: str) -> int | None:
        return int(row[name]) if name in columns and not pd.isna(row[name]) else None

    return SnapshotInfo(
        published_at=row["published_at"].to_pydatetime(),
        run_id=row["run_id"],
        tables=[t for t in str(row["tables"]).split(",") if t],
        sources_loaded=listed("sources_loaded"),
        sources_not_loaded=listed("sources_not_loaded"),
        checks_passed=count("checks_passed"),
        checks_total=count("checks_total"),
    )


def read_snapshot(serving_path: Path) -> ReportData:
    """Every section's figures from the snapshot at `serving_path`, opened read-only."""
    if not serving_path.exists():
        raise SnapshotMissing(
            f"No serving snapshot at {serving_path}: the report reads only the snapshot. Publish one "
            "with `make demo` (or a run of the refresh_warehouse job), or set SERVING_PATH to it."
        )
    with duckdb.connect(str(serving_path), read_only=True) as conn:
        tables = {r[0] for r in conn.execute("show tables").fetchall()}
        data = ReportData(info=_info(conn, tables), period=None)
        _dark_social(conn, tables, data)
        _shared_pages(conn, tables, data)
        _branded_search(conn, tables, data)
        _attribution(conn, tables, data)
        _communities(conn, tables, data)
    data.period = _period(data)
    _community_weeks(data)
    return data


def _period(data: ReportData) -> tuple[date, date] | None:
    spans = []
    for frame, column in ((data.dark_daily, "date"), (data.branded_daily, "date")):
        if frame is not None:
            spans.append((frame[column].min().date(), frame[column].max().date()))
    if not spans and data.health_weekly is not None:
        weeks = data.health_weekly["week_start"]
        spans.append((weeks.min().date(), weeks.max().date() + timedelta(days=6)))
    if not spans:
        return None
    return min(s[0] for s in spans), max(s[1] for s in spans)


def _community_weeks(data: ReportData) -> None:
    """Keep the community weeks inside the report's period, and sum up the last complete ones.

    Replies to threads started inside a loaded range arrive with them, so a range that ends in the
    past leaves a thin tail of later weeks; they are outside the period and would read as a collapse.
    """
    if data.health_weekly is None or data.period is None:
        return
    end = pd.Timestamp(data.period[1])
    data.health_weekly = data.health_weekly[data.health_weekly["week_start"] <= end]
    if data.interests_weekly is not None:
        interests = data.interests_weekly[data.interests_weekly["week_start"] <= end]
        data.interests_weekly = interests
        complete = interests[interests["week_start"] + timedelta(days=6) <= end]
        if len(complete):
            last = complete[complete["week_start"] == complete["week_start"].max()]
            data.interest_growth = dict(zip(last["interest"], last["growth_vs_prior_4w"], strict=True))
    if data.health_all_weekly is None:
        return
    weekly = data.health_all_weekly[data.health_all_weekly["week_start"] <= end]
    complete = weekly[weekly["week_start"] + timedelta(days=6) <= end]
    weeks = sorted(complete["week_start"].unique())[-4:] or sorted(weekly["week_start"].unique())[-1:]
    recent = weekly[weekly["week_start"].isin(weeks)]
    latest = recent.groupby("community", sort=False).agg(
        first_week=("week_start", "min"),
        last_week=("week_start", "max"),
        active_members=("active_members", "mean"),
        new_members=("new_members", "mean"),
        threads_answered_pct=("threads_answered_pct", "mean"),
        median_minutes_to_first_response=("median_minutes_to_first_response", "median"),
        retention_4w=("retention_4w", "mean"),
    )
    # Each community by name, then the `all` row.
    order = sorted(latest.index, key=lambda name: (name == "all", name))
    data.health_latest = latest.loc[order].reset_index()


def _dark_social(conn, tables, data: ReportData) -> None:
    data.dark_daily = _frame(
        conn,
        tables,
        "mart_dark_social_daily",
        """
        select date, total_sessions, dark_social_sessions, dark_messaging_sessions, dark_social_share,
               dark_social_share_low, dark_social_share_28d, dark_social_key_events, total_key_events,
               is_ga4_sampled_or_thresholded
        from mart_dark_social_daily
        order by date
        """,
    )
    if data.dark_daily is None:
        return
    # Shares of a week are sums over sums (a day with few visits weighs less), as in the 28-day share.
    data.dark_weekly = conn.execute(
        """
        with weeks as (
            select date_trunc('week', date)::date as week_start,
                   count(*) as days,
                   sum(total_sessions) as sessions,
                   sum(dark_messaging_sessions) as dark_low,
                   sum(dark_social_sessions) as dark_high,
                   sum(dark_social_key_events) as dark_key_events,
                   sum(total_key_events) as key_events,
                   count(*) filter (where is_ga4_sampled_or_thresholded) as flagged_days
            from mart_dark_social_daily
            group by 1
        )
        select *,
               case when sessions > 0 then dark_low / sessions else 0 end as share_low,
               case when sessions > 0 then dark_high / sessions else 0 end as share_high
        from weeks
        order by week_start
        """
    ).df()
    daily = data.dark_daily
    sessions = int(daily["total_sessions"].sum())
    data.headline.update(
        {
            "dark_social_share_low": float(daily["dark_messaging_sessions"].sum() / sessions)
            if sessions
            else 0.0,
            "dark_social_share_high": float(daily["dark_social_sessions"].sum() / sessions)
            if sessions
            else 0.0,
            "dark_social_share_28d": float(daily["dark_social_share_28d"].iloc[-1]),
            # The first window of 28 loaded days: where the trend started.
            "dark_social_share_first_28d": float(
                daily["dark_social_share_28d"].iloc[min(27, len(daily) - 1)]
            ),
            "dark_social_key_events": float(daily["dark_social_key_events"].sum()),
            "ga4_flagged_days": int(daily["is_ga4_sampled_or_thresholded"].sum()),
        }
    )


def _shared_pages(conn, tables, data: ReportData) -> None:
    data.shared_pages = _frame(
        conn,
        tables,
        "mart_dark_social_content",
        f"""
        with pages as (
            select landing_path,
                   sum(dark_social_sessions) as dark_social_sessions,
                   sum(sessions) as sessions,
                   sum(community_shares) as community_shares
            from mart_dark_social_content
            group by landing_path
        )
        select * from pages
        where dark_social_sessions > 0
        order by dark_social_sessions desc, landing_path
        limit {TOP_PAGES}
        """,
    )


def _branded_search(conn, tables, data: ReportData) -> None:
    data.branded_daily = _frame(
        conn,
        tables,
        "mart_branded_search_daily",
        """
        select date, branded_clicks, branded_impressions, branded_lift
        from mart_branded_search_daily
        order by date
        """,
    )
    data.campaigns = _frame(
        conn,
        tables,
        "mart_campaign_halo",
        """
        select campaign_name, flight_start, flight_end, spend,
               branded_clicks_per_day_before, branded_clicks_per_day_during, branded_search_lift,
               has_full_baseline, has_complete_halo_window
        from mart_campaign_halo
        order by flight_start, campaign_name
        """,
    )
    if data.branded_daily is not None:
        data.headline["branded_clicks"] = int(data.branded_daily["branded_clicks"].sum())
    if data.campaigns is not None:
        data.headline["campaigns"] = len(data.campaigns)


def _monthly_leads(conn, tables, channel_column: str) -> pd.DataFrame | None:
    """The answered leads by month and by `channel_column` of mart_attribution_gap (what leads said,
    or what tracking called them). A week counts in the month of its Monday, so a month's total
    is whole weeks."""
    return _frame(
        conn,
        tables,
        "mart_attribution_gap",
        f"""
        select date_trunc('month', week_start)::date as month_start, {channel_column} as channel,
               sum(leads) as leads
        from mart_attribution_gap
        where self_reported_channel != 'no_answer'
        group by 1, 2
        having sum(leads) > 0
        order by 1, 2
        """,
    )


def _attribution(conn, tables, data: ReportData) -> None:
    if "mart_attribution_gap" not in tables:
        return
    data.attribution_said = _monthly_leads(conn, tables, "self_reported_channel")
    data.attribution_tracked = _monthly_leads(conn, tables, "tracked_traffic_class")
    # The mart gives the dark funnel per week over the week's answered leads; a month's is the
    # answered-lead-weighted mean of its weeks, which keeps the mart's lists of channels and classes.
    data.dark_funnel_monthly = _frame(
        conn,
        tables,
        "mart_attribution_gap",
        """
        with weeks as (
            select week_start,
                   any_value(dark_funnel_share) as dark_funnel_share,
                   sum(leads) filter (where self_reported_channel != 'no_answer') as answered
            from mart_attribution_gap
            group by week_start
        )
        select date_trunc('month', week_start)::date as month_start,
               sum(answered) as answered,
               sum(dark_funnel_share * answered) as dark_funnel_leads,
               sum(dark_funnel_share * answered) / nullif(sum(answered), 0) as dark_funnel_share
        from weeks
        where answered > 0
        group by 1
        order by 1
        """,
    )
    funnel = data.dark_funnel_monthly
    if funnel is not None:
        data.headline["dark_funnel_share"] = float(
            funnel["dark_funnel_leads"].sum() / funnel["answered"].sum()
        )


def _health_weekly(conn, tables, *, with_all: bool) -> pd.DataFrame | None:
    """mart_community_health_weekly by week and community; `with_all`: the row of every community
    together ('all') too."""
    where = "" if with_all else "where community != 'all'"
    return _frame(
        conn,
        tables,
        "mart_community_health_weekly",
        f"""
        select week_start, community, active_members, new_members, threads_answered_pct,
               median_minutes_to_first_response, retention_4w
        from mart_community_health_weekly
        {where}
        order by week_start, community
        """,
    )


def _communities(conn, tables, data: ReportData) -> None:
    data.health_weekly = _health_weekly(conn, tables, with_all=False)
    data.health_all_weekly = _health_weekly(conn, tables, with_all=True)
    data.interests_weekly = _frame(
        conn,
        tables,
        "mart_community_interests_weekly",
        """
        select week_start, interest, activities, growth_vs_prior_4w
        from mart_community_interests_weekly
        order by week_start, interest
        """,
    )
    data.members = _frame(
        conn,
        tables,
        "mart_member_engagement",
        """
        select member_key, platform, level, love, reach
        from mart_member_engagement
        where love > 0 and not is_employee
        order by love desc, member_key
        """,
    )
    data.advocates = _frame(
        conn,
        tables,
        "mart_member_engagement",
        f"""
        select left(member_key, 12) as member, platform, level, love, reach, brand_links_shared,
               as_of_date
        from mart_member_engagement
        where love > 0 and not is_employee
        order by level, love desc, member_key
        limit {TOP_MEMBERS}
        """,
    )
    if "mart_member_engagement" in tables:
        data.headline["advocates"] = conn.execute(
            "select count(*) from mart_member_engagement where is_advocate_candidate"
        ).fetchone()[0]
    data.partners = _frame(
        conn,
        tables,
        "mart_partner_referrals",
        """
        select month_start, partner_community, sessions, key_events
        from mart_partner_referrals
        where sessions > 0
        order by month_start, partner_community
        """,
    )
    data.content_fit = _frame(
        conn,
        tables,
        "mart_content_channel_fit",
        """
        select content_group, traffic_class, sessions, index_vs_site
        from mart_content_channel_fit
        where index_vs_site is not null
        order by content_group, traffic_class
        """,
    )
