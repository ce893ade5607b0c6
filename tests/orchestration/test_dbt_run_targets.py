"""After every dbt build: its parse state is kept for the next build, and dbt's per-run target folders
are pruned to the newest KEEP_RUN_TARGETS."""

from __future__ import annotations

import os
from pathlib import Path

from orchestration.dbt.assets import KEEP_RUN_TARGETS, keep_partial_parse, prune_run_targets


def _run_folder(target: Path, name: str, mtime: float) -> Path:
    folder = target / name
    (folder / "compiled").mkdir(parents=True)
    (folder / "run_results.json").write_text("{}")
    os.utime(folder, (mtime, mtime))
    return folder


def test_keeps_the_newest_run_folders_and_everything_else(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "manifest.json").write_text("{}")
    (target / "partial_parse.msgpack").write_bytes(b"\x00")
    (target / "compiled").mkdir()  # dbt's own folder from `dbt parse` / `dbt compile`
    other = _run_folder(target, "other_op-1234567-abcdefg", 1.0)  # not this asset's folders
    folders = [_run_folder(target, f"dbt_models-{i:07d}-abcdefg", 1_000_000.0 + i) for i in range(13)]

    removed = prune_run_targets(target)

    assert removed == [folders[2], folders[1], folders[0]]
    kept = sorted(p.name for p in target.glob("dbt_models-*"))
    assert kept == [f.name for f in folders[3:]] and len(kept) == KEEP_RUN_TARGETS == 10
    assert other.exists() and (target / "compiled").is_dir()
    assert (target / "manifest.json").exists() and (target / "partial_parse.msgpack").exists()


def test_nothing_to_prune(tmp_path: Path) -> None:
    folders = [_run_folder(tmp_path, f"dbt_models-{i:07d}-x", 100.0 + i) for i in range(3)]
    assert prune_run_targets(tmp_path, keep=3) == []
    assert prune_run_targets(tmp_path, keep=1) == [folders[1], folders[0]]
    assert [p.name for p in tmp_path.iterdir()] == [folders[2].name]


def test_the_parse_state_of_the_last_build_is_kept_for_the_next(tmp_path: Path) -> None:
    target = tmp_path / "target"
    run = _run_folder(target, "dbt_models-0000001-abcdefg", 1.0)
    kept = target / "partial_parse.msgpack"
    kept.write_bytes(b"parsed by make prepare, another profile")

    assert keep_partial_parse(run, target) is False  # the run wrote none (dbt failed before parsing)
    assert kept.read_bytes() == b"parsed by make prepare, another profile"

    (run / "partial_parse.msgpack").write_bytes(b"parsed by the build")
    assert keep_partial_parse(run, target) is True
    assert kept.read_bytes() == b"parsed by the build"
    assert keep_partial_parse(run, target) is False  # same bytes: nothing to do
    assert sorted(p.name for p in target.iterdir()) == ["dbt_models-0000001-abcdefg", "partial_parse.msgpack"]

    kept.unlink()  # `make clean` then a build: the file is created
    assert keep_partial_parse(run, target) is True and kept.read_bytes() == b"parsed by the build"
