"""SIM pair SVGs: write pairs built from real UID SVGs, read them back, and read Inkscape-edited variants.

No SIM training SVG survives in the public data (reference 9.3), so pairs are built from the real UID
files: the same image twice with shifted outlines (synthetic motion) and two different images.
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from stickypi_assets.formats.annotations import Instance
from stickypi_assets.formats.errors import FormatError
from stickypi_assets.formats.sim_svg import (
    SIM_METADATA_ID,
    SimPair,
    SimSvgError,
    parse_sim_name,
    read_sim_svg,
    sim_name,
    write_sim_svg,
)
from stickypi_assets.formats.uid_svg import SVG_NS, XLINK_NS, UidSvg, read_uid_svg
from stickypi_assets_tests.conftest import stickypi_path

STEM0 = "15e612cd.2020-07-09_04-40-18"  # 16 instances
STEM1 = "0a5bb6f4.2020-07-02_18-59-29"  # 23 instances
DT0 = datetime(2020, 7, 9, 4, 40, 18, tzinfo=UTC)
DT1 = datetime(2020, 7, 9, 5, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def uid_docs() -> dict[str, UidSvg]:
    return {stem: read_uid_svg(stickypi_path("uid", f"{stem}.svg")) for stem in (STEM0, STEM1)}


def moved(doc: UidSvg, dx: int, dy: int) -> UidSvg:
    """The same image with every outline shifted (synthetic motion), listed in reverse order."""
    return UidSvg(
        jpeg_bytes=doc.jpeg_bytes,
        width=doc.width,
        height=doc.height,
        metadata={**doc.metadata, "moved": (dx, dy)},
        instances=[inst.shifted(dx, dy) for inst in reversed(doc.instances)],
    )


@pytest.fixture(scope="module")
def motion_pair(uid_docs) -> SimPair:
    frame0 = uid_docs[STEM0]
    frame1 = moved(frame0, 7, -5)
    n = len(frame0.instances)
    # instance i of frame 0 is instance n-1-i of frame 1; leave three unmatched on each side
    groups = [(i, n - 1 - i) for i in range(n) if i not in (2, 5, 11)]
    return SimPair(frame0, frame1, groups, device="15e612cd", datetime0=DT0, datetime1=DT1)


@pytest.fixture(scope="module")
def written(motion_pair, tmp_path_factory) -> tuple[Path, bytes]:
    dest = tmp_path_factory.mktemp("sim") / sim_name("15e612cd", DT0, DT1)
    return dest, write_sim_svg(motion_pair, dest)


def assert_same_pair(a: SimPair, b: SimPair) -> None:
    assert b.groups == a.groups
    for fa, fb in ((a.frame0, b.frame0), (a.frame1, b.frame1)):
        assert fb.jpeg_bytes == fa.jpeg_bytes and fb.md5 == fa.md5
        assert (fb.width, fb.height) == (fa.width, fa.height)
        assert fb.metadata == fa.metadata
        assert len(fb.instances) == len(fa.instances)
        for x, y in zip(fa.instances, fb.instances, strict=True):
            assert np.array_equal(x.polygon, y.polygon)
            assert (x.stroke, x.name, x.fill, x.value, x.score) == (y.stroke, y.name, y.fill, y.value, y.score)


# -- names ------------------------------------------------------------------------------------------------


def test_sim_name_round_trip() -> None:
    name = sim_name("15e612cd", DT0, DT1)
    assert name == "15e612cd.2020-07-09_04-40-18.2020-07-09_05-00-00.svg"
    assert parse_sim_name(name) == ("15e612cd", DT0, DT1)
    assert parse_sim_name(f"some/dir/{name}") == ("15e612cd", DT0, DT1)
    assert parse_sim_name("15e612cd.2020-07-09_04-40-18.svg") is None  # a UID name, not a pair
    assert parse_sim_name("pair.svg") is None


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("15e612cd.2020-07-09_05-00-00.2020-07-09_04-40-18.svg", "must be later"),
        ("15e612cd.2020-07-09_04-40-18.2020-07-09_04-40-18.svg", "must be later"),
        ("nothex00.2020-07-09_04-40-18.2020-07-09_05-00-00.svg", "invalid device"),
        ("15e612cd.2020-07-09.2020-07-09_05-00-00.svg", "invalid datetime"),
    ],
)
def test_invalid_sim_names(name: str, fragment: str) -> None:
    with pytest.raises(SimSvgError, match=fragment):
        parse_sim_name(name)


# -- writing and reading back -----------------------------------------------------------------------------


def test_round_trip_from_file(motion_pair, written) -> None:
    dest, data = written
    assert dest.read_bytes() == data
    pair = read_sim_svg(dest)
    assert_same_pair(motion_pair, pair)
    assert (pair.device, pair.datetime0, pair.datetime1) == ("15e612cd", DT0, DT1)
    assert pair.warnings == []
    assert pair.frame1.metadata["moved"] == (7, -5)


def test_round_trip_from_bytes_takes_identity_from_the_embedded_metadata(motion_pair, written) -> None:
    pair = read_sim_svg(written[1])
    assert_same_pair(motion_pair, pair)
    assert (pair.device, pair.datetime0, pair.datetime1) == ("15e612cd", DT0, DT1)


def test_two_different_images(uid_docs, tmp_path: Path) -> None:
    frame0, frame1 = uid_docs[STEM0], uid_docs[STEM1]
    pair = SimPair(frame0, frame1, [(0, 3), (5, 1), (15, 22)])
    data = write_sim_svg(pair)
    again = read_sim_svg(data)
    assert_same_pair(pair, again)
    assert again.frame0.jpeg_bytes != again.frame1.jpeg_bytes
    assert again.device is None and again.datetime0 is None


def test_written_layout(motion_pair, written) -> None:
    data = written[1]
    root = ET.fromstring(data)
    height = motion_pair.frame0.height
    assert (root.get("width"), root.get("height")) == ("2592", str(2 * height))
    images = list(root.iter(f"{{{SVG_NS}}}image"))
    assert [(i.get("y"), i.get("height")) for i in images] == [("0", "1944"), ("1944", "1944")]
    assert all(i.get(f"{{{XLINK_NS}}}href").startswith("data:image/jpeg;base64,") for i in images)
    assert [m.get("id") for m in root.iter(f"{{{SVG_NS}}}metadata")] == [SIM_METADATA_ID]
    # the arrow marker is defined and is not a <path> (the original reader takes every path as an instance)
    (marker,) = root.iter(f"{{{SVG_NS}}}marker")
    assert marker.get("id") == "arrowhead" and not list(marker.iter(f"{{{SVG_NS}}}path"))

    groups = list(root.iter(f"{{{SVG_NS}}}g"))
    assert [g.get("id") for g in groups] == [f"auto-grp-{k}" for k in range(len(motion_pair.groups))]
    for g, (i0, i1) in zip(groups, motion_pair.groups, strict=True):
        paths = g.findall(f"{{{SVG_NS}}}path")
        assert [p.get("name") for p in paths] == [f"0_{i0:03d}", f"1_{i1:03d}"]
        (line,) = g.findall(f"{{{SVG_NS}}}line")
        assert line.get("marker-end") == "url(#arrowhead)"
        cx0, cy0 = motion_pair.frame0.instances[i0].centroid
        cx1, cy1 = motion_pair.frame1.instances[i1].centroid
        assert float(line.get("x1")) == pytest.approx(cx0, abs=0.01)
        assert float(line.get("y2")) == pytest.approx(cy1 + height, abs=0.01)
        # frame-1 outlines are written shifted down by H
        x, y = motion_pair.frame1.instances[i1].polygon[0]
        assert paths[1].get("d").startswith(f"M{x},{y + height} ")
    ungrouped = root.findall(f"{{{SVG_NS}}}path")
    assert len(ungrouped) == 6
    assert {p.get("name")[:2] for p in ungrouped} == {"0_", "1_"}
    assert all(p.get("data-class") == "insect" for p in root.iter(f"{{{SVG_NS}}}path"))


def test_writer_validation(motion_pair) -> None:
    f0, f1 = motion_pair.frame0, motion_pair.frame1
    with pytest.raises(SimSvgError, match="out of range"):
        write_sim_svg(SimPair(f0, f1, [(0, 99)]))
    with pytest.raises(SimSvgError, match="more than one group"):
        write_sim_svg(SimPair(f0, f1, [(0, 1), (0, 2)]))
    with pytest.raises(SimSvgError, match="later"):
        write_sim_svg(SimPair(f0, f1, [], datetime0=DT1, datetime1=DT0))
    with pytest.raises(SimSvgError, match="device"):
        write_sim_svg(SimPair(f0, f1, [], device="not-a-device"))
    small = UidSvg(jpeg_bytes=tiny_jpeg(40, 30), width=40, height=30, metadata={}, instances=[])
    with pytest.raises(SimSvgError, match="same size"):
        write_sim_svg(SimPair(f0, small, []))


# -- Inkscape-edited and legacy variants ------------------------------------------------------------------


def _body(text: str) -> tuple[str, str, str]:
    """Split a written pair into (header up to the images included, drawn content, closing tag)."""
    first_group = min(i for i in (text.find("  <g "), text.find("  <path ")) if i >= 0)
    end = text.rindex("</svg>")
    return text[:first_group], text[first_group:end], text[end:]


def test_inkscape_layer_wrapped_variant_still_reads(motion_pair, written) -> None:
    head, body, tail = _body(written[1].decode())
    layered = (
        head
        + '<g inkscape:groupmode="layer" id="layer1" inkscape:label="Layer 1">\n'
        + body
        + '<g inkscape:groupmode="layer" id="layer2"/></g>\n'
        + tail
    )
    pair = read_sim_svg(layered, name=sim_name("15e612cd", DT0, DT1))
    assert pair.warnings == []
    assert_same_pair(motion_pair, pair)


def test_group_of_groups_and_translated_layer(motion_pair, written) -> None:
    head, body, tail = _body(written[1].decode())
    # Inkscape "group" of the whole selection, inside a layer moved by (0, 10) whose content moved back.
    body = re.sub(r' d="M', ' transform="translate(0,-10)" d="M', body)
    wrapped = head + '<g inkscape:groupmode="layer" transform="translate(0,10)"><g id="all">' + body + "</g></g>" + tail
    pair = read_sim_svg(wrapped)
    assert pair.warnings == []
    assert_same_pair(motion_pair, pair)


def test_bad_groups_warn_and_keep_their_paths(motion_pair, written) -> None:
    text = written[1].decode()
    # merge the first two groups into one holding four paths, and make a third lose its frame-1 path
    text = text.replace('  </g>\n  <g id="auto-grp-1">\n', "", 1)
    start = text.index('<path name="1_', text.index('<g id="auto-grp-2">'))
    end = text.index("/>", start)
    text = text[:start] + text[start:end].replace("stroke:#0000ff", "stroke:none") + text[end:]
    pair = read_sim_svg(text, name="pair.svg")
    assert pair.groups == motion_pair.groups[3:]
    assert len(pair.warnings) == 3
    assert "no stroke colour" in pair.warnings[0]
    assert "'auto-grp-0' holds 2 frame-0 and 2 frame-1 instances" in pair.warnings[1]
    assert "'auto-grp-2' holds 1 frame-0 and 0 frame-1 instances" in pair.warnings[2]
    assert all(w.startswith("pair.svg: ") for w in pair.warnings)
    # the paths of the broken groups are still instances (unmatched)
    assert len(pair.frame0.instances) == len(motion_pair.frame0.instances)
    assert len(pair.frame1.instances) == len(motion_pair.frame1.instances) - 1


def test_original_style_file_without_json_metadata(motion_pair, written) -> None:
    """Original tools' files: desc on both images, no names order guarantee, no data-class."""
    text = written[1].decode()
    text = re.sub(r"  <metadata .*?</metadata>\n", "", text, flags=re.S)
    text = text.replace(' data-class="insect"', "")
    pair = read_sim_svg(text)
    assert pair.frame0.metadata == motion_pair.frame0.metadata
    assert pair.frame1.metadata == motion_pair.frame1.metadata  # legacy desc holds tuples exactly
    assert pair.device is None
    assert_same_pair(motion_pair, pair)


def test_renamed_paths_fall_back_to_document_order(motion_pair, written) -> None:
    text = re.sub(r'name="([01])_\d+"', r'name="insect"', written[1].decode())
    pair = read_sim_svg(text)
    # grouped pairs come first in the document, so they are now instances 0..k-1 of both frames
    k = len(motion_pair.groups)
    assert pair.groups == [(i, i) for i in range(k)]
    for (i0, i1), (j0, j1) in zip(motion_pair.groups, pair.groups, strict=True):
        assert pair.frame0.instances[j0] == motion_pair.frame0.instances[i0]
        assert pair.frame1.instances[j1] == motion_pair.frame1.instances[i1]


# -- synthetic documents: image order, frame assignment, errors ---------------------------------------------


def tiny_jpeg(width: int = 60, height: int = 40, value: int = 0) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((height, width, 3), value, np.uint8))
    assert ok
    return buf.tobytes()


def sim_doc(images: list[tuple[float, bytes]], body: str, height: int = 2000) -> str:
    tags = "".join(
        f'<image x="0" y="{y}" width="60" height="900" '
        f'xlink:href="data:image/jpeg;base64,{base64.b64encode(jpeg).decode()}"/>'
        for y, jpeg in images
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="60" height="{height}">{tags}{body}</svg>'
    )


def test_images_are_ordered_by_numeric_y() -> None:
    """At y=200 and y=1100, a string comparison ("1100" < "200") would swap the frames."""
    dark, light = tiny_jpeg(60, 900, 0), tiny_jpeg(60, 900, 255)
    body = (
        '<g><path style="stroke:#0000ff" d="M10,250 L30,250 L30,300 Z"/>'
        '<path style="stroke:#0000ff" d="M10,1150 L30,1150 L30,1200 Z"/></g>'
    )
    pair = read_sim_svg(sim_doc([(1100, light), (200, dark)], body))
    assert pair.frame0.jpeg_bytes == dark and pair.frame1.jpeg_bytes == light
    assert pair.frame0.instances[0].polygon.tolist() == [[10, 50], [30, 50], [30, 100]]
    assert pair.frame1.instances[0].polygon.tolist() == [[10, 50], [30, 50], [30, 100]]
    assert pair.groups == [(0, 0)]


def test_frame_is_chosen_by_bbox_centre() -> None:
    # a frame-1 outline poking 5 px above the seam (y=900) still belongs to frame 1
    body = '<path style="stroke:#0000ff" d="M10,895 L30,895 L30,960 L10,960 Z"/>'
    pair = read_sim_svg(sim_doc([(0, tiny_jpeg(60, 900)), (900, tiny_jpeg(60, 900))], body))
    assert pair.frame0.instances == []
    assert pair.frame1.instances[0].polygon.tolist()[0] == [10, -5]


@pytest.mark.parametrize("n_images", [0, 1, 3])
def test_wrong_number_of_images(n_images: int) -> None:
    images = [(k * 900, tiny_jpeg(60, 900)) for k in range(n_images)]
    with pytest.raises(SimSvgError, match=f"q.svg: .*exactly two <image>, found {n_images}"):
        read_sim_svg(sim_doc(images, ""), name="q.svg")


def test_uid_file_is_not_a_pair(uid_docs) -> None:
    with pytest.raises(SimSvgError, match="exactly two <image>, found 1"):
        read_sim_svg(stickypi_path("uid", f"{STEM0}.svg"))


def test_images_must_be_stacked() -> None:
    with pytest.raises(SimSvgError, match="not stacked"):
        read_sim_svg(sim_doc([(0, tiny_jpeg(60, 900)), (0, tiny_jpeg(60, 900))], ""))


def test_bad_name_is_an_error(written) -> None:
    with pytest.raises(FormatError, match="must be later"):
        read_sim_svg(written[1], name="15e612cd.2020-07-09_05-00-00.2020-07-09_04-40-18.svg")


def test_score_and_class_survive(uid_docs) -> None:
    frame0 = uid_docs[STEM0]
    inst = Instance(np.array([[10, 10], [50, 10], [50, 50]]), stroke="#FF0000", name="fly", score=0.75)
    frame1 = UidSvg(frame0.jpeg_bytes, frame0.width, frame0.height, {}, [inst])
    pair = read_sim_svg(write_sim_svg(SimPair(frame0, frame1, [(0, 0)])))
    assert pair.frame1.instances == [inst]
    assert pair.groups == [(0, 0)]
