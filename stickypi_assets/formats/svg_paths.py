"""SVG path data (``d``) and ``transform`` attributes → polygons in user coordinates.

Annotators draw insects in Inkscape, which writes any path syntax it likes (relative commands, curves,
scientific notation, several sub-paths in one ``<path>``). The original tools delegated parsing to
``svgpathtools.parse_path`` and crashed on arcs; we tokenise ``d`` ourselves so that

* every command of SVG 1.1 is accepted (``M L H V C S Q T A Z``, absolute and relative, implicit repeats,
  compact arc flags such as ``a5,5 0 011,1``);
* errors are a :class:`PathSyntaxError` naming the position, which readers turn into a warning;
* no vertex is ever NaN or infinite: numbers must be finite, and arcs, curves or transforms whose
  arithmetic overflows (a hostile ``A1e308,1e308 …``) are a :class:`PathSyntaxError` too, instead of a
  NaN that a later cast to ``int32`` turns into a garbage vertex;
* a sub-path starts at every ``M``/``m`` and after every ``Z`` followed by drawing (SVG semantics), so
  ``… z m …`` yields several rings.

Segments are svgpathtools objects and curves are sampled with their own ``poly()`` polynomials, so the
polygons are bit-compatible with the original reader (reference section 2.6): a straight segment
contributes its start point; a curve (cubic/quadratic Bézier or elliptical arc) contributes 7 points,
its samples at ``t = 0, 1/7, …, 6/7`` (``linspace(0, 1, 8)`` minus the end, which is the next segment's
start). Deliberate differences from the original, all for inputs absent from the real data: an *open*
sub-path whose end differs from its start keeps that end point (the original silently lost the last
vertex), arcs are supported, and a new ring starts at every ``M`` even when it moves to the current point.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
from svgpathtools import Arc, CubicBezier, Line, QuadraticBezier

from stickypi_assets.formats.errors import FormatError

#: Curves are evaluated at ``linspace(0, 1, CURVE_SAMPLES)`` and the last sample (the end point) dropped.
CURVE_SAMPLES = 8

Segment = Line | CubicBezier | QuadraticBezier | Arc

_COMMANDS = frozenset("MmZzLlHhVvCcSsQqTtAa")
_N_ARGS = {"M": 2, "L": 2, "H": 1, "V": 1, "C": 6, "S": 4, "Q": 4, "T": 2, "A": 7}
_NUMBER_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_SEPARATORS = frozenset(" \t\r\n\f,")
#: Largest distance, relative to the chord (at least 1), between an arc's computed and given end points.
#: Well-conditioned arcs reproduce them to ~1e-13; ill-conditioned ones (radius >> chord) by whole pixels.
_ARC_END_TOLERANCE = 1e-3


class PathSyntaxError(FormatError):
    """``d`` or ``transform`` text that is not valid SVG syntax."""


@dataclass
class SubPath:
    """One ring of a path: its start point, its segments, and whether it was closed with ``Z``."""

    start: complex
    segments: list[Segment] = field(default_factory=list)
    closed: bool = False

    @property
    def end(self) -> complex:
        return self.segments[-1].end if self.segments else self.start


class _Scanner:
    """Reads numbers, arc flags and command letters out of path data, tracking the position for errors."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_separators(self) -> None:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in _SEPARATORS:
            pos += 1
        self.pos = pos

    def at_end(self) -> bool:
        self.skip_separators()
        return self.pos >= len(self.text)

    def peek(self) -> str:
        self.skip_separators()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def context(self) -> str:
        snippet = self.text[max(0, self.pos - 15) : self.pos + 15]
        return f"at position {self.pos} (near {snippet!r})"

    def number(self, command: str) -> float:
        self.skip_separators()
        match = _NUMBER_RE.match(self.text, self.pos)
        if match is None:
            raise PathSyntaxError(f"expected a number for command {command!r} {self.context()}")
        self.pos = match.end()
        value = float(match.group())
        if not math.isfinite(value):
            raise PathSyntaxError(f"non-finite number {match.group()!r} {self.context()}")
        return value

    def flag(self, command: str) -> bool:
        # Flags are single characters and may be written without separators ("a5,5 0 011,1").
        self.skip_separators()
        char = self.text[self.pos : self.pos + 1]
        if char not in ("0", "1"):
            raise PathSyntaxError(f"expected an arc flag (0 or 1) for command {command!r} {self.context()}")
        self.pos += 1
        return char == "1"


def parse_path(d: str) -> list[SubPath]:
    """Parse path data into sub-paths of svgpathtools segments (absolute coordinates).

    Raises :class:`PathSyntaxError` on anything that is not SVG path syntax (the SVG rule "render up to
    the error" would silently truncate an annotation, so we refuse the whole path instead).
    """
    if not isinstance(d, str):
        raise PathSyntaxError(f"path data must be a string, got {type(d).__name__}")
    scanner = _Scanner(d)
    subpaths: list[SubPath] = []
    current: SubPath | None = None
    pos = 0j  # current point
    command = ""
    # Control point of the previous segment, for the reflections of S/s (cubic) and T/t (quadratic).
    last_cubic_ctrl: complex | None = None
    last_quad_ctrl: complex | None = None

    while not scanner.at_end():
        char = scanner.peek()
        if char.isalpha():
            if char not in _COMMANDS:
                raise PathSyntaxError(f"unknown path command {char!r} {scanner.context()}")
            scanner.pos += 1
            command = char
            if command in "Zz":
                if current is None:
                    raise PathSyntaxError(f"closepath before any moveto {scanner.context()}")
                if pos != current.start:
                    current.segments.append(Line(pos, current.start))
                current.closed = True
                pos = current.start
                last_cubic_ctrl = last_quad_ctrl = None
                continue
        elif not command:
            raise PathSyntaxError(f"path data must start with a moveto command (M or m) {scanner.context()}")
        elif command in "Zz":
            raise PathSyntaxError(f"number after closepath without a command {scanner.context()}")
        # One set of arguments for `command` (explicit, or an implicit repeat of the previous command).
        upper = command.upper()
        relative = command.islower()
        if current is None and upper != "M":
            raise PathSyntaxError(f"path data must start with a moveto command (M or m) {scanner.context()}")
        if current is not None and current.closed and upper != "M":
            # Drawing after Z without a moveto starts a new sub-path at the same start point (SVG 1.1 8.3.3).
            current = SubPath(start=pos)
            subpaths.append(current)
        cubic_ctrl: complex | None = None
        quad_ctrl: complex | None = None

        if upper == "M":
            x, y = scanner.number(command), scanner.number(command)
            # A relative first moveto is relative to the origin, i.e. absolute (pos is 0 then).
            pos = pos + complex(x, y) if relative else complex(x, y)
            current = SubPath(start=pos)
            subpaths.append(current)
            # Coordinate pairs after a moveto are implicit linetos of the same relativity.
            command = "l" if relative else "L"
        elif upper == "L":
            x, y = scanner.number(command), scanner.number(command)
            end = pos + complex(x, y) if relative else complex(x, y)
            current.segments.append(Line(pos, end))
            pos = end
        elif upper == "H":
            x = scanner.number(command)
            end = complex(pos.real + x if relative else x, pos.imag)
            current.segments.append(Line(pos, end))
            pos = end
        elif upper == "V":
            y = scanner.number(command)
            end = complex(pos.real, pos.imag + y if relative else y)
            current.segments.append(Line(pos, end))
            pos = end
        elif upper in ("C", "S"):
            if upper == "C":
                values = [scanner.number(command) for _ in range(6)]
                c1 = complex(values[0], values[1])
                rest = values[2:]
            else:
                values = [scanner.number(command) for _ in range(4)]
                c1 = None
                rest = values
            c2, end = complex(rest[0], rest[1]), complex(rest[2], rest[3])
            if relative:
                c2, end = pos + c2, pos + end
                if c1 is not None:
                    c1 = pos + c1
            if c1 is None:
                c1 = 2 * pos - last_cubic_ctrl if last_cubic_ctrl is not None else pos
            current.segments.append(CubicBezier(pos, c1, c2, end))
            cubic_ctrl = c2
            pos = end
        elif upper in ("Q", "T"):
            if upper == "Q":
                values = [scanner.number(command) for _ in range(4)]
                ctrl: complex | None = complex(values[0], values[1])
                end = complex(values[2], values[3])
                if relative:
                    ctrl = pos + ctrl
            else:
                values = [scanner.number(command) for _ in range(2)]
                ctrl = None
                end = complex(values[0], values[1])
            if relative:
                end = pos + end
            if ctrl is None:
                ctrl = 2 * pos - last_quad_ctrl if last_quad_ctrl is not None else pos
            current.segments.append(QuadraticBezier(pos, ctrl, end))
            quad_ctrl = ctrl
            pos = end
        elif upper == "A":
            rx, ry, rotation = (scanner.number(command) for _ in range(3))
            large_arc, sweep = scanner.flag(command), scanner.flag(command)
            x, y = scanner.number(command), scanner.number(command)
            end = pos + complex(x, y) if relative else complex(x, y)
            if end != pos:  # an arc to the current point is omitted (SVG implementation notes F.6.2)
                if rx == 0 or ry == 0:  # zero radius: a straight line (F.6.2)
                    current.segments.append(Line(pos, end))
                else:
                    try:
                        with np.errstate(all="ignore"):  # overflow is detected below, not printed
                            arc = Arc(pos, complex(rx, ry), rotation, large_arc, sweep, end)
                    except (AssertionError, ValueError, ArithmeticError) as exc:
                        raise PathSyntaxError(f"invalid arc {scanner.context()}: {exc}") from None
                    _check_arc(arc, scanner)
                    current.segments.append(arc)
            pos = end
        if not (math.isfinite(pos.real) and math.isfinite(pos.imag)):
            # e.g. relative moves of 1e308 adding up to infinity: a NaN/inf vertex must never reach a polygon
            raise PathSyntaxError(f"coordinates overflow to {pos} {scanner.context()}")
        last_cubic_ctrl, last_quad_ctrl = cubic_ctrl, quad_ctrl
    return subpaths


def _check_arc(arc: Arc, scanner: _Scanner) -> None:
    """Refuse an arc whose geometry float64 cannot represent: non-finite, or missing its own end points.

    svgpathtools computes the centre with products of the radii squared, so radii near ``1e154`` and
    beyond overflow to inf/NaN without an exception; sampling such an arc gave NaN vertices, which the
    cast to ``int32`` turned into ``-2147483648``. Radii much larger than the chord (``1e8`` for a 14 px
    chord) stay finite but lose the sweep angle to cancellation: the samples overshoot the end point by
    whole pixels, a garbage outline. Both are refused (the path is skipped with a warning) rather than
    guessed: no annotator draws such arcs, and a guess would be silent.
    """
    values = (arc.center.real, arc.center.imag, arc.radius.real, arc.radius.imag, arc.theta, arc.delta)
    if not all(math.isfinite(float(v)) for v in values):
        raise PathSyntaxError(f"arc geometry is not finite (radius too large?) {scanner.context()}")
    tolerance = _ARC_END_TOLERANCE * max(1.0, abs(arc.end - arc.start))
    with np.errstate(all="ignore"):
        error = max(abs(arc.point(0.0) - arc.start), abs(arc.point(1.0) - arc.end))
    if not error <= tolerance:  # also catches NaN
        raise PathSyntaxError(
            f"arc radius {arc.radius} too large for its chord: float64 misses its end point by {error:.3g} "
            f"{scanner.context()}"
        )


def flatten_subpath(subpath: SubPath, samples: int = CURVE_SAMPLES) -> np.ndarray:
    """Vertices of one sub-path as a float64 ``(N, 2)`` array of ``(x, y)`` (see module docstring)."""
    tvals = np.linspace(0, 1, samples)[:-1]
    points: list[complex] = []
    with np.errstate(all="ignore"):  # overflow shows as non-finite vertices, refused below
        for seg in subpath.segments:
            if isinstance(seg, Line):
                points.append(seg.start)
            elif isinstance(seg, Arc):  # t = 0 is the exact start (Arc.point(0) may be off by 1e-15)
                points.append(seg.start)
                points.extend(seg.point(float(t)) for t in tvals[1:])
            else:  # Bézier: evaluate its polynomial exactly as the original reader did
                points.extend(np.asarray(seg.poly()(tvals), dtype=complex).tolist())
    if not subpath.segments or (not subpath.closed and subpath.end != subpath.start):
        points.append(subpath.end)
    arr = np.asarray(points, dtype=complex)
    out = np.stack([arr.real, arr.imag], axis=1).astype(np.float64, copy=False).reshape(-1, 2)
    finite = np.isfinite(out).all(axis=1)
    if not finite.all():  # curves with huge control points can overflow when sampled
        raise PathSyntaxError(f"sampled vertex {int(np.argmin(finite))} is not finite ({out[np.argmin(finite)]})")
    return out


def flatten_path(d: str, samples: int = CURVE_SAMPLES) -> list[np.ndarray]:
    """Parse ``d`` and flatten every sub-path (rings are not filtered; callers drop degenerate ones)."""
    return [flatten_subpath(sp, samples) for sp in parse_path(d)]


# -- transforms ------------------------------------------------------------------------------------------

_TRANSFORM_RE = re.compile(r"\s*(matrix|translate|scale|rotate|skewX|skewY)\s*\(([^)]*)\)\s*,?", re.ASCII)
_TRANSFORM_ARGS = {
    "matrix": (6,),
    "translate": (1, 2),
    "scale": (1, 2),
    "rotate": (1, 3),
    "skewX": (1,),
    "skewY": (1,),
}

IDENTITY = np.eye(3)


def parse_transform(text: str | None) -> np.ndarray:
    """SVG ``transform`` attribute → 3×3 affine matrix (identity for ``None`` or empty text).

    Inkscape writes transforms on layers and groups (e.g. ``translate(0,-12)`` after a page resize);
    ignoring them, as the original tools did, silently shifts annotations.
    """
    if text is None or not text.strip():
        return IDENTITY.copy()
    matrix = IDENTITY.copy()
    pos = 0
    while pos < len(text):
        match = _TRANSFORM_RE.match(text, pos)
        if match is None:
            if not text[pos:].strip(" \t\r\n,"):
                break
            raise PathSyntaxError(f"invalid transform {text!r} at position {pos}")
        pos = match.end()
        kind, raw = match.group(1), match.group(2)
        args_text = raw.replace(",", " ").split()
        # float() alone would accept "nan" and "inf", and a NaN matrix makes every vertex NaN
        if not all(_NUMBER_RE.fullmatch(a) for a in args_text):
            raise PathSyntaxError(f"invalid numbers in transform {text!r}: {raw!r}")
        args = [float(a) for a in args_text]
        if not all(math.isfinite(a) for a in args):
            raise PathSyntaxError(f"non-finite numbers in transform {text!r}: {raw!r}")
        if len(args) not in _TRANSFORM_ARGS[kind]:
            raise PathSyntaxError(f"transform {kind}() takes {_TRANSFORM_ARGS[kind]} numbers, got {raw!r}")
        with np.errstate(all="ignore"):  # overflow is refused just below
            matrix = matrix @ _transform_matrix(kind, args)
    if not np.isfinite(matrix).all():  # e.g. scale(1e200) scale(1e200)
        raise PathSyntaxError(f"transform {text!r} overflows")
    return matrix


def _transform_matrix(kind: str, args: list[float]) -> np.ndarray:
    m = IDENTITY.copy()
    if kind == "matrix":
        a, b, c, d, e, f = args
        m[:2] = [[a, c, e], [b, d, f]]
    elif kind == "translate":
        m[0, 2] = args[0]
        m[1, 2] = args[1] if len(args) > 1 else 0.0
    elif kind == "scale":
        m[0, 0] = args[0]
        m[1, 1] = args[1] if len(args) > 1 else args[0]
    elif kind == "rotate":
        angle = math.radians(args[0])
        cos, sin = math.cos(angle), math.sin(angle)
        m[:2, :2] = [[cos, -sin], [sin, cos]]
        if len(args) == 3:
            cx, cy = args[1], args[2]
            m = _transform_matrix("translate", [cx, cy]) @ m @ _transform_matrix("translate", [-cx, -cy])
    elif kind == "skewX":
        m[0, 1] = math.tan(math.radians(args[0]))
    elif kind == "skewY":
        m[1, 0] = math.tan(math.radians(args[0]))
    return m


def is_identity(matrix: np.ndarray) -> bool:
    return bool(np.array_equal(matrix, IDENTITY))


def apply_transform(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 3×3 affine to ``(N, 2)`` points; the identity returns the points untouched (bit-exact)."""
    if is_identity(matrix):
        return points
    return points @ matrix[:2, :2].T + matrix[:2, 2]
