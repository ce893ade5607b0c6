"""Derive the facts the contract tests need from the published API contracts, into tests/contracts/.

    python scripts/derive_contracts.py /path/to/contracts [--out tests/contracts]

The published contracts (Google discovery documents, Meta's object specs, the Slack, Discourse and
Discord OpenAPI documents) stay outside the repository. This script keeps, for each API, only what
the tests check the sandbox against: paths, field and property names, types, formats, required
fields, enums, patterns and the references between schemas. Descriptions, titles, examples of
prose and vendor extensions are dropped. Each derived file is a projection of its source: it keeps
the source's own layout (so `schemas.RunReportResponse...` or `paths./latest.json...` reads the
same in both), and deriving again from a derived file gives the same file (tests check this).

Each file carries a `source` note: the repository and path it was derived from, the revision, the
licence and the SHA-256 of the file(s) read. Run it again when the published files change; the
output is deterministic (sorted keys, two-space indent).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "tests" / "contracts"

# JSON Schema keywords that only annotate (they never make an instance valid or invalid), and the
# OpenAPI additions of the same kind: dropped from every schema kept.
ANNOTATIONS = frozenset(
    {
        "description",
        "title",
        "example",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$comment",
        "externalDocs",
        "discriminator",
        "xml",
    }
)
# Keywords whose value is a map of names to schemas (the names are data, not keywords).
SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
# Keywords whose value is a schema or a list of schemas.
SCHEMA_VALUES = frozenset(
    {
        "items",
        "prefixItems",
        "additionalProperties",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "propertyNames",
        "unevaluatedProperties",
        "unevaluatedItems",
    }
)
# Google discovery schema keys the tests' discovery -> JSON Schema converter reads.
DISCOVERY_KEYS = ("type", "$ref", "properties", "items", "additionalProperties", "enum", "format")


@dataclass(frozen=True)
class Source:
    """Where a derived file comes from (the contracts README's table) and how it is derived."""

    path: str  # inside the contracts folder; "meta/*.json" for Meta's one file per object
    repository: str
    repository_path: str
    licence: str
    derive: Callable[[object], dict]
    revision: Callable[[dict], str]


class ContractError(Exception):
    """A published file is missing or no longer has what the tests need."""


# --- projections ------------------------------------------------------------------------------------


def json_schema_facts(schema: object) -> object:
    """A JSON Schema (OpenAPI 3.1 / draft 2020-12) without its annotations, validation unchanged."""
    if isinstance(schema, list):
        return [json_schema_facts(s) for s in schema]
    if not isinstance(schema, dict):
        return schema  # `true` / `false` schemas
    out: dict = {}
    for key, value in schema.items():
        if key in ANNOTATIONS or key.startswith("x-"):
            continue
        if key in SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: json_schema_facts(s) for name, s in value.items()}
        elif key in SCHEMA_VALUES:
            out[key] = json_schema_facts(value)
        else:
            out[key] = value
    return out


def refs_in(node: object) -> set[str]:
    """Every `$ref` value anywhere in `node`."""
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref)
        for value in node.values():
            found |= refs_in(value)
    elif isinstance(node, list):
        for value in node:
            found |= refs_in(value)
    return found


COMPONENT = "#/components/schemas/"


def component_refs(node: object) -> set[str]:
    """Names of the component schemas `node` refers to; any other kind of reference is an error, as
    the derived file would not resolve it."""
    refs = refs_in(node)
    others = sorted(r for r in refs if not r.startswith(COMPONENT))
    if others:
        raise ContractError(f"OpenAPI document: references outside {COMPONENT}: {others}")
    return {r[len(COMPONENT) :] for r in refs}


def reachable(roots: Iterable[str], refs_of: Callable[[str], set[str]]) -> list[str]:
    """Every name reachable from `roots` through `refs_of`, sorted."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += refs_of(name) - seen
    return sorted(seen)


def _require(doc: dict, *keys: str, what: str) -> object:
    node: object = doc
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            raise ContractError(f"{what}: no {'.'.join(keys)} (stopped at {key!r})")
        node = node[key]
    return node


def discovery_facts(roots: tuple[str, ...]) -> Callable[[object], dict]:
    """A Google discovery document cut to the schemas reachable from `roots`."""

    def derive(doc: object) -> dict:
        assert isinstance(doc, dict)
        schemas = _require(doc, "schemas", what="discovery document")

        def keep(s: dict) -> dict:
            out = {}
            for key in DISCOVERY_KEYS:
                if key not in s:
                    continue
                value = s[key]
                if key == "properties":
                    value = {name: keep(p) for name, p in value.items()}
                elif key in ("items", "additionalProperties") and isinstance(value, dict):
                    value = keep(value)
                out[key] = value
            return out

        def refs_of(name: str) -> set[str]:
            if name not in schemas:
                raise ContractError(f"discovery document: no schema {name!r}")
            return refs_in(keep(schemas[name]))

        return {
            "name": doc.get("name"),
            "version": doc.get("version"),
            "revision": doc.get("revision"),
            "schemas": {name: keep(schemas[name]) for name in reachable(roots, refs_of)},
        }

    return derive


def openapi_facts(paths: tuple[str, ...], extra_schemas: tuple[str, ...] = ()) -> Callable[[object], dict]:
    """An OpenAPI 3.1 document cut to the 200 JSON answer of GET `paths`, and the component schemas
    those (and `extra_schemas`) refer to."""

    def derive(doc: object) -> dict:
        assert isinstance(doc, dict)
        kept_paths = {}
        for path in paths:
            schema = _require(
                doc,
                "paths",
                path,
                "get",
                "responses",
                "200",
                "content",
                "application/json",
                "schema",
                what="OpenAPI document",
            )
            answer = {"content": {"application/json": {"schema": json_schema_facts(schema)}}}
            kept_paths[path] = {"get": {"responses": {"200": answer}}}
        components = doc.get("components", {}).get("schemas", {})

        def refs_of(name: str) -> set[str]:
            if name not in components:
                raise ContractError(f"OpenAPI document: no components.schemas.{name}")
            return component_refs(components[name])

        roots = component_refs(kept_paths) | set(extra_schemas)
        return {
            "openapi": doc.get("openapi"),
            "info": {"version": _require(doc, "info", "version", what="OpenAPI document")},
            "paths": kept_paths,
            "components": {
                "schemas": {name: json_schema_facts(components[name]) for name in reachable(roots, refs_of)}
            },
        }

    return derive


SLACK_METHODS = ("conversations.list", "conversations.history", "conversations.replies", "users.list")
SLACK_PATTERNS = ("defs_ts", "defs_user_id", "defs_team", "defs_channel", "defs_bot_id")
SLACK_OBJECTS = ("objs_message", "objs_reaction", "objs_conversation", "objs_user_profile", "objs_user")


def slack_facts(doc: object) -> dict:
    """The Slack Web API (Swagger 2.0, 2020): required keys of the four methods' answers and of the
    objects they hold, the id patterns, and the keys of the documented error answer."""
    assert isinstance(doc, dict)
    definitions = _require(doc, "definitions", what="Slack OpenAPI document")

    def required_only(d: dict) -> dict:
        # objs_conversation and objs_user are `items: [variant, ...]`; the tests read the first
        if isinstance(d.get("items"), list):
            return {"items": [required_only(v) for v in d["items"]]}
        return {"required": d["required"]} if "required" in d else {}

    paths = {}
    for method in SLACK_METHODS:
        responses = _require(doc, "paths", f"/{method}", "get", "responses", what="Slack OpenAPI document")
        kept = {"200": {"schema": required_only(_require(responses, "200", "schema", what=method))}}
        if method == "conversations.history":
            example = _require(responses, "default", "examples", "application/json", what=method)
            kept["default"] = {"examples": {"application/json": example}}
        paths[f"/{method}"] = {"get": {"responses": kept}}
    kept_definitions = {}
    for name in SLACK_PATTERNS:
        d = _require(definitions, name, what="Slack definitions")
        kept_definitions[name] = {"type": d.get("type"), "pattern": d["pattern"]}
    for name in SLACK_OBJECTS:
        kept_definitions[name] = required_only(_require(definitions, name, what="Slack definitions"))
    return {
        "swagger": doc.get("swagger"),
        "info": {"version": _require(doc, "info", "version", what="Slack OpenAPI document")},
        "paths": paths,
        "definitions": kept_definitions,
    }


def meta_facts(specs: object) -> dict:
    """Meta's object specs: each object's field names and types, and the parameters of AdAccount's
    `insights` edge. `specs`: {object name: spec} (enum_types.json is not read)."""
    assert isinstance(specs, dict)
    objects = {}
    for name, spec in sorted(specs.items()):
        fields = _require(spec, "fields", what=f"Meta {name}.json")
        kept: dict = {"fields": [{"name": f["name"], "type": f["type"]} for f in fields]}
        if name == "AdAccount":
            apis = _require(spec, "apis", what="Meta AdAccount.json")
            edges = [a for a in apis if a.get("endpoint") == "insights"]
            if not edges:
                raise ContractError("Meta AdAccount.json: no `insights` edge in apis")
            kept["apis"] = [
                {
                    "endpoint": a["endpoint"],
                    "method": a.get("method"),
                    "params": [{"name": p["name"], "type": p.get("type")} for p in a.get("params", [])],
                }
                for a in edges
            ]
        objects[name] = kept
    return {"objects": objects}


# --- the published files ----------------------------------------------------------------------------


SOURCES: dict[str, Source] = {
    "ga4": Source(
        path="google/analyticsdata__v1beta.json",
        repository="google/googleapis.dart",
        repository_path="discovery/googleapis_beta/analyticsdata__v1beta.json",
        licence="BSD-3-Clause",
        derive=discovery_facts(("RunReportRequest", "RunReportResponse", "Status")),
        revision=lambda d: str(d["revision"]),
    ),
    "gsc": Source(
        path="google/searchconsole__v1.json",
        repository="google/googleapis.dart",
        repository_path="discovery/googleapis/searchconsole__v1.json",
        licence="BSD-3-Clause",
        derive=discovery_facts(("SearchAnalyticsQueryRequest", "SearchAnalyticsQueryResponse")),
        revision=lambda d: str(d["revision"]),
    ),
    "meta": Source(
        path="meta/*.json",
        repository="facebook/facebook-business-sdk-codegen",
        repository_path="api_specs/specs/",
        licence="Meta Platform licence: use in connection with Meta's APIs",
        derive=meta_facts,
        revision=lambda d: "Graph API v25.0",
    ),
    "slack": Source(
        path="slack/slack_web_openapi_v2.json",
        repository="slackapi/slack-api-specs",
        repository_path="web-api/slack_web_openapi_v2.json",
        licence="MIT",
        derive=slack_facts,
        revision=lambda d: f"info.version {d['info']['version']}",
    ),
    "discourse": Source(
        path="discourse/openapi.json",
        repository="discourse/discourse_api_docs",
        repository_path="openapi.json",
        licence="MIT",
        derive=openapi_facts(
            (
                "/categories.json",
                "/latest.json",
                "/t/{id}.json",
                "/t/{id}/posts.json",
                "/posts.json",
                "/posts/{id}.json",
                "/admin/users/list/{flag}.json",
                "/user_actions.json",
            )
        ),
        revision=lambda d: f"info.version {d['info']['version']}",
    ),
    "discord": Source(
        path="discord/openapi.json",
        repository="discord/discord-api-spec",
        repository_path="specs/openapi.json",
        licence="MIT",
        derive=openapi_facts(("/channels/{channel_id}/messages",), extra_schemas=("RatelimitedResponse",)),
        revision=lambda d: f"info.version {d['info']['version']}",
    ),
}
# Meta object specs the tests read (enum_types.json, the largest, is not needed).
META_OBJECTS = (
    "Ad",
    "AdAccount",
    "AdAsyncRequest",
    "AdReportRun",
    "AdSet",
    "AdsActionStats",
    "AdsHistogramStats",
    "AdsInsights",
    "AdsPixel",
    "AdsPixelStats",
    "AdsPixelStatsResult",
    "Campaign",
)


def read_source(contracts: Path, source: Source) -> tuple[object, dict[str, str]]:
    """The published document(s) of `source` and the SHA-256 of each file read."""
    names = [f"meta/{n}.json" for n in META_OBJECTS] if source.path == "meta/*.json" else [source.path]
    loaded, digests = {}, {}
    for name in names:
        path = contracts / name
        if not path.is_file():
            raise ContractError(f"{path} not found: give the folder of the published contracts")
        raw = path.read_bytes()
        digests[name] = hashlib.sha256(raw).hexdigest()
        try:
            loaded[Path(name).stem] = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ContractError(f"{path} is not JSON: {exc}") from None
    document = loaded if source.path == "meta/*.json" else loaded[Path(source.path).stem]
    return document, digests


def derive(contracts: Path) -> dict[str, dict]:
    """{api name: derived document with its `source` note} for every API in SOURCES."""
    out = {}
    for api, source in SOURCES.items():
        document, digests = read_source(contracts, source)
        facts = source.derive(document)
        facts["source"] = {
            "repository": source.repository,
            "path": source.repository_path,
            "revision": source.revision(facts),
            "licence": source.licence,
            "sha256": digests,
            "derived_by": "scripts/derive_contracts.py",
            "kept": "facts only: paths, names, types, formats, required fields, enums, patterns",
        }
        out[api] = facts
    return out


def render(document: dict) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("contracts", type=Path, help="the published contracts' folder (google/, meta/, ...)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    args = parser.parse_args(argv)
    if not args.contracts.is_dir():
        parser.error(f"{args.contracts} is not a folder: give the folder of the published contracts")
    try:
        documents = derive(args.contracts)
    except ContractError as exc:
        print(f"derive_contracts: {exc}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for api, document in documents.items():
        target = args.out / f"{api}.json"
        text = render(document)
        target.write_text(text)
        note = document["source"]
        print(f"{target}: {len(text):,} bytes from {note['repository']}/{note['path']} ({note['revision']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
