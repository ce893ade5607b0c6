"""The Meta Marketing API (Graph API v25.0) as the sandbox answers it, under the prefix "/meta".

META_BASE_URL = sandbox.base_url + "/meta". Served (any `v<major>.<minor>` version segment):

- `GET /{v}/act_{account}/insights`: `fields` ("a,b" or a JSON array), `level=ad`, `time_increment=1`,
  `time_range={"since","until"}`, `limit` (default 25), `after`: AdsInsights rows with numbers
  as strings and `actions` as [{action_type, value}]; cursor paging
  `{"data", "paging": {"cursors": {"before", "after"}, "next"}}` where `next` is absent on the
  last page (the cursors are not).
- `POST /{v}/act_{account}/insights` (same params, query or form): an async report,
  `{"report_run_id"}`; `GET /{v}/{report_run_id}` polls it (AdReportRun: "Job Running" on the
  first poll, "Job Completed" from the second); `GET /{v}/{report_run_id}/insights` pages it.
- `GET /{v}/{pixel_id}/stats?aggregation=event&start_time&end_time` (unix seconds or ISO 8601):
  hourly buckets `{"data": [{"start_time", "aggregation": "event", "data": [{"value", "count"}]}]}`.

- `GET /{v}/act_{account}?fields=name,account_status,currency,timezone_name`: the AdAccount.

Permissions: `sandbox-meta-token-without-ads-read` (SANDBOX_META_TOKEN_WITHOUT_ADS_READ) is a valid
token without ads_read: the ad account's routes answer it Meta's (#200) permissions error.
Auth: `Authorization: Bearer sandbox-meta-token` (or an `access_token` parameter, as Meta
allows); anything else is code 190 OAuthException. Like Meta, `paging.next` links carry
`access_token=` in their query: a client must not follow them as given.

Errors use Meta's body `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id",
"is_transient"}}`. Throttling for fault injection: `throttle_fault()` gives the status, body and
`X-Business-Use-Case-Usage` header of code 17 (or 4, 613, 80000-80014).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlencode

from connectors.sandbox.brand import (
    SANDBOX_META_ACCESS_TOKEN,
    SANDBOX_META_AD_ACCOUNT_ID,
    SANDBOX_META_PIXEL_ID,
    SANDBOX_META_TOKEN_WITHOUT_ADS_READ,
    SANDBOX_START_DATE,
)
from connectors.sandbox.meta import insights_day, pixel_day
from connectors.sandbox.routes import SandboxApi, SandboxRequest, SandboxResponse

PREFIX = "/meta"
DEFAULT_LIMIT = 25
MAX_LIMIT = 5000
INSIGHTS_DOCS = "https://developers.facebook.com/docs/marketing-api/reference/ads-insights/"

# The AdsInsights fields the sandbox can serve (all are fields of the contract's AdsInsights.json).
SERVED_FIELDS = frozenset(
    {
        "account_id",
        "account_name",
        "account_currency",
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
        "cpm",
        "ctr",
        "frequency",
        "objective",
        "date_start",
        "date_stop",
    }
)
DEFAULT_FIELDS = ("spend", "impressions", "date_start", "date_stop")

_VERSIONED = re.compile(r"^/meta/(v\d+\.\d+)(/.*)?$")


class MetaApiError(Exception):
    """An error the sandbox answers with Meta's JSON error body."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        type_: str = "OAuthException",
        subcode: int | None = None,
        is_transient: bool = False,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message, self.type = status, code, message, type_
        self.subcode, self.is_transient, self.headers = subcode, is_transient, headers or {}

    def response(self) -> SandboxResponse:
        return SandboxResponse(
            self.status,
            meta_error(self.code, self.message, self.type, self.subcode, self.is_transient),
            self.headers,
        )


def meta_error(
    code: int,
    message: str,
    type_: str = "OAuthException",
    subcode: int | None = None,
    is_transient: bool = False,
) -> dict:
    """Meta's error body."""
    trace = base64.b64encode(hashlib.sha1(f"{code}:{message}".encode()).digest()[:9]).decode()
    error = {
        "message": message,
        "type": type_,
        "code": code,
        "is_transient": is_transient,
        "fbtrace_id": trace,
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


def expired_token_body() -> dict:
    """Code 190, as Meta answers an expired or invalid access token (HTTP 400)."""
    return meta_error(
        190,
        "Error validating access token: Session has expired on Friday, 20-Nov-26 10:00:00 PST. "
        "The current time is Saturday, 21-Nov-26 01:00:00 PST.",
        subcode=463,
    )


def usage_header(minutes: int, call_count: int = 100) -> str:
    """X-Business-Use-Case-Usage for the sandbox's ad account."""
    return json.dumps(
        {
            SANDBOX_META_AD_ACCOUNT_ID: [
                {
                    "type": "ads_insights",
                    "call_count": call_count,
                    "total_cputime": min(100, call_count),
                    "total_time": min(100, call_count),
                    "estimated_time_to_regain_access": minutes,
                    "ads_api_access_tier": "standard_access",
                }
            ]
        }
    )


_THROTTLE_MESSAGES = {
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    80000: "(#80000) There have been too many calls from this ad-account. Wait a bit and try again.",
}


def throttle_body(code: int = 17) -> dict:
    """Meta's throttling error body for `code` (4, 17, 613 or 80000-80014)."""
    message = _THROTTLE_MESSAGES.get(code) or _THROTTLE_MESSAGES[80000].replace("80000", str(code))
    return meta_error(code, message, subcode=2446079 if code == 17 else None, is_transient=True)


def throttle_fault(code: int = 17, minutes: int = 1, status: int = 400) -> dict:
    """Keyword arguments for `sandbox.inject_fault(path, **throttle_fault())`: Meta's throttle form.

    Meta throttles with HTTP 400 (or 403) and a code, not 429; X-Business-Use-Case-Usage says
    how many minutes until access is back (`estimated_time_to_regain_access`).
    """
    headers = {
        "X-Business-Use-Case-Usage": usage_header(minutes),
        "X-App-Usage": json.dumps({"call_count": 100, "total_cputime": 40, "total_time": 45}),
    }
    return {"status": status, "body": throttle_body(code), "headers": headers}


def error_body(status: int) -> dict:
    """The body Meta sends with a bare status (used by injected faults)."""
    if status == 429:
        return throttle_body(17)
    if status == 401:
        return expired_token_body()
    if status == 403:
        return meta_error(200, "(#200) Requires ads_read permission to manage the object")
    if status == 404:
        return meta_error(803, "(#803) Some of the aliases you requested do not exist")
    if status == 400:
        return meta_error(100, "(#100) Invalid parameter", subcode=1487534)
    if status == 503:
        return meta_error(
            2, "An unexpected error has occurred. Please retry your request later.", is_transient=True
        )
    if status >= 500:
        return meta_error(1, "An unknown error occurred", is_transient=True)
    return meta_error(1, "An unknown error occurred")


# --- state: async report runs ------------------------------------------------------------------

_jobs_lock = threading.Lock()


def _jobs(sandbox) -> dict[str, dict]:
    with _jobs_lock:
        jobs = sandbox.__dict__.get("_meta_report_runs")
        if jobs is None:
            jobs = sandbox.__dict__["_meta_report_runs"] = {}
        return jobs


# --- request parsing ---------------------------------------------------------------------------


def _authorise(request: SandboxRequest) -> str:
    token = request.bearer() or request.param("access_token") or ""
    if not token:
        raise MetaApiError(
            400, 2500, "An active access token must be used to query information about the current user."
        )
    if token not in (SANDBOX_META_ACCESS_TOKEN, SANDBOX_META_TOKEN_WITHOUT_ADS_READ):
        raise MetaApiError(400, 190, "Invalid OAuth access token - Cannot parse access token")
    return token


def _unknown_account(account: str) -> MetaApiError:
    return MetaApiError(
        400,
        100,
        f"Unsupported get request. Object with ID '{account}' does not exist, cannot be loaded due "
        "to missing permissions, or does not support this operation.",
        "GraphMethodException",
        subcode=33,
    )


def _check_account(account: str, token: str) -> None:
    if account[4:] != SANDBOX_META_AD_ACCOUNT_ID:
        raise _unknown_account(account)
    if token == SANDBOX_META_TOKEN_WITHOUT_ADS_READ:
        raise MetaApiError(
            403, 200, "(#200) Ad account owner has NOT grant ads_management or ads_read permission"
        )


def _limit(request: SandboxRequest) -> int:
    text = request.param("limit") or str(DEFAULT_LIMIT)
    try:
        value = int(text)
    except ValueError:
        raise MetaApiError(
            400, 100, f"(#100) param limit must be a non-negative integer, got {text!r}"
        ) from None
    return max(1, min(MAX_LIMIT, value))


def _offset(request: SandboxRequest) -> int:
    cursor = request.param("after")
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode() + b"==").decode()
        return int(text.split(":", 1)[1])
    except (ValueError, IndexError, UnicodeDecodeError):
        raise MetaApiError(400, 100, "(#100) The after cursor is invalid", subcode=1487194) from None


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _field_names(request: SandboxRequest) -> list[str]:
    """The `fields` parameter's names: "a,b" or, as the Graph API also takes it, a JSON array
    '["a","b"]' (what the SDKs send when `fields` is passed as a list in the params)."""
    text = (request.param("fields") or "").strip()
    if text.startswith("["):
        try:
            names = json.loads(text)
        except ValueError:
            names = None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise MetaApiError(
                400, 100, "(#100) param fields must be a comma-separated list or a JSON array of field names"
            )
        return [n.strip() for n in names if n.strip()]
    return [f.strip() for f in text.split(",") if f.strip()]


def _fields(request: SandboxRequest) -> list[str]:
    fields = _field_names(request)
    if not fields:
        return list(DEFAULT_FIELDS)
    for name in fields:
        if name not in SERVED_FIELDS:
            raise MetaApiError(
                400,
                100,
                f"(#100) {name} is not valid for fields param. "
                f"please check {INSIGHTS_DOCS} for all valid values",
            )
    return fields


def _time_range(request: SandboxRequest) -> tuple[date, date]:
    text = request.param("time_range")
    if not text:
        raise MetaApiError(400, 100, '(#100) The sandbox needs time_range={"since":...,"until":...}')
    try:
        value = json.loads(text)
        since, until = date.fromisoformat(value["since"]), date.fromisoformat(value["until"])
    except (ValueError, KeyError, TypeError):
        raise MetaApiError(
            400, 100, "(#100) param time_range must be a JSON object with since and until (YYYY-MM-DD)"
        ) from None
    if since > until:
        raise MetaApiError(400, 100, "(#100) since must be on or before until in time_range", subcode=1487534)
    return since, until


def _insights_params(request: SandboxRequest) -> dict:
    level = request.param("level") or "ad"
    if level != "ad":
        raise MetaApiError(400, 100, f"(#100) The sandbox serves level=ad only, got level={level}")
    increment = request.param("time_increment") or "1"
    if increment != "1":
        raise MetaApiError(400, 100, f"(#100) The sandbox serves time_increment=1 only, got {increment}")
    since, until = _time_range(request)
    return {"fields": _fields(request), "since": since, "until": until}


def _rows(request: SandboxRequest, params: dict) -> list[dict]:
    sandbox = request.sandbox
    last = sandbox.today() - timedelta(days=1)
    out = []
    day = max(params["since"], SANDBOX_START_DATE)
    while day <= min(params["until"], last):
        for row in insights_day(sandbox.seed, sandbox.scale, day):
            out.append(
                {f: row[f] for f in params["fields"] if f in row}
                | {
                    "date_start": row["date_start"],
                    "date_stop": row["date_stop"],
                }
            )
        day += timedelta(days=1)
    return out


def _page(request: SandboxRequest, items: list, token: str) -> dict:
    limit, offset = _limit(request), _offset(request)
    chunk = items[offset : offset + limit]
    end = offset + len(chunk)
    paging: dict = {"cursors": {"before": _cursor(offset), "after": _cursor(max(end - 1, offset))}}
    if end < len(items):
        query = {k: v[0] for k, v in request.query.items() if k not in ("after", "access_token")}
        # Meta's next links repeat the access token in the query string.
        query.update({"limit": str(limit), "after": _cursor(end), "access_token": token})
        paging["cursors"]["after"] = _cursor(end)
        paging["next"] = f"{request.sandbox.base_url}{request.path}?{urlencode(query)}"
    if offset > 0:
        paging["previous"] = f"{request.sandbox.base_url}{request.path}?before={_cursor(offset)}"
    return {"data": chunk, "paging": paging}


def _usage_headers() -> dict[str, str]:
    return {
        "X-App-Usage": json.dumps({"call_count": 2, "total_cputime": 1, "total_time": 1}),
        "X-Ad-Account-Usage": json.dumps({"acc_id_util_pct": 1.5, "reset_time_duration": 0}),
        "X-Business-Use-Case-Usage": usage_header(0, call_count=2),
    }


def _ok(body: dict) -> SandboxResponse:
    return SandboxResponse(200, body, _usage_headers())


def _parse_time(text: str | None, name: str) -> datetime:
    if not text:
        raise MetaApiError(400, 100, f"(#100) The parameter {name} is required")
    try:
        if text.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(text), tz=timezone.utc)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError):
        raise MetaApiError(
            400, 100, f"(#100) param {name} must be a unix timestamp or ISO 8601 time"
        ) from None


def _pixel_stats(request: SandboxRequest, token: str) -> SandboxResponse:
    aggregation = request.param("aggregation") or "event"
    if aggregation != "event":
        raise MetaApiError(400, 100, f"(#100) The sandbox serves aggregation=event only, got {aggregation}")
    start = _parse_time(request.param("start_time"), "start_time")
    end = _parse_time(request.param("end_time"), "end_time")
    sandbox = request.sandbox
    last = sandbox.today() - timedelta(days=1)
    buckets = []
    day = max(start.date(), SANDBOX_START_DATE)
    while day <= min(end.date(), last):
        for hour, events in pixel_day(sandbox.seed, sandbox.scale, day):
            if start <= hour < end:
                buckets.append(
                    {
                        "start_time": hour.strftime("%Y-%m-%dT%H:%M:%S+0000"),
                        "aggregation": "event",
                        "data": [{"value": e, "count": c} for e, c in events],
                    }
                )
        day += timedelta(days=1)
    return _ok(_page(request, buckets, token))


def _report_run(request: SandboxRequest, run_id: str) -> dict:
    job = _jobs(request.sandbox).get(run_id)
    if job is None:
        raise MetaApiError(
            400,
            100,
            f"Unsupported get request. Object with ID '{run_id}' does not exist, cannot be loaded due to "
            "missing permissions, or does not support this operation.",
            "GraphMethodException",
            subcode=33,
        )
    return job


def handle(request: SandboxRequest) -> SandboxResponse:
    try:
        return _handle(request)
    except MetaApiError as exc:
        return exc.response()


def _handle(request: SandboxRequest) -> SandboxResponse:
    match = _VERSIONED.match(request.path)
    if not match:
        raise MetaApiError(
            400, 2635, "(#2635) Unknown path: give the API version, e.g. /v25.0/act_<id>/insights"
        )
    token = _authorise(request)
    parts = [p for p in (match.group(2) or "").split("/") if p]
    method = request.method
    if len(parts) == 1 and parts[0].startswith("act_") and method == "GET":
        _check_account(parts[0], token)
        account = {
            "id": parts[0],
            "account_id": SANDBOX_META_AD_ACCOUNT_ID,
            "name": "Northwind Analytics",
            "account_status": 1,
            "currency": "EUR",
            "timezone_name": "Europe/Berlin",
        }
        wanted = _field_names(request)
        return _ok({k: v for k, v in account.items() if k == "id" or not wanted or k in wanted})
    if len(parts) == 2 and parts[0].startswith("act_") and parts[1] == "insights":
        _check_account(parts[0], token)
        params = _insights_params(request)
        if method == "POST":
            jobs = _jobs(request.sandbox)
            with _jobs_lock:
                run_id = str(6_120_000_000_000 + len(jobs) + 1)
                jobs[run_id] = {"params": params, "polls": 0}
            return _ok({"report_run_id": run_id})
        if method == "GET":
            return _ok(_page(request, _rows(request, params), token))
    elif len(parts) == 2 and parts[0] == SANDBOX_META_PIXEL_ID and parts[1] == "stats" and method == "GET":
        return _pixel_stats(request, token)
    elif len(parts) == 1 and parts[0].isdigit() and method == "GET":
        job = _report_run(request, parts[0])
        with _jobs_lock:
            job["polls"] += 1
            done = job["polls"] >= 2
        params = job["params"]
        return _ok(
            {
                "id": parts[0],
                "account_id": SANDBOX_META_AD_ACCOUNT_ID,
                "async_status": "Job Completed" if done else "Job Running",
                "async_percent_completion": 100 if done else 50,
                "date_start": params["since"].isoformat(),
                "date_stop": params["until"].isoformat(),
                "is_running": not done,
                "time_ref": 1_790_000_000,
            }
        )
    elif len(parts) == 2 and parts[0].isdigit() and parts[1] == "insights" and method == "GET":
        job = _report_run(request, parts[0])
        if job["polls"] < 2:
            raise MetaApiError(
                400, 100, "(#100) The report is not ready yet: poll the report run until Job Completed"
            )
        return _ok(_page(request, _rows(request, job["params"]), token))
    raise MetaApiError(
        400,
        100,
        f"Unsupported {method.lower()} request. Object with ID '{parts[0] if parts else ''}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation.",
        "GraphMethodException",
        subcode=33,
    )


def describe(sandbox) -> dict:
    base = f"{sandbox.base_url}{PREFIX}"
    return {
        "base_url": base,
        "access_token": SANDBOX_META_ACCESS_TOKEN,
        "ad_account_id": f"act_{SANDBOX_META_AD_ACCOUNT_ID}",
        "pixel_id": SANDBOX_META_PIXEL_ID,
        "insights": f"{base}/v25.0/act_{SANDBOX_META_AD_ACCOUNT_ID}/insights",
        "pixel_stats": f"{base}/v25.0/{SANDBOX_META_PIXEL_ID}/stats",
    }


API = SandboxApi(name="meta", prefix=PREFIX, handle=handle, error_body=error_body, describe=describe)
