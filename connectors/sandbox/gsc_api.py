"""Search Console `searchAnalytics.query` as the sandbox answers it, under the prefix /gsc.

`POST /gsc/webmasters/v3/sites/{siteUrl}/searchAnalytics/query` (so GSC_BASE_URL =
sandbox.base_url + "/gsc"), with a bearer token from the sandbox's Google token endpoint
(`/google/token`). Requests are validated the way Google validates them (unknown JSON fields,
dates, dimensions, rowLimit 1..25,000, startRow, dataState), with Google's legacy error body
`{"error": {"code", "message", "errors": [{"domain", "reason", "message"}], "status"}}`.
Responses follow the discovery document's SearchAnalyticsQueryResponse: `rows` (omitted when
empty) of `{keys, clicks, impressions, ctr, position}`, `responseAggregationType`, and
`metadata.firstIncompleteDate` for dataState "all" grouped by date.

Enums are accepted in either spelling ("date" or "DATE", "notEquals" or "NOT_EQUALS", "googleNews"
or "GOOGLE_NEWS"), as Google takes webmasters v3's and searchconsole v1's.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING
from urllib.parse import unquote

from connectors.sandbox.brand import (
    GSC_FINAL_LAG_DAYS,
    GSC_HISTORY_DAYS,
    GSC_PAGE_ORIGIN,
    SANDBOX_GSC_SITE_URL,
    SANDBOX_START_DATE,
)
from connectors.sandbox.ga4_api import GOOGLE_STATUS
from connectors.sandbox.google_auth import SEARCH_CONSOLE_API
from connectors.sandbox.gsc import day_sums, generate_day
from connectors.sandbox.routes import SandboxApi, SandboxRequest, SandboxResponse

if TYPE_CHECKING:
    from connectors.sandbox.server import SandboxServer

PREFIX = "/gsc"
MAX_ROW_LIMIT = 25_000
DEFAULT_ROW_LIMIT = 1_000
_QUERY = re.compile(r"^/gsc/webmasters/v3/sites/([^/]+)/searchAnalytics/query$")
# The properties the sandbox's service account can read; the URL-prefix one sees every page.
SITES = (SANDBOX_GSC_SITE_URL, GSC_PAGE_ORIGIN + "/")
REQUEST_FIELDS = frozenset(
    {
        "startDate",
        "endDate",
        "dimensions",
        "type",
        "searchType",
        "dimensionFilterGroups",
        "aggregationType",
        "rowLimit",
        "startRow",
        "dataState",
    }
)
DIMENSIONS = ("date", "query", "page", "country", "device", "searchAppearance", "hour")
_FILTER_DIMENSIONS = ("query", "page", "country", "device")
# Incomplete days (dataState "all"): the share of the final figures already collected.
_INCOMPLETE_SHARE = {1: 0.45, 2: 0.8}

_MESSAGES = {
    400: ("invalid", "Bad Request"),
    401: (
        "authError",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, "
        "login cookie or other valid authentication credential. See "
        "https://developers.google.com/identity/sign-in/web/devconsole-project.",
    ),
    403: (
        "forbidden",
        "User does not have sufficient permission for site '{site}'. See also: "
        "https://support.google.com/webmasters/answer/2451999.",
    ),
    404: ("notFound", "Not Found"),
    429: (
        "rateLimitExceeded",
        "Search Analytics QPS quota exceeded for this site. Please reduce the request rate and retry.",
    ),
    500: ("backendError", "Internal error encountered."),
    503: ("backendError", "The service is currently unavailable."),
}


class GscError(Exception):
    def __init__(self, code: int, message: str | None = None, reason: str | None = None, site: str = ""):
        default_reason, default_message = _MESSAGES.get(code, ("backendError", "Request failed."))
        self.code = code
        self.message = message or default_message.format(site=site)
        self.reason = reason or default_reason
        super().__init__(self.message)

    def body(self) -> dict:
        domain = (
            "usageLimits"
            if self.reason.endswith("RateLimitExceeded")
            or self.reason
            in (
                "rateLimitExceeded",
                "quotaExceeded",
            )
            else "global"
        )
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [{"message": self.message, "domain": domain, "reason": self.reason}],
                "status": GOOGLE_STATUS.get(self.code, "UNKNOWN"),
            }
        }


def error_body(status: int) -> dict:
    """Google's error body for a bare status (injected faults)."""
    return GscError(status, site=SANDBOX_GSC_SITE_URL).body()


def throttle_body(retry_delay: str | None = None, status: int = 403) -> dict:
    """Google's legacy throttle answer (403 userRateLimitExceeded), with a RetryInfo hint if given."""
    body = GscError(status, "User Rate Limit Exceeded", "userRateLimitExceeded").body()
    if retry_delay is not None:
        body["error"]["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
        ]
    return body


def _invalid(message: str) -> GscError:
    return GscError(400, message, "invalid")


def _enum_key(text: str) -> str:
    return text.replace("_", "").lower()


def _enum(value: object, allowed: tuple[str, ...], field: str) -> str:
    text = str(value)
    for name in allowed:
        # "notEquals" (webmasters v3) is "NOT_EQUALS" in searchconsole v1's discovery document.
        if _enum_key(text) == _enum_key(name):
            return name
    raise _invalid(f"Invalid value at '{field}' ({text!r}): allowed values are {', '.join(allowed)}.")


def _day(value: object, field: str) -> date:
    text = str(value or "")
    if not text:
        raise _invalid(f"Missing required field {field}.")
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise _invalid(f"Invalid {field}: {text!r}. Dates are YYYY-MM-DD.")


def _int(value: object, field: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _invalid(f"Invalid value at '{field}' (TYPE_INT32), {value!r}")
    try:
        return int(value)
    except ValueError:
        raise _invalid(f"Invalid value at '{field}' (TYPE_INT32), {value!r}") from None


def _compile_filters(groups: object) -> Callable[[dict], bool] | None:
    if not groups:
        return None
    if not isinstance(groups, list):
        raise _invalid("Invalid dimensionFilterGroups: expected a list.")
    tests: list[Callable[[dict], bool]] = []
    for group in groups:
        if not isinstance(group, dict):
            raise _invalid("Invalid dimensionFilterGroups: expected objects.")
        _enum(group.get("groupType", "and"), ("and",), "dimensionFilterGroups.groupType")
        for f in group.get("filters") or []:
            dimension = _enum(f.get("dimension", ""), _FILTER_DIMENSIONS, "filters.dimension")
            operator = _enum(
                f.get("operator", "equals"),
                ("equals", "notEquals", "contains", "notContains", "includingRegex", "excludingRegex"),
                "filters.operator",
            )
            expression = str(f.get("expression", ""))
            value = expression.lower()
            pattern = None
            if operator.endswith("Regex"):
                try:
                    pattern = re.compile(expression, re.IGNORECASE)
                except re.error:
                    raise _invalid(f"Invalid regular expression: {expression!r}.") from None

            def test(row, d=dimension, op=operator, v=value, p=pattern):
                text = str(row[d]).lower()
                return {
                    "equals": lambda: text == v,
                    "notEquals": lambda: text != v,
                    "contains": lambda: v in text,
                    "notContains": lambda: v not in text,
                    "includingRegex": lambda: bool(p.search(text)),
                    "excludingRegex": lambda: not p.search(text),
                }[op]()

            tests.append(test)
    return (lambda row: all(t(row) for t in tests)) if tests else None


# Where each dimension is in a generated row (gsc.generate_day); "date" is the day itself.
_ROW_INDEX = {"query": 0, "page": 1, "device": 2, "country": 3}


def query(body: object, site_url: str, *, seed: int, scale: str, today: date) -> dict:
    """Answer one searchAnalytics.query with Google's JSON response; raise GscError like Google."""
    if site_url not in SITES:
        raise GscError(403, site=site_url)
    if not isinstance(body, dict):
        raise _invalid("Invalid JSON payload received. Expected an object.")
    for name in body:
        if name not in REQUEST_FIELDS:
            raise _invalid(f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.')
    start, end = _day(body.get("startDate"), "startDate"), _day(body.get("endDate"), "endDate")
    if start > end:
        raise _invalid(f"startDate {start} is after endDate {end}.")
    raw_dims = body.get("dimensions") or []
    if not isinstance(raw_dims, list):
        raise _invalid("Invalid value at 'dimensions': expected a list.")
    dims = [_enum(d, DIMENSIONS, "dimensions") for d in raw_dims]
    if len(set(dims)) != len(dims):
        raise _invalid("Dimensions must not repeat.")
    if "searchAppearance" in dims or "hour" in dims:
        raise _invalid("The sandbox does not group by searchAppearance or hour.")
    row_limit = _int(body.get("rowLimit"), "rowLimit", DEFAULT_ROW_LIMIT) or DEFAULT_ROW_LIMIT
    if not 1 <= row_limit <= MAX_ROW_LIMIT:
        raise _invalid(f"rowLimit must be a number from 1 to {MAX_ROW_LIMIT} (inclusive); got {row_limit}.")
    start_row = _int(body.get("startRow"), "startRow", 0)
    if start_row < 0:
        raise _invalid(f"startRow must be a non-negative number; got {start_row}.")
    data_state = _enum(body.get("dataState", "final"), ("final", "all"), "dataState")
    kind = _enum(
        body.get("type") or body.get("searchType") or "web",
        ("web", "image", "video", "news", "discover", "googleNews"),
        "type",
    )
    _compile_filters(body.get("dimensionFilterGroups"))  # refuses a bad filter as Google does
    filtered_dims = {
        f.get("dimension", "").lower()
        for g in body.get("dimensionFilterGroups") or []
        for f in g.get("filters") or []
    }
    by_page = "page" in dims or "page" in filtered_dims
    with_hidden = not ({"query", "page"} & (set(dims) | filtered_dims))

    last_final = today - timedelta(days=GSC_FINAL_LAG_DAYS)
    # Paging asks for the same query again and again: its table is built once (every field of the
    # request but rowLimit and startRow) and its pages served from it.
    report_key = json.dumps(
        {k: v for k, v in body.items() if k not in ("rowLimit", "startRow")}, sort_keys=True, default=str
    )
    table = _query_table(
        report_key,
        tuple(dims),
        kind,
        data_state,
        with_hidden,
        start,
        end,
        seed=seed,
        scale=scale,
        today=today,
    )
    response: dict = {}
    page = table[start_row : start_row + row_limit]
    if page:
        response["rows"] = [
            {
                "keys": list(key),
                "clicks": clicks,
                "impressions": impressions,
                "ctr": clicks / impressions,
                "position": weighted / impressions,
            }
            for key, (clicks, impressions, weighted) in page
        ]
    response["responseAggregationType"] = "BY_PAGE" if by_page else "BY_PROPERTY"
    first_incomplete = last_final + timedelta(days=1)
    if (
        data_state == "all"
        and "date" in dims
        and start <= today - timedelta(days=1)
        and end >= first_incomplete
    ):
        response["metadata"] = {"firstIncompleteDate": first_incomplete.isoformat()}
    return response


@functools.lru_cache(maxsize=4)
def _query_table(
    report_key: str,
    dims: tuple[str, ...],
    kind: str,
    data_state: str,
    with_hidden: bool,
    start: date,
    end: date,
    *,
    seed: int,
    scale: str,
    today: date,
) -> list:
    """The whole answer of the (validated) query `report_key`, its rows in the answer's order."""
    dims = list(dims)
    keep = _compile_filters(json.loads(report_key).get("dimensionFilterGroups"))
    last_final = today - timedelta(days=GSC_FINAL_LAG_DAYS)
    last_day = today - timedelta(days=1) if data_state == "all" else last_final
    first_day = max(SANDBOX_START_DATE, today - timedelta(days=GSC_HISTORY_DAYS))
    aggregated: dict[tuple, list[float]] = {}
    # The daily totals (what the warehouse loads beside the query rows): the sums generate_day kept.
    by_date_only = dims == ["date"] and keep is None
    day = max(start, first_day)
    while kind == "web" and day <= min(end, last_day):
        share = _INCOMPLETE_SHARE.get((today - day).days, 1.0)
        if by_date_only and share == 1.0:
            clicks, impressions, weighted, has_rows = day_sums(seed, scale, day)
            if has_rows:
                aggregated[(day.isoformat(),)] = [clicks, impressions, weighted]
            day += timedelta(days=1)
            continue
        generated = generate_day(seed, scale, day)
        if keep is None and share == 1.0:
            # The plain request (what the connector sends): group the generated tuples directly,
            # without a dict per row; same sums in the same order as the general path below.
            iso = day.isoformat()
            positions = [_ROW_INDEX.get(d) for d in dims]
            for r in generated.rows:
                key = tuple(iso if i is None else r[i] for i in positions)
                acc = aggregated.get(key)
                if acc is None:
                    aggregated[key] = [r[4], r[5], 0.0 + r[5] * r[7]]
                else:
                    acc[0] += r[4]
                    acc[1] += r[5]
                    acc[2] += r[5] * r[7]
            rows = []
        else:
            rows = [
                {
                    "date": day.isoformat(),
                    "query": r[0],
                    "page": r[1],
                    "device": r[2],
                    "country": r[3],
                    "clicks": r[4],
                    "impressions": r[5],
                    "position": r[7],
                }
                for r in generated.rows
            ]
        if with_hidden and generated.hidden_clicks:
            rows.append(
                {
                    "date": day.isoformat(),
                    "query": None,
                    "page": None,
                    "device": None,
                    "country": None,
                    "clicks": generated.hidden_clicks,
                    "impressions": generated.hidden_impressions,
                    "position": generated.hidden_position,
                }
            )
        for row in rows:
            if keep is not None and not keep(row):
                continue
            clicks, impressions = row["clicks"], row["impressions"]
            if share < 1.0:
                clicks, impressions = int(clicks * share), int(impressions * share)
                if impressions == 0:
                    continue
            key = tuple(row[d] for d in dims)
            acc = aggregated.setdefault(key, [0, 0, 0.0])
            acc[0] += clicks
            acc[1] += impressions
            acc[2] += impressions * row["position"]
        day += timedelta(days=1)

    table = sorted(aggregated.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
    return table


def _unauthenticated() -> SandboxResponse:
    body = GscError(401).body()
    body["error"]["errors"][0].update({"location": "Authorization", "locationType": "header"})
    return SandboxResponse(401, body, {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})


def handle(request: SandboxRequest) -> SandboxResponse:
    match = _QUERY.match(request.path)
    if not match:
        return SandboxResponse(404, GscError(404, f"The requested URL {request.path} was not found.").body())
    if request.method != "POST":
        return SandboxResponse(
            405, GscError(405, f"Method {request.method} not allowed.", "httpMethodNotAllowed").body()
        )
    sandbox = request.sandbox
    token = request.bearer()
    if not token or not sandbox.tokens.is_valid(token, SEARCH_CONSOLE_API):
        return _unauthenticated()
    try:
        body = request.json()
    except ValueError:
        return SandboxResponse(400, _invalid("Invalid JSON payload received. Unexpected token.").body())
    try:
        payload = query(
            body, unquote(match.group(1)), seed=sandbox.seed, scale=sandbox.scale, today=sandbox.today()
        )
    except GscError as exc:
        return SandboxResponse(exc.code, exc.body())
    return SandboxResponse(200, payload)


def describe(sandbox: SandboxServer) -> dict:
    base = sandbox.base_url + PREFIX
    return {
        "base_url": base,
        "token_uri": sandbox.google_token_uri,
        "site_url": SANDBOX_GSC_SITE_URL,
        "query": f"{base}/webmasters/v3/sites/sc-domain%3Anorthwind-analytics.com/searchAnalytics/query",
    }


API = SandboxApi(name="gsc", prefix=PREFIX, handle=handle, error_body=error_body, describe=describe)
