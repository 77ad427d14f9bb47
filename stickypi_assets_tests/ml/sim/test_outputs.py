"""Tuboid folders in the original layout, tracks.json, and the video."""

from __future__ import annotations

import json
from datetime import timedelta

import cv2
import pytest
import torch

from stickypi_assets.formats.tuboids import read_tuboids
from stickypi_assets.ml.sim.config import SimConfig
from stickypi_assets.ml.sim.model import SiameseMatcher
from stickypi_assets.ml.sim.outputs import interpolated_bbox, write_tuboids, write_video
from stickypi_assets.ml.sim.tracking import TrackState, track_frames
from stickypi_assets_tests.ml.sim.helpers import DEVICE, STEP_S, T0, TINY_NET, IouMatcher, card, frame_at, square


def series(n: int, tracks: dict[str, tuple[int, int, int, int]], t0=T0):
    """Frames with real (small) images; tracks: name → (x, y, first frame, last frame)."""
    out = []
    for k in range(n):
        centres = [(x, y) for x, y, a, b in tracks.values() if a <= k <= b]
        when = t0 + timedelta(seconds=k * STEP_S)
        out.append(frame_at(when, [square(x, y) for x, y in centres], image=card(centres=centres, seed=k)))
    return out


def test_write_tuboids_and_video(tmp_path):
    frames = series(6, {"a": (40, 40, 0, 5), "b": (150, 100, 1, 5), "c": (200, 30, 3, 5)})
    result = track_frames(frames, IouMatcher(), DEVICE)
    assert sorted(len(t) for t in result.tuboids) == [5, 6]
    start, end = T0, T0 + timedelta(days=1)
    records = write_tuboids(tmp_path, result.tuboids, DEVICE, start, end, "abc123")
    tuboids, failures = read_tuboids(tmp_path)
    assert failures == []
    assert [str(t.id) for t in tuboids] == [
        f"{DEVICE}.2020-06-20_00-00-00.2020-06-21_00-00-00.abc123.0000",
        f"{DEVICE}.2020-06-20_00-00-00.2020-06-21_00-00-00.abc123.0001",
    ]
    assert [len(t.frames) for t in tuboids] == [6, 5] and [t.n_tiles for t in tuboids] == [6, 5]
    assert tuboids[0].frames[0].centroid_x == 40.0 and tuboids[0].frames[0].scale == pytest.approx(224 / 21, abs=1e-6)
    assert tuboids[0].tiles[0].shape == (224, 224, 3) and tuboids[0].context_jpeg
    manifest = json.loads((tmp_path / tuboids[0].id.series_id / "tracks.json").read_text())
    assert [m["track_id"] for m in manifest] == [r.track_id for r in records]
    assert manifest[0]["track_id"] == f"{DEVICE}.2020-06-20_00-00-00.40_40"

    video = write_video(tmp_path / "v.mp4", frames, result.tuboids, size=(320, 240), fps=4)
    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    ok, img = cap.read()
    assert ok and img.shape == (240, 320, 3)
    cap.release()


def test_short_continued_segment_is_skipped_with_reason(tmp_path):
    d0 = series(6, {"a": (40, 40, 0, 5)})
    r0 = track_frames(d0, IouMatcher(), DEVICE, end=T0 + timedelta(hours=2))
    d1 = series(2, {"a": (40, 40, 0, 1)}, t0=T0 + timedelta(hours=2))
    r1 = track_frames(d1, IouMatcher(), DEVICE, state=r0.state)
    assert len(r1.tuboids) == 1 and r1.tuboids[0].previous_frames == 6
    records = write_tuboids(tmp_path, r1.tuboids, DEVICE, T0, T0 + timedelta(days=1), None)
    assert records[0].directory is None and "at least 3" in records[0].reason


def test_interpolated_bbox():
    frames = series(3, {"a": (40, 40, 0, 0)}) + series(1, {"a": (60, 40, 0, 0)}, t0=T0 + timedelta(seconds=2 * STEP_S))
    frames = [frames[0], frames[3]]
    result = track_frames(frames, IouMatcher(), DEVICE, config=SimConfig(min_tuboid_frames=1, match_threshold=0.01))
    tub = [t for t in result.tuboids if len(t) == 2][0]
    assert interpolated_bbox(tub, T0 + timedelta(seconds=STEP_S)) == (40.0, 30.0, 21.0, 21.0)
    assert interpolated_bbox(tub, T0 - timedelta(seconds=1)) is None


def test_real_matcher_tracks_and_continues_days_without_previous_images():
    """The Siamese matcher (random weights) end to end: crops, pinned tail crops across the day boundary."""
    torch.manual_seed(0)
    matcher = SiameseMatcher.from_config(SimConfig(**TINY_NET))
    config = SimConfig(**TINY_NET, match_threshold=0.0, stitch_threshold=0.0, min_tuboid_frames=1,
                       gating_radius_px=50)
    d0 = series(3, {"a": (40, 40, 0, 2), "b": (150, 100, 0, 2)})
    r0 = track_frames(d0, matcher, DEVICE, config=config, end=T0 + timedelta(hours=1))
    assert len(r0.state.tracks) == 2 and all(t.tail_crop.any() for t in r0.state.tracks)
    d1 = series(3, {"a": (40, 40, 0, 2), "b": (150, 100, 0, 2)}, t0=T0 + timedelta(hours=1))
    for f in d0:
        f.image = None  # day 1 must not need day 0's pixels
    state = TrackState.from_json(r0.state.to_json())
    r1 = track_frames(d1, matcher, DEVICE, config=config, state=state)
    r1b = track_frames(d1, matcher, DEVICE, config=config, state=TrackState.from_json(r0.state.to_json()))
    assert [t.track_id for t in r1.tuboids] == [t.track_id for t in r1b.tuboids]
    # both tracks continue under their day-0 ids, each at its own place
    assert {t.track_id for t in r1.tuboids} == {t.track_id for t in r0.state.tracks}
    for t in r1.tuboids:
        assert t.previous_frames == 3
        assert t.observations[0].instance.centroid == pytest.approx(t.head_centroid)
