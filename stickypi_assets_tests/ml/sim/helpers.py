"""Hand-made frames and deterministic fake matchers for tracking tests (no pixels needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from stickypi_assets.formats.annotations import Instance
from stickypi_assets.ml.sim.config import SimConfig
from stickypi_assets.ml.sim.features import Frame, PairBatch

DEVICE = "0a5bb6f4"
T0 = datetime(2020, 6, 20, 0, 0, 0, tzinfo=UTC)
STEP_S = 1200


def square(cx: float, cy: float, half: int = 10, name: str = "insect") -> Instance:
    cx, cy = int(round(cx)), int(round(cy))
    polygon = np.array([[cx - half, cy - half], [cx + half, cy - half], [cx + half, cy + half], [cx - half, cy + half]])
    return Instance(polygon=polygon, name=name)


def frame_at(when: datetime, instances: list[Instance], image: np.ndarray | None = None) -> Frame:
    return Frame(key=f"{DEVICE}.{when:%Y-%m-%d_%H-%M-%S}", datetime=when, instances=instances, image=image)


def frame(k: int, centres: list[tuple[float, float]], t0: datetime = T0, step_s: int = STEP_S) -> Frame:
    """Frame ``k`` of a series (``t0 + k * step_s``) with 20 px squares at ``centres``."""
    return frame_at(t0 + timedelta(seconds=k * step_s), [square(x, y) for x, y in centres])


def labelled_frame(k: int, labels: list[str], centre: tuple[float, float] = (100, 100)) -> Frame:
    """Frame ``k`` whose instances (all at ``centre``) are named by ``labels`` (for :class:`TableMatcher`)."""
    when = T0 + timedelta(seconds=k * STEP_S)
    return frame_at(when, [square(*centre, name=label) for label in labels])


def bbox_iou(a: Instance, b: Instance) -> float:
    ax, ay, aw, ah = a.bbox
    bx, by, bw, bh = b.bbox
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union else 0.0


class CountingMatcher:
    """Base of the fakes: counts calls and pairs."""

    def __init__(self) -> None:
        self.calls = 0
        self.pairs = 0
        self.batch_sizes: list[int] = []

    def score_pairs(self, batch: PairBatch) -> np.ndarray:
        self.calls += 1
        self.pairs += len(batch)
        self.batch_sizes.append(len(batch))
        return np.array([self.score(a, b) for a, b in zip(batch.instances0, batch.instances1, strict=True)])

    def score(self, a: Instance, b: Instance) -> float:
        raise NotImplementedError


class IouMatcher(CountingMatcher):
    """Score = bbox IoU of the two instances."""

    def score(self, a: Instance, b: Instance) -> float:
        return bbox_iou(a, b)


class TableMatcher(CountingMatcher):
    """Score = ``table[(name of the earlier, name of the later)]``, else ``default``; directional on purpose."""

    def __init__(self, table: dict[tuple[str, str], float], default: float = 0.0) -> None:
        super().__init__()
        self.table = table
        self.default = default
        self.asked: list[tuple[str, str]] = []

    def score(self, a: Instance, b: Instance) -> float:
        self.asked.append((a.name, b.name))
        return self.table.get((a.name, b.name), self.default)


def config(**changes: object) -> SimConfig:
    return SimConfig().replace(**changes) if changes else SimConfig()


def jpeg(image: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return buf.tobytes()


def card(width: int = 240, height: int = 180, centres: list[tuple[int, int]] = (), seed: int = 0) -> np.ndarray:
    """A small light card with dark textured 'insects' (squares) at ``centres``."""
    rng = np.random.default_rng(seed)
    img = np.full((height, width, 3), 200, np.uint8)
    img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    for k, (x, y) in enumerate(centres):
        y0, y1, x0, x1 = max(y - 10, 0), min(y + 11, height), max(x - 10, 0), min(x + 11, width)
        patch = np.random.default_rng(1000 + k).integers(0, 120, size=(21, 21, 3))
        img[y0:y1, x0:x1] = patch[: y1 - y0, : x1 - x0]
    return img


def tiny_sim_pair(n0: int = 4, n1: int = 3, groups=((0, 1), (2, 0)), seed: int = 0, hours: int = 0):
    """A small :class:`SimPair`: ``n0`` and ``n1`` squares, ``groups`` = same insect (same position)."""
    from stickypi_assets.formats.sim_svg import SimPair
    from stickypi_assets.formats.uid_svg import UidSvg

    rng = np.random.default_rng(seed)
    pos0 = [(int(30 + 45 * (k % 4)), int(30 + 50 * (k // 4))) for k in range(n0)]
    pos1 = [(int(x), int(y)) for x, y in rng.integers(20, 160, size=(n1, 2))]
    for i0, i1 in groups:
        pos1[i1] = (pos0[i0][0] + 2, pos0[i0][1] + 1)
    img0, img1 = card(centres=pos0, seed=seed), card(centres=pos1, seed=seed + 1)
    when = T0 + timedelta(hours=hours)
    f0 = UidSvg(jpeg_bytes=jpeg(img0), width=240, height=180, metadata={}, instances=[square(*p) for p in pos0])
    f1 = UidSvg(jpeg_bytes=jpeg(img1), width=240, height=180, metadata={}, instances=[square(*p) for p in pos1])
    return SimPair(frame0=f0, frame1=f1, groups=list(groups), device=DEVICE, datetime0=when,
                   datetime1=when + timedelta(seconds=STEP_S))


TINY_NET = {"channels": [4, 8, 8, 8], "embedding_size": 16}
