"""Assets ``<stage>_model`` (``uid_model``, ``sim_model``, ``itc_model``): retrain a stage from its annotations.

One asset per stage of the stage table (:func:`model_asset`). Materializing one trains a new version on
``annotations/<stage>/`` (:mod:`stickypi_assets.lifecycle.training`), registers it in the object store and makes
it current only if its validation metric is not worse than the current version's (``STICKYPI_PROMOTION_TOLERANCE``).
The asset's data version is the *current* model version, so the downstream partitions show as stale exactly when
the model they would run changed. Table ``models`` lists every version. The annotation sensors request these
assets when annotations change.
"""

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    Config,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from stickypi_assets.lifecycle.training import train_stage
from stickypi_assets.ml.devices import resolve_device
from stickypi_assets.ml.stages import STAGES, Stage
from stickypi_assets.orchestration.resources import StickyPiStorage
from stickypi_assets.pipeline.al_rounds import STAGE, read_rounds, rounds_markdown, stalled_warning
from stickypi_assets.storage.tables import MODELS

AL_STAGES = set(STAGE.values())


class TrainingConfig(Config):
    """Run configuration of a model asset (the Launchpad shows it; sensor-requested runs use the default)."""

    device: str = Field(
        default="auto", description="torch device to train on: 'auto' (CUDA when available, else CPU), 'cpu', 'cuda:0'"
    )
    progress_bar: bool = Field(default=False, description="show the training's progress bar on the run's stderr")


def _train(
    context: AssetExecutionContext, storage: StickyPiStorage, stage: str, config: TrainingConfig
) -> MaterializeResult:
    store, warehouse = storage.object_store(), storage.warehouse()
    registry = storage.registry()
    device = resolve_device(config.device)
    context.log.info(f"training the {stage.upper()} on {device}")
    tolerance = storage.settings().promotion_tolerance
    outcome = train_stage(store, registry, stage, tolerance=tolerance, device=device, progress=config.progress_bar)
    warehouse.replace_table(MODELS.name, registry.table_rows())
    record = outcome.registration
    context.log.info(f"{stage} {record.version}: {record.decision} ({outcome.seconds:.0f} s)")
    validation = {
        f"validation/{k}": MetadataValue.float(float(v))
        for k, v in sorted(record.metrics.items())
        if isinstance(v, int | float) and not isinstance(v, bool) and v == v  # NaN is not a figure
    }
    return MaterializeResult(
        data_version=DataVersion(outcome.current_version or "none"),
        metadata={
            **validation,
            "trained_version": record.version,
            "current_version": outcome.current_version or "none",
            "promoted": outcome.promoted,
            "decision": record.decision,
            record.metric_name: MetadataValue.float(record.metric_value) if record.metric_value is not None else "n/a",
            "n_training_files": len(record.data_manifest),
            "training_data_fingerprint": outcome.fingerprint,
            "seconds": round(outcome.seconds, 1),
            "device": device,
            "bundle": MetadataValue.path(store.uri(record.prefix)),
            **_per_class_tables(record.metrics),
            **_learning_loop(warehouse, stage, record.metric_value, context),
        },
    )


def _per_class_tables(metrics: dict) -> dict[str, MetadataValue]:
    """Per-class validation rows and the confusion matrix as tables, where the validator reports them (the ITC):
    an average can hide a class the model never finds, these cannot."""
    out: dict[str, MetadataValue] = {}
    rows = metrics.get("per_class")
    if isinstance(rows, list) and rows:
        def cell(v: object) -> str:
            return "" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)

        lines = ["| class | support | predicted | right | recall | precision |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['name']} | {r['support']} | {r['predicted']} | {r['tp']} | {cell(r['recall'])} | "
                  f"{cell(r['precision'])} |" for r in rows]  # fmt: skip
        out["validation/per_class"] = MetadataValue.md("\n".join(lines))
    confusion = metrics.get("confusion")
    if isinstance(confusion, dict) and confusion.get("labels"):
        names, counts = confusion["labels"], confusion["counts"]
        keep = [k for k in range(len(names)) if sum(counts[k]) or sum(row[k] for row in counts)]
        lines = ["| true \\ predicted | " + " | ".join(names[k] for k in keep) + " |", "|---" * (len(keep) + 1) + "|"]
        lines += [f"| {names[g]} | " + " | ".join(str(counts[g][p]) for p in keep) + " |" for g in keep]
        out["validation/confusion"] = MetadataValue.md("\n".join(lines))
    return out


def _learning_loop(warehouse, stage: str, metric: float | None, context: AssetExecutionContext) -> dict:
    """The stage's last active-learning rounds (table ``al_rounds``) and the stalled warning, with this version's
    validation metric as the newest value."""
    if stage not in AL_STAGES:
        return {}
    rounds = read_rounds(warehouse, stage)
    out = {"al_rounds": MetadataValue.md(rounds_markdown(rounds, stage))}
    warning = stalled_warning(rounds, stage, metric)
    if warning:
        context.log.warning(warning)
        out["warning"] = MetadataValue.md(warning)
    return out


def model_asset(stage: Stage) -> AssetsDefinition:
    """The asset ``<stage>_model`` of a stage of the stage table."""

    @asset(
        name=stage.model_asset,
        group_name="models",
        kinds={"pytorch"},
        description=f"The current {stage.title} ({stage.role}): retrained from {stage.annotation_prefix} in the "
        "object store, registered as a version, made current only if its validation metric is not worse (table "
        "`models`).",
    )
    def _model(context: AssetExecutionContext, storage: StickyPiStorage, config: TrainingConfig) -> MaterializeResult:
        return _train(context, storage, stage.name, config)

    return _model


MODEL_ASSETS = {name: model_asset(stage) for name, stage in STAGES.items()}
