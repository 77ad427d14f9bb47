"""UID SVG reader/writer on every real annotation file, plus synthetic edge cases and the Instance model.

The real files (``../shared/data/stickypi/uid``, ~3 MB each) are parsed once per session through the
``real`` fixture; everything else uses tiny synthetic JPEGs so the module runs in a few seconds.
"""

from __future__ import annotations

import ast
import base64
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
import svgpathtools

from stickypi_assets.formats.annotations import Instance, class_for_stroke, normalize_colour
from stickypi_assets.formats.errors import FormatError
from stickypi_assets.formats.split import md5_bytes, split_for_md5
from stickypi_assets.formats.uid_svg import (
    METADATA_ID,
    SVG_NS,
    XLINK_NS,
    UidSvg,
    UidSvgError,
    read_uid_svg,
    write_uid_svg,
)
from stickypi_assets_tests.conftest import stickypi_path

# Reference section 9.2: number of <path> elements per file (the 15 of the 17 bundle files present here;
# 08038ade.2020-09-17_16-09-13 and 398948ee.2020-08-31_09-18-40 are not in the shared data).
REAL_PATH_COUNTS = {
    "08038ade.2020-07-08_10-48-38": 41,
    "08038ade.2020-07-17_22-27-31": 40,
    "08038ade.2020-08-23_11-55-05": 40,
    "0a5bb6f4.2020-06-30_20-41-05": 87,
    "0a5bb6f4.2020-07-02_18-59-29": 23,
    "0a5bb6f4.2020-07-03_05-35-30": 31,
    "15e612cd.2020-07-09_04-40-18": 16,
    "398948ee.2020-07-03_09-02-15": 21,
    "398948ee.2020-07-08_19-16-30": 28,
    "5595c586.2020-07-15_15-57-38": 112,
    "5595c586.2020-08-21_04-14-38": 24,
    "5595c586.2020-08-31_18-47-19": 56,
    "5595c586.2020-09-20_19-28-32": 164,
    "afbd6f68.2020-04-12_01-59-16": 151,
    "e086a015.2020-06-11_19-25-02": 261,
}
# Only afbd6f68 has degenerate paths: "m 2475,1437 v 0 z" and "M1675,17 1676,17 Z".
DEGENERATE = {"afbd6f68.2020-04-12_01-59-16": 2}
# Reference 2.8: validation files (md5 of the embedded JPEG > 'bf') among those present.
VALIDATION = {
    "0a5bb6f4.2020-06-30_20-41-05",
    "0a5bb6f4.2020-07-02_18-59-29",
    "15e612cd.2020-07-09_04-40-18",
    "5595c586.2020-09-20_19-28-32",
    "afbd6f68.2020-04-12_01-59-16",
}
STEMS = sorted(REAL_PATH_COUNTS)


class RealFile:
    """A real SVG parsed once: raw bytes, XML tree, our reading, and our write → read round trip."""

    def __init__(self, stem: str) -> None:
        self.stem = stem
        self.path = stickypi_path("uid", f"{stem}.svg")
        self.raw = self.path.read_bytes()
        self.root = ET.fromstring(self.raw)
        self.doc = read_uid_svg(self.path)
        self._written: bytes | None = None
        self._reread: UidSvg | None = None

    @property
    def written(self) -> bytes:
        if self._written is None:
            self._written = write_uid_svg(self.doc)
        return self._written

    @property
    def reread(self) -> UidSvg:
        if self._reread is None:
            self._reread = read_uid_svg(self.written, name=f"{self.stem}.svg")
        return self._reread


@pytest.fixture(scope="session")
def real():
    cache: dict[str, RealFile] = {}

    def get(stem: str) -> RealFile:
        if stem not in cache:
            cache[stem] = RealFile(stem)
        return cache[stem]

    return get


def original_polygons(d: str, offset: tuple[float, float] = (0.0, 0.0)) -> list[np.ndarray]:
    """Independent re-implementation of the original reader (reference 2.6) on top of svgpathtools.

    ``offset`` is the image's x/y, which the original ignored and we subtract (see
    ``test_image_moved_in_inkscape_is_compensated``).
    """
    path = svgpathtools.parse_path(d)
    subpaths: list[list] = []
    last_end = None
    for seg in path:
        if seg.start != last_end:
            subpaths.append([])
        subpaths[-1].append(seg)
        last_end = seg.end
    tvals = np.linspace(0, 1, 8)
    out = []
    for sub in subpaths:
        points: list[complex] = []
        for seg in sub:
            if isinstance(seg, svgpathtools.Line):
                points.append(seg.start)
            else:
                points.extend(seg.poly()(tvals)[:-1])
        arr = np.asarray(points, dtype=complex)
        xy = np.stack([arr.real - offset[0], arr.imag - offset[1]], axis=1)
        out.append(np.round(xy).astype(np.int32))
    return out


# -- real data --------------------------------------------------------------------------------------------


def test_real_folder_holds_exactly_the_reference_files(uid_svg_paths: list[Path]) -> None:
    if not uid_svg_paths:
        pytest.skip("no real UID SVGs")
    assert sorted(p.stem for p in uid_svg_paths) == STEMS
    assert sum(REAL_PATH_COUNTS.values()) == 1211 - 51 - 65  # the two files missing from the 17


@pytest.mark.parametrize("stem", STEMS)
def test_real_file_reads(real, stem: str) -> None:
    f = real(stem)
    doc = f.doc
    paths = list(f.root.iter(f"{{{SVG_NS}}}path"))
    assert len(paths) == REAL_PATH_COUNTS[stem]
    assert len(doc.instances) == len(paths) - DEGENERATE.get(stem, 0)
    assert (doc.width, doc.height) == (2592, 1944)
    assert {inst.stroke for inst in doc.instances} == {"#0000ff"}
    assert all(inst.polygon.dtype == np.int32 and inst.polygon.shape[1] == 2 for inst in doc.instances)
    assert all(len(inst.polygon) >= 3 and inst.area > 0 for inst in doc.instances)
    assert all(inst.score is None for inst in doc.instances)

    # JPEG bytes: exactly the base64 payload, i.e. the camera's file (md5sum in the metadata when present)
    (image,) = f.root.iter(f"{{{SVG_NS}}}image")
    payload = image.get(f"{{{XLINK_NS}}}href").split(",", 1)[1]
    assert doc.jpeg_bytes == base64.b64decode(payload)
    assert doc.jpeg_bytes[:2] == b"\xff\xd8"
    if "md5sum" in doc.metadata:
        assert doc.metadata["md5sum"] == doc.md5
    assert split_for_md5(doc.md5) == ("validation" if stem in VALIDATION else "train")

    # legacy desc metadata with bytes and tuples; the EXIF Make dict is nested
    assert doc.metadata["ExifVersion"] == b"0220"
    assert isinstance(doc.metadata["Make"], dict)
    assert doc.metadata["ExifImageWidth"] == 2592

    # bit-compatible with the original reader's polygons, path by path
    offset = (float(image.get("x", 0)), float(image.get("y", 0)))
    expected = [
        ring
        for p in paths
        for ring in original_polygons(p.get("d"), offset)
        if len(ring) >= 3 and cv2.contourArea(ring) != 0
    ]
    assert len(expected) == len(doc.instances)
    for ours, theirs in zip(doc.instances, expected, strict=True):
        assert np.array_equal(ours.polygon, theirs)

    if stem not in DEGENERATE:
        assert doc.warnings == []


def test_image_moved_in_inkscape_is_compensated(real) -> None:
    """In 398948ee.2020-07-08_19-16-30 the annotator nudged the image to x=-1.37, y=-2.74.

    Outlines were drawn over the image where it was displayed, so pixel = user - (x, y); the original
    ignored the offset. (Checked on the data: the compensated outlines have the higher edge contrast
    for 22 of the 28 insects.)
    """
    f = real("398948ee.2020-07-08_19-16-30")
    (image,) = f.root.iter(f"{{{SVG_NS}}}image")
    assert (image.get("x"), image.get("y")) == ("-1.3721074", "-2.7442148")
    first_path = next(f.root.iter(f"{{{SVG_NS}}}path"))
    (uncompensated,) = original_polygons(first_path.get("d"))
    shift = f.doc.instances[0].polygon - uncompensated
    assert set(shift[:, 0].tolist()) <= {1, 2} and set(shift[:, 1].tolist()) <= {2, 3}
    assert f.reread.instances[0] == f.doc.instances[0]  # our files put the image at (0, 0)


def test_degenerate_count_computed_independently(real) -> None:
    """Degenerate = the original's rings with fewer than 3 vertices; only afbd6f68 has any."""
    for stem in STEMS:
        f = real(stem)
        degenerate = sum(
            1 for p in f.root.iter(f"{{{SVG_NS}}}path") if all(len(r) < 3 for r in original_polygons(p.get("d")))
        )
        assert degenerate == DEGENERATE.get(stem, 0), stem


def test_afbd6f68_degenerate_paths_are_warned(real) -> None:
    doc = real("afbd6f68.2020-04-12_01-59-16").doc
    assert len(doc.instances) == 149
    assert len(doc.warnings) == 2
    assert all(w.startswith("afbd6f68.2020-04-12_01-59-16.svg: path ") for w in doc.warnings)
    assert "'path1566'" in doc.warnings[0] and "only 1 vertices" in doc.warnings[0]
    assert "'path1626'" in doc.warnings[1] and "only 2 vertices" in doc.warnings[1]


def test_real_totals(real) -> None:
    assert sum(len(real(s).doc.instances) for s in STEMS) == sum(REAL_PATH_COUNTS.values()) - 2 == 1093


@pytest.mark.parametrize("stem", STEMS)
def test_real_round_trip(real, stem: str) -> None:
    f = real(stem)
    doc, again = f.doc, f.reread
    assert again.jpeg_bytes == doc.jpeg_bytes and again.md5 == doc.md5
    assert (again.width, again.height) == (doc.width, doc.height)
    assert again.metadata == doc.metadata
    assert len(again.instances) == len(doc.instances)
    for a, b in zip(doc.instances, again.instances, strict=True):
        assert np.array_equal(a.polygon, b.polygon)
        assert (a.stroke, a.name, a.value, a.fill, a.score) == (b.stroke, b.name, b.value, b.fill, b.score)
    assert again.warnings == []


@pytest.mark.parametrize("stem", ["15e612cd.2020-07-09_04-40-18", "afbd6f68.2020-04-12_01-59-16"])
def test_written_document_layout(real, stem: str) -> None:
    f = real(stem)
    text = f.written.decode("utf-8")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"')
    root = ET.fromstring(f.written)  # well-formed
    assert root.tag == f"{{{SVG_NS}}}svg"
    assert (root.get("width"), root.get("height")) == ("2592", "1944")
    assert f'xmlns="{SVG_NS}"' in text and f'xmlns:xlink="{XLINK_NS}"' in text
    (image,) = root.iter(f"{{{SVG_NS}}}image")
    assert [image.get(k) for k in ("width", "height", "x", "y")] == ["2592", "1944", "0", "0"]
    assert image.get(f"{{{XLINK_NS}}}href").startswith("data:image/jpeg;base64,/9j/")
    # the legacy desc is still a Python literal that the original tools can read back
    assert ast.literal_eval(image.get("desc")) == f.doc.metadata
    (meta,) = [m for m in root.iter(f"{{{SVG_NS}}}metadata") if m.get("id") == METADATA_ID]
    assert json.loads(meta.text)["ExifVersion"] == {"__bytes__": base64.b64encode(b"0220").decode()}
    paths = list(root.iter(f"{{{SVG_NS}}}path"))
    assert len(paths) == len(f.doc.instances)
    first = paths[0]
    assert first.get("name") == "insect" and first.get("value") == "0"
    fill = f.doc.instances[0].fill
    assert first.get("style") == f"stroke:#0000ff;stroke-opacity:1;fill:{fill};fill-opacity:0.200000"
    x, y = f.doc.instances[0].polygon[0]
    assert first.get("d").startswith(f"M{x},{y} ") and first.get("d").endswith(" Z")


def test_decode_image_of_a_real_file(real) -> None:
    image = real("15e612cd.2020-07-09_04-40-18").doc.decode_image()
    assert image.shape == (1944, 2592, 3) and image.dtype == np.uint8


def test_read_from_bytes_and_text(real) -> None:
    f = real("15e612cd.2020-07-09_04-40-18")
    from_bytes = read_uid_svg(f.raw)
    from_text = read_uid_svg(f.raw.decode("utf-8"))
    assert from_bytes.md5 == from_text.md5 == f.doc.md5
    assert len(from_bytes.instances) == len(from_text.instances) == 16


# -- synthetic documents ------------------------------------------------------------------------------------


def tiny_jpeg(width: int = 200, height: int = 100, colour: tuple[int, int, int] = (0, 128, 255)) -> bytes:
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = colour
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


def svg_doc(
    body: str,
    *,
    jpeg: bytes | None = None,
    image_attrs: str = 'width="200" height="100" x="0" y="0"',
    desc: str | None = "{'device': '0a5bb6f4', 'tag': b'0220'}",
    root_attrs: str = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"',
    extra: str = "",
) -> bytes:
    jpeg = tiny_jpeg() if jpeg is None else jpeg
    payload = base64.b64encode(jpeg).decode()
    desc_attr = f'desc="{desc}" ' if desc is not None else ""
    return (
        f'<?xml version="1.0"?>\n<svg {root_attrs} width="200" height="100">{extra}'
        f'<image {desc_attr}{image_attrs} xlink:href="data:image/jpeg;base64,{payload}"/>'
        f"{body}</svg>"
    ).encode()


BLUE_SQUARE = '<path style="stroke:#0000ff;fill:none" d="M10,10 L20,10 L20,20 L10,20 Z" id="sq"/>'


def test_minimal_document() -> None:
    doc = read_uid_svg(svg_doc(BLUE_SQUARE), name="x.svg")
    assert (doc.width, doc.height) == (200, 100)
    assert doc.metadata == {"device": "0a5bb6f4", "tag": b"0220"}
    (inst,) = doc.instances
    assert inst.polygon.tolist() == [[10, 10], [20, 10], [20, 20], [10, 20]]
    assert inst.name == "insect" and inst.fill == "none"
    assert doc.decode_image().shape == (100, 200, 3)


def test_svg_image_size_differs_from_jpeg_rescales_each_axis() -> None:
    # JPEG 200x100 stretched to 100x25: x scales by 2, y by 4 (the original swapped these factors).
    stretched = 'width="100" height="25" preserveAspectRatio="none"'
    doc = read_uid_svg(svg_doc(BLUE_SQUARE, image_attrs=stretched))
    assert doc.instances[0].polygon.tolist() == [[20, 40], [40, 40], [40, 80], [20, 80]]
    legacy = read_uid_svg(svg_doc(BLUE_SQUARE, image_attrs='w="100px" h="25" preserveAspectRatio="none"'))
    assert legacy.instances[0].polygon.tolist() == doc.instances[0].polygon.tolist()
    # same aspect ratio: both axes by 4, whatever preserveAspectRatio says
    quarter = read_uid_svg(svg_doc(BLUE_SQUARE, image_attrs='width="50" height="25"'))
    assert quarter.instances[0].polygon.tolist() == [[40, 40], [80, 40], [80, 80], [40, 80]]


def test_letterboxed_image_follows_preserve_aspect_ratio() -> None:
    # JPEG 200x100 in a 100x100 box, default "xMidYMid meet": drawn 100x50, centred at y=25..75.
    body = '<path style="stroke:#0000ff" d="M10,30 L20,30 L20,40 Z"/>'
    doc = read_uid_svg(svg_doc(body, image_attrs='width="100" height="100"'))
    assert doc.instances[0].polygon.tolist() == [[20, 10], [40, 10], [40, 30]]
    top = read_uid_svg(svg_doc(body, image_attrs='width="100" height="100" preserveAspectRatio="xMinYMin"'))
    assert top.instances[0].polygon.tolist() == [[20, 60], [40, 60], [40, 80]]


def test_image_offset_and_group_transforms() -> None:
    body = f'<g transform="translate(5,0)"><g transform="scale(2)">{BLUE_SQUARE}</g></g>'
    doc = read_uid_svg(svg_doc(body, image_attrs='width="200" height="100" x="5" y="10"'))
    # user = 2*p + (5, 0); pixel = user - (5, 10)
    assert doc.instances[0].polygon.tolist() == [[20, 10], [40, 10], [40, 30], [20, 30]]
    transformed_image = read_uid_svg(svg_doc(BLUE_SQUARE, image_attrs='transform="translate(10,10)"'))
    assert transformed_image.instances[0].polygon.tolist()[0] == [0, 0]


def test_rounding_is_half_to_even_like_the_original() -> None:
    doc = read_uid_svg(svg_doc('<path style="stroke:#0000ff" d="M0.5,1.5 L10.5,1.5 L10.5,12.5 Z"/>'))
    assert doc.instances[0].polygon.tolist() == [[0, 2], [10, 2], [10, 12]]


def test_style_parsing_is_robust_and_stroke_may_be_an_attribute() -> None:
    body = (
        '<path style="fill:#ff0000;garbage;;stroke : #0000FF ;stroke-width" d="M0,0 10,0 10,10 z"/>'
        '<path stroke="#00F" d="M0,0 10,0 10,10 z"/>'
        '<path style="stroke:rgb(255,0,0)" stroke="#0000ff" d="M0,0 10,0 10,10 z"/>'
        '<g style="stroke:#00ff00"><path d="M0,0 10,0 10,10 z"/></g>'
    )
    doc = read_uid_svg(svg_doc(body))
    assert [i.stroke for i in doc.instances] == ["#0000ff", "#0000ff", "#ff0000", "#00ff00"]
    assert doc.instances[0].fill == "#ff0000"
    assert doc.warnings == []


def test_path_without_stroke_is_skipped_with_a_warning() -> None:
    body = '<path d="M0,0 10,0 10,10 z" id="nostroke"/><path style="stroke:none" d="M0,0 10,0 10,10 z"/>'
    doc = read_uid_svg(svg_doc(body + BLUE_SQUARE), name="f.svg")
    assert len(doc.instances) == 1
    assert len(doc.warnings) == 2
    assert doc.warnings[0] == "f.svg: path 'nostroke': no stroke colour, so no class; skipped"
    assert "path #1" in doc.warnings[1]


def test_unparseable_d_is_a_warning_not_an_error() -> None:
    body = '<path id="bad" style="stroke:#0000ff" d="M 10,10 L foo"/>' + BLUE_SQUARE
    doc = read_uid_svg(svg_doc(body), name="g.svg")
    assert len(doc.instances) == 1
    (warning,) = doc.warnings
    assert warning.startswith("g.svg: path 'bad': cannot parse path data (expected a number")


def test_zero_area_and_short_rings_are_dropped() -> None:
    body = (
        '<path id="line" style="stroke:#0000ff" d="M0,0 L5,5 L10,10 Z"/>'
        '<path id="dot" style="stroke:#0000ff" d="m 2475,1437 v 0 z"/>'
        '<path id="two" style="stroke:#0000ff" d="M1675,17 1676,17 Z"/>'
        '<path id="tiny" style="stroke:#0000ff" d="M0,0 L0.2,0 L0.2,0.2 Z"/>'  # rounds to one point
    )
    doc = read_uid_svg(svg_doc(body), name="h.svg")
    assert doc.instances == []
    assert len(doc.warnings) == 4
    assert "'line'" in doc.warnings[0] and "zero area" in doc.warnings[0]
    assert "'dot'" in doc.warnings[1] and "only 1 vertices" in doc.warnings[1]
    assert "'two'" in doc.warnings[2] and "only 2 vertices" in doc.warnings[2]
    assert "'tiny'" in doc.warnings[3] and "zero area" in doc.warnings[3]


def test_subpaths_become_instances_with_the_same_class() -> None:
    body = '<path style="stroke:#ff0000" name="fly" d="M0,0 L10,0 L10,10 z m 20,0 l 10,0 l 0,10 z"/>'
    doc = read_uid_svg(svg_doc(body))
    assert [i.polygon[0].tolist() for i in doc.instances] == [[0, 0], [20, 0]]
    assert {(i.stroke, i.name) for i in doc.instances} == {("#ff0000", "fly")}


def test_curves_and_arcs_are_read() -> None:
    body = (
        '<path style="stroke:#0000ff" d="M50,50 C50,40 60,40 60,50 S70,60 70,50 L70,80 L50,80 Z"/>'
        '<path style="stroke:#0000ff" d="M100,50 A10,10 0 1,1 120,50 A10,10 0 1,1 100,50 Z"/>'
    )
    doc = read_uid_svg(svg_doc(body))
    assert [len(i.polygon) for i in doc.instances] == [7 + 7 + 3, 7 + 7]
    circle = doc.instances[1]
    assert circle.area == pytest.approx(np.pi * 100, rel=0.1)
    assert circle.centroid == pytest.approx((110, 50), abs=0.5)


def test_defs_and_markers_are_not_instances() -> None:
    extra = '<defs><marker id="m"><path style="stroke:#0000ff" d="M0,0 L10,5 L0,10 z"/></marker></defs>'
    doc = read_uid_svg(svg_doc(BLUE_SQUARE, extra=extra))
    assert len(doc.instances) == 1


def test_svg_without_namespace_is_accepted() -> None:
    data = svg_doc(BLUE_SQUARE, root_attrs='xmlns:xlink="http://www.w3.org/1999/xlink"')
    assert len(read_uid_svg(data).instances) == 1


def test_metadata_precedence_and_fallbacks() -> None:
    # our JSON element wins over desc
    extra = f'<metadata id="{METADATA_ID}">{{"device": "json", "t": {{"__tuple__": [1, 2]}}}}</metadata>'
    doc = read_uid_svg(svg_doc(BLUE_SQUARE, extra=extra))
    assert doc.metadata == {"device": "json", "t": (1, 2)}
    # invalid JSON: warning, then desc
    bad = f'<metadata id="{METADATA_ID}">{{not json</metadata>'
    doc = read_uid_svg(svg_doc(BLUE_SQUARE, extra=bad), name="m.svg")
    assert doc.metadata["device"] == "0a5bb6f4" and "not valid JSON" in doc.warnings[0]
    # Inkscape's RDF <metadata> is not ours and is ignored
    rdf = '<metadata id="metadata1674"><x/></metadata>'
    assert read_uid_svg(svg_doc(BLUE_SQUARE, extra=rdf)).metadata["tag"] == b"0220"
    # unreadable desc: warning, then <sticky>
    sticky = "<sticky metadata=\"{'device': 'sticky'}\"/>"
    doc = read_uid_svg(svg_doc(BLUE_SQUARE, desc="{'unterminated", extra=sticky), name="s.svg")
    assert doc.metadata == {"device": "sticky"}
    assert doc.warnings[0].startswith("s.svg: cannot parse the image's desc metadata")
    # nothing at all: {} and a warning
    doc = read_uid_svg(svg_doc(BLUE_SQUARE, desc=None), name="n.svg")
    assert doc.metadata == {} and doc.warnings == [
        f"n.svg: no metadata (no <metadata id={METADATA_ID!r}>, desc or <sticky>)"
    ]
    # desc that is not a dict
    doc = read_uid_svg(svg_doc(BLUE_SQUARE, desc="[1, 2]"))
    assert doc.metadata == {} and "not a dict" in doc.warnings[0]


def test_json_metadata_survives_inkscape_adding_rdf_inside_it() -> None:
    extra = (
        f'<metadata id="{METADATA_ID}">{{"device": "json"}}'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><x>text</x></rdf:RDF>\n</metadata>'
    )
    assert read_uid_svg(svg_doc(BLUE_SQUARE, extra=extra)).metadata == {"device": "json"}


def test_nested_svg_paths_are_reported() -> None:
    body = f'<svg x="10">{BLUE_SQUARE}</svg>' + BLUE_SQUARE
    doc = read_uid_svg(svg_doc(body), name="n.svg")
    assert len(doc.instances) == 1
    assert doc.warnings == ["n.svg: paths inside a nested <svg> are not read"]


def test_metadata_md5_mismatch_is_warned() -> None:
    doc = read_uid_svg(svg_doc(BLUE_SQUARE, desc="{'md5sum': '" + "0" * 32 + "'}"), name="w.svg")
    assert len(doc.warnings) == 1 and "md5sum" in doc.warnings[0]
    jpeg = tiny_jpeg()
    doc = read_uid_svg(svg_doc(BLUE_SQUARE, jpeg=jpeg, desc="{'md5sum': '" + md5_bytes(jpeg) + "'}"))
    assert doc.warnings == []


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"not xml at all", "not well-formed XML"),
        (b'<html xmlns="http://www.w3.org/1999/xhtml"/>', "not an SVG <svg>"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "exactly one <image>, found 0"),
    ],
)
def test_fatal_errors_name_the_file(data: bytes, fragment: str) -> None:
    with pytest.raises(UidSvgError, match="broken.svg: ") as info:
        read_uid_svg(data, name="broken.svg")
    assert fragment in str(info.value)
    assert isinstance(info.value, FormatError)


def test_image_errors(tmp_path: Path) -> None:
    second = f'<image xlink:href="data:image/jpeg;base64,{base64.b64encode(tiny_jpeg()).decode()}"/>'
    two_images = svg_doc("", extra=second)
    with pytest.raises(UidSvgError, match="exactly one <image>, found 2"):
        read_uid_svg(two_images, name="two.svg")
    linked = svg_doc("").replace(b"data:image/jpeg;base64,", b"file:///tmp/x.jpg#")
    with pytest.raises(UidSvgError, match="instead of embedding"):
        read_uid_svg(linked)
    bad_b64 = svg_doc("").replace(b"base64,", b"base64,%%%")
    with pytest.raises(UidSvgError, match="not valid base64"):
        read_uid_svg(bad_b64)
    not_image = svg_doc("", jpeg=b"plain text, not a picture")
    with pytest.raises(UidSvgError, match="cannot be decoded"):
        read_uid_svg(not_image)
    # and the file name comes from the path
    path = tmp_path / "named.svg"
    path.write_bytes(b"<svg")
    with pytest.raises(UidSvgError, match="^named.svg: "):
        read_uid_svg(path)


def test_href_with_quotes_whitespace_and_newlines() -> None:
    jpeg = tiny_jpeg()
    b64 = base64.b64encode(jpeg).decode()
    wrapped = "\n".join(b64[i : i + 76] for i in range(0, len(b64), 76))
    data = svg_doc("", jpeg=jpeg).replace(b64.encode(), f"'{wrapped}\n'".encode())
    assert read_uid_svg(data).jpeg_bytes == jpeg


def test_decode_image_raises_format_error() -> None:
    doc = UidSvg(jpeg_bytes=b"\xff\xd8garbage", width=1, height=1, metadata={}, instances=[])
    with pytest.raises(FormatError, match="cannot be decoded"):
        doc.decode_image()


# -- writer -------------------------------------------------------------------------------------------------


def synthetic_doc(**metadata) -> UidSvg:
    return UidSvg(
        jpeg_bytes=tiny_jpeg(),
        width=200,
        height=100,
        metadata=metadata,
        instances=[
            Instance(np.array([[10, 10], [30, 10], [30, 40]]), score=0.987654321),
            Instance(np.array([[50, 50], [60, 50], [60, 60], [50, 50]]), stroke="#FF0000", name='a "b" <c>'),
            Instance(np.array([[70, 70], [80, 70], [80, 70], [80, 80]]), value=3, fill="#00ff00"),
        ],
    )


def test_writer_round_trip_edge_cases() -> None:
    meta = {
        "quote": 'it\'s "quoted" <b>&amp;</b>\nnew line\ttab',
        "bytes": b"\x00\x01'\"",
        "tuple": ((1, 2), [3, (4,)]),
        "nested": {"a": None, "b": True, "c": 1.5},
        "when": datetime(2020, 6, 20, 21, 33, 24, tzinfo=UTC),
        "nan": float("nan"),
        5: "int key",
    }
    doc = synthetic_doc()
    doc.metadata.update(meta)
    data = write_uid_svg(doc)
    ET.fromstring(data)  # well-formed despite quotes, <, &, newlines
    again = read_uid_svg(data)
    assert again.warnings == []
    assert again.jpeg_bytes == doc.jpeg_bytes
    for a, b in zip(doc.instances, again.instances, strict=True):
        assert a == b  # polygon (incl. last vertex == first, repeated vertices), stroke, name, fill, value, score
    assert again.instances[0].score == 0.987654321 and again.instances[1].score is None
    m = again.metadata
    assert m["quote"] == meta["quote"] and m["bytes"] == meta["bytes"] and m["tuple"] == meta["tuple"]
    assert m["nested"] == meta["nested"]
    assert m["when"] == str(meta["when"])  # non-JSON values are written with str()
    assert np.isnan(m["nan"]) and m["5"] == "int key"
    # the legacy desc stays a Python literal
    (image,) = ET.fromstring(data).iter(f"{{{SVG_NS}}}image")
    legacy = ast.literal_eval(image.get("desc"))
    assert legacy["bytes"] == meta["bytes"] and legacy["when"] == str(meta["when"]) and legacy[5] == "int key"


def test_score_attribute() -> None:
    data = write_uid_svg(synthetic_doc())
    paths = list(ET.fromstring(data).iter(f"{{{SVG_NS}}}path"))
    assert paths[0].get("data-score") == "0.987654321"
    assert paths[1].get("data-score") is None
    assert paths[1].get("d") == "M50,50 60,50 60,60 50,50 50,50 Z"


def test_write_to_dest_is_atomic(tmp_path: Path) -> None:
    dest = tmp_path / "0a5bb6f4.2020-06-20_20-19-15.svg"
    data = write_uid_svg(synthetic_doc(), dest)
    assert dest.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == [dest.name]  # no temporary left behind
    assert dest.stat().st_mode & 0o777 == 0o644
    write_uid_svg(synthetic_doc(k=1), str(dest))  # overwrite
    assert read_uid_svg(dest).metadata == {"k": 1}


def test_writer_rejects_a_size_that_is_not_the_jpegs() -> None:
    doc = synthetic_doc()
    doc.width = 300
    with pytest.raises(UidSvgError, match="300x100 differs"):
        write_uid_svg(doc)


def test_legacy_only_file_written_by_us_reads_the_same() -> None:
    """Drop our JSON element: the desc alone (what the original tools read) restores the metadata."""
    doc = synthetic_doc(device="0a5bb6f4", tag=b"0220", rational=(2500, 1000000))
    data = write_uid_svg(doc).decode()
    start = data.index("<metadata")
    end = data.index("</metadata>") + len("</metadata>")
    legacy = read_uid_svg(data[:start] + data[end:])
    assert legacy.metadata == doc.metadata


# -- Instance and palette -----------------------------------------------------------------------------------


def test_instance_geometry() -> None:
    square = Instance(np.array([[10, 20], [30, 20], [30, 60], [10, 60]]))
    assert square.polygon.dtype == np.int32
    assert square.bbox == (10, 20, 21, 41)  # cv2.boundingRect counts pixels inclusively
    assert square.area == 800.0
    assert square.centroid == pytest.approx((20.0, 40.0))
    assert square.shifted(1, 2).polygon[0].tolist() == [11, 22]
    assert (square.stroke, square.name, square.fill, square.value, square.score) == (
        "#0000ff",
        "insect",
        "#ff0000",
        0,
        None,
    )


def test_instance_coercion_and_validation() -> None:
    opencv = Instance(np.array([[[1, 2]], [[5, 2]], [[5, 9]]]), stroke="#ABCDEF")
    assert opencv.polygon.shape == (3, 2) and opencv.stroke == "#abcdef"
    floats = Instance([[0.4, 0.6], [10.5, 0], [11.5, 5.2]])
    assert floats.polygon.tolist() == [[0, 1], [10, 0], [12, 5]]
    with pytest.raises(ValueError, match="at least 3"):
        Instance(np.array([[0, 0], [1, 1]]))
    with pytest.raises(ValueError, match="shape"):
        Instance(np.zeros((4, 3)))
    degenerate = Instance(np.array([[0, 0], [2, 2], [4, 4]]))
    assert degenerate.area == 0 and degenerate.centroid == (2.0, 2.0)


def test_instance_dict_round_trip() -> None:
    inst = Instance(np.array([[1, 2], [3, 4], [5, 0]]), stroke="#00ff00", name="fly", value=2, score=0.5)
    d = inst.to_dict()
    assert d == {
        "contour": [[1, 2], [3, 4], [5, 0]],
        "name": "fly",
        "stroke_colour": "#00ff00",
        "value": 2,
        "fill_colour": "#ff0000",
        "score": 0.5,
    }
    assert json.loads(json.dumps(d)) == d
    assert Instance.from_dict(d) == inst
    assert Instance.from_dict({"contour": [[[1, 2]], [[3, 4]], [[5, 0]]]}).stroke == "#0000ff"


def test_class_for_stroke_is_case_insensitive() -> None:
    palette = {"insect": "#0000ff", "drosophila": "#FF0000", "candidate": "#ffff00"}
    assert class_for_stroke("#0000FF", palette) == "insect"
    assert class_for_stroke("#ff0000", palette) == "drosophila"
    assert class_for_stroke("yellow", palette) == "candidate"
    assert class_for_stroke("#123456", palette) is None


@pytest.mark.parametrize(
    ("colour", "expected"),
    [
        ("#0000FF", "#0000ff"),
        ("#00f", "#0000ff"),
        (" blue ", "#0000ff"),
        ("rgb(0, 0, 255)", "#0000ff"),
        ("rgb(0%,0%,100%)", "#0000ff"),
        ("none", "none"),
        ("url(#Grad)", "url(#grad)"),
    ],
)
def test_normalize_colour(colour: str, expected: str) -> None:
    assert normalize_colour(colour) == expected
