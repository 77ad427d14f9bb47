"""Shots, colour order, normalisation, size feature and augmentation (reference 5.2, defects 21-22 fixed)."""

from __future__ import annotations

import numpy as np
import pytest

from stickypi_assets.ml.itc.inputs import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    augment_tile,
    inference_shot_indices,
    normalise,
    prepare_tiles,
    size_feature,
    training_shot_indices,
)


def test_inference_shots_are_evenly_spaced_and_deterministic():
    assert inference_shot_indices(11, 6).tolist() == [0, 2, 4, 6, 8, 10]
    assert inference_shot_indices(78, 6).tolist() == [0, 15, 31, 46, 62, 77]
    assert inference_shot_indices(2, 6).tolist() == [0, 0, 0, 1, 1, 1]
    assert inference_shot_indices(5, 1).tolist() == [0]
    with pytest.raises(ValueError):
        inference_shot_indices(0, 6)


def test_training_shots_start_with_tile_zero():
    rng = np.random.default_rng(0)
    for n_tiles in (2, 3, 40):
        idx = training_shot_indices(n_tiles, 6, rng)
        assert idx[0] == 0 and len(idx) == 6 and idx[1:].min() >= 1 and idx[1:].max() < n_tiles
    assert training_shot_indices(1, 3, rng).tolist() == [0, 0, 0]
    assert training_shot_indices(40, 6, np.random.default_rng(5)).tolist() == (
        training_shot_indices(40, 6, np.random.default_rng(5)).tolist()
    )


def test_size_feature_is_log2_length_over_64():
    # scale = 224 / length: 64 px -> 0, 128 px -> 1, 16 px -> -2
    assert size_feature([224 / 64, 224 / 128, 224 / 16]) == pytest.approx([0.0, 1.0, -2.0])
    with pytest.raises(ValueError):
        size_feature([0.0])


def test_tiles_become_rgb_and_are_normalised_with_imagenet_statistics():
    blue_bgr = np.zeros((224, 224, 3), dtype=np.uint8)
    blue_bgr[..., 0] = 255  # BGR blue
    rgb = prepare_tiles([blue_bgr], 32)
    assert rgb.shape == (1, 32, 32, 3)
    assert rgb[0, :, :, 2].min() == 255 and rgb[0, :, :, :2].max() == 0  # blue is the last RGB channel
    x = normalise(rgb)
    assert x.shape == (1, 3, 32, 32) and x.dtype == np.float32
    expected = (np.array([0.0, 0.0, 1.0]) - IMAGENET_MEAN) / IMAGENET_STD
    assert x[0, :, 0, 0] == pytest.approx(expected, rel=1e-6)


def test_augmentation_keeps_shape_and_is_reproducible():
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 256, size=(48, 48, 3), dtype=np.uint8)
    a = augment_tile(tile, np.random.default_rng(1))
    b = augment_tile(tile, np.random.default_rng(1))
    assert a.shape == tile.shape and a.dtype == np.uint8 and np.array_equal(a, b)
    off = augment_tile(tile, rng, brightness=0, contrast=0, saturation=0, flip=False, rotate=False)
    assert np.array_equal(off, tile)
    # a rotation on an expanded canvas keeps the whole disc: black corners come in, nothing is cut off
    disc = np.zeros((64, 64, 3), dtype=np.uint8)
    disc[16:48, 16:48] = 200
    rotated = augment_tile(disc, np.random.default_rng(3), brightness=0, contrast=0, saturation=0, flip=False)
    assert rotated[0, 0].max() == 0 and rotated[32, 32].min() > 150
