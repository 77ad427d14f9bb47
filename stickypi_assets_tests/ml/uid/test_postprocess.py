"""Per-tile filters, mask → polygon, and the order-independent best-score cross-tile merge."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
import shapely

from stickypi_assets.ml.uid.config import UidConfig
from stickypi_assets.ml.uid.detector import TileDetections
from stickypi_assets.ml.uid.postprocess import (
    Candidate,
    keep_tile_detections,
    mask_to_polygon,
    merge_candidates,
    paste_box_mask,
    tile_candidates,
)
from stickypi_assets.ml.uid.tiling import Tile
from stickypi_assets_tests.ml.uid.helpers import rectangle

CONFIG = UidConfig(score_threshold=0.5, edge_margin=10, min_max_obj_size=[20, 600])


def detections(boxes, scores) -> TileDetections:
    return TileDetections(boxes, scores, np.zeros(len(boxes)), np.ones((len(boxes), 28, 28)))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    pa, pb = shapely.Polygon(a), shapely.Polygon(b)
    return pa.intersection(pb).area / pa.union(pb).area


def test_inner_edges_score_and_size_filters_on_a_middle_tile():
    tile = Tile(x=200, y=200, width=100, height=100, col=1, row=1, n_cols=3, n_rows=3)
    det = detections(
        [
            [20, 20, 60, 60],  # 0 kept
            [5, 40, 40, 70],  # 1 touches the inner left border (x1 <= 10)
            [50, 40, 95, 70],  # 2 touches the inner right border (x2 >= 90)
            [40, 3, 70, 50],  # 3 touches the inner top border
            [40, 50, 70, 91],  # 4 touches the inner bottom border
            [20, 20, 60, 60],  # 5 score too low
            [30, 30, 45, 45],  # 6 too small (15 x 15 px)
            [30, 30, 45, 70],  # 7 thin but long enough (15 x 40 px): kept
        ],
        [0.9, 0.9, 0.9, 0.9, 0.9, 0.5, 0.9, 0.9],
    )
    assert keep_tile_detections(det, tile, CONFIG).tolist() == [0, 7]


def test_outer_image_edges_are_not_filtered():
    det = detections([[0, 0, 40, 40], [60, 60, 100, 100]], [0.9, 0.9])
    top_left = Tile(x=0, y=0, width=100, height=100, col=0, row=0, n_cols=2, n_rows=2)
    bottom_right = Tile(x=80, y=80, width=100, height=100, col=1, row=1, n_cols=2, n_rows=2)
    assert keep_tile_detections(det, top_left, CONFIG).tolist() == [0]  # the second one touches inner edges
    assert keep_tile_detections(det, bottom_right, CONFIG).tolist() == [1]
    single = Tile(x=0, y=0, width=100, height=100, col=0, row=0, n_cols=1, n_rows=1)
    assert keep_tile_detections(det, single, CONFIG).tolist() == [0, 1]


def test_mask_to_polygon_traces_an_ellipse_and_drops_specks():
    mask = np.zeros((120, 160), dtype=np.uint8)
    cv2.ellipse(mask, (80, 60), (50, 30), 20, 0, 360, 1, -1)
    mask[5:8, 5:8] = 1  # speck: long side 3 <= min_size / 2
    mask[100:115, 5:30] = 1  # a second, smaller blob: not the largest
    polygon = mask_to_polygon(mask, (1000, 2000), min_size=20, epsilon=0.006)
    assert polygon is not None and polygon.dtype == np.int32 and polygon.shape[1] == 2
    assert 8 <= len(polygon) <= 40  # simplified, not every boundary pixel
    traced = np.zeros_like(mask)
    cv2.fillPoly(traced, [polygon - [1000, 2000]], 1)
    ellipse = mask.copy()
    ellipse[:10] = 0
    ellipse[95:] = 0
    assert (traced & ellipse).sum() / (traced | ellipse).sum() > 0.95


def test_mask_to_polygon_returns_none_for_empty_or_tiny_masks():
    assert mask_to_polygon(np.zeros((50, 50), np.uint8)) is None
    tiny = np.zeros((50, 50), np.uint8)
    tiny[10:18, 10:18] = 1  # long side 7 <= 10
    assert mask_to_polygon(tiny, min_size=20) is None


def test_rasterise_then_trace_gives_the_annotated_polygon_back():
    # Training masks are cv2.fillPoly rasterisations; tracing them without dilation inverts that.
    polygon = np.array([[30, 20], [90, 25], [110, 70], [60, 95], [20, 60]], dtype=np.int32)
    mask = np.zeros((120, 140), np.uint8)
    cv2.fillPoly(mask, [polygon], 1)
    traced = mask_to_polygon(mask, min_size=20, epsilon=0.006, dilation=0)
    assert iou(traced, polygon) > 0.97
    dilated = mask_to_polygon(mask, min_size=20, epsilon=0.006, dilation=1)
    assert shapely.Polygon(dilated).area > shapely.Polygon(traced).area


def test_paste_box_mask_fills_its_box_and_clips_to_the_frame():
    local, x0, y0 = paste_box_mask(np.ones((28, 28)), [10, 20, 50, 40], 100, 100)
    ys, xs = np.nonzero(local)
    assert abs(x0 + xs.min() - 10) <= 1 and abs(x0 + xs.max() - 49) <= 1
    assert abs(y0 + ys.min() - 20) <= 1 and abs(y0 + ys.max() - 39) <= 1
    local, x0, y0 = paste_box_mask(np.ones((28, 28)), [80, 80, 130, 120], 100, 100)
    assert x0 + local.shape[1] <= 100 and y0 + local.shape[0] <= 100
    assert paste_box_mask(np.zeros((28, 28)), [10, 10, 40, 40], 100, 100) is None


def test_tile_candidates_offset_by_tile_and_padding_then_clip_to_the_image():
    tile = Tile(x=100, y=50, width=100, height=100, col=0, row=0, n_cols=1, n_rows=1)
    mask = np.zeros((1, 100, 100), np.float32)
    mask[0, 10:40, 20:70] = 1
    det = TileDetections([[20, 10, 70, 40]], [0.9], [0], mask, masks_in_boxes=False)
    (cand,) = tile_candidates(det, tile, CONFIG, padding=32, image_size=(1000, 1000))
    x, y, w, h = cv2.boundingRect(cand.polygon)
    assert (x, y, w, h) == (100 + 20 - 32, 50 + 10 - 32, 50, 30)
    assert cand.tile_index == 0 and cand.score == pytest.approx(0.9) and cand.label == 0
    (clipped,) = tile_candidates(det, tile, CONFIG, padding=32, image_size=(100, 100))
    assert clipped.polygon[:, 0].max() == 99


def cand(x, y, w, h, score, tile) -> Candidate:
    return Candidate(polygon=rectangle(x, y, w, h), score=score, label=0, tile_index=tile)


def test_merge_keeps_the_best_scoring_duplicate_whatever_the_order():
    a = cand(100, 100, 50, 40, 0.90, tile=0)  # clipped-looking copy from tile 0
    b = cand(102, 100, 50, 40, 0.97, tile=1)  # better copy of the same insect from tile 1
    c = cand(300, 300, 30, 30, 0.80, tile=0)  # elsewhere
    for perm in itertools.permutations([a, b, c]):
        merged = merge_candidates(list(perm), 0.33)
        assert merged == [b, c]


def test_merge_never_compares_polygons_of_the_same_tile_and_respects_the_threshold():
    a = cand(100, 100, 50, 40, 0.9, tile=3)
    b = cand(105, 100, 50, 40, 0.8, tile=3)  # overlaps a, same tile: the model's NMS decided
    c = cand(140, 100, 50, 40, 0.7, tile=4)  # other tile, IoU with a = 10x40 / (2000+2000-400) < 0.33
    assert merge_candidates([c, b, a], 0.33) == [a, b, c]


def test_merge_suppression_chains_only_through_kept_candidates():
    # a ~ b and b ~ c are duplicates, a and c are not: b goes, c stays (only kept candidates suppress).
    a = cand(100, 100, 60, 40, 0.9, tile=0)
    b = cand(125, 100, 60, 40, 0.8, tile=1)
    c = cand(150, 100, 60, 40, 0.7, tile=2)
    for perm in itertools.permutations([a, b, c]):
        assert merge_candidates(list(perm), 0.33) == [a, c]


def test_merge_repairs_invalid_polygons_instead_of_calling_them_duplicates():
    bowtie = Candidate(np.array([[0, 0], [40, 40], [40, 0], [0, 40]], np.int32), 0.9, 0, 0)
    far = cand(200, 200, 30, 30, 0.8, tile=1)
    assert merge_candidates([bowtie, far], 0.33) == [bowtie, far]
    assert merge_candidates([], 0.33) == []


def test_masks_reaching_into_the_padding_are_cut_to_the_image_and_slivers_dropped():
    # a 100 px tile at the padded image's top-left corner, 32 px of zero padding: image pixels start at (32, 32)
    tile = Tile(x=0, y=0, width=100, height=100, col=0, row=0, n_cols=1, n_rows=1)
    mask = np.zeros((2, 100, 100), np.float32)
    mask[0, 10:70, 10:60] = 1  # half in the padding: the visible part is 28 x 38 px at the image corner
    mask[1, 0:34, 0:60] = 1  # all but two rows in the padding: a 2 px high strip of the image
    det = TileDetections([[10, 10, 60, 70], [0, 0, 60, 34]], [0.9, 0.9], [0, 0], mask, masks_in_boxes=False)
    (cand,) = tile_candidates(det, tile, CONFIG, padding=32, image_size=(1000, 1000))
    assert cv2.boundingRect(cand.polygon) == (0, 0, 28, 38)
    assert cv2.contourArea(cand.polygon) == pytest.approx(27 * 37)
    assert CONFIG.min_visible_pixels == 30
    # the strip is 28 x 2 px in the image (an outline of 27 x 1 = 27 px² < MIN_VISIBLE_PIXELS): dropped; not
    # cut to the image, its outline would have been clipped into a degenerate sliver instead
    loose = UidConfig(score_threshold=0.5, edge_margin=10, min_max_obj_size=[20, 600], min_visible_pixels=20)
    assert len(tile_candidates(det, tile, loose, padding=32, image_size=(1000, 1000))) == 2
