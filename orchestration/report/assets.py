"""The `serving/report` asset: rebuild the HTML report after each published snapshot.

It depends on the snapshot asset, so it runs in the same refresh and only after a publish: a
refresh whose checks fail publishes neither a snapshot nor a report, and the last good pair stays.
It reads only the snapshot file (read-only), never the working warehouse, so it needs no place in
the warehouse's single-writer pool.
"""

from pathlib import Path

import dagster as dg

SNAPSHOT_KEY = dg.AssetKey(["serving", "marts_snapshot"])


def build_report_asset(serving_path: Path, report_path: Path) -> dg.AssetsDefinition:
    @dg.asset(
        key=["serving", "report"],
        group_name="serving",
        deps=[SNAPSHOT_KEY],
        kinds={"html"},
        description=(
            f"The marketer's report: every mart's answer as a chart on one page, {report_path}, "
            "opened from disk in any browser. Rebuilt from the snapshot after each publish; "
            "`make report` rebuilds it without a run."
        ),
    )
    def report(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        # Imported here: Altair and pandas would add ~0.4 s of CPU to every load of the definitions.
        from orchestration.report import build_report

        built = build_report(serving_path, report_path)
        context.log.info(f"Report written to {built.path}")
        metadata: dict[str, object] = {
            "path": dg.MetadataValue.path(str(built.path)),
            "bytes": built.path.stat().st_size,
            "marts_not_loaded": ", ".join(built.sections_not_loaded) or "none",
        }
        for name, value in built.data.headline.items():
            metadata[f"headline.{name}"] = value
        if built.data.period:
            metadata["period"] = f"{built.data.period[0]} to {built.data.period[1]}"
        return dg.MaterializeResult(metadata=metadata)

    return report
