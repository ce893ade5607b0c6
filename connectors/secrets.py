"""Redaction by value: every secret a connector is configured with, replaced wherever it appears.

Pattern redaction (connectors/http.py `redact`) catches what looks like a token; it misses a key
that has no recognisable shape, echoed by a server in an error body or pasted by a user into a URL.
So each connector config registers the secrets it holds (`register_secret`), and every connector
message passes through `redact_values`, which replaces those exact values, also in the encoded forms
a server may echo them in (URL-quoted, JSON-escaped, base64 of a proxy's user:password).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"

# Shorter values would replace ordinary words and numbers (a secret is never this short in practice).
MIN_SECRET_LENGTH = 8

_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None


def _forms(value: str) -> set[str]:
    """The value and the encodings it travels in."""
    forms = {value, quote(value, safe=""), quote_plus(value), value.replace("\n", "\\n")}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def register_secret(value: object) -> None:
    """Redact `value` (a token, key or password) from every connector message from now on.

    Values shorter than MIN_SECRET_LENGTH and empty values are ignored.
    """
    register_secrets([value])


def register_secrets(values: Iterable[object]) -> None:
    """`register_secret` for each of `values`, compiling the pattern once for them all: a
    service-account key is ~28 values, and one compile of the growing pattern per value took 0.13 s
    of CPU for the first key (more for each later one), one compile for all 0.006 s."""
    texts = [str(value or "").strip() for value in values]
    texts = [text for text in texts if len(text) >= MIN_SECRET_LENGTH]
    global _pattern
    with _lock:
        new = set().union(*(_forms(text) for text in texts)) - _values
        if not new:
            return
        _values.update(new)
        # Longest first, so a value containing another is replaced whole.
        alternatives = sorted(_values, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(v) for v in alternatives))


def has_secrets() -> bool:
    """Whether any secret is registered (cheap: called for every log record)."""
    return _pattern is not None


def registered_secrets() -> frozenset[str]:
    """Every registered value, in every form it is redacted in."""
    with _lock:
        return frozenset(_values)


def redact_values(text: str) -> str:
    """`text` with every registered secret replaced by [redacted]."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(REDACTED, text)


def register_service_account_secrets(info: object) -> None:
    """Register the private parts of a service-account key: `private_key` whole and line by line (a
    server or a traceback may show a fragment), and `private_key_id`."""
    if not isinstance(info, dict):
        return
    key = str(info.get("private_key") or "")
    lines = [line for line in key.splitlines() if not line.startswith("-----")]
    register_secrets([key, *lines, info.get("private_key_id")])
