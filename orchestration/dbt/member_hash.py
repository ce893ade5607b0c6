"""The key of the members' pseudonyms (docs/metrics.md §3), handed to the dbt process only.

dbt computes `member_key` = HMAC-SHA256(platform:native_user_id) with a Python UDF
(dbt_project/plugins/darksocial_member_key.py) that reads MEMBER_HASH_KEY from its environment;
the key never enters the warehouse, the compiled SQL or dbt's logs. On the sandbox a fixed,
public demo key is enough (the people are fictional). With real community credentials the key
must be the user's own secret: a missing key stops the build before any community model runs,
rather than silently pseudonymising real people under a key everybody knows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

MEMBER_HASH_KEY_ENV = "MEMBER_HASH_KEY"
SANDBOX_DEMO_KEY = "sandbox-demo-key-not-secret"
# Any of these set means a real community is loaded (see .env.example).
REAL_COMMUNITY_SETTINGS = (
    "SLACK_BOT_TOKEN",
    "SLACK_EXPORT_PATH",
    "DISCOURSE_URL",
    "DISCOURSE_API_KEY",
    "DISCORD_BOT_TOKEN",
)


class MissingMemberHashKey(RuntimeError):
    """Real community data is configured but MEMBER_HASH_KEY is not."""


def member_hash_key(environ: Mapping[str, str] | None = None) -> str:
    """The key for the dbt process: MEMBER_HASH_KEY, or the demo key when only the sandbox runs.

    Raises:
        MissingMemberHashKey: real community credentials are set and MEMBER_HASH_KEY is not.
    """
    env = os.environ if environ is None else environ
    key = (env.get(MEMBER_HASH_KEY_ENV) or "").strip()
    if key:
        return key
    real = [name for name in REAL_COMMUNITY_SETTINGS if (env.get(name) or "").strip()]
    if real:
        raise MissingMemberHashKey(
            f"{MEMBER_HASH_KEY_ENV} is not set, but real community data is configured ({', '.join(real)}). "
            "Community members are pseudonymised with an HMAC under that key: set it to a long random "
            "secret (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`) in .env and keep "
            "it stable, since changing it changes every member_key."
        )
    return SANDBOX_DEMO_KEY
