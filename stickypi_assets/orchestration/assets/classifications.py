"""Asset ``classifications``: the ITC labels each device-day's tuboids (table ``classifications``).

The analysts' ``captures`` (one row per insect) and ``daily_taxon_counts`` are derived from this table and
``tuboids`` by the warehouse in the same load (defined once in :mod:`stickypi_assets.storage.tables`).
"""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue

from stickypi_assets.orchestration.assets.metadata import StatusTally, per_item, problems_markdown
from stickypi_assets.orchestration.assets.stage_asset import stage_asset, upstream_days
from stickypi_assets.orchestration.resources import ModelResource, StickyPiStorage
from stickypi_assets.pipeline.classifications import classify_device_day
from stickypi_assets.pipeline.taxon_drift import registered_validation, taxon_drift
from stickypi_assets.storage.tables import CLASSIFICATIONS, TUBOIDS


@stage_asset(
    model="itc_model",
    upstream="tuboids",
    group="itc",
    description=(
        "Taxonomy of every tuboid of the device-day (ITC on its tuboid folder): label, pattern, "
        "type/order/family/genus/species, probability, top-3 and full probability vector in table "
        "`classifications`; tuboids without a folder are rows with status 'not_classified'."
    ),
)
def classifications(
    context: AssetExecutionContext, storage: StickyPiStorage, itc_model: ModelResource
) -> MaterializeResult:
    warehouse, store = storage.warehouse(), storage.object_store()
    classifier, _, version = itc_model.load()
    tally = StatusTally({"ok": "n_classified", "not_classified": "n_not_classified", "error": "n_errors"})
    seconds = 0.0
    taxa: dict[str, int] = {}
    drift: list[str] = []
    distances: list[float] = []
    validation = registered_validation(warehouse, version)  # once: every day of the run uses this model
    with warehouse.deferred_publish():  # one publish for all days of a range run
        for partition, tubs in upstream_days(context, warehouse, TUBOIDS):
            day = classify_device_day(store, tubs, classifier, version, device=partition.device, day=partition.date,
                                      run_id=context.run.run_id)  # fmt: skip
            warehouse.write_partition(CLASSIFICATIONS.name, partition, day.rows)
            tally.add(day)
            seconds += day.seconds
            if len(day.rows):
                for pattern, n in day.rows[day.rows.status == "ok"].pattern.value_counts().items():
                    taxa[pattern] = taxa.get(pattern, 0) + int(n)
            context.log.info(
                f"{partition}: {day.count('ok')} tuboids classified, {day.count('not_classified')} without folder, "
                f"{day.count('error')} unreadable in {day.seconds:.1f} s"
            )
            report = taxon_drift(day.rows, validation)  # against the model's validation (asset check: taxon_drift)
            distances += [] if report.distance is None else [report.distance]
            for warning in report.warnings:
                context.log.warning(f"{partition}: {warning}")
                drift.append(f"{partition}: {warning}")
    table = "\n".join(f"| `{p}` | {n} |" for p, n in sorted(taxa.items(), key=lambda kv: -kv[1]))
    return MaterializeResult(
        metadata={
            "dagster/row_count": tally.total,
            **tally.metadata(),
            "seconds_per_tuboid": per_item(seconds, tally["ok"], 4),
            "model_version": version,
            "labels": MetadataValue.md(f"| label pattern | tuboids |\n|---|---|\n{table}" if taxa else "none"),
            "unreadable_folders": problems_markdown(tally.errors),
            "taxon_drift_distance": MetadataValue.float(max(distances)) if distances else "n/a",
            **({"warning": MetadataValue.md("\n".join(f"- {w}" for w in drift))} if drift else {}),
        }
    )
