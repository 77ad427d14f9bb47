"""Tracking metrics (motmetrics) against hand-computed cases."""

from __future__ import annotations

import pandas as pd
import pytest

from stickypi_assets.ml.sim.evaluate import tracking_scores, tuboid_observations
from stickypi_assets.ml.sim.tracking import track_frames
from stickypi_assets_tests.ml.sim.helpers import DEVICE, IouMatcher, frame


def boxes(rows: list[tuple[str, str, float, float]], id_column: str) -> pd.DataFrame:
    return pd.DataFrame(
        [{"frame": f, id_column: i, "bbox_x": x, "bbox_y": y, "bbox_w": 10, "bbox_h": 10} for f, i, x, y in rows]
    )


FRAMES = ["f0", "f1", "f2", "f3"]
# Truth: insect A at (0, 0) and B at (100, 100) in the four frames.
TRUTH = boxes([(f, "A", 0, 0) for f in FRAMES] + [(f, "B", 100, 100) for f in FRAMES], "insect_id")


def test_split_track_and_false_positive_by_hand():
    # A is split into p1 (f0, f1) and p2 (f2, f3); B is p3 throughout; p4 is a false positive in f1.
    pred = boxes(
        [("f0", "p1", 0, 0), ("f1", "p1", 1, 0), ("f2", "p2", 0, 1), ("f3", "p2", 0, 0)]
        + [(f, "p3", 100, 100) for f in FRAMES]
        + [("f1", "p4", 500, 500)],
        "track_id",
    )
    s = tracking_scores(TRUTH, pred, FRAMES)
    # 8 truths, 9 predictions, all truths matched, 1 false positive, 1 identity switch (A: p1 -> p2).
    assert s["num_objects"] == 8 and s["num_predictions"] == 9
    assert s["num_misses"] == 0 and s["num_false_positives"] == 1 and s["num_switches"] == 1
    assert s["mota"] == pytest.approx(1 - (0 + 1 + 1) / 8)
    # Best one-to-one identity assignment: A-p1 (or A-p2) 2 frames, B-p3 4 frames → IDTP 6,
    # IDFP 9 - 6 = 3, IDFN 8 - 6 = 2; IDF1 = 2·6 / (2·6 + 3 + 2) = 12/17.
    assert s["idf1"] == pytest.approx(12 / 17)
    assert s["idp"] == pytest.approx(6 / 9) and s["idr"] == pytest.approx(6 / 8)
    assert s["mostly_tracked"] == 2
    assert "IDF1 0.706" in s.summary()


def test_missed_frames_and_iou_gate():
    # B is found only in f0 and f1; A's box in f3 is shifted by 6 px: IoU 4·10/(200-40) = 0.25 < 0.5, a miss
    # plus a false positive (with min_iou 0.2 it matches).
    pred = boxes(
        [("f0", "a", 0, 0), ("f1", "a", 0, 0), ("f2", "a", 0, 0), ("f3", "a", 6, 0)]
        + [("f0", "b", 100, 100), ("f1", "b", 100, 100)],
        "track_id",
    )
    s = tracking_scores(TRUTH, pred, FRAMES)
    assert s["num_misses"] == 3 and s["num_false_positives"] == 1 and s["num_switches"] == 0
    assert s["recall"] == pytest.approx(5 / 8) and s["precision"] == pytest.approx(5 / 6)
    loose = tracking_scores(TRUTH, pred, FRAMES, min_iou=0.2)
    assert loose["num_misses"] == 2 and loose["num_false_positives"] == 0
    assert loose["idf1"] == pytest.approx(2 * 6 / (8 + 6))


def test_perfect_tracking_of_tracker_output():
    # Frames from the tracker helpers (squares of half-size 10 at the given centres) tracked by IoU.
    frames = [frame(k, [(50 + k, 50), (300, 300 - k)]) for k in range(5)]
    result = track_frames(frames, IouMatcher(), DEVICE)
    pred = tuboid_observations(result.tuboids)
    truth = pred.assign(insect_id=pred.track_id.map({t: f"insect{n}" for n, t in enumerate(pred.track_id.unique())}))
    s = tracking_scores(truth, pred, [f.key for f in frames])
    assert s["idf1"] == 1.0 and s["mota"] == 1.0 and s["num_objects"] == 10


def test_missing_columns_are_reported():
    with pytest.raises(ValueError, match="lacks columns"):
        tracking_scores(TRUTH, TRUTH.rename(columns={"insect_id": "track_id"}).drop(columns="bbox_w"))
