"""Search Console pages decoded by pyarrow's JSON reader equal the json + row-by-row path.

Every comparison runs the same request twice against the sandbox's real HTTP API: once as the
connector runs (the Arrow path, with the json path as its fallback) and once with the Arrow path
turned off (`_arrow_page` answering None: json and the row-by-row `_parse`, the connector as it was
before the Arrow path).
"""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta

import pyarrow as pa
import pytest

import connectors.gsc as gsc
from connectors.gsc import QUERIES_DIMENSIONS, QUERIES_SCHEMA, TOTALS_SCHEMA, GSCClient
from connectors.http import ApiError
from connectors.sandbox.brand import GSC_FINAL_LAG_DAYS

DAY = date(2026, 2, 4)  # a Wednesday with no planted event
TODAY = date(2026, 11, 21)  # the connectors sandbox's pinned "today"
QUERY_SCHEMA = pa.schema([QUERIES_SCHEMA.field(n) for n in ("date", "query")] + list(TOTALS_SCHEMA)[1:])


@pytest.fixture
def arrow_taken(monkeypatch) -> list[bool]:
    """Per answer of the Arrow-path runs, in order: did the Arrow path make the page (False: the
    json path did)?"""
    taken: list[bool] = []
    real = GSCClient._arrow_page

    def spy(self, content, **kwargs):
        page = real(self, content, **kwargs)
        taken.append(page is not None)
        return page

    monkeypatch.setattr(GSCClient, "_arrow_page", spy)
    return taken


def _pages(pages) -> list[tuple]:
    return [(p.batch, p.start_row, p.first_incomplete_date, p.response_aggregation_type) for p in pages]


def _outcome(fetch) -> tuple:
    """("pages", [(batch, start_row, first_incomplete_date, response_aggregation_type), ...]) or
    ("error", exception type, message)."""
    try:
        return "pages", _pages(fetch())
    except (ApiError, ValueError, TypeError, OverflowError) as exc:
        return "error", type(exc), str(exc)


def _assert_same(fast: tuple, slow: tuple) -> None:
    assert fast[0] == slow[0], (fast, slow)
    if fast[0] == "error":
        assert fast == slow
        return
    assert len(fast[1]) == len(slow[1])
    for (fast_batch, *fast_rest), (slow_batch, *slow_rest) in zip(fast[1], slow[1], strict=True):
        assert fast_batch.schema == slow_batch.schema
        assert fast_batch.equals(slow_batch), (fast_batch.to_pylist()[:3], slow_batch.to_pylist()[:3])
        assert fast_rest == slow_rest


def _both_ways(monkeypatch, fetch, before=lambda: None) -> tuple[tuple, tuple]:
    """fetch() through the Arrow path, then with the Arrow path off; before() runs before each."""
    before()
    fast = _outcome(fetch)
    with monkeypatch.context() as patch:
        patch.setattr(GSCClient, "_arrow_page", lambda self, content, **kwargs: None)
        before()
        slow = _outcome(fetch)
    _assert_same(fast, slow)
    return fast, slow


def _answer(client: GSCClient, day: date = DAY, row_limit: int = 100) -> dict:
    """The sandbox's plain answer to the first page of a day's query rows, as json decodes it."""
    body = {**client._day_body(day, QUERIES_DIMENSIONS), "rowLimit": row_limit, "startRow": 0}
    return client._post(body)


# --- the plain pages: the Arrow path makes them, equal to json's ------------------------------------


def test_a_day_of_several_pages_equals_the_json_path(sandbox, make_gsc, arrow_taken, monkeypatch):
    client = make_gsc(row_limit=100)
    seen = len(sandbox.requests_to("searchAnalytics"))
    (_, pages), _ = _both_ways(monkeypatch, lambda: client.queries(DAY))
    assert len(pages) >= 3 and [start for _, start, *_ in pages] == [100 * i for i in range(len(pages))]
    # every page with rows took the Arrow path (a last, empty page is json's: nothing to decode)
    assert arrow_taken == [batch.num_rows > 0 for batch, *_ in pages]
    assert all(batch.schema == QUERIES_SCHEMA for batch, *_ in pages)
    assert {response_type for *_, response_type in pages} == {"BY_PAGE"}
    sent = sandbox.requests_to("searchAnalytics")[seen:]
    assert sent and all(r.path.endswith("/searchAnalytics/query?prettyPrint=false") for r in sent)


def test_the_totals_query_equals_the_json_path(make_gsc, arrow_taken, monkeypatch):
    client = make_gsc()
    for day in (DAY, DAY + timedelta(days=1), TODAY - timedelta(days=GSC_FINAL_LAG_DAYS)):
        (_, pages), _ = _both_ways(monkeypatch, lambda day=day: client.totals(day))
        assert len(pages) == 1 and pages[0][0].num_rows == 1 and pages[0][0].schema == TOTALS_SCHEMA
        assert pages[0][0].column("date").to_pylist() == [day]
        assert pages[0][3] == "BY_PROPERTY"
    assert arrow_taken == [True] * 3


def test_first_incomplete_date_of_data_state_all_equals_the_json_path(make_gsc, arrow_taken, monkeypatch):
    client = make_gsc(row_limit=500)
    first_incomplete = TODAY - timedelta(days=GSC_FINAL_LAG_DAYS - 1)
    body = {
        "startDate": (TODAY - timedelta(days=6)).isoformat(),
        "endDate": (TODAY - timedelta(days=1)).isoformat(),
        "type": "WEB",
        "dataState": "ALL",
    }
    (_, totals), _ = _both_ways(
        monkeypatch, lambda: client.pages({**body, "dimensions": ["DATE"]}, TOTALS_SCHEMA)
    )
    assert [p[2] for p in totals] == [first_incomplete] and totals[0][0].num_rows == 6
    # several days in one page, two dimensions: the dates come from many distinct keys
    (_, rows), _ = _both_ways(
        monkeypatch, lambda: client.pages({**body, "dimensions": ["DATE", "QUERY"]}, QUERY_SCHEMA)
    )
    assert len(rows) > 1 and {p[2] for p in rows} == {first_incomplete}
    days = {d for batch, *_ in rows for d in batch.column("date").to_pylist()}
    assert len(days) == 6
    assert arrow_taken == [True] * len(totals) + [batch.num_rows > 0 for batch, *_ in rows]


def test_a_pretty_printed_answer_decodes_like_a_compact_one(make_gsc):
    answer = _answer(make_gsc())
    compact = gsc._decode_page(json.dumps(answer, separators=(",", ":")).encode())
    spaced = gsc._decode_page(json.dumps(answer).encode())  # the sandbox's form
    pretty = gsc._decode_page(json.dumps(answer, indent=2).encode() + b"\n")
    assert compact is not None and spaced is not None and pretty is not None
    assert compact["rows"].equals(pretty["rows"]) and compact["rows"].equals(spaced["rows"])
    assert compact["rows"].to_pylist() == answer["rows"]
    assert pretty["responseAggregationType"] == answer["responseAggregationType"]


# --- anything else: the json path, with its messages ---------------------------------------------


def _rows(edit):
    """A transform editing the answer's rows list (edit(rows) -> rows)."""
    return lambda answer: {**answer, "rows": edit([dict(r) for r in answer["rows"]])}


def _first_row(**changes):
    return _rows(lambda rows: [{**rows[0], **changes}, *rows[1:]])


def _without(name):
    return _rows(lambda rows: [{k: v for k, v in rows[0].items() if k != name}, *rows[1:]])


def _keys(edit):
    return _rows(lambda rows: [{**rows[0], "keys": edit(list(rows[0]["keys"]))}, *rows[1:]])


# name -> (transform of the sandbox's answer, what the connector does with it)
TRANSFORMS = {
    "extra top-level field": (lambda a: {**a, "kind": "webmasters#searchAnalytics"}, "pages"),
    "extra row field": (_first_row(searchAppearance="VIDEO"), "pages"),
    "extra metadata field": (lambda a: {**a, "metadata": {"firstIncompleteHour": "x"}}, "pages"),
    "renamed metric": (
        _rows(lambda rows: [{("click" if k == "clicks" else k): v for k, v in r.items()} for r in rows]),
        "error",
    ),
    "missing metric": (_without("impressions"), "error"),
    "missing keys": (_without("keys"), "error"),
    "null metric": (_first_row(ctr=None), "error"),
    "null query key": (_keys(lambda k: [k[0], None, *k[2:]]), "pages"),
    "null date key": (_keys(lambda k: [None, *k[1:]]), "error"),
    "keys too short": (_keys(lambda k: k[:-1]), "error"),
    "keys too long": (_keys(lambda k: [*k, "x"]), "error"),
    "number key": (_keys(lambda k: [k[0], 12345, *k[2:]]), "pages"),
    "date key with a time": (_keys(lambda k: [k[0] + "T00:00:00", *k[1:]]), "pages"),
    "bad date key": (_keys(lambda k: ["yesterday", *k[1:]]), "error"),
    "whole float clicks": (_first_row(clicks=3.0), "pages"),
    "non-whole clicks": (_first_row(clicks=1.5), "error"),
    "string clicks": (_first_row(clicks="7"), "pages"),
    "clicks beyond 2**53": (_first_row(impressions=2**53 + 1), "pages"),
    "string ctr": (_first_row(ctr="0.25"), "pages"),
    "infinite position": (_first_row(position=float("inf")), "pages"),
    "no rows": (lambda a: {k: v for k, v in a.items() if k != "rows"}, "pages"),
    "empty rows": (lambda a: {**a, "rows": []}, "pages"),
    "rows not a list": (lambda a: {**a, "rows": {"keys": []}}, "error"),
    "row not an object": (_rows(lambda rows: [7, *rows[1:]]), "error"),
    "answer is a list": (lambda a: [a], "error"),
    "aggregation type a number": (lambda a: {**a, "responseAggregationType": 3}, "pages"),
    "bad first incomplete date": (lambda a: {**a, "metadata": {"firstIncompleteDate": "soon"}}, "error"),
}


@pytest.mark.parametrize("name", TRANSFORMS)
def test_an_answer_that_is_not_a_plain_page_takes_the_json_path(
    sandbox, make_gsc, arrow_taken, monkeypatch, caplog, name
):
    transform, expected = TRANSFORMS[name]

    def inject():
        sandbox.clear_faults()
        sandbox.inject_fault("searchAnalytics", 200, times=1, kind="transform", transform=transform)

    with caplog.at_level(logging.WARNING, logger="connectors.gsc"):
        # a client per run: each warns about an unknown field once
        fast, _ = _both_ways(monkeypatch, lambda: make_gsc(row_limit=100).queries(DAY), before=inject)
    assert fast[0] == expected, fast
    if name == "date key with a time":  # the same date json's path reads: the Arrow path takes it
        assert arrow_taken[0] is True
    else:
        assert arrow_taken[0] is False
    if name.startswith("extra ") and name != "extra metadata field":
        assert "does not know; ignored" in caplog.text  # once per run, both runs alike
        assert caplog.text.count("does not know; ignored") == 2


def test_an_extra_field_falls_back_warns_once_and_loads_the_same_rows(sandbox, make_gsc, arrow_taken, caplog):
    client = make_gsc(row_limit=100)
    expected = _pages(client.queries(DAY))

    def extra(answer):
        return {
            **answer,
            "kind": "webmasters#searchAnalytics",
            "rows": [{**r, "searchAppearance": "VIDEO"} for r in answer["rows"]],
        }

    sandbox.inject_fault("searchAnalytics", 200, times=2, kind="transform", transform=extra)
    del arrow_taken[:]
    with caplog.at_level(logging.WARNING, logger="connectors.gsc"):
        got = _pages(client.queries(DAY))
    _assert_same(("pages", got), ("pages", expected))
    assert arrow_taken[:3] == [False, False, True]  # the two answers with extras, then plain ones
    assert caplog.text.count("'kind'") == 1 and caplog.text.count("'searchAppearance'") == 1


def test_non_whole_clicks_fail_with_the_same_message(sandbox, make_gsc, monkeypatch):
    client = make_gsc()

    def inject():
        sandbox.clear_faults()
        sandbox.inject_fault(
            "searchAnalytics", 200, times=1, kind="transform", transform=_first_row(clicks=2.5)
        )

    fast, _ = _both_ways(monkeypatch, lambda: client.totals(DAY), before=inject)
    assert fast[0] == "error" and fast[1] is ApiError
    assert "field 'clicks' holds a value that is not int64: 2.5 is not a whole number" in fast[2]


@pytest.mark.parametrize(
    "name",
    [
        "null",
        "leading-space null",
        "a JSON string",
        "two objects",
        "invalid UTF-8",
        "Inf",
        "-NaN",
        "Infinity",
        "BOM",
    ],
)
def test_a_body_that_is_not_a_plain_page_gets_the_json_paths_answer(
    sandbox, make_gsc, arrow_taken, monkeypatch, caplog, name
):
    client = make_gsc(row_limit=100)
    plain = json.dumps(_answer(client)).encode()
    first = plain.index(b'"keys": ["') + len(b'"keys": ["')
    position = plain.index(b'"position": ') + len(b'"position": ')
    end = plain.index(b"}", position)
    body = {
        "null": b"null",
        "leading-space null": b" \n null",
        "a JSON string": b'"rows"',
        "two objects": plain + b"\n" + plain,
        "invalid UTF-8": plain[:first] + b"\xff" + plain[first:],
        "Inf": plain[:position] + b"Inf" + plain[end:],
        "-NaN": plain[:position] + b"-NaN" + plain[end:],
        "Infinity": plain[:position] + b"Infinity" + plain[end:],
        "BOM": b"\xef\xbb\xbf" + plain,
    }[name]
    assert gsc._decode_page(body) is None

    def inject():
        sandbox.clear_faults()
        sandbox.inject_fault("searchAnalytics", 200, times=1, body=body)

    with caplog.at_level(logging.WARNING, logger="connectors.http"):
        fast, _ = _both_ways(monkeypatch, lambda: client.queries(DAY), before=inject)
    assert arrow_taken[0] is False
    if name in ("null", "leading-space null", "a JSON string"):
        assert fast[:2] == ("error", ApiError) and "the answer is not a JSON object" in fast[2]
    elif name in ("Infinity", "BOM"):  # json reads these: the rows load (one position infinite)
        assert fast[0] == "pages"
    else:  # json refuses the body: retried as malformed, then the sandbox's plain answer loads
        assert fast[0] == "pages" and caplog.text.count("truncated or malformed") == 2


def test_decode_page_leaves_anything_but_a_plain_page_to_json():
    row = {"keys": ["2026-02-04", "q"], "clicks": 1, "impressions": 4, "ctr": 0.25, "position": 2.5}
    answer = {"rows": [row], "responseAggregationType": "BY_PROPERTY"}
    decoded = gsc._decode_page(json.dumps(answer).encode())
    assert decoded["rows"].to_pylist() == [row] and decoded["metadata"] is None
    assert decoded["responseAggregationType"] == "BY_PROPERTY"

    def body(**changes):
        return json.dumps({**answer, **changes}).encode()

    for odd in (
        body(rows=[]),
        body(rows=None),
        body(kind="x"),
        body(rows=[{**row, "x": 1}]),
        body(rows=[{**row, "clicks": 1.0}]),
        body(rows=[{**row, "clicks": None}]),
        body(rows=[{**row, "keys": ["2026-02-04", None]}]),
        body(rows=[{**row, "keys": ["2026-02-04", 7]}]),
        body(rows=[{**row, "impressions": -(2**53) - 1}]),
        body(rows=[None]),
        body(metadata={"firstIncompleteDate": 20260204}),
        body(responseAggregationType=None)[:-10],
        body().replace(b'"q"', b'"\\ud800"'),
        body().replace(b'"q"', b'"\xed\xa0\x80"'),
        b"",
        b"[]",
    ):
        assert gsc._decode_page(odd) is None, odd
    assert gsc._decode_page(body(rows=[{**row, "impressions": 2**53}])) is not None
    # a plain page whose keys do not fit the schema: the columns are json's to make
    rows = decoded["rows"]
    assert gsc._arrow_columns(rows, QUERY_SCHEMA, 2) is not None
    assert gsc._arrow_columns(rows, QUERIES_SCHEMA, 5) is None
    assert gsc._arrow_columns(rows, pa.schema([pa.field("date", pa.string()), *list(QUERY_SCHEMA)[1:]]), 2)
    odd_types = pa.schema(
        [*list(QUERY_SCHEMA)[:2], pa.field("clicks", pa.float64()), *list(QUERY_SCHEMA)[3:]]
    )
    assert gsc._arrow_columns(rows, odd_types, 2) is None
