"""The sandbox's fictional brand: Northwind Analytics, a B2B SaaS for marketing analytics.

Everything every sandbox source shares lives here: the brand's names and domains, its web site
(a long tail of pages with Zipf-like popularity), the scales, and the effects planted in the data
so that the marts have something true to find. The numbers below are the contract between the
sandbox and the end-to-end tests: change one and a test that recovers it must change too.

Planted effects (see `PLANTED`):

a. Dark social trend. The dark-social share of all sessions (docs/metrics.md §1 classes
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
g. Communities (constants COMMUNITY_* at the end; generator connectors/sandbox/community.py).
   One population of people posts on Slack, Discourse and Discord in spaces with interests
   (COMMUNITY_SPACES: #general, #dbt-and-modeling, #attribution, #ai-and-llms, #jobs,
   #announcements, a private team channel; Discourse categories and Discord channels mirror
   them). Employees have @northwind-analytics.com e-mails; two bots (Discourse "system", Northwind
   Bot). Planted: (1) on every share date of c. several thread starts per platform link the
   shared page (COMMUNITY_SHARED_PAGE_POSTS; www./utm variants), and it is linked on no other day;
   (2) 5 non-employee advocates (COMMUNITY_ADVOCATE_PERSON_IDS) write far more than anyone, so over
   any 90 days each has love >= 20 and reach >= 5 and they are the top 5 by love; (3) the "ai"
   interest grows +60% per 6 months, the others are flat; (4) of non-employee thread starts ~60%
   are answered by someone else within 7 days, ~8% only by their author, ~7% after 7 days, ~25%
   never (COMMUNITY_THREAD_OUTCOMES); (5) weekday seasonality (COMMUNITY_WEEKDAY_FACTORS) and
   volume by scale (Slack posts a weekday: small ~35, demo ~150, large ~2,000).
h. Search Console (constants GSC_* at the end; generator connectors/sandbox/gsc.py). Site
   "sc-domain:northwind-analytics.com", pages as https://www.northwind-analytics.com/<path> (the
   site's pages), queries branded (GSC_BRANDED_QUERIES, misspellings included) and a non-branded
   long tail, devices DESKTOP/MOBILE/TABLET, countries alpha-3 ("usa", "gbr", ...). Clicks follow
   GA4's google organic sessions (growth, weekday). Planted: (1) branded clicks +35%
   (GSC_BRANDED_LIFT) during the Meta flight of d. and the 7 days after; (2) 15-25% of each day's
   clicks are anonymized: in the date-only totals, absent from query rows; (3) data lag: dataState
   final serves days up to yesterday - 2, history ~16 months.

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


# "How did you hear about us?" answers, with the docs/metrics.md §2 category each is meant to map to.
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

# docs/metrics.md §1 rule 9: the paths someone could type; anything else long or nested is a deep link.
TYPEABLE_PATHS = frozenset(
    "/ /pricing /about /contact /login /signin /signup /register /careers /jobs /blog /docs /search "
    "/demo /product /features /cart /checkout /account /home".split()
)
NOT_SET = "(not set)"


def normalise_path(landing: str) -> str:
    """docs/metrics.md §1: path without query or fragment, lower-cased, trailing '/' dropped except root."""
    if landing == NOT_SET:
        return landing
    path = landing.split("?", 1)[0].split("#", 1)[0].lower()
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    return path


def is_deep_link(landing: str) -> bool:
    """docs/metrics.md §1 rule 9: not typeable, and two or more segments or at least 20 characters."""
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


# ---------------------------------------------------------------------------------------------
# Meta Marketing API (ad account and pixel; see connectors/sandbox/meta.py and meta_api.py)
# ---------------------------------------------------------------------------------------------

# The sandbox's ad account (META_AD_ACCOUNT_ID accepts "act_1234567890" or the digits), pixel
# (META_PIXEL_ID) and the one access token it accepts (META_ACCESS_TOKEN); any other token is
# answered with Meta's code 190 OAuthException.
SANDBOX_META_AD_ACCOUNT_ID = "1234567890"
SANDBOX_META_PIXEL_ID = "987654321"
SANDBOX_META_ACCESS_TOKEN = "sandbox-meta-token"
SANDBOX_META_TOKEN_WITHOUT_ADS_READ = "sandbox-meta-token-without-ads-read"  # for permission tests
# Ads per ad set (2-3 ad sets per campaign): small for tests, more at scale for benchmarks.
META_ADS_PER_ADSET = {"small": 2, "demo": 3, "large": 40}
# Planted: pixel `Lead` events of a day / the insights' offsite_conversion.fb_pixel_lead actions of
# that day = 1.3 (± 0.03 before rounding): the pixel also counts organic leads. Every other pixel
# event count is at least its insights action count.
META_PIXEL_LEAD_RATIO = 1.3


# ---------------------------------------------------------------------------------------------
# Communities (Slack, Discourse, Discord; see connectors/sandbox/community.py and docstring g.)
# ---------------------------------------------------------------------------------------------

COMMUNITY_START_DATE = SANDBOX_START_DATE  # no community posts before this day
SLACK_TEAM_ID = "T0NWANLYT1"
SLACK_TEAM_NAME = "Northwind Analytics Community"
SANDBOX_SLACK_BOT_TOKEN = "xoxb-sandbox-token"
# (platform, native_id, name, interest, is_private). Discourse categories and Discord channels
# mirror the Slack channels; the private Slack channel is the team's own.
COMMUNITY_SPACES: tuple[tuple[str, str, str, str, bool], ...] = (
    ("slack", "C07NW0GENRL", "general", "general", False),
    ("slack", "C07NW0DBTMD", "dbt-and-modeling", "analytics_engineering", False),
    ("slack", "C07NW0ATTRB", "attribution", "attribution", False),
    ("slack", "C07NW0AILLM", "ai-and-llms", "ai", False),
    ("slack", "C07NW0JOBS1", "jobs", "careers", False),
    ("slack", "C07NW0ANNCE", "announcements", "announcements", False),
    ("slack", "G07NW0STAFF", "northwind-team", "general", True),
    ("discourse", "1", "General", "general", False),
    ("discourse", "5", "dbt & Modeling", "analytics_engineering", False),
    ("discourse", "6", "Attribution", "attribution", False),
    ("discourse", "7", "AI & LLMs", "ai", False),
    ("discourse", "8", "Jobs", "careers", False),
    ("discourse", "9", "Announcements", "announcements", False),
    ("discord", "1261000000000000001", "general", "general", False),
    ("discord", "1261000000000000002", "dbt-and-modeling", "analytics_engineering", False),
    ("discord", "1261000000000000003", "attribution", "attribution", False),
    ("discord", "1261000000000000004", "ai-and-llms", "ai", False),
    ("discord", "1261000000000000005", "jobs", "careers", False),
    ("discord", "1261000000000000006", "announcements", "announcements", False),
)
# Share of a platform's thread starts per interest (a private space gets 0.05).
COMMUNITY_INTEREST_WEIGHTS = {
    "general": 0.30,
    "analytics_engineering": 0.22,
    "attribution": 0.22,
    "ai": 0.14,
    "careers": 0.06,
    "announcements": 0.04,
}
# Volume: thread starts per weekday on Slack (about 2.8 posts per thread start: small ~35 posts a
# day, demo ~150, large ~2,000); Discourse and Discord relative to Slack.
COMMUNITY_THREADS_PER_DAY = {"small": 12.0, "demo": 48.0, "large": 620.0}
COMMUNITY_PLATFORM_VOLUME = {"slack": 1.0, "discourse": 0.45, "discord": 0.6}
COMMUNITY_WEEKDAY_FACTORS = (1.0, 1.1, 1.1, 1.0, 0.85, 0.3, 0.3)  # Monday first
# People (besides the bots and the advocates): employees are 4% of them (at least 4).
COMMUNITY_MEMBERS = {"small": 420, "demo": 1500, "large": 12000}
COMMUNITY_SYSTEM_PERSON_ID = "p00001"
# (person_id, name, handle, platforms): the Discourse "system" user and the brand's bots.
COMMUNITY_BOTS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("p00001", "system", "system", ("discourse",)),
    ("p00002", "Northwind Bot", "northwind-bot", ("slack", "discord")),
)
# Planted: 5 advocates, non-employees, each ~4.5% of the posts a random member would write (their
# combined pool weight is COMMUNITY_ADVOCATE_SHARE x the number of members), so over any 90 days
# each has love >= 20 and reach >= 5 on every platform they are on and they are the top 5 by love
# among non-employees there (well inside the top 5%).
COMMUNITY_ADVOCATES: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("p00011", "Marta Kowalski", "martak", "gmail.com", ("slack", "discourse", "discord")),
    ("p00012", "Kwame Mensah", "kwamem", "acme-logistics.com", ("slack", "discourse")),
    ("p00013", "Yuki Tanaka", "yukit", "gmail.com", ("slack", "discourse")),
    ("p00014", "Diego Santos", "diegos", "hooli-fintech.com", ("slack", "discord")),
    ("p00015", "Ingrid Larsen", "ingridl", "proton.me", ("slack", "discourse")),
)
COMMUNITY_ADVOCATE_PERSON_IDS = tuple(a[0] for a in COMMUNITY_ADVOCATES)
COMMUNITY_ADVOCATE_SHARE = 0.25
# Planted: the "ai" interest's thread starts grow x1.6 every 182 days from COMMUNITY_START_DATE
# (+60% over any 6 months); every other interest is flat.
COMMUNITY_GROWING_INTEREST = "ai"
COMMUNITY_GROWTH_PER_PERIOD = 0.60
COMMUNITY_GROWTH_PERIOD_DAYS = 182
# Planted: thread outcomes for thread starts by non-employees (by employees: second table).
# answered = a reply by someone else within 7 days; self_only = only the author replies;
# late = the first reply by someone else comes 7-14 days later; never = no reply.
COMMUNITY_THREAD_OUTCOMES = (("answered", 0.60), ("self_only", 0.08), ("late", 0.07), ("never", 0.25))
COMMUNITY_THREAD_OUTCOMES_EMPLOYEE = (
    ("answered", 0.70),
    ("self_only", 0.05),
    ("late", 0.05),
    ("never", 0.20),
)
COMMUNITY_MAX_REPLY_LAG_DAYS = 21  # no reply comes later than this after its thread start
# Share of thread starts carrying a link to a brand page (replies: 0.6 x this); the shared page
# (PLANTED.shared_page) is linked only on its share dates.
COMMUNITY_BRAND_LINK_SHARE = 0.10
# Planted: on every PLANTED share date, this many thread starts per platform link the shared page
# (in the general and attribution spaces; two of them by advocates).
COMMUNITY_SHARED_PAGE_POSTS = {"slack": 4, "discourse": 3, "discord": 2}


# ---------------------------------------------------------------------------------------------
# Search Console (see connectors/sandbox/gsc.py, gsc_api.py and docstring h.)
# ---------------------------------------------------------------------------------------------

# The Domain property the sandbox serves (GSC_SITE_URL); the URL-prefix property
# "https://www.northwind-analytics.com/" works too. Pages are reported as full URLs on this origin.
SANDBOX_GSC_SITE_URL = "sc-domain:northwind-analytics.com"
GSC_PAGE_ORIGIN = "https://www.northwind-analytics.com"
# dataState "final" serves days up to yesterday - 2 (today - 3); "all" adds the last 2 days as
# incomplete (metadata.firstIncompleteDate). History: the last ~16 months (486 days) before today.
GSC_FINAL_LAG_DAYS = 3
GSC_HISTORY_DAYS = 486
# Google web-search clicks of a day ~ GA4's google organic sessions: expected sessions x
# (1 - dark share) x organic_search 0.40 x google 0.87.
GSC_CLICKS_PER_NON_DARK_SESSION = 0.40 * 0.87
# Of a day's expected clicks, branded queries (brand name, misspellings, navigational) take 0.30.
GSC_BRANDED_CLICK_SHARE = 0.30
# Planted: branded impressions (so clicks) x (1 + 0.35) during the Meta flight "Spring brand
# awareness" and the 7 days after (PLANTED.in_halo: 2026-03-02 .. 2026-04-05).
GSC_BRANDED_LIFT = 0.35
# Planted: Google hides rare queries; of each day's total clicks (date-only query) a share drawn
# uniformly in this range is anonymized (absent from query rows), taken from non-branded queries.
GSC_ANONYMIZED_CLICK_SHARE = (0.15, 0.25)
# Branded queries with their relative weight; a case-insensitive regex that catches them all
# (brand terms and misspellings) is GSC_BRAND_PATTERN.
GSC_BRANDED_QUERIES: tuple[tuple[str, float], ...] = (
    ("northwind analytics", 10.0),
    ("northwind", 4.0),
    ("northwind pricing", 2.0),
    ("northwind-analytics login", 1.6),
    ("northwind analytics login", 1.4),
    ("northwind analytics dark social", 0.8),
    ("northwind analytics reviews", 0.6),
    ("northwind analytics vs ga4", 0.4),
    ("northwind-analytics.com", 0.5),
    ("nortwind analytics", 0.5),
    ("northwind analitycs", 0.3),
    ("north wind analytics", 0.3),
    ("northwnd analytics", 0.2),
)
GSC_BRAND_PATTERN = r"nort?h?\s?w[iy]?n?d"
GSC_DEVICES: tuple[tuple[str, float], ...] = (("DESKTOP", 0.62), ("MOBILE", 0.35), ("TABLET", 0.03))
# ISO 3166-1 alpha-3, lower-case, as Search Console reports countries.
GSC_COUNTRIES: tuple[tuple[str, float], ...] = (
    ("usa", 0.42),
    ("gbr", 0.11),
    ("deu", 0.08),
    ("can", 0.06),
    ("ind", 0.06),
    ("fra", 0.05),
    ("aus", 0.04),
    ("nld", 0.04),
    ("esp", 0.03),
    ("bra", 0.03),
    ("swe", 0.02),
    ("pol", 0.02),
    ("irl", 0.02),
    ("sgp", 0.02),
)
