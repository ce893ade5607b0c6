"""Each planted effect (connectors/sandbox/brand.py) is recoverable from the raw GA4 rows.

The effects are measured the way the marts will measure them: from rows served over HTTP,
classified by the test's docs/metrics.md §1 classifier (conftest.py).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import date, timedelta

import pytest

from connectors.sandbox.brand import PLANTED, SANDBOX_START_DATE, WORD_OF_MOUTH_ANSWERS, normalise_path
from connectors.sandbox.ga4 import quality_flags

DARK = ("dark_social_messaging", "dark_social_direct")


def _day(text: str) -> date:
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def test_messaging_is_about_forty_percent_of_dark_social(ga4, make_sessions_body, classify):
    rows = ga4.rows(make_sessions_body(date(2025, 10, 1), date(2025, 11, 30)))
    dark = Counter()
    for r in rows:
        dark[classify(r)] += r["sessions"]
    messaging = dark["dark_social_messaging"] / (dark["dark_social_messaging"] + dark["dark_social_direct"])
    assert 0.36 < messaging < 0.44


def test_shared_playbook_ranks_first_by_dark_sessions_in_share_weeks_only(ga4, make_sessions_body, classify):
    share_dates = [d for d in PLANTED.share_dates(date(2026, 6, 30)) if d >= date(2026, 1, 1)][:3]
    assert all(d.weekday() == 1 for d in share_dates)  # Tuesdays: the 4-day window stays in one ISO week
    for share in share_dates:
        monday = share - timedelta(days=share.weekday())
        for week_start, expect_first in ((monday, True), (monday + timedelta(days=7), False)):
            dark_by_page = Counter()
            for r in ga4.rows(make_sessions_body(week_start, week_start + timedelta(days=6))):
                if classify(r) in DARK:
                    dark_by_page[normalise_path(r["landingPagePlusQueryString"])] += r["sessions"]
            ranking = [page for page, _ in dark_by_page.most_common()]
            if expect_first:
                assert ranking[0] == PLANTED.shared_page, (share, dark_by_page.most_common(3))
            else:
                assert ranking[0] != PLANTED.shared_page and PLANTED.shared_page in ranking[:10]


def test_shared_playbook_dark_sessions_jump_about_five_fold(ga4, make_sessions_body, classify):
    share = next(d for d in PLANTED.share_dates(date(2026, 12, 31)) if d >= date(2026, 2, 1))
    daily = Counter()
    for r in ga4.rows(make_sessions_body(share - timedelta(days=28), share + timedelta(days=3))):
        if classify(r) in DARK and normalise_path(r["landingPagePlusQueryString"]) == PLANTED.shared_page:
            daily[_day(r["date"])] += r["sessions"]
    window = [share + timedelta(days=k) for k in range(4)]
    # Baseline: the same weekdays in the 4 weeks before, outside the previous share window.
    baseline = [
        d - timedelta(weeks=w)
        for d in window
        for w in range(1, 5)
        if PLANTED.share_date_for(d - timedelta(weeks=w)) is None
    ]
    assert len(baseline) >= 12
    lift = statistics.mean(daily[d] for d in window) / statistics.mean(daily[d] for d in baseline)
    assert 3.5 < lift < 7.0


def test_meta_flight_lifts_deep_link_direct_and_brings_its_campaign(ga4, make_sessions_body, classify):
    def direct_share(start: date, end: date) -> tuple[float, set[str]]:
        total = direct = 0
        campaigns_by_day = set()
        for r in ga4.rows(make_sessions_body(start, end)):
            total += r["sessions"]
            if classify(r) == "dark_social_direct":
                direct += r["sessions"]
            if r["sessionCampaignName"] == PLANTED.meta_campaign_name:
                assert (r["sessionSource"], r["sessionMedium"]) == ("facebook", "paid_social")
                campaigns_by_day.add(r["date"])
        return direct / total, campaigns_by_day

    start, halo_end = PLANTED.meta_flight_start, PLANTED.halo_end
    during, flight_days = direct_share(start, halo_end)
    before, before_days = direct_share(start - timedelta(days=35), start - timedelta(days=1))
    after, _ = direct_share(halo_end + timedelta(days=1), halo_end + timedelta(days=35))
    assert 0.07 < during / before - 1 < 0.25  # +15% on sessions, a little less on the share
    assert during > after
    assert before_days == set()
    assert min(flight_days) == "20260302" and max(flight_days) == "20260329"


def test_leads_answers_and_the_dark_funnel(ga4, make_leads_body, make_sessions_body, classify):
    start, end = date(2026, 1, 5), date(2026, 2, 15)
    leads = ga4.rows(make_leads_body(start, end))
    total = sum(r["keyEvents"] for r in leads)
    blank = sum(r["keyEvents"] for r in leads if r["customEvent:how_heard"] == "(not set)")
    word_of_mouth = {answer for answer, _ in WORD_OF_MOUTH_ANSWERS}
    wom_rows = [r for r in leads if r["customEvent:how_heard"] in word_of_mouth]
    wom = sum(r["keyEvents"] for r in wom_rows)
    tracked = sum(
        r["keyEvents"]
        for r in wom_rows
        if classify(r) in ("direct_typed", "dark_social_direct", "organic_search", "referral")
    )
    assert 0.27 < blank / total < 0.33
    assert 0.42 < wom / (total - blank) < 0.48
    assert 0.75 < tracked / wom < 0.85
    assert len({r["customEvent:how_heard"] for r in leads}) >= 15  # free text, not a pick list

    # Every lead is a key event of the sessions report, on the same source, medium and page.
    sessions = ga4.rows(make_sessions_body(start, end))
    key_events = Counter()
    for r in sessions:
        key_events[(r["date"], r["sessionSource"], r["landingPagePlusQueryString"])] += r["keyEvents"]
    lead_events = Counter()
    for r in leads:
        lead_events[(r["date"], r["sessionSource"], r["landingPagePlusQueryString"])] += r["keyEvents"]
    flagged = {d.strftime("%Y%m%d") for d in _days(start, end) if any(quality_flags(42, d))}
    clean_keys = {k for k in key_events | lead_events if k[0] not in flagged}
    assert len(clean_keys) > 100
    for key in clean_keys:
        assert key_events[key] == lead_events[key], key
    rate = total / sum(r["sessions"] for r in sessions)
    assert 0.02 <= rate <= 0.03


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


@pytest.fixture(scope="module")
def flagged_days(today) -> dict[str, list[date]]:
    out = defaultdict(list)
    for day in _days(SANDBOX_START_DATE, today - timedelta(days=1)):
        thresholded, other_row = quality_flags(42, day)
        if thresholded:
            out["thresholded"].append(day)
        if other_row:
            out["other_row"].append(day)
        if not (thresholded or other_row):
            out["clean"].append(day)
    return out


def test_some_days_are_thresholded_or_folded_into_other(flagged_days, today):
    days = (today - SANDBOX_START_DATE).days
    assert 0.01 < len(flagged_days["thresholded"]) / days < 0.06
    assert 0.005 < len(flagged_days["other_row"]) / days < 0.05


def test_flagged_days_say_so_in_metadata_and_fold_an_other_row(ga4, make_sessions_body, flagged_days):
    thresholded = next(d for d in flagged_days["thresholded"] if d not in flagged_days["other_row"])
    payload = ga4.report(make_sessions_body(thresholded))
    assert payload["metadata"]["subjectToThresholding"] is True
    assert "dataLossFromOtherRow" not in payload["metadata"]

    other_day = flagged_days["other_row"][0]
    payload = ga4.report(make_sessions_body(other_day))
    assert payload["metadata"]["dataLossFromOtherRow"] is True
    other = [r for r in payload["rows"] if r["dimensionValues"][1]["value"] == "(other)"]
    assert len(other) == 1
    assert [v["value"] for v in other[0]["dimensionValues"]] == [other_day.strftime("%Y%m%d")] + [
        "(other)"
    ] * 5
    assert int(other[0]["metricValues"][0]["value"]) >= 5

    clean = ga4.report(make_sessions_body(flagged_days["clean"][40]))
    assert clean["metadata"] == {"currencyCode": "USD", "timeZone": "Etc/UTC"}
    assert all(r["dimensionValues"][1]["value"] != "(other)" for r in clean["rows"])
