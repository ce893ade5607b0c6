"""The optional Discord asset: off by default, and when on it lands a day in raw_discord.messages."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import duckdb

from connectors.sandbox import community, ensure_sandbox
from orchestration.discord.assets import build_discord_assets
from orchestration.discord.resources import DiscordResource
from orchestration.partitions import daily_partitions
from orchestration.warehouse import DuckDBWarehouse

DAY = date.today() - timedelta(days=2)


def test_discord_is_off_unless_configured(tmp_path, settings_for, monkeypatch):
    for name in ("DISCORD_BOT_TOKEN", "DISCORD_CHANNEL_IDS", "DISCORD_SANDBOX"):
        monkeypatch.delenv(name, raising=False)
    assert build_discord_assets(daily_partitions(settings_for(tmp_path, days=3))) == []
    monkeypatch.setenv("DISCORD_SANDBOX", "1")
    assert len(build_discord_assets(daily_partitions(settings_for(tmp_path, days=3)))) == 1


def test_a_partition_lands_the_days_messages_idempotently(tmp_path, settings_for):
    settings = settings_for(tmp_path, days=5)
    (messages,) = build_discord_assets(daily_partitions(settings), enabled=True)
    resources = {
        "warehouse": DuckDBWarehouse(path=str(settings.warehouse_path)),
        "discord": DiscordResource(),
    }
    for _ in range(2):
        assert dg.materialize([messages], partition_key=DAY.isoformat(), resources=resources).success
    sandbox = ensure_sandbox()
    expected = sorted(p.post_id for p in community.posts_on(sandbox.seed, sandbox.scale, "discord", DAY))
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        got = [
            r[0] for r in conn.execute("select message_id from raw_discord.messages order by 1").fetchall()
        ]
    assert got == expected and got
