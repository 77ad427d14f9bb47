"""Candidate SiamSVGs for annotators: consecutive annotated images, pre-grouped by IoU (reference 4.2).

``make_candidates(target)`` takes every ``<device>.<datetime>.svg`` in ``target`` (non-recursive, sorted by
name), forms consecutive pairs ``(i, i + 1)``, keeps pair ``i`` when ``i % filter_k == 0`` and writes
``<target>/candidates/<device>/<device>.<dt0>.<dt1>.svg``. Instances of the two frames whose polygons
overlap with IoU >= 0.75 are matched one-to-one (greedy, best IoU first, the UID validation's
:func:`~stickypi_assets.ml.uid.validate.iou_match_pairs`) and written as groups with an arrow; the others
are written ungrouped for the annotator to pair.

A curated annotation ``a_<stem>.svg`` (the original tools' convention for a manually checked UID SVG) takes
precedence over ``<stem>.svg`` of the same image: each image counts once, from one file (:func:`annotation_files`).

Differences from the original: pairs that would straddle two devices (the last image of one device and the
first of the next in name order) are skipped instead of aborting the whole run, and each SVG is parsed once
even though it appears in two pairs.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

from tqdm import tqdm

from stickypi_assets.formats.errors import FormatError
from stickypi_assets.formats.names import InvalidImageName, parse_stem
from stickypi_assets.formats.sim_svg import SimPair, sim_name, write_sim_svg
from stickypi_assets.formats.uid_svg import UidSvg, read_uid_svg
from stickypi_assets.ml.uid.validate import iou_match_pairs, iou_matrix

log = logging.getLogger(__name__)

#: IoU above which two outlines of consecutive frames are pre-grouped as the same insect.
PREMATCH_IOU = 0.75
CANDIDATES_DIRNAME = "candidates"
#: Prefix of a manually curated UID annotation, which wins over ``<stem>.svg`` for the same image.
CURATED_PREFIX = "a_"


def annotation_files(target_dir: str | Path) -> list[tuple[str, Path]]:
    """``(stem, path)`` for the UID SVGs of ``target_dir`` (non-recursive), sorted by stem, one per image.

    ``a_<stem>.svg`` is used when present, else ``<stem>.svg``; never both. Stems are not validated here.
    """
    chosen: dict[str, Path] = {}
    for path in sorted(p for p in Path(target_dir).glob("*.svg") if p.is_file()):
        curated = path.name.startswith(CURATED_PREFIX)
        stem = path.stem[len(CURATED_PREFIX) :] if curated else path.stem
        if stem not in chosen:
            chosen[stem] = path
            continue
        curated_path, plain = (path, chosen[stem]) if curated else (chosen[stem], path)
        log.info("%s: using the curated %s, not %s", stem, curated_path.name, plain.name)
        chosen[stem] = curated_path
    return sorted(chosen.items())


def prematch_groups(frame0: UidSvg, frame1: UidSvg, threshold: float = PREMATCH_IOU) -> list[tuple[int, int]]:
    """``(i0, i1)`` for outlines of ``frame0``/``frame1`` matched one-to-one with IoU >= ``threshold``."""
    if not frame0.instances or not frame1.instances:
        return []
    iou = iou_matrix([i.polygon for i in frame0.instances], [i.polygon for i in frame1.instances])
    return [(int(a), int(b)) for a, b in iou_match_pairs(iou, threshold) if a is not None and b is not None]


def make_candidates(
    target_dir: str | Path,
    filter_k: int = 1,
    force: bool = False,
    prematch: bool = True,
    iou_threshold: float = PREMATCH_IOU,
    progress: bool = False,
) -> list[Path]:
    """Write candidate SiamSVGs for consecutive ``<device>.<datetime>.svg`` of ``target_dir``; return their paths.

    ``a_<stem>.svg`` replaces ``<stem>.svg`` when both exist. Raises ``ValueError`` for fewer than two images
    or badly named SVGs, ``FileExistsError`` when ``<target>/candidates/`` exists and is not empty (``force``
    deletes and recreates it). ``progress`` shows a progress bar (one step per pair) on stderr.
    """
    if filter_k < 1:
        raise ValueError(f"filter_k must be >= 1, got {filter_k}")
    target = Path(target_dir)
    files = []
    names = []
    bad = []
    for stem, path in annotation_files(target):
        try:
            names.append(parse_stem(stem, check_epoch=False))
            files.append(path)
        except InvalidImageName:
            bad.append(path.name)
    if bad:
        raise ValueError(
            f"{target}: SVG names must be '<device>.<YYYY-MM-DD_HH-MM-SS>.svg' (or 'a_<device>.<...>.svg'), "
            f"got {bad[:5]}"
        )
    if len(files) < 2:
        raise ValueError(f"{target}: at least two annotated SVGs are needed, found {len(files)}")
    out = target / CANDIDATES_DIRNAME
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"{out} exists and is not empty (use force: --force on the command line)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)

    written: list[Path] = []
    cache: dict[int, UidSvg] = {}

    def doc(i: int) -> UidSvg:
        """Parsed SVG ``i``; the last two are kept, so each file is parsed once when walking the pairs."""
        if i not in cache:
            for old in [k for k in cache if k < i - 1]:
                del cache[old]
            cache[i] = read_uid_svg(files[i])
        return cache[i]

    for i in tqdm(range(len(files) - 1), desc="sim make-candidates", unit="pair", disable=not progress,
                  file=sys.stderr):
        if i % filter_k:
            continue
        n0, n1 = names[i], names[i + 1]
        if n0.device != n1.device:
            log.info("skipping %s → %s: different devices", files[i].name, files[i + 1].name)
            continue
        if not n1.datetime > n0.datetime:
            log.warning("skipping %s → %s: same datetime", files[i].name, files[i + 1].name)
            continue
        try:
            f0, f1 = doc(i), doc(i + 1)
        except FormatError as exc:  # one unreadable SVG costs its two pairs, not the whole run
            log.warning("skipping %s → %s: %s", files[i].name, files[i + 1].name, exc)
            continue
        groups = prematch_groups(f0, f1, iou_threshold) if prematch else []
        pair = SimPair(frame0=f0, frame1=f1, groups=groups, device=n0.device, datetime0=n0.datetime,
                       datetime1=n1.datetime)
        dest = out / n0.device / sim_name(n0.device, n0.datetime, n1.datetime)
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_sim_svg(pair, dest)
        written.append(dest)
        log.info("wrote %s (%d pre-grouped pairs)", dest, len(groups))
    return written
