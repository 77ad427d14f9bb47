"""One annotated insect instance: a polygon in image pixels plus its class colour.

In the Sticky Pi formats the *stroke colour* of a path is the class (reference section 2.5); the palette
maps class names to colours. The original compared colours by exact string equality, so ``#0000FF``
silently became "unknown class"; here every colour is normalised to lowercase ``#rrggbb`` on the way in
and palette look-ups are case-insensitive.

Geometry follows OpenCV conventions (the original tools and the models use them): ``bbox`` is
``cv2.boundingRect`` (inclusive-pixel width/height), ``area`` is ``cv2.contourArea`` (shoelace), and the
centroid comes from image moments.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from stickypi_assets.formats.errors import FormatError

DEFAULT_STROKE = "#0000ff"
DEFAULT_FILL = "#ff0000"
DEFAULT_NAME = "insect"

_HEX6 = re.compile(r"^#[0-9a-f]{6}$")
_HEX3 = re.compile(r"^#[0-9a-f]{3}$")
_RGB = re.compile(r"^rgb\(\s*([^,\s]+)\s*,\s*([^,\s]+)\s*,\s*([^,\s)]+)\s*\)$")
# A CSS <number>; ``float`` alone would also take "nan", "inf" and "1_0", which CSS does not.
_CSS_NUMBER = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?$")
# The basic CSS colour keywords; enough for hand-edited files (Inkscape itself always writes hex).
_NAMED = {
    "black": "#000000",
    "silver": "#c0c0c0",
    "gray": "#808080",
    "grey": "#808080",
    "white": "#ffffff",
    "maroon": "#800000",
    "red": "#ff0000",
    "purple": "#800080",
    "fuchsia": "#ff00ff",
    "magenta": "#ff00ff",
    "green": "#008000",
    "lime": "#00ff00",
    "olive": "#808000",
    "yellow": "#ffff00",
    "navy": "#000080",
    "blue": "#0000ff",
    "teal": "#008080",
    "aqua": "#00ffff",
    "cyan": "#00ffff",
    "orange": "#ffa500",
}


class InvalidColourError(FormatError):
    """A colour that looks like ``rgb()`` but has a channel that is not a finite number."""


def normalize_colour(colour: str) -> str:
    """Canonical form of an SVG colour: lowercase ``#rrggbb`` where it can be derived.

    ``#00F``, ``rgb(0,0,255)``, ``rgb(0%,0%,100%)`` and ``blue`` all become ``#0000ff``. Anything else
    (``none``, ``url(#grad)``, …) is returned stripped and lowercased, so it still compares stably.

    ``rgb()`` channels are numbers (0-255) or percentages (0%-100%); finite values outside the range are
    clamped, as CSS does. A channel that is not a finite CSS number (``nan``, ``inf``, ``1e999``, ``x``) raises
    :class:`InvalidColourError`: it is a hostile or broken file, and turning it into some colour would
    silently give the instance a class nobody drew (the original crashed with ``ValueError``/``OverflowError``).
    """
    text = colour.strip().lower()
    if _HEX6.match(text):
        return text
    if _HEX3.match(text):
        return "#" + "".join(c * 2 for c in text[1:])
    if text in _NAMED:
        return _NAMED[text]
    match = _RGB.match(text)
    if match:
        channels = []
        for part in match.groups():
            number = part[:-1] if part.endswith("%") else part
            value = float(number) if _CSS_NUMBER.match(number) else math.nan
            if not math.isfinite(value):
                raise InvalidColourError(f"colour {colour.strip()!r}: channel {part!r} is not a finite number")
            value = value * 2.55 if part.endswith("%") else value
            channels.append(min(255, max(0, round(value))))
        return "#{:02x}{:02x}{:02x}".format(*channels)
    return text


def class_for_stroke(stroke: str, palette: Mapping[str, str]) -> str | None:
    """Class name whose palette colour equals ``stroke`` (case-insensitive, normalised), else ``None``.

    ``palette`` maps class name → colour, e.g. ``{"insect": "#0000ff"}``.
    """
    wanted = normalize_colour(stroke)
    for class_name, colour in palette.items():
        if normalize_colour(colour) == wanted:
            return class_name
    return None


def _as_polygon(polygon: Any) -> np.ndarray:
    arr = np.asarray(polygon)
    if arr.ndim == 3 and arr.shape[1] == 1:  # OpenCV contour layout (N, 1, 2)
        arr = arr[:, 0, :]
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"polygon must have shape (N, 2) or (N, 1, 2), got {arr.shape}")
    if arr.shape[0] < 3:
        raise ValueError(f"polygon needs at least 3 vertices, got {arr.shape[0]}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)):
            raise ValueError("polygon coordinates must be finite")
        arr = np.rint(arr)
    return np.ascontiguousarray(arr, dtype=np.int32)


@dataclass(eq=False)
class Instance:
    """An insect outline in image pixel coordinates.

    ``polygon`` is coerced to a contiguous ``int32`` ``(N, 2)`` array of ``(x, y)`` (OpenCV ``(N, 1, 2)``
    contours and float arrays, rounded half-to-even, are accepted) with ``N >= 3``. ``score`` is the
    detector's confidence for predictions and ``None`` for human annotations.
    """

    polygon: np.ndarray
    stroke: str = DEFAULT_STROKE
    name: str = DEFAULT_NAME
    fill: str = DEFAULT_FILL
    value: int = 0
    score: float | None = None
    #: ``fill-opacity`` written for the path (the original tools write 0.2; validation SVGs draw ground truth at 0.3)
    fill_opacity: float = 0.2

    def __post_init__(self) -> None:
        self.polygon = _as_polygon(self.polygon)
        self.stroke = normalize_colour(self.stroke)
        self.fill = normalize_colour(self.fill)
        self.value = int(self.value)
        if self.score is not None:
            self.score = float(self.score)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Instance):
            return NotImplemented
        return np.array_equal(self.polygon, other.polygon) and (
            self.stroke,
            self.name,
            self.fill,
            self.value,
            self.score,
        ) == (other.stroke, other.name, other.fill, other.value, other.score)

    __hash__ = None  # mutable, like the polygon it holds

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` from ``cv2.boundingRect`` (w, h count pixels inclusively)."""
        x, y, w, h = cv2.boundingRect(self.polygon)
        return int(x), int(y), int(w), int(h)

    @property
    def area(self) -> float:
        return float(cv2.contourArea(self.polygon))

    @property
    def centroid(self) -> tuple[float, float]:
        """Centre of mass from image moments; for a zero-area polygon, the mean vertex.

        The original left zero-area annotations without a centroid and crashed later; readers drop such
        rings, and the fallback keeps hand-built instances usable instead of raising.
        """
        moments = cv2.moments(self.polygon)
        if moments["m00"] == 0:
            mean = self.polygon.mean(axis=0)
            return float(mean[0]), float(mean[1])
        return moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]

    def shifted(self, dx: int = 0, dy: int = 0) -> Instance:
        """A copy translated by ``(dx, dy)`` pixels (e.g. between the two frames of a SIM pair)."""
        return Instance(
            polygon=self.polygon + np.array([dx, dy], dtype=np.int32),
            stroke=self.stroke,
            name=self.name,
            fill=self.fill,
            value=self.value,
            score=self.score,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the original tools' keys (``contour``, ``stroke_colour``, ``fill_colour``)."""
        return {
            "contour": self.polygon.tolist(),
            "name": self.name,
            "stroke_colour": self.stroke,
            "value": self.value,
            "fill_colour": self.fill,
            "score": self.score,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Instance:
        """Inverse of :meth:`to_dict`; missing optional keys take the defaults."""
        return cls(
            polygon=np.asarray(d["contour"]),
            stroke=d.get("stroke_colour") or DEFAULT_STROKE,
            name=d.get("name") or DEFAULT_NAME,
            fill=d.get("fill_colour") or DEFAULT_FILL,
            value=d.get("value") or 0,
            score=d.get("score"),
        )
