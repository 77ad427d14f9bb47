"""Training crops stay aligned with their targets; validation grid; size filter; colour jitter channels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stickypi_assets.ml.uid.config import UidConfig
from stickypi_assets.ml.uid.dataset import (
    RandomCropStream,
    adjust_hue,
    adjust_saturation,
    colour_jitter,
    crop_transform,
    grid_offsets,
    load_annotated_images,
    random_crop,
    read_annotated_images,
    split_images,
    validation_crops,
)
from stickypi_assets_tests.formats.test_uid_svg import BLUE_SQUARE, svg_doc
from stickypi_assets_tests.ml.uid.helpers import make_bundle, rectangle, synthetic_card

# An asymmetric "L": any wrong flip or rotation direction would misplace it.
L_SHAPE = np.array([[150, 100], [170, 100], [170, 150], [200, 150], [200, 170], [150, 170]], dtype=np.int32)


BLUE = (255, 0, 0)


def blue_pixels(image: np.ndarray) -> np.ndarray:
    """Pixels of the blue-painted object: neither the yellow card, the black padding nor their blend."""
    b, g, r = (image[:, :, k].astype(np.int32) for k in range(3))
    return ((b > 60) & (b > 2 * g) & (b > 2 * r)).astype(np.uint8)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("uid_bundle")
    config = UidConfig(crop_size=96, original_image_padding=32, min_visible_pixels=30)
    card = synthetic_card(320, 240, [L_SHAPE], colour=BLUE)
    val_polys = [rectangle(10, 10, 30, 30), rectangle(200, 120, 5, 5), rectangle(60, 60, 40, 25)]
    files = {
        "train_card": (card, [L_SHAPE], "train"),
        "val_card": (synthetic_card(320, 240, val_polys, colour=BLUE), val_polys, "validation"),
    }
    return make_bundle(root, config, files), config


def test_bundle_is_split_by_md5_and_tiny_objects_are_excluded(bundle):
    root, config = bundle
    images = load_annotated_images(root, config)
    train, val = split_images(images)
    assert [im.name for im in train] == ["train_card.svg"] and [im.name for im in val] == ["val_card.svg"]
    assert len(val[0].polygons) == 2 and val[0].n_excluded == 1  # the 5 x 5 px square is <= 20 px


# A JPEG header declaring 200 x 100 pixels and no scan: the SVG parses, the pixels never decode.
HEADER_ONLY_JPEG = (
    b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x64\x00\xc8\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01\xff\xd9"
)


def write_unusable_svgs(data_dir) -> dict[str, str]:
    """Three SVGs training cannot use, and a fragment of the reason each must be skipped with."""
    (data_dir / "deep.svg").write_bytes(svg_doc("<g>" * 100_000 + BLUE_SQUARE + "</g>" * 100_000))
    (data_dir / "not_xml.svg").write_text("<svg><image xlink:href='data:nope'")
    (data_dir / "no_pixels.svg").write_bytes(svg_doc(BLUE_SQUARE, jpeg=HEADER_ONLY_JPEG))
    return {
        "deep.svg": "deep.svg: elements nested deeper than 1000 levels",
        "no_pixels.svg": "no_pixels.svg: embedded image cannot be decoded",
        "not_xml.svg": "not_xml.svg: not well-formed XML",
    }


def test_unreadable_svgs_are_skipped_with_their_reason_and_the_rest_is_loaded(bundle, tmp_path, caplog):
    root, config = bundle
    copy = make_bundle(tmp_path / "b", config, {})
    (copy / "data").mkdir()
    for svg in (root / "data").glob("*.svg"):
        (copy / "data" / svg.name).write_bytes(svg.read_bytes())
    expected = write_unusable_svgs(copy / "data")
    with caplog.at_level("WARNING", logger="stickypi_assets.ml.uid.dataset"):
        images, skipped = read_annotated_images(copy, config)
    assert [im.name for im in images] == ["train_card.svg", "val_card.svg"]
    assert [name for name, _ in skipped] == sorted(expected)
    for name, reason in skipped:
        assert reason.startswith(expected[name])
        assert f"UID data: skipped {name}: {expected[name]}" in caplog.text
    assert [im.name for im in load_annotated_images(copy, config)] == ["train_card.svg", "val_card.svg"]


def test_a_bundle_without_a_usable_svg_is_a_clear_error(tmp_path):
    config = UidConfig()
    root = make_bundle(tmp_path / "b", config, {})
    (root / "data").mkdir()
    expected = write_unusable_svgs(root / "data")
    with pytest.raises(ValueError, match=r"no usable annotation SVG in .*data: all 3 skipped") as info:
        read_annotated_images(root, config)
    for reason in expected.values():
        assert reason in str(info.value)


@pytest.mark.parametrize("seed", range(12))
def test_random_crops_keep_the_polygon_on_its_pixels(bundle, seed):
    root, config = bundle
    (record,), _ = split_images(load_annotated_images(root, config))
    image = record.decode()
    rng = np.random.default_rng(seed)
    sample = random_crop(image, record, config, rng, jitter=False)
    assert sample.image.shape == (96, 96, 3) and sample.image.dtype == np.uint8
    target = sample.target
    dark = blue_pixels(sample.image)
    if len(target["labels"]) == 0:
        assert dark.sum() < config.min_visible_pixels  # nothing (visible enough) in this crop
        return
    (mask,) = target["masks"]
    assert mask.shape == (96, 96) and target["labels"].tolist() == [0]
    assert mask_iou(mask, dark) > 0.85  # bilinear resampling blurs a 1-px border
    ys, xs = np.nonzero(mask)
    assert target["boxes"].tolist() == [[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]]


@pytest.mark.parametrize("angle", [0.0, 37.0, 90.0, 211.0])
@pytest.mark.parametrize(("flip_x", "flip_y"), [(False, False), (True, False), (False, True), (True, True)])
def test_crop_transform_moves_image_and_polygon_together(angle, flip_x, flip_y):
    from stickypi_assets.ml.uid.dataset import rasterise_targets

    card = synthetic_card(320, 240, [L_SHAPE], colour=BLUE)
    matrix = crop_transform((175.0, 135.0), 128, angle, flip_x, flip_y)
    crop = cv2.warpAffine(card, matrix, (128, 128), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    target = rasterise_targets([L_SHAPE], [0], matrix, 128, 1)
    assert mask_iou(target["masks"][0], blue_pixels(crop)) > 0.85
    # the L's centre of mass goes where the matrix sends it
    ys, xs = np.nonzero(target["masks"][0])
    m = cv2.moments(L_SHAPE)
    expected = matrix[:, :2] @ np.array([m["m10"] / m["m00"], m["m01"] / m["m00"]]) + matrix[:, 2]
    np.testing.assert_allclose([xs.mean(), ys.mean()], expected, atol=1.0)


def test_rotation_turns_content_counter_clockwise_like_opencv():
    expected = cv2.getRotationMatrix2D((50.0, 50.0), 30.0, 1.0)
    matrix = crop_transform((50.0, 50.0), 101, 30.0)
    np.testing.assert_allclose(matrix, expected, atol=1e-9)


def test_validation_grid_is_centred_and_adds_no_empty_row_on_exact_multiples():
    assert grid_offsets(2592, 1024) == (240, [0, 1024, 2048])
    assert grid_offsets(1944, 1024) == (52, [0, 1024])
    assert grid_offsets(2048, 1024) == (0, [0, 1024])  # the original padded to 3072 here
    assert grid_offsets(1023, 512) == (1, [0, 512])  # odd padding: extra pixel first
    assert grid_offsets(100, 512) == (206, [0])


def test_validation_crops_place_targets_on_their_pixels(bundle):
    root, config = bundle
    _, (record,) = split_images(load_annotated_images(root, config))
    crops = validation_crops(record.decode(), record, config)
    assert len(crops) == 4 * 3  # 320 x 240 at 96 px: pad to 384 x 288
    pad_x, pad_y = (384 - 320) // 2, (288 - 240) // 2
    first = crops[0]
    # the 30 x 30 square at (10, 10) and the left end of the 40 x 25 rectangle at (60, 60) are in crop 0
    assert first.target["boxes"].tolist() == [
        [10 + pad_x, 10 + pad_y, 40 + pad_x, 40 + pad_y],
        [60 + pad_x, 60 + pad_y, 96, 96],
    ]
    assert mask_iou(first.target["masks"].max(axis=0), blue_pixels(first.image)) == 1.0
    total = sum(c.target["masks"].sum() for c in crops)
    assert total == 30 * 30 + 40 * 25  # every object pixel lands in exactly one crop


def test_crop_stream_is_reproducible_per_seed(bundle):
    root, config = bundle
    train, _ = split_images(load_annotated_images(root, config))
    a = [s.image for _, s in zip(range(3), RandomCropStream(train, config, seed=1), strict=False)]
    b = [s.image for _, s in zip(range(3), RandomCropStream(train, config, seed=1), strict=False)]
    c = [s.image for _, s in zip(range(3), RandomCropStream(train, config, seed=2), strict=False)]
    assert all((x == y).all() for x, y in zip(a, b, strict=True))
    assert any((x != y).any() for x, y in zip(a, c, strict=True))


def test_colour_jitter_uses_bgr_channel_order():
    red = np.zeros((4, 4, 3), np.uint8)
    red[:] = (0, 0, 255)  # BGR red
    grey = adjust_saturation(red, 0.0)
    np.testing.assert_allclose(grey, 0.299 * 255, atol=0.6)  # red's luma weight; blue's would be 0.114
    green = adjust_hue(red, 1 / 3)  # red → green is a third of a turn
    assert green[0, 0].argmax() == 1 and green[0, 0, 1] > 200
    neutral = colour_jitter(red, np.random.default_rng(0), 0.0, 0.0, 0.0, 0.0)
    assert (neutral == red).all()
    jittered = colour_jitter(red, np.random.default_rng(0), 0.1, 0.1, 0.1, 0.1)
    assert jittered.dtype == np.uint8 and jittered[0, 0].argmax() == 2  # still reddish
