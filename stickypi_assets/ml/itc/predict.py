"""ITC inference: tuboids → labels and probabilities; the standalone folder mode writing ``results.csv`` (ref. 5.8).

What a Dagster asset (or a notebook) does::

    classifier, config, version = load_classifier(bundle_dir)
    tuboids, failures = read_tuboids(root)           # stickypi_assets.formats.tuboids
    for c in classifier.classify(tuboids):           # batches of INFERENCE_BATCH_SIZE tuboids
        c.label, c.pattern, c.species, c.probability, c.probabilities, ...

Predictions are **deterministic**: the shots are evenly spaced tiles (not random ones as in the original,
defect 21), the network runs in eval mode, and the same tuboid and weights give the same probabilities on
every call and in every process (tested). Results can differ in the last bits between batch compositions or
machines (floating-point summation order), never in a way that depends on chance.

:func:`predict_dir` reproduces ``standalone_itc.py predict_dir``: every ``DIR/**/metadata.txt`` (sorted) is
a tuboid, ``DIR/results.csv`` gets pandas' default CSV (leading unnamed index) with the original columns
``type, order, family, genus, species, label, pattern, directory``, then ``tuboid_id``, ``probability`` (of
the predicted label) and one ``prob_<k>`` column per label. It refuses to overwrite ``results.csv`` unless
``force``. Folders that cannot be read (e.g. no ``tuboid.jpg``) get no row; they are returned (and logged)
instead of stopping the run, and the rows classified before an unexpected error are still written.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from stickypi_assets.formats.errors import FormatError
from stickypi_assets.formats.labels import TAXONOMY_LEVELS, LabelMap
from stickypi_assets.formats.tuboids import Tuboid, iter_tuboid_dirs, read_tuboid
from stickypi_assets.ml.bundles import CONFIG_RELPATH, WEIGHTS_RELPATH
from stickypi_assets.ml.itc.config import ItcConfig, bundle_config
from stickypi_assets.ml.itc.inputs import inference_shot_indices, normalise, prepare_tiles, size_feature
from stickypi_assets.ml.itc.model import ItcNet, load_checkpoint, weights_version

log = logging.getLogger(__name__)

RESULTS_CSV = "results.csv"
ORIGINAL_COLUMNS = [*TAXONOMY_LEVELS, "label", "pattern", "directory"]


@dataclass
class Classification:
    """The ITC verdict for one tuboid (taxonomy levels from the predicted label's pattern, reference 5.4)."""

    tuboid_id: str
    label: int
    pattern: str
    type: str | None
    order: str | None
    family: str | None
    genus: str | None
    species: str | None
    probability: float
    probabilities: np.ndarray = field(repr=False)

    def as_row(self) -> dict[str, Any]:
        """Flat dict: taxonomy, label, pattern, tuboid_id, probability and ``prob_<k>`` for every label."""
        row: dict[str, Any] = {level: getattr(self, level) for level in TAXONOMY_LEVELS}
        row.update(label=self.label, pattern=self.pattern, tuboid_id=self.tuboid_id, probability=self.probability)
        row.update({f"prob_{k}": float(p) for k, p in enumerate(self.probabilities)})
        return row


def tuboid_inputs(tuboid: Tuboid, config: ItcConfig) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic network inputs of one tuboid: shots ``(S, 3, H, W)`` float32 and sizes ``(S,)``."""
    chosen = inference_shot_indices(tuboid.n_tiles, config.n_shots)
    tiles = prepare_tiles([tuboid.tiles[k] for k in chosen], config.input_size)
    sizes = size_feature([tuboid.tile_frames[k].scale for k in chosen])
    return normalise(tiles), sizes


class ItcClassifier:
    """A trained :class:`ItcNet` with its configuration and labels, ready to classify tuboids."""

    def __init__(
        self, net: ItcNet, config: ItcConfig, *, device: str | torch.device = "cpu", version: str | None = None
    ) -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.config = config
        self.label_map: LabelMap = config.label_map
        self.version = version
        if self.label_map.n_classes != net.n_classes:
            raise ValueError(f"{self.label_map.n_classes} labels but the network has {net.n_classes} outputs")

    def probabilities(self, tuboids: Sequence[Tuboid], batch_size: int | None = None) -> np.ndarray:
        """Softmax probabilities ``(len(tuboids), n_classes)`` (float64), ``batch_size`` tuboids per pass."""
        batch_size = batch_size or self.config.inference_batch_size
        out = [np.zeros((0, self.label_map.n_classes))]
        with torch.no_grad():
            for start in range(0, len(tuboids), batch_size):
                inputs = [tuboid_inputs(t, self.config) for t in tuboids[start : start + batch_size]]
                shots = torch.from_numpy(np.stack([s for s, _ in inputs])).to(self.device)
                sizes = torch.from_numpy(np.stack([z for _, z in inputs])).to(self.device)
                logits = self.net(shots, sizes)
                out.append(torch.softmax(logits.double(), dim=1).cpu().numpy())
        return np.concatenate(out)

    def classify(self, tuboids: Sequence[Tuboid], batch_size: int | None = None) -> list[Classification]:
        """One :class:`Classification` per tuboid, in order."""
        probabilities = self.probabilities(tuboids, batch_size)
        out = []
        for tuboid, probs in zip(tuboids, probabilities, strict=True):
            label = int(np.argmax(probs))
            taxonomy = self.label_map.taxonomy_for(label)
            out.append(
                Classification(
                    tuboid_id=str(tuboid.id),
                    label=label,
                    pattern=self.label_map.pattern_for(label),
                    probability=float(probs[label]),
                    probabilities=probs,
                    **taxonomy,
                )
            )
        return out


def load_classifier(bundle_dir: str | Path, device: str | torch.device = "cpu") -> tuple[ItcClassifier, ItcConfig, str]:
    """``(classifier, config, version)`` of a trained bundle; version = md5 of ``output/model_final.pth``.

    The network, labels and preprocessing (input size, shots) are those the weights were trained with (saved
    in the checkpoint); only ``INFERENCE_BATCH_SIZE`` is taken from the bundle's current config.
    """
    bundle_dir = Path(bundle_dir)
    weights = bundle_dir / WEIGHTS_RELPATH
    if not weights.exists():
        raise FileNotFoundError(f"{weights} not found: the ITC bundle has no trained weights")
    net, config, _ = load_checkpoint(weights, device=device)
    if (bundle_dir / CONFIG_RELPATH).exists():
        current = bundle_config(bundle_dir)
        if current.inference_batch_size != config.inference_batch_size:
            config = config.replace(inference_batch_size=current.inference_batch_size)
    version = weights_version(weights)
    return ItcClassifier(net, config, device=device, version=version), config, version


@dataclass
class PredictDirResult:
    results: Path
    n_classified: int
    version: str
    failures: list[tuple[Path, str]] = field(default_factory=list)


def _write_csv_atomic(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        df.to_csv(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def predict_dir(
    bundle_dir: str | Path, target: str | Path, force: bool = False, device: str | torch.device = "cpu"
) -> PredictDirResult:
    """Classify every tuboid folder under ``target`` and write ``target/results.csv`` (module docstring)."""
    target = Path(target)
    out = target / RESULTS_CSV
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists (use force to replace it)")
    classifier, config, version = load_classifier(bundle_dir, device=device)
    n_classes = classifier.label_map.n_classes
    columns = [*ORIGINAL_COLUMNS, "tuboid_id", "probability"] + [f"prob_{k}" for k in range(n_classes)]
    rows: list[dict[str, Any]] = []
    failures: list[tuple[Path, str]] = []
    directories = list(iter_tuboid_dirs(target))
    try:
        for start in range(0, len(directories), config.inference_batch_size):
            batch: list[tuple[Path, Tuboid]] = []
            for directory in directories[start : start + config.inference_batch_size]:
                try:
                    batch.append((directory, read_tuboid(directory)))
                except (FormatError, OSError) as exc:
                    failures.append((directory, str(exc)))
                    log.warning("ITC predict: %s", exc)
            for (directory, _), c in zip(batch, classifier.classify([t for _, t in batch]), strict=True):
                rows.append({**c.as_row(), "directory": str(directory)})
    finally:
        _write_csv_atomic(pd.DataFrame(rows, columns=columns), out)
    log.info("ITC predict: %d tuboid(s) classified, %d unreadable -> %s", len(rows), len(failures), out)
    return PredictDirResult(results=out, n_classified=len(rows), version=version, failures=failures)
