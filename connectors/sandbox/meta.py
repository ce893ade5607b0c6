"""The brand's Meta ad account and pixel: campaigns, ad sets, ads, daily insights, hourly pixel events.

Consistent with the GA4 sandbox (`connectors.sandbox.ga4`): the Meta campaigns are the facebook /
paid_social channels GA4 reports, with the same names and flights:

- "Always-on retargeting": every day from SANDBOX_START_DATE.
- "Lead gen - dark social ebook": 2025-10-06 .. 2025-12-14.
- "Spring brand awareness" (PLANTED.meta_campaign_name): PLANTED.meta_flight_start ..
  PLANTED.meta_flight_end; it has spend > 0 on exactly those days.

Each campaign has 2-3 ad sets with META_ADS_PER_ADSET[scale] ads each. Like Meta, insights have a
row only for an ad that delivered on the day (spend > 0), and an `actions` entry only for an action
type with a non-zero count.

Pixel events (hourly, UTC) are consistent with the insights' pixel actions: per day, every pixel
event count is at least the insights' count of that action (the pixel also sees organic
conversions). Planted: pixel `Lead` / insights `offsite_conversion.fb_pixel_lead` is
META_PIXEL_LEAD_RATIO (1.3) ± 0.03 per day before rounding to whole events, so within ±0.1 on
every day with at least 5 insights leads.

Everything for a date depends only on (seed, date): `random.Random(f"{seed}:meta:{what}:{date}")`.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from connectors.sandbox.brand import (
    META_ADS_PER_ADSET,
    META_PIXEL_LEAD_RATIO,
    PLANTED,
    SANDBOX_META_AD_ACCOUNT_ID,
    SANDBOX_START_DATE,
    check_scale,
    traffic_factor,
)


@dataclass(frozen=True)
class MetaCampaign:
    id: str
    name: str
    objective: str
    start: date
    end: date | None
    adsets: tuple[str, ...]
    daily_impressions: float  # per ad on a Monday at SANDBOX_START_DATE
    cpm: float  # spend per 1000 impressions
    ctr: float  # clicks / impressions
    lead_rate: float  # fb_pixel_lead / link clicks
    purchase_rate: float  # fb_pixel_purchase / link clicks

    def active(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


CAMPAIGNS: tuple[MetaCampaign, ...] = (
    MetaCampaign(
        "120210000000000101",
        "Always-on retargeting",
        "OUTCOME_SALES",
        SANDBOX_START_DATE,
        None,
        ("Site visitors 30d", "Pricing page visitors"),
        daily_impressions=6000.0,
        cpm=14.0,
        ctr=0.014,
        lead_rate=0.07,
        purchase_rate=0.012,
    ),
    MetaCampaign(
        "120210000000000202",
        "Lead gen - dark social ebook",
        "OUTCOME_LEADS",
        date(2025, 10, 6),
        date(2025, 12, 14),
        ("Marketing managers", "Lookalike 1% - leads", "Interest - B2B analytics"),
        daily_impressions=4500.0,
        cpm=9.5,
        ctr=0.011,
        lead_rate=0.12,
        purchase_rate=0.0,
    ),
    MetaCampaign(
        "120210000000000303",
        PLANTED.meta_campaign_name,
        "OUTCOME_AWARENESS",
        PLANTED.meta_flight_start,
        PLANTED.meta_flight_end,
        ("Broad - US and EU", "Lookalike 3% - customers", "Interest - marketing analytics"),
        daily_impressions=9000.0,
        cpm=6.0,
        ctr=0.008,
        lead_rate=0.04,
        purchase_rate=0.002,
    ),
)

# Pixel standard events and the insights action each one counts.
PIXEL_EVENTS: tuple[tuple[str, str], ...] = (
    ("PageView", "offsite_conversion.fb_pixel_page_view"),
    ("Lead", "offsite_conversion.fb_pixel_lead"),
    ("CompleteRegistration", "offsite_conversion.fb_pixel_complete_registration"),
    ("Purchase", "offsite_conversion.fb_pixel_purchase"),
)
# UTC hour-of-day weights of pixel events (the audience is in Europe and the Americas).
_DIURNAL = (
    0.35, 0.25, 0.2, 0.2, 0.25, 0.35, 0.5, 0.7, 0.9, 1.0, 1.05, 1.05,
    1.0, 1.1, 1.2, 1.25, 1.2, 1.1, 1.0, 0.9, 0.8, 0.7, 0.55, 0.45,
)  # fmt: skip


@dataclass(frozen=True)
class MetaAd:
    account_id: str
    campaign: MetaCampaign
    adset_id: str
    adset_name: str
    ad_id: str
    ad_name: str
    weight: float


@functools.cache
def ads(scale: str) -> tuple[MetaAd, ...]:
    """Every ad of the account at a scale (the same for every seed)."""
    per_adset = META_ADS_PER_ADSET[check_scale(scale)]
    out = []
    for c_index, campaign in enumerate(CAMPAIGNS):
        for s_index, adset_name in enumerate(campaign.adsets):
            adset_id = f"1202100000{c_index + 1:02d}{s_index + 1:02d}0000"
            for a_index in range(per_adset):
                creative = ("Video", "Carousel", "Single image")[a_index % 3]
                suffix = f" {a_index // 3 + 1}" if a_index >= 3 else ""
                out.append(
                    MetaAd(
                        account_id=SANDBOX_META_AD_ACCOUNT_ID,
                        campaign=campaign,
                        adset_id=adset_id,
                        adset_name=adset_name,
                        ad_id=f"{adset_id[:-4]}{a_index + 1:04d}",
                        ad_name=f"{campaign.name} - {adset_name} - {creative}{suffix}",
                        weight=1.0 / (1.0 + 0.35 * a_index) / (1.0 + 0.2 * s_index),
                    )
                )
    return tuple(out)


def _gauss_factor(rng: random.Random, sigma: float) -> float:
    return max(0.2, 1.0 + rng.gauss(0.0, sigma))


@functools.lru_cache(maxsize=256)
def insights_day(seed: int, scale: str, day: date) -> tuple[dict, ...]:
    """The day's insights rows at level=ad, every field requested by the connector, Meta-typed.

    Numbers are strings (as Meta sends them); `actions` lists {action_type, value} with value > 0.
    """
    rng = random.Random(f"{seed}:meta:insights:{day.isoformat()}")
    factor = traffic_factor(day)
    rows = []
    for ad in ads(scale):
        draw = (rng.gauss(0, 1), rng.gauss(0, 1), rng.gauss(0, 1), rng.random(), rng.random())
        if not ad.campaign.active(day):
            continue
        c = ad.campaign
        impressions = max(1, round(c.daily_impressions * ad.weight * factor * max(0.3, 1 + 0.15 * draw[0])))
        cpm = c.cpm * max(0.5, 1 + 0.1 * draw[1])
        spend = round(impressions * cpm / 1000.0, 2)
        if spend <= 0:
            spend = 0.01
        reach = max(1, round(impressions / (1.25 + 0.5 * draw[3])))
        clicks = round(impressions * c.ctr * max(0.3, 1 + 0.2 * draw[2]))
        link_clicks = round(clicks * (0.6 + 0.25 * draw[4]))
        page_views = round(link_clicks * 0.85)
        leads = round(link_clicks * c.lead_rate)
        registrations = round(leads * 0.3)
        purchases = round(link_clicks * c.purchase_rate)
        counts = (
            ("link_click", link_clicks),
            ("offsite_conversion.fb_pixel_page_view", page_views),
            ("offsite_conversion.fb_pixel_lead", leads),
            ("offsite_conversion.fb_pixel_complete_registration", registrations),
            ("offsite_conversion.fb_pixel_purchase", purchases),
        )
        rows.append(
            {
                "account_id": ad.account_id,
                "campaign_id": c.id,
                "campaign_name": c.name,
                "adset_id": ad.adset_id,
                "adset_name": ad.adset_name,
                "ad_id": ad.ad_id,
                "ad_name": ad.ad_name,
                "spend": f"{spend:.2f}",
                "impressions": str(impressions),
                "reach": str(reach),
                "clicks": str(clicks),
                "inline_link_clicks": str(link_clicks),
                "actions": [{"action_type": t, "value": str(v)} for t, v in counts if v > 0],
                "cpm": f"{spend * 1000.0 / impressions:.6f}",
                "ctr": f"{100.0 * clicks / impressions:.6f}",
                "frequency": f"{impressions / reach:.6f}",
                "objective": c.objective,
                "account_name": "Northwind Analytics - Ads",
                "account_currency": "EUR",
                "date_start": day.isoformat(),
                "date_stop": day.isoformat(),
            }
        )
    return tuple(rows)


def insights_action_totals(seed: int, scale: str, day: date) -> dict[str, int]:
    """Sum over the day's insights rows of each action type."""
    totals: dict[str, int] = {}
    for row in insights_day(seed, scale, day):
        for action in row["actions"]:
            totals[action["action_type"]] = totals.get(action["action_type"], 0) + int(action["value"])
    return totals


def _allocate(rng: random.Random, total: int) -> list[int]:
    """`total` spread over the 24 hours of a day by the diurnal curve with noise; sums exactly."""
    weights = [w * rng.uniform(0.75, 1.25) for w in _DIURNAL]
    norm = sum(weights)
    shares = [total * w / norm for w in weights]
    counts = [int(s) for s in shares]
    order = sorted(range(24), key=lambda h: shares[h] - counts[h], reverse=True)
    for h in order[: total - sum(counts)]:
        counts[h] += 1
    return counts


@functools.lru_cache(maxsize=256)
def pixel_day(seed: int, scale: str, day: date) -> tuple[tuple[datetime, tuple[tuple[str, int], ...]], ...]:
    """The day's pixel events: ((hour start UTC, ((event, count), ...)), ...) for hours with events."""
    rng = random.Random(f"{seed}:meta:pixel:{day.isoformat()}")
    paid = insights_action_totals(seed, scale, day)
    factor = traffic_factor(day)
    daily: dict[str, int] = {}
    for event, action in PIXEL_EVENTS:
        from_ads = paid.get(action, 0)
        if event == "Lead":
            ratio = META_PIXEL_LEAD_RATIO + rng.uniform(-0.03, 0.03)
            daily[event] = round(from_ads * ratio)
        elif event == "PageView":
            daily[event] = from_ads + round(900 * factor * _gauss_factor(rng, 0.08))
        else:
            daily[event] = from_ads + round(from_ads * rng.uniform(0.1, 0.4))
    per_hour = {event: _allocate(rng, count) for event, count in daily.items()}
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    out = []
    for hour in range(24):
        events = tuple((e, per_hour[e][hour]) for e, _ in PIXEL_EVENTS if per_hour[e][hour] > 0)
        if events:
            out.append((start + timedelta(hours=hour), events))
    return tuple(out)
