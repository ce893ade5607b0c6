"""The offline sandbox: the brand's APIs served from a loopback HTTP server, with planted effects.

With no credentials configured, every source is served by this sandbox: a local HTTP server that
speaks the same wire format as the real API, over the data of a fictional B2B SaaS brand,
Northwind Analytics (northwind-analytics.com, forum community.northwind-analytics.com). The data
for a date depends only on (seed, source, date), from SANDBOX_START_DATE (2025-07-01) to
yesterday, so a run is reproducible and a test can recover what was planted.

    from connectors.sandbox import SandboxServer, ensure_sandbox, google_service_account_info

    with SandboxServer(seed=42, scale="small") as sandbox:
        info = google_service_account_info(sandbox.google_token_uri)
        ...  # GA4 at f"{sandbox.base_url}/ga4"

    python -m connectors.sandbox serve --port 8765 --seed 42 --scale demo

The planted effects and their sizes are listed in `connectors.sandbox.brand` (constants in
`PLANTED`): (a) the dark-social share rising from 0.20 to 0.30 between 2025-07-01 and 2026-11-20;
(b) messaging referrers = 40% of it; (c) "/blog/dark-social-measurement-playbook" shared in the
communities every 21 days from 2025-07-15, its dark sessions x5 for 4 days; (d) the Meta flight
"Spring brand awareness" 2026-03-02..2026-03-29, deep-link direct +15% during it and 7 days
after; (e) ~2.5% of sessions become leads, 30% without a how_heard answer, 45% of answers
word-of-mouth, 80% of those tracked as direct, organic or referral; (f) ~3% of days thresholded,
~2% with an "(other)" row.
"""

from connectors.sandbox.brand import (
    BRAND_DOMAIN,
    BRAND_NAME,
    COMMUNITY_DOMAIN,
    PLANTED,
    SANDBOX_GA4_PROPERTY_ID,
    SANDBOX_START_DATE,
    SCALES,
)
from connectors.sandbox.google_auth import google_service_account_info, shared_service_account_info
from connectors.sandbox.server import Fault, SandboxServer, ensure_sandbox

__all__ = [
    "BRAND_DOMAIN",
    "BRAND_NAME",
    "COMMUNITY_DOMAIN",
    "PLANTED",
    "SANDBOX_GA4_PROPERTY_ID",
    "SANDBOX_START_DATE",
    "SCALES",
    "Fault",
    "SandboxServer",
    "ensure_sandbox",
    "google_service_account_info",
    "shared_service_account_info",
]
