"""Tiled tuboids: the SIM's output and the ITC's input (reference sections 4.8 and 5.1).

A tuboid is one insect tracked through a series of images. On disk it is a directory
``<root>/<series_id>/<tuboid_id>/`` holding ``metadata.txt`` (one line per frame, *all* frames),
``tuboid.jpg`` (224 px tiles, 4 per row, only the frames within 24 h of the first) and ``context.jpg``
(the head frame with the bbox drawn). We read and write exactly that layout so tuboids produced by the
original tools and by this platform are interchangeable.

Design choices that differ from the original readers, and why:

* The number of tiles always comes from ``metadata.txt`` (lines within 24 h of the first, inclusive), never
  from the image height: some legacy tuboids tiled *all* frames, so their ``tuboid.jpg`` is taller than the
  valid tiles (reference 4.8).
* ``tuboid.jpg`` is decoded once per tuboid and split into tiles up front (item 26 of section 8: the
  original re-read the JPEG for every tile).
* Reading many tuboids records failures instead of raising, because real uploads are incomplete (two of
  the nine ITC test tuboids lack ``tuboid.jpg``) and one bad directory must not hide the others.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from stickypi_assets.formats.errors import FormatError
from stickypi_assets.formats.names import format_datetime, parse_datetime, parse_stem, validate_device

TILE_SIZE = 224
TILES_PER_ROW = 4
#: Only frames at most this many seconds after the first are tiled (inclusive).
TILE_WINDOW_S = 86400
#: A tuboid needs this many metadata lines to be written (the SIM discards shorter tracks).
MIN_FRAMES_TO_WRITE = 3
#: ... and this many valid tiles to be readable (the ITC samples several shots per tuboid).
MIN_TILES_TO_READ = 2
TUBOID_JPEG_QUALITY = 100
CONTEXT_JPEG_QUALITY = 90

METADATA_FILENAME = "metadata.txt"
TUBOID_FILENAME = "tuboid.jpg"
CONTEXT_FILENAME = "context.jpg"


class TuboidError(FormatError):
    """A tuboid id, directory or file that does not follow the tuboid layout."""


# --------------------------------------------------------------------------------------------- identifiers


@dataclass(frozen=True)
class TuboidId:
    """``<device>.<start>.<end>[.<version>].<NNNN>``: the series the tuboid comes from plus its index.

    ``version`` is the SIM bundle version (``<mtime>-<md5>``); legacy ids (e.g. the ITC test data) have
    no version field, so it is optional here and round-trips as absent.
    """

    device: str
    start: datetime
    end: datetime
    version: str | None
    index: int

    @classmethod
    def parse(cls, text: str) -> TuboidId:
        """Parse a tuboid id (a tuboid directory's basename); 5 fields, or 4 for legacy ids."""
        if not isinstance(text, str):
            raise TuboidError(f"invalid tuboid id {text!r}: expected a string")
        fields = text.split(".")
        if len(fields) == 5:
            device, start, end, version, index = fields
            if not version:
                raise TuboidError(f"invalid tuboid id {text!r}: empty version field")
        elif len(fields) == 4:
            device, start, end, index = fields
            version = None
        else:
            raise TuboidError(
                f"invalid tuboid id {text!r}: expected '<device>.<start>.<end>.<version>.<NNNN>' "
                "or legacy '<device>.<start>.<end>.<NNNN>' (dot-separated)"
            )
        if not index.isascii() or not index.isdigit():
            raise TuboidError(
                f"invalid tuboid id {text!r}: the last field {index!r} must be an integer index"
            )
        try:
            validate_device(device)
            start_dt = parse_datetime(start)
            end_dt = parse_datetime(end)
        except FormatError as exc:
            raise TuboidError(f"invalid tuboid id {text!r}: {exc}") from None
        if end_dt < start_dt:
            raise TuboidError(f"invalid tuboid id {text!r}: series end is before its start")
        return cls(device=device, start=start_dt, end=end_dt, version=version, index=int(index))

    @property
    def series_id(self) -> str:
        """``<device>.<start>.<end>[.<version>]``: the name of the series directory."""
        parts = [self.device, format_datetime(self.start), format_datetime(self.end)]
        if self.version is not None:
            parts.append(self.version)
        return ".".join(parts)

    def __str__(self) -> str:
        return f"{self.series_id}.{self.index:04d}"


# ------------------------------------------------------------------------------------------------ metadata


@dataclass
class TuboidFrame:
    """One ``metadata.txt`` line: the parent image, the insect's centroid (px) and the tile scale.

    ``scale`` = 224 / max(h, w) of the bbox crop; the annotation tool derives insect length as 224 / scale.
    """

    device: str
    datetime: datetime
    centroid_x: float
    centroid_y: float
    scale: float

    @property
    def stem(self) -> str:
        """``<device>.<datetime>``: the parent image's name without extension."""
        return f"{self.device}.{format_datetime(self.datetime)}"


def count_valid_tiles(frames: Sequence[TuboidFrame]) -> int:
    """Number of frames at most 24 h (inclusive) after the first one: the tiles ``tuboid.jpg`` must hold.

    Counted over all frames (not as a prefix) so the rule is the reference's literal one; for chronological
    frames both are the same.
    """
    if not frames:
        return 0
    first = frames[0].datetime
    return sum(1 for f in frames if (f.datetime - first).total_seconds() <= TILE_WINDOW_S)


def read_metadata_txt(text: str, device: str | None = None) -> list[TuboidFrame]:
    """Parse ``metadata.txt``: ``<stem>,<x>,<y>,<scale>`` per line, reading stops at the first empty line.

    ``device`` is the tuboid's device; every line must come from it (a tuboid never spans devices, so a
    mismatch means a corrupted or mixed-up file). Frames must be chronological because tiles are stored in
    metadata order and the 24 h window is measured from the first line.
    """
    frames: list[TuboidFrame] = []
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            break
        fields = line.split(",")
        if len(fields) != 4:
            raise TuboidError(
                f"metadata.txt line {lineno} {line!r}: expected 4 comma-separated fields "
                "'<device>.<datetime>,<centroid x>,<centroid y>,<scale>'"
            )
        try:
            name = parse_stem(fields[0].strip(), check_epoch=False)
        except FormatError as exc:
            raise TuboidError(f"metadata.txt line {lineno}: {exc}") from None
        try:
            x, y, scale = (float(v) for v in fields[1:])
        except ValueError:
            raise TuboidError(
                f"metadata.txt line {lineno} {line!r}: centroid and scale must be numbers"
            ) from None
        if not all(math.isfinite(v) for v in (x, y, scale)) or scale <= 0:
            raise TuboidError(
                f"metadata.txt line {lineno} {line!r}: centroid must be finite and scale finite and > 0"
            )
        if device is not None and name.device != device:
            raise TuboidError(
                f"metadata.txt line {lineno}: image {name.stem!r} is from device {name.device!r}, "
                f"not the tuboid's device {device!r}"
            )
        if frames and name.datetime < frames[-1].datetime:
            raise TuboidError(
                f"metadata.txt line {lineno}: {name.stem!r} is earlier than the previous line "
                "(frames must be chronological)"
            )
        frames.append(TuboidFrame(name.device, name.datetime, x, y, scale))
    return frames


def format_metadata_txt(frames: Iterable[TuboidFrame]) -> str:
    """Inverse of :func:`read_metadata_txt`, byte-compatible with the original (``%f``, newline-ended)."""
    return "".join(f"{f.stem},{f.centroid_x:f},{f.centroid_y:f},{f.scale:f}\n" for f in frames)


# --------------------------------------------------------------------------------------------------- tiles


def masked_square_tile(
    image: np.ndarray, polygon: np.ndarray, size: int = TILE_SIZE
) -> tuple[np.ndarray, float]:
    """Crop ``image`` to the polygon's bbox, black out pixels outside the polygon, fit into a black square.

    The bbox is ``cv2.boundingRect`` of the polygon rounded to integer pixels (boundary pixels included),
    clipped to the image. The crop is resized so its longer side is ``size`` (aspect kept, the shorter side
    truncated to int) and centred on a ``size`` x ``size`` black square; when the padding is odd the extra
    pixel goes to the bottom/right. Masking happens before resizing so the background never leaks in.

    Returns ``(tile, scale)`` with ``scale = size / max(h, w)`` of the clipped crop, the value stored in
    ``metadata.txt`` (> 1 means the crop was enlarged). The same rule makes the SIM's 105-px crops.
    """
    if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"expected a non-empty HxW or HxWxC image, got shape {image.shape}")
    if size < 1:
        raise ValueError(f"tile size must be >= 1, got {size}")
    pts = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 1 or not np.isfinite(pts).all():
        raise ValueError("polygon must hold at least one finite (x, y) point")
    pts = np.round(pts).astype(np.int32)
    x, y, w, h = cv2.boundingRect(pts)
    img_h, img_w = image.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, img_w), min(y + h, img_h)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"polygon bbox {(x, y, w, h)} lies outside the {img_w}x{img_h} image")

    crop = image[y0:y1, x0:x1].copy()
    mask = np.zeros(crop.shape[:2], dtype=np.uint8)
    cv2.fillPoly(mask, [pts - np.array([x0, y0], dtype=np.int32)], 255)
    crop[mask == 0] = 0

    crop_h, crop_w = crop.shape[:2]
    longest = max(crop_h, crop_w)
    scale = size / longest
    # The longer side is set to exactly `size` (float products such as 224/3*3 may truncate to 223).
    new_w = size if crop_w == longest else max(1, int(crop_w * scale))
    new_h = size if crop_h == longest else max(1, int(crop_h * scale))
    if (new_w, new_h) != (crop_w, crop_h):
        crop = cv2.resize(crop, (new_w, new_h))
        if image.ndim == 3 and crop.ndim == 2:  # cv2 drops a singleton channel axis
            crop = crop[:, :, None]

    tile = np.zeros((size, size, *image.shape[2:]), dtype=image.dtype)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    tile[top : top + new_h, left : left + new_w] = crop
    return tile, scale


def tile_scale(polygon: np.ndarray, width: int, height: int, size: int = TILE_SIZE) -> float:
    """``size / max(h, w)`` of the polygon's bbox clipped to the image: the ``metadata.txt`` scale of a frame that
    gets no tile (the value :func:`masked_square_tile` returns for a tiled one)."""
    x, y, w, h = cv2.boundingRect(np.asarray(polygon, dtype=np.int32).reshape(-1, 2))
    cw = min(x + w, width) - max(x, 0)
    ch = min(y + h, height) - max(y, 0)
    return size / max(cw, ch, 1)


def within_tile_window(datetimes: Sequence[datetime]) -> list[bool]:
    """Per frame of a tuboid (chronological), whether it gets a tile: within ``TILE_WINDOW_S`` of the first."""
    return [(t - datetimes[0]).total_seconds() <= TILE_WINDOW_S for t in datetimes]


_Item = TypeVar("_Item")


def tile_budget_groups(items: Iterable[_Item], n_tiles: Callable[[_Item], int], max_tiles: int) -> list[list[_Item]]:
    """``items`` in order, cut into groups whose tiles add up to at most ``max_tiles`` (an item with more is a group
    of its own): a tuboid writer holds one group's tiles in memory at a time, and each source image is decoded once
    per group."""
    groups: list[list[_Item]] = []
    current: list[_Item] = []
    budget = 0
    for item in items:
        n = n_tiles(item)
        if current and budget + n > max_tiles:
            groups.append(current)
            current, budget = [], 0
        current.append(item)
        budget += n
    if current:
        groups.append(current)
    return groups


def tile_grid(tiles: Sequence[np.ndarray]) -> np.ndarray:
    """Assemble 224 x 224 BGR tiles row-major, 4 per row, unused cells black (the ``tuboid.jpg`` image)."""
    if len(tiles) == 0:
        raise TuboidError("cannot build a tile grid from zero tiles")
    n_rows = math.ceil(len(tiles) / TILES_PER_ROW)
    grid = np.zeros((TILE_SIZE * n_rows, TILE_SIZE * TILES_PER_ROW, 3), dtype=np.uint8)
    for k, tile in enumerate(tiles):
        if tile.shape != (TILE_SIZE, TILE_SIZE, 3) or tile.dtype != np.uint8:
            raise TuboidError(
                f"tile {k}: expected a {TILE_SIZE}x{TILE_SIZE}x3 uint8 image, got {tile.shape} {tile.dtype}"
            )
        row, col = divmod(k, TILES_PER_ROW)
        grid[row * TILE_SIZE : (row + 1) * TILE_SIZE, col * TILE_SIZE : (col + 1) * TILE_SIZE] = tile
    return grid


def split_tile_grid(img: np.ndarray, n_tiles: int) -> list[np.ndarray]:
    """Cut the first ``n_tiles`` tiles out of a ``tuboid.jpg`` image (tile k at row k // 4, column k % 4).

    Tiles are copies, so a tuboid does not keep a legacy all-frames image (up to 11872 px high) alive.
    """
    if n_tiles < 0:
        raise TuboidError(f"n_tiles must be >= 0, got {n_tiles}")
    n_rows = math.ceil(n_tiles / TILES_PER_ROW)
    if img.ndim != 3 or img.shape[1] != TILE_SIZE * TILES_PER_ROW or img.shape[0] < TILE_SIZE * n_rows:
        raise TuboidError(
            f"tile grid of shape {img.shape} cannot hold {n_tiles} tiles: expected width "
            f"{TILE_SIZE * TILES_PER_ROW} and height >= {TILE_SIZE * n_rows}"
        )
    tiles = []
    for k in range(n_tiles):
        row, col = divmod(k, TILES_PER_ROW)
        tiles.append(
            img[row * TILE_SIZE : (row + 1) * TILE_SIZE, col * TILE_SIZE : (col + 1) * TILE_SIZE].copy()
        )
    return tiles


def draw_context(image_bgr: np.ndarray, bbox: Sequence[int]) -> bytes:
    """``context.jpg`` bytes: the head frame with the head bbox ``(x, y, w, h)`` (px, ``cv2.boundingRect``).

    Drawn twice, a black rectangle of thickness 7 then a cyan (BGR 255, 255, 0) one of thickness 4, so it is
    visible on both light and dark cards; JPEG quality 90 as in the original. The input is not modified.
    """
    if len(bbox) != 4:
        raise ValueError(f"bbox must be (x, y, w, h), got {bbox!r}")
    x, y, w, h = (int(round(v)) for v in bbox)
    img = image_bgr.copy()
    cv2.rectangle(img, (x, y), (x + w, y + h), (0, 0, 0), 7)
    cv2.rectangle(img, (x, y), (x + w, y + h), (255, 255, 0), 4)
    return _encode_jpeg(img, CONTEXT_JPEG_QUALITY)


def _encode_jpeg(img: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise TuboidError(f"could not encode an image of shape {img.shape} as JPEG")
    return buf.tobytes()


# ------------------------------------------------------------------------------------------------- tuboids


@dataclass
class Tuboid:
    """A tuboid in memory: its id, every metadata frame and the decoded tiles of the first 24 h."""

    id: TuboidId
    frames: list[TuboidFrame]
    tiles: list[np.ndarray] = field(repr=False)
    context_jpeg: bytes | None = field(default=None, repr=False)

    @property
    def n_tiles(self) -> int:
        return len(self.tiles)

    @property
    def tile_frames(self) -> list[TuboidFrame]:
        """The frames that have a tile (tile k pairs with frame k, whose ``scale`` the ITC uses)."""
        return self.frames[: self.n_tiles]


def read_tuboid(directory: str | Path) -> Tuboid:
    """Load one tuboid directory; any problem raises :class:`TuboidError` naming the tuboid.

    The id comes from the directory basename (the parent directory's name is not checked, as in the
    original). ``context.jpg`` is optional (kept as raw bytes, not decoded: only outputs use it).
    """
    directory = Path(directory)
    name = directory.name
    try:
        tuboid_id = TuboidId.parse(name)
        metadata_path = directory / METADATA_FILENAME
        tuboid_path = directory / TUBOID_FILENAME
        if not directory.is_dir():
            raise TuboidError(f"{directory} is not a directory")
        if not metadata_path.is_file():
            raise TuboidError(f"missing {METADATA_FILENAME}")
        if not tuboid_path.is_file():
            raise TuboidError(f"missing {TUBOID_FILENAME} (incomplete upload?)")
        frames = read_metadata_txt(metadata_path.read_text(encoding="utf-8"), device=tuboid_id.device)
        n_tiles = count_valid_tiles(frames)
        if n_tiles < MIN_TILES_TO_READ:
            raise TuboidError(
                f"only {n_tiles} frame(s) within 24 h of the first ({len(frames)} lines); "
                f"at least {MIN_TILES_TO_READ} are needed"
            )
        img = cv2.imdecode(np.fromfile(tuboid_path, dtype=np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise TuboidError(f"{TUBOID_FILENAME} is not a readable image")
        tiles = split_tile_grid(img, n_tiles)
        context_path = directory / CONTEXT_FILENAME
        context_jpeg = context_path.read_bytes() if context_path.is_file() else None
    except TuboidError as exc:
        raise TuboidError(f"tuboid {name} ({directory}): {exc}") from None
    return Tuboid(id=tuboid_id, frames=frames, tiles=tiles, context_jpeg=context_jpeg)


def iter_tuboid_dirs(root: str | Path) -> Iterator[Path]:
    """Every directory under ``root`` (recursively, ``root`` included) that holds a ``metadata.txt``, sorted.

    Finding tuboids by ``metadata.txt`` rather than by name matches the original ITC ``predict_dir`` and
    lets incomplete directories surface as errors instead of being silently skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise TuboidError(f"tuboid root {root} is not a directory")
    yield from sorted({p.parent for p in root.rglob(METADATA_FILENAME) if p.is_file()})


def read_tuboids(root: str | Path) -> tuple[list[Tuboid], list[tuple[Path, str]]]:
    """Load every tuboid under ``root``; failures are returned as ``(directory, message)``, not raised."""
    tuboids: list[Tuboid] = []
    failures: list[tuple[Path, str]] = []
    for directory in iter_tuboid_dirs(root):
        try:
            tuboids.append(read_tuboid(directory))
        except (FormatError, OSError) as exc:
            failures.append((directory, str(exc)))
    return tuboids, failures


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a temporary file in the same directory, then ``os.replace``: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_tuboid(root: str | Path, tuboid: Tuboid) -> Path:
    """Write ``<root>/<series_id>/<tuboid_id>/`` and return that directory.

    Files: ``metadata.txt`` (all frames), ``tuboid.jpg`` (the tiles, quality 100, 896 px wide) and
    ``context.jpg`` (``context_jpeg`` as is; a stale one is removed when the tuboid has none, so the directory
    always describes this tuboid). Each file is replaced atomically.

    Refused (:class:`TuboidError`): fewer than 3 frames, frames from another device or out of order, and a
    tile count that differs from the frames within 24 h of the first (the reader derives the tile count from
    ``metadata.txt``, so any other count would be misread) or is below the 2 the reader requires.
    """
    tid = tuboid.id
    frames = list(tuboid.frames)
    if len(frames) < MIN_FRAMES_TO_WRITE:
        raise TuboidError(f"tuboid {tid}: {len(frames)} frame(s); at least {MIN_FRAMES_TO_WRITE} are needed")
    metadata = format_metadata_txt(frames)
    # Validate by parsing what we are about to write (device, order, finite numbers), as a reader would.
    try:
        parsed = read_metadata_txt(metadata, device=tid.device)
    except TuboidError as exc:
        raise TuboidError(f"tuboid {tid}: {exc}") from None
    n_valid = count_valid_tiles(parsed)
    if tuboid.n_tiles != n_valid:
        raise TuboidError(
            f"tuboid {tid}: {tuboid.n_tiles} tiles but {n_valid} frames within 24 h of the first; "
            "they must be equal"
        )
    if n_valid < MIN_TILES_TO_READ:
        raise TuboidError(f"tuboid {tid}: only {n_valid} frame(s) within 24 h of the first (need >= 2)")
    try:
        grid = tile_grid(tuboid.tiles)
    except TuboidError as exc:
        raise TuboidError(f"tuboid {tid}: {exc}") from None
    tuboid_jpeg = _encode_jpeg(grid, TUBOID_JPEG_QUALITY)

    directory = Path(root) / tid.series_id / str(tid)
    directory.mkdir(parents=True, exist_ok=True)
    _atomic_write_bytes(directory / METADATA_FILENAME, metadata.encode("utf-8"))
    _atomic_write_bytes(directory / TUBOID_FILENAME, tuboid_jpeg)
    if tuboid.context_jpeg is not None:
        _atomic_write_bytes(directory / CONTEXT_FILENAME, tuboid.context_jpeg)
    else:
        (directory / CONTEXT_FILENAME).unlink(missing_ok=True)
    return directory
