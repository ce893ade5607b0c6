"""The report's charts at the large scale: a community of thousands of active members."""

from __future__ import annotations

import random
import re

import pandas as pd

from orchestration.report import charts


def _members(count: int, seed: int = 7) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        level = "1_advocate" if i % 97 == 0 else "2_contributor" if i % 11 == 0 else "3_participant"
        rows.append(
            {
                "member_key": f"{i:064x}",
                "platform": rng.choice(["slack", "discourse", "discord"]),
                "level": level,
                "love": round(rng.lognormvariate(0, 1.5), 3),
                "reach": rng.randint(0, 400),
            }
        )
    return pd.DataFrame(rows)


def test_a_large_community_draws_every_advocate_and_contributor_and_groups_participants():
    """At the large sandbox scale 12,999 active members made Altair refuse the chart (its limit is
    5,000 rows) and the nightly's report step failed."""
    frame = _members(13_000)
    points = charts.member_points(frame)
    assert len(points) <= charts.MEMBER_POINTS_MAX
    assert points["members"].sum() == 13_000  # every member is in some point
    named = frame[frame["level"] != "3_participant"]
    assert set(points.loc[points["members"] == 1, "member_key"]) >= set(named["member_key"])
    grouped = points[points["level"] == "3_participant"]
    assert grouped["member_key"].str.endswith(("participant", "participants")).all()
    svg = charts.to_svg(charts.members(frame, charts.WIDE))
    drawn = re.findall(r'aria-label="([^"]*member \(pseudonym\)[^"]*)"', svg)
    assert len(drawn) == len(points)  # one circle per point, each naming its member or group
    assert sum(int(re.search(r"members: ([\d,]+)", label)[1].replace(",", "")) for label in drawn) == 13_000


def test_advocates_and_contributors_past_the_limit_are_grouped_too_advocates_kept_while_they_fit():
    """The large sandbox's 30 days: 663 advocates and 6,604 contributors active (7,359 points with
    the participants grouped), and the report step failed again."""
    frame = _members(12_000)
    frame.loc[frame.index % 2 == 0, "level"] = "2_contributor"
    frame.loc[frame.index % 18 == 0, "level"] = "1_advocate"
    advocates = frame[frame["level"] == "1_advocate"]
    points = charts.member_points(frame)
    assert len(points) <= charts.MEMBER_POINTS_MAX
    assert points["members"].sum() == 12_000
    # every advocate still has a point of their own, named by their pseudonym
    assert set(points.loc[points["level"] == "1_advocate", "member_key"]) == set(advocates["member_key"])
    for level, word in (("2_contributor", "contributor"), ("3_participant", "participant")):
        at_level = points[points["level"] == level]
        assert at_level["members"].sum() == (frame["level"] == level).sum()
        assert at_level["member_key"].str.endswith((word, word + "s")).all()
    assert (points.loc[points["level"] == "2_contributor", "members"] > 1).any()
    svg = charts.to_svg(charts.members(frame, charts.WIDE))
    assert len(re.findall(r'aria-label="([^"]*member \(pseudonym\)[^"]*)"', svg)) == len(points)


def test_a_community_under_the_limit_keeps_one_point_per_member():
    frame = _members(300)
    points = charts.member_points(frame)
    assert len(points) == 300
    assert (points["members"] == 1).all()
    assert list(points["member_key"]) == list(frame["member_key"])
