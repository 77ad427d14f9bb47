"""One small synthetic deployment shared by the synth tests (generating it is the slow part)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets.synth import SynthConfig, generate

#: Small frames, busy card, frequent gaps: every kind of ground-truth event happens within two days.
SMALL = SynthConfig(
    devices=1,
    days=2,
    seed=11,
    width=640,
    height=480,
    arrival_rate_day=8,
    arrival_rate_night=3,
    corrupt_frames=2,
    missing_frame_prob=0.05,
    occlusion_prob=0.02,
    escape_prob=0.15,
    decay_prob=0.3,
    jpeg_quality=85,
)


@dataclass
class Run:
    config: SynthConfig
    root: Path
    store: LocalObjectStore
    summary: dict
    images: pd.DataFrame
    frames: pd.DataFrame
    tracks: pd.DataFrame


def load_run(config: SynthConfig, root: Path, summary: dict) -> Run:
    return Run(
        config=config,
        root=root,
        store=LocalObjectStore(root),
        summary=summary,
        images=pd.read_parquet(root / "ground_truth" / "images.parquet"),
        frames=pd.read_parquet(root / "ground_truth" / "frames.parquet"),
        tracks=pd.read_parquet(root / "ground_truth" / "tracks.parquet"),
    )


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("synth_small")
    summary = generate(SMALL, LocalObjectStore(root))
    return load_run(SMALL, root, summary)
