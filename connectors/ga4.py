"""Google Analytics 4 Data API connector: the sessions and leads reports, one day at a time.

Endpoint: `POST {base_url}/v1beta/properties/{property_id}:runReport`
(base_url https://analyticsdata.googleapis.com, overridable with GA4_BASE_URL), authorised by a
service account (OAuth 2 JWT-bearer grant through google-auth, scope analytics.readonly).

Grain: one `ReportPage` per HTTP page, its rows parsed at once into a pyarrow RecordBatch.
- `sessions(day)`: date x sessionSource x sessionMedium x sessionCampaignName x
  landingPagePlusQueryString x deviceCategory; sessions, engagedSessions, keyEvents, totalUsers,
  newUsers (SESSIONS_SCHEMA).
- `leads(day)`: date x customEvent:<how_heard> x sessionSource x sessionMedium x
  sessionCampaignName x landingPagePlusQueryString; keyEvents of the lead event (LEADS_SCHEMA).

Page size: GA4_PAGE_SIZE rows per request (default 100,000; the API allows 1..250,000 and
defaults to 10,000). Paging: offset += limit until offset >= rowCount (limit and offset travel as
strings, the API's int64 encoding). Pages are streamed: memory holds one page, not a day.

Limits it respects: GA4 property quotas (tokens per day/hour, 10 concurrent requests) are spent one
request per page; a day keeps changing for ~72 h, so callers re-pull a trailing window. Reports can
be thresholded or fold rows into "(other)": each page carries `subject_to_thresholding` and
`data_loss_from_other_row`. No retries yet: a non-2xx answer raises GA4Error at once.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pyarrow as pa
import requests
from google.auth.exceptions import GoogleAuthError, RefreshError, TransportError
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account

from connectors.errors import ConnectorConfigError, ConnectorError

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


class GA4Error(ConnectorError):
    """The GA4 Data API answered with an error (or could not be reached).

    Attributes: status (HTTP status, None when no answer came), message (Google's message),
    property_id, endpoint, google_status (e.g. "INVALID_ARGUMENT"), retry_after (seconds, if sent).
    """

    def __init__(
        self,
        status: int | None,
        message: str,
        property_id: str,
        endpoint: str,
        google_status: str | None = None,
        retry_after: float | None = None,
    ):
        self.status = status
        self.message = message
        self.property_id = property_id
        self.endpoint = endpoint
        self.google_status = google_status
        self.retry_after = retry_after
        super().__init__(str(self))

    def __str__(self) -> str:
        status = f"HTTP {self.status}" if self.status is not None else "no HTTP answer"
        if self.google_status:
            status += f" {self.google_status}"
        return (
            f"GA4 runReport for property {self.property_id} failed ({status}): {self.message} "
            f"[{self.endpoint}]"
        )


@dataclass(frozen=True)
class ReportPage:
    """One HTTP page of a report, parsed."""

    batch: pa.RecordBatch
    row_count: int  # rowCount of the whole query, not of this page
    offset: int
    subject_to_thresholding: bool
    data_loss_from_other_row: bool


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
    DEFAULT_PAGE_SIZE: ClassVar[int] = 100_000

    property_id: str
    credentials_file: str | os.PathLike | None = None
    credentials_info: Mapping[str, Any] | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    token_uri: str | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    timeout_seconds: float = 60.0
    how_heard_parameter: str = "how_heard"
    lead_event: str = "generate_lead"

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise in place once
        set_(self, "property_id", _property_id(self.property_id))
        if self.credentials_file is not None and self.credentials_info is not None:
            raise GA4ConfigError(
                "Give GOOGLE_APPLICATION_CREDENTIALS (credentials_file) or credentials_info, not both."
            )
        if self.credentials_info is not None:
            if (
                not isinstance(self.credentials_info, Mapping)
                or self.credentials_info.get("type") != "service_account"
            ):
                raise GA4ConfigError(
                    "credentials_info must be a service-account key "
                    '(a JSON object with "type": "service_account").'
                )
        else:
            if self.credentials_file is None or not str(self.credentials_file).strip():
                raise GA4ConfigError(
                    "GOOGLE_APPLICATION_CREDENTIALS is not set: point it to the JSON key file of a service "
                    "account that has Viewer access to the GA4 property (GA4 Admin > Property access "
                    "management)."
                )
            path = Path(self.credentials_file).expanduser()
            if not path.is_file():
                raise GA4ConfigError(
                    f"GOOGLE_APPLICATION_CREDENTIALS={str(path)!r} does not exist or is not a file: point it "
                    "to the service account's JSON key file (IAM & Admin > Service accounts > Keys in "
                    "Google Cloud)."
                )
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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GA4Config:
        """Read and validate the GA4 settings from the environment (or a mapping).

        Reads GA4_PROPERTY_ID, GOOGLE_APPLICATION_CREDENTIALS, GA4_BASE_URL, GA4_TOKEN_URI,
        GA4_PAGE_SIZE, GA4_TIMEOUT_SECONDS, GA4_HOW_HEARD_PARAMETER, GA4_LEAD_EVENT.
        Raises GA4ConfigError naming the setting and the fix.
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

_TOKEN_PATTERN = re.compile(r"(ya29\.[\w.\-]+|Bearer\s+\S+)")


def _redact(text: str) -> str:
    return _TOKEN_PATTERN.sub("[redacted]", text)


class _PrivateEndpointCredentials(service_account.Credentials):
    """Service-account credentials for a token endpoint that is not Google's (the sandbox, a proxy).

    Recent google-auth looks up the account's Regional Access Boundary at
    iamcredentials.googleapis.com after each token refresh; against a non-Google token endpoint
    that call can only fail (and would leave the machine), so it is skipped.
    """

    def _is_regional_access_boundary_lookup_required(self) -> bool:
        return False


def _is_google_host(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "googleapis.com" or host.endswith(".googleapis.com")


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
        try:
            google = _is_google_host(str(info.get("token_uri", "")))
            factory = service_account.Credentials if google else _PrivateEndpointCredentials
            credentials = factory.from_service_account_info(info, scopes=[SCOPE])
        except (ValueError, KeyError) as exc:
            raise GA4ConfigError(
                "GOOGLE_APPLICATION_CREDENTIALS: the service-account key is incomplete or malformed "
                f"({type(exc).__name__}); download a new JSON key for the service account."
            ) from None
        self._token_uri = info.get("token_uri", "")
        # AuthorizedSession fetches a token before the first call and refreshes it on a 401.
        self._session = AuthorizedSession(credentials, refresh_timeout=config.timeout_seconds)
        self._session.headers["User-Agent"] = "darksocial-warehouse ga4-connector"
        self.endpoint = f"{config.base_url}/v1beta/properties/{config.property_id}:runReport"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> GA4Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- requests ---
    def _error(self, status: int | None, message: str, google_status: str | None = None, retry_after=None):
        return GA4Error(
            status, _redact(message), self.config.property_id, self.endpoint, google_status, retry_after
        )

    def _post(self, body: dict) -> dict:
        try:
            response = self._session.request(
                "POST", self.endpoint, json=body, timeout=self.config.timeout_seconds
            )
        except RefreshError as exc:
            reason = exc.args[0] if exc.args else "refused"
            raise self._error(
                401,
                f"could not get an access token from {self._token_uri}: {reason}. Check that the service "
                "account key is valid and not deleted.",
                "UNAUTHENTICATED",
            ) from None
        except (TransportError, requests.RequestException, GoogleAuthError) as exc:
            raise self._error(None, f"request failed: {type(exc).__name__}: {exc}") from None
        if not 200 <= response.status_code < 300:
            raise self._response_error(response)
        try:
            payload = response.json()
        except ValueError:
            raise self._error(response.status_code, f"answer is not JSON: {response.text[:300]!r}") from None
        if not isinstance(payload, dict):
            raise self._error(response.status_code, "answer is not a JSON object")
        return payload

    def _response_error(self, response: requests.Response) -> GA4Error:
        message, google_status = None, None
        try:
            error = response.json().get("error")
            if isinstance(error, dict):
                message, google_status = error.get("message"), error.get("status")
            elif isinstance(error, str):  # OAuth-style {"error": "...", "error_description": "..."}
                message = f"{error}: {response.json().get('error_description', '')}"
        except (ValueError, AttributeError):
            pass
        if not message:
            text = response.text.strip()
            message = (text[:300] + "...") if len(text) > 300 else (text or response.reason or "no message")
        retry_after = None
        header = response.headers.get("Retry-After")
        if header and header.strip().isdigit():
            retry_after = float(header)
        return self._error(response.status_code, message, google_status, retry_after)

    # --- paging ---
    def pages(self, body: Mapping[str, Any], schema: pa.Schema | None = None) -> Iterator[ReportPage]:
        """Run a report page by page: offset += limit until offset >= rowCount.

        Args:
            body: a RunReportRequest (without limit/offset: the config's page size is used).
            schema: the Arrow schema of the batches, matching the requested dimensions then metrics in
                order; default: snake_case names, `date` as date32, metrics by their header type.
        Returns:
            An iterator of ReportPage, one per HTTP request, each parsed as soon as it arrives.
        """
        limit = _int_setting(body.get("limit") or self.config.page_size, "limit", 1, MAX_PAGE_SIZE)
        offset = int(body.get("offset") or 0)
        fallback_day = _single_day(body)
        page_number = 0
        while True:
            request = {**body, "limit": str(limit), "offset": str(offset)}
            payload = self._post(request)
            page = self._parse(payload, schema, offset, fallback_day)
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

    def _parse(
        self, payload: dict, schema: pa.Schema | None, offset: int, fallback_day: date | None
    ) -> ReportPage:
        dimension_headers = [h.get("name", "") for h in payload.get("dimensionHeaders", [])]
        metric_headers = [(h.get("name", ""), h.get("type", "")) for h in payload.get("metricHeaders", [])]
        n_dims = len(dimension_headers)
        if schema is None:
            fields = [
                pa.field(_camel_to_snake(n), pa.date32() if n == "date" else pa.string())
                for n in dimension_headers
            ] + [
                pa.field(_camel_to_snake(n), pa.int64() if t == "TYPE_INTEGER" else pa.float64())
                for n, t in metric_headers
            ]
            schema = pa.schema(fields)
        elif len(schema) != n_dims + len(metric_headers):
            raise self._error(
                200,
                f"the answer has {n_dims + len(metric_headers)} columns "
                f"({', '.join(dimension_headers + [n for n, _ in metric_headers])}), expected {len(schema)}",
            )
        rows = payload.get("rows") or []
        columns = []
        for i, f in enumerate(schema):
            if i < n_dims:
                values = [r["dimensionValues"][i]["value"] for r in rows]
            else:
                values = [r["metricValues"][i - n_dims]["value"] for r in rows]
            columns.append(self._column(values, f, fallback_day))
        metadata = payload.get("metadata") or {}
        return ReportPage(
            batch=pa.RecordBatch.from_arrays(columns, schema=schema),
            row_count=int(payload.get("rowCount") or 0),
            offset=offset,
            subject_to_thresholding=bool(metadata.get("subjectToThresholding", False)),
            data_loss_from_other_row=bool(metadata.get("dataLossFromOtherRow", False)),
        )

    def _column(self, values: list[str], f: pa.Field, fallback_day: date | None) -> pa.Array:
        try:
            if pa.types.is_date32(f.type):
                return pa.array([_ga4_date(v, fallback_day) for v in values], type=f.type)
            if pa.types.is_integer(f.type):
                return pa.array([int(v) for v in values], type=f.type)
            if pa.types.is_floating(f.type):
                return pa.array([float(v) for v in values], type=f.type)
        except ValueError as exc:
            raise self._error(200, f"column {f.name} holds a value that is not {f.type}: {exc}") from None
        return pa.array(values, type=f.type)

    # --- reports ---
    def sessions(self, day: date) -> Iterator[ReportPage]:
        """The sessions report of one day.

        Args:
            day: the date (property time zone).
        Returns:
            ReportPage per HTTP page, batches with SESSIONS_SCHEMA.
        """
        body = {
            "dateRanges": [{"startDate": day.isoformat(), "endDate": day.isoformat()}],
            "dimensions": [{"name": n} for n in SESSIONS_DIMENSIONS],
            "metrics": [{"name": n} for n in SESSIONS_METRICS],
        }
        return self.pages(body, SESSIONS_SCHEMA)

    def leads(self, day: date) -> Iterator[ReportPage]:
        """The leads report of one day: the lead key event with its "how did you hear" answer.

        Args:
            day: the date (property time zone).
        Returns:
            ReportPage per HTTP page, batches with LEADS_SCHEMA.
        """
        body = {
            "dateRanges": [{"startDate": day.isoformat(), "endDate": day.isoformat()}],
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
        return self.pages(body, LEADS_SCHEMA)


def _single_day(body: Mapping[str, Any]) -> date | None:
    ranges = body.get("dateRanges") or []
    if len(ranges) == 1 and ranges[0].get("startDate") == ranges[0].get("endDate"):
        try:
            return date.fromisoformat(ranges[0]["startDate"])
        except (TypeError, ValueError):
            return None
    return None


def _ga4_date(value: str, fallback: date | None) -> date | None:
    if len(value) == 8 and value.isdigit():
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    # GA4's "(other)" row may carry "(other)" in every dimension: it belongs to the requested day.
    return fallback
