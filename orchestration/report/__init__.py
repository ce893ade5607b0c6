"""The marketer's report: every mart's answer as a chart on one HTML page that opens from disk.

Built from the serving snapshot alone (read-only), by the `serving/report` asset after each
publish and by `make report` (`python -m orchestration.report`) at any time. data.py reads the
figures, charts.py draws them, page.py lays out the page.

data.py and page.py (pandas, Altair) are imported when a report is built, not with this package:
the definitions import the report's asset (orchestration/report/assets.py), and so this package,
in every process that loads them (a run's worker, each step process of a parallel run, the code
server), where Altair and pandas took ~0.4 s of CPU to import and were never used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestration.report.data import ReportData, SnapshotMissing

__all__ = ["Report", "SnapshotMissing", "build_report"]


def __getattr__(name: str) -> Any:
    if name == "SnapshotMissing":  # data.py's, imported when asked for (see the docstring)
        from orchestration.report.data import SnapshotMissing

        return SnapshotMissing
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class Report:
    path: Path
    data: ReportData
    sections_not_loaded: list[str]


def build_report(serving_path: Path, report_path: Path) -> Report:
    """Read the snapshot at `serving_path` and write the page to `report_path`, whole or not at all."""
    from orchestration.report.data import read_snapshot
    from orchestration.report.page import render

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
