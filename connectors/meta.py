"""Meta Marketing API connector: ad insights per day and ad, and hourly pixel events.

Endpoints (base https://graph.facebook.com, overridable with META_BASE_URL; version META_API_VERSION,
default v25.0):

- `GET /{version}/act_{account}/insights` with level=ad, time_increment=1,
  time_range={"since","until"}, the fields below and `limit`: one row per day x ad that delivered.
  Ranges longer than META_ASYNC_MIN_DAYS (default 8) days run as an async report instead:
  `POST .../insights` -> {"report_run_id"}, poll `GET /{version}/{report_run_id}` until
  async_status "Job Completed" ("Job Failed" / "Job Skipped" fail), then page
  `GET /{version}/{report_run_id}/insights`.
- `GET /{version}/{pixel_id}/stats?aggregation=event&start_time&end_time`: hourly buckets of
  pixel event counts.

Paging: cursor paging; the end is the absence of `paging.next` (`cursors.after` is present even on
the last page). `next` links are followed with any `access_token` stripped from their query, and
only on the configured host.

Auth: META_ACCESS_TOKEN travels only in an `Authorization: Bearer` header, never in a URL, a log
line or an exception. Code 190 (bad or expired token) is permanent: create a new long-lived token.

Throttling: Meta throttles with HTTP 400/403 and codes 4, 17, 613 or 80000-80014 (not 429). Those
are retried after the wait in X-Business-Use-Case-Usage `estimated_time_to_regain_access` (minutes),
or X-Ad-Account-Usage `reset_time_duration` (seconds), capped by the retry policy; without a hint,
capped exponential backoff. Retries (also 429, 5xx, dropped connections, truncated bodies,
`is_transient` errors) go through `connectors.http.call_with_retries`.

Grain: pages are parsed into Arrow record batches one HTTP page at a time.
- `insights(since, until)`: INSIGHTS_SCHEMA; `actions` is the JSON list as text (staging pivots it).
- `pixel_events(day)`: PIXEL_SCHEMA, one row per hour x event of the UTC day.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pyarrow as pa
import requests

from connectors.errors import ConnectorConfigError
from connectors.http import (
    RETRYABLE_STATUSES,
    ApiError,
    ApiSession,
    RetryPolicy,
    TransientError,
    call_with_retries,
    json_body,
    parse_retry_after,
    pool_size_from_env,
    send,
)
from connectors.ratelimit import RateLimits, SpacedCalls, meta_usage_gap
from connectors.secrets import register_secret

log = logging.getLogger(__name__)

SOURCE = "meta"
MAX_PAGE_SIZE = 5000
THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
TRANSIENT_CODES = frozenset({1, 2})  # "unknown error" / "service temporarily unavailable"
TOKEN_CODES = frozenset({190, 102, 2500})
INSIGHTS_FIELDS = (
    "account_id",
    "campaign_id",
    "campaign_name",
    "adset_id",
    "adset_name",
    "ad_id",
    "ad_name",
    "spend",
    "impressions",
    "reach",
    "clicks",
    "inline_link_clicks",
    "actions",
    "date_start",
    "date_stop",
)
# Fields a row must have: without them the row cannot be placed or counted.
REQUIRED_INSIGHTS_FIELDS = (
    "date_start",
    "campaign_id",
    "adset_id",
    "ad_id",
    "spend",
    "impressions",
    "clicks",
)

INSIGHTS_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32()),
        pa.field("account_id", pa.string()),
        pa.field("campaign_id", pa.string()),
        pa.field("campaign_name", pa.string()),
        pa.field("adset_id", pa.string()),
        pa.field("adset_name", pa.string()),
        pa.field("ad_id", pa.string()),
        pa.field("ad_name", pa.string()),
        pa.field("spend", pa.float64()),
        pa.field("impressions", pa.int64()),
        pa.field("reach", pa.int64()),
        pa.field("clicks", pa.int64()),
        pa.field("inline_link_clicks", pa.int64()),
        pa.field("actions", pa.string()),
    ]
)
PIXEL_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32()),
        pa.field("hour_start", pa.timestamp("us")),  # UTC, naive
        pa.field("event", pa.string()),
        pa.field("count", pa.int64()),
    ]
)
_ASYNC_FAILED = ("Job Failed", "Job Skipped")


# json.dumps with separators builds a new encoder per call (a third of its cost for an actions list)
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


class MetaConfigError(ConnectorConfigError):
    """A Meta setting is missing or malformed (raised before any request)."""


class MetaTokenError(ApiError):
    """Meta rejected META_ACCESS_TOKEN (code 190): permanent, a new token is needed."""


# --- configuration ---------------------------------------------------------------------------------


def _digits(value: object, name: str, prefix: str | None, where: str) -> str:
    text = str(value or "").strip()
    if not text:
        raise MetaConfigError(f"{name} is not set: {where}")
    if prefix and text.startswith(prefix):
        text = text[len(prefix) :]
    if not text.isdigit():
        raise MetaConfigError(f"{name}={text!r} is not a valid id: use its digits only. {where}")
    return text


_ACCOUNT_WHERE = (
    "set it to the ad account id, digits or act_<digits> (for example act_1234567890), shown in Ads "
    "Manager's account menu or in Business Settings > Accounts > Ad accounts."
)
_PIXEL_WHERE = (
    "set it to the pixel (dataset) id, digits only (for example 987654321), shown in Events Manager > "
    "Data sources > your pixel > Settings."
)
_TOKEN_HOW = (
    "create a new long-lived token (Business Settings > Users > System users > Generate new token, "
    "with the ads_read permission) and set META_ACCESS_TOKEN to it."
)


def _number(value: object, name: str, kind: type, low: float, high: float | None = None):
    try:
        number = kind(str(value).strip().replace("_", ""))
    except ValueError:
        raise MetaConfigError(f"{name}={value!r} is not a number.") from None
    if number < low or (high is not None and number > high):
        bound = f"{low}..{high}" if high is not None else f"at least {low}"
        raise MetaConfigError(f"{name}={number} is out of range; use {bound}.")
    return number


@dataclass(frozen=True)
class MetaConfig:
    """Settings of the Meta connector, validated on construction (no request before that)."""

    DEFAULT_BASE_URL: ClassVar[str] = "https://graph.facebook.com"
    DEFAULT_API_VERSION: ClassVar[str] = "v25.0"

    access_token: str = field(repr=False)
    ad_account_id: str
    pixel_id: str | None = None
    base_url: str = DEFAULT_BASE_URL
    api_version: str = DEFAULT_API_VERSION
    page_size: int = MAX_PAGE_SIZE
    timeout_seconds: float = 60.0
    async_min_days: int = 8
    async_poll_seconds: float = 5.0
    async_timeout_seconds: float = 3600.0
    rate_limits: RateLimits = field(default_factory=RateLimits.from_env)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        token = str(self.access_token or "").strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        if not token:
            raise MetaConfigError(f"META_ACCESS_TOKEN is not set: {_TOKEN_HOW}")
        if any(c.isspace() for c in token):
            raise MetaConfigError(
                "META_ACCESS_TOKEN contains whitespace: paste the token alone, on one line."
            )
        set_(self, "access_token", token)
        register_secret(token)
        set_(self, "ad_account_id", _digits(self.ad_account_id, "META_AD_ACCOUNT_ID", "act_", _ACCOUNT_WHERE))
        if self.pixel_id is not None and str(self.pixel_id).strip():
            set_(self, "pixel_id", _digits(self.pixel_id, "META_PIXEL_ID", None, _PIXEL_WHERE))
        else:
            set_(self, "pixel_id", None)
        base = str(self.base_url or "").strip().rstrip("/")
        if not re.match(r"^https?://[^/\s]+", base):
            raise MetaConfigError(
                f"META_BASE_URL={base!r} is not an http(s) URL (for example https://graph.facebook.com)."
            )
        set_(self, "base_url", base)
        version = str(self.api_version or "").strip()
        if not re.fullmatch(r"v\d+\.\d+", version):
            raise MetaConfigError(f"META_API_VERSION={version!r} is not a Graph API version like v25.0.")
        set_(self, "api_version", version)
        set_(self, "page_size", _number(self.page_size, "META_PAGE_SIZE", int, 1, MAX_PAGE_SIZE))
        set_(self, "timeout_seconds", _number(self.timeout_seconds, "META_TIMEOUT_SECONDS", float, 0.001))
        set_(self, "async_min_days", _number(self.async_min_days, "META_ASYNC_MIN_DAYS", int, 1))
        set_(
            self, "async_poll_seconds", _number(self.async_poll_seconds, "META_ASYNC_POLL_SECONDS", float, 0)
        )
        set_(
            self,
            "async_timeout_seconds",
            _number(self.async_timeout_seconds, "META_ASYNC_TIMEOUT_SECONDS", float, 1),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MetaConfig:
        """Read META_ACCESS_TOKEN, META_AD_ACCOUNT_ID, META_PIXEL_ID, META_BASE_URL, META_API_VERSION,
        META_PAGE_SIZE, META_TIMEOUT_SECONDS, META_ASYNC_MIN_DAYS, META_ASYNC_POLL_SECONDS,
        META_ASYNC_TIMEOUT_SECONDS. Raises MetaConfigError naming the setting and the fix."""
        env = os.environ if environ is None else environ
        return cls(
            access_token=env.get("META_ACCESS_TOKEN", ""),
            ad_account_id=env.get("META_AD_ACCOUNT_ID", ""),
            pixel_id=env.get("META_PIXEL_ID") or None,
            base_url=env.get("META_BASE_URL") or cls.DEFAULT_BASE_URL,
            api_version=env.get("META_API_VERSION") or cls.DEFAULT_API_VERSION,
            page_size=env.get("META_PAGE_SIZE") or MAX_PAGE_SIZE,
            timeout_seconds=env.get("META_TIMEOUT_SECONDS") or 60.0,
            async_min_days=env.get("META_ASYNC_MIN_DAYS") or 8,
            async_poll_seconds=env.get("META_ASYNC_POLL_SECONDS") or 5.0,
            async_timeout_seconds=env.get("META_ASYNC_TIMEOUT_SECONDS") or 3600.0,
            rate_limits=RateLimits.from_env(env),
        )


# --- wait hints ------------------------------------------------------------------------------------


def _json_header(headers: Mapping[str, str], name: str) -> Any:
    text = headers.get(name)
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def throttle_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds Meta's usage headers ask to wait, or None when they give no figure.

    X-Business-Use-Case-Usage: {business_id: [{type, call_count, ..., estimated_time_to_regain_access
    (minutes)}]}; X-Ad-Account-Usage: {acc_id_util_pct, reset_time_duration (seconds)};
    Retry-After as a last resort.
    """
    waits: list[float] = []
    business = _json_header(headers, "X-Business-Use-Case-Usage")
    if isinstance(business, dict):
        for entries in business.values():
            for entry in entries if isinstance(entries, list) else [entries]:
                if isinstance(entry, dict):
                    minutes = entry.get("estimated_time_to_regain_access")
                    if isinstance(minutes, (int, float)) and minutes > 0:
                        waits.append(60.0 * minutes)
    account = _json_header(headers, "X-Ad-Account-Usage")
    if isinstance(account, dict):
        reset = account.get("reset_time_duration")
        if isinstance(reset, (int, float)) and reset > 0:
            waits.append(float(reset))
    if waits:
        return max(waits)
    return parse_retry_after(headers.get("Retry-After"))


def _usage_percent(headers: Mapping[str, str]) -> float:
    """The highest usage percentage Meta reports in X-App-Usage / X-Ad-Account-Usage / BUC."""
    values: list[float] = []
    app = _json_header(headers, "X-App-Usage")
    if isinstance(app, dict):
        values += [v for v in app.values() if isinstance(v, (int, float))]
    account = _json_header(headers, "X-Ad-Account-Usage")
    if isinstance(account, dict) and isinstance(account.get("acc_id_util_pct"), (int, float)):
        values.append(account["acc_id_util_pct"])
    business = _json_header(headers, "X-Business-Use-Case-Usage")
    if isinstance(business, dict):
        for entries in business.values():
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict):
                    values += [
                        entry[k]
                        for k in ("call_count", "total_cputime", "total_time")
                        if isinstance(entry.get(k), (int, float))
                    ]
    return max(values, default=0.0)


# --- the client ------------------------------------------------------------------------------------


class MetaClient:
    """A Marketing API client for one ad account (and optionally one pixel).

    Args:
        config: validated settings (MetaConfig).
        policy: retries (default RetryPolicy.from_env(): HTTP_MAX_ATTEMPTS, HTTP_MAX_RETRY_SECONDS).
        sleep: how to wait (tests pass a recorder).
    """

    def __init__(
        self,
        config: MetaConfig,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.config = config
        self.policy = policy or RetryPolicy.from_env()
        self._sleep = sleep
        self._session = ApiSession(pool_size_from_env())
        # Meta's usage figures are per token: every client of it in the process slows down together
        self._usage = config.rate_limits.shared("meta.usage", config.access_token, SpacedCalls)
        self._session.headers["Authorization"] = f"Bearer {config.access_token}"
        self._session.headers["User-Agent"] = "darksocial-warehouse meta-connector"
        self._root = f"{config.base_url}/{config.api_version}"
        self._base_netloc = urlsplit(config.base_url).netloc
        self._warned: set[str] = set()

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> MetaClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- requests ---
    def _endpoint(self, url: str) -> str:
        """The URL without its query string, as errors and logs name it."""
        parts = urlsplit(url)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))

    def _safe_next(self, url: str) -> str:
        """A paging.next link without access_token, pointed at the configured host."""
        parts = urlsplit(url)
        query = urlencode(
            [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "access_token"]
        )
        if parts.netloc != self._base_netloc:
            # Never send the bearer token to another host: rebase the path on META_BASE_URL.
            match = re.search(r"/v\d+\.\d+/.*$", parts.path)
            if not match:
                raise ApiError(SOURCE, self._endpoint(url), 200, "paging.next points outside the Graph API")
            return f"{self.config.base_url}{match.group(0)}" + (f"?{query}" if query else "")
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))

    def _request(self, method: str, url: str, params: Mapping[str, Any] | None = None) -> dict:
        endpoint = self._endpoint(url)

        def attempt() -> dict:
            kwargs: dict[str, Any] = {}
            if params:
                kwargs["data" if method == "POST" else "params"] = dict(params)
            self._usage.wait()
            response = send(self._session, method, url, timeout=self.config.timeout_seconds, **kwargs)
            if 200 <= response.status_code < 300:
                payload = json_body(response)
                if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
                    self._raise_error(response, payload["error"], endpoint)
                if not isinstance(payload, dict):
                    raise ApiError(SOURCE, endpoint, response.status_code, "the answer is not a JSON object")
                usage = _usage_percent(response.headers)
                # above the slowdown percentage, every thread spaces its calls until usage falls
                self._usage.set_gap(meta_usage_gap(self.config.rate_limits, usage))
                if usage >= self.config.rate_limits.meta_slowdown_percent:
                    log.warning("meta: API usage at %.0f%% of the limit on %s", usage, endpoint)
                return payload
            try:
                payload = response.json()
            except ValueError:
                payload = None
            error = payload.get("error") if isinstance(payload, dict) else None
            if isinstance(error, dict):
                self._raise_error(response, error, endpoint)
            text = response.text.strip()[:300] or response.reason or "no message"
            if response.status_code in RETRYABLE_STATUSES or response.status_code >= 500:
                raise TransientError(
                    response.status_code, text, parse_retry_after(response.headers.get("Retry-After"))
                )
            raise ApiError(SOURCE, endpoint, response.status_code, text)

        return call_with_retries(
            attempt, source=SOURCE, endpoint=endpoint, policy=self.policy, sleep=self._sleep
        )

    def _raise_error(self, response: requests.Response, error: dict, endpoint: str) -> None:
        code = error.get("code")
        subcode = error.get("error_subcode")
        kind = error.get("type") or "error"
        trace = error.get("fbtrace_id")
        message = str(error.get("message") or response.reason or "no message")
        described = f"{kind} code {code}" + (f"/{subcode}" if subcode else "") + f": {message}"
        if trace:
            described += f" (fbtrace_id {trace})"
        status = response.status_code
        if code in THROTTLE_CODES:
            raise TransientError(status, f"throttled, {described}", throttle_wait(response.headers))
        if code in TOKEN_CODES:
            raise MetaTokenError(
                SOURCE,
                endpoint,
                status,
                f"META_ACCESS_TOKEN was rejected ({described}); it is invalid or expired: {_TOKEN_HOW}",
            )
        if error.get("is_transient") or code in TRANSIENT_CODES or status == 429 or status >= 500:
            raise TransientError(status, described, parse_retry_after(response.headers.get("Retry-After")))
        raise ApiError(SOURCE, endpoint, status, described)

    def ad_account(self) -> dict:
        """One cheap read for a settings check: the ad account's name, status and currency.

        Meta answers it only to a token with ads_read (or ads_management) on the account.
        Returns the AdAccount fields (`account_status` 1 is active). Raises ApiError
        (MetaTokenError for a rejected token) naming Meta's code and message.
        """
        url = f"{self._root}/act_{self.config.ad_account_id}"
        return self._request("GET", url, {"fields": "name,account_status,currency,timezone_name"})

    # --- paging ---
    def pages(self, url: str, params: Mapping[str, Any] | None = None) -> Iterator[list]:
        """GET `url` and follow `paging.next` until it is absent; yields each page's `data` list."""
        next_url: str | None = url
        next_params = params
        page_number = 0
        while next_url:
            payload = self._request("GET", next_url, next_params)
            data = payload.get("data")
            if not isinstance(data, list):
                raise ApiError(SOURCE, self._endpoint(next_url), 200, "the answer has no `data` list")
            page_number += 1
            log.info("meta: %s page %d, %d items", self._endpoint(next_url), page_number, len(data))
            yield data
            paging = payload.get("paging") or {}
            link = paging.get("next") if isinstance(paging, dict) else None
            next_url, next_params = (self._safe_next(link), None) if link else (None, None)

    # --- parsing ---
    def _warn_extra(self, where: str, keys) -> None:
        for key in keys:
            tag = f"{where}.{key}"
            if tag not in self._warned:
                self._warned.add(tag)
                log.warning("meta: %s has an unexpected field %r; it is ignored", where, key)

    def _insights_batch(self, rows: list, endpoint: str) -> pa.RecordBatch:
        known = set(INSIGHTS_FIELDS)
        cols: dict[str, list] = {f.name: [] for f in INSIGHTS_SCHEMA}
        for row in rows:
            if not isinstance(row, dict):
                raise ApiError(SOURCE, endpoint, 200, "an insights row is not a JSON object")
            missing = [f for f in REQUIRED_INSIGHTS_FIELDS if f not in row]
            if missing:
                raise ApiError(
                    SOURCE,
                    endpoint,
                    200,
                    f"an insights row lacks the required field {missing[0]!r} (fields present: "
                    f"{', '.join(sorted(row))})",
                )
            extra = set(row) - known
            if extra:
                self._warn_extra("insights row", sorted(extra))
            try:
                cols["date"].append(date.fromisoformat(row["date_start"]))
                cols["account_id"].append(str(row.get("account_id") or self.config.ad_account_id))
                for name in ("campaign_id", "adset_id", "ad_id"):
                    cols[name].append(str(row[name]))
                for name in ("campaign_name", "adset_name", "ad_name"):
                    cols[name].append(row.get(name))
                cols["spend"].append(float(row["spend"]))
                for name in ("impressions", "reach", "clicks", "inline_link_clicks"):
                    value = row.get(name)
                    cols[name].append(int(value) if value not in (None, "") else None)
            except (TypeError, ValueError) as exc:
                raise ApiError(
                    SOURCE, endpoint, 200, f"an insights row holds a malformed value: {exc}"
                ) from None
            actions = row.get("actions") or []
            if not isinstance(actions, list):
                raise ApiError(SOURCE, endpoint, 200, "the field 'actions' is not a list")
            cols["actions"].append(_COMPACT_JSON.encode(actions))
        return pa.RecordBatch.from_pydict(cols, schema=INSIGHTS_SCHEMA)

    # --- insights ---
    def _insights_params(self, since: date, until: date) -> dict[str, str]:
        return {
            "level": "ad",
            "time_increment": "1",
            "time_range": json.dumps({"since": since.isoformat(), "until": until.isoformat()}),
            "fields": ",".join(INSIGHTS_FIELDS),
            "limit": str(self.config.page_size),
        }

    def insights(self, since: date, until: date) -> Iterator[pa.RecordBatch]:
        """Ad insights per day x ad for since..until inclusive (account time zone).

        Ranges longer than `async_min_days` days run as an async report. Yields one batch
        (INSIGHTS_SCHEMA) per HTTP page.
        """
        if until < since:
            raise MetaConfigError(f"insights: the range {since}..{until} is empty (until before since)")
        days = (until - since).days + 1
        if days > self.config.async_min_days:
            return self.insights_async(since, until)
        return self.insights_sync(since, until)

    def insights_sync(self, since: date, until: date) -> Iterator[pa.RecordBatch]:
        url = f"{self._root}/act_{self.config.ad_account_id}/insights"
        for data in self.pages(url, self._insights_params(since, until)):
            yield self._insights_batch(data, self._endpoint(url))

    def insights_async(self, since: date, until: date) -> Iterator[pa.RecordBatch]:
        url = f"{self._root}/act_{self.config.ad_account_id}/insights"
        started = self._request("POST", url, self._insights_params(since, until))
        run_id = str(started.get("report_run_id") or "")
        if not run_id.isdigit():
            raise ApiError(SOURCE, self._endpoint(url), 200, "the async report answer lacks 'report_run_id'")
        log.info("meta: async insights report %s for %s..%s started", run_id, since, until)
        self._wait_for_report(run_id)
        results = f"{self._root}/{run_id}/insights"
        for data in self.pages(results, {"limit": str(self.config.page_size)}):
            yield self._insights_batch(data, self._endpoint(results))

    def _wait_for_report(self, run_id: str) -> None:
        url = f"{self._root}/{run_id}"
        deadline = time.monotonic() + self.config.async_timeout_seconds
        polls = 0
        while True:
            status = self._request("GET", url)
            polls += 1
            state = status.get("async_status")
            percent = status.get("async_percent_completion")
            if state is None:
                raise ApiError(
                    SOURCE, self._endpoint(url), 200, "the report run lacks the field 'async_status'"
                )
            log.info("meta: async report %s: %s, %s%% complete (poll %d)", run_id, state, percent, polls)
            if state == "Job Completed":
                return
            if state in _ASYNC_FAILED:
                detail = status.get("error_message") or status.get("error_user_msg") or "no reason given"
                raise ApiError(
                    SOURCE,
                    self._endpoint(url),
                    200,
                    f"async insights report {run_id} ended with {state!r} at {percent}%: {detail}. "
                    "Retry the run; if it keeps failing, load a shorter range (META_ASYNC_MIN_DAYS).",
                )
            if time.monotonic() > deadline:
                raise ApiError(
                    SOURCE,
                    self._endpoint(url),
                    200,
                    f"async insights report {run_id} still {state!r} at {percent}% after "
                    f"{self.config.async_timeout_seconds:.0f}s (META_ASYNC_TIMEOUT_SECONDS)",
                )
            self._sleep(self.config.async_poll_seconds)

    # --- pixel ---
    def pixel_events(self, day: date, until: date | None = None) -> Iterator[pa.RecordBatch]:
        """The pixel's events of the UTC days day..until (default: that day alone), per hour and
        event: batches with PIXEL_SCHEMA. A range is one paged call, not one per day."""
        if self.config.pixel_id is None:
            raise MetaConfigError(f"META_PIXEL_ID is not set: {_PIXEL_WHERE}")
        last = until or day
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        end = datetime(last.year, last.month, last.day, tzinfo=timezone.utc) + timedelta(days=1)
        url = f"{self._root}/{self.config.pixel_id}/stats"
        params = {
            "aggregation": "event",
            "start_time": str(int(start.timestamp())),
            "end_time": str(int(end.timestamp())),
            "limit": str(min(self.config.page_size, 100)),
        }
        endpoint = self._endpoint(url)
        for data in self.pages(url, params):
            yield self._pixel_batch(data, endpoint)

    def _pixel_batch(self, buckets: list, endpoint: str) -> pa.RecordBatch:
        cols: dict[str, list] = {f.name: [] for f in PIXEL_SCHEMA}
        for bucket in buckets:
            if not isinstance(bucket, dict):
                raise ApiError(SOURCE, endpoint, 200, "a pixel stats bucket is not a JSON object")
            for name in ("start_time", "data"):
                if name not in bucket:
                    raise ApiError(
                        SOURCE, endpoint, 200, f"a pixel stats bucket lacks the required field {name!r}"
                    )
            extra = set(bucket) - {"start_time", "aggregation", "data"}
            if extra:
                self._warn_extra("pixel stats bucket", sorted(extra))
            try:
                hour = _parse_time(bucket["start_time"])
            except ValueError:
                raise ApiError(
                    SOURCE, endpoint, 200, f"pixel stats start_time {bucket['start_time']!r} is not a time"
                ) from None
            for entry in bucket["data"] or []:
                event = entry.get("value", entry.get("event")) if isinstance(entry, dict) else None
                if event is None or "count" not in entry:
                    name = "value" if event is None else "count"
                    raise ApiError(
                        SOURCE, endpoint, 200, f"a pixel stats entry lacks the required field {name!r}"
                    )
                extra = set(entry) - {"value", "event", "count"}
                if extra:
                    self._warn_extra("pixel stats entry", sorted(extra))
                cols["date"].append(hour.date())
                cols["hour_start"].append(hour)
                cols["event"].append(str(event))
                try:
                    cols["count"].append(int(entry["count"]))
                except (TypeError, ValueError):
                    raise ApiError(
                        SOURCE, endpoint, 200, f"pixel stats count {entry['count']!r} is not a number"
                    ) from None
        return pa.RecordBatch.from_pydict(cols, schema=PIXEL_SCHEMA)


def _parse_time(text: object) -> datetime:
    """Meta's datetime ("2026-03-02T05:00:00+0000") or unix seconds, as a naive UTC datetime."""
    value = str(text).strip()
    if value.isdigit():
        return datetime.fromtimestamp(int(value), tz=timezone.utc).replace(tzinfo=None)
    if re.search(r"[+-]\d{4}$", value):
        value = value[:-2] + ":" + value[-2:]
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed


__all__ = [
    "INSIGHTS_FIELDS",
    "INSIGHTS_SCHEMA",
    "PIXEL_SCHEMA",
    "MetaClient",
    "MetaConfig",
    "MetaConfigError",
    "MetaTokenError",
    "throttle_wait",
]
