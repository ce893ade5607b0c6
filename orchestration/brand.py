"""The brand's own settings: one YAML file a user edits, read, validated and handed to dbt.

Which file (`brand_file`): while every loaded source is the sandbox (the demo), the sandbox's own
brand, connectors/sandbox/brand.yml; as soon as one source is real, BRAND_FILE (default brand.yml
at the repository root; brand.example.yml documents every key). With real sources nothing of the
sandbox's brand applies: a missing file means every brand setting is unset.

How it reaches dbt: as JSON in the dbt process's environment variable DBT_BRAND_VARS (`dbt_vars`),
under the var names the models read through macros/brand_var.sql (dbt_project.yml lists them,
empty by default). Not as `--vars`: the command line is logged (Dagster's event log, dbt's logs),
and staff ids and e-mail domains must not be. Vars rather than seeds or tables: the
lists are small, dbt reads them when compiling, and a changed var rebuilds the incremental facts
that depend on it (rules_fingerprint). dbt re-parses the project when DBT_BRAND_VARS differs from
the last parse's, once: orchestration/dbt/assets.py keeps the new parse state for the next build.

An unset setting is not an error: the figures that need it are null in the marts, and `warnings`
says which (one line per setting, naming it). A malformed file is an error naming the file, the key
and the fix (BrandError).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestration.settings import PROJECT_ROOT, SettingsError

SANDBOX_BRAND_FILE = PROJECT_ROOT / "connectors" / "sandbox" / "brand.yml"
DEFAULT_BRAND_FILE = "brand.yml"
# The environment variable of the dbt process that holds `Brand.dbt_vars()` as JSON.
BRAND_VARS_ENV = "DBT_BRAND_VARS"
PLATFORMS = ("slack", "discourse", "discord")
PLATFORM_TITLES = {"slack": "Slack", "discourse": "Discourse", "discord": "Discord"}

# Every key the file may hold, by section: an unknown key is a typo, and a typo must not silently
# leave a setting unset.
KEYS = {
    "brand": ("name", "terms", "patterns", "domains", "community_domains"),
    "staff": ("email_domains", "ids"),
    "communities": ("names", "partners", "space_interests", "discord_channels"),
}


class BrandError(SettingsError):
    """The brand file is malformed; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class Brand:
    """The brand's settings as the file gives them; empty means unset."""

    path: Path
    found: bool
    name: str = ""
    terms: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    community_domains: tuple[str, ...] = ()
    email_domains: tuple[str, ...] = ()
    staff_ids: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    community_names: Mapping[str, str] = field(default_factory=dict)
    partners: Mapping[str, str] = field(default_factory=dict)
    space_interests: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    discord_channels: Mapping[str, tuple[str, bool]] = field(default_factory=dict)

    def warnings(self) -> list[str]:
        """One line per unset setting that leaves a figure null (or a label generic), naming it."""
        where = self.path.name
        lines = []
        if not self.found:
            lines.append(
                f"{where}: not found at {self.path}; every brand setting is unset. Copy brand.example.yml "
                "to brand.yml (or set BRAND_FILE) and fill it in"
            )
        if not self.terms and not self.patterns:
            lines.append(
                f"{where}: brand.terms is not set; branded search figures are null "
                "(branded clicks, branded share, campaign halo)"
            )
        if not self.domains:
            lines.append(f"{where}: brand.domains is not set; brand links in community posts are null")
        if not self.email_domains and not any(self.staff_ids.values()):
            lines.append(
                f"{where}: staff.email_domains and staff.ids are not set; staff are recognised only by "
                "their platform's admin/owner/moderator flags, so other staff may rank as advocates"
            )
        for platform in PLATFORMS:
            if not self.community_names.get(platform):
                lines.append(
                    f"{where}: communities.names.{platform} is not set; the {PLATFORM_TITLES[platform]} "
                    f"community is called '{PLATFORM_TITLES[platform]}'"
                )
        return lines

    def dbt_vars(self) -> dict[str, Any]:
        """The dbt vars of dbt_project.yml that hold the brand, filled from this file."""
        return {
            "brand_name": self.name,
            "brand_terms": list(self.terms),
            "brand_patterns": list(self.patterns),
            "brand_domains": list(self.domains),
            "community_domains": list(self.community_domains),
            "employee_email_domains": list(self.email_domains),
            "staff_ids": {p: list(ids) for p, ids in self.staff_ids.items() if ids},
            "community_names": dict(self.community_names),
            "partner_communities": [
                {"match_value": match, "partner_community": name} for match, name in self.partners.items()
            ],
            "space_interests": [
                {"platform": p, "space_name": space, "interest": interest}
                for p, spaces in self.space_interests.items()
                for space, interest in spaces.items()
            ],
            "discord_channels": [
                {"channel_id": cid, "channel_name": name, "is_private": private}
                for cid, (name, private) in self.discord_channels.items()
            ],
        }


def brand_file(sandbox_only: bool, environ: Mapping[str, str] | None = None) -> Path:
    """The brand file that applies: the sandbox's while only the sandbox loads, else BRAND_FILE."""
    if sandbox_only:
        return SANDBOX_BRAND_FILE
    env = os.environ if environ is None else environ
    text = (env.get("BRAND_FILE") or "").strip() or DEFAULT_BRAND_FILE
    path = Path(text).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def current_brand(environ: Mapping[str, str] | None = None) -> Brand:
    """The brand file that applies now, read and validated: the sandbox's while every loaded source
    is the sandbox (orchestration/sources.py), else BRAND_FILE's.

    Raises:
        BrandError: the file is malformed (names the file, the key and the fix).
    """
    from orchestration.sources import SANDBOX, source_plan  # imports Dagster: only when asked

    try:
        plans = source_plan(environ)
    except SettingsError:  # the refresh reports a malformed source setting itself
        plans = {}
    loaded = [p for p in plans.values() if p.loaded]
    sandbox_only = bool(loaded) and all(p.mode == SANDBOX for p in loaded)
    return load_brand(brand_file(sandbox_only, environ))


def _fail(path: Path, key: str, problem: str, fix: str) -> BrandError:
    return BrandError(f"{path}: {key} {problem}; {fix}")


def _text(path: Path, key: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail(path, key, f"is {type(value).__name__} {value!r}", "write it as text, e.g. `name: Acme`")
    return str(value).strip()


def _texts(path: Path, key: str, value: Any, example: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _fail(
            path, key, f"is {type(value).__name__} {value!r}, not a list", f"write a list, e.g. `{example}`"
        )
    items = tuple(_text(path, f"{key}[{i}]", v) for i, v in enumerate(value))
    return tuple(item for item in items if item)


def _mapping(path: Path, key: str, value: Any, example: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(
            path, key, f"is {type(value).__name__} {value!r}, not a mapping", f"write e.g. `{example}`"
        )
    return value


def _by_platform(path: Path, key: str, value: Any, example: str) -> dict:
    mapping = _mapping(path, key, value, example)
    unknown = [p for p in mapping if p not in PLATFORMS]
    if unknown:
        raise _fail(path, f"{key}.{unknown[0]}", "is not a platform", f"use {', '.join(PLATFORMS)}")
    return mapping


def _domains(path: Path, key: str, value: Any) -> tuple[str, ...]:
    domains = _texts(path, key, value, f"{key.split('.')[-1]}: [example.com]")
    for i, domain in enumerate(domains):
        if "@" in domain or "/" in domain or " " in domain or "." not in domain:
            raise _fail(
                path,
                f"{key}[{i}]",
                f"is {domain!r}, not a host name",
                "write the bare domain, e.g. example.com",
            )
    return tuple(d.lower() for d in domains)


def load_brand(path: Path) -> Brand:
    """Read and validate the brand file at `path`; a missing file gives a Brand with nothing set.

    Raises:
        BrandError: the file is not YAML, or a key is unknown or of the wrong shape (names the
            file, the key and the fix).
    """
    if not path.is_file():
        return Brand(path=path, found=False)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise BrandError(
            f"{path}: not valid YAML{where} ({getattr(exc, 'problem', None) or exc}); fix the file's "
            "syntax (brand.example.yml shows every key)"
        ) from None
    data = _mapping(path, "the file", data, "brand: {name: Acme}")
    for section, value in data.items():
        if section not in KEYS:
            raise _fail(
                path, str(section), "is not a section", f"use {', '.join(KEYS)} (see brand.example.yml)"
            )
        for key in _mapping(path, section, value, f"{section}: {{{KEYS[section][0]}: ...}}"):
            if key not in KEYS[section]:
                raise _fail(
                    path,
                    f"{section}.{key}",
                    "is not a key",
                    f"use one of {', '.join(KEYS[section])} (see brand.example.yml)",
                )
    brand = data.get("brand") or {}
    staff = data.get("staff") or {}
    communities = data.get("communities") or {}

    patterns = _texts(path, "brand.patterns", brand.get("patterns"), "patterns: ['acm[e3]']")
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise _fail(
                path,
                f"brand.patterns[{i}]",
                f"is {pattern!r}, not a regular expression ({exc})",
                "fix or remove it",
            ) from None

    staff_ids = {
        platform: _texts(path, f"staff.ids.{platform}", ids, f"{platform}: [U012AB3CD]")
        for platform, ids in _by_platform(
            path, "staff.ids", staff.get("ids"), "ids: {slack: [U012AB3CD]}"
        ).items()
    }
    names = {
        platform: _text(path, f"communities.names.{platform}", name)
        for platform, name in _by_platform(
            path, "communities.names", communities.get("names"), "names: {slack: Acme Community}"
        ).items()
    }
    partners = {
        _text(path, "communities.partners", match).lower(): _text(path, f"communities.partners.{match}", name)
        for match, name in _mapping(
            path,
            "communities.partners",
            communities.get("partners"),
            "partners: {dbt-community-slack: dbt Community}",
        ).items()
    }
    space_interests = {}
    for platform, spaces in _by_platform(
        path,
        "communities.space_interests",
        communities.get("space_interests"),
        "space_interests: {slack: {general: general}}",
    ).items():
        key = f"communities.space_interests.{platform}"
        space_interests[platform] = {
            _text(path, key, space): _text(path, f"{key}.{space}", interest)
            for space, interest in _mapping(path, key, spaces, f"{platform}: {{ai-and-llms: ai}}").items()
        }
    channels = {}
    for cid, spec in _mapping(
        path,
        "communities.discord_channels",
        communities.get("discord_channels"),
        "discord_channels: {'1261000000000000001': {name: general}}",
    ).items():
        key = f"communities.discord_channels.{cid}"
        if not str(cid).isdigit():
            raise _fail(
                path,
                key,
                "is not a channel id",
                "use the channel's id (digits; Discord's Copy Channel ID), quoted",
            )
        spec = _mapping(path, key, spec, f"'{cid}': {{name: general, private: false}}")
        unknown = [k for k in spec if k not in ("name", "private")]
        if unknown:
            raise _fail(path, f"{key}.{unknown[0]}", "is not a key", "use name and private")
        private = spec.get("private", False)
        if not isinstance(private, bool):
            raise _fail(path, f"{key}.private", f"is {private!r}", "write true or false")
        name = _text(path, f"{key}.name", spec.get("name"))
        if not name:
            raise _fail(path, f"{key}.name", "is not set", "give the channel's name without #")
        channels[str(cid)] = (name, private)

    return Brand(
        path=path,
        found=True,
        name=_text(path, "brand.name", brand.get("name")),
        terms=tuple(
            t.lower() for t in _texts(path, "brand.terms", brand.get("terms"), "terms: [acme, acme cloud]")
        ),
        patterns=patterns,
        domains=_domains(path, "brand.domains", brand.get("domains")),
        community_domains=_domains(path, "brand.community_domains", brand.get("community_domains")),
        email_domains=_domains(path, "staff.email_domains", staff.get("email_domains")),
        staff_ids=staff_ids,
        community_names={p: n for p, n in names.items() if n},
        partners={m: n for m, n in partners.items() if m and n},
        space_interests=space_interests,
        discord_channels=channels,
    )


if __name__ == "__main__":
    # `python -m orchestration.brand`: the dbt vars of the brand that applies now, as JSON (`make
    # prepare` parses the project with them, so the first build does not re-parse it). `.env` first:
    # its credentials decide which brand applies, as they do for the run.
    from orchestration.commands import load_dotenv

    load_dotenv()
    try:
        print(json.dumps(current_brand().dbt_vars()))
    except BrandError as exc:
        sys.exit(str(exc))
