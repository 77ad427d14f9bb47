"""Hand-made tuboids, annotation rows and tiny ITC bundles shared by the ITC tests (no synthetic deployment).

A "species" here is a flat colour plus an insect size: tiles are a coloured disc on black (like a masked
insect), so a tiny network separates them in a few rounds and every test stays well under a second or two.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from stickypi_assets.formats.itc_database import TuboidAnnotation, write_annotations
from stickypi_assets.formats.tuboids import TILE_SIZE, Tuboid, TuboidFrame, TuboidId, write_tuboid
from stickypi_assets.ml.itc.config import ItcConfig, save_config

DEVICE = "0a1b2c3d"
START = datetime(2020, 7, 1, 22, tzinfo=UTC)
END = datetime(2020, 7, 8, 12, tzinfo=UTC)

#: Two classes + a catch-all, in the reference's pattern style.
LABELS = [
    [r"^Insecta\.Diptera\.Muscidae.*", 0],
    [r"^Insecta\.Coleoptera\.Coccinellidae.*", 1],
    [r"^Insecta.*", 2],
]
MUSCIDAE = ("Insecta", "Diptera", "Muscidae", "", "")
COCCINELLIDAE = ("Insecta", "Coleoptera", "Coccinellidae", "", "")
COLOURS = {"Muscidae": (60, 60, 60), "Coccinellidae": (30, 40, 210)}  # BGR: grey fly, red beetle

TINY = ItcConfig(
    labels=LABELS,
    backbone="resnet18",
    input_size=32,
    n_shots=3,
    ims_per_batch=4,
    optimizer="adamw",
    base_lr=1e-3,
    gamma=1.0,
    n_rounds=4,
    checkpoint_period=2,
    inference_batch_size=8,
)


def tuboid_id(index: int, device: str = DEVICE) -> str:
    return str(TuboidId(device=device, start=START, end=END, version=None, index=index))


def make_tuboid(
    root: Path,
    index: int,
    colour: tuple[int, int, int],
    *,
    n_frames: int = 4,
    scale: float = 4.0,
    seed: int = 0,
    context: bool = False,
) -> Path:
    """Write a tuboid of ``n_frames`` frames 20 min apart: a coloured disc (radius varies a little) on black."""
    rng = np.random.default_rng([seed, index])
    frames, tiles = [], []
    for k in range(n_frames):
        tile = np.zeros((TILE_SIZE, TILE_SIZE, 3), dtype=np.uint8)
        radius = int(rng.integers(70, 100))
        jitter = rng.integers(-15, 16, size=3)
        fill = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(colour, jitter, strict=True))
        cv2.circle(tile, (112, 112), radius, fill, -1)
        tiles.append(tile)
        when = START + timedelta(hours=1, minutes=20 * k)
        frames.append(TuboidFrame(DEVICE, when, 100.0 + k, 200.0, scale))
    tid = TuboidId.parse(tuboid_id(index))
    jpeg = cv2.imencode(".jpg", tiles[0])[1].tobytes() if context else None
    return write_tuboid(root, Tuboid(id=tid, frames=frames, tiles=tiles, context_jpeg=jpeg))


def annotation(index: int, taxon: Sequence[str], when: float, user: str = "alice") -> TuboidAnnotation:
    type_, order, family, genus, species = taxon
    return TuboidAnnotation(tuboid_id(index), user, type_, order, family, genus, species, None, None, None, when)


def make_bundle(
    root: Path, config: ItcConfig = TINY, *, n_per_class: int = 8, rows: Sequence[TuboidAnnotation] | None = None
) -> Path:
    """A bundle with ``n_per_class`` tuboids of each of Muscidae and Coccinellidae (+ their database.db)."""
    data = root / "data"
    annotations = []
    index = 0
    for taxon, scale in ((MUSCIDAE, 3.0), (COCCINELLIDAE, 5.0)):
        for _ in range(n_per_class):
            make_tuboid(data, index, COLOURS[taxon[2]], scale=scale)
            annotations.append(annotation(index, taxon, 1.6e9 + index))
            index += 1
    write_annotations(data / "database.db", rows if rows is not None else annotations)
    save_config(config, root / "config" / "config.yaml")
    return root


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory: pytest.TempPathFactory):
    """A tiny bundle trained for 4 rounds (shared, read-only: copy it before training it further)."""
    from stickypi_assets.ml.itc.train import train

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        bundle = make_bundle(tmp_path_factory.mktemp("itc") / "bundle")
        train(bundle, progress=False)
    finally:
        torch.set_num_threads(previous)
    return bundle
