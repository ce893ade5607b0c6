"""The sandbox in its real-credential mode: the settings a user would put in `.env` for real
sources (keys, tokens, ids, base URLs), pointing every connector at a running sandbox instead.

`python -m connectors.sandbox serve --credentials-file key.json` prints them, so the README's
"Connecting your own sources" can be walked offline; tests/orchestration/test_doctor.py proves
that `make doctor` passes with exactly these settings.
"""

from __future__ import annotations

from pathlib import Path

from connectors.sandbox import community
from connectors.sandbox.brand import (
    SANDBOX_GA4_PROPERTY_ID,
    SANDBOX_GSC_SITE_URL,
    SANDBOX_META_ACCESS_TOKEN,
    SANDBOX_META_AD_ACCOUNT_ID,
    SANDBOX_META_PIXEL_ID,
    SANDBOX_SLACK_BOT_TOKEN,
)
from connectors.sandbox.discord_api import SANDBOX_DISCORD_BOT_TOKEN
from connectors.sandbox.discourse_api import SANDBOX_DISCOURSE_API_KEY

# The sandbox serves its own brand: its brand file is the one that matches its data.
SANDBOX_BRAND_YML = Path(__file__).resolve().parent / "brand.yml"


def real_mode_settings(base_url: str, token_uri: str, credentials_file: Path) -> dict[str, str]:
    """Every source configured as real, at the sandbox serving at `base_url` (its Google token
    endpoint `token_uri`, its service-account key written to `credentials_file`)."""
    return {
        "GOOGLE_APPLICATION_CREDENTIALS": str(credentials_file),
        "GA4_PROPERTY_ID": SANDBOX_GA4_PROPERTY_ID,
        "GA4_BASE_URL": f"{base_url}/ga4",
        "GA4_TOKEN_URI": token_uri,
        "GSC_SITE_URL": SANDBOX_GSC_SITE_URL,
        "GSC_BASE_URL": f"{base_url}/gsc",
        "GSC_TOKEN_URI": token_uri,
        "META_ACCESS_TOKEN": SANDBOX_META_ACCESS_TOKEN,
        "META_AD_ACCOUNT_ID": SANDBOX_META_AD_ACCOUNT_ID,
        "META_PIXEL_ID": SANDBOX_META_PIXEL_ID,
        "META_BASE_URL": f"{base_url}/meta",
        "SLACK_BOT_TOKEN": SANDBOX_SLACK_BOT_TOKEN,
        "SLACK_BASE_URL": f"{base_url}/slack",
        "DISCOURSE_URL": f"{base_url}/discourse",
        "DISCOURSE_API_KEY": SANDBOX_DISCOURSE_API_KEY,
        "DISCORD_BOT_TOKEN": SANDBOX_DISCORD_BOT_TOKEN,
        "DISCORD_CHANNEL_IDS": ",".join(space.native_id for space in community.spaces("discord")),
        "DISCORD_BASE_URL": f"{base_url}/discord",
        "BRAND_FILE": str(SANDBOX_BRAND_YML),
    }
