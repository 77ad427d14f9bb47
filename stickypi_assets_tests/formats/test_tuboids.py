"""Tuboid layout (reference 4.8 / 5.1) on the real SIM output and legacy ITC tuboids, plus synthetic cases."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from stickypi_assets.formats.errors import FormatError
from stickypi_assets.formats.tuboids import (
    TILE_SIZE,
    TILE_WINDOW_S,
    TILES_PER_ROW,
    Tuboid,
    TuboidError,
    TuboidFrame,
    TuboidId,
    count_valid_tiles,
    draw_context,
    format_metadata_txt,
    iter_tuboid_dirs,
    masked_square_tile,
    read_metadata_txt,
    read_tuboid,
    read_tuboids,
    split_tile_grid,
    tile_grid,
    write_tuboid,
)
from stickypi_assets_tests.conftest import stickypi_path

SERIES = "08038ade.2020-07-08_20-00-00.2020-07-09_15-00-00.1606980656-91e2199fccf371d3d690b2856613e8f5"
# Section 9.5: index -> metadata lines (all within 24 h), tuboid.jpg height.
SIM_TUBOIDS = {0: (53, 3136), 28: (37, 2240), 29: (36, 2016), 30: (25, 1568), 31: (27, 1568), 34: (11, 672)}
# Section 9.4: legacy id -> (metadata lines, lines within 24 h, tuboid.jpg height or None if missing).
ITC_TUBOIDS = {
    "08038ade.2020-08-19_22-00-00.2020-08-26_12-00-00.0061": (290, 77, None),
    "08038ade.2020-09-23_22-00-00.2020-09-30_12-00-00.0033": (38, 38, 2240),
    "15e612cd.2020-09-02_22-00-00.2020-09-09_12-00-00.0193": (71, 71, 4032),
    "1b74105a.2020-08-12_22-00-00.2020-08-19_12-00-00.0094": (210, 76, 11872),
    "398948ee.2020-07-15_22-00-00.2020-07-22_12-00-00.0005": (8, 8, 448),
    "398948ee.2020-09-02_22-00-00.2020-09-09_12-00-00.0088": (116, 61, 6496),
    "5c173ff2.2020-09-16_22-00-00.2020-09-23_12-00-00.0690": (43, 43, 2464),
    "d9699ed0.2020-09-09_22-00-00.2020-09-16_12-00-00.0022": (7, 7, 448),
    "d9699ed0.2020-09-16_22-00-00.2020-09-23_12-00-00.0052": (286, 78, None),
}
MISSING_JPG = {k for k, v in ITC_TUBOIDS.items() if v[2] is None}


def itc_dir(tuboid_id: str) -> Path:
    return stickypi_path("itc", tuboid_id.rsplit(".", 1)[0], tuboid_id)


@pytest.fixture(scope="module")
def itc_loaded() -> tuple[list[Tuboid], list[tuple[Path, str]]]:
    return read_tuboids(stickypi_path("itc"))


@pytest.fixture(scope="module")
def sim_loaded() -> tuple[list[Tuboid], list[tuple[Path, str]]]:
    return read_tuboids(stickypi_path("tuboids"))


def _check_tuboid(t: Tuboid) -> None:
    assert t.n_tiles == count_valid_tiles(t.frames) == len(t.tiles)
    assert t.n_tiles >= 2
    assert all(tile.shape == (TILE_SIZE, TILE_SIZE, 3) and tile.dtype == np.uint8 for tile in t.tiles)
    times = [f.datetime for f in t.frames]
    assert times == sorted(times)
    assert all(f.device == t.id.device for f in t.frames)
    assert all(f.datetime.tzinfo is not None for f in t.frames)
    assert all(f.scale > 0 for f in t.frames)
    assert t.tile_frames == t.frames[: t.n_tiles]


# ------------------------------------------------------------------------------------------------------ ids


def test_parse_five_field_id():
    tid = TuboidId.parse(f"{SERIES}.0028")
    assert tid.device == "08038ade"
    assert tid.start == datetime(2020, 7, 8, 20, tzinfo=UTC)
    assert tid.end == datetime(2020, 7, 9, 15, tzinfo=UTC)
    assert tid.version == "1606980656-91e2199fccf371d3d690b2856613e8f5"
    assert tid.index == 28
    assert tid.series_id == SERIES
    assert str(tid) == f"{SERIES}.0028"


def test_parse_legacy_four_field_id():
    text = "08038ade.2020-09-23_22-00-00.2020-09-30_12-00-00.0033"
    tid = TuboidId.parse(text)
    assert tid.version is None and tid.index == 33
    assert tid.series_id == "08038ade.2020-09-23_22-00-00.2020-09-30_12-00-00"
    assert str(tid) == text
    assert TuboidId.parse(str(tid)) == tid


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("08038ade.2020-09-23_22-00-00.0033", "dot-separated"),
        (f"{SERIES}.0028.extra", "dot-separated"),
        ("08038ade.2020-09-23_22-00-00.2020-09-30_12-00-00.x033", "integer index"),
        ("08038ade.2020-09-23_22-00-00.2020-09-30_12-00-00.-33", "integer index"),
        ("0803xade.2020-09-23_22-00-00.2020-09-30_12-00-00.0033", "8 hexadecimal digits"),
        ("08038ade.2020-09-23.2020-09-30_12-00-00.0033", "YYYY-MM-DD_HH-MM-SS"),
        ("08038ade.2020-09-30_22-00-00.2020-09-23_12-00-00.0033", "end is before its start"),
        ("08038ade.2020-09-23_22-00-00.2020-09-30_12-00-00..0033", "empty version"),
    ],
)
def test_parse_invalid_ids(text: str, message: str):
    with pytest.raises(TuboidError, match=message):
        TuboidId.parse(text)


def test_index_formatting_and_errors_are_format_errors():
    tid = TuboidId.parse("08038ade.2020-09-23_22-00-00.2020-09-30_12-00-00.7")
    assert str(tid).endswith(".0007")
    assert issubclass(TuboidError, FormatError)


# ------------------------------------------------------------------------------------------------- metadata


def _frame(minutes: float, device: str = "08038ade", x: float = 1.0, y: float = 2.0, scale: float = 1.5):
    return TuboidFrame(device, datetime(2020, 7, 8, 22, tzinfo=UTC) + timedelta(minutes=minutes), x, y, scale)


def test_metadata_round_trip_and_six_decimals():
    frames = [_frame(0, x=854.2488474, y=185.4189941, scale=2.3333333), _frame(19, x=1.0, y=0.5, scale=10)]
    text = format_metadata_txt(frames)
    assert text == (
        "08038ade.2020-07-08_22-00-00,854.248847,185.418994,2.333333\n"
        "08038ade.2020-07-08_22-19-00,1.000000,0.500000,10.000000\n"
    )
    back = read_metadata_txt(text, device="08038ade")
    assert [f.stem for f in back] == [f.stem for f in frames]
    assert back[0].centroid_x == pytest.approx(854.248847, abs=1e-9)
    assert format_metadata_txt(back) == text


def test_metadata_stops_at_first_empty_line_and_accepts_crlf():
    text = "08038ade.2020-07-08_22-16-46,1,2,3\r\n08038ade.2020-07-08_22-35-31,4,5,6\r\n\r\ngarbage\n"
    frames = read_metadata_txt(text)
    assert [f.centroid_x for f in frames] == [1, 4]
    assert read_metadata_txt("") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("08038ade.2020-07-08_22-16-46,1,2\n", "4 comma-separated"),
        ("08038ade.2020-07-08_22-16-46,1,2,x\n", "must be numbers"),
        ("08038ade.2020-07-08_22-16-46,1,2,0\n", "scale finite and > 0"),
        ("08038ade.2020-07-08_22-16-46,nan,2,1\n", "finite"),
        ("0a5bb6f4.2020-07-08_22-16-46,1,2,3\n", "not the tuboid's device"),
        ("08038ade.2020-07-08,1,2,3\n", "line 1"),
        ("08038ade.2020-07-08_22-35-31,1,2,3\n08038ade.2020-07-08_22-16-46,1,2,3\n", "chronological"),
    ],
)
def test_metadata_errors(text: str, message: str):
    with pytest.raises(TuboidError, match=message):
        read_metadata_txt(text, device="08038ade")


def test_count_valid_tiles_window_is_inclusive():
    day = TILE_WINDOW_S / 60
    assert count_valid_tiles([]) == 0
    assert count_valid_tiles([_frame(0), _frame(10), _frame(day)]) == 3
    assert count_valid_tiles([_frame(0), _frame(10), _frame(day), _frame(day + 1 / 60), _frame(day * 3)]) == 3


# -------------------------------------------------------------------------------------------------- real data


def test_real_sim_series_loads_all_six(sim_loaded):
    tuboids, failures = sim_loaded
    assert failures == []
    assert [t.id.index for t in tuboids] == sorted(SIM_TUBOIDS)
    for t in tuboids:
        n_lines, height = SIM_TUBOIDS[t.id.index]
        assert t.id.series_id == SERIES and t.id.version is not None
        assert len(t.frames) == n_lines == t.n_tiles  # all frames within 24 h (section 9.5)
        assert height == TILE_SIZE * math.ceil(t.n_tiles / TILES_PER_ROW)
        assert t.context_jpeg is not None and t.context_jpeg[:2] == b"\xff\xd8"
        _check_tuboid(t)


def test_real_sim_metadata_is_byte_compatible_with_our_writer():
    for directory in iter_tuboid_dirs(stickypi_path("tuboids")):
        text = (directory / "metadata.txt").read_text()
        assert format_metadata_txt(read_metadata_txt(text)) == text


def test_iter_tuboid_dirs_finds_all_nine_itc_tuboids_sorted():
    dirs = list(iter_tuboid_dirs(stickypi_path("itc")))
    assert [d.name for d in dirs] == sorted(ITC_TUBOIDS)
    assert dirs == sorted(dirs)


def test_real_itc_tuboids_load_except_the_two_without_tuboid_jpg(itc_loaded):
    tuboids, failures = itc_loaded
    assert sorted(str(t.id) for t in tuboids) == sorted(set(ITC_TUBOIDS) - MISSING_JPG)
    assert sorted(path.name for path, _ in failures) == sorted(MISSING_JPG)
    for path, message in failures:
        assert path.name in message and "tuboid.jpg" in message
    for t in tuboids:
        n_lines, n_valid, _ = ITC_TUBOIDS[str(t.id)]
        assert t.id.version is None  # legacy 4-field ids
        assert len(t.frames) == n_lines
        assert t.n_tiles == n_valid
        _check_tuboid(t)


@pytest.mark.parametrize("tuboid_id", sorted(MISSING_JPG))
def test_missing_tuboid_jpg_raises_naming_the_tuboid(tuboid_id: str):
    with pytest.raises(TuboidError, match=rf"{tuboid_id}.*missing tuboid\.jpg"):
        read_tuboid(itc_dir(tuboid_id))


@pytest.mark.parametrize(
    "tuboid_id",
    [
        "1b74105a.2020-08-12_22-00-00.2020-08-19_12-00-00.0094",
        "398948ee.2020-09-02_22-00-00.2020-09-09_12-00-00.0088",
    ],
)
def test_legacy_all_frame_tilings_use_metadata_not_image_height(tuboid_id: str):
    """The image holds a tile for every line, but only the 24 h tiles are valid (section 4.8)."""
    n_lines, n_valid, height = ITC_TUBOIDS[tuboid_id]
    directory = itc_dir(tuboid_id)
    img = cv2.imread(str(directory / "tuboid.jpg"))
    assert img.shape == (height, 896, 3)
    assert height == TILE_SIZE * math.ceil(n_lines / TILES_PER_ROW)  # legacy: all frames tiled
    t = read_tuboid(directory)
    assert (len(t.frames), t.n_tiles) == (n_lines, n_valid)
    last = n_valid - 1
    row, col = divmod(last, TILES_PER_ROW)
    expected = img[row * TILE_SIZE : (row + 1) * TILE_SIZE, col * TILE_SIZE : (col + 1) * TILE_SIZE]
    np.testing.assert_array_equal(t.tiles[last], expected)
    # the first frame beyond the window is more than 24 h after the first
    assert (t.frames[n_valid].datetime - t.frames[0].datetime).total_seconds() > TILE_WINDOW_S


def test_read_tuboid_errors(tmp_path: Path):
    with pytest.raises(TuboidError, match="invalid tuboid id"):
        read_tuboid(tmp_path / "not-a-tuboid")
    missing = tmp_path / "s" / "08038ade.2020-09-23_22-00-00.2020-09-30_12-00-00.0001"
    with pytest.raises(TuboidError, match="0001.*not a directory"):
        read_tuboid(missing)
    missing.mkdir(parents=True)
    with pytest.raises(TuboidError, match="0001.*missing metadata.txt"):
        read_tuboid(missing)
    (missing / "metadata.txt").write_text(
        "08038ade.2020-09-24_22-00-00,1,2,3\n08038ade.2020-09-26_22-00-00,1,2,3\n08038ade.2020-09-27_22-00-00,1,2,3\n"
    )
    (missing / "tuboid.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(TuboidError, match="0001.*only 1 frame"):
        read_tuboid(missing)
    (missing / "metadata.txt").write_text(
        "08038ade.2020-09-24_22-00-00,1,2,3\n08038ade.2020-09-24_22-20-00,1,2,3\n"
    )
    with pytest.raises(TuboidError, match="0001.*not a readable image"):
        read_tuboid(missing)
    cv2.imwrite(str(missing / "tuboid.jpg"), np.zeros((224, 448, 3), np.uint8))
    with pytest.raises(TuboidError, match="0001.*expected width 896"):
        read_tuboid(missing)
    with pytest.raises(TuboidError, match="not a directory"):
        list(iter_tuboid_dirs(tmp_path / "nowhere"))


# ------------------------------------------------------------------------------------------------ writing


def test_write_read_round_trip_of_a_real_tuboid(tmp_path: Path):
    source = stickypi_path("tuboids", SERIES, f"{SERIES}.0034")
    original = read_tuboid(source)
    out = write_tuboid(tmp_path, original)
    assert out == tmp_path / SERIES / f"{SERIES}.0034"
    assert sorted(p.name for p in out.iterdir()) == ["context.jpg", "metadata.txt", "tuboid.jpg"]
    assert (out / "metadata.txt").read_bytes() == (source / "metadata.txt").read_bytes()
    assert (out / "context.jpg").read_bytes() == (source / "context.jpg").read_bytes()
    back = read_tuboid(out)
    assert back.id == original.id and back.frames == original.frames and back.n_tiles == original.n_tiles
    for a, b in zip(original.tiles, back.tiles, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 2.0  # JPEG quality 100


def test_write_synthetic_tuboid_layout_and_precision(tmp_path: Path):
    rng = np.random.default_rng(0)
    frames = [_frame(20 * k, x=100 + k / 3, y=200 + k / 7, scale=1 + k / 9) for k in range(6)]
    tiles = [np.full((TILE_SIZE, TILE_SIZE, 3), 40 * k, np.uint8) for k in range(6)]
    tiles[0] = rng.integers(0, 255, (TILE_SIZE, TILE_SIZE, 3), dtype=np.uint8)
    tid = TuboidId.parse(f"{SERIES}.0007")
    out = write_tuboid(tmp_path, Tuboid(tid, frames, tiles, None))
    assert not (out / "context.jpg").exists()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    img = cv2.imread(str(out / "tuboid.jpg"))
    assert img.shape == (448, 896, 3)  # 6 tiles -> 2 rows of 4
    assert img[224:, 448:].max() <= 3  # unused cells black
    back = read_tuboid(out)
    assert back.n_tiles == 6 and back.context_jpeg is None
    for a, b in zip(frames, back.frames, strict=True):
        assert (a.stem, round(a.centroid_x, 6), round(a.centroid_y, 6), round(a.scale, 6)) == (
            b.stem,
            b.centroid_x,
            b.centroid_y,
            b.scale,
        )
    for k in range(1, 6):
        # JPEG chroma upsampling bleeds a little across the tile border next to the random tile 0
        assert np.abs(back.tiles[k].astype(int) - 40 * k).mean() < 1
        assert np.abs(back.tiles[k][8:-8, 8:-8].astype(int) - 40 * k).max() <= 2
    # rewriting with a context adds it; rewriting without removes the stale one
    write_tuboid(tmp_path, Tuboid(tid, frames, tiles, b"\xff\xd8ctx"))
    assert (out / "context.jpg").read_bytes() == b"\xff\xd8ctx"
    write_tuboid(tmp_path, Tuboid(tid, frames, tiles, None))
    assert not (out / "context.jpg").exists()


def test_write_refuses_invalid_tuboids(tmp_path: Path):
    tid = TuboidId.parse(f"{SERIES}.0001")
    tile = np.zeros((TILE_SIZE, TILE_SIZE, 3), np.uint8)
    with pytest.raises(TuboidError, match="at least 3"):
        write_tuboid(tmp_path, Tuboid(tid, [_frame(0), _frame(20)], [tile, tile], None))
    frames = [_frame(0), _frame(20), _frame(60 * 30)]  # last frame beyond 24 h: 2 valid tiles
    with pytest.raises(TuboidError, match="3 tiles but 2 frames"):
        write_tuboid(tmp_path, Tuboid(tid, frames, [tile] * 3, None))
    with pytest.raises(TuboidError, match="not the tuboid's device"):
        write_tuboid(tmp_path, Tuboid(tid, [*frames[:2], _frame(40, device="0a5bb6f4")], [tile] * 3, None))
    with pytest.raises(TuboidError, match="tile 1"):
        write_tuboid(tmp_path, Tuboid(tid, frames, [tile, tile[:100]], None))
    with pytest.raises(TuboidError, match="need >= 2"):
        write_tuboid(tmp_path, Tuboid(tid, [_frame(0), _frame(60 * 30), _frame(60 * 31)], [tile], None))
    assert not any(tmp_path.iterdir())


def test_frames_are_compared_by_value():
    f = _frame(0)
    assert replace(f) == f and f.stem == "08038ade.2020-07-08_22-00-00"


# -------------------------------------------------------------------------------------------------- tiles


def test_tile_grid_and_split_are_inverse():
    tiles = [np.full((TILE_SIZE, TILE_SIZE, 3), k * 20, np.uint8) for k in range(5)]
    grid = tile_grid(tiles)
    assert grid.shape == (448, 896, 3)
    assert grid[224:, 224:].max() == 0
    back = split_tile_grid(grid, 5)
    for a, b in zip(tiles, back, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.shares_memory(back[0], grid)  # copies, not views
    with pytest.raises(TuboidError, match="height >= 672"):
        split_tile_grid(grid, 9)
    with pytest.raises(TuboidError, match="zero tiles"):
        tile_grid([])


def test_masked_square_tile_masks_outside_the_polygon():
    image = np.full((10, 12, 3), 200, np.uint8)
    image[..., 1] = 100
    # Right triangle: bbox 5x5 at (3, 2); with size 5 there is no resizing, so the mask is visible exactly.
    triangle = np.array([[3, 2], [7, 2], [3, 6]])
    tile, scale = masked_square_tile(image, triangle, size=5)
    assert scale == 1.0
    assert tile.shape == (5, 5, 3)
    yy, xx = np.mgrid[0:5, 0:5]
    inside = xx + yy <= 4
    np.testing.assert_array_equal(tile[inside], np.tile([200, 100, 200], (inside.sum(), 1)))
    assert tile[~inside].max() == 0


def test_masked_square_tile_scales_and_centres():
    image = np.full((20, 20), 255, np.uint8)
    rect = np.array([[2, 3], [5, 3], [5, 4], [2, 4]])  # bbox 4 wide x 2 high
    tile, scale = masked_square_tile(image, rect, size=8)
    assert scale == 2.0  # 8 / max(2, 4)
    assert tile.shape == (8, 8)
    expected = np.zeros((8, 8), np.uint8)
    expected[2:6, :] = 255  # 8x4 crop centred vertically: 2 rows above, 2 below
    np.testing.assert_array_equal(tile, expected)
    # odd padding: 5 wide x 2 high at size 5 -> 3 rows of padding, the extra one at the bottom
    tile, scale = masked_square_tile(image, np.array([[0, 0], [4, 0], [4, 1], [0, 1]]), size=5)
    assert scale == 1.0
    assert tile[:, :].tolist() == [[0] * 5, [255] * 5, [255] * 5, [0] * 5, [0] * 5]
    # tall crop: the extra column goes right; 224 tile of a 3x7 bbox keeps the aspect (int truncation)
    tile, scale = masked_square_tile(image, np.array([[0, 0], [2, 0], [2, 6], [0, 6]]))
    assert scale == pytest.approx(224 / 7)
    cols = np.flatnonzero(tile.max(axis=0))
    assert tile.shape == (224, 224) and len(cols) == int(3 * 224 / 7) == 96 and cols[0] == (224 - 96) // 2


def test_masked_square_tile_clips_to_the_image():
    image = np.full((10, 10, 3), 50, np.uint8)
    tile, scale = masked_square_tile(image, np.array([[-5, -5], [4, -5], [4, 4], [-5, 4]]), size=10)
    assert scale == 2.0  # clipped crop is 5x5
    assert tile.min() == 50  # the whole clipped crop is inside the polygon
    with pytest.raises(ValueError, match="outside"):
        masked_square_tile(image, np.array([[20, 20], [25, 20], [25, 25]]))


def test_draw_context(tmp_path: Path):
    image = np.full((200, 300, 3), 128, np.uint8)
    data = draw_context(image, (50, 60, 100, 80))
    assert data[:2] == b"\xff\xd8"
    assert image.max() == 128 == image.min()  # input untouched
    out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert out.shape == image.shape
    assert np.abs(out[100, 50].astype(int) - [255, 255, 0]).max() <= 12  # cyan on the left edge
    assert out[100, 46].max() <= 40  # black rim outside the cyan line
    assert np.abs(out[100, 100].astype(int) - 128).max() <= 3  # interior untouched
