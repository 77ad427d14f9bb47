"""What the UID needs from a detection model, without importing torch.

Tiling, post-processing, prediction and validation depend only on these two names, so they can be used
(and tested) with any backend: the torchvision Mask R-CNN of :mod:`stickypi_assets.ml.uid.model`,
detectron2 when installed, a YOLO-seg model or a test double. A detector receives **BGR uint8 tiles** (the
OpenCV convention used everywhere in Sticky Pi) and returns, per tile, boxes, scores, 0-based class
indices and masks.

Which detector a bundle uses is its config's ``DETECTOR``, chosen from an allow-list (:func:`detector_factory`):
the config is data from the object store and never names code to import.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class TileDetections:
    """Raw detections of one tile, in tile pixel coordinates, before any Sticky Pi filtering.

    ``boxes`` are ``(K, 4)`` float ``x1, y1, x2, y2`` (continuous coordinates: a box covering pixel
    columns 3..5 is ``x1=3, x2=6``). ``labels`` are 0-based indices into ``UidConfig.class_names``.
    ``masks`` are float probabilities: ``(K, M, M)`` in the frame of each box when ``masks_in_boxes``
    (Mask R-CNN's native output), else ``(K, H, W)`` in the frame of the tile.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    masks_in_boxes: bool = True

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        self.masks = np.asarray(self.masks, dtype=np.float32)
        n = len(self.boxes)
        if len(self.scores) != n or len(self.labels) != n or len(self.masks) != n:
            raise ValueError("boxes, scores, labels and masks must have the same length")

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls, mask_size: int = 28) -> TileDetections:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0), np.zeros((0, mask_size, mask_size)))


@runtime_checkable
class Detector(Protocol):
    """What prediction needs from a model: detections for a batch of BGR uint8 tiles."""

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[TileDetections]: ...


@runtime_checkable
class TrainableDetector(Detector, Protocol):
    """What training needs on top: losses for a batch with targets (see ``dataset.Target``)."""

    def losses(self, images: Sequence[np.ndarray], targets: Sequence[Mapping[str, np.ndarray]]) -> dict[str, Any]: ...


# -- which detectors a bundle may name (``DETECTOR``) ------------------------------------------------------------

#: The built-in backend (:class:`stickypi_assets.ml.uid.model.MaskRCNNDetector`).
BUILTIN_DETECTOR = "maskrcnn"
#: Entry point group through which an installed package offers detectors: ``name = "package.module:factory"``.
DETECTOR_ENTRY_POINT_GROUP = "stickypi_assets.uid_detectors"
#: What a ``DETECTOR`` value may look like (a name, or the ``package.module:factory`` of an entry point).
DETECTOR_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z_][A-Za-z0-9_.]*)?")

#: ``factory(config, device)`` returning an object with ``predict_batch(images)`` and ``load_weights(path)``.
DetectorFactory = Callable[[Any, str], Any]

_REGISTERED: dict[str, DetectorFactory] = {}


def register_detector(name: str, factory: DetectorFactory) -> None:
    """Allow bundles to name ``factory`` as ``DETECTOR: <name>``; call it from code you run (your definitions).

    The bundle config lives in the object store, where anyone who can upload a bundle could write it: were
    ``DETECTOR`` an importable ``module:factory`` to call, that person would choose which code this process runs.
    So a config only *selects* among factories that the code or the installed packages offer: this registry, the
    entry point group :data:`DETECTOR_ENTRY_POINT_GROUP` and the built-in ``maskrcnn``.
    """
    if not DETECTOR_NAME.fullmatch(name) or name == BUILTIN_DETECTOR:
        raise ValueError(f"detector name {name!r}: letters, digits, '_', '.', '-' (optionally ':factory'), "
                         f"not {BUILTIN_DETECTOR!r}")  # fmt: skip
    if not callable(factory):
        raise TypeError(f"detector {name!r}: the factory must be callable, got {type(factory).__name__}")
    _REGISTERED[name] = factory


def unregister_detector(name: str) -> None:
    """Withdraw a name given to :func:`register_detector` (tests, plugins being unloaded); absent names are fine."""
    _REGISTERED.pop(name, None)


def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    return list(entry_points(group=DETECTOR_ENTRY_POINT_GROUP))


def allowed_detectors() -> list[str]:
    """Every value ``DETECTOR`` may take here: ``maskrcnn``, registered names, entry point names (and values)."""
    names = {BUILTIN_DETECTOR, *_REGISTERED}
    for ep in _entry_points():
        names.update((ep.name, ep.value))
    return sorted(names)


def is_allowed_detector(name: str) -> bool:
    """Whether a bundle may name ``name`` as its ``DETECTOR`` (see :func:`register_detector`)."""
    if name == BUILTIN_DETECTOR or name in _REGISTERED:
        return True
    return any(name in (ep.name, ep.value) for ep in _entry_points())


def detector_factory(name: str) -> DetectorFactory:
    """The factory ``DETECTOR: <name>`` selects, only from the allow-list; ``ValueError`` for any other name.

    Nothing named by the config is imported: an entry point is loaded only because an installed package
    declared it. ``maskrcnn`` is resolved by the caller (it needs torch, this module does not).
    """
    if name in _REGISTERED:
        return _REGISTERED[name]
    for ep in _entry_points():
        if name in (ep.name, ep.value):
            try:
                return ep.load()
            except (ImportError, AttributeError) as exc:  # declared by an installed package that is broken
                raise ValueError(f"DETECTOR {name!r}: entry point {ep.value!r} cannot be loaded: {exc}") from exc
    raise ValueError(f"DETECTOR {name!r} is not an allowed detector (allowed: {', '.join(allowed_detectors())}); "
                     "a bundle's config cannot name code to import: register a factory with "
                     "stickypi_assets.ml.uid.detector.register_detector(name, factory) or the entry point group "
                     f"{DETECTOR_ENTRY_POINT_GROUP!r}")  # fmt: skip
