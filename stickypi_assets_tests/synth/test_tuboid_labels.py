"""The ITC's simulated annotator: which true insect a tuboid follows, by hand-computed cases and on real tuboids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stickypi_assets.formats.itc_database import read_annotations
from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets.synth import SynthConfig, generate
from stickypi_assets.synth.tuboid_labels import TruthOutlines, label_tuboids
from stickypi_assets.synth.tuboids import write_synth_tuboids

SQUARE = np.array([[0, 0], [10, 0], [10, 10], [0, 10]])


def outlines() -> TruthOutlines:
    return TruthOutlines(pd.DataFrame({
        "image_stem": ["d.1", "d.1", "d.2"],
        "insect_id": ["A", "B", "A"],
        "polygon": [SQUARE, SQUARE + [100, 0], SQUARE + [5, 5]],
    }))  # fmt: skip


def test_a_point_lies_on_the_outline_holding_it_or_the_nearest_within_reach():
    truth = outlines()
    assert truth.insect_at("d.1", 5, 5, 10) == "A"  # inside A
    assert truth.insect_at("d.1", 105, 5, 10) == "B"  # inside B
    assert truth.insect_at("d.1", 18, 5, 10) == "A"  # 8 px right of A's edge
    assert truth.insect_at("d.1", 50, 5, 10) is None  # 40 px from both
    assert truth.insect_at("d.3", 5, 5, 10) is None  # an image with no visible insect


def test_a_track_follows_the_insect_most_of_its_frames_lie_on():
    truth = outlines()
    followed = truth.follows([("d.1", 5, 5), ("d.2", 8, 8), ("d.1", 105, 5)])
    assert (followed.insect, followed.n, followed.n_points) == ("A", 2, 3)
    assert followed.share == pytest.approx(2 / 3) and "2/3 frames" in followed.why
    split = truth.follows([("d.1", 5, 5), ("d.1", 105, 5), ("d.1", 50, 5), ("d.3", 0, 0)])
    assert split.insect is None and "holds 1 of its 4 frames" in split.why  # 1/4 < 50 %
    assert truth.follows([("d.1", 5, 5), ("d.1", 105, 5)], min_share=0.5).insect == "A"  # tie: first id
    assert truth.follows([("d.1", 50, 5)]).insect is None
    with pytest.raises(ValueError, match="min_share"):
        truth.follows([("d.1", 5, 5)], min_share=0)


def test_ground_truth_tuboids_are_labelled_with_their_own_insect(tmp_path: Path):
    """Tuboids cut from the truth itself: each follows its own insect, and database.db holds those labels."""
    store = LocalObjectStore(tmp_path / "store")
    generate(SynthConfig(devices=1, days=1, seed=3, width=640, height=480, arrival_rate_day=6, interval_s=2400), store)
    written = write_synth_tuboids(store, tmp_path / "tuboids", database=False).written
    assert len(written) >= 10
    (tmp_path / "tuboids" / "broken.series" / "broken.series.0001").mkdir(parents=True)
    (tmp_path / "tuboids" / "broken.series" / "broken.series.0001" / "metadata.txt").write_bytes(b"\xff\xfe")
    labels = label_tuboids(tmp_path / "tuboids", store)
    own = {t.tuboid_id: t.taxon for t in written}
    right = [tuboid for tuboid, insect, taxon, _ in labels.labelled if insect == tuboid and own[tuboid] == taxon]
    assert len(right) >= 0.9 * len(written), labels.unlabelled
    assert ("broken.series.0001" in {folder for folder, _ in labels.unlabelled})  # reported, not fatal
    rows = read_annotations(labels.database)
    assert sorted(r.tuboid_id for r in rows) == sorted(t for t, *_ in labels.labelled)
    assert {r.tuboid_id: r.taxon for r in rows} == {t: taxon for t, _, taxon, _ in labels.labelled}
    assert label_tuboids(tmp_path / "tuboids", store).labelled == labels.labelled  # replaced, not appended
    assert len(read_annotations(labels.database)) == len(rows)
