"""The Search Console data of the sandbox brand: one day of query rows and its totals, deterministic.

A day is generated top-down: expected Google web-search clicks (GA4's google organic sessions:
growth x weekday x a little noise, see brand.GSC_CLICKS_PER_NON_DARK_SESSION), split between
branded queries (GSC_BRANDED_CLICK_SHARE, lifted by GSC_BRANDED_LIFT during the Meta halo) and a
non-branded long tail. Each query has a typical position and the click-through rate that goes
with it; its impressions are drawn, spread over its pages, devices and countries, and each
combination's clicks are drawn from its impressions (so clicks <= impressions, ctr = clicks /
impressions, position >= 1). Then 15-25% of the day's clicks are anonymized: they exist only in
the day's totals, like the rare queries Google hides.

Data for a date depends only on (seed, scale, date): every random stream is `random.Random`
seeded with f"{seed}:gsc:<what>:<date>"; nothing here reads the clock.
"""

from __future__ import annotations

import functools
import math
import random
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

from connectors.sandbox.brand import (
    GSC_ANONYMIZED_CLICK_SHARE,
    GSC_BRANDED_CLICK_SHARE,
    GSC_BRANDED_LIFT,
    GSC_BRANDED_QUERIES,
    GSC_CLICKS_PER_NON_DARK_SESSION,
    GSC_COUNTRIES,
    GSC_DEVICES,
    GSC_PAGE_ORIGIN,
    PLANTED,
    SCALES,
    check_scale,
    site_pages,
    traffic_factor,
)

# Non-branded queries per scale (the long tail; most get an impression only now and then).
# The demo keeps its history quick to load (a few minutes for all sources on 2 cores).
QUERY_COUNTS = {"small": 150, "demo": 250, "large": 6000}
_DEVICE_CTR = {"DESKTOP": 1.05, "MOBILE": 0.92, "TABLET": 0.85}
_BRANDED_PAGES = ("/", "/pricing", "/login", "/demo", "/features")

_TOPICS = (
    "dark social",
    "dark social attribution",
    "dark social traffic",
    "dark social marketing",
    "dark funnel",
    "self reported attribution",
    "how did you hear about us",
    "utm tracking",
    "utm parameters",
    "ga4 direct traffic",
    "direct traffic",
    "marketing attribution",
    "b2b attribution",
    "multi touch attribution",
    "community led growth",
    "slack community",
    "word of mouth marketing",
    "brand search",
    "branded search lift",
    "campaign halo effect",
    "incrementality testing",
    "marketing mix modeling",
    "first party data",
    "server side tagging",
    "chatgpt referral traffic",
    "ai search traffic",
    "referral traffic",
    "content distribution",
    "pipeline reporting",
    "lead source tracking",
    "dbt marketing models",
    "marketing data warehouse",
    "duckdb analytics",
    "search console api",
    "ga4 data api",
    "community analytics",
    "discord community metrics",
    "discourse analytics",
    "podcast attribution",
    "linkedin ads attribution",
)
_TEMPLATES = (
    "{t}",
    "what is {t}",
    "how to measure {t}",
    "how to track {t}",
    "{t} tools",
    "{t} software",
    "{t} examples",
    "{t} guide",
    "{t} definition",
    "best {t} tools",
    "{t} 2026",
    "{t} template",
    "{t} vs last touch",
    "{t} for b2b",
    "measuring {t}",
    "{t} benchmark",
)


@dataclass(frozen=True)
class Query:
    text: str
    branded: bool
    weight: float  # share of its group's expected clicks
    position: float  # typical average position
    ctr: float  # expected click-through rate at that position
    pages: tuple[str, ...]  # full URLs it ranks with


# A row: query, page, device, country, clicks, impressions, ctr, position.
Row = tuple


@dataclass(frozen=True)
class GscDay:
    rows: tuple[Row, ...]  # visible query rows, clicks descending
    hidden_clicks: int  # anonymized queries: only in the totals
    hidden_impressions: int
    hidden_position: float

    def totals(self) -> tuple[int, int, float, float]:
        """(clicks, impressions, ctr, position) of the date-only query: every click of the day."""
        clicks = sum(r[4] for r in self.rows) + self.hidden_clicks
        impressions = sum(r[5] for r in self.rows) + self.hidden_impressions
        weighted = sum(r[5] * r[7] for r in self.rows) + self.hidden_impressions * self.hidden_position
        ctr = clicks / impressions if impressions else 0.0
        position = weighted / impressions if impressions else 0.0
        return clicks, impressions, ctr, position


def expected_ctr(position: float) -> float:
    """A typical organic click-through curve: ~0.32 at position 1, ~0.03 at 10."""
    return min(0.6, 0.32 / position**1.05)


def page_url(path: str) -> str:
    return GSC_PAGE_ORIGIN + path


@functools.cache
def queries(scale: str) -> tuple[Query, ...]:
    """The brand's queries at a scale: branded first, then the long tail (same for every seed)."""
    check_scale(scale)
    rng = random.Random(f"gsc:queries:{scale}")
    pages = [p for p in site_pages(scale) if p.kind not in ("landing", "not_set")]
    popular = [p.path for p in pages]
    popularity = [p.popularity for p in pages]
    out: list[Query] = []
    total_brand = sum(w for _, w in GSC_BRANDED_QUERIES)
    for text, weight in GSC_BRANDED_QUERIES:
        position = 1.0 + rng.uniform(0.0, 0.6)
        landing = (
            ("/login",) if "login" in text else ("/pricing",) if "pricing" in text else _BRANDED_PAGES[:2]
        )
        out.append(
            Query(text, True, weight / total_brand, position, 0.45 / position, tuple(map(page_url, landing)))
        )
    n = QUERY_COUNTS[scale]
    texts: list[str] = []
    seen: set[str] = set()
    # The classic phrases first, then the combinations in a seeded order.
    combos = [tpl.format(t=t) for t in _TOPICS for tpl in _TEMPLATES]
    head, tail = combos[: len(_TOPICS)], combos[len(_TOPICS) :]
    rng.shuffle(tail)
    for text in ["dark social attribution", "how to measure dark social", *head, *tail]:
        if text not in seen:
            seen.add(text)
            texts.append(text)
    k = 2
    while len(texts) < n:  # the largest scale runs out of combinations: number the rest
        texts.extend(f"{t} {k}" for t in combos[: n - len(texts)])
        k += 1
    weights = [1.0 / (rank + 3) ** 1.1 for rank in range(n)]
    total = sum(weights)
    by_word: dict[str, list[str]] = {}  # a page ranks for the words of its path
    for path in popular:
        for word in set(re.split(r"[/\-?=&]", path.lower())):
            by_word.setdefault(word, []).append(path)
    for rank, text in enumerate(texts[:n]):
        matching = [p for word in text.split() if len(word) > 4 for p in by_word.get(word, [])]
        first = rng.choice(matching[:8]) if matching else rng.choices(popular, weights=popularity)[0]
        second = rng.choices(popular, weights=popularity)[0]
        landing = (first,) if second == first or rng.random() < 0.6 else (first, second)
        position = min(60.0, 2.0 + rng.expovariate(1.0 / (3.0 + rank * 0.05)))
        out.append(
            Query(
                text,
                False,
                weights[rank] / total,
                position,
                expected_ctr(position),
                tuple(map(page_url, landing)),
            )
        )
    return tuple(out)


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _binomial(rng: random.Random, n: int, p: float) -> int:
    if n <= 0 or p <= 0.0:
        return 0
    if n < 40:
        draw = rng.random
        return sum(1 for _ in range(n) if draw() < p)
    mean = n * p
    return min(n, max(0, round(rng.gauss(mean, math.sqrt(mean * (1.0 - p))))))


def expected_clicks(scale: str, day: date) -> float:
    """Expected web-search clicks of a day (before noise and the planted lift)."""
    sessions = SCALES[scale].base_sessions * traffic_factor(day)
    return sessions * (1.0 - PLANTED.dark_share_on(day)) * GSC_CLICKS_PER_NON_DARK_SESSION


@functools.cache
def _halo_growth_correction(scale: str) -> float:
    """Makes the planted lift exact as docs/metrics.md §2 measures it: mean branded clicks a day in the
    halo (flight start .. flight end + 7) / mean over the 28 days before the flight = 1 + lift,
    although traffic keeps growing in between."""
    start = PLANTED.meta_flight_start

    def mean(first: date, days: int) -> float:
        return sum(expected_clicks(scale, first + timedelta(days=i)) for i in range(days)) / days

    halo_days = (PLANTED.halo_end - start).days + 1
    return mean(start - timedelta(days=28), 28) / mean(start, halo_days)


def _branded_impressions(rng: random.Random, mean: float) -> int:
    # People who look for the brand by name come steadily: half the spread of a Poisson draw.
    if mean <= 0:
        return 0
    return max(0, round(rng.gauss(mean, 0.5 * math.sqrt(mean))))


_COMBO_DEVICES = tuple(d for d, _ in GSC_DEVICES)
_COMBO_COUNTRIES = tuple(c for c, _ in GSC_COUNTRIES)
_COMBO_WEIGHTS = tuple(dw * cw for _, dw in GSC_DEVICES for _, cw in GSC_COUNTRIES)


# (seed, scale, day) -> what the date-only query adds up for the day: (clicks, impressions,
# impressions x position summed in row order, has any row). Filled by generate_day, a few bytes a
# day, so loading the totals after the query rows does not generate every day a second time.
_DAY_SUMS: dict[tuple[int, str, date], tuple[int, int, float, bool]] = {}


def day_sums(seed: int, scale: str, day: date) -> tuple[int, int, float, bool]:
    """(clicks, impressions, weighted position sum, has rows) of a day's rows and anonymized queries,
    summed in the order the date-only query sums them (so the floats are identical)."""
    sums = _DAY_SUMS.get((seed, scale, day))
    if sums is None:
        sums = _DAY_SUMS[(seed, scale, day)] = _sums(generate_day(seed, scale, day))
    return sums


@functools.lru_cache(maxsize=128)
def generate_day(seed: int, scale: str, day: date) -> GscDay:
    """One day of Search Console data as `searchAnalytics.query` serves it (final data).

    Cached: paging through a day asks for the same day many times (and day_sums keeps its totals).
    """
    check_scale(scale)
    rng = random.Random(f"{seed}:gsc:rows:{day.isoformat()}")
    total = expected_clicks(scale, day) * math.exp(rng.gauss(0.0, 0.05))
    branded_total = total * GSC_BRANDED_CLICK_SHARE
    if PLANTED.in_halo(day):
        branded_total *= (1.0 + GSC_BRANDED_LIFT) * _halo_growth_correction(scale)
    anonymized_share = rng.uniform(*GSC_ANONYMIZED_CLICK_SHARE)
    # The anonymized clicks come out of the long tail: visible non-branded clicks are what is left.
    visible_tail = max(0.0, total * (1.0 - GSC_BRANDED_CLICK_SHARE - anonymized_share))

    n_combos = len(_COMBO_WEIGHTS)
    rows: list[Row] = []
    for q in queries(scale):
        clicks_expected = (branded_total if q.branded else visible_tail) * q.weight
        draw = _branded_impressions if q.branded else _poisson
        impressions = draw(rng, clicks_expected / q.ctr)
        if impressions == 0:
            continue
        picks = Counter(
            rng.choices(range(n_combos * len(q.pages)), weights=_COMBO_WEIGHTS * len(q.pages), k=impressions)
        )
        for combo in sorted(picks):
            shown = picks[combo]
            page = q.pages[combo // n_combos]
            device = _COMBO_DEVICES[(combo % n_combos) // len(_COMBO_COUNTRIES)]
            country = _COMBO_COUNTRIES[combo % len(_COMBO_COUNTRIES)]
            clicks = _binomial(rng, shown, min(0.95, q.ctr * _DEVICE_CTR[device]))
            position = round(max(1.0, q.position * math.exp(rng.gauss(0.0, 0.12))), 2)
            rows.append((q.text, page, device, country, clicks, shown, clicks / shown, position))
    rows.sort(key=lambda r: (-r[4], -r[5], r[:4]))
    visible_clicks = sum(r[4] for r in rows)
    hidden_clicks = round(visible_clicks * anonymized_share / (1.0 - anonymized_share))
    hidden_position = round(rng.uniform(12.0, 30.0), 2)
    hidden_impressions = max(hidden_clicks, round(hidden_clicks / expected_ctr(hidden_position)))
    generated = GscDay(tuple(rows), hidden_clicks, hidden_impressions, hidden_position)
    _DAY_SUMS[(seed, scale, day)] = _sums(generated)
    return generated


def _sums(generated: GscDay) -> tuple[int, int, float, bool]:
    # The same additions, in the same order, as gsc_api.query's aggregation by date.
    clicks, impressions, weighted = 0, 0, 0.0
    for r in generated.rows:
        clicks += r[4]
        impressions += r[5]
        weighted += r[5] * r[7]
    if generated.hidden_clicks:
        clicks += generated.hidden_clicks
        impressions += generated.hidden_impressions
        weighted += generated.hidden_impressions * generated.hidden_position
    return clicks, impressions, weighted, bool(generated.rows) or bool(generated.hidden_clicks)
