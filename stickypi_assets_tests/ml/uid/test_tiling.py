"""Tile grids (reference 3.3 step 2) with the uncovered-border defect fixed."""

from __future__ import annotations

import numpy as np
import pytest

from stickypi_assets.ml.uid.tiling import iter_tile_batches, pad_image, plan_tiles, tile_offsets


def coverage(width: int, height: int, tile: int, overlap: int) -> np.ndarray:
    hits = np.zeros((height, width), dtype=np.int32)
    for t in plan_tiles(width, height, tile, overlap):
        hits[t.window()] += 1
    return hits


def test_unpadded_full_frame_offsets_match_the_original_except_the_flush_last_tile():
    # The original gave x {0, 522, 1044, 1566}: its last tile ends at 2590 and misses 2 columns.
    assert tile_offsets(2592, 1024, 500) == [0, 522, 1044, 1568]
    assert tile_offsets(1944, 1024, 500) == [0, 460, 920]
    assert len(plan_tiles(2592, 1944, 1024, 500)) == 12  # 4 x 3, as in the manuscript


def test_padded_full_frame_offsets_are_the_original_ones():
    # p = 32: W' = 2656, H' = 2008 (reference 3.3).
    assert tile_offsets(2656, 1024, 500) == [0, 408, 816, 1224, 1632]
    assert tile_offsets(2008, 1024, 500) == [0, 492, 984]
    assert len(plan_tiles(2656, 2008, 1024, 500)) == 15


@pytest.mark.parametrize(
    ("width", "height", "tile", "overlap"),
    [
        (2592, 1944, 1024, 500),
        (2656, 2008, 1024, 500),
        (1025, 700, 1024, 500),
        (999, 1000, 256, 100),
        (300, 200, 512, 0),
    ],
)
def test_every_pixel_is_covered_and_neighbours_overlap_enough(width, height, tile, overlap):
    assert coverage(width, height, tile, overlap).min() >= 1
    for size in (width, height):
        offsets = tile_offsets(size, tile, overlap)
        assert offsets[0] == 0 and offsets[-1] == max(0, size - tile)
        if len(offsets) > 1:
            assert min(np.diff(offsets)) > 0
            assert max(np.diff(offsets)) <= tile - overlap  # overlap at least ``overlap``


def test_small_axis_gets_one_shorter_tile():
    tiles = plan_tiles(300, 200, 512, 100)
    assert len(tiles) == 1
    assert (tiles[0].width, tiles[0].height) == (300, 200)
    assert not any(tiles[0].inner_edges)


def test_grid_positions_flag_inner_borders_row_major():
    tiles = plan_tiles(2592, 1944, 1024, 500)
    assert [t.index for t in tiles] == list(range(12))
    assert [(t.x, t.y) for t in tiles[:5]] == [(0, 0), (522, 0), (1044, 0), (1568, 0), (0, 460)]
    first, middle, last = tiles[0], tiles[5], tiles[-1]
    assert first.inner_edges == (False, False, True, True)
    assert middle.inner_edges == (True, True, True, True)
    assert last.inner_edges == (True, True, False, False)


def test_invalid_arguments_raise():
    with pytest.raises(ValueError):
        tile_offsets(100, 64, 64)
    with pytest.raises(ValueError):
        tile_offsets(0, 64, 10)


def test_padding_and_batches_are_views_of_the_padded_image():
    image = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    padded = pad_image(image, 2)
    assert padded.shape == (9, 11, 3)
    assert (padded[2:-2, 2:-2] == image).all() and padded[:2].max() == 0 and padded[:, -2:].max() == 0
    tiles = plan_tiles(11, 9, 4, 1)
    batches = list(iter_tile_batches(padded, tiles, 3))
    assert [len(b[0]) for b in batches] == [3] * (len(tiles) // 3) + ([len(tiles) % 3] if len(tiles) % 3 else [])
    tile, view = batches[0][0][1], batches[0][1][1]
    assert np.shares_memory(view, padded)
    assert (view == padded[tile.y : tile.y + 4, tile.x : tile.x + 4]).all()
