"""From raw tile detections to one list of insect polygons per image (reference 3.3 steps 4-6).

Per tile: keep confident, large-enough detections that do not touch an *inner* tile border (an insect cut
by a tile border is seen whole by the neighbouring tile, which overlaps by at least ``tile_overlap``);
borders on the outer edge of the padded image are not filtered. Each kept mask becomes one polygon:
threshold, trace external contours, drop tiny ones, simplify with Douglas-Peucker, keep the largest.

Across tiles: the same insect found by two overlapping tiles is merged. The original accepted polygons in
tile order and kept the *first* duplicate, so the result depended on iteration order and a clipped
low-score copy could win (reference defect 6). Here duplicates are resolved greedily by **descending
score**, with a canonical tie-break, so the result is the same whatever order candidates arrive in, and
the best-scoring outline survives. Pairs are found with a shapely ``STRtree`` and IoUs computed in one
vectorised call, instead of the original's all-pairs Python loop. Invalid polygons (self-intersections
after simplification) are repaired with ``make_valid`` rather than treated as duplicates of everything.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import shapely

from stickypi_assets.formats.annotations import DEFAULT_FILL, Instance
from stickypi_assets.ml.uid.config import UidConfig
from stickypi_assets.ml.uid.detector import Detector, TileDetections
from stickypi_assets.ml.uid.tiling import Tile, iter_tile_batches

_KERNEL = np.ones((3, 3), dtype=np.uint8)


@dataclass(eq=False)
class Candidate:
    """A detection turned into a polygon, in original-image pixel coordinates."""

    polygon: np.ndarray  # int32 (N, 2) x, y
    score: float
    label: int  # 0-based class index
    tile_index: int

    def sort_key(self) -> tuple:
        """Total order used for merging: best score first, then a content-based tie-break."""
        x, y, w, h = cv2.boundingRect(self.polygon)
        return (-self.score, self.label, y, x, h, w, len(self.polygon), self.polygon.tobytes())


def keep_tile_detections(det: TileDetections, tile: Tile, config: UidConfig) -> np.ndarray:
    """Indices of detections passing the score, size and inner-edge filters (reference 3.3 step 4)."""
    if len(det) == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = det.boxes.T
    min_size = config.min_max_obj_size[0]
    margin = config.edge_margin
    keep = det.scores > config.score_threshold
    keep &= ((x2 - x1) > min_size) | ((y2 - y1) > min_size)
    inner = tile.inner_edges
    if inner.left:
        keep &= x1 > margin
    if inner.right:
        keep &= x2 < tile.width - margin
    if inner.top:
        keep &= y1 > margin
    if inner.bottom:
        keep &= y2 < tile.height - margin
    return np.flatnonzero(keep)


def paste_box_mask(
    mask: np.ndarray, box: Sequence[float], width: int, height: int, threshold: float = 0.5
) -> tuple[np.ndarray, int, int] | None:
    """Binary mask of one detection in a ``width x height`` frame, cut to its (expanded) box.

    ``mask`` is Mask R-CNN's ``M x M`` probability map in the frame of ``box``. This is torchvision's
    ``paste_masks_in_image`` for a single detection (pad by one zero pixel, expand the box to match,
    bilinear resize, clip to the frame) without allocating a full-frame array. Returns
    ``(binary uint8 (h, w), x0, y0)`` with the window's top-left in the frame, or ``None`` if empty.
    """
    m = mask.shape[-1]
    padded = np.pad(np.asarray(mask, dtype=np.float32), 1)
    scale = (m + 2) / m
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) * 0.5, (y1 + y2) * 0.5
    w_half, h_half = (x2 - x1) * 0.5 * scale, (y2 - y1) * 0.5 * scale
    bx1, bx2, by1, by2 = int(cx - w_half), int(cx + w_half), int(cy - h_half), int(cy + h_half)
    w, h = max(bx2 - bx1 + 1, 1), max(by2 - by1 + 1, 1)
    resized = cv2.resize(padded, (w, h), interpolation=cv2.INTER_LINEAR)
    x0, x_end = max(bx1, 0), min(bx2 + 1, width)
    y0, y_end = max(by1, 0), min(by2 + 1, height)
    if x_end <= x0 or y_end <= y0:
        return None
    local = resized[y0 - by1 : y_end - by1, x0 - bx1 : x_end - bx1] > threshold
    if not local.any():
        return None
    return local.astype(np.uint8), x0, y0


def mask_to_polygon(
    binary: np.ndarray,
    offset: tuple[int, int] = (0, 0),
    *,
    min_size: float = 20,
    epsilon: float = 0.006,
    dilation: int = 0,
) -> np.ndarray | None:
    """The largest simplified external contour of a binary mask, shifted by ``offset``, or ``None``.

    Contours whose minimum-area-rectangle long side is ``<= min_size / 2`` are dropped (specks), each
    remaining one is simplified with Douglas-Peucker at ``epsilon`` x its perimeter, and the one with the
    largest area is kept (reference 3.3 step 5). ``dilation`` applies 3x3 dilations first (the original: 1).
    """
    m = (np.asarray(binary) > 0).astype(np.uint8)
    ox, oy = int(offset[0]), int(offset[1])
    if dilation > 0:
        m = cv2.dilate(np.pad(m, dilation), _KERNEL, iterations=dilation)
        ox, oy = ox - dilation, oy - dilation
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(ox, oy))
    best, best_area = None, 0.0
    for contour in contours:
        if max(cv2.minAreaRect(contour)[1]) <= min_size / 2:
            continue
        approx = cv2.approxPolyDP(contour, epsilon * cv2.arcLength(contour, True), True)
        if len(approx) < 3:
            continue
        area = cv2.contourArea(approx)
        if area > best_area:
            best, best_area = approx, area
    return None if best is None else best[:, 0, :].astype(np.int32)


def tile_candidates(
    det: TileDetections,
    tile: Tile,
    config: UidConfig,
    *,
    padding: int = 0,
    image_size: tuple[int, int] | None = None,
) -> list[Candidate]:
    """Filtered detections of one tile as polygons in original-image coordinates.

    ``padding`` is the zero padding that was added around the image before tiling (subtracted from the
    tile offsets); with ``image_size = (width, height)`` each mask is cut to the image before it is traced,
    since an outline in the padding is meaningless downstream. Outlines enclosing fewer than
    ``MIN_VISIBLE_PIXELS`` px² are dropped, the rule training applies to its targets: a detection that is
    mostly in the padding otherwise leaves a degenerate sliver along the image edge.
    """
    out = []
    for i in keep_tile_detections(det, tile, config):
        if det.masks_in_boxes:
            pasted = paste_box_mask(det.masks[i], det.boxes[i], tile.width, tile.height, config.mask_threshold)
        else:
            full = det.masks[i] > config.mask_threshold
            pasted = (full.astype(np.uint8), 0, 0) if full.any() else None
        if pasted is None:
            continue
        local, x0, y0 = pasted
        ox, oy = tile.x + x0 - padding, tile.y + y0 - padding
        if image_size is not None:  # trace only the visible part: a mask reaching into the padding is cut there
            cx0, cy0 = max(0, -ox), max(0, -oy)
            cx1 = min(local.shape[1], image_size[0] - ox)
            cy1 = min(local.shape[0], image_size[1] - oy)
            if cx1 <= cx0 or cy1 <= cy0:
                continue
            local, ox, oy = local[cy0:cy1, cx0:cx1], ox + cx0, oy + cy0
        polygon = mask_to_polygon(
            local,
            (ox, oy),
            min_size=config.min_max_obj_size[0],
            epsilon=config.polygon_epsilon,
            dilation=config.mask_dilation,
        )
        if polygon is None:
            continue
        if image_size is not None:  # a dilated outline may step one pixel over the edge
            polygon[:, 0] = np.clip(polygon[:, 0], 0, image_size[0] - 1)
            polygon[:, 1] = np.clip(polygon[:, 1], 0, image_size[1] - 1)
        if cv2.contourArea(polygon) < max(config.min_visible_pixels, 1):
            continue  # a sliver (e.g. the visible edge of a detection in the padding) is not an insect
        out.append(
            Candidate(polygon=polygon, score=float(det.scores[i]), label=int(det.labels[i]), tile_index=tile.index)
        )
    return out


def polygons_to_geometries(polygons: Sequence[np.ndarray]) -> np.ndarray:
    """shapely geometries of ``(N, 2)`` rings, repaired with ``make_valid`` where needed."""
    geoms = np.array([shapely.Polygon(np.asarray(p, dtype=np.float64)) for p in polygons], dtype=object)
    if len(geoms):
        invalid = ~shapely.is_valid(geoms)
        if invalid.any():
            geoms[invalid] = shapely.make_valid(geoms[invalid])
    return geoms


def overlapping_pairs(
    geoms_a: np.ndarray, geoms_b: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(i, j, iou)`` for every pair whose geometries intersect (``b`` defaults to ``a``, with ``i < j``).

    An ``STRtree`` finds candidate pairs, then intersections and areas are computed in vectorised calls.
    """
    same = geoms_b is None
    geoms_b = geoms_a if geoms_b is None else geoms_b
    empty = np.zeros(0, dtype=np.int64)
    if len(geoms_a) == 0 or len(geoms_b) == 0:
        return empty, empty, np.zeros(0)
    tree = shapely.STRtree(geoms_b)
    i, j = tree.query(geoms_a, predicate="intersects")
    if same:
        upper = i < j
        i, j = i[upper], j[upper]
    if len(i) == 0:
        return empty, empty, np.zeros(0)
    inter = shapely.area(shapely.intersection(geoms_a[i], geoms_b[j]))
    union = shapely.area(geoms_a[i]) + shapely.area(geoms_b[j]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return i.astype(np.int64), j.astype(np.int64), iou


def merge_candidates(candidates: Sequence[Candidate], iou_threshold: float) -> list[Candidate]:
    """Remove cross-tile duplicates, keeping the best-scoring outline of each insect.

    Two candidates from *different* tiles are duplicates when their polygon IoU exceeds
    ``iou_threshold``. Candidates from the same tile are never compared (the model's own NMS handled
    them). Greedy in :meth:`Candidate.sort_key` order: a candidate is kept unless a kept one is its
    duplicate. The result is in that order and does not depend on the input order.
    """
    order = sorted(range(len(candidates)), key=lambda k: candidates[k].sort_key())
    ranked = [candidates[k] for k in order]
    if len(ranked) < 2:
        return ranked
    geoms = polygons_to_geometries([c.polygon for c in ranked])
    i, j, iou = overlapping_pairs(geoms)
    tiles = np.array([c.tile_index for c in ranked])
    dup = (iou > iou_threshold) & (tiles[i] != tiles[j])
    # i < j and ranks are positions in ``ranked``: the earlier (better) one may suppress the later one.
    suppressors: dict[int, list[int]] = {}
    for a, b in zip(i[dup].tolist(), j[dup].tolist(), strict=True):
        suppressors.setdefault(b, []).append(a)
    kept = np.zeros(len(ranked), dtype=bool)
    for k in range(len(ranked)):
        kept[k] = not any(kept[a] for a in suppressors.get(k, ()))
    return [c for c, keep in zip(ranked, kept, strict=True) if keep]


def candidates_to_instances(merged: Sequence[Candidate], config: UidConfig) -> list[Instance]:
    """Merged candidates as :class:`Instance` objects with the class name and stroke colour of ``config.classes``,
    fill ``#ff0000``, value 0 and the detector's score (in the candidates' order)."""
    names, palette = config.class_names, config.palette
    return [
        Instance(polygon=c.polygon, stroke=palette[names[c.label]], name=names[c.label], fill=DEFAULT_FILL, value=0,
                 score=c.score)
        for c in merged
    ]  # fmt: skip


def detect_tiles(
    detector: Detector, padded: np.ndarray, tiles: Sequence[Tile], config: UidConfig, image_size: tuple[int, int]
) -> tuple[dict[int, list[Candidate]], float, float]:
    """Run the detector on ``tiles`` of the padded image in batches of ``TILE_BATCH_SIZE``: ``(candidates per tile
    index in image pixels, seconds in the model, seconds turning its outputs into candidates)``. The one tile loop
    of a full pass (:func:`~stickypi_assets.ml.uid.predict.predict_image`) and of change-aware inference."""
    found: dict[int, list[Candidate]] = {}
    model_s = post_s = 0.0
    for batch, views in iter_tile_batches(padded, tiles, config.tile_batch_size):
        t0 = time.perf_counter()
        detections = detector.predict_batch(views)
        t1 = time.perf_counter()
        for tile, det in zip(batch, detections, strict=True):
            found[tile.index] = tile_candidates(det, tile, config, padding=config.original_image_padding,
                                                image_size=image_size)  # fmt: skip
        model_s += t1 - t0
        post_s += time.perf_counter() - t1
    return found, model_s, post_s
