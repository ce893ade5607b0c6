"""`make report`: rebuild the report from the current serving snapshot, without a Dagster run."""

from __future__ import annotations

import sys

from orchestration.report import SnapshotMissing, build_report
from orchestration.settings import Settings


def main() -> int:
    settings = Settings.from_env()
    try:
        report = build_report(settings.serving_path, settings.report_path)
    except SnapshotMissing as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"Report: {report.path}")
    if report.sections_not_loaded:
        print(f"  not loaded: {', '.join(report.sections_not_loaded)}")
    print(f"  open it in a browser: file://{report.path.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
