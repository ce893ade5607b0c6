"""The GA4 Data API `properties/{id}:runReport` as the sandbox answers it.

Requests are validated the way Google validates them (unknown JSON fields, unknown dimension or
metric names, incompatible dimensions and metrics, dates, limit and offset), with Google's error
body `{"error": {"code", "message", "status"}}`; an enum is taken as its name or its number
(`"matchType": "EXACT"` or `1`), as proto3 JSON allows and the REST clients send. Responses
follow the discovery document's RunReportResponse: headers, rows whose values are all strings,
`rowCount` (omitted, like every proto3 default, when zero), `metadata` and `kind`.

Two tables back the API: the sessions table (session-scoped dimensions and metrics) and the leads
table (the lead key event with its custom `how_heard` parameter), chosen by the request: a
`customEvent:` or `eventName` dimension or filter selects the leads table.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from datetime import date, timedelta

from connectors.sandbox.brand import SANDBOX_START_DATE
from connectors.sandbox.ga4 import generate_day, quality_flags

DEFAULT_LIMIT = 10_000
MAX_LIMIT = 250_000
SCHEMA_URL = "https://developers.google.com/analytics/devguides/reporting/data/v1/api-schema"
EXPLORER_URL = "https://ga-dev-tools.google/ga4/dimensions-metrics-explorer/"

# RunReportRequest's fields in the discovery document; anything else is an unknown JSON name.
REQUEST_FIELDS = frozenset(
    {
        "property",
        "dimensions",
        "metrics",
        "dateRanges",
        "dimensionFilter",
        "metricFilter",
        "offset",
        "limit",
        "metricAggregations",
        "orderBys",
        "currencyCode",
        "cohortSpec",
        "keepEmptyRows",
        "returnPropertyQuota",
        "comparisons",
    }
)

GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_DEFAULT_MESSAGES = {
    401: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
    "other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project.",
    403: "User does not have sufficient permissions for this property. To learn more about Property ID, "
    "see https://developers.google.com/analytics/devguides/reporting/data/v1/property-id.",
    429: "Exhausted property tokens per hour for a project per property. These quota tokens will return "
    "in under an hour. To learn more, see "
    "https://developers.google.com/analytics/devguides/reporting/data/v1/quotas",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
}


class GoogleApiError(Exception):
    """An error the sandbox answers with Google's JSON error body."""

    def __init__(self, code: int, message: str, status: str | None = None, details: list | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or GOOGLE_STATUS.get(code, "UNKNOWN")
        self.details = details

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def google_error_body(code: int, message: str | None = None) -> dict:
    """Google's error body for an HTTP status, with Google's usual message when none is given."""
    return GoogleApiError(code, message or _DEFAULT_MESSAGES.get(code, "Request failed.")).body()


def unauthenticated_body() -> dict:
    return GoogleApiError(
        401,
        _DEFAULT_MESSAGES[401],
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED",
                "domain": "googleapis.com",
                "metadata": {
                    "service": "analyticsdata.googleapis.com",
                    "method": "google.analytics.data.v1beta.BetaAnalyticsData.RunReport",
                },
            }
        ],
    ).body()


def _invalid(message: str) -> GoogleApiError:
    return GoogleApiError(400, message)


# --- tables ---------------------------------------------------------------------------------------

Getter = Callable[[tuple, str], str]


def _path_only(landing: str) -> str:
    return landing.split("?", 1)[0]


# Sessions dimensions that are a column of the generated row as it is (see _sessions_table).
_SESSIONS_POSITION = {
    "sessionSource": 0,
    "sessionMedium": 1,
    "sessionCampaignName": 2,
    "landingPagePlusQueryString": 3,
    "deviceCategory": 4,
}


def _sessions_table() -> tuple[dict[str, Getter], dict[str, tuple[int, str]]]:
    dims: dict[str, Getter] = {
        "date": lambda r, d: d,
        "sessionSource": lambda r, d: r[0],
        "sessionMedium": lambda r, d: r[1],
        "sessionSourceMedium": lambda r, d: f"{r[0]} / {r[1]}",
        "sessionCampaignName": lambda r, d: r[2],
        "landingPagePlusQueryString": lambda r, d: r[3],
        "landingPage": lambda r, d: _path_only(r[3]),
        "deviceCategory": lambda r, d: r[4],
    }
    metrics = {
        "sessions": (5, "TYPE_INTEGER"),
        "engagedSessions": (6, "TYPE_INTEGER"),
        # GA4 types keyEvents as a float (key events can be fractional); values here are whole.
        "keyEvents": (7, "TYPE_FLOAT"),
        "totalUsers": (8, "TYPE_INTEGER"),
        "newUsers": (9, "TYPE_INTEGER"),
    }
    return dims, metrics


def _leads_table(how_heard_parameter: str, lead_event: str):
    dims: dict[str, Getter] = {
        "date": lambda r, d: d,
        f"customEvent:{how_heard_parameter}": lambda r, d: r[0],
        "eventName": lambda r, d: lead_event,
        "sessionSource": lambda r, d: r[1],
        "sessionMedium": lambda r, d: r[2],
        "sessionSourceMedium": lambda r, d: f"{r[1]} / {r[2]}",
        "sessionCampaignName": lambda r, d: r[3],
        "landingPagePlusQueryString": lambda r, d: r[4],
        "landingPage": lambda r, d: _path_only(r[4]),
    }
    metrics = {"keyEvents": (5, "TYPE_FLOAT"), "eventCount": (5, "TYPE_INTEGER")}
    return dims, metrics


# --- request parsing -------------------------------------------------------------------------------


def _int64(body: dict, field: str) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _invalid(f"Invalid value at '{field}' (TYPE_INT64), {value!r}")
    if isinstance(value, str):
        if not re.fullmatch(r"-?\d+", value.strip()):
            raise _invalid(f"Invalid value at '{field}' (TYPE_INT64), \"{value}\"")
        return int(value)
    return value


def _parse_date(text: object, field: str, today: date) -> date:
    if not isinstance(text, str) or not text:
        raise _invalid(f"A dateRange must specify {field}.")
    if text == "today":
        return today
    if text == "yesterday":
        return today - timedelta(days=1)
    m = re.fullmatch(r"(\d+)daysAgo", text)
    if m:
        return today - timedelta(days=int(m.group(1)))
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise _invalid(
            f"Invalid {field} '{text}'. The date must be in the format YYYY-MM-DD, NdaysAgo, "
            "yesterday, or today."
        ) from None


def _names(body: dict, field: str, key: str) -> list[str]:
    items = body.get(field) or []
    if not isinstance(items, list):
        raise _invalid(f"Invalid value at '{field}': expected a list.")
    names = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get(key), str) or not item[key]:
            raise _invalid(f"Each of {field} must have a {key}.")
        names.append(item[key])
    return names


def _filter_fields(expr: object) -> list[str]:
    if not isinstance(expr, dict):
        return []
    out = []
    if "filter" in expr and isinstance(expr["filter"], dict):
        out.append(expr["filter"].get("fieldName", ""))
    for group in ("andGroup", "orGroup"):
        for sub in (
            (expr.get(group) or {}).get("expressions", []) if isinstance(expr.get(group), dict) else []
        ):
            out += _filter_fields(sub)
    if "notExpression" in expr:
        out += _filter_fields(expr["notExpression"])
    return out


# Filter.StringFilter.MatchType by number: proto3 JSON takes an enum as its name or its number, and
# the REST clients generated from the protos send numbers ("matchType": 1).
MATCH_TYPES = (
    "MATCH_TYPE_UNSPECIFIED",
    "EXACT",
    "BEGINS_WITH",
    "ENDS_WITH",
    "CONTAINS",
    "FULL_REGEXP",
    "PARTIAL_REGEXP",
)
_MATCH_TYPE_ENUM = "type.googleapis.com/google.analytics.data.v1beta.Filter.StringFilter.MatchType"


def _match_type(value: object) -> str:
    """The MatchType name of `value`, given as a name, a number or a number in a string."""
    if isinstance(value, str) and value in MATCH_TYPES:
        return value
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        number = int(value)
    if number is not None and 0 <= number < len(MATCH_TYPES):
        return MATCH_TYPES[number]
    shown = f'"{value}"' if isinstance(value, str) else value
    raise _invalid(
        f"Invalid value at 'dimension_filter.filter.string_filter.match_type' ({_MATCH_TYPE_ENUM}), {shown}"
    )


def _compile_filter(expr: dict, dims: dict[str, Getter]) -> Callable[[tuple, str], bool]:
    if not isinstance(expr, dict):
        raise _invalid("Invalid dimensionFilter.")
    if "andGroup" in expr:
        parts = [_compile_filter(e, dims) for e in expr["andGroup"].get("expressions", [])]
        return lambda r, d: all(p(r, d) for p in parts)
    if "orGroup" in expr:
        parts = [_compile_filter(e, dims) for e in expr["orGroup"].get("expressions", [])]
        return lambda r, d: any(p(r, d) for p in parts)
    if "notExpression" in expr:
        inner = _compile_filter(expr["notExpression"], dims)
        return lambda r, d: not inner(r, d)
    f = expr.get("filter")
    if not isinstance(f, dict):
        raise _invalid("A FilterExpression must set one of andGroup, orGroup, notExpression or filter.")
    field = f.get("fieldName", "")
    if field not in dims:
        raise _invalid(
            f"Field {field} is not a valid dimension. For a list of valid dimensions and metrics, "
            f"see {SCHEMA_URL} "
        )
    get = dims[field]
    if "stringFilter" in f:
        sf = f["stringFilter"]
        match = _match_type(sf.get("matchType", "EXACT"))
        sensitive = bool(sf.get("caseSensitive", False))
        value = str(sf.get("value", ""))
        flags = 0 if sensitive else re.IGNORECASE
        norm: Callable[[str], str] = (lambda s: s) if sensitive else str.lower
        target = norm(value)
        tests: dict[str, Callable[[str], bool]] = {
            "EXACT": lambda s: norm(s) == target,
            "MATCH_TYPE_UNSPECIFIED": lambda s: norm(s) == target,
            "BEGINS_WITH": lambda s: norm(s).startswith(target),
            "ENDS_WITH": lambda s: norm(s).endswith(target),
            "CONTAINS": lambda s: target in norm(s),
        }
        if match in ("FULL_REGEXP", "PARTIAL_REGEXP"):
            try:
                pattern = re.compile(value, flags)
            except re.error:
                raise _invalid(f"Invalid regular expression: {value}") from None
            if match == "FULL_REGEXP":
                return lambda r, d: pattern.fullmatch(get(r, d)) is not None
            return lambda r, d: pattern.search(get(r, d)) is not None
        test = tests[match]
        return lambda r, d: test(get(r, d))
    if "inListFilter" in f:
        lf = f["inListFilter"]
        sensitive = bool(lf.get("caseSensitive", False))
        values = {v if sensitive else v.lower() for v in lf.get("values", [])}
        return lambda r, d: (get(r, d) if sensitive else get(r, d).lower()) in values
    if "emptyFilter" in f:
        return lambda r, d: get(r, d) in ("", "(not set)")
    raise _invalid("The sandbox supports stringFilter, inListFilter and emptyFilter on dimensions.")


# --- the report ------------------------------------------------------------------------------------


def run_report(
    body: object,
    property_id: str,
    *,
    seed: int,
    scale: str,
    today: date,
    how_heard_parameter: str = "how_heard",
    lead_event: str = "generate_lead",
) -> dict:
    """Answer one runReport request with Google's JSON response; raise GoogleApiError like Google."""
    if not isinstance(body, dict):
        raise _invalid("Invalid JSON payload received. Expected an object.")
    for name in body:
        if name not in REQUEST_FIELDS:
            raise _invalid(f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.')
    if not property_id.isdigit():
        raise _invalid(
            f"Invalid property name properties/{property_id}. A property name must be of the form "
            "properties/{property_id}, where property_id is a number."
        )
    if body.get("metricFilter"):
        raise _invalid("The sandbox does not support metricFilter.")

    dimension_names = _names(body, "dimensions", "name")
    metric_names = _names(body, "metrics", "name")
    if len(dimension_names) > 9:
        raise _invalid("Requests are limited to 9 dimensions.")
    if len(metric_names) > 10:
        raise _invalid("Requests are limited to 10 metrics.")
    if not metric_names and not dimension_names:
        raise _invalid("A request must specify at least one dimension or metric.")

    session_dims, session_metrics = _sessions_table()
    lead_dims, lead_metrics = _leads_table(how_heard_parameter, lead_event)
    filter_fields = _filter_fields(body.get("dimensionFilter"))
    for name in dimension_names + filter_fields:
        if name not in session_dims and name not in lead_dims:
            raise _invalid(
                f"Field {name} is not a valid dimension. For a list of valid dimensions and metrics, see "
                f"{SCHEMA_URL} "
            )
    for name in metric_names:
        if name not in session_metrics and name not in lead_metrics:
            raise _invalid(
                f"Field {name} is not a valid metric. For a list of valid dimensions and metrics, "
                f"see {SCHEMA_URL} "
            )
    event_scoped = any(
        n.startswith("customEvent:") or n == "eventName" for n in dimension_names + filter_fields
    )
    dims, metrics = (lead_dims, lead_metrics) if event_scoped else (session_dims, session_metrics)
    for name in dimension_names + metric_names:
        if name not in dims and name not in metrics:
            raise _invalid(
                f"Please remove {name} to make the request compatible. The request's dimensions & metrics "
                f"are incompatible. To learn more, see {EXPLORER_URL}"
            )

    ranges = body.get("dateRanges")
    if not isinstance(ranges, list) or not ranges:
        raise _invalid("Must specify at least one dateRange.")
    if len(ranges) > 1:
        raise _invalid("The sandbox answers one dateRange per request.")
    if not isinstance(ranges[0], dict):
        raise _invalid("Invalid dateRange.")
    start = _parse_date(ranges[0].get("startDate"), "startDate", today)
    end = _parse_date(ranges[0].get("endDate"), "endDate", today)
    if start > end:
        raise _invalid(f"Invalid date range: startDate {start} is after endDate {end}.")

    limit = _int64(body, "limit")
    offset = _int64(body, "offset")
    if limit is not None and limit < 0:
        raise _invalid(f"limit must be positive, got {limit}.")
    if offset is not None and offset < 0:
        raise _invalid(f"offset must be non-negative, got {offset}.")
    # Like Google: 0 or absent means the default, and anything above 250,000 is capped.
    limit = min(limit or DEFAULT_LIMIT, MAX_LIMIT)
    offset = offset or 0

    # Paging asks for the same report again and again: the table is built once per report
    # (every field of the request but limit and offset) and its pages served from it.
    report_key = json.dumps(
        {k: v for k, v in body.items() if k not in ("limit", "offset", "returnPropertyQuota")},
        sort_keys=True,
    )
    table, thresholded, other_row = _report_table(
        report_key, property_id, seed, scale, today, start, end, how_heard_parameter, lead_event
    )

    response: dict = {
        "dimensionHeaders": [{"name": n} for n in dimension_names],
        "metricHeaders": [{"name": n, "type": metrics[n][1]} for n in metric_names],
    }
    page = table[offset : offset + limit]
    if page:
        # A fresh cell object each: fault transforms (tests) edit a response in place.
        response["rows"] = [
            {
                "dimensionValues": [{"value": v} for v in key],
                "metricValues": [{"value": str(v)} for v in values],
            }
            for key, values in page
        ]
    if table:
        response["rowCount"] = len(table)
    metadata: dict = {"currencyCode": "USD", "timeZone": "Etc/UTC"}
    if thresholded:
        metadata["subjectToThresholding"] = True
    if other_row:
        metadata["dataLossFromOtherRow"] = True
    response["metadata"] = metadata
    if body.get("returnPropertyQuota"):
        response["propertyQuota"] = {
            "tokensPerDay": {"consumed": 1, "remaining": 199_000},
            "tokensPerHour": {"consumed": 1, "remaining": 39_900},
            "concurrentRequests": {"remaining": 10},
            "serverErrorsPerProjectPerHour": {"remaining": 10},
            "potentiallyThresholdedRequestsPerHour": {"remaining": 120},
            "tokensPerProjectPerHour": {"consumed": 1, "remaining": 13_990},
        }
    response["kind"] = "analyticsData#runReport"
    return response


@functools.lru_cache(maxsize=4)
def _report_table(
    report_key: str,
    property_id: str,
    seed: int,
    scale: str,
    today: date,
    start: date,
    end: date,
    how_heard_parameter: str,
    lead_event: str,
) -> tuple[list, bool, bool]:
    """The whole report of the (validated) request `key`: its rows in the answer's order, and its
    thresholding and "(other)" flags (any day's: the flags are the report's)."""
    body = json.loads(report_key)
    dimension_names = _names(body, "dimensions", "name")
    metric_names = _names(body, "metrics", "name")
    session_dims, session_metrics = _sessions_table()
    lead_dims, lead_metrics = _leads_table(how_heard_parameter, lead_event)
    filter_fields = _filter_fields(body.get("dimensionFilter"))
    event_scoped = any(
        n.startswith("customEvent:") or n == "eventName" for n in dimension_names + filter_fields
    )
    report = "leads" if event_scoped else "sessions"
    dims, metrics = (lead_dims, lead_metrics) if event_scoped else (session_dims, session_metrics)
    keep = _compile_filter(body["dimensionFilter"], dims) if body.get("dimensionFilter") else None

    dim_getters = [dims[n] for n in dimension_names]
    # The connector's sessions request names plain columns only: read them by position instead of
    # calling a getter per cell (same keys).
    positions = None
    if report == "sessions" and all(n == "date" or n in _SESSIONS_POSITION for n in dimension_names):
        positions = [None if n == "date" else _SESSIONS_POSITION[n] for n in dimension_names]
    metric_index = [metrics[n][0] for n in metric_names]
    aggregated: dict[tuple, list[int]] = {}
    thresholded = other_row = False
    last_day = today - timedelta(days=1)
    day = max(start, SANDBOX_START_DATE)
    while day <= min(end, last_day):
        generated = generate_day(seed, scale, day, report)
        if report == "sessions":
            rows = generated.rows
            thresholded |= generated.subject_to_thresholding
            other_row |= generated.data_loss_from_other_row
        else:
            rows = generated
            thresholded |= quality_flags(seed, day)[0]  # the sessions report's flag for the day
        stamp = day.strftime("%Y%m%d")
        for r in rows:
            if keep is not None and not keep(r, stamp):
                continue
            if positions is not None:
                key = tuple(stamp if i is None else r[i] for i in positions)
            else:
                key = tuple(g(r, stamp) for g in dim_getters)
            acc = aggregated.get(key)
            if acc is None:
                aggregated[key] = [r[i] for i in metric_index]
            else:
                for j, i in enumerate(metric_index):
                    acc[j] += r[i]
        day += timedelta(days=1)

    table = list(aggregated.items())
    table.sort(key=lambda kv: ([-v for v in kv[1][:1]], kv[0]))
    for order in reversed(body.get("orderBys") or []):
        table = _apply_order(table, order, dimension_names, metric_names)

    return table, thresholded, other_row


def _apply_order(table: list, order: object, dimension_names: list[str], metric_names: list[str]) -> list:
    if not isinstance(order, dict):
        raise _invalid("Invalid orderBys.")
    desc = bool(order.get("desc", False))
    if "metric" in order:
        name = order["metric"].get("metricName", "")
        if name not in metric_names:
            raise _invalid(f"Metric {name} in orderBys is not in the request's metrics.")
        j = metric_names.index(name)
        return sorted(table, key=lambda kv: kv[1][j], reverse=desc)
    if "dimension" in order:
        name = order["dimension"].get("dimensionName", "")
        if name not in dimension_names:
            raise _invalid(f"Dimension {name} in orderBys is not in the request's dimensions.")
        j = dimension_names.index(name)
        return sorted(table, key=lambda kv: kv[0][j], reverse=desc)
    raise _invalid("The sandbox orders by metric or dimension only.")
