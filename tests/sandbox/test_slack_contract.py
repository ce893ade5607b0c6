"""The sandbox's Slack answers match the contract (slack_web_openapi_v2.json, as derived into
tests/contracts/slack.json): the 2020 schemas are loose, so this checks their required keys, id
patterns and the error form."""

from __future__ import annotations

import re
from datetime import date

import pytest
import requests

from connectors.sandbox import SandboxServer

TOKEN = "xoxb-sandbox-token"
METHODS = ("conversations.list", "conversations.history", "conversations.replies", "users.list")


@pytest.fixture(scope="module")
def spec(contract):
    return contract("slack")


@pytest.fixture(scope="module")
def slack():
    with SandboxServer(seed=42, scale="small", today=date(2026, 6, 10)) as server:

        def call(method, token=TOKEN, **params):
            return requests.get(
                f"{server.base_url}/slack/{method}",
                params=params,
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )

        call.server = server
        yield call


def _definition(spec, name):
    d = spec["definitions"][name]
    return d["items"][0] if "items" in d and isinstance(d["items"], list) else d


def _pattern(spec, name):
    return re.compile(spec["definitions"][name]["pattern"])


def _answers(slack):
    channel = "C07NW0GENRL"
    history = slack("conversations.history", channel=channel, oldest="1780358400", latest="1780444800").json()
    parent = next(m for m in history["messages"] if m.get("reply_count"))
    return {
        "conversations.list": slack("conversations.list", types="public_channel,private_channel").json(),
        "conversations.history": history,
        "conversations.replies": slack("conversations.replies", channel=channel, ts=parent["ts"]).json(),
        "users.list": slack("users.list", limit=50).json(),
    }


def test_success_answers_have_the_required_keys(spec, slack):
    answers = _answers(slack)
    for method in METHODS:
        schema = spec["paths"][f"/{method}"]["get"]["responses"]["200"]["schema"]
        answer = answers[method]
        assert answer["ok"] is True
        missing = set(schema.get("required", [])) - set(answer)
        assert not missing, f"{method} lacks {missing}"
        assert "next_cursor" in answer["response_metadata"]


def test_objects_match_the_contract_definitions(spec, slack):
    answers = _answers(slack)
    ts, user_id, team = _pattern(spec, "defs_ts"), _pattern(spec, "defs_user_id"), _pattern(spec, "defs_team")
    channel_re, bot_re = _pattern(spec, "defs_channel"), _pattern(spec, "defs_bot_id")
    message_required = set(spec["definitions"]["objs_message"]["required"])
    reaction_required = set(spec["definitions"]["objs_reaction"]["required"])
    messages = answers["conversations.history"]["messages"] + answers["conversations.replies"]["messages"]
    for m in messages:
        assert message_required <= set(m), m
        assert ts.match(m["ts"]) and user_id.match(m["user"])
        for key in ("thread_ts", "latest_reply"):
            assert key not in m or ts.match(m[key])
        if "bot_id" in m:
            assert bot_re.match(m["bot_id"])
        for r in m.get("reactions", []):
            assert reaction_required <= set(r) and r["count"] == len(r["users"])
    replies = answers["conversations.replies"]["messages"]
    assert replies[0]["reply_count"] == len(replies) - 1 and all(
        r["thread_ts"] == replies[0]["ts"] for r in replies
    )
    conversation = _definition(spec, "objs_conversation")
    for c in answers["conversations.list"]["channels"]:
        assert set(conversation.get("required", [])) <= set(c)
        assert channel_re.match(c["id"])
    profile_required = set(spec["definitions"]["objs_user_profile"]["required"])
    user_def = _definition(spec, "objs_user")
    for u in answers["users.list"]["members"]:
        assert set(user_def.get("required", [])) <= set(u), set(user_def.get("required", [])) - set(u)
        assert profile_required <= set(u["profile"])
        assert user_id.match(u["id"]) and team.match(u["team_id"])


def test_errors_are_http_200_ok_false(spec, slack):
    example = spec["paths"]["/conversations.history"]["get"]["responses"]["default"]["examples"][
        "application/json"
    ]
    answer = slack("conversations.history", channel="C0NOSUCHCH").json()
    assert set(answer) == set(example) and answer["ok"] is False and answer["error"] == "channel_not_found"
    bad = slack("conversations.list", token="xoxb-wrong")
    assert bad.status_code == 200 and bad.json() == {"ok": False, "error": "invalid_auth"}
    assert slack("users.list", token="").json()["error"] == "not_authed"
    assert slack("users.list", cursor="garbage!").json()["error"] == "invalid_cursor"


def test_ratelimited_fault_is_slacks_throttle_form(slack):
    slack.server.inject_fault("/slack/users.list", status=429, headers={"Retry-After": "3"})
    answer = slack("users.list")
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "3"
    assert answer.json() == {"ok": False, "error": "ratelimited"}


def test_paging_covers_every_member_once(slack):
    seen, cursor, pages = [], "", 0
    while True:
        answer = slack("users.list", limit=40, **({"cursor": cursor} if cursor else {})).json()
        seen += [u["id"] for u in answer["members"]]
        pages += 1
        cursor = answer["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert pages > 2 and len(seen) == len(set(seen)) == len(slack("users.list", limit=1000).json()["members"])
