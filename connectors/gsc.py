"""Google Search Console connector: Search Analytics rows and totals, over ranges of days.

Endpoint: `POST {base_url}/webmasters/v3/sites/{siteUrl}/searchAnalytics/query` (siteUrl
URL-encoded; base_url https://searchconsole.googleapis.com, overridable with GSC_BASE_URL),
authorised by a service account (OAuth 2 JWT-bearer grant through google-auth, scope
webmasters.readonly; the same key as GA4, GOOGLE_APPLICATION_CREDENTIALS).

Grain: one `QueryPage` per HTTP page, its rows parsed at once into a pyarrow RecordBatch. A page
is decoded by pyarrow's JSON reader straight into Arrow (no Python object per value), as
connectors/ga4.py does; an answer of any other shape than a plain page of rows (an error, an empty
page, a field the connector does not know, a missing or null value, a value of another type) falls
back to the standard library's json and the row-by-row parse, whose diagnosis stands.
- `queries(day)`: date x query x page x device x country; clicks, impressions, ctr, position
  (QUERIES_SCHEMA). Google leaves out anonymized (rare) queries from these rows.
- `totals(day)`: date only (TOTALS_SCHEMA): every click of the day, anonymized queries included,
  so totals minus the query rows is the anonymized-clicks figure.

Ranges: `queries_days(first, last)` and `totals_days(first, last)` ask one query per range of
days with the date dimension and split its rows into days on our side (every day of the range
comes out, empty when Search Console has no row for it). The API orders rows by clicks, not by
date, so a range's rows are held until its last page: the totals (a row a day) come in one query
for the whole range; the query rows in ranges of about RANGE_ROWS rows (the first of
FIRST_RANGE_DAYS days, the next sized from the rows a day seen so far), so memory holds a range
of about half a million rows whatever the site's size, and each range costs at most one page
that is not full. A range is at most RANGE_GROWTH times as long as the one before it.
`queries(day)` and `totals(day)` are the one-day queries.

Page size: GSC_ROW_LIMIT rows per request (default and maximum 25,000). Paging: startRow +=
rowLimit until a page comes back short (the API gives no total count). Pages are streamed.

Limits it respects: dataState "final" only (a day is final after ~2-3 days; newer days answer
no rows, `first_incomplete_date` asks which those are, and callers re-pull 4 trailing days); 16
months of history; days without data are absent. Search Analytics quotas (per-site and per-user
QPS/QPM, a load quota) are spent one request per page.

Faults: every request runs inside `connectors.http.call_with_retries` (GSCConfig.retry_policy,
default RetryPolicy.from_env()). Retried: 408/429/500/502/503/504, Google's legacy throttle form
(403 with reason rateLimitExceeded or userRateLimitExceeded), a dropped connection, a truncated
or malformed body, a timeout. Waits honour Retry-After, else Google's RetryInfo retryDelay, else
capped exponential backoff. A 401 makes the session refresh the token and resend. After the
last attempt (or at once for 400/403/404) an `ApiError` names source "gsc", the endpoint, the
status and Google's message. A required field missing from the answer raises ApiError naming the
field; a field the connector does not know is logged once (WARNING) and ignored.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from typing import Any, ClassVar
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import requests
from google.auth.exceptions import GoogleAuthError, RefreshError, TransportError

from connectors.errors import ConnectorConfigError
from connectors.google_auth import authorized_session, checked_key_source, read_service_account_file
from connectors.http import (
    RETRYABLE_STATUSES,
    ApiError,
    ArrowJsonObject,
    RetryPolicy,
    TransientError,
    call_with_retries,
    json_body,
    parse_retry_after,
    redact,
    send,
)
from connectors.ratelimit import RateLimits

log = logging.getLogger(__name__)

SOURCE = "gsc"
# The query rows a range holds (see the module's docstring), and the days of the first range.
RANGE_ROWS = 500_000
FIRST_RANGE_DAYS = 7
RANGE_GROWTH = 8
SCOPE = "https://www.googleapis.com/auth/webmasters.readonly"
MAX_ROW_LIMIT = 25_000

QUERIES_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32()),
        pa.field("query", pa.string()),
        pa.field("page", pa.string()),
        pa.field("device", pa.string()),
        pa.field("country", pa.string()),
        pa.field("clicks", pa.int64()),
        pa.field("impressions", pa.int64()),
        pa.field("ctr", pa.float64()),
        pa.field("position", pa.float64()),
    ]
)
TOTALS_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32()),
        pa.field("clicks", pa.int64()),
        pa.field("impressions", pa.int64()),
        pa.field("ctr", pa.float64()),
        pa.field("position", pa.float64()),
    ]
)
QUERIES_DIMENSIONS = ("date", "query", "page", "device", "country")
METRICS = ("clicks", "impressions", "ctr", "position")

# What the connector knows of a response; anything else is logged once and ignored.
_RESPONSE_FIELDS = frozenset({"rows", "responseAggregationType", "metadata"})
_ROW_FIELDS = frozenset({"keys", *METRICS})
# Google's legacy (apiary) throttle answers: HTTP 403 with one of these reasons.
_THROTTLE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})

# A plain page, typed for pyarrow's JSON reader (_decode_page): exactly these fields, nothing else.
_ROW_TYPE = pa.struct(
    [
        pa.field("keys", pa.list_(pa.string())),
        pa.field("clicks", pa.int64()),
        pa.field("impressions", pa.int64()),
        pa.field("ctr", pa.float64()),
        pa.field("position", pa.float64()),
    ]
)
_PAGE_FIELDS = pa.schema(
    [
        pa.field("rows", pa.list_(_ROW_TYPE)),
        pa.field("responseAggregationType", pa.string()),
        pa.field("metadata", pa.struct([pa.field("firstIncompleteDate", pa.string())])),
    ]
)
# A field the schema does not name fails the read (the json path warns about it).
_PAGE_READER = ArrowJsonObject(_PAGE_FIELDS, unexpected_field_behavior="error")
# The metric types the Arrow path fills; a schema typing them otherwise takes the json path.
_METRIC_TYPES = [pa.int64(), pa.int64(), pa.float64(), pa.float64()]
# Whole numbers up to 2**53 in magnitude survive the json path's float(); larger ones do not.
_EXACT_INT = 2**53


class GSCConfigError(ConnectorConfigError):
    """A Search Console setting is missing or malformed (raised before any request)."""


@dataclass(frozen=True)
class QueryPage:
    """One HTTP page of a Search Analytics query, parsed."""

    batch: pa.RecordBatch
    start_row: int
    first_incomplete_date: date | None  # only with dataState "all"
    response_aggregation_type: str | None


# --- configuration ---------------------------------------------------------------------------------

_SITE_HELP = (
    'Use the property exactly as Search Console lists it: a Domain property as "sc-domain:example.com" '
    "(no scheme, no slash), or a URL-prefix property as its full URL with the trailing slash, "
    'e.g. "https://www.example.com/".'
)


def _site_url(value: object) -> str:
    text = str(value or "").strip()
    if not text:
        raise GSCConfigError(f"GSC_SITE_URL is not set. {_SITE_HELP}")
    if text.lower().startswith("sc-domain:"):
        domain = text[len("sc-domain:") :]
        if not re.fullmatch(
            r"(?i)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+", domain
        ):
            raise GSCConfigError(
                f"GSC_SITE_URL={text!r} is not a Domain property: after sc-domain: comes a bare domain "
                f"such as example.com. {_SITE_HELP}"
            )
        return "sc-domain:" + domain.lower()
    if re.match(r"(?i)^https?://", text):
        if not re.fullmatch(r"(?i)https?://[^/\s?#]+(/[^\s?#]*)?", text):
            raise GSCConfigError(f"GSC_SITE_URL={text!r} is not a valid URL-prefix property. {_SITE_HELP}")
        if not text.endswith("/"):
            raise GSCConfigError(
                f"GSC_SITE_URL={text!r} lacks the trailing slash: a URL-prefix property is written "
                f"{text + '/'!r}. {_SITE_HELP}"
            )
        return text
    raise GSCConfigError(f"GSC_SITE_URL={text!r} is neither a Domain nor a URL-prefix property. {_SITE_HELP}")


def _int_setting(value: object, name: str, low: int, high: int) -> int:
    try:
        number = int(str(value).strip().replace("_", ""))
    except ValueError:
        raise GSCConfigError(f"{name}={value!r} is not a whole number; use {low}..{high}.") from None
    if not low <= number <= high:
        raise GSCConfigError(f"{name}={number} is out of range; use {low}..{high}.")
    return number


def _url(value: object, name: str, example: str) -> str:
    text = str(value or "").strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", text):
        raise GSCConfigError(f"{name}={text!r} is not an http(s) URL (for example {example}).")
    return text


@dataclass(frozen=True)
class GSCConfig:
    """Settings of the Search Console connector, validated on construction.

    Give exactly one of `credentials_file` (a service-account JSON key) or `credentials_info`
    (the parsed key). `token_uri` overrides the key's token endpoint (the sandbox uses it).
    """

    DEFAULT_BASE_URL: ClassVar[str] = "https://searchconsole.googleapis.com"

    site_url: str
    credentials_file: str | os.PathLike | None = None
    credentials_info: Mapping[str, Any] | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    token_uri: str | None = None
    row_limit: int = MAX_ROW_LIMIT
    timeout_seconds: float = 60.0
    retry_policy: RetryPolicy | None = None
    rate_limits: RateLimits = field(default_factory=RateLimits.from_env)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise in place once
        set_(self, "site_url", _site_url(self.site_url))
        path = checked_key_source(
            self.credentials_file,
            self.credentials_info,
            "access to the Search Console property (add its e-mail under Settings > Users and "
            "permissions; Restricted is enough)",
            GSCConfigError,
        )
        if path is not None:
            set_(self, "credentials_file", path)
        set_(self, "base_url", _url(self.base_url, "GSC_BASE_URL", self.DEFAULT_BASE_URL))
        if self.token_uri is not None:
            set_(
                self,
                "token_uri",
                _url(self.token_uri, "GSC_TOKEN_URI", "https://oauth2.googleapis.com/token"),
            )
        set_(self, "row_limit", _int_setting(self.row_limit, "GSC_ROW_LIMIT", 1, MAX_ROW_LIMIT))
        try:
            timeout = float(self.timeout_seconds)
        except (TypeError, ValueError):
            timeout = -1.0
        if not timeout > 0:
            raise GSCConfigError(
                f"GSC_TIMEOUT_SECONDS={self.timeout_seconds!r} must be a positive number of seconds."
            )
        set_(self, "timeout_seconds", timeout)
        if self.retry_policy is None:
            set_(self, "retry_policy", RetryPolicy.from_env())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GSCConfig:
        """Read and validate the Search Console settings from the environment (or a mapping).

        Reads GSC_SITE_URL, GOOGLE_APPLICATION_CREDENTIALS, GSC_BASE_URL, GSC_TOKEN_URI,
        GSC_ROW_LIMIT, GSC_TIMEOUT_SECONDS (and HTTP_MAX_ATTEMPTS, HTTP_MAX_RETRY_SECONDS).
        Raises GSCConfigError naming the setting and the fix.
        """
        env = os.environ if environ is None else environ
        return cls(
            site_url=env.get("GSC_SITE_URL", ""),
            credentials_file=env.get("GOOGLE_APPLICATION_CREDENTIALS") or None,
            base_url=env.get("GSC_BASE_URL") or cls.DEFAULT_BASE_URL,
            token_uri=env.get("GSC_TOKEN_URI") or None,
            row_limit=env.get("GSC_ROW_LIMIT") or MAX_ROW_LIMIT,
            timeout_seconds=env.get("GSC_TIMEOUT_SECONDS") or 60.0,
            retry_policy=RetryPolicy.from_env(env),
            rate_limits=RateLimits.from_env(env),
        )

    def service_account_info(self) -> dict:
        """The service-account key, read from the file if needed, with token_uri overridden if set."""
        if self.credentials_info is not None:
            info = dict(self.credentials_info)
        else:
            info = read_service_account_file(
                self.credentials_file, "access to the Search Console property", GSCConfigError
            )
        if self.token_uri:
            info["token_uri"] = self.token_uri
        return info


# --- Google's error answers ------------------------------------------------------------------------


def _duration_seconds(text: object) -> float | None:
    """A google.protobuf.Duration in JSON ("1.5s") as seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)s\s*", str(text or ""))
    return float(match.group(1)) if match else None


def google_error(response: requests.Response) -> tuple[str, str | None, set[str], float | None]:
    """(message, status, reasons, retry delay) from Google's error body; falls back to the text."""
    message, status, reasons, delay = None, None, set(), None
    try:
        payload = response.json()
    except ValueError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        message, status = error.get("message"), error.get("status")
        for item in error.get("errors") or []:
            if isinstance(item, dict) and item.get("reason"):
                reasons.add(str(item["reason"]))
        for detail in error.get("details") or []:
            if not isinstance(detail, dict):
                continue
            if detail.get("reason"):
                reasons.add(str(detail["reason"]))
            if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
                delay = _duration_seconds(detail.get("retryDelay"))
    elif isinstance(error, str):  # OAuth style {"error": "...", "error_description": "..."}
        message = f"{error}: {payload.get('error_description', '')}"
    if not message:
        text = response.text.strip()
        message = (text[:300] + "...") if len(text) > 300 else (text or response.reason or "no message")
    if status:
        message = f"{status}: {message}"
    return message, status, reasons, delay


# --- the client ------------------------------------------------------------------------------------


class GSCClient:
    """A Search Console Search Analytics client for one property.

    Args:
        config: validated settings (GSCConfig).
    """

    def __init__(self, config: GSCConfig):
        self.config = config
        info = config.service_account_info()
        self._token_uri = str(info.get("token_uri", ""))
        # A token before the first call and when it expires; a 401 refreshes it and resends.
        self._session = authorized_session(
            info, SCOPE, config.timeout_seconds, "darksocial-warehouse gsc-connector", GSCConfigError
        )
        site = quote(config.site_url, safe="")
        self.endpoint = f"{config.base_url}/webmasters/v3/sites/{site}/searchAnalytics/query"
        self._warned: set[str] = set()

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> GSCClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- requests ---
    def _error(self, status: int | None, message: str, attempts: int = 1) -> ApiError:
        return ApiError(SOURCE, self.endpoint, status, f"{message} (site {self.config.site_url})", attempts)

    def _attempt(
        self, body: dict, decode: Callable[[bytes], QueryPage | None] | None = None
    ) -> dict | QueryPage:
        self.config.rate_limits.acquire("gsc.site", self.config.site_url)
        try:
            response = send(
                self._session,
                "POST",
                self.endpoint,
                # Google's system parameter: the answer without indentation, readable by
                # _decode_page as one line
                params={"prettyPrint": "false"},
                json=body,
                timeout=self.config.timeout_seconds,
            )
        except RefreshError as exc:
            reason = redact(str(exc.args[0])) if exc.args else "refused"
            if getattr(exc, "retryable", False):  # the token endpoint itself throttled or failed
                raise TransientError(None, f"token endpoint {self._token_uri} failed: {reason}") from None
            raise self._error(
                401,
                f"could not get an access token from {self._token_uri}: {reason}. Check that the service "
                "account key is valid and not deleted.",
            ) from None
        except (TransportError, GoogleAuthError) as exc:
            raise TransientError(None, f"request failed: {type(exc).__name__}: {exc}") from None
        if not 200 <= response.status_code < 300:
            message, _, reasons, delay = google_error(response)
            wait = parse_retry_after(response.headers.get("Retry-After"))
            wait = wait if wait is not None else delay
            if response.status_code in RETRYABLE_STATUSES or (
                response.status_code == 403 and reasons & _THROTTLE_REASONS
            ):
                raise TransientError(response.status_code, message, wait)
            raise self._error(response.status_code, message)
        if decode is not None:
            page = decode(response.content)
            if page is not None:
                return page
        payload = json_body(response)
        if not isinstance(payload, dict):
            raise self._error(response.status_code, "the answer is not a JSON object")
        return payload

    def _post(
        self, body: dict, decode: Callable[[bytes], QueryPage | None] | None = None
    ) -> dict | QueryPage:
        """One searchAnalytics.query request, retried on transient failures.

        Returns:
            `decode(body bytes)` when it gives a page (the Arrow path), else the answer as json
            decodes it (a dict).
        """
        try:
            return call_with_retries(
                lambda: self._attempt(body, decode),
                source=SOURCE,
                endpoint=self.endpoint,
                policy=self.config.retry_policy,
            )
        except ApiError as exc:
            if "(site " in exc.message:
                raise
            raise self._error(exc.status, exc.message, exc.attempts) from None

    # --- paging ---
    def pages(self, body: Mapping[str, Any], schema: pa.Schema) -> Iterator[QueryPage]:
        """Run a Search Analytics query page by page: startRow += rowLimit until a short page.

        Args:
            body: a SearchAnalyticsQueryRequest (rowLimit/startRow default to the config's page size
                and 0).
            schema: the Arrow schema of the batches: one field per requested dimension, in order,
                then clicks, impressions, ctr, position.
        Returns:
            An iterator of QueryPage, one per HTTP request, each parsed as soon as it arrives.
        """
        limit = _int_setting(body.get("rowLimit") or self.config.row_limit, "rowLimit", 1, MAX_ROW_LIMIT)
        start = int(body.get("startRow") or 0)
        dimensions = [str(d).lower() for d in body.get("dimensions") or []]
        if len(schema) != len(dimensions) + len(METRICS):
            raise ValueError(f"schema has {len(schema)} fields for {len(dimensions)} dimensions + 4 metrics")
        page_number = 0
        while True:
            request = {**body, "rowLimit": limit, "startRow": start}
            answer = self._post(
                request, partial(self._arrow_page, schema=schema, n_dims=len(dimensions), start=start)
            )
            if isinstance(answer, QueryPage):
                page = answer
            else:  # not a plain page: json's view of it, parsed row by row (and diagnosed)
                page = self._parse(answer, schema, len(dimensions), start)
            del answer
            page_number += 1
            log.info(
                "GSC %s: page %d at startRow %d, %d rows",
                self.config.site_url,
                page_number,
                start,
                page.batch.num_rows,
            )
            yield page
            if page.batch.num_rows < limit:
                break
            start += limit

    def _arrow_page(self, content: bytes, schema: pa.Schema, n_dims: int, start: int) -> QueryPage | None:
        """The page `_parse` would make of this answer, decoded and converted in Arrow; None when the
        answer is not a plain page (then json and `_parse` take it, and say what is wrong)."""
        payload = _decode_page(content)
        if payload is None:
            return None
        columns = _arrow_columns(payload["rows"], schema, n_dims)
        if columns is None:
            return None
        incomplete = (payload["metadata"] or {}).get("firstIncompleteDate")
        try:
            first_incomplete = _date(incomplete) if incomplete else None
        except ValueError:
            return None
        return QueryPage(
            batch=pa.RecordBatch.from_arrays(columns, schema=schema),
            start_row=start,
            first_incomplete_date=first_incomplete,
            response_aggregation_type=payload["responseAggregationType"],
        )

    def _warn_once(self, what: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            log.warning("GSC answer carries %s, which the connector does not know; ignored", what)

    def _parse(self, payload: dict, schema: pa.Schema, n_dims: int, start: int) -> QueryPage:
        for name in payload.keys() - _RESPONSE_FIELDS:
            self._warn_once(f"the field {name!r}")
        rows = payload.get("rows") or []
        if not isinstance(rows, list):
            raise self._error(200, "the answer's 'rows' is not a list")
        keys: list[list] = [[] for _ in range(n_dims)]
        metrics: dict[str, list] = {m: [] for m in METRICS}
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise self._error(200, f"row {start + i} of the answer is not an object")
            for name in row.keys() - _ROW_FIELDS:
                self._warn_once(f"the row field {name!r}")
            row_keys = row.get("keys")
            if not isinstance(row_keys, list) or len(row_keys) != n_dims:
                raise self._error(
                    200,
                    f"the API response changed: row {start + i} lacks the required field 'keys' with "
                    f"{n_dims} values (got {row_keys!r:.80})",
                )
            for j, value in enumerate(row_keys):
                keys[j].append(value)
            for m in METRICS:
                if m not in row:
                    raise self._error(
                        200, f"the API response changed: row {start + i} lacks the required field {m!r}"
                    )
                metrics[m].append(row[m])
        columns = [self._column(values, schema.field(j)) for j, values in enumerate(keys)]
        columns += [self._column(metrics[m], schema.field(n_dims + k)) for k, m in enumerate(METRICS)]
        metadata = payload.get("metadata") or {}
        incomplete = metadata.get("firstIncompleteDate") if isinstance(metadata, dict) else None
        return QueryPage(
            batch=pa.RecordBatch.from_arrays(columns, schema=schema),
            start_row=start,
            first_incomplete_date=_date(incomplete) if incomplete else None,
            response_aggregation_type=payload.get("responseAggregationType"),
        )

    def _column(self, values: list, f: pa.Field) -> pa.Array:
        try:
            if pa.types.is_date32(f.type):
                return pa.array([_date(v) for v in values], type=f.type)
            if pa.types.is_integer(f.type):
                return pa.array([_whole(v) for v in values], type=f.type)
            if pa.types.is_floating(f.type):
                return pa.array([float(v) for v in values], type=f.type)
            # A missing key stays missing (not the text 'None'): the quality gate refuses it.
            return pa.array([None if v is None else str(v) for v in values], type=f.type)
        except (TypeError, ValueError) as exc:
            raise self._error(200, f"field {f.name!r} holds a value that is not {f.type}: {exc}") from None

    # --- the two streams ---
    def _day_body(self, day: date, dimensions: tuple[str, ...]) -> dict:
        return {
            "startDate": day.isoformat(),
            "endDate": day.isoformat(),
            "dimensions": [d.upper() for d in dimensions],
            "type": "WEB",
            "dataState": "FINAL",
        }

    def range_days(
        self, dimensions: tuple[str, ...], schema: pa.Schema, first: date, last: date, first_span: int
    ) -> Iterator[tuple[date, pa.Table]]:
        """Every day of `first`..`last` with its rows, from one query per range of days (see the
        module's docstring); `first_span` days in the first range.

        Returns:
            (day, rows) per day, in order, the rows with `schema` (its first field the date).
        Raises:
            ApiError: as `pages`, or the answer holds a day outside the range asked.
        """
        start, span = first, max(1, first_span)
        while start <= last:
            end = min(last, start + timedelta(days=span - 1))
            body = {**self._day_body(start, dimensions), "endDate": end.isoformat()}
            table = pa.Table.from_batches([p.batch for p in self.pages(body, schema)], schema=schema)
            days = (end - start).days + 1
            yield from self._split_days(table, start, end)
            # the next range holds about RANGE_ROWS rows at the rows a day seen in this one, and
            # at most RANGE_GROWTH times its days (a quiet range says little of the next)
            fits = RANGE_ROWS * days // table.num_rows if table.num_rows else span * RANGE_GROWTH
            span = max(1, min(fits, span * RANGE_GROWTH, (last - end).days))
            del table
            start = end + timedelta(days=1)

    def _split_days(self, table: pa.Table, first: date, last: date) -> Iterator[tuple[date, pa.Table]]:
        dates = table.column(0)
        if len(dates):
            low, high = (v.as_py() for v in pc.min_max(dates).values())
            if dates.null_count or low < first or high > last:
                raise self._error(
                    200, f"the answer to the query of {first}..{last} holds rows of {low}..{high}"
                )
        counts: dict[date, int] = {}
        if len(dates):
            table = table.take(pc.sort_indices(dates))
            tally = pc.value_counts(table.column(0))
            counts = dict(
                zip(tally.field("values").to_pylist(), tally.field("counts").to_pylist(), strict=True)
            )
        offset, day = 0, first
        while day <= last:
            count = counts.get(day, 0)
            yield day, table.slice(offset, count)
            offset += count
            day += timedelta(days=1)

    def queries_days(self, first: date, last: date) -> Iterator[tuple[date, pa.Table]]:
        """The query rows of every day of `first`..`last` (final data only): ranges of about
        RANGE_ROWS rows, the first of FIRST_RANGE_DAYS days.

        Returns:
            (day, rows) per day, rows with QUERIES_SCHEMA.
        """
        return self.range_days(QUERIES_DIMENSIONS, QUERIES_SCHEMA, first, last, FIRST_RANGE_DAYS)

    def totals_days(self, first: date, last: date) -> Iterator[tuple[date, pa.Table]]:
        """The totals of every day of `first`..`last` (a row a day at most): one query.

        Returns:
            (day, rows) per day, rows with TOTALS_SCHEMA.
        """
        return self.range_days(("date",), TOTALS_SCHEMA, first, last, (last - first).days + 1)

    def queries(self, day: date) -> Iterator[QueryPage]:
        """The query rows of one day: date x query x page x device x country (final data only).

        Args:
            day: the date (Pacific time, as Search Console counts days).
        Returns:
            QueryPage per HTTP page, batches with QUERIES_SCHEMA.
        """
        return self.pages(self._day_body(day, QUERIES_DIMENSIONS), QUERIES_SCHEMA)

    def totals(self, day: date) -> Iterator[QueryPage]:
        """The day's totals (dimension date only), anonymized queries included.

        Args:
            day: the date (Pacific time).
        Returns:
            QueryPage per HTTP page (one row at most), batches with TOTALS_SCHEMA.
        """
        return self.pages(self._day_body(day, ("date",)), TOTALS_SCHEMA)

    def first_incomplete_date(self, first: date, last: date) -> date | None:
        """The first day of `first`..`last` Search Console is still collecting (not final), None
        when every day of the range is final.

        One request: dataState "all" grouped by date, whose answer carries
        `metadata.firstIncompleteDate` only when the range holds incomplete days (the API's own
        word, not a guess from the day's age). Raises ApiError as `totals` would.
        """
        body = {**self._day_body(first, ("date",)), "endDate": last.isoformat(), "dataState": "ALL"}
        payload = self._post({**body, "rowLimit": 1})
        metadata = payload.get("metadata") if isinstance(payload, dict) else None
        incomplete = metadata.get("firstIncompleteDate") if isinstance(metadata, dict) else None
        if not incomplete:
            return None
        try:
            return _date(incomplete)
        except ValueError:
            raise self._error(200, f"metadata.firstIncompleteDate {incomplete!r} is not a date") from None

    def probe(self, day: date) -> int:
        """One cheap read for a settings check: the totals of `day`, one row at most.

        It proves the key and the service account's access to the property (Search Console
        answers 403 otherwise). Returns the rows answered (0 while the day is not final).
        Raises ApiError as `totals` would.
        """
        payload = self._post({**self._day_body(day, ("date",)), "rowLimit": 1})
        return len(payload.get("rows") or []) if isinstance(payload, dict) else 0


def _date(value: object) -> date:
    return date.fromisoformat(str(value)[:10])


def _whole(value: object) -> int:
    number = float(value)
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)


def _decode_page(content: bytes) -> dict | None:
    """A plain page decoded by pyarrow's JSON reader: {"rows": a StructArray of _ROW_TYPE,
    "responseAggregationType": str | None, "metadata": dict | None}. None when the answer is
    anything else (not one JSON object, invalid UTF-8, no rows, a field the connector does not know,
    a missing or null value, a value of another type, a number json would read otherwise): the caller
    then decodes it with the standard library, and `_parse` says what is wrong.
    """
    try:
        table = _PAGE_READER.read(content)
        if table is None:
            return None
        if table.num_rows != 1 or not table.schema.equals(_PAGE_FIELDS):
            return None
        table.validate(full=True)  # the reader does not check UTF-8; json.loads would refuse it
        rows = table.column("rows").combine_chunks()
        if rows.null_count:
            return None
        rows = rows.flatten()
        if not len(rows) or rows.null_count:
            return None
        keys, *metrics = rows.flatten()
        if keys.null_count or keys.flatten().null_count:
            return None
        for values in metrics:
            if values.null_count:
                return None
            if pa.types.is_integer(values.type):
                low, high = pc.min_max(values).values()
                if low.as_py() < -_EXACT_INT or high.as_py() > _EXACT_INT:
                    return None
            # The reader takes Inf, -Inf and -NaN, which json refuses; Google sends none of them.
            elif not pc.all(pc.is_finite(values)).as_py():
                return None
        return {
            "rows": rows,
            "responseAggregationType": table.column("responseAggregationType")[0].as_py(),
            "metadata": table.column("metadata")[0].as_py(),
        }
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
        return None


def _arrow_columns(rows: pa.StructArray, schema: pa.Schema, n_dims: int) -> list[pa.Array] | None:
    """The batch columns `_parse` makes, from decoded rows; None when the rows or the schema are not
    what the Arrow path handles (keys of another length, a date json's path refuses, a dimension
    typed other than string or date32, metrics typed otherwise)."""
    if [f.type for f in list(schema)[n_dims:]] != _METRIC_TYPES:
        return None
    keys, *metrics = rows.flatten()
    low, high = pc.min_max(pc.list_value_length(keys)).values()
    if low.as_py() != n_dims or high.as_py() != n_dims:
        return None
    columns = []
    for j in range(n_dims):
        f = schema.field(j)
        values = pc.list_element(keys, j)
        if pa.types.is_date32(f.type):
            # few distinct days: each parsed by _date, as _column does
            encoded = values.dictionary_encode()
            try:
                days = pa.array([_date(v) for v in encoded.dictionary.to_pylist()], type=f.type)
            except (TypeError, ValueError):
                return None
            values = days.take(encoded.indices)
        elif f.type != pa.string():
            return None
        columns.append(values)
    return columns + metrics
