"""Every chart of the report, built with Altair (Vega-Lite) and rendered to SVG by vl-convert.

Rendering happens here, offline: vl-convert runs Vega in an embedded engine, so the page carries
finished SVG and needs no script and no network to show it. Each chart is drawn at a laptop width
and at a phone width; the page shows the one that fits.

Every mark layer is named (Vega-Lite turns the name into the SVG class `<name>_marks`), and each
mark carries its figures in an aria-label, which screen readers read out and the browser test
checks against the snapshot.
"""

from __future__ import annotations

import itertools
import re
from datetime import timedelta

import altair as alt
import pandas as pd
import vl_convert

WIDE, NARROW = 860, 330
# Liberation Sans has Arial's metrics: vl-convert measures labels with it and a browser draws them
# with it or with Arial, so labels keep the room they were given.
FONT = "'Liberation Sans', Arial, Helvetica, sans-serif"
BLUE, ORANGE, RED, GREY = "#3b6ea8", "#d9822b", "#c23b22", "#8a8f98"
PERCENT = ".0%"

_ids = itertools.count(1)


def _configured(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    return (
        chart.configure(font=FONT, background="white")
        .configure_axis(labelFontSize=12, titleFontSize=12, titleFontWeight="normal", labelColor="#333")
        .configure_legend(labelFontSize=12, titleFontSize=12, orient="top", labelLimit=260)
        .configure_view(stroke=None)
        .configure_title(fontSize=13, anchor="start", fontWeight="normal", color="#333")
    )


def to_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as an inline SVG element that scales to its container (ids made unique per chart)."""
    # No base URL allowed: every chart's data is inline, and nothing may be fetched while drawing.
    svg = vl_convert.vegalite_to_svg(_configured(chart).to_dict(), allowed_base_urls=[])
    # Several SVGs share one document: clip paths and gradients need ids of their own.
    prefix = f"c{next(_ids)}-"
    svg = re.sub(r'id="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", svg)
    return svg.replace("<svg ", '<svg role="img" ', 1)


def _time_axis(dates: pd.Series) -> alt.Axis:
    """Day and month for a few months of history, month and year beyond."""
    if (dates.max() - dates.min()).days > 150:
        # One tick a month: at Vega's default weekly ticks a month's name would repeat.
        return alt.Axis(format="%b %Y", tickCount="month", labelAngle=0, labelOverlap=True)
    return alt.Axis(format="%-d %b", labelAngle=0, labelOverlap=True)


def _weeks(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["week_end"] = frame["week_start"] + timedelta(days=7)
    return frame


def dark_social_over_time(weekly: pd.DataFrame, daily: pd.DataFrame, width: int) -> alt.TopLevelMixin:
    """Weekly low-high share as a band with one range rule per week, the 28-day trend, flagged days."""
    legend = ["Weekly range (low to high)", "28-day trend (high)", "Day GA4 marked incomplete"]
    # A constant series column per layer gives the layers one shared legend.
    color = alt.Color(
        "series:N",
        scale=alt.Scale(domain=legend, range=[BLUE, ORANGE, RED]),
        legend=alt.Legend(title=None, columns=1 if width < 400 else 3, symbolOpacity=1),
    )
    weekly = weekly.assign(series=legend[0])
    flagged_days = daily[daily["is_ga4_sampled_or_thresholded"]].assign(series=legend[2])
    daily = daily.assign(series=legend[1])
    axis = _time_axis(daily["date"])
    x = alt.X("week_start:T", title=None, axis=axis)
    band = (
        alt.Chart(weekly, name="weekly_band")
        .mark_area(opacity=0.22)
        .encode(
            x=x,
            y=alt.Y("share_low:Q", title="Share of visits", axis=alt.Axis(format=PERCENT)),
            y2="share_high:Q",
            color=color,
        )
    )
    ranges = (
        alt.Chart(weekly, name="weekly_range")
        .mark_rule(strokeWidth=3, color=BLUE)
        .encode(
            x=x,
            y="share_low:Q",
            y2="share_high:Q",
            tooltip=[
                alt.Tooltip("week_start:T", title="week of", format="%Y-%m-%d"),
                alt.Tooltip("share_low:Q", title="low", format=".1%"),
                alt.Tooltip("share_high:Q", title="high", format=".1%"),
            ],
        )
    )
    trend = (
        alt.Chart(daily, name="trend_28d")
        .mark_line(strokeWidth=2.5)
        .encode(
            x=alt.X("date:T", title=None, axis=axis),
            y="dark_social_share_28d:Q",
            color=color,
        )
    )
    flagged = (
        alt.Chart(flagged_days, name="ga4_flagged")
        .mark_point(shape="triangle-down", filled=True, size=70)
        .encode(
            x=alt.X("date:T", title=None, axis=axis),
            y="dark_social_share_28d:Q",
            color=color,
            tooltip=[alt.Tooltip("date:T", title="GA4 marked incomplete", format="%Y-%m-%d")],
        )
    )
    return alt.layer(band, ranges, trend, flagged).properties(width=width, height=260)


def dark_social_conversions(weekly: pd.DataFrame, width: int) -> alt.TopLevelMixin:
    """Key events in dark social visits per week (upper bound), one bar per week."""
    return (
        alt.Chart(_weeks(weekly), name="dark_conversions")
        .mark_bar(color=BLUE, opacity=0.85, stroke="white", strokeWidth=1)
        .encode(
            x=alt.X("week_start:T", title=None, axis=_time_axis(weekly["week_start"])),
            x2="week_end:T",
            y=alt.Y("dark_key_events:Q", title="Conversions"),
            y2=alt.datum(0),
            tooltip=[
                alt.Tooltip("week_start:T", title="week of", format="%Y-%m-%d"),
                alt.Tooltip("dark_key_events:Q", title="conversions", format=",.0f"),
                alt.Tooltip("key_events:Q", title="all conversions", format=",.0f"),
            ],
        )
        .properties(width=width, height=160)
    )


def shared_pages(pages: pd.DataFrame, width: int) -> alt.TopLevelMixin:
    """Top pages by dark-social visits, each labelled with its shares in the communities."""
    pages = pages.assign(label=pages["community_shares"].map(lambda n: f"shared {n:,.0f}× in communities"))
    y = alt.Y(
        "landing_path:N",
        sort=list(pages["landing_path"]),
        title=None,
        axis=alt.Axis(labelLimit=width // 2 - 20),
    )
    bars = (
        alt.Chart(pages, name="shared_pages")
        .mark_bar(color=BLUE)
        .encode(
            y=y,
            x=alt.X("dark_social_sessions:Q", title="Dark social visits (upper bound)"),
            tooltip=[
                alt.Tooltip("landing_path:N", title="page"),
                alt.Tooltip("dark_social_sessions:Q", title="dark social visits", format=","),
                alt.Tooltip("community_shares:Q", title="community shares", format=","),
            ],
        )
    )
    labels = (
        alt.Chart(pages, name="shared_pages_labels")
        .mark_text(align="left", dx=4, color="#333", fontSize=11)
        .encode(y=y, x="dark_social_sessions:Q", text="label:N")
        .transform_filter("datum.community_shares > 0")
    )
    return alt.layer(bars, labels).properties(width=width // 2, height=alt.Step(24))


def _flights(campaigns: pd.DataFrame | None, first, last) -> pd.DataFrame:
    if campaigns is None:
        return pd.DataFrame({"campaign_name": [], "start": [], "end": []})
    flights = campaigns.assign(
        start=campaigns["flight_start"].clip(lower=first),
        end=(campaigns["flight_end"] + timedelta(days=1)).clip(upper=last + timedelta(days=1)),
    )
    return flights[flights["start"] < flights["end"]]


def branded_search(daily: pd.DataFrame, campaigns: pd.DataFrame | None, width: int) -> alt.TopLevelMixin:
    """Branded clicks and impressions a day, with the campaign flights as bars on the same days below.

    Flights are bars of their own rather than shading behind the lines: an always-on campaign
    would shade the whole chart and hide the flights that matter.
    """
    first, last = daily["date"].min(), daily["date"].max()
    flights = _flights(campaigns, first, last)
    # One day axis for every panel, so a flight lines up with the days it ran.
    days = alt.Scale(domain=[first.isoformat(), (last + timedelta(days=1)).isoformat()])
    x = alt.X("date:T", title=None, scale=days, axis=_time_axis(daily["date"]))

    def panel(column: str, title: str, name: str) -> alt.Chart:
        return (
            alt.Chart(daily, name=f"branded_{name}")
            .mark_line(color=BLUE, strokeWidth=1.6)
            .encode(x=x, y=alt.Y(f"{column}:Q", title=title))
            .properties(width=width, height=150)
        )

    panels = [
        panel("branded_clicks", "Branded clicks a day", "clicks"),
        panel("branded_impressions", "Branded impressions a day", "impressions"),
    ]
    if len(flights):
        panels.append(
            alt.Chart(flights, name="flights")
            .mark_bar(color=ORANGE, height=10)
            .encode(
                x=alt.X("start:T", title=None, scale=days, axis=_time_axis(daily["date"])),
                x2="end:T",
                y=alt.Y("campaign_name:N", title=None, axis=alt.Axis(labelLimit=160)),
                tooltip=[
                    alt.Tooltip("campaign_name:N", title="campaign"),
                    alt.Tooltip("flight_start:T", title="from", format="%Y-%m-%d"),
                    alt.Tooltip("flight_end:T", title="to", format="%Y-%m-%d"),
                ],
            )
            .properties(width=width, height=alt.Step(16), title="Meta campaign flights")
        )
    return alt.vconcat(*panels, spacing=8)


def campaign_halo(campaigns: pd.DataFrame, width: int) -> alt.TopLevelMixin:
    """Branded clicks a day before each campaign and during it (plus 7 days), side by side."""
    windows = ["28 days before", "flight + 7 days after"]
    rows = []
    for c in campaigns.itertuples():
        for window, value in zip(
            windows, (c.branded_clicks_per_day_before, c.branded_clicks_per_day_during), strict=True
        ):
            if pd.notna(value):
                lift = "" if pd.isna(c.branded_search_lift) else f"{c.branded_search_lift:+.0%}"
                rows.append({"campaign": c.campaign_name, "window": window, "clicks": value, "lift": lift})
    frame = pd.DataFrame(rows, columns=["campaign", "window", "clicks", "lift"])
    y = alt.Y("campaign:N", title=None, axis=alt.Axis(labelLimit=width // 2 - 20))
    bars = (
        alt.Chart(frame, name="halo_bars")
        .mark_bar()
        .encode(
            y=y,
            yOffset=alt.YOffset("window:N", sort=windows),
            x=alt.X("clicks:Q", title="Branded clicks a day"),
            color=alt.Color(
                "window:N", sort=windows, scale=alt.Scale(range=[GREY, ORANGE]), legend=alt.Legend(title=None)
            ),
            tooltip=[
                alt.Tooltip("campaign:N"),
                alt.Tooltip("window:N"),
                alt.Tooltip("clicks:Q", title="branded clicks a day", format=".1f"),
            ],
        )
    )
    labels = (
        alt.Chart(frame, name="halo_lift")
        .mark_text(align="left", dx=4, fontSize=12, fontWeight="bold")
        .encode(y=y, x="clicks:Q", text="lift:N")
        .transform_filter(f"datum.window == '{windows[1]}' && datum.lift != ''")
    )
    return alt.layer(bars, labels).properties(width=width // 2, height=alt.Step(18, **{"for": "position"}))


def attribution_gap(said: pd.DataFrame, tracked: pd.DataFrame, width: int) -> alt.TopLevelMixin:
    """Per month: answered leads by what they said, next to the same leads by what tracking said."""

    def panel(frame: pd.DataFrame, title: str, name: str) -> alt.Chart:
        return (
            alt.Chart(frame, name=name, title=title)
            .mark_bar()
            .encode(
                x=alt.X("yearmonth(month_start):O", title=None, axis=alt.Axis(format="%b %Y", labelAngle=0)),
                y=alt.Y(
                    "leads:Q", stack="normalize", title="Share of answered leads", axis=alt.Axis(format="%")
                ),
                color=alt.Color(
                    "channel:N",
                    scale=alt.Scale(scheme="tableau20"),
                    legend=alt.Legend(
                        title=None,
                        orient="right" if width > 400 else "bottom",
                        columns=1 if width > 400 else 2,
                    ),
                ),
                tooltip=[
                    alt.Tooltip("month_start:T", title="month", format="%B %Y"),
                    alt.Tooltip("channel:N"),
                    alt.Tooltip("leads:Q", format=",.0f"),
                ],
            )
            .properties(width=width - 200 if width > 400 else width, height=170)
        )

    return alt.vconcat(
        panel(said, "What leads said: “How did you hear about us?”", "said_bars"),
        panel(tracked, "What tracking said: the traffic class of the same leads' visits", "tracked_bars"),
        spacing=14,
    ).resolve_scale(color="independent")


def dark_funnel(monthly: pd.DataFrame, width: int) -> alt.TopLevelMixin:
    """The dark funnel a month: word of mouth that tracking filed under direct, search or referral."""
    x = alt.X("month_start:T", title=None, axis=alt.Axis(format="%b %Y", tickCount="month"))
    y = alt.Y(
        "dark_funnel_share:Q", title="Dark funnel", axis=alt.Axis(format="%"), scale=alt.Scale(zero=True)
    )
    line = alt.Chart(monthly, name="dark_funnel_line").mark_line(color=ORANGE).encode(x=x, y=y)
    points = (
        alt.Chart(monthly, name="dark_funnel_points")
        .mark_point(filled=True, size=60, color=ORANGE)
        .encode(
            x=x,
            y=y,
            tooltip=[
                alt.Tooltip("month_start:T", title="month", format="%B %Y"),
                alt.Tooltip("dark_funnel_share:Q", title="dark funnel", format=".1%"),
            ],
        )
    )
    return alt.layer(line, points).properties(width=width, height=140)


def community_activity(health: pd.DataFrame, width: int) -> alt.TopLevelMixin:
    """Active members a week, one line per community."""
    return (
        alt.Chart(health, name="active_members")
        .mark_line(point=False, strokeWidth=2)
        .encode(
            x=alt.X("week_start:T", title=None, axis=_time_axis(health["week_start"])),
            y=alt.Y("active_members:Q", title="Active members a week"),
            color=alt.Color("community:N", legend=alt.Legend(title=None)),
        )
        .properties(width=width, height=180)
    )


def interests(weekly: pd.DataFrame, growth: dict[str, float], width: int) -> alt.TopLevelMixin:
    """Activities a week per interest; the legend gives each interest's growth in the last full week."""
    names = {
        interest: interest
        + ("" if pd.isna(growth.get(interest)) else f" ({growth[interest]:+.0%} last week)")
        for interest in weekly["interest"].unique()
    }
    frame = weekly.assign(label=weekly["interest"].map(names))
    return (
        alt.Chart(frame, name="interest_lines")
        .mark_line(strokeWidth=2)
        .encode(
            x=alt.X("week_start:T", title=None, axis=_time_axis(weekly["week_start"])),
            y=alt.Y("activities:Q", title="Activities a week"),
            color=alt.Color(
                "label:N", legend=alt.Legend(title=None, columns=2), scale=alt.Scale(scheme="tableau10")
            ),
        )
        .properties(width=width, height=200)
    )


LEVELS = ["1_advocate", "2_contributor", "3_participant"]
# Altair refuses a chart of more than 5,000 rows, and a scatter that dense reads as a blur: past
# this many members, participants who did about as much are drawn as one point.
MEMBER_POINTS_MAX = 4000


def _significant(values: pd.Series, digits: int) -> pd.Series:
    return values.map(lambda v: float(f"{v:.{digits}g}"))


def member_points(frame: pd.DataFrame) -> pd.DataFrame:
    """One point per member, or, past MEMBER_POINTS_MAX members, members of a platform and level
    with the same love and reach to `digits` significant digits drawn as one point: participants
    first (two digits, then one), then contributors too, advocates last, until the points fit;
    `members` counts each point. A large community's advocates and contributors alone can pass the
    limit (the large sandbox: 663 advocates and 6,604 contributors active in 30 days)."""
    points = frame.assign(members=1)
    if len(points) <= MEMBER_POINTS_MAX:
        return points
    for grouped_levels in (LEVELS[2:], LEVELS[1:], LEVELS):
        single = points[~points["level"].isin(grouped_levels)]
        many = points[points["level"].isin(grouped_levels)]
        for digits in (2, 1):
            grouped = (
                many.assign(
                    love=_significant(many["love"], digits),
                    reach=_significant(many["reach"].astype(float), digits),
                )
                .groupby(["platform", "level", "love", "reach"], as_index=False)
                .agg(members=("members", "sum"))
            )
            if len(single) + len(grouped) <= MEMBER_POINTS_MAX:
                break
        if len(single) + len(grouped) <= MEMBER_POINTS_MAX:
            break
    grouped["member_key"] = [
        f"{n:,} {level.split('_', 1)[1]}{'s' if n > 1 else ''}"
        for n, level in zip(grouped["members"], grouped["level"], strict=True)
    ]
    return pd.concat([single, grouped[single.columns]], ignore_index=True)


def members(frame: pd.DataFrame, width: int) -> alt.TopLevelMixin:
    """Every non-employee member active in the window: love against reach, advocates highlighted
    (participants grouped past MEMBER_POINTS_MAX members, see member_points)."""
    return (
        alt.Chart(member_points(frame), name="member_points")
        .mark_circle(opacity=0.75)
        .encode(
            x=alt.X(
                "love:Q",
                title="Love (what they do, weighted)",
                scale=alt.Scale(type="symlog"),
                axis=alt.Axis(labelOverlap=True, tickCount=6),
            ),
            y=alt.Y("reach:Q", title="Reach (people they talk with)"),
            color=alt.Color(
                "level:N",
                sort=LEVELS,
                scale=alt.Scale(domain=LEVELS, range=[RED, ORANGE, "#b8c2cc"]),
                legend=alt.Legend(title=None),
            ),
            size=alt.condition("datum.level == '1_advocate'", alt.value(110), alt.value(28)),
            tooltip=[
                alt.Tooltip("member_key:N", title="member (pseudonym)"),
                alt.Tooltip("members:Q", title="members"),
                alt.Tooltip("platform:N"),
                alt.Tooltip("level:N"),
                alt.Tooltip("love:Q", format=".1f"),
                alt.Tooltip("reach:Q"),
            ],
        )
        .properties(width=width, height=220)
    )


def partners(frame: pd.DataFrame, width: int) -> alt.TopLevelMixin:
    """Visits from partner communities a month, stacked by partner."""
    return (
        alt.Chart(frame, name="partner_bars")
        .mark_bar()
        .encode(
            x=alt.X("yearmonth(month_start):O", title=None, axis=alt.Axis(format="%b %Y", labelAngle=0)),
            y=alt.Y("sessions:Q", title="Visits"),
            color=alt.Color(
                "partner_community:N", legend=alt.Legend(title=None), scale=alt.Scale(scheme="set2")
            ),
            tooltip=[
                alt.Tooltip("month_start:T", title="month", format="%B %Y"),
                alt.Tooltip("partner_community:N", title="partner"),
                alt.Tooltip("sessions:Q", title="visits", format=","),
                alt.Tooltip("key_events:Q", title="conversions", format=",.0f"),
            ],
        )
        .properties(width=width, height=170)
    )


def content_fit(frame: pd.DataFrame, width: int) -> alt.TopLevelMixin:
    """Content group x traffic class: how much better (above 1) or worse each travels than the site."""
    groups = frame["content_group"].nunique()
    # The colour scale is logarithmic (2 and 0.5 are as far from 1); an index of 0 is coloured as 0.05.
    frame = frame.assign(color_index=frame["index_vs_site"].clip(lower=0.05))
    x = alt.X("traffic_class:N", title=None, axis=alt.Axis(labelAngle=-40, labelLimit=140))
    y = alt.Y("content_group:N", title=None)
    cells = (
        alt.Chart(frame, name="fit_cells")
        .mark_rect()
        .encode(
            x=x,
            y=y,
            color=alt.Color(
                "color_index:Q",
                title="Index vs site",
                scale=alt.Scale(type="log", scheme="blueorange", domainMid=1),
                legend=alt.Legend(orient="right", format=".1f"),
            ),
            tooltip=[
                alt.Tooltip("content_group:N", title="content"),
                alt.Tooltip("traffic_class:N", title="channel"),
                alt.Tooltip("index_vs_site:Q", title="index", format=".2f"),
                alt.Tooltip("sessions:Q", title="visits", format=","),
            ],
        )
    )
    text = (
        alt.Chart(frame, name="fit_labels")
        .mark_text(fontSize=10 if width > 400 else 8)
        .encode(
            x=x,
            y=y,
            text=alt.Text("index_vs_site:Q", format=".1f"),
            # Dark cells (far from 1 either way) get white text.
            color=alt.condition(
                "datum.index_vs_site < 0.3 || datum.index_vs_site > 4", alt.value("white"), alt.value("#222")
            ),
        )
    )
    return alt.layer(cells, text).properties(width=width - 110, height=max(22 * groups, 120))
