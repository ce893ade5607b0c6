"""Superset's configuration for `make bi`: a local, single-user Superset over the serving snapshot.

Superset loads this file through SUPERSET_CONFIG_PATH (set by bi/run.sh), in its own virtual
environment (.bi-venv), never the project's. Everything it writes (metadata database, secret key)
lives under BI_HOME.
"""

import os
import secrets
from pathlib import Path

BI_HOME = Path(os.environ["BI_HOME"])
BI_HOME.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """BI_SECRET_KEY if set, else a random key made on first start and kept in BI_HOME.

    Superset signs sessions and encrypts stored connection details with it, so it must stay the
    same across restarts but never be a known default.
    """
    if os.environ.get("BI_SECRET_KEY"):
        return os.environ["BI_SECRET_KEY"]
    key_file = BI_HOME / "secret_key"
    if not key_file.exists():
        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_urlsafe(48))
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
SQLALCHEMY_DATABASE_URI = f"sqlite:///{BI_HOME / 'superset.db'}?check_same_thread=false"
DATA_DIR = str(BI_HOME)

# No result cache: a chart reads the snapshot on every load, so the numbers change the moment a
# refresh renames a new snapshot into place (the snapshot is small and DuckDB answers in ms).
CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}

# Served on loopback over plain HTTP for one person: no HTTPS-only cookies or CSP to fight with.
TALISMAN_ENABLED = False
SESSION_COOKIE_SECURE = False
