"""Secrets redacted by value at the process boundary: logs, exceptions, Dagster events.

A secret reaches text in three ways: a server echoes a credential it received (a header, the URL,
the body) in its error answer; a user pastes a URL holding `?api_key=` into a setting; a library
puts what it was given into its exception. Patterns miss a key with no recognisable shape, so
every configured secret is collected from the environment once (`secret_values`) and replaced
wherever it appears:

- log lines of every logger, Dagster's included: `install` wraps the log record factory, so a
  record is redacted when it is made, before any handler (console, Dagster's event log) sees it;
- exceptions: an asset's load runs inside `redacted_errors`, which re-raises an error whose message
  (or a cause's) holds a secret as a `dagster.Failure` with the redacted text, so the step's failure
  event, its stack and the console never carry it;
- connectors' own messages: the same values are registered with connectors/secrets.py.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlsplit

import dagster as dg

from connectors.secrets import (
    has_secrets,
    redact_values,
    register_secret,
    register_service_account_secrets,
)

# Settings that hold a secret whole.
SECRET_SETTINGS = (
    "SLACK_BOT_TOKEN",
    "DISCOURSE_API_KEY",
    "META_ACCESS_TOKEN",
    "DISCORD_BOT_TOKEN",
    "MEMBER_HASH_KEY",
)
# A query parameter of a URL setting whose name holds one of these carries a credential.
_SECRET_PARAMETER_WORDS = ("key", "token", "secret", "password", "signature", "auth")


def secret_values(environ: Mapping[str, str] | None = None) -> set[str]:
    """Every secret the settings hold: the secret settings, the private parts of the service-account
    key file, the password of any URL setting (a proxy's), and credential-like query parameters a
    user pasted into any URL setting (`?api_key=...`)."""
    env = os.environ if environ is None else environ
    values = {env.get(name, "").strip() for name in SECRET_SETTINGS}
    key_file = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if key_file:
        try:
            info = json.loads(open(key_file, encoding="utf-8").read())
        except (OSError, ValueError):
            info = None  # the connector reports an unreadable key file, naming the setting
        if isinstance(info, dict):
            values.update(str(info.get(k) or "") for k in ("private_key", "private_key_id"))
    for value in env.values():
        if "://" not in value:
            continue
        try:
            parts = urlsplit(value.strip())
            password = parts.password
        except ValueError:
            continue
        if password:
            values.add(password)
            if parts.username:
                values.add(f"{parts.username}:{password}")
        for name, param in parse_qsl(parts.query):
            if any(word in name.lower() for word in _SECRET_PARAMETER_WORDS):
                values.add(param)
    return {v for v in values if v}


_installed = False


def install(environ: Mapping[str, str] | None = None) -> None:
    """Register the settings' secrets and redact every log record this process makes from now on.

    Idempotent; called when the definitions load (every Dagster process, `make demo`).
    """
    global _installed
    env = os.environ if environ is None else environ
    for value in secret_values(env):
        register_secret(value)
        if ":" in value:  # a proxy's user:password also travels base64-encoded (Proxy-Authorization)
            register_secret(base64.b64encode(value.encode()).decode())
    key_file = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if key_file:
        try:
            register_service_account_secrets(json.loads(open(key_file, encoding="utf-8").read()))
        except (OSError, ValueError):
            pass
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def redacting_factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if has_secrets():
            _redact_record(record)
        return record

    logging.setLogRecordFactory(redacting_factory)
    _installed = True


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a malformed record: leave it for logging to report
        return
    record.msg, record.args = redact_values(message), ()
    if record.exc_info and not record.exc_text:
        record.exc_text = redact_values("".join(traceback.format_exception(*record.exc_info)).rstrip())


def redact(text: str) -> str:
    """`text` with every registered secret replaced."""
    return redact_values(text)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _text(exc: BaseException) -> str:
    # str() of some exceptions (KeyError) quotes; args hold what a library passed.
    return " ".join([str(exc), *(str(a) for a in exc.args), *getattr(exc, "__notes__", [])])


@contextmanager
def redacted_errors() -> Iterator[None]:
    """Re-raise an exception whose message, or a cause's, holds a secret as a `dagster.Failure`
    carrying the redacted messages and no chain; any other exception passes unchanged."""
    try:
        yield
    except Exception as exc:
        chain = list(_chain(exc))
        if not any(redact_values(_text(e)) != _text(e) for e in chain):
            raise
        described = "; caused by ".join(f"{type(e).__name__}: {redact_values(str(e))}" for e in chain)
        raise dg.Failure(description=described) from None
