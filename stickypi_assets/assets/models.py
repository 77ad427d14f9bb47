"""Assets ``uid_model``, ``sim_model``, ``itc_model``: retrain a stage from the annotations in the object store.

Materializing one trains a new version on ``annotations/<stage>/`` (:mod:`stickypi_assets.model_training`),
registers it in the object store and makes it current only if its validation metric is not worse than the
current version's (``STICKYPI_PROMOTION_TOLERANCE``). The asset's data version is the *current* model
version, so the downstream partitions show as stale exactly when the model they would run changed. Table
``models`` lists every version. The annotation sensors request these assets when annotations change.
"""

import os

from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset

from stickypi_assets.model_training import ANNOTATION_PREFIXES, train_stage
from stickypi_assets.resources import StickyPiStorage
from stickypi_assets.storage.tables import MODELS

TOLERANCE_ENV = "STICKYPI_PROMOTION_TOLERANCE"


def promotion_tolerance() -> float:
    text = os.environ.get(TOLERANCE_ENV, "") or "0"
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise ValueError(f"{TOLERANCE_ENV}={text!r} must be a number >= 0 (how much worse a new model may be)")
    return value


def _train(context: AssetExecutionContext, storage: StickyPiStorage, stage: str) -> MaterializeResult:
    store, warehouse = storage.object_store(), storage.warehouse()
    registry = storage.registry()
    outcome = train_stage(store, registry, stage, tolerance=promotion_tolerance())
    warehouse.replace_table(MODELS.name, registry.table_rows())
    record = outcome.registration
    context.log.info(f"{stage} {record.version}: {record.decision} ({outcome.seconds:.0f} s)")
    return MaterializeResult(
        data_version=DataVersion(outcome.current_version or "none"),
        metadata={
            "trained_version": record.version,
            "current_version": outcome.current_version or "none",
            "promoted": outcome.promoted,
            "decision": record.decision,
            record.metric_name: MetadataValue.float(record.metric_value) if record.metric_value is not None else "n/a",
            "n_training_files": len(record.data_manifest),
            "training_data_fingerprint": outcome.fingerprint,
            "seconds": round(outcome.seconds, 1),
            "bundle": MetadataValue.path(store.uri(record.prefix)),
        },
    )


def _description(stage: str, what: str) -> str:
    return (f"The current {what}: retrained from {ANNOTATION_PREFIXES[stage]} in the object store, registered as a "
            "version, made current only if its validation metric is not worse (table `models`).")  # fmt: skip


@asset(group_name="models", kinds={"pytorch"}, description=_description("uid", "UID (insect detector)"))
def uid_model(context: AssetExecutionContext, storage: StickyPiStorage) -> MaterializeResult:
    return _train(context, storage, "uid")


@asset(group_name="models", kinds={"pytorch"}, description=_description("sim", "SIM (insect matcher)"))
def sim_model(context: AssetExecutionContext, storage: StickyPiStorage) -> MaterializeResult:
    return _train(context, storage, "sim")


@asset(group_name="models", kinds={"pytorch"}, description=_description("itc", "ITC (tuboid classifier)"))
def itc_model(context: AssetExecutionContext, storage: StickyPiStorage) -> MaterializeResult:
    return _train(context, storage, "itc")
