"""One image → insect polygons, and a folder of JPEGs → annotation SVGs (reference 3.3 and 3.4).

:func:`predict_image` is the core used by the CLI, the Dagster asset, validation and benchmarks: pad by
``ORIGINAL_IMAGE_PADDING``, cut overlapping tiles (:mod:`tiling`), run the detector on batches of tiles
(never rescaled), filter and vectorise per tile and merge cross-tile duplicates (:mod:`postprocess`).
It takes an already-decoded image so callers decode each JPEG exactly once.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from stickypi_assets.formats.annotations import Instance
from stickypi_assets.formats.names import InvalidImageName, format_datetime, parse_image_name
from stickypi_assets.formats.split import md5_bytes
from stickypi_assets.formats.uid_svg import UidSvg, write_uid_svg
from stickypi_assets.ml.bundles import WEIGHTS_RELPATH
from stickypi_assets.ml.uid.change import ChangeAwarePredictor
from stickypi_assets.ml.uid.config import BUNDLE_NAME, UidConfig, bundle_config
from stickypi_assets.ml.uid.detector import BUILTIN_DETECTOR, Detector, detector_factory
from stickypi_assets.ml.uid.postprocess import candidates_to_instances, detect_tiles, merge_candidates
from stickypi_assets.ml.uid.tiling import pad_image, plan_tiles

log = logging.getLogger(__name__)


@dataclass
class PredictTimings:
    """Seconds spent per stage, accumulated over calls (benchmarks and asset metadata)."""

    decode: float = 0.0
    model: float = 0.0
    postprocess: float = 0.0
    images: int = 0
    #: Tiles the detector ran on, and tiles whose detections change-aware inference carried over instead.
    tiles: int = 0
    tiles_carried: int = 0

    @property
    def total(self) -> float:
        return self.decode + self.model + self.postprocess


def predict_image(
    detector: Detector,
    image: np.ndarray,
    config: UidConfig,
    *,
    timings: PredictTimings | None = None,
) -> list[Instance]:
    """Insects found in a BGR uint8 image, as scored :class:`Instance` objects in image pixels.

    Instances carry the class name and stroke colour from ``config.classes``, fill ``#ff0000``, value 0
    and the detector's score, and come out best score first.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a BGR (H, W, 3) image, got shape {image.shape}")
    height, width = image.shape[:2]
    padding = config.original_image_padding
    padded = pad_image(image, padding)
    tiles = plan_tiles(padded.shape[1], padded.shape[0], config.tile_size, config.tile_overlap)
    found, model_s, post_s = detect_tiles(detector, padded, tiles, config, (width, height))
    t1 = time.perf_counter()
    candidates = [c for tile in tiles for c in found[tile.index]]
    instances = candidates_to_instances(merge_candidates(candidates, config.merge_iou), config)
    if timings is not None:
        timings.model += model_s
        timings.postprocess += post_s + time.perf_counter() - t1
        timings.images += 1
        timings.tiles += len(tiles)
    return instances


def decode_jpeg(data: bytes) -> np.ndarray:
    """BGR uint8 array of JPEG bytes (EXIF orientation ignored, like the SVG reader)."""
    if not data:
        raise ValueError("cannot decode image (empty file)")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise ValueError(f"cannot decode image ({len(data)} bytes)")
    return image


# -- bundles ---------------------------------------------------------------------------------------------


def build_detector(config: UidConfig, *, device: str = "cpu") -> Any:
    """The detector the config's ``DETECTOR`` selects (random weights): Mask R-CNN, or an allowed factory.

    The config is store data: it only picks among :func:`~stickypi_assets.ml.uid.detector.allowed_detectors`
    (built-in, registered in code, or offered by an installed package's entry point), so an uploaded bundle cannot
    make this process import or call a module of its choosing.
    """
    if config.detector == BUILTIN_DETECTOR:
        from stickypi_assets.ml.uid.model import MaskRCNNDetector

        return MaskRCNNDetector(config, device=device)
    factory = detector_factory(config.detector)  # ValueError for anything not on the allow-list
    detector = factory(config, device)
    if not isinstance(detector, Detector) or not hasattr(detector, "load_weights"):
        raise ValueError(f"DETECTOR {config.detector!r} returned {type(detector).__name__}, which lacks "
                         "predict_batch(images) or load_weights(path)")  # fmt: skip
    return detector


def load_detector(
    bundle_dir: str | Path,
    *,
    device: str = "cpu",
    config: UidConfig | None = None,
    weights: str | Path | None = None,
    require_weights: bool = True,
) -> tuple[Any, UidConfig, str | None]:
    """``(detector, config, version)`` of a bundle: its config and ``output/model_final.pth``.

    ``version`` is the md5 of the weights file (``None`` without weights). A bundle without weights
    raises ``FileNotFoundError`` unless ``require_weights=False`` (random weights: tests, benchmarks).
    """
    from stickypi_assets.ml.uid.model import weights_version

    config = config or bundle_config(bundle_dir)
    detector = build_detector(config, device=device)
    path = Path(weights) if weights is not None else Path(bundle_dir) / WEIGHTS_RELPATH
    if path.exists():
        detector.load_weights(path)
        return detector, config, weights_version(path)
    if require_weights:
        if weights is not None:
            raise FileNotFoundError(f"UID weights {path} not found")
        raise FileNotFoundError(
            f"{path} not found: the UID bundle {bundle_dir} has no trained weights; train it first "
            f"(`stickypi uid train --bundle-dir {bundle_dir}`) or give a trained bundle"
        )
    log.warning("%s not found: the detector has random weights", path)
    return detector, config, None


def image_metadata(jpg_path: Path, jpeg_bytes: bytes, version: str | None) -> dict[str, Any]:
    """Metadata written by prediction (reference 3.3 step 8); device/datetime ``None`` for foreign names."""
    try:
        name = parse_image_name(jpg_path.name, ext=None)
        device, dt = name.device, format_datetime(name.datetime)
    except InvalidImageName:
        device = dt = None
    return {
        "md5": md5_bytes(jpeg_bytes),
        "device": device,
        "datetime": dt,
        "algo_name": BUNDLE_NAME,
        "algo_version": version,
    }


def iter_jpegs(target: Path) -> Iterator[Path]:
    """Every ``*.jpg``/``*.jpeg`` (any case) below ``target``, sorted."""
    for path in sorted(target.rglob("*")):
        if path.is_file() and path.suffix.lower() in (".jpg", ".jpeg"):
            yield path


@dataclass
class PredictDirResult:
    """What :func:`predict_dir` did, per JPEG found.

    ``written``: SVGs written; ``skipped``: JPEGs left alone because ``<stem>.svg`` or ``a_<stem>.svg`` exists;
    ``failed``: ``(jpeg, reason)`` for JPEGs that could not be read, decoded, predicted or written (no SVG is
    left for them). Iterating, ``len()`` and indexing see ``written``, the list earlier versions returned.
    """

    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def __iter__(self) -> Iterator[Path]:
        return iter(self.written)

    def __len__(self) -> int:
        return len(self.written)

    def __getitem__(self, index: int) -> Path:
        return self.written[index]


def predict_dir(
    bundle_dir: str | Path | None,
    target: str | Path,
    *,
    force: bool = False,
    de_novo: bool = False,
    device: str = "cpu",
    detector: Detector | None = None,
    config: UidConfig | None = None,
    progress: bool = False,
) -> PredictDirResult:
    """Write ``<stem>.svg`` next to every JPEG under ``target``; returns what was written, skipped and failed.

    A JPEG is skipped when ``<stem>.svg`` or ``a_<stem>.svg`` (the "manually annotated" convention)
    already exists, unless ``force``. ``de_novo`` writes SVGs without paths, for annotating from scratch,
    and needs no bundle. ``detector``/``config`` override the bundle's (tests, custom backends).

    One bad JPEG (unreadable, corrupt, or failing in the model) is logged as a warning and recorded in
    ``failed``; the others are still processed. SVGs are written atomically (temporary file, then rename),
    so a failure never leaves half a file. ``progress`` shows a progress bar (one step per JPEG) on stderr.
    The JPEGs of one device in one folder run in name (= time) order through change-aware inference
    (:mod:`stickypi_assets.ml.uid.change`: only the tiles that changed are re-run; ``CHANGE_AWARE: false`` = all).
    """
    target = Path(target)
    if not target.is_dir():
        raise FileNotFoundError(f"target {target} is not a directory")
    version = None
    if not de_novo and detector is None:
        if bundle_dir is None:
            raise ValueError("a bundle is needed to predict (or use de_novo=True)")
        detector, config, version = load_detector(bundle_dir, device=device, config=config)
    config = config or (bundle_config(bundle_dir) if bundle_dir is not None else UidConfig())
    result = PredictDirResult()
    jpegs = list(iter_jpegs(target))
    # the frames of one device in one folder, in name (= time) order, re-run only the tiles that changed
    predictor = None if de_novo else ChangeAwarePredictor(detector, config)
    sequence: tuple[Path, str | None] | None = None
    bar = tqdm(jpegs, desc="uid predict-dir", unit="jpg", disable=not progress, file=sys.stderr)
    for jpg in bar:
        out = jpg.with_suffix(".svg")
        if not force and (out.exists() or out.with_name(f"a_{out.name}").exists()):
            log.info("skip %s: annotation exists", jpg)
            result.skipped.append(jpg)
            continue
        try:
            data = jpg.read_bytes()
            image = decode_jpeg(data)
            metadata = image_metadata(jpg, data, version)
            instances = []
            if predictor is not None:
                if sequence != (jpg.parent, metadata["device"]) or metadata["device"] is None:
                    sequence = (jpg.parent, metadata["device"])
                    predictor.reset()
                instances = predictor.predict(image, jpg.name).instances
            if de_novo:
                metadata.pop("algo_name")
                metadata.pop("algo_version")
            doc = UidSvg(
                jpeg_bytes=data, width=image.shape[1], height=image.shape[0], metadata=metadata, instances=instances
            )
            write_uid_svg(doc, out)  # atomic: a temporary file renamed over ``out``
        except Exception as exc:  # one bad image never stops the folder: record it, go on
            reason = f"{type(exc).__name__}: {exc}"
            log.warning("UID failed on %s: %s", jpg, reason)
            result.failed.append((jpg, reason))
        else:
            result.written.append(out)
        bar.set_postfix(written=len(result.written), skipped=len(result.skipped), failed=len(result.failed),
                        refresh=False)
    return result
