"""dbt-duckdb plugin: the SQL function `member_key(platform, native_user_id)`.

docs/metrics.md §3: a community member is known in the warehouse only by the hex HMAC-SHA256 of
`platform || ':' || native_user_id` under a secret key. DuckDB has no HMAC of its own (the crypto
extension would have to be downloaded), and the key must never enter the warehouse: not as a
table, not as a literal in compiled SQL, not in dbt's logs or manifest. So the function is a
Python UDF registered on every dbt connection; it reads the key from the environment variable
MEMBER_HASH_KEY of the dbt process (orchestration sets it: a fixed demo key on the sandbox, the
user's secret with real community credentials) and keeps it in this process's memory only.

Registered in profiles.yml under `plugins:`; the function errors, naming the variable, when the
key is missing, so a community model never falls back to a guessable hash.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import pyarrow as pa
from dbt.adapters.duckdb.plugins import BasePlugin

KEY_ENV = "MEMBER_HASH_KEY"
FUNCTION_NAME = "member_key"


def _key() -> bytes:
    key = os.environ.get(KEY_ENV, "")
    if not key:
        raise RuntimeError(
            f"{KEY_ENV} is not set: community members are pseudonymised with an HMAC under that key. "
            "Set it to a long random secret (orchestration sets a demo key on the sandbox)."
        )
    return key.encode()


def member_key(platform: pa.Array, native_user_id: pa.Array) -> pa.Array:
    """Hex HMAC-SHA256 of platform || ':' || native_user_id; null when either input is null."""
    key = _key()
    out = []
    for p, u in zip(platform.to_pylist(), native_user_id.to_pylist(), strict=True):
        if p is None or u is None:
            out.append(None)
        else:
            out.append(hmac.new(key, f"{p}:{u}".encode(), hashlib.sha256).hexdigest())
    return pa.array(out, type=pa.string())


class Plugin(BasePlugin):
    def configure_connection(self, conn) -> None:
        conn.create_function(
            FUNCTION_NAME,
            member_key,
            ["VARCHAR", "VARCHAR"],
            "VARCHAR",
            type="arrow",
            null_handling="special",
            side_effects=False,
        )
