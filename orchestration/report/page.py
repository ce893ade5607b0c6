"""The report page: one self-contained HTML file (inline CSS and SVG, no script, no link out).

Every section is a chart (drawn by charts.py) with one sentence on how to read it and what to be
careful about, written for the marketer who opens the file. A section whose mart is empty says
"not loaded" and which source fills it. Figures printed in the text carry a `data-figure` name,
so the browser test can compare them with the snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

import altair as alt
import pandas as pd

from orchestration.report import charts
from orchestration.report.data import ReportData

# What fills a mart, for the "not loaded" notes.
FILLED_BY = {
    "dark_social": "GA4",
    "shared": "GA4 (and a community source for the share counts)",
    "branded": "Google Search Console (and Meta for campaign flights)",
    "halo": "Meta ads together with Search Console",
    "attribution": "GA4 with the “How did you hear about us?” lead event",
    "communities": "Slack, Discourse or Discord",
    "partners": "GA4 visits tagged with a partner community",
    "fit": "GA4",
}

CSS = """
:root { --ink: #1f2933; --muted: #5f6b7a; --line: #e3e7ec; --bg: #f6f7f9; --accent: #3b6ea8; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: var(--bg); }
header, main { max-width: 1000px; margin: 0 auto; padding: 0 16px; }
header { padding-top: 24px; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.25rem; margin: 0 0 6px; }
h3 { font-size: 1.05rem; margin: 18px 0 4px; }
.meta { color: var(--muted); margin: 0 0 12px; }
.meta dt { font-weight: 600; color: var(--ink); }
.meta dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 8px 0; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(145px, 1fr)); gap: 10px;
        margin: 16px 0; padding: 0; list-style: none; }
.kpis li { background: white; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.kpis b { display: block; font-size: 1.4rem; color: var(--accent); }
.kpis span.label { color: var(--muted); font-size: 0.9rem; }
section { background: white; border: 1px solid var(--line); border-radius: 10px; padding: 18px;
          margin: 16px 0; }
.how { color: var(--muted); margin: 4px 0 10px; max-width: 75ch; }
figure { margin: 8px 0 0; }
figure svg { display: block; max-width: 100%; height: auto; }
.narrow { display: none; }
.not-loaded { background: #fff7e6; border: 1px solid #f3d9a4; border-radius: 6px; padding: 8px 12px; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 0.92rem; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); }
td { white-space: nowrap; }
td.num, th.num { text-align: right; }
code { font-size: 0.9em; }
footer { max-width: 1000px; margin: 0 auto; padding: 8px 16px 32px; color: var(--muted); font-size: 0.9rem; }
@media (max-width: 640px) {
  body { font-size: 15px; }
  section { padding: 12px; border-radius: 0; margin: 12px -16px; border-left: 0; border-right: 0; }
  .wide { display: none; }
  .narrow { display: block; }
}
"""


def _pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.{digits}%}"


def _num(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:,.{digits}f}"


def _figure(name: str, text: str) -> str:
    return f'<span data-figure="{escape(name)}">{escape(text)}</span>'


def _chart(name: str, build: Callable[[int], alt.TopLevelMixin], how: str) -> str:
    """A chart at both widths, with its one sentence on how to read it."""
    return (
        f'<figure class="chart" data-chart="{escape(name)}">'
        f'<div class="wide">{charts.to_svg(build(charts.WIDE))}</div>'
        f'<div class="narrow">{charts.to_svg(build(charts.NARROW))}</div>'
        f'<figcaption class="how">{how}</figcaption></figure>'
    )


def _not_loaded(what: str, key: str) -> str:
    return (
        f'<p class="not-loaded" data-not-loaded="{escape(key)}">Not loaded: {escape(what)} is empty in '
        f"this snapshot. It fills once {escape(FILLED_BY[key])} is loaded (README, “Connecting your own "
        "sources”).</p>"
    )


def _section(key: str, title: str, body: str) -> str:
    return f'<section id="{key}" data-section="{key}"><h2>{escape(title)}</h2>{body}</section>'


def _header(data: ReportData) -> str:
    info = data.info
    period = (
        f"{_figure('period_start', data.period[0].isoformat())} to "
        f"{_figure('period_end', data.period[1].isoformat())}"
        if data.period
        else "no data loaded yet"
    )
    refreshed = (
        _figure("published_at", info.published_at.strftime("%Y-%m-%d %H:%M UTC"))
        if info.published_at
        else "unknown"
    )
    loaded = (
        ", ".join(info.sources_loaded) if info.sources_loaded is not None else "not recorded in this snapshot"
    )
    not_loaded = (
        "; ".join(info.sources_not_loaded) or "none"
        if info.sources_not_loaded is not None
        else "not recorded in this snapshot"
    )
    passed, total = (
        _figure("checks_passed", str(info.checks_passed)),
        _figure("checks_total", str(info.checks_total)),
    )
    checks = (
        f"{passed} of {total} "
        "checks on the data upstream passed at their latest run; any others only warn, since a blocking "
        "check that fails stops the publish"
        if info.checks_total is not None
        else "not recorded in this snapshot"
    )
    h = data.headline
    kpis = []
    if "dark_social_share_high" in h:
        kpis.append(
            (
                _figure("dark_social_share_low", _pct(h["dark_social_share_low"]))
                + "–"
                + _figure("dark_social_share_high", _pct(h["dark_social_share_high"])),
                "of visits were dark social over the period (low to high)",
            )
        )
        kpis.append(
            (
                _figure("dark_social_share_28d", _pct(h["dark_social_share_28d"])),
                "dark social, last 28 days; the first 28 days: "
                + _figure("dark_social_share_first_28d", _pct(h["dark_social_share_first_28d"])),
            )
        )
        kpis.append(
            (
                _figure("dark_social_key_events", _num(h["dark_social_key_events"])),
                "conversions from dark social",
            )
        )
    if "branded_clicks" in h:
        kpis.append((_figure("branded_clicks", _num(h["branded_clicks"])), "branded search clicks"))
    if "dark_funnel_share" in h:
        kpis.append(
            (
                _figure("dark_funnel_share", _pct(h["dark_funnel_share"])),
                "of answered leads: word of mouth tracking missed",
            )
        )
    if "advocates" in h:
        kpis.append((_figure("advocates", str(h["advocates"])), "community advocates"))
    # The labels are fixed text and escaped figures, so they go into the page as they are.
    kpi_html = "".join(f'<li><b>{value}</b><span class="label">{label}</span></li>' for value, label in kpis)
    return (
        "<header><h1>Dark social and communities</h1>"
        '<div class="meta"><dl>'
        f"<dt>Period</dt><dd>{period}</dd>"
        f"<dt>Last refresh</dt><dd>{refreshed}</dd>"
        f'<dt>Sources loaded</dt><dd data-sources="loaded">{escape(loaded)}</dd>'
        f'<dt>Not loaded</dt><dd data-sources="not-loaded">{escape(not_loaded)}</dd>'
        f"<dt>Checks</dt><dd>{checks}</dd>"
        "</dl></div>"
        f'<ul class="kpis">{kpi_html}</ul></header>'
    )


def _dark_social(data: ReportData) -> str:
    if data.dark_weekly is None:
        return _section(
            "dark-social", "Dark social over time", _not_loaded("mart_dark_social_daily", "dark_social")
        )
    weekly, daily = data.dark_weekly, data.dark_daily
    flagged = int(daily["is_ga4_sampled_or_thresholded"].sum())
    body = _chart(
        "dark_social_over_time",
        lambda w: charts.dark_social_over_time(weekly, daily, w),
        "The blue band is the share of visits that came through private channels each week: its bottom "
        "counts only visits from messaging apps and webmail (certain), its top adds “direct” visits that "
        "landed deep in the site (likely a pasted link); the orange line is the top over the last 28 days, "
        f"the trend to watch. {_figure('ga4_flagged_days', str(flagged))} day(s) are marked where GA4 "
        "withheld or grouped rows for privacy, so read those days as approximate; the first and last "
        "weeks may be partial.",
    )
    body += _chart(
        "dark_social_conversions",
        lambda w: charts.dark_social_conversions(weekly, w),
        "Conversions (GA4 key events such as leads) that happened in dark social visits each week; this "
        "counts the top of the band, so it is the most dark social can have brought, not a certain figure.",
    )
    return _section("dark-social", "Dark social over time", body)


def _shared(data: ReportData) -> str:
    title = "What people share privately"
    if data.shared_pages is None:
        return _section("shared", title, _not_loaded("mart_dark_social_content", "shared"))
    pages = data.shared_pages
    top = pages.iloc[0]
    body = _chart(
        "shared_pages",
        lambda w: charts.shared_pages(pages, w),
        f"The {len(pages)} pages with the most dark social visits over the period; the top one, "
        f"<code>{escape(top['landing_path'])}</code>, had "
        f"{_figure('top_page_dark_sessions', _num(top['dark_social_sessions']))} "
        "such visits. A label counts the posts linking the page in your own communities; a page shared a "
        "lot in private but rarely in public is content people pass on by hand.",
    )
    return _section("shared", title, body)


def _branded(data: ReportData) -> str:
    title = "Branded search"
    if data.branded_daily is None:
        return _section("branded", title, _not_loaded("mart_branded_search_daily", "branded"))
    daily, campaigns = data.branded_daily, data.campaigns
    body = _chart(
        "branded_search",
        lambda w: charts.branded_search(daily, campaigns, w),
        "Searches on Google that name the brand: clicks on top, how often the site was shown below it, "
        "and the days each Meta campaign ran at the bottom. Search Console hides rare queries, so these "
        "are a floor, and its days run on Pacific time.",
    )
    if campaigns is None:
        body += _not_loaded("mart_campaign_halo", "halo")
    else:
        body += "<h3>Halo per campaign</h3>" + _chart(
            "campaign_halo",
            lambda w: charts.campaign_halo(campaigns, w),
            "Branded clicks a day in the 28 days before each campaign against its flight plus the 7 days "
            "after, with the change in bold. It is a before/after comparison, not an experiment: anything "
            "else in those weeks (season, a launch, community buzz) shows up in it too; a campaign without "
            "a full 28 days of history before it has no “before” bar.",
        )
    return _section("branded", title, body)


def _attribution(data: ReportData) -> str:
    title = "“How did you hear about us?” next to tracking"
    if data.attribution_said is None:
        return _section("attribution", title, _not_loaded("mart_attribution_gap", "attribution"))
    said, tracked, funnel = data.attribution_said, data.attribution_tracked, data.dark_funnel_monthly
    body = _chart(
        "attribution_gap",
        lambda w: charts.attribution_gap(said, tracked, w),
        "Each month, the same answered leads twice: by what people said brought them, and by where "
        "analytics filed their visit. Where people say “a colleague” or “a community” but analytics says "
        "direct or search, the credit is going to the wrong place. Leads that did not answer are left "
        "out, and a week counts in the month of its Monday.",
    )
    if funnel is not None:
        share = _figure("dark_funnel_share_text", _pct(data.headline["dark_funnel_share"]))
        body += _chart(
            "dark_funnel",
            lambda w: charts.dark_funnel(funnel, w),
            f"The dark funnel: of answered leads, the share ({share} "
            "over the period) who named word of mouth while tracking saw direct, organic search or referral. "
            "A month with few answers swings more.",
        )
    return _section("attribution", title, body)


def _table(frame: pd.DataFrame, columns: list[tuple[str, str, Callable[[object], str]]], name: str) -> str:
    head = "".join(
        f'<th class="{"num" if fmt is not str else ""}">{escape(label)}</th>' for _, label, fmt in columns
    )
    rows = []
    for record in frame.to_dict("records"):
        cells = "".join(
            f'<td class="{"num" if fmt is not str else ""}">{escape(fmt(record[col]))}</td>'
            for col, _, fmt in columns
        )
        rows.append(f"<tr>{cells}</tr>")
    return (
        f'<div class="table-wrap"><table data-table="{name}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _minutes(value: object) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    return f"{value / 60:.1f} h" if value >= 90 else f"{value:.0f} min"


def _communities(data: ReportData) -> str:
    title = "Communities"
    if data.health_weekly is None:
        return _section("communities", title, _not_loaded("mart_community_health_weekly", "communities"))
    health, latest = data.health_weekly, data.health_latest
    body = "<h3>Health per community</h3>" + _chart(
        "community_activity",
        lambda w: charts.community_activity(health, w),
        "Members with at least one post, reply or reaction each week, per community; the last week may "
        "still be filling in. The table gives the mean of the last four complete weeks: answered is the "
        "share of members' questions someone else replied to within 7 days.",
    )
    body += _table(
        latest,
        [
            ("community", "Community", str),
            ("active_members", "Active a week", lambda v: _num(v, 1)),
            ("new_members", "New a week", lambda v: _num(v, 1)),
            ("threads_answered_pct", "Answered", lambda v: _pct(v, 0)),
            ("median_minutes_to_first_response", "First answer (median)", _minutes),
            ("retention_4w", "Retained (4 weeks)", lambda v: _pct(v, 0)),
        ],
        "community_health",
    )
    if data.interests_weekly is not None:
        interests = data.interests_weekly
        body += "<h3>Interests</h3>" + _chart(
            "interests",
            lambda w: charts.interests(interests, data.interest_growth, w),
            "Posts, replies and reactions a week per topic; the legend compares the last full week with the "
            "mean of the four weeks before (+25% is a quarter more than usual). One week is noisy and the "
            "last one may be partial, so look for a line that keeps climbing.",
        )
    if data.members is not None:
        members, advocates = data.members, data.advocates
        body += "<h3>Advocates</h3>" + _chart(
            "members",
            lambda w: charts.members(members, w),
            "Every member (staff left out) active in the last 90 days: further right does more, higher "
            "talks with more people; red dots are advocates worth a personal thank-you. Members are "
            "pseudonyms; only the holder of the hashing key can tell who they are. Past "
            f"{charts.MEMBER_POINTS_MAX:,} members, participants who did about as much share one point.",
        )
        body += _table(
            advocates,
            [
                ("member", "Member (pseudonym)", str),
                ("platform", "Platform", str),
                ("level", "Level", str),
                ("love", "Love", lambda v: _num(v, 1)),
                ("reach", "Reach", lambda v: _num(v)),
                ("brand_links_shared", "Links shared", lambda v: _num(v)),
            ],
            "advocates",
        )
    if data.partners is not None:
        partners = data.partners
        body += "<h3>Partner communities</h3>" + _chart(
            "partners",
            lambda w: charts.partners(partners, w),
            "Visits a month from partner communities, counted only when the link carried the partner's "
            "tag (or came from its site); the first and last months may be partial.",
        )
    else:
        body += "<h3>Partner communities</h3>" + _not_loaded("mart_partner_referrals", "partners")
    if data.content_fit is not None:
        fit = data.content_fit
        body += "<h3>Which content fits which channel</h3>" + _chart(
            "content_fit",
            lambda w: charts.content_fit(fit, w),
            "Over the last 90 days, how much more (orange, above 1) or less (blue, below 1) each kind of "
            "content arrives through a channel than the site as a whole; small cells with few visits can "
            "show large numbers by chance.",
        )
    return _section("communities", title, body)


def render(data: ReportData) -> str:
    """The whole page as one HTML string."""
    sections = [_dark_social, _shared, _branded, _attribution, _communities]
    body = "".join(build(data) for build in sections)
    tables = ", ".join(t for t in data.info.tables) or "none"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Dark social and communities: report</title>"
        f"<style>{CSS}</style></head><body>"
        f"{_header(data)}<main>{body}</main>"
        f"<footer>Built from the serving snapshot (tables: {escape(tables)}). Every figure comes from the "
        "marts; the README (“What it builds”) says how each is defined.</footer>"
        "</body></html>"
    )
