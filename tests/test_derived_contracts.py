"""tests/contracts/ is what scripts/derive_contracts.py makes, and says where it comes from.

The published contracts are not in the repository, so the derivation is checked on what is: each
derived file is a projection of its source that keeps the source's layout, so a folder laid out
like the published one but holding the derived files must derive to the same files again (a hand
edit that the script would not produce, a description left in, a schema no test reaches, an
unsorted key, fails here). The script runs as a user runs it, in a subprocess.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "scripts" / "derive_contracts.py"
CONTRACTS = REPO_ROOT / "tests" / "contracts"
APIS = ("ga4", "gsc", "meta", "slack", "discourse", "discord")
# keys whose values are maps of names (a property may be called "description"), not of keywords
NAME_MAPS = ("properties", "schemas", "paths", "definitions", "objects")


@functools.cache
def _script():
    """scripts/derive_contracts.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("derive_contracts", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def derived() -> dict[str, dict]:
    return {api: json.loads((CONTRACTS / f"{api}.json").read_text()) for api in APIS}


def _published_layout(derived: dict[str, dict], sources, folder: Path) -> None:
    """Write the derived files where the published ones would be (without their source notes)."""
    for api, document in derived.items():
        facts = {k: v for k, v in document.items() if k != "source"}
        if api == "meta":
            for name, spec in facts["objects"].items():
                (folder / "meta").mkdir(parents=True, exist_ok=True)
                (folder / "meta" / f"{name}.json").write_text(json.dumps(spec))
        else:
            target = folder / sources[api].path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(facts))


def test_there_is_one_derived_file_per_api_and_nothing_else():
    assert sorted(p.name for p in CONTRACTS.iterdir()) == sorted(f"{api}.json" for api in APIS)
    assert sorted(_script().SOURCES) == sorted(APIS)


def test_every_derived_file_names_its_source_revision_and_licence(derived):
    sources = _script().SOURCES
    for api, document in derived.items():
        note = document["source"]
        assert note["repository"] == sources[api].repository, api
        assert note["path"] == sources[api].repository_path, api
        assert note["licence"] == sources[api].licence and note["licence"], api
        assert note["revision"] == sources[api].revision(document), api
        assert note["derived_by"] == "scripts/derive_contracts.py"
        assert note["sha256"] and all(len(d) == 64 and int(d, 16) >= 0 for d in note["sha256"].values())
    assert derived["ga4"]["source"]["revision"] == "20241117"
    assert derived["gsc"]["source"]["revision"] == "20250714"
    assert derived["slack"]["source"]["licence"] == "MIT"
    assert derived["ga4"]["source"]["licence"] == "BSD-3-Clause"


def test_derived_files_keep_no_prose(derived):
    def walk(node, in_map: bool, where: str):
        if isinstance(node, dict):
            for key, value in node.items():
                if not in_map:
                    assert key not in ("description", "title", "summary", "example"), f"{where}.{key}"
                    assert not key.startswith("x-"), f"{where}.{key}"
                walk(value, key in NAME_MAPS, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, False, f"{where}[{i}]")

    for api, document in derived.items():
        walk({k: v for k, v in document.items() if k != "source"}, False, api)


def test_the_script_derives_the_committed_files_again_from_them(tmp_path, derived):
    sources = _script().SOURCES
    published = tmp_path / "contracts"
    _published_layout(derived, sources, published)
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, str(SCRIPT), str(published), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    for api in APIS:
        committed = (CONTRACTS / f"{api}.json").read_text()
        again = json.loads((out / f"{api}.json").read_text())
        # the files read here are other bytes than the published ones: only their digests differ
        assert set(again["source"].pop("sha256")) == set(derived[api]["source"]["sha256"]), api
        expected = json.loads(committed)
        expected["source"].pop("sha256")
        assert again == expected, api
        # and the committed text is the script's rendering (sorted keys, two-space indent)
        assert committed == _script().render(derived[api]), api


def test_the_projection_drops_annotations_but_keeps_property_names_and_validation():
    script = _script()
    schema = {
        "type": "object",
        "description": "prose",
        "x-vendor": 1,
        "required": ["title"],
        "properties": {
            "title": {"type": "string", "title": "Title", "example": "x", "enum": ["a", "b"]},
            "description": {"type": ["string", "null"], "default": None},
        },
        "items": [{"$ref": "#/components/schemas/Thing", "description": "d"}],
    }
    assert script.json_schema_facts(schema) == {
        "type": "object",
        "required": ["title"],
        "properties": {
            "title": {"type": "string", "enum": ["a", "b"]},
            "description": {"type": ["string", "null"]},
        },
        "items": [{"$ref": "#/components/schemas/Thing"}],
    }
    assert script.component_refs(schema) == {"Thing"}
    with pytest.raises(script.ContractError, match="#/components/headers/X"):
        script.component_refs({"$ref": "#/components/headers/X"})


def test_a_missing_or_wrong_folder_fails_naming_the_file(tmp_path):
    run = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2 and "is not a folder" in run.stderr
    (tmp_path / "google").mkdir()
    out = tmp_path / "out"
    command = [sys.executable, str(SCRIPT), str(tmp_path), "--out", str(out)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "google/analyticsdata__v1beta.json not found" in run.stderr
    assert not out.exists()  # nothing half-written
