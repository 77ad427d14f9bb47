"""Assets ``uid_model``, ``sim_model``, ``itc_model``: retrain a stage from the annotations in the object store.

Materializing one trains a new version on ``annotations/<stage>/`` (:mod:`stickypi_assets.lifecycle.training`),
registers it in the object store and makes it current only if its validation metric is not worse than the
current version's (``STICKYPI_PROMOTION_TOLERANCE``). The asset's data version is the *current* model
version, so the downstream partitions show as stale exactly when the model they would run changed. Table
``models`` lists every version. The annotation sensors request these assets when annotations change.
"""

import os

from dagster import AssetExecutionContext, Config, DataVersion, MaterializeResult, MetadataValue, asset
from pydantic import Field

from stickypi_assets.lifecycle.training import ANNOTATION_PREFIXES, train_stage
from stickypi_assets.orchestration.resources import StickyPiStorage
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


class TrainingConfig(Config):
    """Run configuration of a model asset (the Launchpad shows it; sensor-requested runs use the default)."""

    device: str = Field(
        default="auto", description="torch device to train on: 'auto' (CUDA when available, else CPU), 'cpu', 'cuda:0'"
    )
    progress_bar: bool = Field(default=False, description="show the training's progress bar on the run's stderr")


def training_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {requested!r} asked for, but this machine has no CUDA device")
    return requested


def _train(
    context: AssetExecutionContext, storage: StickyPiStorage, stage: str, config: TrainingConfig
) -> MaterializeResult:
    store, warehouse = storage.object_store(), storage.warehouse()
    registry = storage.registry()
    device = training_device(config.device)
    context.log.info(f"training the {stage.upper()} on {device}")
    outcome = train_stage(
        store, registry, stage, tolerance=promotion_tolerance(), device=device, progress=config.progress_bar
    )
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
        },
    )


def _description(stage: str, what: str) -> str:
    return (f"The current {what}: retrained from {ANNOTATION_PREFIXES[stage]} in the object store, registered as a "
            "version, made current only if its validation metric is not worse (table `models`).")  # fmt: skip


@asset(group_name="models", kinds={"pytorch"}, description=_description("uid", "UID (insect detector)"))
def uid_model(context: AssetExecutionContext, storage: StickyPiStorage, config: TrainingConfig) -> MaterializeResult:
    return _train(context, storage, "uid", config)


@asset(group_name="models", kinds={"pytorch"}, description=_description("sim", "SIM (insect matcher)"))
def sim_model(context: AssetExecutionContext, storage: StickyPiStorage, config: TrainingConfig) -> MaterializeResult:
    return _train(context, storage, "sim", config)


@asset(group_name="models", kinds={"pytorch"}, description=_description("itc", "ITC (tuboid classifier)"))
def itc_model(context: AssetExecutionContext, storage: StickyPiStorage, config: TrainingConfig) -> MaterializeResult:
    return _train(context, storage, "itc", config)
