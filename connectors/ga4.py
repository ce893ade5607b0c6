"""Google Analytics 4 Data API connector: the sessions and leads reports, over a range of days.

Endpoint: `POST {base_url}/v1beta/properties/{property_id}:runReport`
(base_url https://analyticsdata.googleapis.com, overridable with GA4_BASE_URL), authorised by a
service account (OAuth 2 JWT-bearer grant through google-auth, scope analytics.readonly).

Grain: one `ReportPage` per HTTP page, its rows parsed at once into a pyarrow RecordBatch. A page
is decoded by pyarrow's JSON reader straight into Arrow (no Python object per value: ~2.5x less
CPU than `json.loads` on these bodies); an answer of any other shape than a page of rows (an
error, an empty page, a changed field) falls back to the standard library's json, whose
diagnosis stands.
- `sessions(day)`: date x sessionSource x sessionMedium x sessionCampaignName x
  landingPagePlusQueryString x deviceCategory; sessions, engagedSessions, keyEvents, totalUsers,
  newUsers (SESSIONS_SCHEMA).
- `leads(day)`: date x customEvent:<how_heard> x sessionSource x sessionMedium x
  sessionCampaignName x landingPagePlusQueryString; keyEvents of the lead event (LEADS_SCHEMA).

Ranges: `sessions_days(first, last)` and `leads_days(first, last)` ask one report for the whole
range, with the date dimension and ordered by date, and split its rows into days on our side: a
day is handed over once the rows of a later day arrive, so memory holds a page and a day, not
the range, and every day of the range comes out (empty when it has no rows). The report's
`subjectToThresholding` applies to the report, so to every day of the range; its
`dataLossFromOtherRow` is given to the days that hold an "(other)" row. A range report whose rows
carry no date (an "(other)" row folded across days) cannot be split: those days are asked one
report a day instead. `sessions(day)` and `leads(day)` are the one-day reports.

Page size: GA4_PAGE_SIZE rows per request (default and maximum 250,000, the API's largest page;
the API defaults to 10,000). Paging: offset += limit until offset >= rowCount (limit and offset
travel as strings, the API's int64 encoding). Pages are streamed: memory holds one page.

Limits it respects: GA4 property quotas (tokens per day/hour, 10 concurrent requests) are spent one
request per page; a day keeps changing for ~72 h, so callers re-pull a trailing window. Reports can
be thresholded or fold rows into "(other)": each page carries `subject_to_thresholding` and
`data_loss_from_other_row`.

Faults: each request runs inside `connectors.http.call_with_retries` (GA4Config.retry_policy,
default RetryPolicy.from_env()). Retried: 429 (Retry-After honoured), 408/500/502/503/504, a
dropped connection, a truncated or malformed JSON body, a timeout (timeout_seconds), a token
endpoint that cannot be reached. At once: 400/403/404 and the rest. A 401 makes the session
(google-auth's AuthorizedSession) refresh the token and resend. After the last attempt
GA4Error (an ApiError) names the property, the endpoint, the status, Google's status and message.
Response shape: a required field missing or renamed raises GA4Error saying the API response
changed and naming the field; a field the connector does not know is ignored with one logging
WARNING per field per client.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import requests
from google.auth.exceptions import GoogleAuthError, RefreshError, TransportError

from connectors.errors import ConnectorConfigError
from connectors.google_auth import authorized_session, checked_key_source
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
from connectors.ratelimit import RateLimits, SpacedCalls, ga4_quota_gap

log = logging.getLogger(__name__)

SCOPE = "https://www.googleapis.com/auth/analytics.readonly"
MAX_PAGE_SIZE = 250_000

SESSIONS_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32()),
        pa.field("session_source", pa.string()),
        pa.field("session_medium", pa.string()),
        pa.field("session_campaign_name", pa.string()),
        pa.field("landing_page_plus_query_string", pa.string()),
        pa.field("device_category", pa.string()),
        pa.field("sessions", pa.int64()),
        pa.field("engaged_sessions", pa.int64()),
        pa.field("key_events", pa.float64()),
        pa.field("total_users", pa.int64()),
        pa.field("new_users", pa.int64()),
    ]
)
LEADS_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32()),
        pa.field("how_heard", pa.string()),
        pa.field("session_source", pa.string()),
        pa.field("session_medium", pa.string()),
        pa.field("session_campaign_name", pa.string()),
        pa.field("landing_page_plus_query_string", pa.string()),
        pa.field("leads", pa.float64()),
    ]
)
SESSIONS_DIMENSIONS = (
    "date",
    "sessionSource",
    "sessionMedium",
    "sessionCampaignName",
    "landingPagePlusQueryString",
    "deviceCategory",
)
SESSIONS_METRICS = ("sessions", "engagedSessions", "keyEvents", "totalUsers", "newUsers")


class GA4ConfigError(ConnectorConfigError):
    """A GA4 setting is missing or malformed (raised before any request)."""


class GA4Error(ApiError):
    """The GA4 Data API answered with an error (or could not be reached), for good.

    An `ApiError` with source "ga4". Attributes: status (HTTP status, None when no answer came),
    message (Google's message, redacted), property_id, endpoint, google_status (e.g.
    "INVALID_ARGUMENT"), retry_after (seconds, if sent), attempts.
    """

    def __init__(
        self,
        status: int | None,
        message: str,
        property_id: str,
        endpoint: str,
        google_status: str | None = None,
        retry_after: float | None = None,
        attempts: int = 1,
    ):
        self.property_id = property_id
        self.google_status = google_status
        self.retry_after = retry_after
        super().__init__("ga4", endpoint, status, message, attempts)

    def __str__(self) -> str:
        status = f"HTTP {self.status}" if self.status is not None else "no HTTP answer"
        if self.google_status:
            status += f" {self.google_status}"
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        return (
            f"GA4 runReport for property {self.property_id} failed{tries} ({status}): {self.message} "
            f"[{redact(self.endpoint)}]"
        )


@dataclass(frozen=True)
class ReportPage:
    """One HTTP page of a report, parsed."""

    batch: pa.RecordBatch
    row_count: int  # rowCount of the whole query, not of this page
    offset: int
    subject_to_thresholding: bool
    data_loss_from_other_row: bool


@dataclass(frozen=True)
class ReportDay:
    """One day of a range report: its rows and the report's quality flags as they apply to it."""

    day: date
    table: pa.Table
    subject_to_thresholding: bool
    data_loss_from_other_row: bool


OTHER_ROW = "(other)"
# A range report is asked in date order, so its rows can be split into days as they arrive.
DATE_ORDER = [{"dimension": {"dimensionName": "date"}}]


# --- configuration ---------------------------------------------------------------------------------


def _property_id(value: object) -> str:
    text = str(value or "").strip()
    if not text:
        raise GA4ConfigError(
            "GA4_PROPERTY_ID is not set: set it to your numeric GA4 Property ID, shown in GA4 Admin > "
            "Property settings (for example 412345678)."
        )
    if text.startswith("properties/"):
        text = text[len("properties/") :]
    if re.fullmatch(r"G-[A-Za-z0-9]+", text):
        raise GA4ConfigError(
            f"GA4_PROPERTY_ID={text!r} is a Measurement ID (it names a web data stream), not a Property ID. "
            "The Data API needs the numeric Property ID: find it in GA4 Admin > Property settings "
            "(for example 412345678)."
        )
    if re.fullmatch(r"UA-\d+-\d+", text, re.IGNORECASE):
        raise GA4ConfigError(
            f"GA4_PROPERTY_ID={text!r} is a Universal Analytics tracking ID; GA4 needs the numeric "
            "Property ID from GA4 Admin > Property settings (for example 412345678)."
        )
    if not text.isdigit():
        raise GA4ConfigError(
            f"GA4_PROPERTY_ID={text!r} is not a GA4 Property ID: use its digits only (or "
            "properties/<digits>), as shown in GA4 Admin > Property settings (for example 412345678)."
        )
    return text


def _int_setting(value: object, name: str, low: int, high: int) -> int:
    try:
        number = int(str(value).strip().replace("_", ""))
    except ValueError:
        raise GA4ConfigError(f"{name}={value!r} is not a whole number; use {low}..{high}.") from None
    if not low <= number <= high:
        raise GA4ConfigError(f"{name}={number} is out of range; use {low}..{high}.")
    return number


def _identifier(value: object, name: str) -> str:
    text = str(value or "").strip()
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,39}", text):
        raise GA4ConfigError(
            f"{name}={text!r} is not a GA4 event or parameter name: use letters, digits and underscores, "
            "starting with a letter, at most 40 characters."
        )
    return text


def _url(value: object, name: str) -> str:
    text = str(value or "").strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", text):
        raise GA4ConfigError(
            f"{name}={text!r} is not an http(s) URL (for example https://analyticsdata.googleapis.com)."
        )
    return text


@dataclass(frozen=True)
class GA4Config:
    """Settings of the GA4 connector, validated on construction.

    Give exactly one of `credentials_file` (a service-account JSON key) or `credentials_info`
    (the parsed key). `token_uri` overrides the key's token endpoint (the sandbox uses it).
    """

    DEFAULT_BASE_URL: ClassVar[str] = "https://analyticsdata.googleapis.com"
    DEFAULT_PAGE_SIZE: ClassVar[int] = MAX_PAGE_SIZE

    property_id: str
    credentials_file: str | os.PathLike | None = None
    credentials_info: Mapping[str, Any] | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    token_uri: str | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    timeout_seconds: float = 60.0
    how_heard_parameter: str = "how_heard"
    lead_event: str = "generate_lead"
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy.from_env)
    rate_limits: RateLimits = field(default_factory=RateLimits.from_env)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise in place once
        set_(self, "property_id", _property_id(self.property_id))
        path = checked_key_source(
            self.credentials_file,
            self.credentials_info,
            "Viewer access to the GA4 property (GA4 Admin > Property access management)",
            GA4ConfigError,
        )
        if path is not None:
            set_(self, "credentials_file", path)
        set_(self, "base_url", _url(self.base_url, "GA4_BASE_URL"))
        if self.token_uri is not None:
            set_(self, "token_uri", _url(self.token_uri, "GA4_TOKEN_URI"))
        set_(self, "page_size", _int_setting(self.page_size, "GA4_PAGE_SIZE", 1, MAX_PAGE_SIZE))
        try:
            timeout = float(self.timeout_seconds)
        except (TypeError, ValueError):
            timeout = -1.0
        if not timeout > 0:
            raise GA4ConfigError(
                f"GA4_TIMEOUT_SECONDS={self.timeout_seconds!r} must be a positive number of seconds."
            )
        set_(self, "timeout_seconds", timeout)
        set_(self, "how_heard_parameter", _identifier(self.how_heard_parameter, "GA4_HOW_HEARD_PARAMETER"))
        set_(self, "lead_event", _identifier(self.lead_event, "GA4_LEAD_EVENT"))
        if not isinstance(self.retry_policy, RetryPolicy):
            raise GA4ConfigError("retry_policy must be a connectors.http.RetryPolicy.")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GA4Config:
        """Read and validate the GA4 settings from the environment (or a mapping).

        Reads GA4_PROPERTY_ID, GOOGLE_APPLICATION_CREDENTIALS, GA4_BASE_URL, GA4_TOKEN_URI,
        GA4_PAGE_SIZE, GA4_TIMEOUT_SECONDS, GA4_HOW_HEARD_PARAMETER, GA4_LEAD_EVENT, and the shared
        HTTP_MAX_ATTEMPTS and HTTP_MAX_RETRY_SECONDS (RetryPolicy.from_env).
        Raises GA4ConfigError (ConnectorConfigError) naming the setting and the fix.
        """
        env = os.environ if environ is None else environ
        return cls(
            property_id=env.get("GA4_PROPERTY_ID", ""),
            credentials_file=env.get("GOOGLE_APPLICATION_CREDENTIALS") or None,
            base_url=env.get("GA4_BASE_URL") or cls.DEFAULT_BASE_URL,
            token_uri=env.get("GA4_TOKEN_URI") or None,
            page_size=env.get("GA4_PAGE_SIZE") or cls.DEFAULT_PAGE_SIZE,
            timeout_seconds=env.get("GA4_TIMEOUT_SECONDS") or 60.0,
            how_heard_parameter=env.get("GA4_HOW_HEARD_PARAMETER") or "how_heard",
            lead_event=env.get("GA4_LEAD_EVENT") or "generate_lead",
            retry_policy=RetryPolicy.from_env(env),
            rate_limits=RateLimits.from_env(env),
        )

    def service_account_info(self) -> dict:
        """The service-account key, read from the file if needed, with token_uri overridden if set."""
        if self.credentials_info is not None:
            info = dict(self.credentials_info)
        else:
            path = Path(self.credentials_file)
            try:
                info = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError):
                raise GA4ConfigError(
                    f"GOOGLE_APPLICATION_CREDENTIALS={str(path)!r} is not a readable JSON key file; "
                    "download a service-account key (JSON) from IAM & Admin > Service accounts > Keys."
                ) from None
            if not isinstance(info, dict) or info.get("type") != "service_account":
                kind = info.get("type") if isinstance(info, dict) else None
                raise GA4ConfigError(
                    f"GOOGLE_APPLICATION_CREDENTIALS={str(path)!r} holds credentials of type {kind!r}, not a "
                    "service-account key; create a service account key (JSON) and give the account "
                    "Viewer access to the GA4 property."
                )
        if self.token_uri:
            info["token_uri"] = self.token_uri
        return info


# --- the client ------------------------------------------------------------------------------------

# RunReportResponse, Row and DimensionValue/MetricValue fields in the discovery document.
RESPONSE_FIELDS = frozenset(
    {
        "dimensionHeaders",
        "metricHeaders",
        "rows",
        "totals",
        "maximums",
        "minimums",
        "rowCount",
        "metadata",
        "propertyQuota",
        "kind",
    }
)
ROW_FIELDS = frozenset({"dimensionValues", "metricValues"})
VALUE_FIELDS = frozenset({"value"})
_VALUES = pa.list_(pa.struct([pa.field("value", pa.string())]))
_ROW_TYPE = pa.struct([pa.field("dimensionValues", _VALUES), pa.field("metricValues", _VALUES)])
# The fields a page is read by, typed for pyarrow's JSON reader; any other top-level field is
# inferred (only its name is used: the unknown-field warning).
_PAGE_FIELDS = pa.schema(
    [
        pa.field("rows", pa.list_(_ROW_TYPE)),
        pa.field("rowCount", pa.int64()),
        pa.field("dimensionHeaders", pa.list_(pa.struct([pa.field("name", pa.string())]))),
        pa.field(
            "metricHeaders",
            pa.list_(pa.struct([pa.field("name", pa.string()), pa.field("type", pa.string())])),
        ),
        pa.field(
            "metadata",
            pa.struct(
                [pa.field("subjectToThresholding", pa.bool_()), pa.field("dataLossFromOtherRow", pa.bool_())]
            ),
        ),
    ]
)
_PAGE_READER = ArrowJsonObject(_PAGE_FIELDS, unexpected_field_behavior="infer")


def _decode_page(content: bytes) -> dict | None:
    """A page of rows decoded by pyarrow's JSON reader: the answer's fields, `rows` as an Arrow
    StructArray of _ROW_TYPE. None when the answer is anything else (not one JSON object, invalid
    UTF-8, no rows, no rowCount, a field of another type or with fields the connector does not
    know): the caller then decodes it with the standard library, which says what is wrong.
    """
    try:
        table = _PAGE_READER.read(content)
        if table is None:
            return None
        # metadata may carry more than the two flags read from it; the rest must be exactly as typed
        exact = [f for f in _PAGE_FIELDS if f.name != "metadata"]
        if table.num_rows != 1 or any(table.schema.field(f.name).type != f.type for f in exact):
            return None
        rows = table.column("rows").combine_chunks()
        if rows.null_count or table.column("rowCount").null_count:
            return None
        rows = rows.flatten()
        if not len(rows):
            return None
        rows.validate(full=True)  # the reader does not check UTF-8; json.loads would refuse it
        payload = {}
        for name in table.column_names:
            if name != "rows":
                value = table.column(name)[0]
                if value.is_valid or name not in _PAGE_FIELDS.names:
                    payload[name] = value.as_py()
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
        return None
    payload["rows"] = rows
    return payload


def _camel_to_snake(name: str) -> str:
    name = name.replace(":", "_")
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


class GA4Client:
    """A GA4 Data API client for one property.

    Args:
        config: validated settings (GA4Config).
    """

    def __init__(self, config: GA4Config):
        self.config = config
        info = config.service_account_info()
        self._token_uri = info.get("token_uri", "")
        # A token before the first call and when it expires; a 401 refreshes it and resends.
        self._session = authorized_session(
            info, SCOPE, config.timeout_seconds, "darksocial-warehouse ga4-connector", GA4ConfigError
        )
        self.endpoint = f"{config.base_url}/v1beta/properties/{config.property_id}:runReport"
        # the spacing the property's remaining hourly tokens call for, shared by its clients in the process
        self._quota = config.rate_limits.shared("ga4.quota", config.property_id, SpacedCalls)
        self._warned: set[str] = set()  # unknown response fields already logged

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> GA4Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- requests ---
    def _error(
        self,
        status: int | None,
        message: str,
        google_status: str | None = None,
        retry_after: float | None = None,
        attempts: int = 1,
    ) -> GA4Error:
        return GA4Error(
            status,
            redact(message),
            self.config.property_id,
            self.endpoint,
            google_status,
            retry_after,
            attempts,
        )

    def _changed(self, message: str) -> GA4Error:
        """The answer lacks what the connector needs: the API's response shape changed."""
        return self._error(
            200,
            f"the API response changed: {message}. Update connectors/ga4.py to the new response shape.",
        )

    def _post(self, body: dict) -> tuple[dict, bytes | None]:
        """One runReport request, retried on transient failures within config.retry_policy.

        Returns:
            The answer, and its raw body when `_decode_page` decoded it (None when json did).
        """
        last: list[GA4Error] = []  # the last retryable HTTP error, for Google's status after the last try

        # the property's quota comes back with every answer: pacing slows down as it runs low
        body = {**body, "returnPropertyQuota": True}
        limits = self.config.rate_limits

        def attempt() -> tuple[dict, bytes | None]:
            last.clear()
            self._quota.wait()
            try:
                with limits.in_flight("ga4.concurrent", self.config.property_id):
                    response = send(
                        self._session,
                        "POST",
                        self.endpoint,
                        # Google's system parameter: the answer without indentation (half the bytes
                        # of an indented report) and readable by _decode_page as one line
                        params={"prettyPrint": "false"},
                        json=body,
                        timeout=self.config.timeout_seconds,
                    )
            except RefreshError as exc:
                reason = redact(str(exc.args[0] if exc.args else "refused"))
                message = (
                    f"could not get an access token from {self._token_uri}: {reason}. Check that the "
                    "service account key is valid and not deleted."
                )
                if getattr(exc, "retryable", False):
                    raise TransientError(None, message) from None
                raise self._error(401, message, "UNAUTHENTICATED") from None
            except (TransportError, GoogleAuthError) as exc:
                # The token endpoint could not be reached (google-auth's transport error).
                raise TransientError(None, f"request failed: {type(exc).__name__}: {exc}") from None
            if 200 <= response.status_code < 300:
                fast = _decode_page(response.content)
                payload = fast if fast is not None else json_body(response)
                if not isinstance(payload, dict):
                    raise self._changed(f"the answer is a JSON {type(payload).__name__}, not an object")
                tokens = (payload.get("propertyQuota") or {}).get("tokensPerHour")
                cost = int((tokens or {}).get("consumed") or 1) if isinstance(tokens, dict) else 1
                self._quota.set_gap(ga4_quota_gap(limits, tokens, cost))
                return payload, (response.content if fast is not None else None)
            error = self._response_error(response)
            if response.status_code in RETRYABLE_STATUSES:
                last.append(error)
                raise TransientError(error.status, error.message, error.retry_after)
            raise error

        try:
            return call_with_retries(
                attempt, source="ga4", endpoint=self.endpoint, policy=self.config.retry_policy
            )
        except GA4Error:
            raise
        except ApiError as exc:  # retries used up: the last failure, with Google's status if it sent one
            previous = last[0] if last else None
            raise self._error(
                exc.status,
                exc.message,
                previous.google_status if previous else None,
                previous.retry_after if previous else None,
                exc.attempts,
            ) from None

    def _response_error(self, response: requests.Response) -> GA4Error:
        message, google_status = None, None
        try:
            answer = json.loads(response.content)
            error = answer.get("error")
            if isinstance(error, dict):
                message, google_status = error.get("message"), error.get("status")
            elif isinstance(error, str):  # OAuth-style {"error": "...", "error_description": "..."}
                message = f"{error}: {answer.get('error_description', '')}"
        except (ValueError, AttributeError):
            pass
        if not message or not isinstance(message, str):
            text = response.content.decode("utf-8", "replace").strip()
            message = (text[:300] + "...") if len(text) > 300 else (text or response.reason or "no message")
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return self._error(
            response.status_code,
            message,
            google_status if isinstance(google_status, str) else None,
            retry_after,
        )

    def _warn_unknown(self, where: str, names: Any, known: frozenset) -> None:
        for name in names:
            if name in known:
                continue
            path = f"{where}{name}"
            if path not in self._warned:
                self._warned.add(path)
                log.warning(
                    "GA4 property %s: the runReport answer has a field the connector does not know, %s; "
                    "ignored (the API may have added it)",
                    self.config.property_id,
                    path,
                )

    # --- paging ---
    def pages(self, body: Mapping[str, Any], schema: pa.Schema | None = None) -> Iterator[ReportPage]:
        """Run a report page by page: offset += limit until offset >= rowCount.

        Args:
            body: a RunReportRequest (without limit/offset: the config's page size is used).
            schema: the Arrow schema of the batches, matching the requested dimensions then metrics in
                order; default: snake_case names, `date` as date32, metrics by their header type.
        Returns:
            An iterator of ReportPage, one per HTTP request, each parsed as soon as it arrives.
        Raises:
            GA4Error: the API failed for good (after retries for transient failures), or its answer
                lacks a field the connector needs (the message names it).
        """
        limit = _int_setting(body.get("limit") or self.config.page_size, "limit", 1, MAX_PAGE_SIZE)
        offset = int(body.get("offset") or 0)
        fallback_day = _single_day(body)
        requested = (_requested(body, "dimensions"), _requested(body, "metrics"))
        page_number = 0
        while True:
            request = {**body, "limit": str(limit), "offset": str(offset)}
            payload, content = self._post(request)
            try:
                page = self._parse(payload, schema, offset, fallback_day, requested)
            except GA4Error:
                if content is None:
                    raise
                # The standard decoder's view of the same answer gives the diagnosis (or the page).
                page = self._parse(json.loads(content), schema, offset, fallback_day, requested)
            del payload, content
            page_number += 1
            log.info(
                "GA4 property %s: page %d at offset %d, %d rows (rowCount %d)",
                self.config.property_id,
                page_number,
                offset,
                page.batch.num_rows,
                page.row_count,
            )
            yield page
            offset += limit
            if offset >= page.row_count:
                break

    def _headers(self, payload: dict, key: str, requested: list[str] | None) -> list[dict]:
        headers = payload.get(key)
        if headers is None:
            if requested:  # Google omits empty lists only
                raise self._changed(f"required field {key} is missing (asked for {', '.join(requested)})")
            return []
        if not isinstance(headers, list) or not all(
            isinstance(h, dict) and isinstance(h.get("name"), str) for h in headers
        ):
            raise self._changed(f"required field {key}[].name is missing or not a string")
        for h in headers[:1]:
            self._warn_unknown(f"{key}[].", h, frozenset({"name", "type"}))
        names = [h["name"] for h in headers]
        if requested is not None and names != requested:
            missing = [n for n in requested if n not in names]
            extra = [n for n in names if n not in requested]
            detail = "; ".join(
                part
                for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"unexpected {', '.join(extra)}" if extra else "",
                )
                if part
            )
            raise self._changed(
                f"{key} are {names}, the request asked for {requested}" + (f" ({detail})" if detail else "")
            )
        return headers

    def _parse(
        self,
        payload: dict,
        schema: pa.Schema | None,
        offset: int,
        fallback_day: date | None,
        requested: tuple[list[str] | None, list[str] | None] = (None, None),
    ) -> ReportPage:
        self._warn_unknown("", payload, RESPONSE_FIELDS)
        dimension_headers = [h["name"] for h in self._headers(payload, "dimensionHeaders", requested[0])]
        metric_headers = [
            (h["name"], h.get("type", "")) for h in self._headers(payload, "metricHeaders", requested[1])
        ]
        n_dims, n_metrics = len(dimension_headers), len(metric_headers)
        if schema is None:
            if any(not isinstance(t, str) or not t for _, t in metric_headers):
                raise self._changed("required field metricHeaders[].type is missing")
            fields = [
                pa.field(_camel_to_snake(n), pa.date32() if n == "date" else pa.string())
                for n in dimension_headers
            ] + [
                pa.field(_camel_to_snake(n), pa.int64() if t == "TYPE_INTEGER" else pa.float64())
                for n, t in metric_headers
            ]
            schema = pa.schema(fields)
        elif len(schema) != n_dims + n_metrics:
            raise self._changed(
                f"the answer has {n_dims + n_metrics} columns "
                f"({', '.join(dimension_headers + [n for n, _ in metric_headers])}), expected {len(schema)}"
            )

        raw_count = payload.get("rowCount", 0)
        if isinstance(raw_count, str) and raw_count.isdigit():
            raw_count = int(raw_count)  # int64 fields travel as strings in proto3 JSON
        if not isinstance(raw_count, int) or isinstance(raw_count, bool) or raw_count < 0:
            raise self._changed(
                f"field rowCount is {type(raw_count).__name__} {str(raw_count)[:40]!r}, not a row count"
            )
        rows = payload.get("rows")
        if rows is None:
            if raw_count > offset:
                raise self._changed(
                    f"required field rows is missing (rowCount {raw_count}, offset {offset}); the answer "
                    f"has {', '.join(sorted(payload))}"
                )
            rows = []
        elif not isinstance(rows, (list, pa.StructArray)):
            raise self._changed(f"field rows is a {type(rows).__name__}, not a list")
        elif rows and "rowCount" not in payload:
            raise self._changed("required field rowCount is missing from an answer with rows")
        columns = (
            self._columns(rows, schema, n_dims, n_metrics, fallback_day)
            if len(rows)
            else [pa.array([], type=f.type) for f in schema]
        )
        metadata = payload.get("metadata") or {}
        if not isinstance(metadata, dict):
            metadata = {}
        return ReportPage(
            batch=pa.RecordBatch.from_arrays(columns, schema=schema),
            row_count=raw_count,
            offset=offset,
            subject_to_thresholding=bool(metadata.get("subjectToThresholding", False)),
            data_loss_from_other_row=bool(metadata.get("dataLossFromOtherRow", False)),
        )

    def _columns(
        self,
        rows: list | pa.StructArray,
        schema: pa.Schema,
        n_dims: int,
        n_metrics: int,
        fallback_day: date | None,
    ) -> list[pa.Array]:
        """Rows (decoded JSON, or already Arrow) -> typed Arrow columns, converted in Arrow."""
        if isinstance(rows, pa.StructArray):
            table = rows  # _decode_page: exactly _ROW_TYPE, so no field to warn about
        else:
            first = rows[0]
            if isinstance(first, dict):
                self._warn_unknown("rows[].", first, ROW_FIELDS)
                for key in ("dimensionValues", "metricValues"):
                    values = first.get(key)
                    if isinstance(values, list) and values and isinstance(values[0], dict):
                        self._warn_unknown(f"rows[].{key}[].", values[0], VALUE_FIELDS)
            try:
                table = pa.array(rows, type=_ROW_TYPE)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise self._changed(
                    f"rows do not have the shape rows[].dimensionValues[].value: {exc}"
                ) from None
        lists = {}
        for key, expected in (("dimensionValues", n_dims), ("metricValues", n_metrics)):
            values = pc.struct_field(table, key)
            if expected == 0:
                continue
            if values.null_count:
                bad = values.is_null().index(True).as_py()
                row = rows[bad]
                has = ", ".join(sorted(row)) if isinstance(row, dict) else type(row).__name__
                raise self._changed(f"required field rows[].{key} is missing (row {bad} has {has})")
            lengths = pc.list_value_length(values)
            low, high = pc.min_max(lengths).values()
            if low.as_py() != expected or high.as_py() != expected:
                raise self._changed(
                    f"rows[].{key} hold {low.as_py()}..{high.as_py()} values, the headers name {expected}"
                )
            lists[key] = values
        columns = []
        for i, f in enumerate(schema):
            key, j = ("dimensionValues", i) if i < n_dims else ("metricValues", i - n_dims)
            values = pc.struct_field(pc.list_element(lists[key], j), "value")
            if values.null_count:
                raise self._changed(f"required field rows[].{key}[].value is missing (column {f.name})")
            columns.append(self._column(values, f, fallback_day))
        return columns

    def _column(self, values: pa.Array, f: pa.Field, fallback_day: date | None) -> pa.Array:
        try:
            if pa.types.is_date32(f.type):
                parsed = pc.strptime(values, format="%Y%m%d", unit="s", error_is_null=True).cast(f.type)
                # GA4's "(other)" row may carry "(other)" in every dimension: it belongs to the
                # requested day.
                return (
                    parsed.fill_null(fallback_day)
                    if fallback_day is not None and parsed.null_count
                    else parsed
                )
            if pa.types.is_integer(f.type) or pa.types.is_floating(f.type):
                return pc.cast(values, f.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise self._changed(f"column {f.name} holds a value that is not {f.type}: {exc}") from None
        return values if values.type == f.type else values.cast(f.type)

    # --- ranges ---
    def report_days(
        self, body_of: Callable[[date, date], dict], schema: pa.Schema, first: date, last: date
    ) -> Iterator[ReportDay]:
        """Every day of `first`..`last` from one report over the range (see the module's docstring).

        Args:
            body_of: the RunReportRequest for a range (its first dimension is date).
            schema: the batches' schema, its first field the date.
        Returns:
            ReportDay per day of the range, in order, each once its rows are complete.
        Raises:
            GA4Error: as `pages`, or the rows are not in date order or fall outside the range.
        """
        body = {**body_of(first, last), "orderBys": DATE_ORDER}
        flags = {"thresholded": False, "other_row": False}  # the report's, known from its first page
        next_day = first  # the first day not handed over yet
        held_day: date | None = None  # the day whose rows are being gathered, and its rows
        held: list[pa.RecordBatch] = []

        def hand_over(until: date) -> Iterator[ReportDay]:
            nonlocal next_day, held_day, held
            while next_day < until:
                rows = held if next_day == held_day else []
                yield self._report_day(next_day, rows, schema, flags)
                if next_day == held_day:
                    held_day, held = None, []
                next_day += timedelta(days=1)

        for page in self.pages(body, schema):
            flags["thresholded"] |= page.subject_to_thresholding
            flags["other_row"] |= page.data_loss_from_other_row
            dates = page.batch.column(0)
            if not len(dates):
                continue
            if dates.null_count:
                if next_day > first or held:
                    raise self._changed("a range report has rows without a date after its first page")
                log.warning(
                    'GA4 property %s: the report of %s..%s has rows without a date (an "(other)" row '
                    "across days); asking for it one day at a time",
                    self.config.property_id,
                    first,
                    last,
                )
                yield from self._days_one_by_one(body_of, schema, first, last)
                return
            in_order = len(dates) == 1 or pc.all(pc.greater_equal(dates[1:], dates[:-1])).as_py()
            low, high = (v.as_py() for v in pc.min_max(dates).values())
            if not in_order or low < (held_day or next_day) or high > last:
                raise self._changed(
                    f"the rows of the report of {first}..{last} are not in date order within the range "
                    f"(a page holds {low}..{high}, the rows so far reached {held_day or next_day})"
                )
            for value in pc.unique(dates).to_pylist():
                yield from hand_over(value)
                held_day = value
                held.append(page.batch.filter(pc.equal(dates, pa.scalar(value, pa.date32()))))
        yield from hand_over(last + timedelta(days=1))

    def _report_day(self, day: date, rows: list[pa.RecordBatch], schema: pa.Schema, flags: dict) -> ReportDay:
        table = pa.Table.from_batches(rows, schema=schema)
        other_row = False
        if flags["other_row"] and table.num_rows:
            other_row = any(
                pc.any(pc.equal(table.column(i), OTHER_ROW)).as_py()
                for i, f in enumerate(schema)
                if pa.types.is_string(f.type)
            )
        return ReportDay(day, table, flags["thresholded"], other_row)

    def _days_one_by_one(
        self, body_of: Callable[[date, date], dict], schema: pa.Schema, first: date, last: date
    ) -> Iterator[ReportDay]:
        day = first
        while day <= last:
            pages = list(self.pages(body_of(day, day), schema))
            yield ReportDay(
                day,
                pa.Table.from_batches([p.batch for p in pages], schema=schema),
                any(p.subject_to_thresholding for p in pages),
                any(p.data_loss_from_other_row for p in pages),
            )
            day += timedelta(days=1)

    def sessions_days(self, first: date, last: date) -> Iterator[ReportDay]:
        """Every day of `first`..`last` of the sessions report, from one report over the range.

        Returns:
            ReportDay per day, tables with SESSIONS_SCHEMA.
        """
        return self.report_days(self._sessions_body, SESSIONS_SCHEMA, first, last)

    def leads_days(self, first: date, last: date) -> Iterator[ReportDay]:
        """Every day of `first`..`last` of the leads report, from one report over the range.

        Returns:
            ReportDay per day, tables with LEADS_SCHEMA.
        """
        return self.report_days(self._leads_body, LEADS_SCHEMA, first, last)

    # --- reports ---
    def sessions(self, day: date) -> Iterator[ReportPage]:
        """The sessions report of one day.

        Args:
            day: the date (property time zone).
        Returns:
            ReportPage per HTTP page, batches with SESSIONS_SCHEMA.
        """
        return self.pages(self._sessions_body(day, day), SESSIONS_SCHEMA)

    def _sessions_body(self, first: date, last: date) -> dict:
        return {
            "dateRanges": [{"startDate": first.isoformat(), "endDate": last.isoformat()}],
            "dimensions": [{"name": n} for n in SESSIONS_DIMENSIONS],
            "metrics": [{"name": n} for n in SESSIONS_METRICS],
        }

    def leads(self, day: date) -> Iterator[ReportPage]:
        """The leads report of one day: the lead key event with its "how did you hear" answer.

        Args:
            day: the date (property time zone).
        Returns:
            ReportPage per HTTP page, batches with LEADS_SCHEMA.
        """
        return self.pages(self._leads_body(day, day), LEADS_SCHEMA)

    def _leads_body(self, first: date, last: date) -> dict:
        return {
            "dateRanges": [{"startDate": first.isoformat(), "endDate": last.isoformat()}],
            "dimensions": [
                {"name": "date"},
                {"name": f"customEvent:{self.config.how_heard_parameter}"},
                {"name": "sessionSource"},
                {"name": "sessionMedium"},
                {"name": "sessionCampaignName"},
                {"name": "landingPagePlusQueryString"},
            ],
            "metrics": [{"name": "keyEvents"}],
            "dimensionFilter": {
                "filter": {
                    "fieldName": "eventName",
                    "stringFilter": {"matchType": "EXACT", "value": self.config.lead_event},
                }
            },
        }

    def probe_leads(self, day: date) -> int:
        """One cheap read for a settings check: the leads report of `day`, one row at most.

        It proves the key, the property access and that the how-heard parameter is a registered
        custom dimension (GA4 answers 400 otherwise). Returns the report's rowCount.
        Raises GA4Error as `leads` would.
        """
        payload, _ = self._post({**self._leads_body(day, day), "limit": 1})
        return int(payload.get("rowCount") or 0)


def _single_day(body: Mapping[str, Any]) -> date | None:
    ranges = body.get("dateRanges") or []
    if len(ranges) == 1 and ranges[0].get("startDate") == ranges[0].get("endDate"):
        try:
            return date.fromisoformat(ranges[0]["startDate"])
        except (TypeError, ValueError):
            return None
    return None


def _requested(body: Mapping[str, Any], key: str) -> list[str] | None:
    items = body.get(key)
    if items is None:
        return []
    try:
        return [item["name"] for item in items]
    except (TypeError, KeyError):
        return None  # an unusual request: the API validates it, the headers are not compared
