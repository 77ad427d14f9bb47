"""Path data flattening: every SVG path command, the original tools' sampling, and clear syntax errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import svgpathtools
from svgpathtools import Arc, CubicBezier, Line, QuadraticBezier

from stickypi_assets.formats.errors import FormatError
from stickypi_assets.formats.svg_paths import (
    CURVE_SAMPLES,
    PathSyntaxError,
    apply_transform,
    flatten_path,
    parse_path,
    parse_transform,
)


def rings(d: str) -> list[list[tuple[float, float]]]:
    return [[(float(x), float(y)) for x, y in ring] for ring in flatten_path(d)]


SQUARE = [(10.0, 10.0), (20.0, 10.0), (30.0, 10.0), (30.0, 20.0)]


@pytest.mark.parametrize(
    "d",
    [
        "M 10,10 L 20,10 H 30 V 20 Z",
        "m 10,10 l 10,0 h 10 v 10 z",
        "M10 10L20 10H30V20Z",
        "M10,10 20,10 30,10 30,20 z",  # implicit lineto after an absolute moveto
        "m10,10 10,0 10,0 0,10 z",  # implicit relative lineto after a relative moveto
        "M10,10 L20,10 30,10 l0,10 Z",  # implicit repeat of L
        "M 10 , 10 L 20 , 10 h10 v10 Z",
        "  M10,10\n\tL20,10\r\nH30 V20 Z  ",
    ],
)
def test_lines_absolute_relative_implicit(d: str) -> None:
    assert rings(d) == [SQUARE]


def test_straight_segments_contribute_their_start_point_and_closing_segment() -> None:
    # The closing line (30,20)->(10,10) contributes (30,20); the start is not repeated at the end.
    (ring,) = flatten_path("M10,10 L20,10 L30,10 L30,20 Z")
    assert ring.dtype == np.float64 and ring.shape == (4, 2)


def test_compact_numbers_and_separators() -> None:
    assert rings("M10-20L30.5.5l-1-1z") == [[(10.0, -20.0), (30.5, 0.5), (29.5, -0.5)]]


def test_scientific_notation() -> None:
    (ring,) = rings("m 5,-1.0000008e-7 L 10,5e0 L1e1,1.5E1 l -2.5e+0,0 z")
    assert ring[0] == (5.0, -1.0000008e-7)
    assert ring[1:] == [(10.0, 5.0), (10.0, 15.0), (7.5, 15.0)]


def test_first_relative_moveto_is_absolute() -> None:
    assert rings("m 3,4 l 1,0 l 0,1 z") == [[(3.0, 4.0), (4.0, 4.0), (4.0, 5.0)]]


def test_multiple_subpaths_relative_moveto_after_close() -> None:
    # After z the current point is the sub-path start (0,0), so "m 20,0" starts at (20,0).
    result = rings("M0,0 L10,0 L10,10 z m 20,0 l 10,0 l 0,10 z")
    assert result == [
        [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0)],
        [(20.0, 0.0), (30.0, 0.0), (30.0, 10.0)],
    ]


def test_every_moveto_starts_a_ring_even_at_the_current_point() -> None:
    result = rings("M0,0 L10,0 L10,10 Z M0,0 L-10,0 L-10,-10 Z")
    assert len(result) == 2


def test_drawing_after_close_without_moveto_starts_a_new_ring() -> None:
    result = rings("M0,0 L10,0 L10,10 Z L-10,0 L-10,-10 Z")
    assert result == [[(0.0, 0.0), (10.0, 0.0), (10.0, 10.0)], [(0.0, 0.0), (-10.0, 0.0), (-10.0, -10.0)]]


def test_open_subpath_keeps_its_end_point() -> None:
    # The original lost the last vertex of unclosed paths; an explicitly closed outline is unchanged.
    assert rings("M0,0 L10,0 L10,10") == [[(0.0, 0.0), (10.0, 0.0), (10.0, 10.0)]]
    assert rings("M0,0 L10,0 L10,10 L0,0") == [[(0.0, 0.0), (10.0, 0.0), (10.0, 10.0)]]


def test_degenerate_paths_from_the_real_data() -> None:
    # Both occur in afbd6f68.2020-04-12_01-59-16.svg; the UID reader drops them (< 3 vertices).
    assert rings("m 2475,1437 v 0 z") == [[(2475.0, 1437.0)]]
    assert rings("M1675,17 1676,17 Z") == [[(1675.0, 17.0), (1676.0, 17.0)]]
    assert rings("M 5,5") == [[(5.0, 5.0)]]


def _poly_samples(seg) -> list[tuple[float, float]]:
    tvals = np.linspace(0, 1, CURVE_SAMPLES)[:-1]
    return [(float(p.real), float(p.imag)) for p in seg.poly()(tvals)]


def test_cubic_sampled_at_seven_parameters_like_the_original() -> None:
    (ring,) = rings("M0,0 C0,10 10,10 10,0 Z")
    expected = _poly_samples(CubicBezier(0j, 10j, 10 + 10j, 10 + 0j)) + [(10.0, 0.0)]
    assert ring == expected
    assert len(ring) == 8 and ring[0] == (0.0, 0.0)
    assert ring[3] == pytest.approx((1350 / 343, 360 / 49))  # B(3/7): x = 30t²(1-t) + 10t³, y = 30t(1-t)
    # relative form gives the same points
    assert rings("m0,0 c0,10 10,10 10,0 z") == [expected]


def test_smooth_cubic_reflects_previous_control_point() -> None:
    (sub,) = parse_path("M0,0 C0,10 10,10 10,0 S20,-10 20,0")
    assert sub.segments[1] == CubicBezier(10 + 0j, 10 - 10j, 20 - 10j, 20 + 0j)
    (sub,) = parse_path("M0,0 C0,10 10,10 10,0 s10,-10 10,0")
    assert sub.segments[1] == CubicBezier(10 + 0j, 10 - 10j, 20 - 10j, 20 + 0j)
    # S without a preceding cubic uses the current point as first control
    (sub,) = parse_path("M0,0 L5,0 S10,10 15,0")
    assert sub.segments[1] == CubicBezier(5 + 0j, 5 + 0j, 10 + 10j, 15 + 0j)


def test_quadratic_and_smooth_quadratic() -> None:
    (sub,) = parse_path("M0,0 Q5,10 10,0 T20,0")
    assert sub.segments == [QuadraticBezier(0j, 5 + 10j, 10 + 0j), QuadraticBezier(10 + 0j, 15 - 10j, 20 + 0j)]
    (sub,) = parse_path("m0,0 q5,10 10,0 t10,0")
    assert sub.segments[1] == QuadraticBezier(10 + 0j, 15 - 10j, 20 + 0j)
    (ring,) = flatten_path("M0,0 Q5,10 10,0 T20,0 Z")
    assert len(ring) == 2 * 7 + 1  # two curves sampled, then the closing line's start


@pytest.mark.parametrize("d", ["M0,0 A10,10 0 0,1 20,0 Z", "M0,0 a10,10 0 0120,0 z", "M0 0A10 10 0 0 1 20 0z"])
def test_arc_is_flattened_on_its_circle(d: str) -> None:
    (ring,) = flatten_path(d)
    assert len(ring) == 8
    distances = np.hypot(ring[:, 0] - 10, ring[:, 1])
    assert np.allclose(distances[:7], 10.0)
    assert ring[0].tolist() == [0.0, 0.0] and ring[7].tolist() == [20.0, 0.0]
    # sweep=1 in SVG's y-down frame goes through negative y (the upper half on screen)
    assert ring[1:7, 1].max() < 0


def test_arc_edge_cases() -> None:
    (sub,) = parse_path("M0,0 A0,5 0 0 1 10,0")  # zero radius: a straight line
    assert sub.segments == [Line(0j, 10 + 0j)]
    (sub,) = parse_path("M0,0 A5,5 0 0 1 0,0 L1,1")  # arc to the current point is omitted
    assert sub.segments == [Line(0j, 1 + 1j)]
    (sub,) = parse_path("M0,0 A1,1 0 0 1 10,0")  # radius too small: scaled up, not an error
    assert isinstance(sub.segments[0], Arc)


def test_matches_svgpathtools_segments_for_supported_syntax() -> None:
    d = "M 10,20 c 5,5 10,-5 15,0 s 10,10 20,0 q 5,5 10,0 t 10,0 l 5,5 h -3 v 4 L 12,40 Z"
    (sub,) = parse_path(d)
    reference = list(svgpathtools.parse_path(d))
    assert sub.segments == reference


@pytest.mark.parametrize(
    ("d", "fragment"),
    [
        ("M 10,10 L foo", "expected a number"),
        ("hello", "must start with a moveto"),
        ("xyz", "unknown path command 'x'"),
        ("L 10 10", "must start with a moveto"),
        ("10 10 L 5 5", "must start with a moveto"),
        ("M10", "expected a number"),
        ("M 1 2 X 3", "unknown path command 'X'"),
        ("M0,0 Z 5,5", "after closepath"),
        ("M0,0 A5,5 0 2 1 10,0", "arc flag"),
        ("M0,0 L1e999,0", "non-finite"),
        ("Z", "closepath before any moveto"),
    ],
)
def test_garbage_raises_a_clear_format_error(d: str, fragment: str) -> None:
    with pytest.raises(PathSyntaxError) as info:
        flatten_path(d)
    assert fragment in str(info.value)
    assert isinstance(info.value, FormatError)


def test_empty_path_has_no_rings() -> None:
    assert flatten_path("") == []
    assert flatten_path("   ") == []


def test_parse_transform() -> None:
    pts = np.array([[1.0, 2.0]])
    assert apply_transform(pts, parse_transform("translate(10,20)")).tolist() == [[11.0, 22.0]]
    assert apply_transform(pts, parse_transform("translate(5)")).tolist() == [[6.0, 2.0]]
    assert apply_transform(pts, parse_transform("scale(2)")).tolist() == [[2.0, 4.0]]
    assert apply_transform(pts, parse_transform("scale(2, 3)")).tolist() == [[2.0, 6.0]]
    assert apply_transform(pts, parse_transform("matrix(1 0 0 1 3 4)")).tolist() == [[4.0, 6.0]]
    # composition applies right to left: scale first, then translate
    assert apply_transform(pts, parse_transform("translate(10,0) scale(2)")).tolist() == [[12.0, 4.0]]
    rotated = apply_transform(np.array([[1.0, 0.0]]), parse_transform("rotate(90)"))
    assert np.allclose(rotated, [[0.0, 1.0]])
    about_centre = apply_transform(np.array([[2.0, 1.0]]), parse_transform("rotate(180, 1, 1)"))
    assert np.allclose(about_centre, [[0.0, 1.0]])
    skewed = apply_transform(np.array([[0.0, 1.0]]), parse_transform("skewX(45)"))
    assert np.allclose(skewed, [[1.0, 1.0]])
    assert np.allclose(parse_transform("skewY(45)")[1, 0], math.tan(math.pi / 4))
    assert parse_transform(None).tolist() == np.eye(3).tolist()
    assert parse_transform("").tolist() == np.eye(3).tolist()


def test_identity_transform_is_bit_exact() -> None:
    pts = np.array([[0.1 + 0.2, -1.0000008e-7]])
    assert apply_transform(pts, parse_transform("translate(0,0)")) is pts


@pytest.mark.parametrize("text", ["translate(1,2", "shear(3)", "translate(a,b)", "rotate(1,2)", "matrix(1 2 3)"])
def test_invalid_transform(text: str) -> None:
    with pytest.raises(PathSyntaxError):
        parse_transform(text)
