"""Hostile UID SVGs (found by a probe) are one recorded bad file or one recorded bad path, never a crash.

Each test puts one hostile construct next to a good square (``BLUE_SQUARE``) and checks both halves: the
reason is recorded (an error naming the file, or a warning naming the path) and the good content is still
read, exactly as from the same document without the hostile part.
"""

from __future__ import annotations

import numpy as np
import pytest

from stickypi_assets.formats import uid_svg
from stickypi_assets.formats.annotations import Instance, InvalidColourError, normalize_colour
from stickypi_assets.formats.errors import FormatError
from stickypi_assets.formats.svg_paths import PathSyntaxError, flatten_path, parse_transform
from stickypi_assets.formats.uid_svg import MAX_NESTING_DEPTH, UidSvgError, read_uid_svg
from stickypi_assets_tests.formats.test_uid_svg import BLUE_SQUARE, svg_doc

TRIANGLE_D = "M10,10 L20,10 L20,20 Z"
SQUARE = [[10, 10], [20, 10], [20, 20], [10, 20]]


def reference_instances() -> list[Instance]:
    """What the good part of every hostile document reads as on its own."""
    doc = read_uid_svg(svg_doc(BLUE_SQUARE), name="good.svg")
    assert [i.polygon.tolist() for i in doc.instances] == [SQUARE] and doc.warnings == []
    return doc.instances


def hostile_path(style: str = "stroke:#0000ff", d: str = TRIANGLE_D, extra: str = "") -> str:
    return f'<path id="bad" style="{style}" d="{d}" {extra}/>'


def read_with_good_square(hostile: str, **kwargs) -> uid_svg.UidSvg:
    doc = read_uid_svg(svg_doc(hostile + BLUE_SQUARE, **kwargs), name="hostile.svg")
    assert doc.instances == reference_instances()  # the good square is still read, and only it
    assert all(np.abs(i.polygon).max() < 1000 for i in doc.instances)  # no int32-min garbage vertex
    return doc


def test_deeply_nested_groups_are_one_format_error_naming_the_file() -> None:
    depth = 100_000
    data = svg_doc("<g>" * depth + BLUE_SQUARE + "</g>" * depth)
    with pytest.raises(UidSvgError, match=rf"^deep\.svg: elements nested deeper than {MAX_NESTING_DEPTH} levels"):
        read_uid_svg(data, name="deep.svg")
    assert issubclass(UidSvgError, FormatError)


def test_nesting_beyond_pythons_recursion_limit_still_reads() -> None:
    """The walk is iterative: the old recursive one hit RecursionError at ~1000 levels."""
    depth = MAX_NESTING_DEPTH - 1
    doc = read_uid_svg(svg_doc("<g>" * depth + BLUE_SQUARE + "</g>" * depth), name="deep.svg")
    assert doc.instances == reference_instances() and doc.warnings == []


def test_nested_anchor_and_switch_containers_count_towards_the_limit() -> None:
    depth = MAX_NESTING_DEPTH // 2 + 1
    data = svg_doc("<a><switch>" * depth + BLUE_SQUARE + "</switch></a>" * depth)
    with pytest.raises(UidSvgError, match="nested deeper"):
        read_uid_svg(data, name="deep.svg")


def test_stroke_rgb_nan_skips_the_path_with_its_reason() -> None:
    doc = read_with_good_square(hostile_path(style="stroke: rgb(nan, 0, 0)"))
    assert doc.warnings == [
        "hostile.svg: path 'bad': invalid stroke colour (colour 'rgb(nan, 0, 0)': channel 'nan' is not a finite "
        "number); skipped"
    ]


def test_stroke_rgb_1e999_skips_the_path_with_its_reason() -> None:
    doc = read_with_good_square(hostile_path(style="stroke: rgb(1e999, 0, 0)"))
    (warning,) = doc.warnings
    assert "path 'bad': invalid stroke colour" in warning and "'1e999' is not a finite number" in warning


def test_fill_rgb_nan_keeps_the_instance_with_the_default_fill_and_a_warning() -> None:
    body = hostile_path(style="stroke:#0000ff;fill:rgb(nan,1,1)", d="M30,30 L40,30 L40,40 L30,40 Z")
    doc = read_uid_svg(svg_doc(body), name="hostile.svg")
    (inst,) = doc.instances
    assert inst.fill == "#ff0000" and inst.polygon.tolist() == [[30, 30], [40, 30], [40, 40], [30, 40]]
    assert doc.warnings == [
        "hostile.svg: path 'bad': invalid fill colour (colour 'rgb(nan,1,1)': channel 'nan' is not a finite "
        "number); using #ff0000"
    ]


@pytest.mark.parametrize(
    "colour", ["rgb(nan,0,0)", "rgb(1e999, 0, 0)", "rgb(0, inf, 0)", "rgb(0,0,x)", "rgb(nan%,0,0)"]
)
def test_normalize_colour_refuses_non_finite_channels(colour: str) -> None:
    with pytest.raises(InvalidColourError, match="is not a finite number"):
        normalize_colour(colour)
    with pytest.raises(FormatError):  # also through the Instance model
        Instance(polygon=np.array(SQUARE), stroke=colour)


def test_normalize_colour_clamps_finite_out_of_range_channels_like_css() -> None:
    assert normalize_colour("rgb(300, -5, 1e300)") == "#ff00ff"
    assert normalize_colour("rgb(150%, -1%, 100%)") == "#ff00ff"


def test_huge_radius_arc_skips_the_path_instead_of_a_nan_vertex() -> None:
    doc = read_with_good_square(hostile_path(d="M10,10 A1e308,1e308 0 0,1 20,20 L10,20 Z"))
    (warning,) = doc.warnings
    assert warning.startswith("hostile.svg: path 'bad': cannot parse path data (arc geometry is not finite")
    assert warning.endswith("; skipped")


def test_large_finite_radius_arc_that_misses_its_end_point_is_skipped() -> None:
    """rx = 1e10 for a 14 px chord: finite, but the sweep angle is lost and the samples overshoot by 200 px."""
    doc = read_with_good_square(hostile_path(d="M10,10 A1e10,1e10 0 0,1 20,20 L10,20 Z"))
    (warning,) = doc.warnings
    assert "path 'bad': cannot parse path data (arc radius" in warning and "misses its end point" in warning


def test_ordinary_arcs_are_unchanged_by_the_arc_checks() -> None:
    (ring,) = flatten_path("M100,50 A10,10 0 1,1 120,50 A10,10 0 1,1 100,50 Z")
    assert ring.shape == (14, 2) and np.isfinite(ring).all()
    assert np.hypot(ring[:, 0] - 110, ring[:, 1] - 50) == pytest.approx(np.full(14, 10.0))


@pytest.mark.parametrize(
    ("d", "fragment"),
    [
        ("m1e308,0 l1e308,0 l0,10 z", "coordinates overflow"),
        ("M0,0 C1e308,1e308 -1e308,-1e308 10,10 L0,10 Z", "is not finite"),
    ],
)
def test_overflowing_path_data_is_a_path_syntax_error(d: str, fragment: str) -> None:
    with pytest.raises(PathSyntaxError, match=fragment):
        flatten_path(d)
    doc = read_with_good_square(hostile_path(d=d))
    (warning,) = doc.warnings
    assert "path 'bad': cannot parse path data" in warning and fragment in warning


def test_coordinates_beyond_the_pixel_limit_drop_the_ring_with_its_index() -> None:
    doc = read_with_good_square(hostile_path(extra='transform="scale(1e200)"'))
    (warning,) = doc.warnings
    assert warning.startswith("hostile.svg: path 'bad', ring 0: vertex 0 at")
    assert "is beyond 1000000 px" in warning and warning.endswith("; dropped")


@pytest.mark.parametrize("transform", ["translate(nan)", "scale(inf)", "scale(1e200) scale(1e200)"])
def test_non_finite_transforms_are_refused(transform: str) -> None:
    with pytest.raises(PathSyntaxError):
        parse_transform(transform)
    doc = read_uid_svg(svg_doc(f'<g transform="{transform}">{BLUE_SQUARE}</g>'), name="hostile.svg")
    assert doc.instances == reference_instances()  # the transform is ignored, and said so
    (warning,) = doc.warnings
    assert warning.startswith("hostile.svg: group 'g':") and warning.endswith("; transform ignored")


def test_non_finite_value_and_score_attributes_are_warnings() -> None:
    body = BLUE_SQUARE.replace("<path ", '<path value="1e999" data-score="nan" ')
    doc = read_uid_svg(svg_doc(body), name="hostile.svg")
    (inst,) = doc.instances
    assert inst.value == 0 and inst.score is None and inst.polygon.tolist() == SQUARE
    assert doc.warnings == [
        "hostile.svg: path 'sq': non-numeric value '1e999'; using 0",
        "hostile.svg: path 'sq': non-finite data-score 'nan'; ignored",
    ]


def test_deeply_nested_json_metadata_falls_back_to_the_legacy_metadata() -> None:
    extra = f'<metadata id="stickypi-metadata">{"[" * 100_000}</metadata>'
    doc = read_uid_svg(svg_doc(BLUE_SQUARE, extra=extra), name="hostile.svg")
    assert doc.metadata == {"device": "0a5bb6f4", "tag": b"0220"} and doc.instances == reference_instances()
    (warning,) = doc.warnings
    assert "is not valid JSON" in warning and "recursion" in warning


def test_image_with_a_singular_transform_is_a_format_error() -> None:
    data = svg_doc(BLUE_SQUARE, image_attrs='width="200" height="100" transform="scale(0)"')
    with pytest.raises(UidSvgError, match=r"^hostile\.svg: the <image>'s transform is not invertible"):
        read_uid_svg(data, name="hostile.svg")


def test_external_entities_and_entity_bombs_stay_refused() -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg"><desc>&x;</desc></svg>'
    )
    with pytest.raises(UidSvgError, match=r"^xxe\.svg: not well-formed XML \(undefined entity"):
        read_uid_svg(xxe, name="xxe.svg")
    entities = b'<!ENTITY a "aaaaaaaaaa">' + b"".join(
        b'<!ENTITY %s "%s">' % (chr(98 + k).encode(), (b"&" + chr(97 + k).encode() + b";") * 10) for k in range(8)
    )
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE svg [' + entities + b"]>"
        b'<svg xmlns="http://www.w3.org/2000/svg"><desc>&i;</desc></svg>'
    )
    with pytest.raises(UidSvgError, match=r"^bomb\.svg: not well-formed XML \(limit on input amplification"):
        read_uid_svg(bomb, name="bomb.svg")


def test_an_unexpected_exception_becomes_a_format_error_with_its_type(monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(uid_svg, "read_metadata", broken)
    with pytest.raises(UidSvgError, match=r"^odd\.svg: unreadable \(KeyError: 'surprise'\)") as info:
        read_uid_svg(svg_doc(BLUE_SQUARE), name="odd.svg")
    assert isinstance(info.value.__cause__, KeyError)


def test_valid_svg_with_the_same_content_minus_the_hostile_parts_reads() -> None:
    """Control: the good square, in groups, with a fill and an ordinary arc, reads without a warning."""
    body = (
        f'<g id="layer1"><g>{BLUE_SQUARE}</g></g>'
        '<path style="stroke:rgb(0, 0, 255);fill:rgb(255,0,0)" d="M100,50 A10,10 0 1,1 120,50 A10,10 0 1,1 100,50 Z"/>'
    )
    doc = read_uid_svg(svg_doc(body), name="good.svg")
    assert doc.warnings == []
    square, circle = doc.instances
    assert square == reference_instances()[0]
    assert (circle.stroke, circle.fill) == ("#0000ff", "#ff0000")
    assert circle.area == pytest.approx(np.pi * 100, rel=0.1)
