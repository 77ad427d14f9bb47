"""UID annotation SVGs: one embedded JPEG plus one ``<path>`` per insect (reference section 2).

Files come from two writers: the original tools (and :func:`write_uid_svg`), which write plain integer
polygons, and Inkscape, where people correct or draw annotations with any path syntax. The reader is
therefore lenient about everything that does not affect correctness and strict about what does:

* The embedded image is decoded from base64 to the **original JPEG bytes** (never re-encoded), so
  ``md5(jpeg_bytes)`` equals the md5 of the camera's file; that md5 drives the train/validation split.
* One bad path never sinks a file: unparseable ``d``, paths without a stroke colour (no class), rings
  with fewer than 3 vertices or zero area are skipped with a warning naming the file and the path.
* Path coordinates are mapped to JPEG pixels through everything that places them in the document:
  ``transform`` attributes of the path and its groups (Inkscape layers), the image's own transform and
  ``x``/``y`` offset, and the ratio between the JPEG's size and the image's displayed size, **per axis**
  (the original swapped the axes and ignored offsets and transforms). This matters on real data:
  ``398948ee.2020-07-08_19-16-30.svg`` has its image nudged to ``x=-1.37, y=-2.74`` in Inkscape, and
  the outlines fit the insects better once the offset is compensated.
* Metadata is JSON in ``<metadata id="stickypi-metadata">``. The legacy ``desc`` attribute (a Python repr
  read with ``ast.literal_eval``) and ``<sticky metadata=…>`` are still read, and :func:`write_uid_svg`
  still writes ``desc`` so the original tools can open our files.

Hostile files are one bad file, never a crash: everything :func:`read_uid_svg` raises for a document is
a :class:`UidSvgError` (a :class:`FormatError`) naming the file. XML external entities are never fetched and
entity-expansion bombs stop in expat; containers nested deeper than :data:`MAX_NESTING_DEPTH` are refused (the
walk is iterative, so depth never meets Python's recursion limit); colours, numbers and coordinates that are
not finite, or pixel coordinates beyond :data:`MAX_PIXEL_COORDINATE`, drop the path or ring they are in with a
warning instead of becoming a garbage vertex or class.

JSON metadata is lossless for the value types found in EXIF: ``bytes`` are stored as
``{"__bytes__": "<base64>"}`` and tuples as ``{"__tuple__": [...]}``; other non-JSON values (datetimes,
paths, …) are written with ``str``. A read → write → read round trip therefore gives back an equal dict.
"""

from __future__ import annotations

import ast
import base64
import binascii
import contextlib
import json
import math
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import cv2
import numpy as np

from stickypi_assets.formats.annotations import (
    DEFAULT_FILL,
    DEFAULT_NAME,
    Instance,
    InvalidColourError,
    normalize_colour,
)
from stickypi_assets.formats.errors import FormatError
from stickypi_assets.formats.split import md5_bytes
from stickypi_assets.formats.svg_paths import (
    IDENTITY,
    apply_transform,
    flatten_path,
    is_identity,
    parse_transform,
)

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
SODIPODI_NS = "http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd"
INKSCAPE_NS = "http://www.inkscape.org/namespaces/inkscape"
#: ``id`` of the ``<metadata>`` element holding our JSON metadata.
METADATA_ID = "stickypi-metadata"

_BYTES_TAG = "__bytes__"
_TUPLE_TAG = "__tuple__"
_HEX_MD5 = re.compile(r"^[0-9a-f]{32}$")
# Grouping elements searched for paths. Everything else (defs, marker, clipPath, mask, pattern, symbol…)
# holds shapes that are not drawn where they stand, so never annotations.
_CONTAINERS = frozenset({"g", "a", "switch"})
_ATTR_ESCAPES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
#: Deepest nesting of containers (``<g>``, ``<a>``, ``<switch>``) read. Inkscape files nest a handful of
#: levels (layer, group, sub-group); the walk is iterative, so this limit is about cost, not the stack:
#: each path keeps the tuple of its ancestor groups, quadratic in the depth. Deeper files are refused.
MAX_NESTING_DEPTH = 1000
#: Largest ``|x|`` or ``|y|`` (pixels) of a polygon vertex. Cameras take ~2592 x 1944 images; a vertex a
#: million pixels away is an overflowing path or transform, and would wrap around when cast to ``int32``.
MAX_PIXEL_COORDINATE = 1_000_000


def _q(local: str, ns: str = SVG_NS) -> str:
    return f"{{{ns}}}{local}"


class UidSvgError(FormatError):
    """A UID annotation SVG that cannot be read or written."""


@dataclass
class UidSvg:
    """An annotated image: the original JPEG, its metadata and the insect instances (pixel coordinates)."""

    jpeg_bytes: bytes
    width: int
    height: int
    metadata: dict[str, Any]
    instances: list[Instance]
    warnings: list[str] = field(default_factory=list)

    @property
    def md5(self) -> str:
        """md5 of the embedded JPEG, i.e. of the original ``.jpg`` file (it decides the data split)."""
        return md5_bytes(self.jpeg_bytes)

    def decode_image(self) -> np.ndarray:
        """The image as OpenCV BGR ``uint8`` ``(height, width, 3)``.

        EXIF orientation is ignored so the array has the same pixel grid as the stored width/height and
        the polygons (Sticky Pi cameras do not set it).
        """
        buffer = np.frombuffer(self.jpeg_bytes, dtype=np.uint8)
        image = None
        if buffer.size:
            image = cv2.imdecode(buffer, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if image is None:
            raise FormatError(f"embedded image ({len(self.jpeg_bytes)} bytes) cannot be decoded")
        return image


# -- public API ----------------------------------------------------------------------------------------


def read_uid_svg(source: str | Path | bytes, *, name: str | None = None) -> UidSvg:
    """Read a UID SVG from a path, its bytes, or its text (a ``str`` starting with ``<``).

    ``name`` is used in messages (defaults to the file name). Raises :class:`UidSvgError` when the file
    cannot be an annotated image at all (not XML, not SVG, nested deeper than :data:`MAX_NESTING_DEPTH`,
    not exactly one embedded image, image bytes not a readable JPEG/PNG); path-level problems become
    entries of ``warnings``. Any other exception raised while reading the document (a bug meeting a
    hostile file) is also turned into a :class:`UidSvgError` naming the file and the exception type, so
    callers that record :class:`FormatError` per file and go on are never stopped by one file; only
    ``OSError`` from reading ``source`` and ``MemoryError`` pass through. Pixels are decoded only
    on demand (:meth:`UidSvg.decode_image`); the size comes from the JPEG header.
    """
    data, name = load_source(source, name)
    try:
        return _read_uid_document(data, name)
    except FormatError:
        raise
    except MemoryError:
        raise  # the machine's state, not a property of this file
    except Exception as exc:  # noqa: BLE001 - a hostile file must be one recorded bad file, never a crash
        raise UidSvgError(f"{name}: unreadable ({type(exc).__name__}: {exc})") from exc


def _read_uid_document(data: bytes, name: str) -> UidSvg:
    root = parse_svg_xml(data, name, UidSvgError)
    warnings: list[str] = []
    tree = walk_svg(root, name, warnings)
    image_elems = list(root.iter(_q("image")))
    if len(image_elems) != 1:
        raise UidSvgError(f"{name}: a UID SVG must contain exactly one <image>, found {len(image_elems)}")
    image = read_embedded_image(image_elems[0], tree.image_ctms.get(image_elems[0], IDENTITY), name, UidSvgError)
    metadata = read_metadata(root, image.elem, name, warnings)
    check_metadata_md5(metadata, image.jpeg_bytes, name, warnings)
    instances: list[Instance] = []
    for node in tree.paths:
        shapes = read_path(node, name, warnings)
        if shapes is None:
            continue
        for k, ring in enumerate(shapes.rings):
            polygon = ring_to_polygon(image.user_to_pixel(ring), name, shapes.label, k, warnings)
            if polygon is not None:
                instances.append(shapes.instance(polygon))
    return UidSvg(jpeg_bytes=image.jpeg_bytes, width=image.width, height=image.height, metadata=metadata,
                  instances=instances, warnings=warnings)  # fmt: skip


def write_uid_svg(doc: UidSvg, dest: str | Path | None = None) -> bytes:
    """Serialise ``doc`` in the original tools' layout (reference 2.1/2.4) and return the bytes.

    With ``dest``, the file is written atomically (temporary file in the same folder, then
    ``os.replace``), so readers and sensors never see half a file.
    """
    check_image_size(doc.jpeg_bytes, doc.width, doc.height, UidSvgError)
    parts = [
        svg_open_tag(doc.width, doc.height),
        metadata_element(METADATA_ID, encode_json_metadata(doc.metadata)),
        image_element(doc.jpeg_bytes, doc.width, doc.height, 0, doc.metadata),
    ]
    parts.extend("  " + path_element(inst) + "\n" for inst in doc.instances)
    parts.append("</svg>\n")
    data = "".join(parts).encode("utf-8")
    if dest is not None:
        atomic_write(dest, data)
    return data


# -- sources and XML --------------------------------------------------------------------------------------


def load_source(source: str | Path | bytes, name: str | None) -> tuple[bytes, str]:
    """Bytes of the document and the name to use in messages."""
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), name or "<bytes>"
    if isinstance(source, str) and source.lstrip().startswith("<"):
        return source.encode("utf-8"), name or "<string>"
    path = Path(source)
    return path.read_bytes(), name or path.name


def parse_svg_xml(data: bytes, name: str, error: type[FormatError]) -> ET.Element:
    """Parse and check the root is ``<svg>``; documents without the SVG namespace are given it."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:  # also expat's refusal of entity-expansion bombs
        raise error(f"{name}: not well-formed XML ({exc})") from None
    except RecursionError:  # a parser with a depth limit (the C parser has none today)
        raise error(f"{name}: XML nested too deeply to parse") from None
    if root.tag == "svg":  # hand-written file without xmlns: treat un-namespaced elements as SVG
        for elem in root.iter():
            if isinstance(elem.tag, str) and not elem.tag.startswith("{"):
                elem.tag = _q(elem.tag)
    if root.tag != _q("svg"):
        raise error(f"{name}: root element is {root.tag!r}, not an SVG <svg>")
    return root


# -- document traversal -----------------------------------------------------------------------------------


@dataclass
class PathNode:
    """A ``<path>`` with what it inherits from its ancestors."""

    elem: ET.Element
    ctm: np.ndarray  # path → root user coordinates (its own transform included)
    inherited: dict[str, str]  # stroke/fill inherited from ancestor groups
    groups: tuple[ET.Element, ...]  # ancestor <g> elements, outermost first
    index: int  # document order among paths


@dataclass
class SvgTree:
    paths: list[PathNode]
    image_ctms: dict[ET.Element, np.ndarray]


def _presentation(elem: ET.Element, inherited: dict[str, str]) -> dict[str, str]:
    """Stroke and fill of ``elem``: style beats presentation attribute beats inheritance (CSS cascade)."""
    out = dict(inherited)
    style = parse_style(elem.get("style"))
    for key in ("stroke", "fill"):
        value = style.get(key, elem.get(key))
        if value is not None and value.strip().lower() != "inherit":
            out[key] = value.strip()
    return out


def _transform(elem: ET.Element, ctm: np.ndarray, name: str, what: str, warnings: list[str]) -> np.ndarray:
    text = elem.get("transform")
    if text is None:
        return ctm
    try:
        local = parse_transform(text)
    except FormatError as exc:
        warnings.append(f"{name}: {what}: {exc}; transform ignored")
        return ctm
    return ctm if is_identity(local) else ctm @ local


def walk_svg(root: ET.Element, name: str, warnings: list[str]) -> SvgTree:
    """Every drawn ``<path>`` (not those in ``<defs>``, markers, clip paths, …) and the images' transforms.

    Depth-first in document order with an explicit stack: a recursive walk met ``RecursionError`` on a
    hostile file of 100,000 nested ``<g>``, which no caller expects from a reader. Containers nested
    deeper than :data:`MAX_NESTING_DEPTH` raise :class:`UidSvgError` naming the file.
    """
    paths: list[PathNode] = []
    image_ctms: dict[ET.Element, np.ndarray] = {}
    # One frame per open container: its children still to visit and what they inherit.
    stack: list[tuple[Iterator[ET.Element], np.ndarray, dict[str, str], tuple[ET.Element, ...]]] = [
        (iter(root), IDENTITY, _presentation(root, {}), ())
    ]
    while stack:
        children, ctm, inherited, groups = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            continue
        tag = child.tag
        if not isinstance(tag, str) or not tag.startswith(f"{{{SVG_NS}}}"):
            continue  # comments, Inkscape/sodipodi elements
        local = tag[len(SVG_NS) + 2 :]
        if local == "path":
            label = child.get("id") or f"#{len(paths)}"
            paths.append(
                PathNode(
                    elem=child,
                    ctm=_transform(child, ctm, name, f"path {label!r}", warnings),
                    inherited=inherited,
                    groups=groups,
                    index=len(paths),
                )
            )
        elif local == "image":
            image_ctms[child] = _transform(child, ctm, name, "image", warnings)
        elif local == "svg" and any(True for _ in child.iter(_q("path"))):
            warnings.append(f"{name}: paths inside a nested <svg> are not read")
        elif local in _CONTAINERS:
            if len(stack) >= MAX_NESTING_DEPTH:
                raise UidSvgError(
                    f"{name}: elements nested deeper than {MAX_NESTING_DEPTH} levels (hostile or broken file)"
                )
            label = child.get("id") or local
            stack.append(
                (
                    iter(child),
                    _transform(child, ctm, name, f"group {label!r}", warnings),
                    _presentation(child, inherited),
                    groups + (child,) if local == "g" else groups,
                )
            )
    return SvgTree(paths=paths, image_ctms=image_ctms)


def parse_style(style: str | None) -> dict[str, str]:
    """``"a:b;c:d"`` → ``{"a": "b", "c": "d"}``; entries without ``:`` are ignored (the original crashed)."""
    out: dict[str, str] = {}
    if not style:
        return out
    for entry in style.split(";"):
        key, sep, value = entry.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        value = value.strip()
        if value.lower().endswith("!important"):
            value = value[: -len("!important")].strip()
        if key:
            out[key] = value
    return out


# -- embedded image ---------------------------------------------------------------------------------------


@dataclass
class EmbeddedImage:
    """The decoded ``<image>``: JPEG bytes and pixel size, and where the document displays it."""

    elem: ET.Element
    jpeg_bytes: bytes
    width: int  # pixels of the JPEG
    height: int
    x: float  # placement in the image's user space
    y: float
    svg_width: float
    svg_height: float
    ctm: np.ndarray  # image user space → root user space
    preserve_aspect_ratio: str = "none"

    def _fit(self) -> tuple[float, float, float, float]:
        """Pixels per user unit along x and y, and the drawn picture's offset inside the image box.

        Sizes with the JPEG's aspect ratio (every real file), or ``preserveAspectRatio="none"`` (what
        Inkscape writes when an image is stretched), scale each axis on its own. Otherwise SVG letterboxes
        the picture (default ``xMidYMid meet``): one scale, and the picture aligned inside the box.
        """
        kx, ky = self.width / self.svg_width, self.height / self.svg_height
        words = self.preserve_aspect_ratio.split()
        if words and words[0] == "defer":
            words = words[1:]
        align = words[0] if words else "xMidYMid"
        if kx == ky or align == "none" or len(align) != 8:
            return kx, ky, 0.0, 0.0
        slice_ = len(words) > 1 and words[1] == "slice"
        k = min(kx, ky) if slice_ else max(kx, ky)  # pixels per unit: "meet" shows the whole picture
        drawn_w, drawn_h = self.width / k, self.height / k
        fractions = {"Min": 0.0, "Mid": 0.5, "Max": 1.0}
        ox = (self.svg_width - drawn_w) * fractions.get(align[1:4], 0.5)
        oy = (self.svg_height - drawn_h) * fractions.get(align[5:8], 0.5)
        return k, k, ox, oy

    def user_to_pixel(self, points: np.ndarray) -> np.ndarray:
        """Root user coordinates → JPEG pixel coordinates (float; callers round)."""
        if not is_identity(self.ctm):
            points = apply_transform(points, np.linalg.inv(self.ctm))
        kx, ky, ox, oy = self._fit()
        return np.stack([(points[:, 0] - self.x - ox) * kx, (points[:, 1] - self.y - oy) * ky], axis=1)

    @property
    def top(self) -> float:
        """y of the image's top edge in root user coordinates."""
        return float(apply_transform(np.array([[self.x, self.y]]), self.ctm)[0, 1])


def _image_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from the JPEG SOF or PNG IHDR header, without decoding pixels."""
    if data[:2] == b"\xff\xd8":
        i = 2
        n = len(data)
        while i + 4 <= n:
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker == 0xFF:  # fill byte
                i += 1
                continue
            if marker in (0x01, *range(0xD0, 0xD8)):  # stand-alone markers
                i += 2
                continue
            length = int.from_bytes(data[i + 2 : i + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                if i + 9 > n:
                    return None
                height = int.from_bytes(data[i + 5 : i + 7], "big")
                width = int.from_bytes(data[i + 7 : i + 9], "big")
                return (width, height) if width and height else None
            if marker == 0xDA or length < 2:  # start of scan before any frame header: malformed
                return None
            i += 2 + length
        return None
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """Pixel size of encoded image bytes; headers first, full decode as a last resort."""
    size = _image_size(data)
    if size is not None:
        return size
    if not data:
        return None
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if decoded is None:
        return None
    return int(decoded.shape[1]), int(decoded.shape[0])


def check_image_size(data: bytes, width: int, height: int, error: type[FormatError]) -> None:
    size = image_size(data)
    if size is None:
        raise error(f"image bytes ({len(data)} bytes) are not a decodable image")
    if size != (width, height):
        raise error(f"declared size {width}x{height} differs from the embedded image's {size[0]}x{size[1]}")


def _length(text: str | None) -> float | None:
    """An SVG length in user units (``px`` or unitless); ``None`` if absent or in other units."""
    if text is None:
        return None
    text = text.strip()
    if text.endswith("px"):
        text = text[:-2].strip()
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_embedded_image(elem: ET.Element, ctm: np.ndarray, name: str, error: type[FormatError]) -> EmbeddedImage:
    """Decode the base64 data URI of an ``<image>`` to its exact original bytes."""
    href = elem.get(_q("href", XLINK_NS))
    if href is None:
        href = elem.get("href")  # SVG 2 / Inkscape 1.x may drop the xlink prefix
    if href is None:
        raise error(f"{name}: <image> has no xlink:href")
    header, sep, payload = href.strip().strip("\"'").partition(",")
    if not sep or not header.strip().lower().startswith("data:"):
        raise error(f"{name}: <image> links to {header[:80]!r} instead of embedding it (data: URI expected)")
    if ";base64" not in header.lower():
        raise error(f"{name}: embedded image is not base64-encoded ({header!r})")
    payload = re.sub(r"\s+", "", payload.strip("\"'"))
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise error(f"{name}: embedded image is not valid base64 ({exc})") from None
    size = image_size(data)
    if size is None:
        raise error(f"{name}: embedded image ({len(data)} bytes) cannot be decoded")
    width, height = size
    svg_width = _length(elem.get("width", elem.get("w")))
    svg_height = _length(elem.get("height", elem.get("h")))
    # Missing sizes mean "intrinsic size" (SVG 2); unusable ones are taken as the same.
    if svg_width is None or svg_width <= 0:
        svg_width = float(width)
    if svg_height is None or svg_height <= 0:
        svg_height = float(height)
    if not np.isfinite(ctm).all() or abs(float(np.linalg.det(ctm[:2, :2]))) < 1e-12:
        # scale(0) and the like: no pixel maps back to the document, and inverting it would raise
        raise error(f"{name}: the <image>'s transform is not invertible")
    return EmbeddedImage(
        elem=elem,
        jpeg_bytes=data,
        width=width,
        height=height,
        x=_length(elem.get("x")) or 0.0,
        y=_length(elem.get("y")) or 0.0,
        svg_width=svg_width,
        svg_height=svg_height,
        ctm=ctm,
        preserve_aspect_ratio=elem.get("preserveAspectRatio") or "xMidYMid meet",
    )


# -- metadata ---------------------------------------------------------------------------------------------


def _numpy_or_str(obj: Any, convert: Callable[[Any], Any]) -> Any:
    """The last rule of both metadata encoders: a numpy scalar or array becomes its Python value (then encoded by
    ``convert`` like any other), anything else that is still unknown its ``str``."""
    if isinstance(obj, np.generic):
        return convert(obj.item())
    if isinstance(obj, np.ndarray):
        return convert(obj.tolist())
    return str(obj)


def _to_json_value(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _to_json_value(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return {_TUPLE_TAG: [_to_json_value(v) for v in obj]}
    if isinstance(obj, list):
        return [_to_json_value(v) for v in obj]
    if isinstance(obj, bytes | bytearray):
        return {_BYTES_TAG: base64.b64encode(bytes(obj)).decode("ascii")}
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return _numpy_or_str(obj, _to_json_value)


def _from_json_object(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if _TUPLE_TAG in obj and isinstance(obj[_TUPLE_TAG], list):
            return tuple(obj[_TUPLE_TAG])
        if _BYTES_TAG in obj and isinstance(obj[_BYTES_TAG], str):
            try:
                return base64.b64decode(obj[_BYTES_TAG], validate=True)
            except (binascii.Error, ValueError):
                return obj
    return obj


def encode_json_metadata(metadata: Any) -> str:
    """Metadata → JSON text (lossless for bytes and tuples, ``str`` for other non-JSON values)."""
    return json.dumps(_to_json_value(metadata), ensure_ascii=True)


def decode_json_metadata(text: str) -> Any:
    return json.loads(text, object_hook=_from_json_object)


def _literal_safe(obj: Any) -> Any:
    """A copy of ``obj`` whose ``repr`` ``ast.literal_eval`` can read back (what the original tools need)."""
    if isinstance(obj, dict):
        return {_literal_safe(k): _literal_safe(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(_literal_safe(v) for v in obj)
    if isinstance(obj, list):
        return [_literal_safe(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if obj is None or isinstance(obj, str | bytes | int | bool):
        return obj
    if isinstance(obj, bytearray):
        return bytes(obj)
    return _numpy_or_str(obj, _literal_safe)


def legacy_desc(metadata: dict[str, Any]) -> str:
    """The legacy ``desc`` text: a Python repr of the metadata, readable with ``ast.literal_eval``."""
    return repr(_literal_safe(metadata))


def _find_metadata_element(root: ET.Element, element_id: str) -> ET.Element | None:
    for elem in root.iter(_q("metadata")):
        if elem.get("id") == element_id:
            return elem
    return None


def read_json_metadata(root: ET.Element, element_id: str, name: str, warnings: list[str]) -> Any | None:
    """Decoded JSON of ``<metadata id=element_id>``, or ``None`` when absent or unreadable (warning)."""
    elem = _find_metadata_element(root, element_id)
    if elem is None:
        return None
    # Only the element's own text: Inkscape may add its RDF block inside the first <metadata> it finds.
    text = (elem.text or "") + "".join(child.tail or "" for child in elem)
    try:
        return decode_json_metadata(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: hostile "[[[[…" nesting
        warnings.append(f"{name}: <metadata id={element_id!r}> is not valid JSON ({exc}); using legacy metadata")
        return None


def _literal_dict(text: str, what: str, name: str, warnings: list[str]) -> dict[str, Any] | None:
    """``text`` read as a Python dict literal (the legacy metadata forms), or ``None`` with a warning naming
    ``what`` when it is not one."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        warnings.append(f"{name}: cannot parse {what} ({type(exc).__name__}: {exc})")
        return None
    if isinstance(value, dict):
        return value
    warnings.append(f"{name}: {what} is a {type(value).__name__}, not a dict")
    return None


def read_legacy_metadata(root: ET.Element, image_elem: ET.Element, name: str, warnings: list[str]) -> dict[str, Any]:
    """``desc`` of the image (Python repr), else a single ``<sticky metadata=…>``, else ``{}``."""
    desc = image_elem.get("desc")
    if desc and (value := _literal_dict(desc, "the image's desc metadata", name, warnings)) is not None:
        return value
    sticky = [e for e in root.iter() if isinstance(e.tag, str) and e.tag.rpartition("}")[2] == "sticky"]
    if len(sticky) == 1 and sticky[0].get("metadata"):
        value = _literal_dict(sticky[0].get("metadata", ""), "<sticky metadata>", name, warnings)
        if value is not None:
            return value
    elif len(sticky) > 1:
        warnings.append(f"{name}: {len(sticky)} <sticky> elements; expected one")
    if not desc and not sticky:
        warnings.append(f"{name}: no metadata (no <metadata id={METADATA_ID!r}>, desc or <sticky>)")
    return {}


def read_metadata(root: ET.Element, image_elem: ET.Element, name: str, warnings: list[str]) -> dict[str, Any]:
    """Our JSON metadata when present, else the legacy forms (see module docstring)."""
    value = read_json_metadata(root, METADATA_ID, name, warnings)
    if value is not None:
        if isinstance(value, dict):
            return value
        warnings.append(f"{name}: JSON metadata is a {type(value).__name__}, not an object; using legacy metadata")
    return read_legacy_metadata(root, image_elem, name, warnings)


def check_metadata_md5(metadata: dict[str, Any], jpeg_bytes: bytes, name: str, warnings: list[str]) -> None:
    """Warn when the metadata's ``md5sum``/``md5`` does not describe the embedded image (replaced image?)."""
    actual = None
    for key in ("md5sum", "md5"):
        stated = metadata.get(key)
        if isinstance(stated, str) and _HEX_MD5.match(stated.lower()):
            actual = actual or md5_bytes(jpeg_bytes)
            if stated.lower() != actual:
                warnings.append(f"{name}: metadata {key} {stated} differs from the embedded image's md5 {actual}")


# -- paths ------------------------------------------------------------------------------------------------


@dataclass
class PathShapes:
    """What one ``<path>`` contributes: its attributes and its rings in root user coordinates."""

    label: str
    stroke: str
    fill: str
    name: str
    value: int
    score: float | None
    rings: list[np.ndarray]
    attrib: dict[str, str]

    def instance(self, polygon: np.ndarray, name: str | None = None) -> Instance:
        return Instance(
            polygon=polygon,
            stroke=self.stroke,
            name=self.name if name is None else name,
            fill=self.fill,
            value=self.value,
            score=self.score,
        )


def path_label(node: PathNode) -> str:
    return repr(node.elem.get("id")) if node.elem.get("id") else f"#{node.index}"


def read_path(node: PathNode, name: str, warnings: list[str]) -> PathShapes | None:
    """Attributes and flattened rings of a path; ``None`` (with a warning) when it cannot be an instance."""
    elem = node.elem
    label = path_label(node)
    where = f"{name}: path {label}"
    colours = _presentation(elem, node.inherited)
    stroke = colours.get("stroke")
    if stroke is None or stroke.strip().lower() in ("", "none", "transparent"):
        warnings.append(f"{where}: no stroke colour, so no class; skipped")
        return None
    d = elem.get("d")
    if d is None or not d.strip():
        warnings.append(f"{where}: empty path data; skipped")
        return None
    try:
        rings = flatten_path(d)
    except Exception as exc:  # never let one path sink the file (svgpathtools may assert on odd arcs)
        warnings.append(f"{where}: cannot parse path data ({exc}); skipped")
        return None
    with np.errstate(all="ignore"):  # an overflowing transform gives inf, which ring_to_polygon refuses
        rings = [apply_transform(r, node.ctm) for r in rings]
    try:
        stroke = normalize_colour(stroke)
    except InvalidColourError as exc:  # the stroke is the class: no class can be derived from it
        warnings.append(f"{where}: invalid stroke colour ({exc}); skipped")
        return None
    try:
        fill = normalize_colour(colours.get("fill") or DEFAULT_FILL)
    except InvalidColourError as exc:  # the fill is only drawn, never the class: keep the instance
        warnings.append(f"{where}: invalid fill colour ({exc}); using {DEFAULT_FILL}")
        fill = DEFAULT_FILL
    value_text = elem.get("value")
    value = 0
    if value_text is not None:
        try:
            value = int(float(value_text))
        except (ValueError, OverflowError):  # "abc", "nan"; "inf" and "1e999" overflow int()
            warnings.append(f"{where}: non-numeric value {value_text!r}; using 0")
    score: float | None = None
    score_text = elem.get("data-score")
    if score_text is not None:
        try:
            score = float(score_text)
        except ValueError:
            warnings.append(f"{where}: non-numeric data-score {score_text!r}; ignored")
        else:
            if not math.isfinite(score):
                warnings.append(f"{where}: non-finite data-score {score_text!r}; ignored")
                score = None
    return PathShapes(
        label=label,
        stroke=stroke,
        fill=fill,
        name=elem.get("name") or DEFAULT_NAME,
        value=value,
        score=score,
        rings=rings,
        attrib=dict(elem.attrib),
    )


def ring_to_polygon(
    pixels: np.ndarray, name: str, label: str, ring_index: int, warnings: list[str]
) -> np.ndarray | None:
    """Round to integer pixels (half to even, as the original) and drop degenerate rings with a warning.

    Rings with a non-finite vertex or one beyond :data:`MAX_PIXEL_COORDINATE` are dropped too: the cast
    to ``int32`` would turn them into ``-2147483648`` or wrap around, a garbage vertex nobody drew.
    """
    where = f"{name}: path {label}, ring {ring_index}"
    finite = np.isfinite(pixels).all(axis=1)
    if not finite.all():
        warnings.append(f"{where}: vertex {int(np.argmin(finite))} is not finite; dropped")
        return None
    far = (np.abs(pixels) > MAX_PIXEL_COORDINATE).any(axis=1)
    if far.any():
        k = int(np.argmax(far))
        warnings.append(
            f"{where}: vertex {k} at {pixels[k].tolist()} is beyond {MAX_PIXEL_COORDINATE} px (overflowing path "
            "or transform?); dropped"
        )
        return None
    polygon = np.round(pixels).astype(np.int32)
    if len(polygon) < 3:
        warnings.append(f"{where}: only {len(polygon)} vertices; dropped")
        return None
    if cv2.contourArea(polygon) == 0:
        warnings.append(f"{where}: zero area ({len(polygon)} collinear or repeated vertices); dropped")
        return None
    return polygon


# -- writing ----------------------------------------------------------------------------------------------


def attr(value: Any) -> str:
    """Escape a value for a double-quoted XML attribute (newlines and tabs kept as character references)."""
    return escape(str(value), _ATTR_ESCAPES)


def svg_open_tag(width: int, height: int) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        f'<svg width="{int(width)}" height="{int(height)}" xmlns="{SVG_NS}" xmlns:xlink="{XLINK_NS}" '
        f'xmlns:sodipodi="{SODIPODI_NS}" xmlns:inkscape="{INKSCAPE_NS}">\n'
    )


def metadata_element(element_id: str, json_text: str) -> str:
    return f'  <metadata id="{attr(element_id)}">{escape(json_text)}</metadata>\n'


def _mime(data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    return "image/jpeg"


def image_element(data: bytes, width: int, height: int, y: int, metadata: dict[str, Any]) -> str:
    """``<image>`` with the legacy ``desc`` and the bytes as a base64 data URI (locked in Inkscape)."""
    payload = base64.b64encode(data).decode("ascii")
    return (
        f'  <image desc="{attr(legacy_desc(metadata))}" width="{int(width)}" height="{int(height)}" '
        f'x="0" y="{int(y)}" sodipodi:insensitive="true" '
        f'xlink:href="data:{_mime(data)};base64,{payload}"/>\n'
    )


def path_d(polygon: np.ndarray, dy: int = 0) -> str:
    """``Mx1,y1 x2,y2 … Z`` (the original tools' layout) for an integer polygon.

    A last vertex equal to the first is written twice: ``Z`` adds no segment when the pen is already at
    the start, so that vertex would otherwise be lost when the file is read back.
    """
    pts = [(int(x), int(y) + dy) for x, y in polygon]
    if len(pts) > 1 and pts[-1] == pts[0]:
        pts.append(pts[0])
    return "M" + " ".join(f"{x},{y}" for x, y in pts) + " Z"


def path_element(inst: Instance, *, name: str | None = None, dy: int = 0, extra: dict[str, str] | None = None) -> str:
    style = f"stroke:{inst.stroke};stroke-opacity:1;fill:{inst.fill};fill-opacity:{inst.fill_opacity:f}"
    attrs = {"name": inst.name if name is None else name, "value": str(inst.value)}
    attrs.update(extra or {})
    attrs["style"] = style
    if inst.score is not None:
        attrs["data-score"] = repr(float(inst.score))
    attrs["d"] = path_d(inst.polygon, dy)
    return "<path " + " ".join(f'{k}="{attr(v)}"' for k, v in attrs.items()) + "/>"


def atomic_write(dest: str | Path, data: bytes) -> None:
    """Write via a temporary file in the destination folder and ``os.replace`` (atomic on POSIX)."""
    dest = Path(dest)
    mode = dest.stat().st_mode & 0o777 if dest.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        os.fchmod(fd, mode)  # mkstemp creates 0600; keep the file as readable as a normal write would
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
