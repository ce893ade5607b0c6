"""The sandbox's fictional brand: Northwind Analytics, a B2B SaaS for marketing analytics.

Everything every sandbox source shares lives here: the brand's names and domains, its web site
(a long tail of pages with Zipf-like popularity), the scales, and the effects planted in the data
so that the marts have something true to find. The numbers below are the contract between the
sandbox and the end-to-end tests: change one and a test that recovers it must change too.

Planted effects (see `PLANTED`):

a. Dark social trend. The dark-social share of all sessions (METRICS.md §1 classes
   `dark_social_messaging` + `dark_social_direct`) is 0.20 on SANDBOX_START_DATE and rises
   linearly to 0.30 on 2026-11-20 (slope 0.10 / 507 days ≈ +0.0002 per day; it keeps rising after
   that date). Daily noise is a few points at small scale.
b. Messaging lower bound. Messaging-app referrers carry 40% of the dark total; deep-link direct
   carries the other 60%.
c. Community-shared page. "/blog/dark-social-measurement-playbook" is posted in the brand's
   communities every 21 days from 2025-07-15 (always a Tuesday). On the share date and the 3 days
   after, its dark-social sessions are ×5 (4 × its expected dark sessions are added) and the forum
   sends community referral sessions to it (a quarter of that extra), so it ranks #1 by dark
   sessions in those ISO weeks and #2 or lower in the others (its usual dark weight is 0.45 × the
   top page's).
d. Meta campaign flight. "Spring brand awareness" runs on Meta from 2026-03-02 to 2026-03-29:
   facebook / paid_social sessions with that campaign name appear during the flight, and
   deep-link direct (dark_social_direct) sessions are +15% during the flight and the 7 days after
   (through 2026-04-05).
e. Leads. About 2.5% of sessions carry a `generate_lead` key event. Of the leads of a day, 30%
   leave "how did you hear about us" empty ("(not set)"); of the answered ones 45% give a
   word-of-mouth answer (free text, see WORD_OF_MOUTH_ANSWERS), and 80% of those word-of-mouth
   leads are tracked as (direct)/(none), organic search or referral. Shares are exact per day up
   to rounding.
f. GA4 data quality. About 3% of days are `subjectToThresholding` (rows with one user are
   randomly withheld, 35% of them) and about 2% are `dataLossFromOtherRow` (half of the
   one-session rows are folded into one "(other)" row). Which days is fixed by the seed.

Data for a date depends only on (seed, source, date): every generator seeds
`random.Random(f"{seed}:{source}:{what}:{date}")` and never reads today's date.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from datetime import date, timedelta

BRAND_NAME = "Northwind Analytics"
BRAND_DOMAIN = "northwind-analytics.com"
COMMUNITY_DOMAIN = "community.northwind-analytics.com"
EMPLOYEE_EMAIL_DOMAINS = ("northwind-analytics.com",)
BRAND_TERMS = ("northwind", "northwind analytics", "northwind-analytics")

SANDBOX_START_DATE = date(2025, 7, 1)
SANDBOX_GA4_PROPERTY_ID = "412345678"
DEFAULT_SEED = 42
DEFAULT_SCALE = "demo"


@dataclass(frozen=True)
class Scale:
    """How big the brand is: pages on the site and expected sessions on a Monday at the start."""

    name: str
    pages: int
    base_sessions: float


SCALES: dict[str, Scale] = {
    # Rows per day (distinct source x medium x campaign x page x device) at the start:
    # small ~150-300, demo ~800-1500, large ~6000-10000; growth adds ~40% a year.
    "small": Scale("small", pages=60, base_sessions=330.0),
    "demo": Scale("demo", pages=300, base_sessions=1800.0),
    "large": Scale("large", pages=3000, base_sessions=16000.0),
}


def check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise ValueError(f"unknown sandbox scale {scale!r}; use one of: {', '.join(SCALES)}")
    return scale


@dataclass(frozen=True)
class PlantedEffects:
    """The effects planted in the sandbox data, with their sizes (see the module docstring)."""

    # a. dark social trend
    dark_share_start: float = 0.20
    dark_share_end: float = 0.30
    dark_share_end_date: date = date(2026, 11, 20)
    # b. messaging lower bound
    messaging_share_of_dark: float = 0.40
    # c. community-shared page
    shared_page: str = "/blog/dark-social-measurement-playbook"
    first_share_date: date = date(2025, 7, 15)
    share_every_days: int = 21
    share_window_days: int = 4  # the share date and the 3 days after
    share_dark_multiplier: float = 5.0
    shared_page_dark_weight_vs_top: float = 0.45
    share_community_fraction: float = 0.25  # community sessions added, as a fraction of the extra dark
    # d. Meta campaign flight
    meta_campaign_name: str = "Spring brand awareness"
    meta_flight_start: date = date(2026, 3, 2)
    meta_flight_end: date = date(2026, 3, 29)
    halo_days_after: int = 7
    dark_direct_lift: float = 0.15
    # e. leads and "how did you hear about us"
    lead_rate: float = 0.025
    how_heard_blank_share: float = 0.30
    word_of_mouth_share_of_answered: float = 0.45
    word_of_mouth_tracked_share: float = 0.80  # of word-of-mouth leads: direct, organic or referral
    # f. GA4 thresholding and (other) rows
    thresholded_day_share: float = 0.03
    thresholded_row_drop_share: float = 0.35
    other_row_day_share: float = 0.02
    other_row_fold_share: float = 0.50

    @property
    def dark_share_slope_per_day(self) -> float:
        days = (self.dark_share_end_date - SANDBOX_START_DATE).days
        return (self.dark_share_end - self.dark_share_start) / days

    def dark_share_on(self, day: date) -> float:
        """The planted (expected) dark-social share of all sessions on `day`."""
        return self.dark_share_start + self.dark_share_slope_per_day * (day - SANDBOX_START_DATE).days

    def share_dates(self, until: date) -> list[date]:
        """Dates on which the shared page is posted in the communities, up to `until` inclusive."""
        out, day = [], self.first_share_date
        while day <= until:
            out.append(day)
            day += timedelta(days=self.share_every_days)
        return out

    def share_date_for(self, day: date) -> date | None:
        """The share date whose window (share date + 3 days) contains `day`, if any."""
        delta = (day - self.first_share_date).days
        if delta < 0:
            return None
        offset = delta % self.share_every_days
        return day - timedelta(days=offset) if offset < self.share_window_days else None

    @property
    def halo_end(self) -> date:
        return self.meta_flight_end + timedelta(days=self.halo_days_after)

    def in_flight(self, day: date) -> bool:
        return self.meta_flight_start <= day <= self.meta_flight_end

    def in_halo(self, day: date) -> bool:
        """During the Meta flight or the 7 days after, when deep-link direct is lifted."""
        return self.meta_flight_start <= day <= self.halo_end


PLANTED = PlantedEffects()

# Weekday seasonality (Monday first) and growth: a B2B audience reads at work.
WEEKDAY_FACTORS = (1.0, 1.04, 1.05, 1.0, 0.91, 0.45, 0.50)
ANNUAL_GROWTH = 0.40
HOLIDAY_FACTORS = {(12, 24): 0.55, (12, 25): 0.45, (12, 26): 0.6, (12, 31): 0.6, (1, 1): 0.5}


def traffic_factor(day: date) -> float:
    """Expected sessions on `day` relative to a Monday on SANDBOX_START_DATE."""
    years = (day - SANDBOX_START_DATE).days / 365.25
    growth = (1.0 + ANNUAL_GROWTH) ** years
    return growth * WEEKDAY_FACTORS[day.weekday()] * HOLIDAY_FACTORS.get((day.month, day.day), 1.0)


# "How did you hear about us?" answers, with the METRICS.md §2 category each is meant to map to.
WORD_OF_MOUTH_ANSWERS: tuple[tuple[str, str], ...] = (
    ("a colleague told me", "colleague_or_friend"),
    ("A coworker recommended you", "colleague_or_friend"),
    ("from a friend", "colleague_or_friend"),
    ("word of mouth", "colleague_or_friend"),
    ("my manager shared a link", "colleague_or_friend"),
    ("Slack community", "slack_or_discord"),
    ("someone in the dbt Slack", "slack_or_discord"),
    ("a Discord server", "slack_or_discord"),
    ("heard on a podcast", "podcast"),
    ("Data Engineering Podcast", "podcast"),
    ("saw you at a meetup", "event_or_meetup"),
    ("conference talk", "event_or_meetup"),
    ("an online community", "online_community"),
    ("the Northwind community forum", "online_community"),
)
OTHER_ANSWERS: tuple[tuple[str, str], ...] = (
    ("Google search", "search"),
    ("googled it", "search"),
    ("LinkedIn ad", "ads"),
    ("Facebook ad", "ads"),
    ("your newsletter", "newsletter_or_blog"),
    ("read your blog", "newsletter_or_blog"),
    ("LinkedIn post", "social_media"),
    ("saw it on Twitter", "social_media"),
    ("other", "other"),
    ("don't remember", "other"),
)
HOW_HEARD_NOT_SET = "(not set)"
WORD_OF_MOUTH_CATEGORIES = (
    "colleague_or_friend",
    "online_community",
    "slack_or_discord",
    "podcast",
    "event_or_meetup",
)

# ---------------------------------------------------------------------------------------------
# The web site
# ---------------------------------------------------------------------------------------------

# METRICS.md §1 rule 9: the paths someone could type; anything else long or nested is a deep link.
TYPEABLE_PATHS = frozenset(
    "/ /pricing /about /contact /login /signin /signup /register /careers /jobs /blog /docs /search "
    "/demo /product /features /cart /checkout /account /home".split()
)
NOT_SET = "(not set)"


def normalise_path(landing: str) -> str:
    """METRICS.md §1: path without query or fragment, lower-cased, trailing '/' dropped except root."""
    if landing == NOT_SET:
        return landing
    path = landing.split("?", 1)[0].split("#", 1)[0].lower()
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    return path


def is_deep_link(landing: str) -> bool:
    """METRICS.md §1 rule 9: not typeable, and two or more segments or at least 20 characters."""
    path = normalise_path(landing)
    if path == NOT_SET or path in TYPEABLE_PATHS:
        return False
    segments = [s for s in path.split("/") if s]
    return len(segments) >= 2 or len(path) >= 20


@dataclass(frozen=True)
class Page:
    path: str  # as GA4 reports landingPagePlusQueryString
    kind: str  # typeable | short | content | landing | not_set
    popularity: float  # share of search and general traffic (Zipf by rank)
    shareability: float  # weight among pages shared privately (Zipf by a different rank)

    @property
    def deep(self) -> bool:
        return is_deep_link(self.path)


_TYPEABLE = (
    "/",
    "/pricing",
    "/features",
    "/demo",
    "/blog",
    "/docs",
    "/about",
    "/signup",
    "/login",
    "/contact",
)
_TYPEABLE_VARIANTS = ("/careers", "/pricing?plan=team", "/blog/", "/Pricing", "/?ref=producthunt")
_SHORT = ("/security", "/changelog", "/partners", "/webinars")
_CORE_CONTENT = (
    "/blog/what-is-dark-social",
    "/docs/getting-started/quickstart",
    "/integrations/slack",
    "/blog/utm-tracking-guide",
    "/product/attribution",
    "/customers/contoso-pharma",
    "/dark-social-benchmark-2025",
    "/blog/self-reported-attribution-template",
    "/docs/connectors/google-analytics-4",
    "/integrations/hubspot",
    "/state-of-b2b-attribution",
    "/docs/api/authentication?tab=python",
    "/integrations/dbt",
    "/product/dark-social-tracker",
    "/Blog/Community-Led-Growth-Playbook",
)
LANDING_PAGES = ("/lp/spring-brand-awareness", "/lp/dark-social-ebook")

_BLOG_TOPICS = tuple(
    (
        "dark-social attribution utm-tracking ga4 b2b-funnel community-led-growth slack-communities "
        "word-of-mouth self-reported-attribution marketing-mix brand-search linkedin-ads "
        "content-distribution privacy-first-analytics cookie-consent pipeline-reporting dbt-models "
        "data-warehouse customer-journeys incrementality referral-traffic podcast-marketing "
        "developer-communities event-marketing lead-scoring multi-touch first-party-data "
        "server-side-tagging discord-communities newsletter-growth ai-search chatgpt-referrals demand-gen "
        "abm brand-lift survey-design"
    ).split()
)
_BLOG_ANGLES = tuple(
    (
        "guide checklist playbook mistakes benchmarks explained template case-study faq for-beginners "
        "in-2026 vs-last-touch deep-dive myths metrics examples tools report framework cheat-sheet"
    ).split()
)
_DOC_SECTIONS = tuple(
    ("getting-started connectors models api admin troubleshooting sql dashboards security billing").split()
)
_DOC_SLUGS = tuple(
    (
        "install quickstart configuration environment-variables service-accounts scheduling backfills "
        "permissions sso audit-log webhooks rate-limits pagination errors exports retention custom-events "
        "how-heard-survey utm-conventions channel-groups dark-social-model community-model identity "
        "consent-mode slack-app discourse search-console meta-ads linkedin-ads hubspot salesforce "
        "bigquery snowflake duckdb dbt-package alerts faq upgrade changelog limits"
    ).split()
)
_INTEGRATIONS = tuple(
    (
        "salesforce bigquery snowflake duckdb looker tableau metabase power-bi google-ads meta-ads "
        "linkedin-ads search-console discourse discord intercom zendesk segment rudderstack mixpanel "
        "amplitude marketo pardot mailchimp customer-io airtable notion zapier make fivetran airbyte "
        "dagster census hightouch clearbit apollo gong outreach webflow wordpress shopify"
    ).split()
)
_COMPANY_A = tuple(
    (
        "acme globex initech umbrella stark wayne hooli vandelay tyrell soylent massive cyberdyne "
        "aperture wonka gringotts oscorp nakatomi monarch zorg blue-sun"
    ).split()
)
_COMPANY_B = tuple(
    (
        "logistics health fintech retail software energy media labs insurance travel foods robotics bank "
        "mobility learning"
    ).split()
)
_FEATURES = tuple(
    (
        "journeys surveys community-insights branded-search campaign-halo content-fit advocates alerts "
        "warehouse-sync reports"
    ).split()
)


def _generated_paths(rng: random.Random, n: int, taken: set[str]) -> list[str]:
    kinds = ("blog",) * 45 + ("docs",) * 25 + ("integrations",) * 10 + ("customers",) * 12 + ("misc",) * 8
    out: list[str] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        kind = rng.choice(kinds)
        if kind == "blog":
            path = f"/blog/{rng.choice(_BLOG_TOPICS)}-{rng.choice(_BLOG_ANGLES)}"
        elif kind == "docs":
            path = f"/docs/{rng.choice(_DOC_SECTIONS)}/{rng.choice(_DOC_SLUGS)}"
        elif kind == "integrations":
            path = f"/integrations/{rng.choice(_INTEGRATIONS)}"
        elif kind == "customers":
            path = f"/customers/{rng.choice(_COMPANY_A)}-{rng.choice(_COMPANY_B)}"
        else:
            path = (
                f"/product/{rng.choice(_FEATURES)}"
                if rng.random() < 0.5
                else (f"/webinars/{rng.choice(_BLOG_TOPICS)}-{rng.choice(_BLOG_ANGLES)}")
            )
        if attempts > 50 * n:  # the word lists are exhausted: number the rest
            path = f"{path}-part-{attempts}"
        if path in taken:
            continue
        if rng.random() < 0.04:  # some links carry a query string of their own
            path += rng.choice(("?ref=share", "?hsLang=en", "?s=09", "?tab=sql", "?page=2"))
            if path in taken:
                continue
        taken.add(path)
        out.append(path)
    return out


def _zipf(rank: int, exponent: float = 1.05) -> float:
    return 1.0 / (rank + 2) ** exponent


@functools.cache
def site_pages(scale: str) -> tuple[Page, ...]:
    """The brand's site at a scale: the same for every seed (a site does not depend on the seed)."""
    n = SCALES[check_scale(scale)].pages
    rng = random.Random(f"site:{scale}")
    ordered: list[tuple[str, str]] = [(p, "typeable") for p in _TYPEABLE]
    core = [(p, "content") for p in _CORE_CONTENT] + [(p, "short") for p in _SHORT]
    core += [(p, "typeable") for p in _TYPEABLE_VARIANTS]
    taken = {p for p, _ in ordered + core} | {PLANTED.shared_page, *LANDING_PAGES, NOT_SET}
    n_generated = max(0, n - len(taken))
    generated = [(p, "content") for p in _generated_paths(rng, n_generated, taken)]
    # The long tail: well-known core pages first, interleaved with the generated ones.
    rng.shuffle(core)
    ordered += core[:6] + generated[:6] + core[6:] + generated[6:]
    ordered.insert(14, (PLANTED.shared_page, "content"))
    ordered += [(p, "landing") for p in LANDING_PAGES] + [(NOT_SET, "not_set")]

    # Shareability: what people pass around privately is content, ranked differently from search.
    content = [p for p, kind in ordered if kind == "content" and p != PLANTED.shared_page]
    share_rng = random.Random(f"shareability:{scale}")
    share_order = content[:]
    share_rng.shuffle(share_order)
    share_rank = {p: i for i, p in enumerate(share_order)}
    top_share = _zipf(0, 1.0)

    pages = []
    for rank, (path, kind) in enumerate(ordered):
        popularity = _zipf(rank)
        if kind == "not_set":
            popularity = 0.01
        elif kind == "landing":
            popularity = 0.0  # reached through paid campaigns only
        if path == PLANTED.shared_page:
            shareability = PLANTED.shared_page_dark_weight_vs_top * top_share
        elif kind == "content":
            shareability = _zipf(share_rank[path], 1.0)
        elif kind in ("typeable", "short"):
            shareability = 0.15 * _zipf(len(content) // 2, 1.0)  # the homepage is rarely what one shares
        else:
            shareability = 0.0
        pages.append(Page(path, kind, popularity, shareability))
    return tuple(pages)
