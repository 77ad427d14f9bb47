"""Retrain a stage's model from the annotations in the object store and register it (no Dagster).

Annotations live under ``annotations/<stage>/`` (the stage table says which files count): UID annotation SVGs
(``annotations/uid/*.svg``), two-frame SIM SVGs (``annotations/sim/*.svg``), and for the ITC tuboid folders with
one or more annotation ``database.db`` files (``annotations/itc/**``, relative paths kept). :func:`train_stage`
copies them into a fresh bundle's ``data/``, takes the training configuration from
``ml/<bundle>/training/config.yaml`` (else the current version's, else the stage's defaults), trains from
random init (or the pretrained weights the config asks for), validates on the bundle's md5 validation split and
registers the result (:class:`~stickypi_assets.lifecycle.registry.ModelRegistry`), which makes it current only if
it is not worse on the same data (:mod:`stickypi_assets.lifecycle.promotion`).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stickypi_assets.formats.split import md5_file
from stickypi_assets.lifecycle.promotion import current_on_same_data
from stickypi_assets.lifecycle.registry import ModelRegistry, Registration, data_fingerprint
from stickypi_assets.ml.bundles import CONFIG_RELPATH, DATA_RELPATH
from stickypi_assets.ml.stages import get_stage
from stickypi_assets.storage.keys import training_config_key
from stickypi_assets.storage.object_store import ObjectStore

log = logging.getLogger(__name__)


@dataclass
class TrainingOutcome:
    registration: Registration
    promoted: bool
    current_version: str | None
    seconds: float
    fingerprint: str


def annotation_manifest(store: ObjectStore, stage: str) -> list[dict[str, Any]]:
    """``[{key, md5, size}]`` of the stage's annotation objects (what the sensors watch and a version records)."""
    spec = get_stage(stage)
    return [
        {"key": i.key, "md5": i.md5, "size": i.size}
        for i in sorted(store.list(spec.annotation_prefix), key=lambda i: i.key)
        if spec.is_annotation(i.key)
    ]


#: Files of one tuboid folder: a change to any of them is one changed annotation item (the folder).
_TUBOID_FILES = ("metadata.txt", "tuboid.jpg", "context.jpg")


def annotation_item(key: str) -> str:
    """The annotation item a file belongs to: its tuboid folder (``…/<folder>/``) for a tuboid's files, else the
    file itself (an SVG, a ``database.db``)."""
    folder, _, name = key.rpartition("/")
    return f"{folder}/" if name in _TUBOID_FILES and folder else key


def changed_items(manifest: list[dict[str, Any]], trained_on: list[dict[str, Any]]) -> set[str]:
    """Annotation items added, changed or removed since a model was trained on ``trained_on`` (what
    ``STICKYPI_RETRAIN_EVERY_N`` counts)."""
    now = {(m["key"], m["md5"]) for m in manifest}
    then = {(m["key"], m["md5"]) for m in trained_on}
    return {annotation_item(key) for key, _ in now ^ then}


def local_manifest(data_dir: str | Path) -> list[dict[str, Any]]:
    """``[{key, md5, size}]`` of a local bundle's ``data/`` files (keys relative to it)."""
    data_dir = Path(data_dir)
    return [
        {"key": p.relative_to(data_dir).as_posix(), "md5": md5_file(p), "size": p.stat().st_size}
        for p in sorted(data_dir.rglob("*"))
        if p.is_file()
    ]


def _training_config(store: ObjectStore, registry: ModelRegistry, stage: str, path: Path) -> str:
    """Write the configuration to train with to ``path``; returns where it came from."""
    spec = get_stage(stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = training_config_key(spec.bundle_name)
    if store.exists(key):
        store.download(key, path)
        return key
    current = registry.current_version(stage)
    if current:
        shutil.copyfile(registry.fetch(stage, current) / CONFIG_RELPATH, path)
        return f"current version {current}"
    spec.config_class().save(path)
    return "defaults"


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
    spec = get_stage(stage)
    started = time.perf_counter()
    manifest = annotation_manifest(store, stage)
    if not manifest:
        raise ValueError(f"no {spec.title} annotations under {spec.annotation_prefix} in {store.describe()}")
    with tempfile.TemporaryDirectory(prefix=f"stickypi-{stage}-train-") as tmp:
        bundle = Path(tmp) / "bundle"
        for item in manifest:
            local = bundle / DATA_RELPATH / item["key"][len(spec.annotation_prefix) :]
            local.parent.mkdir(parents=True, exist_ok=True)
            store.download(item["key"], local)
        source = _training_config(store, registry, stage, bundle / CONFIG_RELPATH)
        log.info("%s: training on %d annotation files, config from %s", stage, len(manifest), source)
        spec.train(bundle, device=device, progress=progress)
        metrics = spec.validate(bundle, Path(tmp) / "validation", device=device)
        metrics["config_source"] = source
        current, note = current_on_same_data(stage, registry, bundle / DATA_RELPATH, Path(tmp), device)
        current_value = None if current is None or current.get(spec.metric) is None else float(current[spec.metric])
        if current_value is not None:
            metrics[f"current_{spec.metric}"] = current_value
        record, promoted = registry.register(stage, bundle, metrics, manifest, tolerance=tolerance,
                                             current_metric=current_value, current_metrics=current, note=note)
    return TrainingOutcome(registration=record, promoted=promoted, current_version=registry.current_version(stage),
                           seconds=time.perf_counter() - started, fingerprint=data_fingerprint(manifest))  # fmt: skip
