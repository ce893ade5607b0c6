"""The marketer's report: every mart's answer as a chart on one HTML page that opens from disk.

Built from the serving snapshot alone (read-only), by the `serving/report` asset after each
publish and by `make report` (`python -m orchestration.report`) at any time. data.py reads the
figures, charts.py draws them, page.py lays out the page.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from orchestration.report.data import ReportData, SnapshotMissing, read_snapshot
from orchestration.report.page import render

__all__ = ["Report", "SnapshotMissing", "build_report"]


@dataclass
class Report:
    path: Path
    data: ReportData
    sections_not_loaded: list[str]


def build_report(serving_path: Path, report_path: Path) -> Report:
    """Read the snapshot at `serving_path` and write the page to `report_path`, whole or not at all."""
    data = read_snapshot(serving_path)
    html = render(data)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = report_path.with_name(f".{report_path.name}.{os.getpid()}.tmp")
    try:
        tmp_path.write_text(html, encoding="utf-8")
        os.replace(tmp_path, report_path)
    finally:
        tmp_path.unlink(missing_ok=True)
    return Report(path=report_path, data=data, sections_not_loaded=data.empty_marts())
