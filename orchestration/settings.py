"""Settings read from the environment once, at definitions load time.

Every setting is documented in `.env.example` and the README. Paths are resolved against the
project root so that Dagster, dbt (which runs in `dbt_project/`) and the demo agree on them.
Secrets are not read here: they reach resources through `dagster.EnvVar` (see `definitions.py`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

# The sandbox brand's history starts here; a real property usually starts later, and the
# partition start is what bounds a full backfill.
DEFAULT_HISTORY_START = "2025-07-01"


class SettingsError(ValueError):
    """A setting in the environment is malformed; the message names it and the fix."""


def _text(name: str, environ: Mapping[str, str] | None) -> str:
    env = os.environ if environ is None else environ
    return (env.get(name) or "").strip()


def _number(name, default, environ, parse, what: str, low, high, meaning: str):
    text = _text(name, environ)
    if not text:
        return default
    try:
        value = parse(text)
    except ValueError:
        raise SettingsError(
            f"{name}={text!r} is not {what}; set one such as {default}, or unset it to use {default}."
        ) from None
    if (low is not None and value < low) or (high is not None and value > high):
        allowed = (
            f"{low} to {high}"
            if low is not None and high is not None
            else f"at least {low}"
            if low is not None
            else f"at most {high}"
        )
        hint = f" ({meaning})" if meaning else ""
        raise SettingsError(
            f"{name}={value} is out of range; use {allowed}{hint}, or unset it for {default}."
        )
    return value


def int_setting(
    name: str,
    default: int,
    environ: Mapping[str, str] | None = None,
    *,
    low: int | None = None,
    high: int | None = None,
    meaning: str = "",
) -> int:
    """The whole number in setting `name` (default when unset or blank), within [low, high].

    Raises:
        SettingsError: not a whole number, or out of range; the message names the setting and the fix.
    """
    return _number(name, default, environ, int, "a whole number", low, high, meaning)


def float_setting(
    name: str,
    default: float,
    environ: Mapping[str, str] | None = None,
    *,
    low: float | None = None,
    high: float | None = None,
    meaning: str = "",
) -> float:
    """The number in setting `name` (seconds, say; default when unset or blank), within [low, high].

    Raises:
        SettingsError: not a number, or out of range; the message names the setting and the fix.
    """
    return _number(name, default, environ, float, "a number", low, high, meaning)


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def bool_setting(
    name: str, default: bool, environ: Mapping[str, str] | None = None, *, meaning: str = ""
) -> bool:
    """The yes/no setting `name`: 1/true/yes/on or 0/false/no/off (default when unset or blank).

    Raises:
        SettingsError: any other value; the message names the setting and the values it takes.
    """
    text = _text(name, environ).lower()
    if not text:
        return default
    if text not in _TRUE + _FALSE:
        hint = f" ({meaning})" if meaning else ""
        raise SettingsError(
            f"{name}={text!r} is not valid; use 1 or 0{hint}, or unset it for {int(default)}."
        )
    return text in _TRUE


def _resolve(path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else (PROJECT_ROOT / p)


@dataclass(frozen=True)
class Settings:
    warehouse_path: Path
    serving_path: Path
    history_start: date
    nightly_timezone: str
    nightly_cron: str
    nightly_schedule_running: bool
    # The marketer's HTML report (orchestration/report); None: report.html beside the snapshot.
    report_path: Path | None = None

    def __post_init__(self) -> None:
        if self.report_path is None:
            object.__setattr__(self, "report_path", self.serving_path.with_name("report.html"))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        start_text = env.get("HISTORY_START_DATE") or DEFAULT_HISTORY_START
        try:
            history_start = date.fromisoformat(start_text)
        except ValueError as exc:
            raise SettingsError(
                f"HISTORY_START_DATE={start_text!r} is not a date; use the ISO form YYYY-MM-DD, "
                f"for example {DEFAULT_HISTORY_START}."
            ) from exc
        tz = env.get("NIGHTLY_TIMEZONE") or "UTC"
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(
                f"NIGHTLY_TIMEZONE={tz!r} is not an IANA time zone; use a name such as "
                "'UTC', 'Europe/Berlin' or 'America/New_York'."
            ) from exc
        status = (env.get("NIGHTLY_SCHEDULE_STATUS") or "running").strip().lower()
        if status not in ("running", "stopped"):
            raise SettingsError(
                f"NIGHTLY_SCHEDULE_STATUS={status!r} is not valid; use 'running' or 'stopped'."
            )
        return cls(
            warehouse_path=_resolve(env.get("WAREHOUSE_PATH") or "data/warehouse.duckdb"),
            serving_path=_resolve(env.get("SERVING_PATH") or "data/serving/marts.duckdb"),
            history_start=history_start,
            nightly_timezone=tz,
            nightly_cron=env.get("NIGHTLY_CRON") or "0 2 * * *",
            nightly_schedule_running=status == "running",
            report_path=_resolve(env["REPORT_PATH"]) if env.get("REPORT_PATH") else None,
        )


if __name__ == "__main__":
    # `python -m orchestration.settings warehouse_path`: the warehouse path as a run will see it
    # (the environment, then `.env`). `make prepare` parses dbt with it: dbt's parse state is keyed
    # on the rendered profile, so a path set only in `.env` made every build re-parse the project.
    import sys

    from orchestration.commands import load_dotenv

    if sys.argv[1:] != ["warehouse_path"]:
        sys.exit("usage: python -m orchestration.settings warehouse_path")
    load_dotenv()
    print(_resolve(os.environ.get("WAREHOUSE_PATH") or "data/warehouse.duckdb"))
