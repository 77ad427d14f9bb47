"""Pair inputs: scalars checked by hand, crops cut once per instance, frames decoded once."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest

from stickypi_assets.ml.sim.features import CropStore, Frame, frame_pair_batch, pair_scalars
from stickypi_assets_tests.ml.sim.helpers import T0, square


def test_scalars_by_hand():
    a0 = square(100, 100, half=10)  # 20 x 20 px: area 400, centroid (100, 100)
    a1 = square(103, 104, half=20)  # 40 x 40 px: area 1600, centroid 5 px away
    assert a0.area == 400 and a1.area == 1600
    s = pair_scalars(a0, a1, 1200)
    assert s["log_d"] == pytest.approx(math.log10(6))  # log10(5 + 1) = 0.7782
    assert s["t"] == pytest.approx(math.log10(1201))  # 3.0795
    assert s["ar"] == pytest.approx(math.log10(4))  # |log10 1600 - log10 400| = 0.6021
    assert s["area_0"] == pytest.approx(math.log10(400))  # 2.6021

    f0 = Frame("a", T0, [a0, square(10, 10)])
    f1 = Frame("b", T0 + timedelta(seconds=1200), [square(50, 50), a1])
    batch = frame_pair_batch(f0, [0, 1], f1, [1, 0], CropStore())
    # the batched, vectorised scalars equal the plain formula pair by pair; fusion order [ar, log_d, area_0, t]
    expected = [pair_scalars(f0.instances[i], f1.instances[j], 1200) for i, j in ((0, 1), (1, 0))]
    np.testing.assert_allclose(batch.scalars(), [[e["ar"], e["log_d"], e["area_0"], e["t"]] for e in expected],
                               rtol=1e-6)


def test_degenerate_area_is_clamped():
    flat = square(5, 5)
    flat.polygon = np.array([[0, 0], [10, 0], [20, 0]], dtype=np.int32)  # zero area
    assert math.isfinite(pair_scalars(flat, square(5, 5), 10)["area_0"])


class CountingImage:
    def __init__(self, image: np.ndarray) -> None:
        self.image = image
        self.calls = 0

    def __call__(self) -> np.ndarray:
        self.calls += 1
        return self.image


def test_crops_cut_once_and_frames_decoded_once():
    img0 = np.zeros((200, 300, 3), np.uint8)
    img1 = np.zeros((200, 300, 3), np.uint8)
    img1[90:111, 90:111] = 255  # in frame 1, something bright where instance 0 of frame 0 was
    load0, load1 = CountingImage(img0), CountingImage(img1)
    f0 = Frame("f0", T0, [square(100, 100), square(200, 50), square(30, 150)], image=load0)
    f1 = Frame("f1", T0 + timedelta(seconds=60), [square(250, 150), square(60, 60), square(150, 150)], image=load1)
    store = CropStore(crop_size=105)
    rows, cols = np.meshgrid(range(3), range(3), indexing="ij")
    batch = frame_pair_batch(f0, rows.ravel(), f1, cols.ravel(), store)
    x0, x1, x1_a0 = batch.crop_arrays()
    assert x0.shape == (9, 105, 105) and x0.dtype == np.float32
    assert store.n_decoded == 2 and load0.calls == 1 and load1.calls == 1
    assert store.n_cut == 9  # x0 per frame-0 instance, x1 per frame-1 instance, x1_a0 per frame-0 instance
    # pairs are (i, j) row-major: the first three have a0 = instance 0, so frame 1 cut with its polygon is bright
    assert [float(x.max()) for x in x1_a0] == [1.0] * 3 + [0.0] * 6
    assert x0.max() == 0.0 and x1.max() == 0.0
    batch.crop_arrays()
    assert store.n_cut == 9 and store.n_decoded == 2  # cached


def test_crop_outside_image_is_black():
    f0 = Frame("f0", T0, [square(1000, 1000)], image=np.full((50, 50), 200, np.uint8))
    f1 = Frame("f1", T0 + timedelta(seconds=1), [square(10, 10)], image=np.full((50, 50), 200, np.uint8))
    x0, x1, _ = frame_pair_batch(f0, [0], f1, [0], CropStore()).crop_arrays()
    assert x0.max() == 0 and x1.max() > 0
