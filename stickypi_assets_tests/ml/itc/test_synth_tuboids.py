"""Synthetic deployment ground truth → tuboid folders + database.db, and the synthetic label list."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from stickypi_assets.formats.itc_database import read_annotations
from stickypi_assets.formats.labels import LabelMap
from stickypi_assets.formats.names import parse_stem
from stickypi_assets.formats.tuboids import TILE_WINDOW_S, masked_square_tile, read_tuboid
from stickypi_assets.ml.itc.config import ItcConfig
from stickypi_assets.ml.itc.dataset import load_itc_data
from stickypi_assets.storage.keys import raw_image_key
from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets.synth import SynthConfig, generate
from stickypi_assets.synth.taxa import DEFAULT_TAXA, REAL_TAXON, TAXA
from stickypi_assets.synth.tuboids import SYNTH_LABELS, synth_labels, taxon_pattern, write_synth_tuboids

SMALL = SynthConfig(
    devices=1, days=1, seed=2, width=800, height=600, arrival_rate_day=6, arrival_rate_night=3, interval_s=2400,
    jpeg_quality=90,
)  # fmt: skip
# Reference default labels (5.4) of the six synthetic taxa.
REFERENCE_DEFAULT = {
    "sciaridae": 9, "muscidae": 8, "cicadellidae": 3, "coccinellidae": 12, "culicidae": 7, "drosophila_suzukii": 4,
}  # fmt: skip


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("synth_itc")
    store = LocalObjectStore(root / "store")
    generate(SMALL, store)
    return store, write_synth_tuboids(store, root / "tuboids", max_tiles_in_memory=50)


def test_synthetic_taxa_map_onto_label_patterns():
    label_map = LabelMap.from_config(SYNTH_LABELS)
    assert label_map.n_classes == len(DEFAULT_TAXA) + 1
    for k, key in enumerate(DEFAULT_TAXA):
        spec = TAXA[key]
        assert label_map.label_for(spec.taxon) == k
        assert [v or "" for v in label_map.taxonomy_for(k).values()] == list(spec.levels)
        assert ItcConfig().label_map.label_for(spec.taxon) == REFERENCE_DEFAULT[key]  # the 18 reference classes
    assert label_map.label_for(REAL_TAXON) == len(DEFAULT_TAXA)  # real-sprite insects: the catch-all
    suzukii = taxon_pattern(TAXA["drosophila_suzukii"].taxon)
    assert suzukii == r"^Insecta\.Diptera\.Drosophilidae\.Drosophila\.Drosophila suzukii.*"  # the reference's
    assert re.match(suzukii, "Insecta.Diptera.Drosophilidae.Drosophila.Drosophila suzukii")
    subset = synth_labels(["culicidae", "muscidae"], catch_all=False)
    assert sorted(label for _, label in subset) == [0, 1]
    with pytest.raises(ValueError):
        synth_labels(["dragonfly"])


def test_tuboids_follow_the_ground_truth(synth, tmp_path: Path):
    store, result = synth
    frames = pd.read_parquet(store.local_path("ground_truth/frames.parquet"))
    tracks = pd.read_parquet(store.local_path("ground_truth/tracks.parquet")).set_index("insect_id")
    visible = frames[frames["status"] == "visible"]
    assert len(result.written) >= 20 and len(result.written) + len(result.skipped) == len(tracks)
    for tuboid_id, reason in result.skipped:
        assert len(visible[visible["insect_id"] == tuboid_id]) < 3 or "within 24 h" in reason
    assert result.taxa() == dict(sorted(pd.Series([t.taxon for t in result.written]).value_counts().items()))
    for written in result.written[:: max(1, len(result.written) // 8)]:
        tuboid = read_tuboid(written.directory)
        assert str(tuboid.id) == written.tuboid_id and written.directory.parent.name == tuboid.id.series_id
        rows = visible[visible["insect_id"] == written.tuboid_id].sort_values("datetime")
        assert [f.stem for f in tuboid.frames] == rows["image_stem"].tolist()
        assert [f.centroid_x for f in tuboid.frames] == pytest.approx(rows["centroid_x"].tolist(), abs=1e-6)
        first = tuboid.frames[0].datetime
        assert tuboid.n_tiles == sum((f.datetime - first).total_seconds() <= TILE_WINDOW_S for f in tuboid.frames)
        assert written.taxon == tracks.loc[written.tuboid_id, "taxon"]
        # tile 0 is the masked crop of the first visible frame (re-encoded at JPEG quality 100)
        row = rows.iloc[0]
        name = parse_stem(row["image_stem"])
        image = cv2.imdecode(np.frombuffer(store.get_bytes(raw_image_key(name.device, name.stem)), np.uint8), 1)
        tile, scale = masked_square_tile(image, np.array(row["polygon"].tolist()))
        assert scale == pytest.approx(tuboid.frames[0].scale, rel=1e-5)
        assert np.abs(tile.astype(int) - tuboid.tiles[0]).mean() < 3
        assert tuboid.context_jpeg is not None


def test_database_labels_every_written_tuboid_and_trains_cleanly(synth):
    store, result = synth
    rows = read_annotations(result.database)
    assert sorted(r.tuboid_id for r in rows) == [t.tuboid_id for t in result.written]
    assert {r.user for r in rows} == {"stickypi-synth"}
    data = load_itc_data(result.root, ItcConfig(labels=SYNTH_LABELS, input_size=32))
    assert data.report.skipped == [] and data.report.unannotated == []
    assert len(data.train) + len(data.validation) == len(result.written)
    # a second run replaces the database instead of appending duplicates
    again = write_synth_tuboids(store, result.root)
    assert len(read_annotations(again.database)) == len(rows)
