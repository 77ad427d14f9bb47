"""Change-aware inference: unchanged tiles carry over exactly, changed ones re-run, nothing stale survives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest

from stickypi_assets.formats.names import format_datetime
from stickypi_assets.ml.uid.change import ChangeAwarePredictor, thumbnail
from stickypi_assets.ml.uid.config import UidConfig
from stickypi_assets.ml.uid.predict import PredictTimings, decode_jpeg, predict_image
from stickypi_assets.pipeline.raw_images import index_device_day
from stickypi_assets.pipeline.uid_segmentations import segment_device_day
from stickypi_assets.storage.keys import raw_image_key
from stickypi_assets.storage.object_store import LocalObjectStore
from stickypi_assets_tests.ml.uid.helpers import BlobDetector, rectangle, synthetic_card

# 640 x 480 frames, padded by 16: a 3 x 2 grid of 320 px tiles (image x from -16, 160 and 336; y from -16 and 176)
CONFIG = UidConfig(score_threshold=0.5, tile_size=320, tile_overlap=64, original_image_padding=16)
W, H = 640, 480
# in tile 0; in tiles 0 and 1; in tile 5; in tile 3
INSECTS = [
    rectangle(30, 30, 28, 16), rectangle(220, 60, 26, 14), rectangle(540, 400, 30, 18), rectangle(80, 420, 22, 22),
]  # fmt: skip


def jpeg_round_trip(image: np.ndarray, quality: int = 90) -> np.ndarray:
    return decode_jpeg(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes())


def outlines(instances) -> list[tuple]:
    return sorted((inst.name, inst.polygon.tobytes(), inst.score) for inst in instances)


def tiles_run(detector: BlobDetector) -> int:
    return sum(detector.calls)


def test_an_unchanged_frame_carries_over_exactly_the_detections_of_the_last_pass():
    detector = BlobDetector()
    predictor = ChangeAwarePredictor(detector, CONFIG)
    first = jpeg_round_trip(synthetic_card(W, H, INSECTS))
    full = predictor.predict(first, "f0")
    assert full.full_pass == "first frame" and len(full.tiles_run) == full.n_tiles == 6
    assert len(full.instances) == 4 and full.carried_from == [None] * 4
    assert outlines(full.instances) == outlines(predict_image(BlobDetector(), first, CONFIG))
    # the same card, re-encoded at another JPEG quality and 8 % brighter: noise and light, not a change
    brighter = np.clip(synthetic_card(W, H, INSECTS).astype(np.float32) * 1.08, 0, 255).astype(np.uint8)
    again = predictor.predict(jpeg_round_trip(brighter, quality=75), "f1")
    assert again.full_pass is None and again.tiles_run == []
    assert tiles_run(detector) == 6  # the detector did not run again
    assert outlines(again.instances) == outlines(full.instances)
    assert again.carried_from == ["f0"] * 4


def test_a_changed_tile_is_re_run_and_an_arriving_insect_is_found_on_its_frame():
    detector = BlobDetector()
    predictor = ChangeAwarePredictor(detector, CONFIG)
    timings = PredictTimings()
    predictor.predict(jpeg_round_trip(synthetic_card(W, H, INSECTS)), "f0", timings=timings)
    newcomer = rectangle(580, 60, 24, 14)  # top right: only the top-right tile covers it
    frame = predictor.predict(jpeg_round_trip(synthetic_card(W, H, [*INSECTS, newcomer])), "f1", timings=timings)
    assert frame.full_pass is None and frame.tiles_run == [2]
    assert len(frame.instances) == 5
    found = {inst.polygon.tobytes(): source for inst, source in zip(frame.instances, frame.carried_from, strict=True)}
    fresh = [inst for inst, source in zip(frame.instances, frame.carried_from, strict=True) if source is None]
    assert len(fresh) == 1 and fresh[0].bbox[:2] == (580, 60)  # found on the frame it arrives, by the re-run
    assert sorted(s for s in found.values() if s) == ["f0"] * 4
    assert (timings.images, timings.tiles, timings.tiles_carried) == (2, 7, 5)
    # an insect leaving (falls off, is eaten) is a change too: its tile re-runs, no stale detection survives
    gone = predictor.predict(jpeg_round_trip(synthetic_card(W, H, [*INSECTS[1:], newcomer])), "f2")
    assert 0 in gone.tiles_run and len(gone.instances) == 4
    assert all(inst.bbox[:2] != (30, 30) for inst in gone.instances)


def test_full_passes_after_k_frames_an_illumination_change_and_a_new_frame_size():
    config = CONFIG.replace(change_full_every=3)
    predictor = ChangeAwarePredictor(BlobDetector(), config)
    card = jpeg_round_trip(synthetic_card(W, H, INSECTS))
    reasons = [predictor.predict(card, f"f{k}").full_pass for k in range(5)]
    assert reasons == ["first frame", None, None, "every 3 frames", None]
    flash = np.clip(card.astype(np.float32) * 0.6, 0, 255).astype(np.uint8)  # a dark night frame with flash
    assert predictor.predict(flash, "night").full_pass == "illumination change"
    assert predictor.predict(flash, "night2").full_pass is None
    assert predictor.predict(cv2.resize(card, (W // 2, H // 2)), "small").full_pass == "frame size changed"
    off = ChangeAwarePredictor(BlobDetector(), CONFIG.replace(change_aware=False))
    assert [off.predict(card, f"f{k}").full_pass for k in range(2)] == ["change-aware inference off"] * 2


class FailOnce(BlobDetector):
    """Fails once when told to (out of memory on one frame)."""

    fail = False

    def predict_batch(self, images):
        if self.fail:
            self.fail = False
            raise RuntimeError("out of memory")
        return super().predict_batch(images)


def test_a_frame_whose_inference_fails_leaves_the_carried_state_as_it_was():
    detector = FailOnce()
    predictor = ChangeAwarePredictor(detector, CONFIG)
    card = jpeg_round_trip(synthetic_card(W, H, INSECTS))
    predictor.predict(card, "f0")
    moved = jpeg_round_trip(synthetic_card(W, H, [rectangle(44, 44, 28, 16), *INSECTS[1:]]))
    detector.fail = True
    with pytest.raises(RuntimeError, match="out of memory"):
        predictor.predict(moved, "f1")
    # the failed frame's change is still a change for the next one: tile 0 re-runs, not carried from a stale pass
    again = predictor.predict(moved, "f2")
    assert 0 in again.tiles_run
    assert {inst.bbox[:2] for inst in again.instances} >= {(44, 44)}


def test_a_corrupt_frame_in_the_middle_of_a_day_does_not_poison_the_carried_state(tmp_path):
    store = LocalObjectStore(tmp_path)
    device, start = "0a5bb6f4", datetime(2020, 6, 20, 8, tzinfo=UTC)
    frames = [synthetic_card(W, H, INSECTS), None, synthetic_card(W, H, INSECTS), synthetic_card(W, H, INSECTS[:3])]
    for k, image in enumerate(frames):
        when = start + timedelta(minutes=20 * k)
        quality = [cv2.IMWRITE_JPEG_QUALITY, 90 - k]  # distinct bytes: the same card twice is no duplicate upload
        data = b"\xff\xd8 not a jpeg" if image is None else cv2.imencode(".jpg", image, quality)[1].tobytes()
        store.put_bytes(raw_image_key(device, f"{device}.{format_datetime(when)}"), data)
    images = index_device_day(store, device, start.date()).rows
    detector = BlobDetector()
    day = segment_device_day(store, images, detector, CONFIG, "v", device=device, day=start.date())
    rows = day.images.sort_values("datetime").reset_index(drop=True)
    assert list(rows.status) == ["ok", "skipped", "ok", "ok"]
    assert list(rows.tiles_run[[0, 2]]) == [6, 0] and rows.full_pass[0] == "first frame"
    assert rows.tiles_run[3] >= 1 and list(rows.n_instances[[0, 2, 3]]) == [4, 4, 3]
    inst = day.instances
    first_key = rows.image_key[0]
    carried = inst[inst.image_key == rows.image_key[2]]
    assert list(carried.carried_from) == [first_key] * 4  # carried over the corrupt frame from the first one
    assert inst[inst.image_key == first_key].carried_from.isna().all()


def test_thumbnails_ignore_a_global_change_of_brightness():
    card = synthetic_card(W, H, INSECTS)
    a, median_a = thumbnail(card, 8)
    b, median_b = thumbnail((card * 0.5).astype(np.uint8), 8)
    assert a.shape == (H // 8, W // 8) and median_b == pytest.approx(median_a / 2, rel=0.02)
    assert np.abs(a - b).max() < 0.05
