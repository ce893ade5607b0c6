"""The GA4 data of the sandbox brand: one day of sessions rows and lead rows, deterministic.

A day is generated top-down: expected sessions for the day (growth x weekday x a little noise),
split over the docs/metrics.md §1 traffic classes with the planted dark-social share, then each class's
sessions are drawn over its sources (channels), landing pages and devices. Distinct combinations
become rows, each with consistent metrics (engagedSessions <= sessions, totalUsers <= sessions,
newUsers <= totalUsers). Leads are drawn from the rows' key events. See brand.py for the planted
effects and their sizes.

Data for a date depends only on (seed, date): every random stream is `random.Random` seeded with
f"{seed}:ga4:<what>:<date>"; nothing here reads the clock.
"""

from __future__ import annotations

import functools
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from connectors.sandbox.brand import (
    HOW_HEARD_NOT_SET,
    NOT_SET,
    OTHER_ANSWERS,
    PLANTED,
    SCALES,
    WORD_OF_MOUTH_ANSWERS,
    check_scale,
    site_pages,
    traffic_factor,
)

DEVICES = ("desktop", "mobile", "tablet")
OTHER = "(other)"


@dataclass(frozen=True)
class Channel:
    """A source / medium / campaign that brings sessions, and the pages it lands on."""

    source: str
    medium: str
    campaign: str  # "{week}" is replaced by the ISO year and week, e.g. 2026-w07
    weight: float
    pages: tuple[str, ...] = ()  # landing pages of a campaign; empty: the class's page pool
    query: str = ""  # appended to the landing page (tagged links keep their query string)
    start: date | None = None
    end: date | None = None

    def active(self, day: date) -> bool:
        return (self.start is None or self.start <= day) and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class TrafficClass:
    """A docs/metrics.md §1 traffic class as the generator draws it."""

    name: str
    share: float | None  # share of the non-dark sessions; None for the two dark classes
    pool: str  # which page pool its sessions land on
    devices: tuple[float, float, float]
    engaged: float  # probability a session is engaged
    lead: float  # probability a session carries a generate_lead key event
    repeat: float  # probability a session comes from a user already counted in the row
    new: float  # probability a user is new
    channels: tuple[Channel, ...]


def _ref(source: str, weight: float) -> Channel:
    return Channel(source, "referral", "(referral)", weight)


_DIRECT = (
    Channel("(direct)", "(none)", "(direct)", 0.97),
    Channel("(direct)", "(not set)", "(direct)", 0.03),
)
_SPRING_QUERY = "?utm_source=facebook&utm_medium=paid_social&utm_campaign=spring_brand_awareness"

TRAFFIC_CLASSES: tuple[TrafficClass, ...] = (
    TrafficClass(
        "organic_search",
        share=0.40,
        pool="popular",
        devices=(0.60, 0.37, 0.03),
        engaged=0.62,
        lead=0.017,
        repeat=0.08,
        new=0.72,
        channels=(
            Channel("google", "organic", "(organic)", 0.86),
            Channel("bing", "organic", "(organic)", 0.07),
            Channel("duckduckgo", "organic", "(organic)", 0.035),
            Channel("yahoo", "organic", "(organic)", 0.015),
            Channel("ecosia.org", "organic", "(organic)", 0.01),
            Channel("Google", "organic", "(organic)", 0.01),
        ),
    ),
    TrafficClass(
        "direct_typed",
        share=0.14,
        pool="typed",
        devices=(0.70, 0.27, 0.03),
        engaged=0.55,
        lead=0.022,
        repeat=0.20,
        new=0.40,
        channels=_DIRECT,
    ),
    TrafficClass(
        "dark_social_direct",
        share=None,
        pool="deep",
        devices=(0.55, 0.42, 0.03),
        engaged=0.68,
        lead=0.024,
        repeat=0.10,
        new=0.60,
        channels=_DIRECT,
    ),
    TrafficClass(
        "dark_social_messaging",
        share=None,
        pool="shared",
        devices=(0.45, 0.52, 0.03),
        engaged=0.72,
        lead=0.022,
        repeat=0.08,
        new=0.62,
        channels=(
            _ref("com.slack", 0.12),
            _ref("slack.com", 0.08),
            _ref("app.slack.com", 0.05),
            _ref("wa.me", 0.05),
            _ref("web.whatsapp.com", 0.09),
            _ref("api.whatsapp.com", 0.02),
            _ref("teams.microsoft.com", 0.08),
            _ref("statics.teams.cdn.office.net", 0.03),
            _ref("mail.google.com", 0.10),
            _ref("android-app://com.google.android.gm", 0.05),
            _ref("Mail.Google.com", 0.01),
            _ref("lm.facebook.com", 0.09),
            _ref("l.messenger.com", 0.02),
            _ref("discord.com", 0.04),
            _ref("t.me", 0.02),
            _ref("outlook.live.com", 0.03),
            _ref("outlook.office.com", 0.02),
        ),
    ),
    TrafficClass(
        "paid",
        share=0.10,
        pool="popular",
        devices=(0.45, 0.52, 0.03),
        engaged=0.45,
        lead=0.021,
        repeat=0.05,
        new=0.82,
        channels=(
            Channel("google", "cpc", "Brand search", 0.30, ("/", "/pricing", "/demo")),
            Channel(
                "google",
                "cpc",
                "Generic - marketing attribution",
                0.20,
                ("/product/attribution", "/lp/dark-social-ebook", "/blog/what-is-dark-social"),
            ),
            Channel("google", "cpc", "Competitor - alternatives", 0.08, ("/pricing", "/features")),
            Channel("bing", "cpc", "Brand search", 0.05, ("/", "/pricing")),
            Channel(
                "facebook",
                "paid_social",
                "Always-on retargeting",
                0.22,
                ("/demo", "/pricing"),
                "?utm_source=facebook&utm_medium=paid_social&utm_campaign=always_on_retargeting",
            ),
            Channel(
                "linkedin",
                "paid_social",
                "ABM - enterprise data teams",
                0.15,
                ("/lp/dark-social-ebook", "/demo"),
                "?utm_source=linkedin&utm_medium=paid_social&utm_campaign=abm_enterprise",
            ),
            Channel(
                "Facebook",
                "paid_social",
                "Lead gen - dark social ebook",
                0.15,
                ("/lp/dark-social-ebook",),
                "?utm_source=Facebook&utm_medium=paid_social&utm_campaign=lead_gen_ebook",
                start=date(2025, 10, 6),
                end=date(2025, 12, 14),
            ),
            Channel(
                "facebook",
                "paid_social",
                PLANTED.meta_campaign_name,
                0.35,
                ("/lp/spring-brand-awareness", "/"),
                _SPRING_QUERY,
                start=PLANTED.meta_flight_start,
                end=PLANTED.meta_flight_end,
            ),
        ),
    ),
    TrafficClass(
        "email_campaign",
        share=0.05,
        pool="content",
        devices=(0.65, 0.32, 0.03),
        engaged=0.66,
        lead=0.022,
        repeat=0.15,
        new=0.20,
        channels=(
            Channel(
                "newsletter",
                "email",
                "northwind-weekly-{week}",
                0.70,
                (),
                "?utm_source=newsletter&utm_medium=email&utm_campaign=northwind-weekly-{week}",
            ),
            Channel("hubspot", "email", "nurture-trial-users", 0.20),
            Channel("customer.io", "newsletter", "product-updates", 0.10),
        ),
    ),
    TrafficClass(
        "public_social",
        share=0.11,
        pool="content",
        devices=(0.40, 0.57, 0.03),
        engaged=0.48,
        lead=0.009,
        repeat=0.06,
        new=0.75,
        channels=(
            _ref("l.facebook.com", 0.12),
            _ref("m.facebook.com", 0.05),
            _ref("www.linkedin.com", 0.17),
            _ref("linkedin.com", 0.05),
            _ref("WWW.LinkedIn.com", 0.01),
            _ref("lnkd.in", 0.06),
            _ref("t.co", 0.10),
            _ref("x.com", 0.02),
            _ref("news.ycombinator.com", 0.08),
            _ref("www.reddit.com", 0.07),
            _ref("old.reddit.com", 0.02),
            _ref("www.youtube.com", 0.04),
            _ref("bsky.app", 0.03),
            _ref("www.meetup.com", 0.02),
            Channel(
                "linkedin",
                "social",
                "organic-posts",
                0.10,
                (),
                "?utm_source=linkedin&utm_medium=social&utm_campaign=organic-posts",
            ),
        ),
    ),
    TrafficClass(
        "referral",
        share=0.08,
        pool="content",
        devices=(0.72, 0.25, 0.03),
        engaged=0.60,
        lead=0.017,
        repeat=0.08,
        new=0.65,
        channels=(
            _ref("www.g2.com", 0.19),
            _ref("WWW.G2.com", 0.01),
            _ref("github.com", 0.18),
            _ref("stackoverflow.com", 0.10),
            _ref("medium.com", 0.12),
            _ref("dev.to", 0.08),
            _ref("www.producthunt.com", 0.07),
            _ref("www.capterra.com", 0.06),
            _ref("martech.org", 0.06),
            _ref("substack.com", 0.05),
            _ref("www.trustradius.com", 0.04),
            _ref("partners.example-consulting.com", 0.04),
        ),
    ),
    TrafficClass(
        "community",
        share=0.04,
        pool="content",
        devices=(0.75, 0.22, 0.03),
        engaged=0.80,
        lead=0.022,
        repeat=0.20,
        new=0.30,
        channels=(
            _ref("community.northwind-analytics.com", 0.85),
            Channel("northwind-slack", "community", "community-links", 0.15),
        ),
    ),
    TrafficClass(
        "partner_community",
        share=0.03,
        pool="content",
        devices=(0.75, 0.22, 0.03),
        engaged=0.70,
        lead=0.026,
        repeat=0.08,
        new=0.70,
        channels=(
            Channel("dbt-community-slack", "partner", "partner-dbt-community", 0.45),
            Channel("locally-optimistic", "partner", "partner-locally-optimistic", 0.30),
            Channel("measure-slack", "partner", "partner-measure", 0.25),
        ),
    ),
    TrafficClass(
        "ai_assistant",
        share=0.05,
        pool="content",
        devices=(0.70, 0.28, 0.02),
        engaged=0.75,
        lead=0.030,
        repeat=0.06,
        new=0.80,
        channels=(
            _ref("chatgpt.com", 0.50),
            Channel("chatgpt.com", "(not set)", "(not set)", 0.10, (), "?utm_source=chatgpt.com"),
            _ref("perplexity.ai", 0.15),
            _ref("www.perplexity.ai", 0.03),
            _ref("claude.ai", 0.08),
            _ref("gemini.google.com", 0.08),
            _ref("copilot.microsoft.com", 0.06),
        ),
    ),
)
CLASS_NAMES = tuple(tc.name for tc in TRAFFIC_CLASSES)
_CLASS = {tc.name: tc for tc in TRAFFIC_CLASSES}
# Every (class, channel) pair gets an integer id: rows are counted by (id, page, device).
_PAIRS = tuple((tc, ch) for tc in TRAFFIC_CLASSES for ch in tc.channels)
_PAIR_IDS = {tc.name: tuple(i for i, (t, _) in enumerate(_PAIRS) if t is tc) for tc in TRAFFIC_CLASSES}
# Leads whose word-of-mouth answer tracking hides in these classes make up the "dark funnel".
TRACKED_AS_DIRECT_ORGANIC_REFERRAL = frozenset(
    {"direct_typed", "dark_social_direct", "organic_search", "referral"}
)
# Pages where a visit converts more often.
_CONVERTING = ("/demo", "/signup", "/pricing", "/lp/")

# A sessions row: dimensions, metrics, and the class it was drawn for (not sent on the wire).
SOURCE, MEDIUM, CAMPAIGN, LANDING, DEVICE = range(5)
SESSIONS, ENGAGED, KEY_EVENTS, USERS, NEW_USERS, TRAFFIC_CLASS = range(5, 11)
SessionsRow = tuple  # (source, medium, campaign, landing, device, sessions, engaged, key, users, new, cls)
LeadsRow = tuple  # (how_heard, source, medium, campaign, landing, key_events)


@dataclass(frozen=True)
class SessionsDay:
    rows: tuple[SessionsRow, ...]
    subject_to_thresholding: bool
    data_loss_from_other_row: bool


@dataclass(frozen=True)
class _Pool:
    pages: tuple[int, ...]
    cum_weights: tuple[float, ...]

    def weight_of(self, page: int) -> float:
        """The normalised weight of a page in this pool (0 when absent)."""
        total, previous = self.cum_weights[-1], 0.0
        for p, cum in zip(self.pages, self.cum_weights, strict=True):
            if p == page:
                return (cum - previous) / total
            previous = cum
        return 0.0


def _cumulate(weights: list[float]) -> tuple[float, ...]:
    out, acc = [], 0.0
    for w in weights:
        acc += w
        out.append(acc)
    return tuple(out)


def _pool(items: list[tuple[int, float]]) -> _Pool:
    return _Pool(tuple(i for i, _ in items), _cumulate([w for _, w in items]))


@functools.cache
def _pools(scale: str) -> dict[str, _Pool]:
    pages = site_pages(scale)
    indexed = list(enumerate(pages))
    typed = [(i, p.popularity) for i, p in indexed if not p.deep and p.kind not in ("landing", "not_set")]
    typed_total = sum(w for _, w in typed)
    not_set = next(i for i, p in indexed if p.kind == "not_set")
    typed.append((not_set, 0.04 * typed_total))  # GA4 loses the landing page of some direct sessions
    pools = {
        "popular": _pool([(i, p.popularity) for i, p in indexed if p.popularity > 0]),
        "typed": _pool(typed),
        "deep": _pool([(i, p.shareability) for i, p in indexed if p.deep and p.shareability > 0]),
        "shared": _pool([(i, p.shareability) for i, p in indexed if p.shareability > 0]),
        "content": _pool(
            [(i, p.popularity) for i, p in indexed if p.kind in ("content", "short") and p.popularity > 0]
        ),
    }
    by_path = {p.path: i for i, p in indexed}
    for tc in TRAFFIC_CLASSES:
        for ch in tc.channels:
            if ch.pages and ch.pages not in pools:
                pools[ch.pages] = _pool([(by_path[path], 1.0 / (k + 1)) for k, path in enumerate(ch.pages)])
    return pools


@functools.cache
def _page_index(scale: str, path: str) -> int:
    return next(i for i, p in enumerate(site_pages(scale)) if p.path == path)


def _count(rng: random.Random, expected: float) -> int:
    """A Poisson-like draw: the number of sessions around an expectation."""
    if expected <= 0:
        return 0
    return max(0, round(rng.gauss(expected, math.sqrt(expected))))


def _binomial(rng: random.Random, n: int, p: float) -> int:
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    if n < 40:
        draw = rng.random
        return sum(1 for _ in range(n) if draw() < p)
    mean = n * p
    return min(n, max(0, round(rng.gauss(mean, math.sqrt(mean * (1.0 - p))))))


def _draw(
    rng: random.Random,
    counts: Counter,
    tc: TrafficClass,
    n: int,
    pools: dict,
    day: date,
    only_page: int | None = None,
) -> None:
    """Draw `n` sessions of a class over its active channels, pages and devices into `counts`."""
    if n <= 0:
        return
    ids = [i for i in _PAIR_IDS[tc.name] if _PAIRS[i][1].active(day)]
    if only_page is not None:  # an extra visit to one page: channels with their own pages cannot land there
        ids = [i for i in ids if not _PAIRS[i][1].pages]
    picks = Counter(rng.choices(ids, weights=[_PAIRS[i][1].weight for i in ids], k=n))
    device_cum = _cumulate(list(tc.devices))
    for pair in sorted(picks):
        ch, m = _PAIRS[pair][1], picks[pair]
        if only_page is not None:
            landed = [only_page] * m
        else:
            pool = pools[ch.pages] if ch.pages else pools[tc.pool]
            landed = rng.choices(pool.pages, cum_weights=pool.cum_weights, k=m)
        devices = rng.choices((0, 1, 2), cum_weights=device_cum, k=m)
        counts.update(zip([pair] * m, landed, devices, strict=True))


def _landing(path: str, query: str, week: str) -> str:
    if not query or path == NOT_SET:
        return path
    query = query.replace("{week}", week)
    return path + ("&" + query[1:] if "?" in path else query)


def expected_sessions(scale: str, day: date) -> float:
    """Expected sessions on a day before noise and planted extras."""
    return SCALES[scale].base_sessions * traffic_factor(day)


def class_expectations(total: float, day: date) -> dict[str, float]:
    """Expected sessions per traffic class for a day with `total` sessions, planted effects included."""
    dark = PLANTED.dark_share_on(day)
    out = {}
    for tc in TRAFFIC_CLASSES:
        if tc.name == "dark_social_messaging":
            expected = total * dark * PLANTED.messaging_share_of_dark
        elif tc.name == "dark_social_direct":
            expected = total * dark * (1.0 - PLANTED.messaging_share_of_dark)
            if PLANTED.in_halo(day):
                expected *= 1.0 + PLANTED.dark_direct_lift
        else:
            expected = total * (1.0 - dark) * tc.share
        out[tc.name] = expected
    # The spring campaign adds its own paid sessions on top of the always-on campaigns.
    if PLANTED.in_flight(day):
        out["paid"] *= 1.35
    return out


# Days of full rows the sandbox process keeps, by scale: the sessions and the leads report of a
# day both start from its full rows, and a history load asks both reports for every day, so
# keeping the whole history (~520 days, ~1,200 rows and ~180 KB a day at the demo scale) makes
# each day once. The large scale (~9,000 rows a day, for benchmarks) keeps two months.
FULL_DAYS_KEPT = {"small": 1100, "demo": 1100, "large": 64}
_FULL_DAY_CACHES: dict[str, Callable[[int, str, date], tuple[SessionsRow, ...]]] = {}


def _full_day(seed: int, scale: str, day: date) -> tuple[SessionsRow, ...]:
    """Every sessions row of a day before GA4's thresholding and (other) folding (kept: see
    FULL_DAYS_KEPT)."""
    cached = _FULL_DAY_CACHES.get(scale)
    if cached is None:
        cached = _FULL_DAY_CACHES.setdefault(
            scale, functools.lru_cache(maxsize=FULL_DAYS_KEPT.get(scale, 64))(_make_full_day)
        )
    return cached(seed, scale, day)


def _clear_full_days() -> None:
    for cache in _FULL_DAY_CACHES.values():
        cache.cache_clear()


_full_day.cache_clear = _clear_full_days  # as functools' caches are cleared (tests time a fresh day)


def _make_full_day(seed: int, scale: str, day: date) -> tuple[SessionsRow, ...]:
    check_scale(scale)
    pages = site_pages(scale)
    pools = _pools(scale)
    rng = random.Random(f"{seed}:ga4:sessions:{day.isoformat()}")
    total = expected_sessions(scale, day) * math.exp(rng.gauss(0.0, 0.05))
    expected = class_expectations(total, day)
    counts: Counter = Counter()
    for tc in TRAFFIC_CLASSES:
        _draw(rng, counts, tc, _count(rng, expected[tc.name]), pools, day)

    if PLANTED.share_date_for(day) is not None:
        # Planted effect c: the community post makes the page's private shares jump x5 for 4 days.
        page = _page_index(scale, PLANTED.shared_page)
        messaging, direct = _CLASS["dark_social_messaging"], _CLASS["dark_social_direct"]
        usual_messaging = expected["dark_social_messaging"] * pools["shared"].weight_of(page)
        usual_direct = expected["dark_social_direct"] * pools["deep"].weight_of(page)
        usual = usual_messaging + usual_direct
        extra = usual * (PLANTED.share_dark_multiplier - 1.0)
        n_messaging = _count(rng, extra * PLANTED.messaging_share_of_dark)
        n_direct = _count(rng, extra * (1.0 - PLANTED.messaging_share_of_dark))
        _draw(rng, counts, messaging, n_messaging, pools, day, only_page=page)
        _draw(rng, counts, direct, n_direct, pools, day, only_page=page)
        community = _count(rng, extra * PLANTED.share_community_fraction)
        _draw(rng, counts, _CLASS["community"], community, pools, day, only_page=page)

    iso = day.isocalendar()
    week = f"{iso[0]}-w{iso[1]:02d}"
    rows = []
    for (pair, page_i, device_i), n in sorted(counts.items()):
        tc, ch = _PAIRS[pair]
        path = pages[page_i].path
        lead_p = tc.lead * (3.0 if path.lower().startswith(_CONVERTING) else 1.0)
        engaged = _binomial(rng, n, tc.engaged)
        users = n - _binomial(rng, n - 1, tc.repeat)
        new = _binomial(rng, users, tc.new)
        key = _binomial(rng, n, lead_p)
        rows.append(
            (
                ch.source,
                ch.medium,
                ch.campaign.replace("{week}", week),
                _landing(path, ch.query, week),
                DEVICES[device_i],
                n,
                engaged,
                key,
                users,
                new,
                tc.name,
            )
        )
    rows.sort(key=lambda r: (-r[SESSIONS], r[:5]))
    return tuple(rows)


def quality_flags(seed: int, day: date) -> tuple[bool, bool]:
    """(subjectToThresholding, dataLossFromOtherRow) for a day: fixed by the seed, ~3% and ~2%."""
    rng = random.Random(f"{seed}:ga4:quality:{day.isoformat()}")
    thresholded = rng.random() < PLANTED.thresholded_day_share
    other_row = rng.random() < PLANTED.other_row_day_share
    return thresholded, other_row


def _sessions_day(seed: int, scale: str, day: date) -> SessionsDay:
    rows = list(_full_day(seed, scale, day))
    thresholded, other_row = quality_flags(seed, day)
    rng = random.Random(f"{seed}:ga4:quality-rows:{day.isoformat()}")
    if thresholded:
        # Thresholding withholds rows whose user counts are small enough to identify someone.
        rows = [r for r in rows if not (r[USERS] == 1 and rng.random() < PLANTED.thresholded_row_drop_share)]
    if other_row:
        kept, folded = [], []
        for r in rows:
            (folded if r[SESSIONS] == 1 and rng.random() < PLANTED.other_row_fold_share else kept).append(r)
        if folded:
            sums = [sum(r[i] for r in folded) for i in range(SESSIONS, TRAFFIC_CLASS)]
            kept.append((OTHER, OTHER, OTHER, OTHER, OTHER, *sums, OTHER))
            kept.sort(key=lambda r: (-r[SESSIONS], r[:5]))
        rows = kept
    return SessionsDay(tuple(rows), thresholded, other_row)


def _share_of(rng: random.Random, n: int, share: float) -> int:
    """n x share, rounded up or down at random so that small days do not bias the share."""
    exact = n * share
    whole = math.floor(exact)
    return whole + (1 if rng.random() < exact - whole else 0)


def _answer(rng: random.Random, answers: tuple[tuple[str, str], ...], prefer: str | None) -> str:
    weights = [4.0 if prefer is not None and category == prefer else 1.0 for _, category in answers]
    return rng.choices(answers, weights=weights)[0][0]


_PREFERRED_ANSWER = {
    "organic_search": "search",
    "paid": "ads",
    "email_campaign": "newsletter_or_blog",
    "public_social": "social_media",
}


def _leads_day(seed: int, scale: str, day: date) -> tuple[LeadsRow, ...]:
    """Lead rows of a day: every key event of the sessions rows, with a how_heard answer (effect e)."""
    rng = random.Random(f"{seed}:ga4:leads:{day.isoformat()}")
    slots = [r for r in _full_day(seed, scale, day) for _ in range(r[KEY_EVENTS])]
    order = list(range(len(slots)))
    rng.shuffle(order)
    n = len(slots)
    n_blank = _share_of(rng, n, PLANTED.how_heard_blank_share)
    tracked = [slots[i][TRAFFIC_CLASS] in TRACKED_AS_DIRECT_ORGANIC_REFERRAL for i in range(n)]
    blank, answered = order[:n_blank], order[n_blank:]
    n_wom = _share_of(rng, len(answered), PLANTED.word_of_mouth_share_of_answered)
    n_wom_a = _share_of(rng, n_wom, PLANTED.word_of_mouth_tracked_share)
    # On a small day the answered leads may hold too few direct/organic/referral ones: trade blank
    # ones for answered others, so blanks keep their count and the shares stay unbiased.
    short = n_wom_a - sum(tracked[i] for i in answered)
    if short > 0:
        give = [i for i in blank if tracked[i]][:short]
        take = [i for i in answered if not tracked[i]][: len(give)]
        give = give[: len(take)]
        blank = [i for i in blank if i not in give] + take
        answered = [i for i in answered if i not in take] + give
    in_a = [i for i in answered if tracked[i]]
    in_b = [i for i in answered if not tracked[i]]
    n_wom_a = min(n_wom_a, len(in_a))
    n_wom_b = min(n_wom - n_wom_a, len(in_b))
    word_of_mouth = set(in_a[:n_wom_a] + in_b[:n_wom_b])
    answers = {i: HOW_HEARD_NOT_SET for i in blank}
    for i in answered:
        if i in word_of_mouth:
            answers[i] = _answer(rng, WORD_OF_MOUTH_ANSWERS, None)
        else:
            answers[i] = _answer(rng, OTHER_ANSWERS, _PREFERRED_ANSWER.get(slots[i][TRAFFIC_CLASS]))
    grouped: Counter = Counter()
    for i, r in enumerate(slots):
        grouped[(answers[i], r[SOURCE], r[MEDIUM], r[CAMPAIGN], r[LANDING])] += 1
    rows = [(*dims, k) for dims, k in grouped.items()]
    rows.sort(key=lambda r: (-r[5], r[:5]))
    return tuple(rows)


@functools.lru_cache(maxsize=64)
def generate_day(seed: int, scale: str, day: date, report: str):
    """One day of a report: "sessions" -> SessionsDay (as GA4 serves it), "leads" -> tuple of LeadsRow.

    Cached: paging through a day asks for the same day many times.
    """
    check_scale(scale)
    if report == "sessions":
        return _sessions_day(seed, scale, day)
    if report == "leads":
        return _leads_day(seed, scale, day)
    raise ValueError(f"unknown report {report!r}")
