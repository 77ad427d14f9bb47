"""Tuboid folders and an annotation database from a synthetic deployment's ground truth (ITC training data).

The ground truth already says which insect is where in every image (``ground_truth/frames.parquet``) and what
it is (``ground_truth/tracks.parquet``), so the tuboids a perfect SIM would produce can be cut directly,
without running a UID or a SIM. :func:`write_synth_tuboids` writes them in the original layout
(``<out>/<series_id>/<tuboid_id>/{metadata.txt, tuboid.jpg, context.jpg}``, reference 4.8, through
:func:`stickypi_assets.formats.tuboids.write_tuboid`) plus ``<out>/database.db`` labelling each with its
synthetic taxon (annotation tool schema, reference 5.5). Point an ITC bundle's ``data/`` at ``<out>`` and
train on it.

Rules, and why:

* **Tuboid id = insect id** (``<device>.<card start>.<card end>.synth.<NNNN>``): the generator shapes insect ids
  as SIM tuboid ids (series = the card, ``synth`` in place of the model version), and its own
  ``ground_truth/itc/database.db`` already uses them as ``tuboid_id``.
* Only frames where the insect is **visible** (in the UID SVG) are used: that is what a UID + SIM could
  have seen. Occluded, corrupt, missing and out-of-frame frames are left out, as gaps.
* A tuboid needs at least 3 visible frames and 2 within 24 h of the first (the format's rules); insects
  seen less are reported in :attr:`SynthTuboids.skipped`, not written, and not put in the database (a
  database row without a folder would only produce "missing tuboid" reports).
* Tiles (frames within 24 h of the first) are cut with :func:`masked_square_tile` from the raw JPEG, the
  centroid is the ground-truth polygon's, and ``context.jpg`` is the first frame with its bbox, as the SIM
  writes them. Frames later than 24 h only get their ``metadata.txt`` line.
* Memory: a tile is 150 kB, so insects are processed in groups holding at most ``max_tiles_in_memory``
  tiles; each group decodes the images it needs once, in time order.

Labels: the synthetic taxa are named ``type.order.family.genus.species`` like real annotations, so the
reference's default ITC labels already match them (Sciaridae → 9, Muscidae → 8, Cicadellidae → 3,
Coccinellidae → 12, Culicidae → 7, Drosophila suzukii → 4), but 12 of those 18 classes would have no
example. :data:`SYNTH_LABELS` (and :func:`synth_labels` for a subset of taxa) is a label list with one
class per synthetic taxon, most specific first, plus the ``^Insecta.*`` catch-all that real-sprite
insects (taxon ``Insecta....``) map to.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from stickypi_assets.formats import tuboids as tb
from stickypi_assets.formats.itc_database import TuboidAnnotation, write_annotations
from stickypi_assets.formats.names import parse_stem
from stickypi_assets.storage.keys import ground_truth_key, raw_image_key
from stickypi_assets.storage.object_store import ObjectStore, ObjectStoreError
from stickypi_assets.synth.generator import ITC_USER
from stickypi_assets.synth.taxa import DEFAULT_TAXA, TAXA

log = logging.getLogger(__name__)

DATABASE_FILENAME = "database.db"
#: The catch-all pattern of the reference label lists; real-sprite insects (``Insecta....``) land here.
CATCH_ALL_PATTERN = r"^Insecta.*"


def taxon_pattern(taxon: str) -> str:
    """``^Level\\.Level....*`` over the non-empty levels of a ``type.order.family.genus.species`` string.

    The reference's style (``^Insecta\\.Diptera\\.Muscidae.*``): levels joined by a literal ``\\.``, so
    :meth:`LabelMap.taxonomy_for` gives back the levels, and anchored at the start only, so an annotation
    with more levels filled in (a genus under the family) still matches.
    """
    levels = [level for level in taxon.split(".") if level]
    if not levels:
        raise ValueError(f"taxon {taxon!r} has no level")
    return "^" + r"\.".join(re.escape(level).replace("\\ ", " ") for level in levels) + ".*"


def synth_labels(taxa: Iterable[str] = DEFAULT_TAXA, *, catch_all: bool = True) -> list[list]:
    """ITC ``LABELS`` entries ``[pattern, label]`` for the given synthetic taxon keys (see module docstring).

    Classes are numbered in the order the taxa are given; matching order puts the patterns with more
    levels first (first match wins), then the catch-all (last label) when ``catch_all``.
    """
    keys = list(dict.fromkeys(taxa))
    unknown = [k for k in keys if k not in TAXA]
    if unknown:
        raise ValueError(f"unknown synthetic taxa {unknown}; choose from {sorted(TAXA)}")
    entries = [[taxon_pattern(TAXA[k].taxon), i] for i, k in enumerate(keys)]
    entries.sort(key=lambda e: -e[0].count(r"\."))  # stable: same depth keeps the given order
    if catch_all:
        entries.append([CATCH_ALL_PATTERN, len(keys)])
    return entries


#: One class per synthetic taxon (in :data:`~stickypi_assets.synth.taxa.DEFAULT_TAXA` order) + ``^Insecta.*``.
SYNTH_LABELS: list[list] = synth_labels()


@dataclass
class SynthTuboid:
    tuboid_id: str
    directory: Path
    taxon: str
    n_frames: int
    n_tiles: int


@dataclass
class SynthTuboids:
    """What :func:`write_synth_tuboids` wrote: tuboid folders, the database, and insects left out (and why)."""

    root: Path
    database: Path | None
    written: list[SynthTuboid] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def taxa(self) -> dict[str, int]:
        """Written tuboids per taxon, by taxon name."""
        return dict(sorted(Counter(t.taxon for t in self.written).items()))


@dataclass
class _Plan:
    tuboid_id: tb.TuboidId
    track: dict
    rows: list[dict]  # visible frames, chronological
    tiled: list[bool]

    @property
    def n_tiles(self) -> int:
        return sum(self.tiled)


def _plans(frames: pd.DataFrame, tracks: pd.DataFrame, skipped: list[tuple[str, str]]) -> list[_Plan]:
    visible = frames[(frames["status"] == "visible") & frames["image_stem"].notna()]
    visible = visible.sort_values(["insect_id", "datetime"], kind="stable")
    by_insect = {k: g for k, g in visible.groupby("insect_id", sort=True)}
    plans = []
    for track in tracks.sort_values("insect_id", kind="stable").to_dict("records"):
        insect_id = track["insect_id"]
        group = by_insect.get(insect_id)
        rows = [] if group is None else group.to_dict("records")
        try:
            tid = tb.TuboidId.parse(insect_id)
        except ValueError as exc:
            skipped.append((insect_id, f"not a tuboid id: {exc}"))
            continue
        times = [parse_stem(r["image_stem"], check_epoch=False).datetime for r in rows]
        tiled = tb.within_tile_window(times)
        if len(rows) < tb.MIN_FRAMES_TO_WRITE or sum(tiled) < tb.MIN_TILES_TO_READ:
            skipped.append(
                (insect_id, f"{len(rows)} visible frame(s), {sum(tiled)} within 24 h of the first; a tuboid needs "
                 f"at least {tb.MIN_FRAMES_TO_WRITE} and {tb.MIN_TILES_TO_READ}")
            )  # fmt: skip
            continue
        plans.append(_Plan(tid, track, rows, tiled))
    return plans


def _decode(store: ObjectStore, device: str, stem: str) -> np.ndarray:
    data = store.get_bytes(raw_image_key(device, stem))
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{raw_image_key(device, stem)} is not a readable JPEG")
    return image


def _write_group(store: ObjectStore, root: Path, group: Sequence[_Plan], result: SynthTuboids) -> None:
    needed: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for g, plan in enumerate(group):
        for k, row in enumerate(plan.rows):
            needed.setdefault((row["device"], row["image_stem"]), []).append((g, k))
    tiles: dict[tuple[int, int], np.ndarray] = {}
    scales: dict[tuple[int, int], float] = {}
    contexts: dict[int, bytes] = {}
    failed: dict[int, str] = {}
    for device, stem in sorted(needed, key=lambda key: (key[1].split(".")[1], key)):
        try:
            image = _decode(store, device, stem)
        except (ObjectStoreError, ValueError, OSError) as exc:
            for g, _ in needed[(device, stem)]:
                failed.setdefault(g, f"image {stem}: {exc}")
            continue
        h, w = image.shape[:2]
        for g, k in needed[(device, stem)]:
            plan = group[g]
            polygon = np.asarray(plan.rows[k]["polygon"].tolist(), dtype=np.int32).reshape(-1, 2)
            if plan.tiled[k]:
                tiles[(g, k)], scales[(g, k)] = tb.masked_square_tile(image, polygon, size=tb.TILE_SIZE)
            else:
                scales[(g, k)] = tb.tile_scale(polygon, w, h)
            if k == 0:
                contexts[g] = tb.draw_context(image, cv2.boundingRect(polygon))
        del image
    for g, plan in enumerate(group):
        insect_id = str(plan.tuboid_id)
        if g in failed:
            result.skipped.append((insect_id, failed[g]))
            continue
        frames = []
        for k, row in enumerate(plan.rows):
            name = parse_stem(row["image_stem"], check_epoch=False)
            frames.append(
                tb.TuboidFrame(name.device, name.datetime, float(row["centroid_x"]), float(row["centroid_y"]),
                               scales[(g, k)])
            )  # fmt: skip
        tuboid = tb.Tuboid(
            id=plan.tuboid_id,
            frames=frames,
            tiles=[tiles[(g, k)] for k in range(len(plan.rows)) if plan.tiled[k]],
            context_jpeg=contexts.get(g),
        )
        try:
            directory = tb.write_tuboid(root, tuboid)
        except ValueError as exc:  # TuboidError: one bad insect must not lose the others
            result.skipped.append((insect_id, str(exc)))
            continue
        result.written.append(SynthTuboid(insect_id, directory, str(plan.track["taxon"]), len(frames), tuboid.n_tiles))


def write_synth_tuboids(
    store: ObjectStore,
    out_dir: str | Path,
    *,
    devices: Sequence[str] | None = None,
    max_tiles_in_memory: int = 1024,
    database: bool = True,
) -> SynthTuboids:
    """Cut the tuboid of every synthetic insect seen often enough and write it (and ``database.db``) under ``out_dir``.

    ``store`` holds a deployment written by :func:`stickypi_assets.synth.generate` (``raw_images/`` and
    ``ground_truth/``). ``devices`` restricts to some devices. An existing ``database.db`` in ``out_dir`` is
    replaced (the annotation database is append-only, so appending would duplicate rows on a second run);
    tuboid folders are overwritten in place. Returns what was written and what was skipped.
    """
    if max_tiles_in_memory < 1:
        raise ValueError("max_tiles_in_memory must be >= 1")
    root = Path(out_dir)
    frames = pd.read_parquet(
        _local_or_download(store, ground_truth_key("frames.parquet")),
        columns=["insect_id", "device", "datetime", "image_stem", "status", "polygon", "centroid_x", "centroid_y"],
    )
    tracks = pd.read_parquet(_local_or_download(store, ground_truth_key("tracks.parquet")))
    if devices is not None:
        wanted = set(devices)
        frames = frames[frames["device"].isin(wanted)]
        tracks = tracks[tracks["device"].isin(wanted)]
    result = SynthTuboids(root=root, database=None)
    plans = _plans(frames, tracks, result.skipped)
    root.mkdir(parents=True, exist_ok=True)
    for group in tb.tile_budget_groups(plans, lambda plan: plan.n_tiles, max_tiles_in_memory):
        _write_group(store, root, group, result)
    result.written.sort(key=lambda t: t.tuboid_id)
    result.skipped.sort()
    if database:
        by_id = {str(p.tuboid_id): p.track for p in plans}
        rows = []
        for t in result.written:
            track = by_id[t.tuboid_id]
            rows.append(
                TuboidAnnotation(
                    tuboid_id=t.tuboid_id, user=ITC_USER, type=track["type"], order=track["order"],
                    family=track["family"], genus=track["genus"], species=track["species"], extra=None,
                    confidence=None, notes=None, datetime=float(pd.Timestamp(track["capture_datetime"]).timestamp()),
                )
            )  # fmt: skip
        path = root / DATABASE_FILENAME
        path.unlink(missing_ok=True)
        write_annotations(path, rows)
        result.database = path
    log.info("synthetic tuboids: %d written, %d skipped under %s", len(result.written), len(result.skipped), root)
    return result


def _local_or_download(store: ObjectStore, key: str):
    """A path or file-like object pandas can read (local stores give their file, others the bytes)."""
    local_path = getattr(store, "local_path", None)
    if local_path is not None:
        return local_path(key)
    import io

    return io.BytesIO(store.get_bytes(key))
