"""SIM training SVGs ("SiamSVG"): two frames of one device stacked vertically, groups = same insect.

Layout (reference 4.1-4.2): root ``width=W height=2H``; the earlier frame's ``<image>`` at ``y=0``, the
later one at ``y=H``; every instance is a ``<path>`` (frame-1 paths shifted by ``+H``) named ``0_NNN`` or
``1_NNN``; a ``<g id="auto-grp-k">`` holding one path of each frame (plus an optional arrow ``<line>``)
says both outlines are the same insect. Ungrouped paths are insects without a match (negatives).

Differences from the original reader, each fixing a documented defect (reference 8 items 16, 10):

* images are ordered by their numeric ``y`` (the original compared the strings, so ``"972" > "1944"``);
* a path belongs to the frame containing the centre of its bounding box (the original used the top edge,
  which puts a frame-1 insect touching the seam into frame 0);
* groups that are not pairs do not reject the file: Inkscape layers (``inkscape:groupmode="layer"``) and
  groups of groups are traversed; any other group must hold exactly one instance per frame, otherwise it
  is reported in ``warnings`` and its paths are kept as unmatched instances;
* ungrouped paths are kept (the original training reader dropped them, losing the best negatives);
* each frame keeps its own metadata (the original wrote the first frame's ``desc`` on both images).

Instance order is preserved across a write/read round trip through the ``N_NNN`` names; the class name,
which the ``N_NNN`` names displace, is kept in a ``data-class`` attribute.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from stickypi_assets.formats.annotations import DEFAULT_NAME, Instance
from stickypi_assets.formats.errors import FormatError
from stickypi_assets.formats.names import InvalidImageName, format_datetime, parse_datetime, validate_device
from stickypi_assets.formats.svg_paths import IDENTITY
from stickypi_assets.formats.uid_svg import (
    INKSCAPE_NS,
    SVG_NS,
    EmbeddedImage,
    PathNode,
    UidSvg,
    atomic_write,
    check_image_size,
    check_metadata_md5,
    encode_json_metadata,
    image_element,
    load_source,
    metadata_element,
    parse_svg_xml,
    path_element,
    read_embedded_image,
    read_json_metadata,
    read_legacy_metadata,
    read_path,
    ring_to_polygon,
    svg_open_tag,
    walk_svg,
)

#: ``id`` of the ``<metadata>`` element holding both frames' metadata, the device and the datetimes.
SIM_METADATA_ID = "stickypi-sim-metadata"
_INSTANCE_NAME = re.compile(r"^([01])_(\d+)$")
_ARROWHEAD = (
    '  <defs>\n    <marker id="arrowhead" markerWidth="10" markerHeight="7" refX="10" refY="3.5" '
    'orient="auto">\n      <polygon points="0 0, 10 3.5, 0 7"/>\n    </marker>\n  </defs>\n'
)


class SimSvgError(FormatError):
    """A SIM pair SVG that cannot be read or written."""


@dataclass
class SimPair:
    """Two annotated frames of one device and the matches between their instances.

    ``groups`` holds ``(i0, i1)``: ``frame0.instances[i0]`` and ``frame1.instances[i1]`` are the same
    insect. Each instance is in at most one group. ``device``/``datetime0``/``datetime1`` come from the
    file name ``<device>.<dt0>.<dt1>.svg`` (or from the file's own metadata when read from bytes).
    """

    frame0: UidSvg
    frame1: UidSvg
    groups: list[tuple[int, int]]
    device: str | None = None
    datetime0: datetime | None = None
    datetime1: datetime | None = None
    warnings: list[str] = field(default_factory=list)


def parse_sim_name(name: str) -> tuple[str, datetime, datetime] | None:
    """``<device>.<dt0>.<dt1>.svg`` → ``(device, dt0, dt1)``; ``None`` if the name is not of that shape.

    A name of that shape with an invalid device or datetime, or with ``dt1 <= dt0``, raises
    :class:`SimSvgError`: it claims to be a SIM pair and is wrong.
    """
    base = PurePosixPath(name.replace("\\", "/")).name
    fields = base.split(".")
    if len(fields) != 4 or fields[3].lower() != "svg":
        return None
    try:
        device = validate_device(fields[0])
        dt0, dt1 = parse_datetime(fields[1]), parse_datetime(fields[2])
    except InvalidImageName as exc:
        raise SimSvgError(f"invalid SIM pair name {base!r}: {exc}") from None
    if dt1 <= dt0:
        raise SimSvgError(f"invalid SIM pair name {base!r}: the second datetime must be later than the first")
    return device, dt0, dt1


def sim_name(device: str, datetime0: datetime, datetime1: datetime) -> str:
    """Inverse of :func:`parse_sim_name`."""
    return f"{device}.{format_datetime(datetime0)}.{format_datetime(datetime1)}.svg"


# -- reading ----------------------------------------------------------------------------------------------


def _is_layer(elem: ET.Element) -> bool:
    return elem.get(f"{{{INKSCAPE_NS}}}groupmode") == "layer"


def _pair_group(groups: tuple[ET.Element, ...]) -> ET.Element | None:
    """The group that may pair this path: its innermost ancestor ``<g>``, unless that is a container
    (an Inkscape layer, or a group holding other groups)."""
    if not groups:
        return None
    inner = groups[-1]
    if _is_layer(inner) or any(child.tag == f"{{{SVG_NS}}}g" for child in inner):
        return None
    return inner


@dataclass
class _Candidate:
    frame: int
    instance: Instance
    order: int  # document order
    name_index: int | None  # NNN of an "F_NNN" name matching the frame
    group: ET.Element | None


def _frame_metadata(value: Any, index: int) -> dict[str, Any] | None:
    if isinstance(value, dict):
        frames = value.get("frames")
        if isinstance(frames, list) and len(frames) == 2 and isinstance(frames[index], dict):
            return frames[index]
    return None


def read_sim_svg(source: str | Path | bytes, *, name: str | None = None) -> SimPair:
    """Read a SIM pair SVG (path, bytes, or text starting with ``<``); see the module docstring."""
    data, name = load_source(source, name)
    parsed_name = parse_sim_name(name)
    root = parse_svg_xml(data, name, SimSvgError)
    warnings: list[str] = []
    tree = walk_svg(root, name, warnings)
    image_elems = list(root.iter(f"{{{SVG_NS}}}image"))
    if len(image_elems) != 2:
        raise SimSvgError(f"{name}: a SIM pair SVG must contain exactly two <image>, found {len(image_elems)}")
    images = [read_embedded_image(e, tree.image_ctms.get(e, IDENTITY), name, SimSvgError) for e in image_elems]
    images.sort(key=lambda im: im.top)  # numeric, unlike the original's string comparison
    if not images[1].top > images[0].top:
        raise SimSvgError(f"{name}: the two images are not stacked vertically (both at y={images[0].top:g})")
    seam = images[1].top

    json_meta = read_json_metadata(root, SIM_METADATA_ID, name, warnings)
    metadata = []
    for k, image in enumerate(images):
        meta = _frame_metadata(json_meta, k)
        if meta is None:
            meta = read_legacy_metadata(root, image.elem, name, warnings)
        check_metadata_md5(meta, image.jpeg_bytes, f"{name} (frame {k})", warnings)
        metadata.append(meta)

    candidates = _read_candidates(tree.paths, images, seam, name, warnings)
    frames_instances, position = _order_instances(candidates)
    groups = _read_groups(candidates, position, name, warnings)

    device = datetime0 = datetime1 = None
    if parsed_name is not None:
        device, datetime0, datetime1 = parsed_name
    elif isinstance(json_meta, dict):
        device, datetime0, datetime1 = _identity_from_metadata(json_meta, name, warnings)
    frames = [
        UidSvg(
            jpeg_bytes=image.jpeg_bytes,
            width=image.width,
            height=image.height,
            metadata=metadata[k],
            instances=frames_instances[k],
        )
        for k, image in enumerate(images)
    ]
    return SimPair(
        frame0=frames[0],
        frame1=frames[1],
        groups=groups,
        device=device,
        datetime0=datetime0,
        datetime1=datetime1,
        warnings=warnings,
    )


def _read_candidates(
    paths: list[PathNode], images: list[EmbeddedImage], seam: float, name: str, warnings: list[str]
) -> list[_Candidate]:
    candidates: list[_Candidate] = []
    for node in paths:
        shapes = read_path(node, name, warnings)
        if shapes is None:
            continue
        class_name = shapes.attrib.get("data-class") or None
        match = _INSTANCE_NAME.match(shapes.attrib.get("name", ""))
        if class_name is None:
            class_name = DEFAULT_NAME if match else shapes.name
        for k, ring in enumerate(shapes.rings):
            centre_y = (float(ring[:, 1].min()) + float(ring[:, 1].max())) / 2 if len(ring) else 0.0
            frame = 0 if centre_y < seam else 1
            polygon = ring_to_polygon(images[frame].user_to_pixel(ring), name, shapes.label, k, warnings)
            if polygon is None:
                continue
            name_index = int(match.group(2)) if match and int(match.group(1)) == frame else None
            candidates.append(
                _Candidate(
                    frame=frame,
                    instance=shapes.instance(polygon, name=class_name),
                    order=len(candidates),
                    name_index=name_index,
                    group=_pair_group(node.groups),
                )
            )
    return candidates


def _order_instances(candidates: list[_Candidate]) -> tuple[list[list[Instance]], dict[int, int]]:
    """Per-frame instance lists, ordered by the ``N_NNN`` names when all are present and distinct
    (so indices survive a round trip), else by document order; and candidate order → index in frame."""
    frames: list[list[Instance]] = [[], []]
    position: dict[int, int] = {}
    for frame in (0, 1):
        members = [c for c in candidates if c.frame == frame]
        indices = [c.name_index for c in members]
        if members and None not in indices and len(set(indices)) == len(indices):
            members.sort(key=lambda c: c.name_index)
        for i, c in enumerate(members):
            position[c.order] = i
            frames[frame].append(c.instance)
    return frames, position


def _read_groups(
    candidates: list[_Candidate], position: dict[int, int], name: str, warnings: list[str]
) -> list[tuple[int, int]]:
    by_group: dict[ET.Element, list[_Candidate]] = {}
    for c in candidates:
        if c.group is not None:
            by_group.setdefault(c.group, []).append(c)
    groups: list[tuple[int, int]] = []
    for group, members in by_group.items():
        per_frame = [sum(1 for c in members if c.frame == f) for f in (0, 1)]
        if per_frame != [1, 1]:
            warnings.append(
                f"{name}: group {group.get('id') or '(no id)'!r} holds {per_frame[0]} frame-0 and "
                f"{per_frame[1]} frame-1 instances, expected one of each; its paths are kept unmatched"
            )
            continue
        first, second = sorted(members, key=lambda c: c.frame)
        groups.append((position[first.order], position[second.order]))
    groups.sort()
    return groups


def _identity_from_metadata(
    meta: dict[str, Any], name: str, warnings: list[str]
) -> tuple[str | None, datetime | None, datetime | None]:
    device, dt0, dt1 = meta.get("device"), meta.get("datetime0"), meta.get("datetime1")
    if not (isinstance(device, str) and isinstance(dt0, str) and isinstance(dt1, str)):
        return None, None, None
    try:
        return validate_device(device), parse_datetime(dt0), parse_datetime(dt1)
    except InvalidImageName as exc:
        warnings.append(f"{name}: invalid device/datetimes in the SIM metadata ({exc}); ignored")
        return None, None, None


# -- writing ----------------------------------------------------------------------------------------------


def _check_pair(pair: SimPair) -> None:
    f0, f1 = pair.frame0, pair.frame1
    if (f0.width, f0.height) != (f1.width, f1.height):
        raise SimSvgError(f"both frames must have the same size, got {f0.width}x{f0.height} and {f1.width}x{f1.height}")
    if pair.datetime0 is not None and pair.datetime1 is not None and not pair.datetime1 > pair.datetime0:
        raise SimSvgError("datetime1 must be later than datetime0 (the earlier frame comes first)")
    if pair.device is not None:
        try:
            validate_device(pair.device)
        except InvalidImageName as exc:
            raise SimSvgError(str(exc)) from None
    seen: tuple[set[int], set[int]] = (set(), set())
    for i0, i1 in pair.groups:
        for frame, idx, doc in ((0, i0, f0), (1, i1, f1)):
            if not 0 <= idx < len(doc.instances):
                raise SimSvgError(f"group ({i0}, {i1}): frame-{frame} index {idx} out of range")
            if idx in seen[frame]:
                raise SimSvgError(f"frame-{frame} instance {idx} is in more than one group")
            seen[frame].add(idx)


def _centroid_text(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def write_sim_svg(pair: SimPair, dest: str | Path | None = None, *, arrows: bool = True) -> bytes:
    """Serialise ``pair`` (grouped pairs first as ``auto-grp-k``, then unmatched paths) and return the bytes.

    The output is also readable by the original tools (every ``<g>`` holds exactly two paths; the arrow
    marker is a ``<polygon>``, not a path). With ``dest`` the file is written atomically.
    """
    _check_pair(pair)
    width, height = pair.frame0.width, pair.frame0.height
    for k, frame in enumerate((pair.frame0, pair.frame1)):
        check_image_size(frame.jpeg_bytes, frame.width, frame.height, SimSvgError)
        if not frame.jpeg_bytes:
            raise SimSvgError(f"frame {k} has no image bytes")
    meta: dict[str, Any] = {"frames": [pair.frame0.metadata, pair.frame1.metadata]}
    if pair.device is not None:
        meta["device"] = pair.device
    if pair.datetime0 is not None:
        meta["datetime0"] = format_datetime(pair.datetime0)
    if pair.datetime1 is not None:
        meta["datetime1"] = format_datetime(pair.datetime1)

    parts = [
        svg_open_tag(width, 2 * height),
        _ARROWHEAD,
        metadata_element(SIM_METADATA_ID, encode_json_metadata(meta)),
        image_element(pair.frame0.jpeg_bytes, width, height, 0, pair.frame0.metadata),
        image_element(pair.frame1.jpeg_bytes, width, height, height, pair.frame1.metadata),
    ]

    def path(frame: int, index: int) -> str:
        inst = (pair.frame0, pair.frame1)[frame].instances[index]
        return path_element(inst, name=f"{frame}_{index:03d}", dy=frame * height, extra={"data-class": inst.name})

    grouped: tuple[set[int], set[int]] = (set(), set())
    for k, (i0, i1) in enumerate(pair.groups):
        grouped[0].add(i0)
        grouped[1].add(i1)
        parts.append(f'  <g id="auto-grp-{k}">\n    {path(0, i0)}\n    {path(1, i1)}\n')
        if arrows:
            x0, y0 = pair.frame0.instances[i0].centroid
            x1, y1 = pair.frame1.instances[i1].centroid
            coords = [_centroid_text(v) for v in (x0, y0, x1, y1 + height)]
            parts.append(
                f'    <line x1="{coords[0]}" y1="{coords[1]}" x2="{coords[2]}" y2="{coords[3]}" '
                'stroke="#000" stroke-width="3" marker-end="url(#arrowhead)"/>\n'
            )
        parts.append("  </g>\n")
    for frame, doc in enumerate((pair.frame0, pair.frame1)):
        parts.extend(f"  {path(frame, i)}\n" for i in range(len(doc.instances)) if i not in grouped[frame])
    parts.append("</svg>\n")
    data = "".join(parts).encode("utf-8")
    if dest is not None:
        atomic_write(dest, data)
    return data
