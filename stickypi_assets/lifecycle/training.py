"""Retrain a stage's model from the annotations in the object store and register it (no Dagster).

Annotations live under ``annotations/<stage>/``: UID annotation SVGs (``annotations/uid/*.svg``), two-frame
SIM SVGs (``annotations/sim/*.svg``), and for the ITC tuboid folders with one or more annotation
``database.db`` files (``annotations/itc/**``, relative paths kept). :func:`train_stage` copies them into a
fresh bundle's ``data/``, takes the training configuration from ``ml/<bundle>/training/config.yaml`` (else
the current version's, else the stage's defaults), trains from random init (or the pretrained weights the
config asks for), validates on the bundle's md5 validation split and registers the result
(:class:`~stickypi_assets.lifecycle.registry.ModelRegistry`), which makes it current only if it is not worse.

"Not worse" is decided on the *same* data: new annotations change the validation split, so the current
version is validated again on the candidate's validation split (its own config and weights, the candidate's
``data/``) and the two figures are compared, not the candidate's figure with one the current version got on
older annotations. If the current version cannot be validated on the new data (e.g. an incompatible config),
the comparison falls back to its recorded metric and the decision says so.
"""

from __future__ import annotations

import importlib
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stickypi_assets.formats.split import md5_file
from stickypi_assets.lifecycle.registry import (
    METRICS,
    ModelRegistry,
    Registration,
    data_fingerprint,
    training_config_key,
)
from stickypi_assets.ml.bundles import CONFIG_RELPATH, WEIGHTS_RELPATH
from stickypi_assets.storage.object_store import ObjectStore

log = logging.getLogger(__name__)

ANNOTATION_PREFIXES = {"uid": "annotations/uid/", "sim": "annotations/sim/", "itc": "annotations/itc/"}


@dataclass
class TrainingOutcome:
    registration: Registration
    promoted: bool
    current_version: str | None
    seconds: float
    fingerprint: str


def annotation_manifest(store: ObjectStore, stage: str) -> list[dict[str, Any]]:
    """``[{key, md5, size}]`` of the stage's annotation objects (what the sensors watch and a version records)."""
    prefix = ANNOTATION_PREFIXES[stage]
    wanted = (".svg",) if stage in ("uid", "sim") else ("metadata.txt", "tuboid.jpg", "context.jpg", ".db")
    return [
        {"key": i.key, "md5": i.md5, "size": i.size}
        for i in sorted(store.list(prefix), key=lambda i: i.key)
        if i.key.lower().endswith(wanted)
    ]


def _f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def local_manifest(data_dir: str | Path) -> list[dict[str, Any]]:
    """``[{key, md5, size}]`` of a local bundle's ``data/`` files (keys relative to it)."""
    data_dir = Path(data_dir)
    return [
        {"key": p.relative_to(data_dir).as_posix(), "md5": md5_file(p), "size": p.stat().st_size}
        for p in sorted(data_dir.rglob("*"))
        if p.is_file()
    ]


def validation_metrics(stage: str, bundle: str | Path, out: str | Path, device: str = "cpu") -> dict[str, Any]:
    """The stage's validation of a trained bundle as flat metrics, including the one promotion compares."""
    if stage == "uid":
        from stickypi_assets.ml.uid.validate import validate

        overall = validate(bundle, out, device=device, write_svgs=False).metrics["overall"]
        return {"f1": _f1(overall["precision"], overall["recall"]), **overall}
    if stage == "sim":
        from stickypi_assets.ml.sim.train import validate as sim_validate

        metrics = sim_validate(bundle, out, device=device)
    else:
        from stickypi_assets.ml.itc.validate import validate as itc_validate

        metrics = itc_validate(bundle, out, device=device).metrics
    return {k: v for k, v in metrics.items() if isinstance(v, int | float | str | type(None))}


def _train_and_validate(stage: str, bundle: Path, out: Path, device: str, progress: bool) -> dict[str, Any]:
    if stage == "uid":
        from stickypi_assets.ml.uid.train import train as uid_train

        uid_train(bundle, restart=True, device=device, progress=progress)
    elif stage == "sim":
        from stickypi_assets.ml.sim.train import train as sim_train

        sim_train(bundle, restart=True, device=device, progress=progress)
    else:
        from stickypi_assets.ml.itc.train import train as itc_train

        itc_train(bundle, restart=True, device=device, progress=progress)
    return validation_metrics(stage, bundle, out, device)


def current_on_same_data(
    stage: str, registry: ModelRegistry, data_dir: Path, work: Path, device: str
) -> tuple[float | None, str]:
    """The current version's promotion metric on ``data_dir``'s validation split, and a note for the decision.

    ``(None, why)`` when there is no current version or it cannot be validated on this data.
    """
    version = registry.current_version(stage)
    if version is None:
        return None, "no current version"
    try:
        current = registry.fetch(stage, version)
        bundle = work / "current-bundle"
        (bundle / CONFIG_RELPATH).parent.mkdir(parents=True, exist_ok=True)
        (bundle / WEIGHTS_RELPATH).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(current / CONFIG_RELPATH, bundle / CONFIG_RELPATH)
        (bundle / WEIGHTS_RELPATH).symlink_to((current / WEIGHTS_RELPATH).resolve())
        (bundle / "data").symlink_to(data_dir.resolve(), target_is_directory=True)
        value = validation_metrics(stage, bundle, work / "current-validation", device).get(METRICS[stage])
    except Exception as exc:  # an old config the new data does not fit: compare with the recorded figure
        log.warning("%s: current version %s could not be validated on the new data: %s", stage, version, exc)
        return None, f"current {version[:8]} not re-validated on the new data ({type(exc).__name__}: {exc})"
    return (None if value is None else float(value)), f"both on the same {stage} validation data"


CONFIG_CLASSES = {"uid": "UidConfig", "sim": "SimConfig", "itc": "ItcConfig"}


def _default_config(stage: str, path: Path) -> None:
    """Write the stage's default configuration (``stickypi_assets.ml.<stage>.config``) to ``path``."""
    module = importlib.import_module(f"stickypi_assets.ml.{stage}.config")
    module.save_config(getattr(module, CONFIG_CLASSES[stage])(), path)


def train_stage(
    store: ObjectStore,
    registry: ModelRegistry,
    stage: str,
    *,
    tolerance: float = 0.0,
    device: str = "cpu",
    progress: bool = False,
) -> TrainingOutcome:
    """Train the stage on its annotations, validate, register; raises ``ValueError`` when there are none.

    ``progress`` shows the training's progress bar on stderr."""
    started = time.perf_counter()
    manifest = annotation_manifest(store, stage)
    if not manifest:
        raise ValueError(f"no {stage.upper()} annotations under {ANNOTATION_PREFIXES[stage]} in {store.describe()}")
    with tempfile.TemporaryDirectory(prefix=f"stickypi-{stage}-train-") as tmp:
        bundle = Path(tmp) / "bundle"
        for item in manifest:
            rel = item["key"][len(ANNOTATION_PREFIXES[stage]) :]
            (bundle / "data" / rel).parent.mkdir(parents=True, exist_ok=True)
            store.download(item["key"], bundle / "data" / rel)
        config_path = bundle / CONFIG_RELPATH
        config_path.parent.mkdir(parents=True, exist_ok=True)
        if store.exists(training_config_key(stage)):
            store.download(training_config_key(stage), config_path)
            source = training_config_key(stage)
        elif registry.current_version(stage):
            shutil.copyfile(registry.fetch(stage) / CONFIG_RELPATH, config_path)
            source = f"current version {registry.current_version(stage)}"
        else:
            _default_config(stage, config_path)
            source = "defaults"
        log.info("%s: training on %d annotation files, config from %s", stage, len(manifest), source)
        metrics = _train_and_validate(stage, bundle, Path(tmp) / "validation", device, progress)
        metrics["config_source"] = source
        current_value, note = current_on_same_data(stage, registry, bundle / "data", Path(tmp), device)
        if current_value is not None:
            metrics[f"current_{METRICS[stage]}"] = current_value
        record, promoted = registry.register(
            stage, bundle, metrics, manifest, tolerance=tolerance, current_metric=current_value, note=note
        )
    return TrainingOutcome(registration=record, promoted=promoted, current_version=registry.current_version(stage),
                           seconds=time.perf_counter() - started, fingerprint=data_fingerprint(manifest))  # fmt: skip
